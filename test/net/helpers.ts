// Shared helpers for the socket-layer tests.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect } from "../../src/net/connect.ts";
import type { ConnectionOptions, FramedConnection } from "../../src/net/connection.ts";
import { listen, type Listener } from "../../src/net/listener.ts";
import type { ConnectionSpec, Inet6Spec, InetSpec, UnixSpec } from "../../src/net/spec.ts";

export function tempDir(): { path: string; remove(): void } {
  const path = mkdtempSync(join(tmpdir(), "mk-net-"));
  return { path, remove: () => rmSync(path, { recursive: true, force: true }) };
}

/** Fails instead of hanging: every wait in these tests has an upper bound. */
export async function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: Timer | undefined;
  try {
    return await Promise.race([p, new Promise<never>((_, rej) => (timer = setTimeout(() => rej(new Error(`${what}: nothing after ${ms} ms`)), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

export type Pair = { listener: Listener; server: FramedConnection; client: FramedConnection; close(): Promise<void> };

/** A listener on `spec` plus one connection to it; both ends are FramedConnections. */
export async function pair(spec: ConnectionSpec, serverOpts: ConnectionOptions = {}, clientOpts: ConnectionOptions = {}): Promise<Pair> {
  let accepted!: (c: FramedConnection) => void;
  const got = new Promise<FramedConnection>((r) => (accepted = r));
  const listener = await listen(spec, { connection: accepted }, serverOpts);
  const client = await connect(listener.spec, { timeoutMs: 5000, ...clientOpts });
  const server = await within(got, 5000, "accept");
  return {
    listener,
    server,
    client,
    async close() {
      client.destroy();
      await listener.close({ waitMs: 0 });
    },
  };
}

export const tcp4: InetSpec = { kind: "inet", port: 0, host: "127.0.0.1", scheme: "inet" };
export const tcp6: Inet6Spec = { kind: "inet6", port: 0, host: "::1", scheme: "inet6" };
export const unixIn = (dir: string, name = "t.sock"): UnixSpec => ({ kind: "unix", path: join(dir, name), scheme: "unix" });
