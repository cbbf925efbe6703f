/**
 * Ports and sockets for the end-to-end harness: free loopback ports, and
 * waiting until a server listens.
 *
 * Readiness is read from /proc/net/{tcp,tcp6,unix} instead of a test
 * connection, so that no empty session reaches a milter or smtpd (which would
 * log "lost connection" noise or, for a milter, an aborted negotiation).
 */
import * as fs from "node:fs";
import { isAlive, sleep, StartupError, tailFile } from "./proc.ts";

/**
 * The ports freePort hands out: below the kernel's ephemeral range
 * (net.ipv4.ip_local_port_range, 32768-60999 by default), which it picks from
 * for every outgoing connection and every bind to port 0. A port taken from
 * that range can be used by someone's outgoing connection (Postfix's smtp
 * client, a test's own connect) before our server binds it; a port below the
 * range can only be taken by an explicit bind.
 */
function portPool(): [number, number] {
  let lo = 32768;
  let hi = 60999;
  try {
    [lo, hi] = fs.readFileSync("/proc/sys/net/ipv4/ip_local_port_range", "latin1").trim().split(/\s+/).map(Number);
  } catch {}
  if (lo - 1 >= 12_000) return [Math.max(10_000, lo - 12_000), lo - 1];
  if (hi + 1 <= 65_535 - 4_000) return [hi + 1, 65_535];
  return [0, 0]; // no room outside the ephemeral range: let the kernel choose
}

let inUse = { at: 0, ports: new Set<number>() };

/**
 * Local TCP ports in use on any address and in any state (listening, connected,
 * TIME_WAIT), read at most once a second: the read costs ~10 ms with a few
 * thousand sockets, and a port taken since is still caught by canBind.
 */
function portsInUse(): Set<number> {
  if (Date.now() - inUse.at < 1000) return inUse.ports;
  const used = new Set<number>();
  for (const cols of tcpSockets() ?? []) {
    const local = cols[1];
    if (local) used.add(parseInt(local.slice(local.lastIndexOf(":") + 1), 16));
  }
  inUse = { at: Date.now(), ports: used };
  return used;
}

function canBind(host: string, port: number): boolean {
  try {
    Bun.listen({ hostname: host, port, socket: { data() {} } }).stop(true);
    return true;
  } catch {
    return false;
  }
}

const pool = portPool();
// where this process starts in the pool: apart from other test processes on the same machine
let nextPort = pool[0] + ((process.pid * 7_919 + Math.floor(Math.random() * 1_000)) % Math.max(1, pool[1] - pool[0] + 1));
const handedOut = new Set<number>();

/**
 * A loopback port nothing uses now and that this process has not handed out
 * before, outside the kernel's ephemeral range (see portPool). Synchronous;
 * callers may still `await` it.
 */
export function freePort(host = "127.0.0.1"): number {
  const [lo, hi] = pool;
  if (lo === 0) {
    const srv = Bun.listen({ hostname: host, port: 0, socket: { data() {} } });
    const port = srv.port;
    srv.stop(true);
    return port;
  }
  const size = hi - lo + 1;
  const used = portsInUse();
  for (let i = 0; i < size; i++) {
    const port = lo + ((nextPort - lo + i) % size);
    if (handedOut.has(port) || used.has(port) || !canBind(host, port)) continue;
    nextPort = port + 1;
    handedOut.add(port);
    return port;
  }
  // every port of the pool was handed out once in this process: start over
  handedOut.clear();
  for (let i = 0; i < size; i++) {
    const port = lo + i;
    if (!used.has(port) && canBind(host, port)) {
      handedOut.add(port);
      return port;
    }
  }
  throw new Error(`freePort: no free port in ${lo}-${hi}`);
}

/** `freePort` for several distinct ports. */
export function freePorts(n: number, host = "127.0.0.1"): number[] {
  return Array.from({ length: n }, () => freePort(host));
}

/** /proc/net hex form of an address: 32-bit words in host (little-endian) byte order. */
function procHex(host: string): string[] {
  const h = host.replace(/^\[|\]$/g, "");
  if (/^\d+\.\d+\.\d+\.\d+$/.test(h)) {
    const b = h.split(".").map((x) => Number(x).toString(16).padStart(2, "0").toUpperCase());
    return [b.reverse().join(""), "00000000"];
  }
  // IPv6: expand "::"
  const [head, tail] = h.includes("::") ? h.split("::") : [h, undefined];
  const hs = head ? head.split(":") : [];
  const ts = tail !== undefined && tail !== "" ? tail.split(":") : [];
  const groups = tail === undefined ? hs : [...hs, ...Array(8 - hs.length - ts.length).fill("0"), ...ts];
  const bytes = groups.flatMap((g) => {
    const v = parseInt(g || "0", 16);
    return [(v >> 8) & 0xff, v & 0xff];
  });
  let hex = "";
  for (let w = 0; w < 4; w++) {
    for (let i = 3; i >= 0; i--) hex += bytes[w * 4 + i].toString(16).padStart(2, "0").toUpperCase();
  }
  return [hex, "0".repeat(32)];
}

