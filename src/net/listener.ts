// Listening sockets on a ConnectionSpec (TCP v4/v6 and unix), handing out FramedConnections.
// Unix socket files get milter-manager's treatment: stale files are reclaimed, live ones and
// non-sockets are refused, mode and group are applied, the parent directory is created
// (/run is a tmpfs, so /run/<daemon>/ disappears at every boot).
import { chmodSync, chownSync, linkSync, lstatSync, mkdirSync, readFileSync, renameSync, statSync, unlinkSync } from "node:fs";
import { dirname, resolve } from "node:path";
import type { SocketListener, SocketOptions } from "bun";
import { ConnectError, connect, resolveBunAddress } from "./connect.ts";
import { ConnectionError, connectionSocketHandlers, FramedConnection, type ConnectionOptions } from "./connection.ts";
import { formatSpec, type BunAddress, type ConnectionSpec, type UnixSpec } from "./spec.ts";

export class ListenError extends Error {
  constructor(readonly spec: ConnectionSpec, readonly code: string, detail: string, options?: { cause?: unknown }) {
    super(`cannot listen on ${formatSpec(spec)}: ${detail}`, options);
    this.name = "ListenError";
  }
}

export interface ListenOptions extends ConnectionOptions {
  /** Reclaim an existing unix socket file nobody listens on (milter-manager's remove_unix_socket_on_create). Default true. */
  removeOnCreate?: boolean;
  /** Remove the unix socket file on close() (remove_unix_socket_on_close). Default true. */
  removeOnClose?: boolean;
  /** Permissions of the unix socket file. Default 0o660. */
  mode?: number;
  /** Group of the unix socket file: name or gid (we must be root or a member). Default: unchanged. */
  group?: string | number;
  /** Create the socket's parent directory (mode 0755) when missing. Default true. */
  createDirectory?: boolean;
  /** TCP only: SO_REUSEPORT, so several processes can listen on the same port (the kernel spreads connections). */
  reusePort?: boolean;
}

export interface ListenHandlers {
  /** A new connection; set its handlers here (data that arrives earlier is held). Throwing destroys it. */
  connection(conn: FramedConnection): void;
}

export interface Listener {
  /** The spec actually bound: port 0 replaced by the kernel's choice. */
  readonly spec: ConnectionSpec;
  /** Bound TCP port; undefined for unix sockets. */
  readonly port: number | undefined;
  readonly connections: ReadonlySet<FramedConnection>;
  /**
   * Stop accepting. Without waitMs, open connections are left alone; with it, they get up to
   * waitMs to finish and are then destroyed (waitMs 0 = destroy now).
   */
  close(opts?: { waitMs?: number }): Promise<void>;
}

const PHRASES: Record<string, string> = {
  EADDRINUSE: "address already in use",
  EACCES: "permission denied",
  EPERM: "operation not permitted",
  EADDRNOTAVAIL: "address not available on this host",
  EINVAL: "invalid argument",
  ENOENT: "no such file or directory",
  ENOTDIR: "a parent of the socket path is not a directory",
  EROFS: "read-only file system",
};

export async function listen(spec: ConnectionSpec, handlers: ListenHandlers, opts: ListenOptions = {}): Promise<Listener> {
  const { removeOnCreate = true, removeOnClose = true, mode = 0o660, group, createDirectory = true, reusePort, ...connOpts } = opts;
  let address: BunAddress;
  if (spec.kind === "unix") {
    await prepareUnixPath(spec, removeOnCreate, createDirectory);
    address = { unix: spec.path };
  } else {
    try {
      address = await resolveBunAddress(spec, "listen");
    } catch (e) {
      throw new ListenError(spec, (e as { code?: string }).code ?? "ENOTFOUND", `cannot resolve host "${spec.host}"`, { cause: e });
    }
  }

  const connections = new Set<FramedConnection>();
  let server: SocketListener<FramedConnection | undefined>;
  // The umask makes the file appear with its final mode, so there is no moment with wider access.
  const oldMask = spec.kind === "unix" ? process.umask(~mode & 0o777) : undefined;
  try {
    const common: SocketOptions<FramedConnection | undefined> = {
      allowHalfOpen: true, // a peer's FIN is reported to the connection, not turned into a close by Bun
      data: undefined,
      socket: {
        ...connectionSocketHandlers,
        open(s) {
          const conn = new FramedConnection(s, spec, "accepted", connOpts);
          s.data = conn;
          connections.add(conn);
          void conn.closed.then(() => connections.delete(conn));
          try {
            handlers.connection(conn);
          } catch (e) {
            conn.destroy(new ConnectionError("receiver", conn.peer, `connection handler failed: ${(e as Error)?.message ?? e}`, { cause: e }));
          }
        },
      },
    };
    server = "unix" in address ? Bun.listen({ ...common, ...address }) : Bun.listen({ ...common, ...address, ...(reusePort ? { reusePort: true } : {}) });
  } catch (e) {
    const code = (e as { code?: string }).code ?? "EINVAL";
    const hint = code === "EINVAL" && spec.kind === "unix" ? " (socket path too long?)" : "";
    throw new ListenError(spec, code, (PHRASES[code] ?? (e as Error).message) + hint, { cause: e });
  } finally {
    if (oldMask !== undefined) process.umask(oldMask);
  }

  let inode = 0;
  if (spec.kind === "unix") {
    try {
      chmodSync(spec.path, mode); // in case the file system ignores the umask for sockets
      if (group !== undefined) chownSync(spec.path, statSync(spec.path).uid, resolveGroup(group, spec));
      inode = statSync(spec.path).ino;
    } catch (e) {
      server.stop(true);
      if (e instanceof ListenError) throw e;
      const code = (e as { code?: string }).code ?? "EPERM";
      throw new ListenError(spec, code, `cannot set mode/group of ${spec.path}: ${PHRASES[code] ?? (e as Error).message}`, { cause: e });
    }
  }

  const bound: ConnectionSpec = spec.kind === "unix" ? spec : { ...spec, port: (server as unknown as { port: number }).port };
  let stopped = false;
  return {
    spec: bound,
    port: bound.kind === "unix" ? undefined : bound.port,
    connections,
    async close({ waitMs }: { waitMs?: number } = {}) {
      if (!stopped) {
        stopped = true;
        stopServer(server, spec, removeOnClose, inode);
      }
      if (waitMs === undefined || connections.size === 0) return;
      let timer: Timer | undefined;
      await Promise.race([
        Promise.all([...connections].map((c) => c.closed)),
        new Promise((r) => (timer = setTimeout(r, waitMs))),
      ]);
      clearTimeout(timer);
      for (const c of connections) c.destroy();
    },
  };
}

