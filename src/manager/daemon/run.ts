// `milterkit manager` as a daemon (manager.md §1.2–§1.6): what happens around the engine.
//
//   --daemon        re-execute detached (runtime/daemon.ts); the starting process exits 0 once the
//                   daemon listens, 1 with the daemon's error line otherwise
//   start-up        log → signals → open-file limit → listen (socket directory created, mode,
//                   group) → socket, pid file and created directories handed to the user we become
//                   → launcher (privilege mode) → privilege drop → READY
//   n_workers       TCP only: a supervisor that accepts nothing starts n copies of itself sharing
//                   the port (SO_REUSEPORT), restarts a dead one, forwards SIGHUP/SIGUSR1
//   SIGHUP          reload: new sessions use the new configuration, sessions in flight finish
//                   with theirs; a broken configuration is logged and the old one kept
//   SIGUSR1         reopen the log file
//   SIGTERM/SIGINT  stop accepting, sessions in flight get STOP_GRACE_MS, socket and pid file
//                   removed, exit 0; a second signal exits at once
import { chownSync, existsSync, mkdirSync } from "node:fs";
import { dirname, resolve } from "node:path";
import type { LoadedConfig } from "../config/load.ts";
import type { ManagerConfig } from "../config/schema.ts";
import { type ManagerServer, startEngine } from "../engine.ts";
import { ChildStarter, ProcessLauncher } from "./launcher.ts";
import { createLog } from "../log.ts";
import { ListenError } from "../../net/listener.ts";
import { type ConnectionSpec, formatSpec, parseSpec, SpecError } from "../../net/spec.ts";
import { detach, isDaemonChild, notifyFailure, notifyReady, PidFileError, removePidFile, writePidFile } from "../../runtime/daemon.ts";
import { humanOutput } from "../../runtime/human.ts";
import { ConnectionGate, LimitError, setFileDescriptorLimit } from "../../runtime/limits.ts";
import { type Logger, parseLogLevel } from "../../runtime/log.ts";
import { dropPrivileges, isRoot, lookupGroup, lookupUser, PrivilegeError } from "../../runtime/privilege.ts";
import { forwardSignal, installSignals } from "../../runtime/signals.ts";
import { probeAddress, watchSupervisor, WORKER_SPEC_ENV, WorkerPool, workerIndex, workersSupported } from "../../runtime/workers.ts";

export const PROG = "milter-manager";

export interface ManagerStartup {
  /** The effective configuration (files + command-line overrides) and what the log should say about it. */
  loaded: LoadedConfig;
  /**
   * Load the configuration again from the same source with the same command-line overrides
   * (for SIGHUP). Throws ConfigError (from ../config/load.ts) on a bad file: keep running on the
   * old configuration and log the error's message.
   */
  reload: () => Promise<LoadedConfig>;
}
/** How long sessions in flight may take to finish after SIGTERM/SIGINT. */
export const STOP_GRACE_MS = Number(process.env.MILTERKIT_STOP_GRACE_MS) || 10_000;

/** A start-up failure: one line for the administrator. */
class StartError extends Error {
  override readonly name = "StartError";
}

interface Identity {
  user: string | undefined;
  group: string | undefined;
}

/** Who we become: security.effective_user/group; as root without a user, nobody (as the original). */
export function identityOf(config: ManagerConfig, root = isRoot()): Identity {
  if (!root) return { user: undefined, group: undefined };
  return { user: config.security.effective_user ?? "nobody", group: config.security.effective_group ?? undefined };
}

/** uid/gid a file must get so `identity` can remove or reopen it later (undefined: nothing to do). */
function ownerOf(identity: Identity): { uid: number; gid: number } | undefined {
  if (!isRoot() || identity.user === undefined) return undefined;
  const u = lookupUser(identity.user);
  return { uid: u.uid, gid: identity.group !== undefined ? lookupGroup(identity.group) : u.gid };
}

