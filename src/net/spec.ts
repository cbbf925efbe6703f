// Connection specs: where a milter listens or where we connect to.
//
// Accepted forms (milter-manager / Sendmail style and Postfix style):
//   unix:PATH  local:PATH                       (relative paths are kept, as milter-manager does)
//   inet:PORT  inet:PORT@HOST  inet:PORT@[ADDRESS]
//   inet6:PORT inet6:PORT@HOST inet6:PORT@[ADDRESS]
//   inet:HOST:PORT  inet:[ADDRESS]:PORT          (Postfix)
// `inet:` with an IPv6 literal (Postfix writes `inet:[::1]:10025`) gives an inet6 spec.
import { ipFamily } from "./ip.ts";

export type UnixSpec = { kind: "unix"; path: string; scheme: "unix" | "local" };
/** `host` undefined = any address when listening, loopback when connecting (see toBunAddress). */
export type InetSpec = { kind: "inet"; port: number; host?: string; scheme: "inet" };
export type Inet6Spec = { kind: "inet6"; port: number; host?: string; scheme: "inet" | "inet6" };
export type ConnectionSpec = UnixSpec | InetSpec | Inet6Spec;
export type TcpSpec = InetSpec | Inet6Spec;

export class SpecError extends Error {
  constructor(readonly input: string, readonly problem: string) {
    super(`invalid connection spec <${input}>: ${problem}`);
    this.name = "SpecError";
  }
}

/** sun_path is 108 bytes including the terminating NUL. */
export const UNIX_PATH_MAX = 107;

export type ParseOptions = {
  /** Accept port 0 (let the kernel choose) — for tests and `--connection-spec inet:0@...`. */
  allowPortZero?: boolean;
};

export function parseSpec(input: string, opts: ParseOptions = {}): ConnectionSpec {
  const fail = (problem: string): never => { throw new SpecError(input, problem); };
  const colon = input.indexOf(":");
  if (colon < 0) fail("missing scheme (expected unix:, local:, inet: or inet6:)");
  const scheme = input.slice(0, colon).toLowerCase() as ConnectionSpec["scheme"];
  const rest = input.slice(colon + 1);

  if (scheme === "unix" || scheme === "local") {
    if (rest === "") fail("empty socket path");
    if (rest.includes("\0")) fail("socket path contains a NUL byte");
    if (Buffer.byteLength(rest) > UNIX_PATH_MAX) fail(`socket path longer than ${UNIX_PATH_MAX} bytes`);
    return { kind: "unix", path: rest, scheme };
  }
  if (scheme !== "inet" && scheme !== "inet6") {
    fail(`unknown scheme "${input.slice(0, colon)}" (expected unix:, local:, inet: or inet6:)`);
  }

  let portText: string;
  let hostText: string | undefined;
  let bracketed = false;
  const at = rest.indexOf("@");
  if (at >= 0) {                                   // PORT@HOST, PORT@[ADDRESS]
    portText = rest.slice(0, at);
    hostText = rest.slice(at + 1);
    if (hostText.startsWith("[") || hostText.endsWith("]")) {
      if (!hostText.startsWith("[") || !hostText.endsWith("]") || hostText.length < 2) fail("unbalanced brackets around the address");
      hostText = hostText.slice(1, -1);
      bracketed = true;
      if (hostText === "") fail("empty address inside brackets");
    }
    if (hostText === "") fail("empty host after @");
  } else if (rest.startsWith("[")) {               // Postfix: [ADDRESS]:PORT
    const close = rest.indexOf("]");
    if (close < 0) fail("unbalanced brackets around the address");
    if (rest[close + 1] !== ":") fail("expected :PORT after [ADDRESS]");
    hostText = rest.slice(1, close);
    portText = rest.slice(close + 2);
    bracketed = true;
    if (hostText === "") fail("empty address inside brackets");
  } else if (rest.includes(":")) {                 // Postfix: HOST:PORT
    const last = rest.lastIndexOf(":");
    hostText = rest.slice(0, last);
    portText = rest.slice(last + 1);
    if (hostText.includes("]")) fail("unbalanced brackets around the address");
    if (hostText.includes(":")) fail("IPv6 address must be written in brackets, e.g. inet:[::1]:PORT");
    if (hostText === "") fail("empty host before :PORT");
  } else {
    portText = rest;
  }

  if (hostText !== undefined && !bracketed && /[\[\]]/.test(hostText)) fail("unbalanced brackets around the address");
  const port = parsePort(portText, opts, fail);
  if (hostText === undefined) return scheme === "inet" ? { kind: "inet", port, scheme } : { kind: "inet6", port, scheme };

  const family = ipFamily(hostText);
  const v4 = family === 4;
  const v6 = family === 6;
  if (bracketed && !v4 && !v6) fail(`"${hostText}" is not an IPv4 or IPv6 address`);
  if (!v4 && !v6 && /^[0-9.]+$/.test(hostText)) fail(`"${hostText}" is not a valid IPv4 address`);
  if (!v4 && !v6 && !isHostName(hostText)) fail(`"${hostText}" is not a valid host name`);
  if (scheme === "inet6" && v4) fail(`inet6 spec with an IPv4 address "${hostText}" (use inet:)`);
  if (v6) return { kind: "inet6", port, host: hostText, scheme };
  return scheme === "inet" ? { kind: "inet", port, host: hostText, scheme } : { kind: "inet6", port, host: hostText, scheme };
}