/** Bun's stop() unlinks a unix socket file itself; keep a hard link across it when the file must stay. */
function stopServer(server: SocketListener<FramedConnection | undefined>, spec: ConnectionSpec, removeOnClose: boolean, inode: number): void {
  if (spec.kind !== "unix") return server.stop(false);
  const keep = `${spec.path}.keep-${process.pid}`;
  let kept = false;
  if (!removeOnClose) {
    try {
      linkSync(spec.path, keep);
      kept = true;
    } catch {} // the file goes away with stop(); nothing better to do
  }
  server.stop(false);
  if (kept) renameSync(keep, spec.path);
  else if (removeOnClose) {
    try {
      if (statSync(spec.path).ino === inode) unlinkSync(spec.path); // ours and still there
    } catch {}
  }
}

/** Make way for a unix socket at spec.path: create its directory, reclaim a stale socket, refuse anything else. */
export async function prepareUnixPath(spec: UnixSpec, removeOnCreate: boolean, createDirectory: boolean): Promise<void> {
  const path = spec.path;
  if (createDirectory) {
    try {
      mkdirSync(dirname(path), { recursive: true, mode: 0o755 });
    } catch (e) {
      const code = (e as { code?: string }).code ?? "EACCES";
      throw new ListenError(spec, code, `cannot create directory ${dirname(path)}: ${PHRASES[code] ?? (e as Error).message}`, { cause: e });
    }
  }
  let isSocket: boolean;
  try {
    isSocket = lstatSync(path).isSocket();
  } catch (e) {
    if ((e as { code?: string }).code === "ENOENT") return;
    throw new ListenError(spec, (e as { code?: string }).code ?? "EACCES", (e as Error).message, { cause: e });
  }
  if (!isSocket) throw new ListenError(spec, "ENOTSOCK", `${path} exists and is not a socket; refusing to remove it`);
  if (!removeOnCreate) throw new ListenError(spec, "EADDRINUSE", `${PHRASES.EADDRINUSE} (${path} exists and removeOnCreate is off)`);
  if (await unixPathInUse(spec)) throw new ListenError(spec, "EADDRINUSE", `${PHRASES.EADDRINUSE} (another process is listening on ${path})`);
  try {
    unlinkSync(path);
  } catch (e) {
    if ((e as { code?: string }).code !== "ENOENT") {
      const code = (e as { code?: string }).code ?? "EACCES";
      throw new ListenError(spec, code, `cannot remove stale socket ${path}: ${PHRASES[code] ?? (e as Error).message}`, { cause: e });
    }
  }
}

/** A socket file is live if a connect succeeds or hangs, or (full accept queue: Bun reports ECONNREFUSED) the kernel lists it as listening. */
async function unixPathInUse(spec: UnixSpec): Promise<boolean> {
  try {
    const probe = await connect(spec, { timeoutMs: 1000 });
    probe.destroy();
    return true;
  } catch (e) {
    if (!(e instanceof ConnectError)) throw e;
    if (e.kind === "timeout") return true;
    if (e.kind !== "refused") throw new ListenError(spec, e.code ?? "EINVAL", `cannot probe existing socket ${spec.path}: ${e.message}`, { cause: e });
  }
  return kernelListensOn(spec.path);
}

function kernelListensOn(path: string): boolean {
  let table: string;
  try {
    table = readFileSync("/proc/net/unix", "latin1");
  } catch {
    return false; // not Linux: the connect probe is all we have
  }
  const wanted = new Set([path, resolve(path)]);
  for (const line of table.split("\n").slice(1)) {
    const f = line.trim().split(/\s+/);
    const LISTENING = "00010000"; // __SO_ACCEPTCON in the Flags column
    if (f.length >= 8 && f[3] === LISTENING && wanted.has(f.slice(7).join(" "))) return true;
  }
  return false;
}

/** Group name or number → gid: /etc/group first, then `getent group` for NSS sources such as LDAP. */
export function resolveGroup(group: string | number, spec: ConnectionSpec): number {
  if (typeof group === "number") return group;
  if (/^[0-9]+$/.test(group)) return Number(group);
  try {
    for (const line of readFileSync("/etc/group", "latin1").split("\n")) {
      const [name, , gid] = line.split(":");
      if (name === group && gid !== undefined) return Number(gid);
    }
  } catch {}
  try {
    const r = Bun.spawnSync(["getent", "group", group], { stdout: "pipe", stderr: "ignore" });
    const gid = r.success ? r.stdout.toString("latin1").split(":")[2] : undefined;
    if (gid && /^[0-9]+$/.test(gid)) return Number(gid);
  } catch {}
  throw new ListenError(spec, "EINVAL", `unknown group "${group}"`);
}
