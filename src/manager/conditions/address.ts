// IP addresses and networks for the conditions: parsing IPv4/IPv6 text into bytes, CIDR matching
// (an IPv4-mapped IPv6 address such as ::ffff:192.0.2.1 counts as the IPv4 address it carries),
// what "local" means, and the parsed client/server socket addresses a condition sees.
import { BlockList, isIPv4, isIPv6 } from "node:net";
import type { ConnectCommand } from "../../milter/index.ts";

/** A parsed IP address: 4 bytes (IPv4) or 16 bytes (IPv6). */
export interface IpAddress {
  readonly family: 4 | 6;
  readonly bytes: Uint8Array;
}

/** Address text as MTAs send it: Postfix writes `IPv6:2001:db8::1`, Sendmail may bracket it. */
export function cleanAddressText(text: string): string {
  let t = text.trim();
  if (t.startsWith("[") && t.endsWith("]")) t = t.slice(1, -1);
  if (/^ipv6:/i.test(t)) t = t.slice(5);
  const zone = t.indexOf("%"); // fe80::1%eth0: the zone does not take part in matching
  return zone >= 0 && t.includes(":") ? t.slice(0, zone) : t;
}

/** Parse IPv4 or IPv6 text (see cleanAddressText for accepted spellings); undefined if it is neither. */
export function parseIp(text: string): IpAddress | undefined {
  const t = cleanAddressText(text);
  if (isIPv4(t)) return { family: 4, bytes: Uint8Array.from(t.split(".").map(Number)) };
  if (!isIPv6(t)) return undefined;
  return { family: 6, bytes: ipv6Bytes(t) };
}

/** 16 bytes of a valid IPv6 text (validated by isIPv6 first); handles `::` and an IPv4 tail. */
function ipv6Bytes(t: string): Uint8Array {
  const out = new Uint8Array(16);
  let text = t;
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  let tail: number[] = [];
  if (v4) {
    const o = v4[1].split(".").map(Number);
    tail = [(o[0] << 8) | o[1], (o[2] << 8) | o[3]];
    text = text.slice(0, -v4[1].length) + "0:0"; // placeholders, replaced below
  }
  const [head, rest] = text.includes("::") ? text.split("::") : [text, undefined];
  const words = (s: string) => (s === "" ? [] : s.split(":").map((w) => parseInt(w, 16)));
  const first = words(head);
  const last = rest === undefined ? [] : words(rest);
  const groups = [...first, ...new Array(8 - first.length - last.length).fill(0), ...last];
  if (tail.length === 2) groups.splice(6, 2, ...tail);
  groups.forEach((g, i) => {
    out[i * 2] = g >> 8;
    out[i * 2 + 1] = g & 0xff;
  });
  return out;
}

/** The IPv4 address an address stands for: itself, or the one inside ::ffff:a.b.c.d. */
export function asIPv4(ip: IpAddress): IpAddress | undefined {
  if (ip.family === 4) return ip;
  const b = ip.bytes;
  for (let i = 0; i < 10; i++) if (b[i] !== 0) return undefined;
  if (b[10] !== 0xff || b[11] !== 0xff) return undefined;
  return { family: 4, bytes: b.slice(12) };
}

export function formatIp(ip: IpAddress): string {
  if (ip.family === 4) return ip.bytes.join(".");
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push((ip.bytes[i] << 8) | ip.bytes[i + 1]);
  // RFC 5952: the longest run of two or more zero groups (the first one on a tie) becomes "::".
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) { i++; continue; }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) { best = i; bestLen = j - i; }
    i = j;
  }
  const hex = (g: number[]) => g.map((x) => x.toString(16)).join(":");
  if (best < 0) return hex(groups);
  return `${hex(groups.slice(0, best))}::${hex(groups.slice(best + bestLen))}`;
}

/** A network: address and prefix length. */
export interface Network {
  readonly ip: IpAddress;
  readonly prefix: number;
  readonly text: string;
}

/** Thrown for a bad address or CIDR in the settings or in a condition's own call. */
export class AddressError extends Error {
  constructor(readonly input: string, why: string, readonly kind: "address" | "prefix" = "address") {
    super(`"${input}": ${why}`);
    this.name = "AddressError";
  }
}

/** "192.0.2.0/24", "2001:db8::/32", or a single address (full-length prefix). */
export function parseNetwork(text: string): Network {
  const slash = text.indexOf("/");
  const ip = parseIp(slash < 0 ? text : text.slice(0, slash));
  if (!ip) throw new AddressError(text, "not an IPv4 or IPv6 address or network");
  const max = ip.family === 4 ? 32 : 128;
  const digits = slash < 0 ? String(max) : text.slice(slash + 1);
  const prefix = Number(digits);
  if (!/^\d{1,3}$/.test(digits) || prefix > max) throw new AddressError(text, `prefix length must be 0..${max}`, "prefix");
  return { ip, prefix, text };
}

