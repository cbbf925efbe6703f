// `milterkit manager` as a daemon (manager.md §1.2–§1.6): the service lifecycle of
// runtime/lifecycle.ts (detach, log, signals, workers, listen, socket and pid file handed to the
// user we become, privilege drop, ready, graceful stop) around the engine, plus what only the
// manager does:
//   start-up        configuration notes, open-file limit (manager.max_file_descriptors), the unix
//                   socket's directory (created, handed to the user we become), the launcher for
//                   child milters (privilege mode; started as root, before listening)
//   SIGHUP          reload: new sessions use the new configuration, sessions in flight finish
//                   with theirs; a broken configuration is logged and the old one kept
//   SIGTERM/SIGINT  the gate stops admitting, sessions in flight get STOP_GRACE_MS, launcher closed
import { connectionTimeoutWarning } from "../rules/availability.ts";
import { adjustOwnFile } from "../../fs/own-files.ts";
import { dirname, resolve } from "node:path";
import type { LoadedConfig } from "../config/load.ts";
import type { ManagerConfig } from "../config/schema.ts";
import { type ManagerServer, startEngine } from "../engine.ts";
// The launcher and the controller are loaded only when configured: a resident manager keeps none of what it does not run.
import type { ChildStarter, ProcessLauncher } from "./launcher.ts";
import { createLog, loggerOptions } from "../log.ts";
import { noChildWarning } from "../config/fail-open.ts";
import type { Controller } from "../controller/server.ts";
import { Monitor, type MonitorInfo } from "../monitor.ts";
import { ListenError } from "../../net/listener.ts";
import { formatSpec, parseSpec, SpecError } from "../../net/spec.ts";
import { effectiveIdentity, ensureDirectory, runService, type ServiceContext, StartError } from "../../runtime/lifecycle.ts";
import { ConnectionGate, setFileDescriptorLimit } from "../../runtime/limits.ts";
import { isRoot, lookupGroup, lookupUser } from "../../runtime/privilege.ts";
import { accessProblems, type Target } from "../../runtime/access.ts";
import { VERSION } from "../../version.ts";

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
    ["manager.negotiation_timeout", old.manager.negotiation_timeout, neu.manager.negotiation_timeout],
    ["manager.packet_timeout", old.manager.packet_timeout, neu.manager.packet_timeout],
    ["manager.idle_timeout", old.manager.idle_timeout, neu.manager.idle_timeout],
    ["controller.connection_spec", old.controller.connection_spec, neu.controller.connection_spec],
    ["security.effective_user", old.security.effective_user, neu.security.effective_user],
    ["security.effective_group", old.security.effective_group, neu.security.effective_group],
    ["security.privilege_mode", old.security.privilege_mode, neu.security.privilege_mode],
  ];
  return items.filter(([, a, b]) => a !== b).map(([name]) => name);
}

/** What is wrong with a loaded configuration, one warning line each (at start and at each reload). */
function configWarnings(loaded: LoadedConfig): string[] {
  const slowConnect = connectionTimeoutWarning(loaded.config.milters);
  return slowConnect ? [...loaded.warnings, slowConnect] : loaded.warnings;
}

/** Where a loaded configuration came from, for the log, /status and --check. */
export function describeSource(loaded: LoadedConfig): string {
  if (loaded.builtInDefault) return "built-in default";
  if (loaded.files.length > 0) return loaded.files.join(", ");
  return loaded.source.kind === "file" ? loaded.source.path : loaded.source.dir;
}

function monitorInfo(loaded: LoadedConfig, worker: number | undefined): MonitorInfo {
  const c = loaded.config;
  return {
    version: VERSION,
    configSource: describeSource(loaded),
    milters: c.milters.map((m) => ({ name: m.name, spec: m.connection_spec, enabled: m.enabled })),
    notes: [noChildWarning(c)].filter((n): n is string => n !== undefined),
    worker,
  };
}

