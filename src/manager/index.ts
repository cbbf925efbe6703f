// The manager's entry point, called by src/cli/manager.ts once the configuration is loaded:
// listen on manager.connection_spec with the milter-side server and run one Leader per MTA
// connection. Foreground only for now: daemonizing, privilege dropping, pid file, workers and
// syslog are a later issue — startManager is the seam where they go (between loading and
// startEngine, and around the signal handling below).
import type { LoadedConfig } from "./config/load.ts";
import type { FallbackStatus, ManagerConfig } from "./config/schema.ts";
import { Leader, type LeaderEnv } from "./leader.ts";
import { createLog, type ManagerLog } from "./log.ts";
import type { Conditions } from "./stop-hook.ts";
import { Accept, Discard, Reject, serveMilter, Tempfail } from "../milter-side/index.ts";
import type { DecisionReply } from "../milter/index.ts";
import { ListenError } from "../net/listener.ts";
import { type ConnectionSpec, formatSpec, SpecError } from "../net/spec.ts";

export interface ManagerStartup {
  /** The effective configuration (files + command-line overrides) and what the log should say about it. */
  loaded: LoadedConfig;
  /**
   * Load the configuration again from the same source with the same command-line overrides
   * (for SIGHUP). Throws ConfigError (from ./config/load.ts) on a bad file: keep running on the
   * old configuration and log the error's message.
   */
  reload: () => Promise<LoadedConfig>;
}

export interface EngineOptions {
  log?: ManagerLog;
  /** Applicable conditions (a later issue); default: no child is ever stopped. */
  conditions?: Conditions;
  /** Body bytes kept in memory per message before spilling to a temporary file. Default 5 MiB. */
  bodySpillThreshold?: number;
  /** Directory for body spill files. Default os.tmpdir(). */
  tmpDir?: string;
  /** Close an MTA session that sends nothing for this long (default: libmilter's 7210 s). */
  idleTimeoutMs?: number;
}

export interface ManagerServer {
  /** Where we listen (port 0 replaced by the real port). */
  readonly spec: ConnectionSpec;
  readonly port: number | undefined;
  /** MTA sessions running now. */
  readonly sessions: number;
  /** Use this configuration for the sessions that start from now on (SIGHUP). */
  setConfig(config: ManagerConfig): void;
  /** Stop accepting; running sessions get up to waitMs (default 0) to finish. */
  close(opts?: { waitMs?: number }): Promise<void>;
}

const FALLBACK_REPLY: Record<FallbackStatus, DecisionReply> = {
  accept: Accept,
  "temporary-failure": Tempfail,
  reject: Reject,
  discard: Discard,
};

/** Listen for MTAs and serve every connection with a Leader. Rejects with SpecError or ListenError. */
export async function startEngine(config: ManagerConfig, options: EngineOptions = {}): Promise<ManagerServer> {
  const log = options.log ?? createLog(config.log);
  const finishedLine = (n: number) => `[sessions][finished] ${n}(+1) ${server.sessions}`;
  let total = 0;
  let env = makeEnv(config);
  function makeEnv(c: ManagerConfig): LeaderEnv {
    return {
      config: c,
      log,
      conditions: options.conditions,
      bodySpillThreshold: options.bodySpillThreshold,
      tmpDir: options.tmpDir,
      onSessionEnd(s) {
        if (!log.enabled("statistics")) return;
        log.write("statistics", `[session][end][${s.stage}][${s.status}][${(s.elapsedMs / 1000).toFixed(6)}](${s.id})`);
      },
    };
  }
  const m = config.manager;
  const server = await serveMilter(config.manager.connection_spec, (ctx) => new Leader(env, ctx), {
    idleTimeoutMs: options.idleTimeoutMs,
    // An internal error (e.g. the body spill file cannot be written) gets manager.fallback_status.
    handlerErrorReply: FALLBACK_REPLY[m.fallback_status],
    listen: {
      mode: m.unix_socket_mode,
      group: m.unix_socket_group ?? undefined,
      removeOnCreate: m.remove_unix_socket_on_create,
      removeOnClose: m.remove_unix_socket_on_close,
    },
    onError(e) {
      const level = e.kind === "disconnected" ? "info" : e.kind === "handler" || e.kind === "connection" ? "error" : "warning";
      if (log.enabled(level)) log.write(level, `[${e.sessionId}] ${e.kind}: ${e.message}`);
    },
    onSessionEnd() {
      total++;
      if (log.enabled("statistics")) log.write("statistics", finishedLine(total));
    },
  });
  return {
    spec: server.spec,
    port: server.port,
    get sessions() {
      return server.sessions;
    },
    setConfig(c) {
      env = makeEnv(c);
    },
    close: (opts) => server.close(opts),
  };
}

/**
 * Start the manager in the foreground. Returns an exit code on a start-up failure, undefined
 * while it serves. SIGINT/SIGTERM stop it gracefully (a second signal exits at once); SIGHUP
 * reloads the configuration for new sessions (the listening socket stays).
 */
export async function startManager(startup: ManagerStartup): Promise<number | undefined> {
  const { config } = startup.loaded;
  let log: ReturnType<typeof createLog>;
  try {
    log = createLog(config.log);
  } catch (e) {
    process.stderr.write(`milter-manager: cannot open log file ${config.log.path}: ${(e as Error).message}\n`);
    return 1;
  }
  const say = (text: string) => (log.enabled("message") ? log.write("message", text) : process.stderr.write(`milter-manager: ${text}\n`));
  const exit = (code: number) => {
    log.flush();
    process.exit(code);
  };
  for (const note of startup.loaded.notes) say(note);
  if (config.manager.daemon) say("daemon mode is not available yet: staying in the foreground");

  // Signals first, so a signal during start-up is not lost (milter-manager #152).
  let server: ManagerServer | undefined;
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) exit(1);
    stopping = true;
    say(`${signal}: stopping`);
    if (!server) exit(0);
    void server!.close({ waitMs: 10_000 }).finally(() => exit(0));
  };
  process.on("SIGINT", () => stop("SIGINT"));
  process.on("SIGTERM", () => stop("SIGTERM"));
  process.on("SIGHUP", () => {
    startup.reload().then(
      (loaded) => {
        for (const note of loaded.notes) say(note);
        server?.setConfig(loaded.config);
        say(`configuration reloaded: ${describeMilters(loaded.config)}`);
      },
      (e) => say(`reload failed, keeping the old configuration: ${(e as Error).message}`),
    );
  });

  try {
    server = await startEngine(config, { log });
  } catch (e) {
    if (e instanceof ListenError || e instanceof SpecError) {
      log.flush();
      process.stderr.write(`milter-manager: ${e.message}\n`);
      return 1;
    }
    throw e;
  }
  say(`listening on ${formatSpec(server.spec)}: ${describeMilters(config)}`);
  if (stopping) void server.close().finally(() => exit(0));
  return undefined;
}

function describeMilters(config: ManagerConfig): string {
  const enabled = config.milters.filter((m) => m.enabled);
  if (enabled.length === 0) return "no milter configured, every session gets manager.fallback_status";
  return `milters ${enabled.map((m) => `${m.name} (${m.connection_spec})`).join(", ")}`;
}
