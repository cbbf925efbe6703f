// Outgoing connections with a real timeout: Bun.connect has none, and a SYN to a peer whose accept
// queue is full is silently dropped, so without our timer a connect can hang for minutes.
import type { Socket, SocketOptions } from "bun";
import { lookup } from "node:dns/promises";
import { isIP } from "node:net";
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

export function connect(spec: ConnectionSpec, opts: ConnectOptions): Promise<FramedConnection> {
  const { timeoutMs } = opts;
  const connOpts: ConnectionOptions = { highWaterMark: opts.highWaterMark, maxQueued: opts.maxQueued, writeTimeoutMs: opts.writeTimeoutMs, handlers: opts.handlers, quickAck: opts.quickAck };
  // One promise settled by whichever comes first: the connection, its failure, or our timer.
  // (A manager opens a connection per child per MTA session: keep this path lean.)
  return new Promise<FramedConnection>((resolve, reject) => {
    let done = false;
    const timer = setTimeout(() => {
      done = true;
      reject(new ConnectError(spec, "timeout", "ETIMEDOUT", `timed out after ${timeoutMs} ms`));
    }, timeoutMs);
    const fail = (e: unknown) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      reject(e instanceof ConnectError ? e : toConnectError(spec, e));
    };
    const start = (address: BunAddress) => {
      if (done) return;
      const socket: SocketOptions<FramedConnection | undefined>["socket"] = {
        ...connectionSocketHandlers,
        open(s) {
          if (done) return s.terminate(); // too late: the caller already got a timeout
          s.data = new FramedConnection(s, spec, "outgoing", connOpts);
        },
      };
      // allowHalfOpen: we decide what a peer's FIN means (see FramedConnection end handling)
      let connecting: Promise<Socket<FramedConnection | undefined>>;
      try {
        connecting = "unix" in address
          ? Bun.connect({ unix: address.unix, allowHalfOpen: true, data: undefined, socket })
          : Bun.connect({ hostname: address.hostname, port: address.port, allowHalfOpen: true, data: undefined, socket });
      } catch (e) {
        return fail(e);
      }
      connecting.then((s) => {
        if (done) return void s.data?.destroy();
        done = true;
        clearTimeout(timer);
        resolve(s.data!);
      }, fail);
    };
    let address: BunAddress;
    try {
      address = toBunAddress(spec, "connect");
    } catch (e) {
      return fail(e);
    }
    if ("hostname" in address && !isIP(address.hostname)) resolveBunAddress(spec, "connect").then(start, fail);
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
  if (!("hostname" in address) || isIP(address.hostname)) return address;
  const found = await lookup(address.hostname, { family: spec.kind === "inet6" ? 6 : 4 });
  return { hostname: found.address, port: address.port };
}
