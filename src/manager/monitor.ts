// The manager's counters and child states (events.ts's sink): what /metrics and /status show and
// the status page draws. It logs nothing: a child going down or coming back is said by the
// session that found it (leader.ts, rules/availability.ts), once.
// Plain data in, plain data out: controller/ turns it into HTTP answers.
import { readdirSync } from "node:fs";
import type { ManagerEvents, FailureKind } from "./events.ts";
import type { StageName } from "../milter/index.ts";

/** Upper bounds (seconds) of the child latency histogram's buckets. */
export const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

export interface ChildState {
  name: string;
  spec: string;
  /** undefined until the first session tried it. */
  up: boolean | undefined;
  since: number | undefined;
  lastError: string | undefined;
  lastErrorAt: number | undefined;
  answers: number;
  failures: number;
  /** Latency histogram: counts per LATENCY_BUCKETS bound (not cumulative), then +Inf. */
  buckets: number[];
  latencySum: number;
}

export interface MonitorInfo {
  version: string;
  /** Where the configuration came from (file or directory). */
  configSource: string;
  /** Milters of the configuration (name, connection spec). */
  milters: { name: string; spec: string; enabled: boolean }[];
  /** Configuration warnings to show (e.g. no child configured). */
  notes?: string[];
  worker?: number;
}

/** Counter keyed by label values joined with \0. */
class Counter {
  readonly values = new Map<string, number>();
  add(key: string, n = 1): void {
    this.values.set(key, (this.values.get(key) ?? 0) + n);
  }
  get(key: string): number {
    return this.values.get(key) ?? 0;
  }
  total(): number {
    let t = 0;
    for (const v of this.values.values()) t += v;
    return t;
  }
}

export class Monitor implements ManagerEvents {
  readonly startedAt = Date.now();
  configLoadedAt = Date.now();
  info: MonitorInfo;
  readonly sessions = new Counter(); // status
  readonly messages = new Counter(); // status
  readonly answers = new Counter(); // child \0 stage \0 status
  readonly failures = new Counter(); // child \0 kind
  readonly timeouts = new Counter(); // child \0 timer
  readonly stateChanges = new Counter(); // child \0 up|down
  readonly reloads = new Counter(); // ok|failed
  openSessions = 0;
  lastReloadError: string | undefined;
  readonly children = new Map<string, ChildState>();

  constructor(info: MonitorInfo) {
    this.info = info;
    this.setMilters(info.milters);
  }

  /** A new configuration (start, reload): children keep their counters by name. */
  configure(info: MonitorInfo): void {
    this.info = info;
    this.configLoadedAt = Date.now();
    this.setMilters(info.milters);
  }

  private setMilters(milters: MonitorInfo["milters"]): void {
    for (const m of milters) {
      const c = this.child(m.name);
      c.spec = m.spec;
    }
  }

  private child(name: string): ChildState {
    let c = this.children.get(name);
    if (!c) {
      c = { name, spec: "", up: undefined, since: undefined, lastError: undefined, lastErrorAt: undefined, answers: 0, failures: 0, buckets: new Array(LATENCY_BUCKETS.length + 1).fill(0), latencySum: 0 };
      this.children.set(name, c);
    }
    return c;
  }

  childAnswer(child: string, stage: StageName, status: string, ms: number): void {
    const c = this.child(child);
    this.answers.add(this.answerKey(child, stage, status));
    c.answers++;
    const s = ms / 1000;
    c.latencySum += s;
    let i = 0;
    while (i < LATENCY_BUCKETS.length && s > LATENCY_BUCKETS[i]) i++;
    c.buckets[i]++;
  }

  /**
   * The answers counter's key, made once per child, stage and status: a key built per answer is a
   * new string (and its hashing) for every step of every child.
   */
  private answerKey(child: string, stage: string, status: string): string {
    let byStage = this.answerKeys.get(child);
    if (!byStage) this.answerKeys.set(child, (byStage = new Map()));
    let byStatus = byStage.get(stage);
    if (!byStatus) byStage.set(stage, (byStatus = new Map()));
    let key = byStatus.get(status);
    if (key === undefined) byStatus.set(status, (key = `${child}\0${stage}\0${status}`));
    return key;
  }

