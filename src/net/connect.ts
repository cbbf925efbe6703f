// Outgoing connections with a real timeout: Bun.connect has none, and a SYN to a peer whose accept
// queue is full is silently dropped, so without our timer a connect can hang for minutes.
import type { Socket, SocketOptions } from "bun";
import { lookup } from "node:dns/promises";
import { ipFamily } from "./ip.ts";
import { connectionSocketHandlers, FramedConnection, type ConnectionOptions } from "./connection.ts";
import { formatSpec, toBunAddress, type BunAddress, type ConnectionSpec } from "./spec.ts";

export type ConnectErrorKind = "timeout" | "refused" | "not-found" | "permission" | "unreachable" | "resolve" | "other";

export class ConnectError extends Error {
  constructor(readonly spec: ConnectionSpec, readonly kind: ConnectErrorKind, readonly code: string | undefined, detail: string, options?: { cause?: unknown }) {
    super(`cannot connect to ${formatSpec(spec)}: ${detail}`, options);
    this.name = "ConnectError";
  }
}

export interface ConnectOptions extends ConnectionOptions {
  /** Covers name resolution and the TCP/unix connect. */
  timeoutMs: number;
}

const KINDS: Record<string, [ConnectErrorKind, string]> = {
  ECONNREFUSED: ["refused", "connection refused"],
  ENOENT: ["not-found", "no such socket file"],
  ENOTDIR: ["not-found", "no such socket file"],
  EACCES: ["permission", "permission denied"],
  EPERM: ["permission", "operation not permitted"],
  EHOSTUNREACH: ["unreachable", "host unreachable"],
  ENETUNREACH: ["unreachable", "network unreachable"],
  EADDRNOTAVAIL: ["unreachable", "address not available"],
  ECONNRESET: ["refused", "connection reset"],
};

/** A connection being made: what its socket's open handler needs (the socket's data until then). */
interface Attempt {
  spec: ConnectionSpec;
  options: ConnectionOptions;
  /** The caller got its answer already (timeout): a socket that opens now is closed. */
  done: boolean;
}

// One handler object for every outgoing socket (Bun makes its native handler context per object):
// what differs per connection travels in the socket's data, replaced by the FramedConnection.
type Outgoing = Socket<FramedConnection | Attempt>;
const outgoingHandlers: SocketOptions<FramedConnection | Attempt>["socket"] = {
  open(s) {
    const a = s.data as Attempt;
    if (a.done) return s.terminate(); // too late: the caller already got a timeout
    s.data = new FramedConnection(s, a.spec, "outgoing", a.options);
  },
  // Data, drain and end come only after open; close and error may come before it.
  data: connectionSocketHandlers.data as (s: Outgoing, chunk: Buffer) => void,
  drain: connectionSocketHandlers.drain as (s: Outgoing) => void,
  end: connectionSocketHandlers.end as (s: Outgoing) => void,
  close(s, error) {
    if (s.data instanceof FramedConnection) s.data.onSocketClose(error);
  },
  error(s, error) {
    if (s.data instanceof FramedConnection) connectionSocketHandlers.error!(s as Socket<FramedConnection>, error);
  },
};

export function connect(spec: ConnectionSpec, opts: ConnectOptions): Promise<FramedConnection> {
  const { timeoutMs } = opts;
  const attempt: Attempt = {
    spec,
    options: { highWaterMark: opts.highWaterMark, maxQueued: opts.maxQueued, writeTimeoutMs: opts.writeTimeoutMs, handlers: opts.handlers, quickAck: opts.quickAck },
    done: false,
  };
  // One promise settled by whichever comes first: the connection, its failure, or our timer.
  // (A manager opens a connection per child per MTA session: keep this path lean.)
  return new Promise<FramedConnection>((resolve, reject) => {
    const timer = setTimeout(() => {
      attempt.done = true;
      reject(new ConnectError(spec, "timeout", "ETIMEDOUT", `timed out after ${timeoutMs} ms`));
    }, timeoutMs);
    const fail = (e: unknown) => {
      if (attempt.done) return;
      attempt.done = true;
      clearTimeout(timer);
      reject(e instanceof ConnectError ? e : toConnectError(spec, e));
    };
    const start = (address: BunAddress) => {
      if (attempt.done) return;
      // allowHalfOpen: we decide what a peer's FIN means (see FramedConnection end handling)
      let connecting: Promise<Outgoing>;
      try {
        connecting = "unix" in address
          ? Bun.connect({ unix: address.unix, allowHalfOpen: true, data: attempt, socket: outgoingHandlers })
          : Bun.connect({ hostname: address.hostname, port: address.port, allowHalfOpen: true, data: attempt, socket: outgoingHandlers });
      } catch (e) {
        return fail(e);
      }
      connecting.then((s) => {
        const conn = s.data instanceof FramedConnection ? s.data : undefined;
        if (attempt.done) return void conn?.destroy();
        attempt.done = true;
        clearTimeout(timer);
        resolve(conn!);
      }, fail);
    };
    let address: BunAddress;
    try {
      address = toBunAddress(spec, "connect");
    } catch (e) {
      return fail(e);
    }
    if ("hostname" in address && !ipFamily(address.hostname)) resolveBunAddress(spec, "connect").then(start, fail);
    else start(address);
  });
}

function toConnectError(spec: ConnectionSpec, e: unknown): ConnectError {
  const code = (e as { code?: string })?.code;
  const known = code ? KINDS[code] : undefined;
  if (known) return new ConnectError(spec, known[0], code, known[1], { cause: e });
  if (code === "ENOTFOUND" || code === "EAI_AGAIN") return new ConnectError(spec, "resolve", code, `cannot resolve host (${code})`, { cause: e });
  return new ConnectError(spec, "other", code, (e as Error)?.message ?? String(e), { cause: e });
}

/**
 * toBunAddress plus name resolution restricted to the spec's family (inet = IPv4, inet6 = IPv6),
 * as milter-manager does; Bun alone would take whatever family the resolver returns first.
 * Rejects with the resolver's error (code ENOTFOUND …).
 */
export async function resolveBunAddress(spec: ConnectionSpec, role: "listen" | "connect"): Promise<BunAddress> {
  const address = toBunAddress(spec, role);
  if (!("hostname" in address) || ipFamily(address.hostname)) return address;
  const found = await lookup(address.hostname, { family: spec.kind === "inet6" ? 6 : 4 });
  return { hostname: found.address, port: address.port };
}