/** The HTTP controller (controller/server.ts) on controller.connection_spec; a failure to listen is a start-up failure. */
async function openController(config: ManagerConfig, monitor: Monitor, ctx: ServiceContext): Promise<Controller> {
  const cc = config.controller;
  let controller: Controller;
  const { startController } = await import("../controller/server.ts");
  try {
    controller = await startController(cc.connection_spec!, monitor, {
      mode: cc.unix_socket_mode,
      group: cc.unix_socket_group,
      removeOnCreate: cc.remove_unix_socket_on_create,
      removeOnClose: cc.remove_unix_socket_on_close,
    });
  } catch (e) {
    if (e instanceof ListenError || e instanceof SpecError) throw new StartError(`controller: ${e.message}`);
    throw e;
  }
  if (controller.spec.kind === "unix" && ctx.owner && controller.identity) {
    try {
      // so the user we become can remove it; through the socket's descriptor, never by name
      adjustOwnFile(controller.spec.path, { kind: "socket", identity: controller.identity, uid: ctx.owner.uid });
    } catch (e) {
      ctx.say("warning", `controller: cannot hand ${controller.spec.path} to uid ${ctx.owner.uid}: ${(e as Error).message}`);
    }
  }
  ctx.say("message", `controller (metrics, status) on ${controller.url ?? formatSpec(controller.spec)}`);
  return controller;
}

export function describeMilters(config: ManagerConfig): string {
  const enabled = config.milters.filter((m) => m.enabled);
  if (enabled.length === 0) return "no milter configured, every session gets manager.fallback_status";
  return `milters ${enabled.map((m) => `${m.name} (${m.connection_spec})`).join(", ")}`;
}

/** What `who` (the user root switches to) will not be able to do with this configuration's files. */
function afterDropProblems(config: ManagerConfig, files: string[], who: Target): string[] {
  const spec = parseSpec(config.manager.connection_spec, { allowPortZero: true });
  const socket = spec.kind === "unix" && config.manager.remove_unix_socket_on_close ? [spec.path] : [];
  const logPath = config.log.path && config.log.path !== "-" ? [config.log.path] : [];
  return accessProblems(who, { read: files, remove: [...socket, ...(config.manager.pid_file ? [config.manager.pid_file] : [])], reopen: logPath });
}

/**
 * For --show-config: the same problems for the user a start as root would switch to (nothing when
 * not root, or when that user is unknown: the start says so).
 */
export function privilegeProblems(loaded: LoadedConfig): string[] {
  const { config } = loaded;
  const asked = effectiveIdentity({ user: config.security.effective_user ?? undefined, group: config.security.effective_group ?? undefined }, "nobody");
  if (asked.user === undefined) return [];
  try {
    const u = lookupUser(asked.user);
    const gid = asked.group !== undefined ? lookupGroup(asked.group) : u.gid;
    return afterDropProblems(config, loaded.files, { name: u.name, uid: u.uid, gid });
  } catch {
    return [];
  }
}

/**
 * Run the manager (foreground, daemon, worker or worker supervisor) through the service lifecycle
 * (runtime/lifecycle.ts). Returns an exit status on a start-up failure (or 0 in the process that
 * started a daemon), undefined while it serves.
 */
