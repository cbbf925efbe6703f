// Listening sockets on a ConnectionSpec (TCP v4/v6 and unix), handing out FramedConnections.
// Unix socket files get milter-manager's treatment: stale files are reclaimed, live ones and
// non-sockets are refused, mode and group are applied, the parent directory is created
// (/run is a tmpfs, so /run/<daemon>/ disappears at every boot); at close the file is removed
// only while it is still the one we bound. Accepting pauses while descriptors run out.
import { lstatSync, mkdirSync, readFileSync, unlinkSync } from "node:fs";
import { dirname, resolve } from "node:path";
import type { SocketListener, SocketOptions } from "bun";
import { adjustOwnFile, type FileIdentity, removeIfOurs } from "../fs/own-files.ts";
import { ConnectError, connect, resolveBunAddress } from "./connect.ts";
import { closeDescriptor, descriptorLimit, duplicate, freeDescriptors, listenUnix } from "./descriptors.ts";
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
  /** Accepting stopped: fewer than `reserve` descriptors are free (one log line's worth). */
  onAcceptPaused?(free: number, reserve: number): void;
  /** Accepting again after a pause. */
  onAcceptResumed?(free: number): void;
  /** Longest delay between two looks at the free descriptors while paused. Default 5000 ms. */
  acceptRetryMaxMs?: number;
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
  const {
    removeOnCreate = true, removeOnClose = true, mode = 0o660, group, createDirectory = true, reusePort,
    onAcceptPaused, onAcceptResumed, acceptRetryMaxMs = 5000, ...connOpts
  } = opts;
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
        if (--watch.estimate < 2 * watch.reserve) watch.check(); // near the limit: look at every accept
        try {
          handlers.connection(conn);
        } catch (e) {
          conn.destroy(new ConnectionError("receiver", conn.peer, `connection handler failed: ${(e as Error)?.message ?? e}`, { cause: e }));
        }
      },
    },
  };

  // `own` is our descriptor of the listening socket; Bun gets a duplicate, so its listener can be
  // stopped (to stop accepting) without losing the socket or the connections queued on it.
  let own: number;
  let server: SocketListener<FramedConnection | undefined> | undefined;
  let identity: FileIdentity | undefined;
  if ("unix" in address) {
    // Made by us, not by Bun.listen({ unix }): Bun's stop() would unlink whatever is at the path
    // then. The umask makes the file appear with its final mode, so it is never more open.
    const oldMask = process.umask(~mode & 0o777);
    try {
      own = listenUnix(address.unix);
    } catch (e) {
      const code = (e as { code?: string }).code ?? "EINVAL";
      const hint = code === "EINVAL" || code === "ENAMETOOLONG" ? " (socket path too long?)" : "";
      throw new ListenError(spec, code, (PHRASES[code] ?? (e as Error).message) + hint, { cause: e });
    } finally {
      process.umask(oldMask);
    }
    try {
      // Through a descriptor of the file we just bound, never by name: the directory may be
      // writable by someone who swaps the name for a link to another file (own-files.ts).
      identity = adjustOwnFile(address.unix, { kind: "socket", mode, gid: group === undefined ? undefined : resolveGroup(group, spec) });
    } catch (e) {
      closeDescriptor(own);
      unlinkQuietly(address.unix); // nothing was set on it (still ours), or not ours to keep
      if (e instanceof ListenError) throw e;
      const code = (e as { code?: string }).code ?? "EPERM";
      throw new ListenError(spec, code, `cannot set mode/group of ${address.unix}: ${PHRASES[code] ?? (e as Error).message}`, { cause: e });
    }
    try {
      server = Bun.listen({ ...common, fd: duplicate(own) } as unknown as Parameters<typeof Bun.listen>[0]) as SocketListener<FramedConnection | undefined>;
    } catch (e) {
      closeDescriptor(own);
      removeIfOurs(address.unix, identity);
      throw new ListenError(spec, (e as { code?: string }).code ?? "EINVAL", (e as Error).message, { cause: e });
    }
  } else {
    try {
      server = Bun.listen({ ...common, ...address, ...(reusePort ? { reusePort: true } : {}) });
    } catch (e) {
      const code = (e as { code?: string }).code ?? "EINVAL";
      throw new ListenError(spec, code, PHRASES[code] ?? (e as Error).message, { cause: e });
    }
    own = duplicate((server as unknown as { fd: number }).fd);
  }

  const bound: ConnectionSpec = spec.kind === "unix" ? spec : { ...spec, port: (server as unknown as { port: number }).port };
  let stopped = false;

  // Out of descriptors, accept() fails at once and Bun's loop would call it again at once (100 %
  // CPU, nothing logged). Watch the free descriptors; below a reserve, stop Bun's listener (the
  // kernel keeps queueing connections on our descriptor) and look again with a growing delay.
  const watch = {
    paused: false,
    delay: 0,
    timer: undefined as Timer | undefined,
    /** Free descriptors when last looked at, minus the connections accepted since. */
    estimate: Infinity,
    reserve: 0,
    check(): void {
      if (stopped) return;
      const free = freeDescriptors();
      const reserve = descriptorReserve();
      this.estimate = free;
      this.reserve = reserve;
      if (!this.paused) {
        if (free >= reserve) {
          // Look again in a second: descriptors also go to what is not accepted here (the
          // manager's child connections), which the estimate does not count.
          this.schedule(WATCH_MS);
          return;
        }
        this.paused = true;
        server?.stop(false);
        server = undefined;
        this.delay = 100;
        onAcceptPaused?.(free, reserve);
      } else if (free >= 2 * reserve) {
        try {
          server = Bun.listen({ ...common, fd: duplicate(own) } as unknown as Parameters<typeof Bun.listen>[0]) as SocketListener<FramedConnection | undefined>;
        } catch {
          server = undefined; // still short of descriptors: look again later
        }
        if (server) {
          this.paused = false;
          onAcceptResumed?.(free);
          this.schedule(WATCH_MS);
          return;
        }
      }
      this.delay = Math.min(this.delay * 2, Math.max(100, acceptRetryMaxMs));
      this.schedule(this.delay);
    },
    schedule(ms: number): void {
      clearTimeout(this.timer);
      this.timer = setTimeout(() => this.check(), ms);
      if (!this.paused) this.timer.unref?.(); // while paused, this timer is what keeps the server alive
    },
  };
  watch.check();

  return {
    spec: bound,
    port: bound.kind === "unix" ? undefined : bound.port,
    connections,
    async close({ waitMs }: { waitMs?: number } = {}) {
      if (!stopped) {
        stopped = true;
        clearTimeout(watch.timer);
        server?.stop(false);
        server = undefined;
        closeDescriptor(own);
        // Only the socket we bound, and only if it is still there: not what replaced it meanwhile.
        if (identity && removeOnClose && spec.kind === "unix") removeIfOurs(spec.path, identity);
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

function unlinkQuietly(path: string): void {
  try {
    if (lstatSync(path).isSocket()) unlinkSync(path);
  } catch {}
}

/** How often the free descriptors are looked at while accepting (also at every accept near the limit). */
const WATCH_MS = 1000;

/** Descriptors kept free: a session accepted just before needs a few more (its children, a spill file). */
function descriptorReserve(): number {
  const limit = descriptorLimit();
  return Number.isFinite(limit) ? Math.max(8, Math.min(64, Math.floor(limit / 16))) : 0;
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
