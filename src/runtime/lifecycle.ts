/**
 * The life of a service process, one order for milter-manager, milter-test-client and smtp-sink:
 *
 *   detach      --daemon: re-execute detached (daemon.ts); the starting process exits 0 once the
 *               child is ready, 1 with the child's one-line reason otherwise
 *   log         open the log; a new file is handed to the user we become (so SIGUSR1 can reopen
 *               it after the drop), a missing directory created if asked
 *   signals     installed before anything listens, so one that arrives during start-up is not
 *               lost: a stop then waits for start-up to end
 *   prepare     the tool's own start-up (limits, refusals); also in a worker supervisor
 *   workers     n workers on TCP: a supervisor that accepts nothing runs n copies of this program
 *               sharing the port (workers.ts), passes SIGHUP/SIGUSR1 on to them
 *   listen      the tool listens (mode and group of a unix socket are the listener's business)
 *   socket      a unix socket is handed to the user we become (its group stays)
 *   pid file    written (directory created) and handed to the user we become; not in a worker
 *   checks      what the user we become will not be able to do
 *   privileges  root drops to the user (runtime/privilege.ts)
 *   ready       "listening on …", then every notifier (the waiting parent; systemd's
 *               $NOTIFY_SOCKET: READY=1, RELOADING=1/READY=1 around a reload, STOPPING=1)
 *   running     SIGHUP: reload (notifiers hear reloading, then ready), then the workers;
 *               SIGUSR1: reopen the log, then the workers
 *   stop        SIGTERM/SIGINT (a worker: SIGUSR2 from its supervisor): notifiers hear stopping,
 *               workers stop, sessions in flight get graceMs, the pid file goes, exit 0; a second
 *               signal, or hardExitMs, exits 1 at once (signals.ts)
 *
 * A start-up failure is one line: on stderr, to the waiting parent, and (logFailures) to the log;
 * everything started so far is closed again and runService resolves to 1.
 */