  private readonly answerKeys = new Map<string, Map<string, Map<string, string>>>();

  childFailure(child: string, kind: FailureKind, stage: StageName, detail: string, timer?: string): void {
    const c = this.child(child);
    this.failures.add(`${child}\0${kind}`);
    if (kind === "timeout") this.timeouts.add(`${child}\0${timer ?? "unknown"}`);
    c.failures++;
    if (kind === "down") return; // not tried: the last error stays the one that put it down
    c.lastError = `${kind} at ${stage}: ${detail}`;
    c.lastErrorAt = Date.now();
  }

  childState(child: string, up: boolean, detail?: string): void {
    const c = this.child(child);
    if (!up && detail) {
      c.lastError = detail;
      c.lastErrorAt = Date.now();
    }
    if (c.up === up) return;
    c.up = up;
    c.since = Date.now();
    this.stateChanges.add(`${child}\0${up ? "up" : "down"}`);
  }

  sessionStart(): void {
    this.openSessions++;
  }

  sessionEnd(status: string): void {
    this.openSessions = Math.max(0, this.openSessions - 1);
    this.sessions.add(status);
  }

  messageEnd(status: string): void {
    this.messages.add(status);
  }

  reload(ok: boolean, detail?: string): void {
    this.reloads.add(ok ? "ok" : "failed");
    if (!ok) this.lastReloadError = detail;
  }

  /** The /status document. */
  status(now = Date.now()): StatusDocument {
    const enabled = new Set(this.info.milters.filter((m) => m.enabled).map((m) => m.name));
    return {
      version: this.info.version,
      pid: process.pid,
      worker: this.info.worker,
      uptime_seconds: (now - this.startedAt) / 1000,
      configuration: { source: this.info.configSource, loaded_at: new Date(this.configLoadedAt).toISOString(), notes: this.info.notes ?? [] },
      sessions: { open: this.openSessions, total: this.sessions.total(), by_status: Object.fromEntries(this.sessions.values) },
      messages: { total: this.messages.total(), by_status: Object.fromEntries(this.messages.values) },
      reloads: { ok: this.reloads.get("ok"), failed: this.reloads.get("failed"), last_error: this.lastReloadError ?? null },
      children: [...this.children.values()].map((c) => ({
        name: c.name,
        spec: c.spec,
        enabled: enabled.has(c.name),
        state: c.up === undefined ? "unknown" : c.up ? "up" : "down",
        since: c.since !== undefined ? new Date(c.since).toISOString() : null,
        answers: c.answers,
        failures: c.failures,
        mean_latency_seconds: c.answers > 0 ? c.latencySum / c.answers : null,
        latency_sum_seconds: c.latencySum,
        last_error: c.lastError ?? null,
        last_error_at: c.lastErrorAt !== undefined ? new Date(c.lastErrorAt).toISOString() : null,
      })),
      process: processFacts(),
    };
  }
}

export interface StatusDocument {
  version: string;
  pid: number;
  worker: number | undefined;
  uptime_seconds: number;
  configuration: { source: string; loaded_at: string; notes: string[] };
  sessions: { open: number; total: number; by_status: Record<string, number> };
  messages: { total: number; by_status: Record<string, number> };
  reloads: { ok: number; failed: number; last_error: string | null };
  children: {
    name: string;
    spec: string;
    enabled: boolean;
    state: "up" | "down" | "unknown";
    since: string | null;
    answers: number;
    failures: number;
    mean_latency_seconds: number | null;
    latency_sum_seconds: number;
    last_error: string | null;
    last_error_at: string | null;
  }[];
  process: { resident_memory_bytes: number; open_fds: number | null };
}

/** RSS and open descriptors of this process (/proc/self/fd; null where there is no /proc). */
export function processFacts(): { resident_memory_bytes: number; open_fds: number | null } {
  let fds: number | null = null;
  try {
    fds = readdirSync("/proc/self/fd").length - 1; // minus the one readdir opened
  } catch {}
  return { resident_memory_bytes: process.memoryUsage.rss(), open_fds: fds };
}