/**
 * Networks as node:net BlockLists, one per family: the IPv4 one also matches an IPv4-mapped IPv6
 * address, but an IPv4 address is never inside an IPv6 network (BlockList alone would put it in ::/0).
 */
class Networks {
  private readonly v4 = new BlockList();
  private readonly v6 = new BlockList();
  constructor(nets: readonly Network[]) {
    for (const n of nets) (n.ip.family === 4 ? this.v4 : this.v6).addSubnet(formatIp(n.ip), n.prefix, n.ip.family === 4 ? "ipv4" : "ipv6");
  }
  has(ip: IpAddress): boolean {
    const text = formatIp(ip);
    return ip.family === 4 ? this.v4.check(text, "ipv4") : this.v6.check(text, "ipv6") || this.v4.check(text, "ipv6");
  }
}

const single = new WeakMap<Network, Networks>();

/** Is `ip` inside `net`? IPv4-mapped IPv6 addresses match IPv4 networks. */
export function inNetwork(ip: IpAddress, net: Network): boolean {
  let n = single.get(net);
  if (!n) single.set(net, (n = new Networks([net])));
  return n.has(ip);
}

/** A list of networks. */
export class NetworkList {
  readonly networks: readonly Network[];
  private readonly set: Networks;
  constructor(texts: readonly string[]) {
    this.networks = texts.map(parseNetwork);
    this.set = new Networks(this.networks);
  }
  has(ip: IpAddress): boolean {
    return this.set.has(ip);
  }
}

/**
 * Networks that are local without configuration: loopback, RFC 1918 private and link-local IPv4;
 * loopback, link-local and unique-local (fc00::/7, IPv6's private range) IPv6.
 */
export const LOCAL_NETWORKS = new NetworkList([
  "127.0.0.0/8", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16",
  "::1/128", "fe80::/10", "fc00::/7",
]);

// ---------------------------------------------------------------------------------------------
// Socket addresses as the conditions see them

/** Where the SMTP client (or the MTA's listening side) is, parsed. */
export type SocketAddress =
  | {
      readonly family: "ipv4" | "ipv6";
      /** Normalised address text (no `IPv6:` prefix). */
      readonly address: string;
      readonly port: number;
      readonly ip: IpAddress;
      /** Loopback, private or link-local (LOCAL_NETWORKS). */
      readonly local: boolean;
      /** milter-manager's spelling: `inet:25@[192.0.2.1]`, `inet6:25@[2001:db8::1]`. */
      readonly spec: string;
    }
  | { readonly family: "unix"; readonly path: string; readonly local: true; readonly spec: string }
  | { readonly family: "unknown"; readonly local: false; readonly spec: "unknown" };

export const UNKNOWN_ADDRESS: SocketAddress = Object.freeze({ family: "unknown", local: false, spec: "unknown" });

export function inetAddress(text: string, port: number): SocketAddress {
  const ip = parseIp(text);
  if (!ip) return UNKNOWN_ADDRESS;
  const address = formatIp(ip);
  const family = ip.family === 4 ? "ipv4" : "ipv6";
  return { family, address, port, ip, local: LOCAL_NETWORKS.has(ip), spec: `${family === "ipv4" ? "inet" : "inet6"}:${port}@[${address}]` };
}

/** The client address of a connect command. */
export function clientAddressOf(cmd: ConnectCommand): SocketAddress {
  switch (cmd.family) {
    case "U":
      return UNKNOWN_ADDRESS;
    case "L":
      return { family: "unix", path: cmd.address, local: true, spec: `unix:${cmd.address}` };
    default:
      return inetAddress(cmd.address, cmd.port);
  }
}

/**
 * The address the MTA received the connection on, from its macros: Postfix's `{daemon_addr}` and
 * `{daemon_port}`, or Sendmail's `{if_addr}` and `{daemon_port}`. Unknown when neither is sent.
 */
export function serverAddressFrom(macro: (name: string) => string | undefined): SocketAddress {
  const text = macro("daemon_addr") ?? macro("if_addr");
  if (text === undefined) return UNKNOWN_ADDRESS;
  const port = Number(macro("daemon_port") ?? "0");
  return inetAddress(text, Number.isInteger(port) && port >= 0 && port <= 65535 ? port : 0);
}