/** Create `dir` if missing (0755) and give what we created to `owner` (a tmpfs /run loses /run/<name>/ at boot). */
function ensureDirectory(dir: string, owner: { uid: number; gid: number } | undefined): void {
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
      chownSync(d, owner.uid, owner.gid);
    } catch {}
    if (d === resolve(first) || d === dirname(d)) break;
  }
}

function chownFile(path: string, owner: { uid: number; gid: number } | undefined, keepGroup = false): void {
  if (!owner) return;
  try {
    chownSync(path, owner.uid, keepGroup ? -1 : owner.gid);
  } catch (e) {
    throw new StartError(`cannot hand ${path} to uid ${owner.uid}: ${(e as Error).message}`);
  }
}

/** The log of `log.*`; a missing directory is created and a new file given to the user we become (so SIGUSR1 can reopen it). */
function openLog(c: ManagerConfig, identity: Identity): Logger {
  const path = c.log.path && c.log.path !== "-" ? resolve(c.log.path) : undefined;
  if (path === undefined) return createLog(c.log);
  let owner: { uid: number; gid: number } | undefined;
  try {
    owner = ownerOf(identity);
  } catch {} // an unknown user is reported later, with the privilege drop
  try {
    ensureDirectory(dirname(path), owner);
  } catch {} // the open below says what is wrong
  const created = !existsSync(path);
  const logger = createLog({ ...c.log, path });
  if (created && owner) {
    try {
      chownSync(path, owner.uid, owner.gid);
    } catch {}
  }
  return logger;
}

function logOptions(c: ManagerConfig) {
  return {
    level: parseLogLevel(c.log.level),
    path: c.log.path && c.log.path !== "-" ? resolve(c.log.path) : undefined,
    syslog: c.log.use_syslog ? { ident: PROG, facility: c.log.syslog_facility } : undefined,
  };
}

/** Items that only take effect at the next start; a reload that changes them says so. */
function restartOnlyChanges(old: ManagerConfig, neu: ManagerConfig): string[] {
  const items: [string, unknown, unknown][] = [
    ["manager.connection_spec", old.manager.connection_spec, neu.manager.connection_spec],
    ["manager.unix_socket_mode", old.manager.unix_socket_mode, neu.manager.unix_socket_mode],
    ["manager.unix_socket_group", old.manager.unix_socket_group, neu.manager.unix_socket_group],
    ["manager.daemon", old.manager.daemon, neu.manager.daemon],
    ["manager.pid_file", old.manager.pid_file, neu.manager.pid_file],
    ["manager.n_workers", old.manager.n_workers, neu.manager.n_workers],
    ["manager.max_file_descriptors", old.manager.max_file_descriptors, neu.manager.max_file_descriptors],
    ["security.effective_user", old.security.effective_user, neu.security.effective_user],
    ["security.effective_group", old.security.effective_group, neu.security.effective_group],
    ["security.privilege_mode", old.security.privilege_mode, neu.security.privilege_mode],
  ];
  return items.filter(([, a, b]) => a !== b).map(([name]) => name);
}

export function describeMilters(config: ManagerConfig): string {
  const enabled = config.milters.filter((m) => m.enabled);
  if (enabled.length === 0) return "no milter configured, every session gets manager.fallback_status";
  return `milters ${enabled.map((m) => `${m.name} (${m.connection_spec})`).join(", ")}`;
}

/**
 * Run the manager (foreground, daemon, worker or worker supervisor). Returns an exit status on a
 * start-up failure (or 0 in the process that started a daemon), undefined while it serves.
 */