import { existsSync, mkdirSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { ListenError } from "../net/listener.ts";
import { type ConnectionSpec, formatSpec, parseSpec, SpecError } from "../net/spec.ts";
import { adjustOwnFile, type FileIdentity } from "../fs/own-files.ts";
import { detach, isDaemonChild, notifyFailure, notifyReady, PidFileError, removePidFile, writePidFile } from "./daemon.ts";
import { humanOutput } from "./human.ts";
import { LimitError } from "./limits.ts";
import { LEVEL_NONE, Logger, type LogLevel } from "./log.ts";
import { dropPrivileges, isRoot, lookupGroup, lookupUser, PrivilegeError } from "./privilege.ts";
import { systemdNotifier } from "./sd-notify.ts";
import { forwardSignal, type InstalledSignals, installSignals } from "./signals.ts";
import { probeAddress, watchSupervisor, WORKER_SPEC_ENV, WorkerPool, workerIndex, workersSupported } from "./workers.ts";

/** A start-up failure: one line for the administrator. */
export class StartError extends Error {
  override readonly name = "StartError";
}

/** Errors that end start-up with their message as the one line (others are bugs and propagate). */
const START_ERRORS = [StartError, PrivilegeError, PidFileError, LimitError, ListenError, SpecError];

export interface Identity {
  user?: string;
  group?: string;
}

export interface Owner {
  uid: number;
  gid: number;
}

/** What the tool's listen step returns. */
export interface Listening {
  /** The unix socket's path (handed to the user we become), undefined for TCP. */
  readonly socketPath?: string;
  /** Stop accepting; sessions in flight get up to waitMs. */
  close(opts: { waitMs: number }): Promise<void>;
}

/**
 * Who hears about readiness, reloads and the stop: the waiting parent (daemon starter or worker
 * supervisor) and, when $NOTIFY_SOCKET is set, systemd (sd-notify.ts; not from a worker).
 */
export interface Notifier {
  ready(): void;
  failed(reason: string): void;
  reloading?(): void;
  stopping?(): void;
}

/** The waiting parent on fd 3 (daemon.ts): READY once, or FAIL with the reason. */
export const PARENT_NOTIFIER: Notifier = { ready: notifyReady, failed: notifyFailure };

/** What the hooks see. */
export interface ServiceContext<L extends Listening = Listening> {
  readonly log: Logger;
  /** Our worker number, undefined when we are not a worker. */
  readonly worker: number | undefined;
  /** The user and group we become (root only; otherwise empty). */
  readonly identity: Identity;
  /** uid/gid files must get so that user can reopen or remove them; undefined: nothing to hand over. */
  readonly owner: Owner | undefined;
  /** What listen returned, once it did. */
  readonly listening: L | undefined;
  say(level: LogLevel, text: string): void;
  /** Reopen the log file (rotation); a file this creates is handed to the user we become. */
  reopenLog(): void;
  /** A start-up fact at lineLevel (to the terminal when the log leaves it out and terminalFallback). */
  announce(text: string): void;
}

export interface ServiceOptions<L extends Listening> {
  prog: string;
  /** Detach into the background (--daemon, manager.daemon). */
  daemon?: boolean;
  /** Open the log; a new `logPath` file is handed to the user we become. None: no log, SIGUSR1 not caught. */
  openLog?: () => Logger;
  logPath?: string;
  /** Create a missing directory of `logPath` (the manager: a tmpfs /run/<name>/ is gone at boot). */
  createLogDirectory?: boolean;
  /** What was asked for (-u/-g, security.effective_*); only root switches. */
  identity: Identity;
  /** The user root becomes when none is asked for (milter-manager and its tools: nobody). */
  rootBecomes?: string;
  /** Where to listen, a text is parsed (port 0 allowed); needed for workers. None: listen knows. */
  spec?: ConnectionSpec | string;
  /** Worker processes sharing a TCP port; `option` names the setting in the unix-socket warning. */
  workers?: { n: number; option: string };
  pidFile?: string;
  /** How long sessions in flight may take to finish after a stop signal. */
  graceMs: number;
  /** Bound on the whole stop (default graceMs + 5 s); then exit 1. */
  hardExitMs?: number;
  /** Level of the lifecycle's own lines (listening, signals, stopped). Default "message". */
  lineLevel?: "message" | "info";
  /** The start-up lines go to the terminal when the log leaves them out (the manager). */
  terminalFallback?: boolean;
  /** Start-up failures are logged too (always: stderr and the waiting parent). */
  logFailures?: boolean;
  /** How a start-up failure reaches stderr (default `prog: reason`). */
  printFailure?: (reason: string) => void;
  notifiers?: Notifier[];

  /** After log and signals, before workers (runs in a supervisor too). Throw StartError to fail. */
  prepare?: (ctx: ServiceContext<L>) => void | Promise<void>;
  /** In the serving process, just before listening (e.g. a launcher that must start as root). */
  beforeListen?: (ctx: ServiceContext<L>) => void | Promise<void>;
  /** `spec`: the option's, or the one a worker's supervisor gives; reusePort: we are a worker. */
  listen: (o: { spec: ConnectionSpec | undefined; reusePort: boolean }, ctx: ServiceContext<L>) => Promise<L>;
  /** Checks run as root before the privilege drop: each returns problems (logged as warnings). */
  checks?: ((ctx: ServiceContext<L>) => string[])[];
  /** The ready line ("listening on …"); undefined prints nothing. */
  readyLine?: (ctx: ServiceContext<L>, where: string) => string | undefined;
  /** SIGHUP in the serving process or supervisor (then the workers get it). None: SIGHUP not caught. */
  reload?: (ctx: ServiceContext<L>) => void | Promise<void>;
  /** First thing of a stop (e.g. stop admitting waiting sessions). */
  stopping?: (ctx: ServiceContext<L>) => void;
  /** After the listener closed (e.g. close the launcher, drain output). */
  stopped?: (ctx: ServiceContext<L>) => void | Promise<void>;
  /** Also on a failed start-up, for what beforeListen started. */
  cleanup?: (ctx: ServiceContext<L>) => void | Promise<void>;
}

export interface RunningService {
  /** Start the graceful stop as if SIGTERM arrived (it never counts as the second signal). */
  stop(): void;
}

/** Who we become: the asked user, or `rootBecomes` as root; nothing when not root. */
export function effectiveIdentity(asked: Identity, rootBecomes: string | undefined, root = isRoot()): Identity {
  if (!root) return {};
  return { user: asked.user ?? rootBecomes, group: asked.group };
}

function ownerOf(identity: Identity): Owner | undefined {
  if (!isRoot() || identity.user === undefined) return undefined;
  const u = lookupUser(identity.user);
  return { uid: u.uid, gid: identity.group !== undefined ? lookupGroup(identity.group) : u.gid };
}

/**
 * Create `dir` if missing (a tmpfs /run loses /run/<name>/ at boot). What we create belongs to root,
 * with `owner`'s group allowed to write and the sticky bit (01775): the user we become can make and
 * remove its own files there (a new log file, its socket and pid file once handed to it), but cannot
 * rename or replace entries it does not own — such as the socket right after bind, while root still
 * sets its owner and mode.
 */
export function ensureDirectory(dir: string, owner: Owner | undefined): void {
  if (existsSync(dir)) return;
  let first: string | undefined;
  try {
    first = mkdirSync(dir, { recursive: true, mode: 0o755 });
  } catch (e) {
    throw new StartError(`cannot create directory ${dir}: ${(e as Error).message}`);
  }
  if (!owner || first === undefined) return;
  for (let d = resolve(dir); ; d = dirname(d)) {
    try {
      adjustOwnFile(d, { kind: "directory", gid: owner.gid, mode: 0o1775 });
    } catch {}
    if (d === resolve(first) || d === dirname(d)) break;
  }
}

/** Hand a file we made as root to `owner`, through a descriptor of that very file (own-files.ts). */
export function chownFile(path: string, kind: "socket" | "file", owner: Owner | undefined, keepGroup = false, identity?: FileIdentity): void {
  if (!owner) return;
  try {
    adjustOwnFile(path, { kind, uid: owner.uid, gid: keepGroup ? -1 : owner.gid, identity });
  } catch (e) {
    throw new StartError(`cannot hand ${path} to uid ${owner.uid}: ${(e as Error).message}`);
  }
}

/**
 * Run a service through its lifecycle. Resolves to an exit status when it does not serve (1 on a
 * start-up failure, 0 in the process that started a daemon), or to the running service.
 */
export async function runService<L extends Listening>(o: ServiceOptions<L>): Promise<number | RunningService> {
  const worker = workerIndex();
  const human = humanOutput(o.prog);
  const notifiers = o.notifiers ?? [PARENT_NOTIFIER]; // systemd's is added once the log is open
  const systemd = o.notifiers === undefined && worker === undefined;
  const printFailure = o.printFailure ?? ((reason: string) => human.error(reason));
  const lineLevel = o.lineLevel ?? "message";

  // detach
  if (o.daemon && !isDaemonChild() && worker === undefined) {
    const r = await detach();
    if (r.ok) return 0;
    printFailure(r.message);
    return 1;
  }

  // log
  const asked = effectiveIdentity(o.identity, o.rootBecomes);
  let owner: Owner | undefined;
  let ownerError: unknown;
  try {
    owner = ownerOf(asked);
  } catch (e) {
    ownerError = e; // an unknown user: reported once the log is open, before listening
  }
  const logFile = o.logPath !== undefined && o.logPath !== "-" ? resolve(o.logPath) : undefined;
  /** Hand a log file we just created to the user we become (workers and later reopens run as that user). */
  const handOver = (created: boolean) => {
    if (!created || !owner || !isRoot()) return;
    try {
      adjustOwnFile(logFile!, { kind: "file", uid: owner.uid, gid: owner.gid });
    } catch {}
  };
  let log: Logger;
  try {
    const path = logFile;
    const created = path !== undefined && !existsSync(path);
    if (path !== undefined && o.createLogDirectory) {
      try {
        ensureDirectory(dirname(path), owner);
      } catch {} // the open below says what is wrong
    }
    log = o.openLog ? o.openLog() : new Logger({ level: LEVEL_NONE });
    handOver(created);
  } catch (e) {
    const msg = `cannot open log file ${o.logPath}: ${(e as Error).message}`;
    printFailure(msg);
    for (const n of notifiers) n.failed(msg);
    return 1;
  }
  const say = (level: LogLevel, text: string) => {
    if (log.enabled(level)) log.write(level, text);
  };
  /** Who else can write the log file, said at start and after a reopen; a worker's supervisor said it. */
  const checkLogFile = () => {
    const problem = worker === undefined ? log.fileWriters(owner?.uid) : undefined;
    if (problem) say("warning", problem);
  };
  checkLogFile();
  if (systemd) {
    const sd = systemdNotifier((text) => say("warning", text));
    if (sd) notifiers.push(sd);
  }
  /** Start-up facts: to the log, or to the terminal when the log level leaves them out. */
  const announce = (text: string) => {
    if (log.enabled(lineLevel)) log.write(lineLevel, text);
    else if (o.terminalFallback) human.info(text);
  };
  const reopenLog = () => {
    const created = logFile !== undefined && !existsSync(logFile);
    log.reopen();
    handOver(created);
    checkLogFile();
  };
  let listening: L | undefined;
  const ctx: ServiceContext<L> = {
    log,
    worker,
    identity: asked,
    owner,
    get listening() {
      return listening;
    },
    say,
    announce,
    reopenLog,
  };

  // signals
  let pool: WorkerPool | undefined;
  let pidFile: string | undefined;
  let pidIdentity: FileIdentity | undefined; // the pid file as written: removed only while still that file
  let startedUp!: () => void;
  const startupOver = new Promise<void>((r) => (startedUp = r));
  const graceMs = o.graceMs;
  const signals: InstalledSignals = installSignals({
    notice: (signal, what) => say(lineLevel, `${signal}: ${what}`),
    hardExitMs: o.hardExitMs ?? graceMs + 5000,
    // A worker is asked to stop by its supervisor with SIGUSR2; systemd or Ctrl-C may send SIGTERM/SIGINT too.
    softStop: worker !== undefined ? ["SIGUSR2"] : undefined,
    async stop() {
      await startupOver;
      for (const n of notifiers) n.stopping?.();
      o.stopping?.(ctx);
      if (pool) await pool.stop(graceMs + 2000);
      if (listening) await listening.close({ waitMs: graceMs });
      await o.stopped?.(ctx);
      if (pidFile && pidIdentity) removePidFile(pidFile, pidIdentity);
      say(lineLevel, "stopped");
      await log.close();
    },
    atOnce() {
      if (pool) forwardSignal(pool.pids, "SIGKILL");
      if (pidFile && pidIdentity) removePidFile(pidFile, pidIdentity);
      log.flush();
    },
    // The supervisor first, then its workers: a worker running as the user we become must find a
    // log file the supervisor (still root) re-created already handed over to that user.
    reopen: o.openLog
      ? () => {
          reopenLog();
          if (pool) forwardSignal(pool.pids, "SIGUSR1");
        }
      : undefined,
    reload: o.reload
      ? async () => {
          for (const n of notifiers) n.reloading?.();
          try {
            await o.reload!(ctx);
          } finally {
            if (pool) forwardSignal(pool.pids, "SIGHUP");
            for (const n of notifiers) n.ready();
          }
        }
      : undefined,
  });

  const fail = async (msg: string): Promise<number> => {
    if (o.logFailures) say("error", msg);
    printFailure(msg);
    for (const n of notifiers) n.failed(msg);
    await log.close();
    return 1;
  };

  try {
    await o.prepare?.(ctx);
    if (ownerError) throw ownerError;
    let spec = typeof o.spec === "string" ? parseSpec(o.spec, { allowPortZero: true }) : o.spec;

    // workers
    const n = o.workers?.n ?? 0;
    if (spec && n > 0 && worker === undefined) {
      if (workersSupported(spec)) return await supervise(spec, n);
      say("warning", `${o.workers!.option}=${n} is ignored for ${formatSpec(spec)}: a unix socket cannot be shared by several processes; serving in one process`);
    }
    if (worker !== undefined && process.env[WORKER_SPEC_ENV]) spec = parseSpec(process.env[WORKER_SPEC_ENV]!, { allowPortZero: true });

    // listen
    await o.beforeListen?.(ctx);
    listening = await o.listen({ spec, reusePort: worker !== undefined }, ctx);

    // socket owner, pid file
    if (listening.socketPath !== undefined) chownFile(listening.socketPath, "socket", owner, true);
    if (o.pidFile && worker === undefined) {
      pidFile = resolve(o.pidFile);
      ensureDirectory(dirname(pidFile), owner);
      pidIdentity = writePidFile(pidFile);
      chownFile(pidFile, "file", owner, false, pidIdentity);
    }

    // checks, privilege drop
    if (asked.user !== undefined) {
      if (worker === undefined) runChecks(); // a worker's supervisor ran them, as root too
      dropPrivileges(asked);
    }

    // ready
    const line = o.readyLine ? o.readyLine(ctx, worker !== undefined ? ` (worker ${worker})` : "") : undefined;
    if (line !== undefined) announce(line);
    if (worker !== undefined) {
      watchSupervisor(() => {
        say("error", `worker ${worker}: the supervisor is gone; stopping`);
        signals.stopNow("SIGTERM");
      });
    }
    for (const n of notifiers) n.ready();
    startedUp();
    // One full collection once start-up is over: start-up's garbage (the configuration files as
    // read and parsed, the argument scan) is freed now rather than whenever the idle heap next grows.
    setTimeout(() => Bun.gc(true), 0);
    return { stop: () => signals.stopNow("SIGTERM") };
  } catch (e) {
    startedUp();
    if (!START_ERRORS.some((k) => e instanceof k)) throw e;
    await listening?.close({ waitMs: 0 });
    await o.cleanup?.(ctx);
    if (pidFile && pidIdentity) removePidFile(pidFile, pidIdentity);
    signals.dispose();
    return fail((e as Error).message);
  }

  /** The checks before the privilege drop, their problems one warning each. */
  function runChecks(): void {
    for (const check of o.checks ?? []) for (const problem of check(ctx)) say("warning", problem);
  }

  /** Workers on TCP: bind once to check the address, start and supervise the workers. */
  async function supervise(spec: ConnectionSpec, n: number): Promise<RunningService> {
    const bound = await probeAddress(spec);
    if (asked.user !== undefined) runChecks(); // for the workers, which switch users
    pool = new WorkerPool({
      n,
      spec: bound,
      log: (level, msg) => say(level, msg),
      stopSignal: "SIGUSR2",
      detached: true, // Ctrl-C reaches the supervisor only; it stops the workers
    });
    try {
      await pool.start();
    } catch (e) {
      pool = undefined;
      throw new StartError((e as Error).message);
    }
    if (o.pidFile) {
      pidFile = resolve(o.pidFile);
      ensureDirectory(dirname(pidFile), undefined);
      pidIdentity = writePidFile(pidFile);
    }
    announce(`${n} workers listening on ${formatSpec(bound)}: pids ${pool.pids.join(" ")}`);
    for (const n of notifiers) n.ready();
    startedUp();
    return { stop: () => signals.stopNow("SIGTERM") };
  }
}