export async function runManager(startup: ManagerStartup): Promise<number | undefined> {
  let config = startup.loaded.config;
  let engine: ManagerServer | undefined;
  let launcher: ProcessLauncher | undefined;
  let starter: ChildStarter | undefined;
  const gateOptions = (c: ManagerConfig, say: ServiceContext["say"]) => ({
    max: c.manager.max_connections,
    suspendMs: c.manager.suspend_time_on_unacceptable * 1000,
    onSuspend: (active: number, waiting: number) =>
      say("warning", `manager.max_connections (${c.manager.max_connections}) reached: ${active} sessions running, ${waiting} waiting; accepting again in ${c.manager.suspend_time_on_unacceptable} s`),
  });
  let gate: ConnectionGate | undefined;
  let monitor: Monitor | undefined;
  let controller: Controller | undefined;
  const r = await runService<ManagerServer & { socketPath?: string }>({
    prog: PROG,
    daemon: config.manager.daemon,
    openLog: () => createLog(config.log),
    logPath: config.log.path ?? undefined,
    createLogDirectory: true,
    identity: { user: config.security.effective_user ?? undefined, group: config.security.effective_group ?? undefined },
    rootBecomes: "nobody",
    spec: config.manager.connection_spec,
    workers: { n: config.manager.n_workers, option: "manager.n_workers" },
    pidFile: config.manager.pid_file ?? undefined,
    graceMs: STOP_GRACE_MS,
    terminalFallback: true,
    logFailures: true,
    prepare(ctx) {
      // Workers read the configuration their supervisor read: it has said what is wrong with it.
      const supervisor = ctx.worker === undefined;
      const warn = supervisor ? (text: string) => ctx.say("warning", text) : () => {};
      if (supervisor) for (const note of startup.loaded.notes) ctx.announce(note);
      for (const w of configWarnings(startup.loaded)) warn(w);
      const unfiltered = noChildWarning(config);
      if (unfiltered && supervisor) {
        if (ctx.log.enabled("warning")) warn(unfiltered);
        else ctx.announce(`warning: ${unfiltered}`);
      }
      ctx.say("info", `configuration from ${describeSource(startup.loaded)}`);
      monitor = new Monitor(monitorInfo(startup.loaded, ctx.worker));
      gate = new ConnectionGate(gateOptions(config, ctx.say));
      if (config.manager.max_file_descriptors > 0) {
        const r = setFileDescriptorLimit(config.manager.max_file_descriptors);
        if (r.partial) warn(`manager.max_file_descriptors ${config.manager.max_file_descriptors}: only ${r.soft} allowed (hard limit ${r.hard})`);
      }
      if (!isRoot() && (config.security.effective_user || config.security.effective_group)) {
        warn(`not started as root: security.effective_user/effective_group are ignored (running as uid ${process.getuid?.()})`);
      }
    },
    // As root, just before the switch: what the user we become will not be able to do later.
    checks: [(ctx) => (ctx.owner ? afterDropProblems(config, startup.loaded.files, { name: ctx.identity.user ?? String(ctx.owner.uid), ...ctx.owner }) : [])],
    // The launcher must be started while we are root; it serves the engine's negotiations.
    async beforeListen(ctx) {
      const spec = parseSpec(config.manager.connection_spec, { allowPortZero: true });
      if (spec.kind === "unix") ensureDirectory(dirname(resolve(spec.path)), ctx.owner);
      const launchable = config.security.privilege_mode && config.milters.some((m) => m.command);
      if (launchable && !isRoot()) ctx.say("warning", "security.privilege_mode needs root: child milters are not started by the manager");
      if (launchable && isRoot()) {
        const { ChildStarter, ProcessLauncher } = await import("./launcher.ts");
        launcher = ProcessLauncher.start();
        starter = new ChildStarter({ launcher, log: (level, text) => ctx.say(level, text) });
      }
    },
    async listen({ spec, reusePort }, ctx) {
      engine = await startEngine(
        { ...config, manager: { ...config.manager, connection_spec: formatSpec(spec!) } },
        { log: ctx.log, events: monitor, gate, reusePort, unreachable: starter ? (m) => starter!.unreachable(m) : undefined },
      );
      // With workers, the first one serves the controller (its numbers are that worker's).
      if (config.controller.connection_spec && (ctx.worker === undefined || ctx.worker === 1)) {
        try {
          controller = await openController(config, monitor!, ctx);
        } catch (e) {
          await engine.close({ waitMs: 0 });
          throw e;
        }
      }
      return Object.assign(engine, { socketPath: engine.spec.kind === "unix" ? engine.spec.path : undefined });
    },
    readyLine: (_ctx, worker) => `listening on ${formatSpec(engine!.spec)}${worker}: ${describeMilters(config)}`,
    async reload(ctx) {
      const say = ctx.say;
      let next: LoadedConfig;
      try {
        next = await startup.reload();
      } catch (e) {
        say("error", `reload failed, keeping the old configuration: ${(e as Error).message}`);
        monitor?.reload(false, (e as Error).message);
        return;
      }
      monitor?.reload(true);
      monitor?.configure(monitorInfo(next, ctx.worker));
      say("info", `configuration reloaded from ${describeSource(next)}`);
      // What is still wrong is said again, once per reload, by the supervisor only (as at start).
      const supervisor = ctx.worker === undefined;
      const warn = supervisor ? (text: string) => say("warning", text) : () => {};
      if (supervisor) for (const note of next.notes) say("message", note);
      for (const w of configWarnings(next)) warn(w);
      const later = restartOnlyChanges(config, next.config);
      if (later.length > 0) warn(`changed items take effect at the next start only: ${later.join(", ")}`);
      try {
        ctx.log.reconfigure(loggerOptions(next.config.log));
        const writers = ctx.log.fileWriters(ctx.owner?.uid);
        if (writers) warn(writers);
      } catch (e) {
        say("error", `log settings not changed: cannot open log file ${next.config.log.path}: ${(e as Error).message}`);
      }
      config = next.config;
      gate?.update(gateOptions(config, say));
      engine?.setConfig(config);
      say("message", `configuration reloaded: ${describeMilters(config)}`);
      const unfiltered = noChildWarning(config);
      if (unfiltered) warn(unfiltered);
    },
    stopping: () => {
      gate?.close();
      controller?.close();
    },
    stopped: () => launcher?.close(),
    cleanup: () => {
      controller?.close();
      return launcher?.close();
    },
  });
  return typeof r === "number" ? r : undefined;
}