export async function runManager(startup: ManagerStartup): Promise<number | undefined> {
  let config = startup.loaded.config;
  const worker = workerIndex();
  const human = humanOutput(PROG);

  if (config.manager.daemon && !isDaemonChild() && worker === undefined) {
    const r = await detach();
    if (r.ok) return 0;
    human.error(r.message);
    return 1;
  }

  let logger: Logger;
  try {
    logger = openLog(config, identityOf(config));
  } catch (e) {
    const msg = `cannot open log file ${config.log.path}: ${(e as Error).message}`;
    human.error(msg);
    notifyFailure(msg);
    return 1;
  }
  const say = (level: "message" | "info" | "warning" | "error", text: string) => {
    if (logger.enabled(level)) logger.write(level, text);
  };
  const fail = async (msg: string): Promise<number> => {
    say("error", msg);
    human.error(msg);
    notifyFailure(msg);
    await logger.close();
    return 1;
  };
  /** Start-up facts: to the log, or to the terminal when the log level leaves them out. */
  const announce = (text: string) => {
    if (logger.enabled("message")) logger.write("message", text);
    else human.info(text);
  };
  for (const note of startup.loaded.notes) announce(note);

  // Signals first, so one that arrives during start-up is not lost (milter-manager #152).
  let engine: ManagerServer | undefined;
  let pool: WorkerPool | undefined;
  let launcher: ProcessLauncher | undefined;
  let pidFile: string | undefined;
  // A stop signal during start-up waits for it to end, so nothing (socket, pid file) is left behind.
  let startedUp!: () => void;
  const startupOver = new Promise<void>((r) => (startedUp = r));
  const gateOptions = (c: ManagerConfig) => ({
    max: c.manager.max_connections,
    suspendMs: c.manager.suspend_time_on_unacceptable * 1000,
    onSuspend: (active: number, waiting: number) =>
      say("warning", `manager.max_connections (${c.manager.max_connections}) reached: ${active} sessions running, ${waiting} waiting; accepting again in ${c.manager.suspend_time_on_unacceptable} s`),
  });
  const gate = new ConnectionGate(gateOptions(config));
  const signals = installSignals({
    notice: (signal, what) => say("message", `${signal}: ${what}`),
    hardExitMs: STOP_GRACE_MS + 5000,
    // A worker is asked to stop by its supervisor with SIGUSR2; systemd or Ctrl-C may send SIGTERM/SIGINT too.
    softStop: worker !== undefined ? ["SIGUSR2"] : undefined,
    async stop() {
      await startupOver;
      gate.close();
      if (pool) await pool.stop(STOP_GRACE_MS + 2000);
      if (engine) await engine.close({ waitMs: STOP_GRACE_MS });
      await launcher?.close();
      if (pidFile) removePidFile(pidFile);
      say("message", "stopped");
      await logger.close();
    },
    atOnce() {
      if (pool) forwardSignal(pool.pids, "SIGKILL");
      if (pidFile) removePidFile(pidFile);
      logger.flush();
    },
    reopen() {
      logger.reopen();
      if (pool) forwardSignal(pool.pids, "SIGUSR1");
    },
    async reload() {
      if (pool) forwardSignal(pool.pids, "SIGHUP");
      let next: LoadedConfig;
      try {
        next = await startup.reload();
      } catch (e) {
        say("error", `reload failed, keeping the old configuration: ${(e as Error).message}`);
        return;
      }
      for (const note of next.notes) say("message", note);
      const later = restartOnlyChanges(config, next.config);
      if (later.length > 0) say("warning", `changed items take effect at the next start only: ${later.join(", ")}`);
      try {
        logger.reconfigure(logOptions(next.config));
      } catch (e) {
        say("error", `log settings not changed: cannot open log file ${next.config.log.path}: ${(e as Error).message}`);
      }
      config = next.config;
      gate.update(gateOptions(config));
      engine?.setConfig(config);
      say("message", `configuration reloaded: ${describeMilters(config)}`);
    },
  });

  const identity = identityOf(config);
  try {
    if (config.manager.max_file_descriptors > 0) {
      const r = setFileDescriptorLimit(config.manager.max_file_descriptors);
      if (r.partial) say("warning", `manager.max_file_descriptors ${config.manager.max_file_descriptors}: only ${r.soft} allowed (hard limit ${r.hard})`);
    }
    if (!isRoot() && (config.security.effective_user || config.security.effective_group)) {
      say("warning", `not started as root: security.effective_user/effective_group are ignored (running as uid ${process.getuid?.()})`);
    }
    const owner = ownerOf(identity);

    let spec: ConnectionSpec;
    try {
      spec = parseSpec(config.manager.connection_spec, { allowPortZero: true });
    } catch (e) {
      if (e instanceof SpecError) throw new StartError(e.message);
      throw e;
    }
    if (config.manager.n_workers > 0 && worker === undefined) {
      if (workersSupported(spec)) return await supervise(spec);
      say("warning", `manager.n_workers=${config.manager.n_workers} is ignored for ${formatSpec(spec)}: a unix socket cannot be shared by several processes; serving in one process`);
    }
    if (worker !== undefined && process.env[WORKER_SPEC_ENV]) spec = parseSpec(process.env[WORKER_SPEC_ENV]!, { allowPortZero: true });
    if (spec.kind === "unix") ensureDirectory(dirname(resolve(spec.path)), owner);

    // The launcher must be started while we are root; it serves the engine's negotiations.
    const launchable = config.security.privilege_mode && config.milters.some((m) => m.command);
    if (launchable && !isRoot()) say("warning", "security.privilege_mode needs root: child milters are not started by the manager");
    let starter: ChildStarter | undefined;
    if (launchable && isRoot()) {
      launcher = ProcessLauncher.start();
      starter = new ChildStarter({ launcher, log: (level, text) => say(level, text) });
    }

    try {
      engine = await startEngine(
        { ...config, manager: { ...config.manager, connection_spec: formatSpec(spec) } },
        {
          log: logger,
          gate,
          reusePort: worker !== undefined,
          unreachable: starter ? (m) => starter.unreachable(m) : undefined,
        },
      );
    } catch (e) {
      if (e instanceof ListenError || e instanceof SpecError) throw new StartError(e.message);
      throw e;
    }
    if (engine.spec.kind === "unix") chownFile(engine.spec.path, owner, true);
    if (config.manager.pid_file && worker === undefined) {
      pidFile = resolve(config.manager.pid_file);
      ensureDirectory(dirname(pidFile), owner);
      writePidFile(pidFile);
      chownFile(pidFile, owner);
    }
    if (identity.user !== undefined) dropPrivileges(identity);
    announce(`listening on ${formatSpec(engine.spec)}${worker !== undefined ? ` (worker ${worker})` : ""}: ${describeMilters(config)}`);
    if (worker !== undefined) {
      watchSupervisor(() => {
        say("error", `worker ${worker}: the supervisor is gone; stopping`);
        signals.stopNow("SIGTERM");
      });
    }
    notifyReady();
    startedUp();
    return undefined;
  } catch (e) {
    startedUp();
    if (e instanceof StartError || e instanceof PrivilegeError || e instanceof PidFileError || e instanceof LimitError) {
      await engine?.close();
      await launcher?.close();
      if (pidFile) removePidFile(pidFile);
      signals.dispose();
      return fail(e.message);
    }
    throw e;
  }

  /** n_workers on TCP: bind once to check the address, start and supervise the workers. */
  async function supervise(spec: ConnectionSpec): Promise<number | undefined> {
    let bound: ConnectionSpec;
    try {
      bound = await probeAddress(spec);
    } catch (e) {
      if (e instanceof ListenError) throw new StartError(e.message);
      throw e;
    }
    pool = new WorkerPool({
      n: config.manager.n_workers,
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
    if (config.manager.pid_file) {
      pidFile = resolve(config.manager.pid_file);
      ensureDirectory(dirname(pidFile), undefined);
      writePidFile(pidFile);
    }
    announce(`${config.manager.n_workers} workers listening on ${formatSpec(bound)}: pids ${pool.pids.join(" ")}`);
    notifyReady();
    startedUp();
    return undefined;
  }
}