/**
 * Does something listen on host:port (TCP)? Reads /proc/net/tcp and tcp6; a
 * wildcard listener (0.0.0.0 / ::) counts. Returns null if /proc is unreadable.
 */
export function isListening(host: string, port: number): boolean | null {
  const [exact, wildcard] = procHex(host);
  const portHex = port.toString(16).toUpperCase().padStart(4, "0");
  const rows = tcpSockets();
  if (rows === null) return null;
  for (const cols of rows) {
    if (cols.length < 4 || cols[3] !== "0A") continue; // 0A = LISTEN
    const [addr, p] = cols[1].split(":");
    if (p !== portHex) continue;
    if (addr === exact || addr === wildcard || (wildcard.length === 8 && addr === "0".repeat(32))) return true;
  }
  return false;
}

/** The rows of /proc/net/tcp and tcp6 as columns (local address is [1], state [3]); null if neither is readable. */
function tcpSockets(): string[][] | null {
  const rows: string[][] = [];
  let readAny = false;
  for (const f of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    let text: string;
    try {
      text = fs.readFileSync(f, "latin1");
    } catch {
      continue;
    }
    readAny = true;
    for (const line of text.split("\n").slice(1)) if (line.trim()) rows.push(line.trim().split(/\s+/));
  }
  return readAny ? rows : null;
}

/** Is a listening Unix socket bound at `path`? (/proc/net/unix, flag __SO_ACCEPTCON) */
export function isListeningUnix(path: string): boolean {
  try {
    if (!fs.lstatSync(path).isSocket()) return false;
  } catch {
    return false;
  }
  let text: string;
  try {
    text = fs.readFileSync("/proc/net/unix", "latin1");
  } catch {
    return true; // the socket file exists; cannot check more
  }
  for (const line of text.split("\n").slice(1)) {
    const cols = line.trim().split(/\s+/);
    if (cols.length >= 8 && cols.slice(7).join(" ") === path && (parseInt(cols[3], 16) & 0x10000) !== 0) return true;
  }
  return false;
}

async function connectProbe(host: string, port: number): Promise<boolean> {
  try {
    const s = await Bun.connect({ hostname: host.replace(/^\[|\]$/g, ""), port, socket: { data() {} } });
    s.end();
    return true;
  } catch {
    return false;
  }
}

export interface WaitOptions {
  /** fail fast (with its log) if this process exits before the port is ready */
  pid?: number;
  logFile?: string;
  what?: string;
}

/** Wait until a TCP server listens on host:port; throws StartupError after `timeoutMs`. */
export async function waitForPort(host: string, port: number, timeoutMs = 10_000, opts: WaitOptions = {}): Promise<void> {
  const what = opts.what ?? `listener on ${host}:${port}`;
  const end = Date.now() + timeoutMs;
  for (;;) {
    const l = isListening(host, port);
    if (l === true || (l === null && (await connectProbe(host, port)))) return;
    if (opts.pid !== undefined && !isAlive(opts.pid)) {
      throw new StartupError(what, `process ${opts.pid} exited before listening on ${host}:${port}`, opts.logFile ? tailFile(opts.logFile) : "");
    }
    if (Date.now() >= end) {
      throw new StartupError(what, `nothing listens on ${host}:${port} after ${timeoutMs} ms`, opts.logFile ? tailFile(opts.logFile) : "");
    }
    await sleep(20);
  }
}

/** Wait until a server listens on the Unix socket `path`; throws StartupError after `timeoutMs`. */
export async function waitForUnix(path: string, timeoutMs = 10_000, opts: WaitOptions = {}): Promise<void> {
  const what = opts.what ?? `listener on unix:${path}`;
  const end = Date.now() + timeoutMs;
  for (;;) {
    if (isListeningUnix(path)) return;
    if (opts.pid !== undefined && !isAlive(opts.pid)) {
      throw new StartupError(what, `process ${opts.pid} exited before listening on ${path}`, opts.logFile ? tailFile(opts.logFile) : "");
    }
    if (Date.now() >= end) {
      throw new StartupError(what, `no listening socket at ${path} after ${timeoutMs} ms`, opts.logFile ? tailFile(opts.logFile) : "");
    }
    await sleep(20);
  }
}

/** Wait until nothing listens on host:port any more (after a stop). */
export async function waitForPortClosed(host: string, port: number, timeoutMs = 10_000): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (isListening(host, port) === false) return true;
    await sleep(20);
  }
  return false;
}
