// The manager's engine: listen on manager.connection_spec with the milter-side server and run one
// Leader per MTA connection (startEngine). Everything around it — daemon mode, privilege drop, pid
// file, workers, signals, reload, limits, the process launcher — is the daemon (daemon/run.ts),
// which calls this; the engine knows nothing of the daemon.
import type { FallbackStatus, ManagerConfig, MilterConfig } from "./config/schema.ts";
import { createConditions } from "./conditions/registry.ts";
import { Leader, type LeaderEnv } from "./leader.ts";
import type { ManagerEvents } from "./events.ts";
import { Availability } from "./rules/availability.ts";
import { createLog, type ManagerLog } from "./log.ts";
import type { Conditions } from "./stop-hook.ts";
import { gated } from "./gate.ts";
import type { ConnectionGate } from "../runtime/limits.ts";
import { descriptorLimit } from "../net/descriptors.ts";
import { milterEndLine, sessionDisconnectedLine, sessionEndLine, sessionsFinishedLine } from "../runtime/statistics.ts";
import { Accept, Discard, Reject, serveMilter, Tempfail } from "../milter-side/index.ts";
import { DEFAULT_IDLE_TIMEOUT_MS } from "../milter-side/session.ts";
import type { DecisionReply } from "../milter/index.ts";
import type { ConnectionSpec } from "../net/spec.ts";
import { onQuickAckUnavailable } from "../net/tcp-quickack.ts";

export interface EngineOptions {
  log?: ManagerLog;
  /** Where answers, failures, child states and sessions are counted (monitor.ts). */
  events?: ManagerEvents;
  /** Applicable conditions; default: those the configuration's milters name (conditions/registry.ts), rebuilt by setConfig. */
  conditions?: Conditions;
  /** Body bytes kept in memory per message before spilling to a temporary file. Default 5 MiB. */
  bodySpillThreshold?: number;
  /** Directory for body spill files. Default os.tmpdir(). */
  tmpDir?: string;
  /** Close an MTA session that sends nothing for this long (default: manager.idle_timeout). */
  idleTimeoutMs?: number;
  /**
   * manager.max_connections: sessions beyond the gate's limit wait at negotiation (gate.ts). Only
   * sessions started while a limit is set are counted (none pay for the gate without one).
   */
  gate?: ConnectionGate;
  /** TCP: SO_REUSEPORT, for worker processes sharing the port (daemon/run.ts). */
  reusePort?: boolean;
  /** A child could not be connected at negotiation: start it (launcher.ts) and answer whether to retry once. */
  unreachable?: (milter: MilterConfig) => Promise<boolean>;
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
  const finishedLine = (n: number) => sessionsFinishedLine(n, 1, server.sessions);
  let total = 0;
  const retry = (c: ManagerConfig) => ({ minMs: c.manager.milter_retry_interval * 1000, maxMs: c.manager.milter_retry_max_interval * 1000 });
  // Which children are down outlives a session and a reload; 0 turns it off (every session tries).
  const availability = new Availability(retry(config));
  let env = makeEnv(config);
  function makeEnv(c: ManagerConfig): LeaderEnv {
    return {
      config: c,
      log,
      events: options.events,
      conditions: options.conditions ?? createConditions(c, { log, sessions: () => server.sessions }),
      bodySpillThreshold: options.bodySpillThreshold,
      tmpDir: options.tmpDir,
      unreachable: options.unreachable,
      availability: c.manager.milter_retry_interval > 0 ? availability : undefined,
      onSessionEnd(s) {
        if (!log.enabled("statistics")) return;
        if (s.end.reason === "disconnected") log.write("statistics", sessionDisconnectedLine(s.id, s.elapsedMs));
        log.write("statistics", sessionEndLine(s.id, s.stage, s.status, s.elapsedMs));
      },
      onChildEnd(s) {
        if (log.enabled("statistics")) log.write("statistics", milterEndLine(s.id, s.name, s.stage, s.status, s.elapsedMs));
      },
    };
  }
  onQuickAckUnavailable((why) => log.write("warning", `TCP peers that write twice with Nagle on will wait ~40 ms for our ACK: no TCP_QUICKACK (${why})`));
  const m = config.manager;
  const gate = options.gate;
  const server = await serveMilter(config.manager.connection_spec, (ctx) => (gate?.limited ? gated(new Leader(env, ctx), gate) : new Leader(env, ctx)), {
    // Deadlines for the MTA's side; a reload does not change them for the listener (restart to do so).
    idleTimeoutMs: options.idleTimeoutMs ?? m.idle_timeout * 1000,
    negotiationTimeoutMs: m.negotiation_timeout * 1000,
    packetTimeoutMs: m.packet_timeout * 1000,
    // A Leader's steps are bounded by its children's timeouts; a gated negotiation by the MTA's.
    // This is the last resort only, not tied to the idle time.
    handlerTimeoutMs: DEFAULT_IDLE_TIMEOUT_MS,
    // An internal error (e.g. the body spill file cannot be written) gets manager.fallback_status.
    handlerErrorReply: FALLBACK_REPLY[m.fallback_status],
    listen: {
      mode: m.unix_socket_mode,
      group: m.unix_socket_group ?? undefined,
      removeOnCreate: m.remove_unix_socket_on_create,
      removeOnClose: m.remove_unix_socket_on_close,
      reusePort: options.reusePort,
      acceptRetryMaxMs: Math.max(100, m.suspend_time_on_unacceptable * 1000),
      onAcceptPaused(free, reserve) {
        log.write("warning", `out of file descriptors (${free} of ${descriptorLimit()} free, ${reserve} kept in reserve): not accepting new connections until some are free; raise manager.max_file_descriptors`);
      },
      onAcceptResumed(free) {
        log.write("message", `file descriptors free again (${free}): accepting new connections`);
      },
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
      availability.update(retry(c));
      env = makeEnv(c);
    },
    close: (opts) => server.close(opts),
  };
}