function parsePort(text: string, opts: ParseOptions, fail: (p: string) => never): number {
  if (text === "") fail("missing port");
  if (!/^[0-9]+$/.test(text)) fail(`port "${text}" is not a number`);
  const port = Number(text);
  if (port === 0 && !opts.allowPortZero) fail("port 0 is not allowed");
  if (port > 65535) fail(`port ${text} is greater than 65535`);
  return port;
}

function isHostName(s: string): boolean {
  return s.length <= 253 && /^[A-Za-z0-9_]([A-Za-z0-9_-]*[A-Za-z0-9_])?(\.[A-Za-z0-9_]([A-Za-z0-9_-]*[A-Za-z0-9_])?)*\.?$/.test(s);
}

/** Canonical milter-manager form: `inet:10025@[127.0.0.1]`, `inet6:10025@[::1]`, `inet:10025@host`, `unix:/path`. */
export function formatSpec(spec: ConnectionSpec): string {
  if (spec.kind === "unix") return `unix:${spec.path}`;
  if (spec.host === undefined) return `${spec.kind}:${spec.port}`;
  const literal = ipFamily(spec.host) !== 0;
  return `${spec.kind}:${spec.port}@${literal ? `[${spec.host}]` : spec.host}`;
}

/** A short human phrase for log lines, e.g. `IPv4 127.0.0.1 port 10025`, `unix socket /run/x.sock`. */
export function describeSpec(spec: ConnectionSpec): string {
  if (spec.kind === "unix") return `unix socket ${spec.path}`;
  const family = spec.kind === "inet" ? "IPv4" : "IPv6";
  return `${family} ${spec.host ?? "any address"} port ${spec.port}`;
}

export type BunAddress = { hostname: string; port: number } | { unix: string };

/**
 * Address for Bun.listen / Bun.connect. Without a host, `listen` binds every address (0.0.0.0,
 * or `::`, which Bun makes dual-stack) like milter-manager's `inet:10025`; `connect` goes to
 * loopback (127.0.0.1 / ::1), the only sensible peer of a host-less spec.
 * Host names are passed through; listen()/connect() resolve them in the spec's family first.
 */
export function toBunAddress(spec: ConnectionSpec, role: "listen" | "connect"): BunAddress {
  if (spec.kind === "unix") return { unix: spec.path };
  const anyHost = spec.kind === "inet" ? (role === "listen" ? "0.0.0.0" : "127.0.0.1") : role === "listen" ? "::" : "::1";
  return { hostname: spec.host ?? anyHost, port: spec.port };
}

/** The address of one end of a socket. `path` is "" for an unnamed unix peer. */
export type SocketAddress =
  | { family: "IPv4" | "IPv6"; address: string; port: number }
  | { family: "unix"; path: string };

/** `inet:PORT@[ADDR]` / `inet6:PORT@[ADDR]` / `unix:PATH`, or `unknown` (milter-manager's wording). */
export function formatAddress(addr: SocketAddress | undefined): string {
  if (!addr) return "unknown";
  if (addr.family === "unix") return addr.path === "" ? "unknown" : `unix:${addr.path}`;
  return `${addr.family === "IPv4" ? "inet" : "inet6"}:${addr.port}@[${addr.address}]`;
}
