// Address specs of smtp-source targets and smtp-sink listeners, in Postfix's
// notation: [inet:]host[:port], [inet:][host]:port, [v6addr]:port, unix:path.

export type Target =
  | { kind: "inet"; host: string; port: number }
  | { kind: "unix"; path: string };

export class AddressError extends Error {
  constructor(public readonly spec: string, reason: string) {
    super(`${spec}: ${reason}`);
    this.name = "AddressError";
  }
}

/** The few service names a mail test tool meets; anything else must be a number. */
const SERVICES: Record<string, number> = { smtp: 25, lmtp: 24, submission: 587, submissions: 465, smtps: 465 };

export function parsePort(spec: string, port: string): number {
  if (/^[0-9]+$/.test(port)) {
    const n = Number(port);
    if (n <= 65535) return n;
    throw new AddressError(spec, `bad port number: ${port}`);
  }
  const s = SERVICES[port.toLowerCase()];
  if (s === undefined) throw new AddressError(spec, `unknown service name: ${port}`);
  return s;
}

/** Split "host:port", "[v6]:port", "[v6]", "host" or "v6:addr:port" (last colon). */
function splitHostPort(spec: string, text: string): { host: string; port?: string } {
  if (text.startsWith("[")) {
    const close = text.indexOf("]");
    if (close < 0) throw new AddressError(spec, "missing ']' after IPv6 address");
    const host = text.slice(1, close);
    const rest = text.slice(close + 1);
    if (rest === "") return { host };
    if (!rest.startsWith(":")) throw new AddressError(spec, `unexpected text after ']': ${rest}`);
    return { host, port: rest.slice(1) };
  }
  const colon = text.lastIndexOf(":");
  if (colon < 0) return { host: text };
  return { host: text.slice(0, colon), port: text.slice(colon + 1) };
}

/** smtp-source's target: `[inet:]host[:port]` (port defaults to 25) or `unix:pathname`. */
export function parseTarget(spec: string, defaultPort = 25): Target {
  if (spec.startsWith("unix:")) {
    const path = spec.slice(5);
    if (path === "") throw new AddressError(spec, "empty unix socket path");
    return { kind: "unix", path };
  }
  const text = spec.startsWith("inet:") ? spec.slice(5) : spec;
  const { host, port } = splitHostPort(spec, text);
  if (host === "") throw new AddressError(spec, "missing host name");
  if (port === "") throw new AddressError(spec, "empty port");
  return { kind: "inet", host, port: port === undefined ? defaultPort : parsePort(spec, port) };
}

/** smtp-sink's listen address: `[inet:][host]:port` (empty host = every address) or `unix:pathname`. */
export function parseListen(spec: string): Target {
  if (spec.startsWith("unix:")) return parseTarget(spec);
  const text = spec.startsWith("inet:") ? spec.slice(5) : spec;
  const { host, port } = splitHostPort(spec, text);
  if (port === undefined || port === "") throw new AddressError(spec, "missing port");
  return { kind: "inet", host, port: parsePort(spec, port) };
}

export function formatTarget(t: Target): string {
  if (t.kind === "unix") return `unix:${t.path}`;
  return t.host.includes(":") ? `[${t.host}]:${t.port}` : `${t.host}:${t.port}`;
}
