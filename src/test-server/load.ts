/**
 * Load mode (our milter-performance-check): N complete sessions, C in
 * flight, in one process; one connection per session, as load generator L
 * of docs/reference-performance.md. Sessions share one prepared (encoded)
 * session per negotiation. Bounded in count (--sessions) and time
 * (--max-time: no new sessions after it, running ones are closed).
 * Latency per session: from the connect to the final end-of-message reply
 * of its last message, measured with performance.now().
 */
import { type LatencySummary, percentile, summarizeSorted } from "../runtime/latency.ts";
import { MilterClient, type MilterClientOptions } from "../mta-side/index.ts";
import { formatSpec } from "../net/spec.ts";
import type { PreparedSession, SessionPlan } from "./plan.ts";
import { runSession, type SessionResult } from "./session.ts";

export interface LoadOptions {
  plan: SessionPlan;
  client: MilterClientOptions;
  sessions: number;
  concurrency: number;
  maxTimeMs: number;
  /** Called with each finished session (e.g. for a progress line). */
  onSession?: (r: SessionResult, done: number) => void;
}

export type { LatencySummary };

export interface LoadSummary {
  spec: string;
  sessionsRequested: number;
  concurrency: number;
  /** Sessions that ran to the end with a decision for every message. */
  completed: number;
  /** Sessions that ended in a failure (timeout, closed, protocol error, connection error). */
  failed: number;
  /** Sessions closed because --max-time was reached. */
  cancelled: number;
  /** Sessions never started because --max-time was reached. */
  notStarted: number;
  timeLimitReached: boolean;
  /** Messages that got a final decision. */
  messages: number;
  elapsedSeconds: number;
  messagesPerSecond: number;
  sessionsPerSecond: number;
  /** Per completed session, ms. */
  latencyMs: LatencySummary;
  /** Final status of every decided message: pass, reject, … */
  statuses: Record<string, number>;
  /** Failures by kind: `timeout/reading`, `closed`, `protocol-error`, `connection-error`, … */
  errors: Record<string, number>;
  /** First failure detail of each kind, for the report. */
  errorExamples: Record<string, string>;
}

export { percentile };

export function summarizeLatency(samples: Float64Array): LatencySummary {
  return summarizeSorted(samples.slice().sort());
}

export async function runLoad(o: LoadOptions): Promise<LoadSummary> {
  const cache = new Map<string, PreparedSession>();
  const latencies = new Float64Array(o.sessions);
  let nLatencies = 0;
  const statuses: Record<string, number> = {};
  const errors: Record<string, number> = {};
  const errorExamples: Record<string, string> = {};
  const active = new Set<MilterClient>();
  const cancelledClients = new WeakSet<MilterClient>();
  let started = 0;
  let finished = 0;
  let completed = 0;
  let failed = 0;
  let cancelled = 0;
  let messages = 0;
  let stopped = false;
  const t0 = performance.now();
  let timer: Timer | undefined;

  await new Promise<void>((resolve) => {
    const launch = (): void => {
      while (!stopped && started < o.sessions && active.size < o.concurrency) {
        started++;
        const client = new MilterClient(o.client);
        active.add(client);
        runSession({ plan: o.plan, client, cache }).then(
          (r) => record(client, r),
          (e) => record(client, undefined, e),
        );
      }
      if (active.size === 0) resolve();
    };
    const record = (client: MilterClient, r: SessionResult | undefined, error?: unknown): void => {
      active.delete(client);
      finished++;
      if (!r) {
        failed++;
        errors["internal"] = (errors["internal"] ?? 0) + 1;
        errorExamples["internal"] ??= String((error as Error)?.stack ?? error);
      } else if (r.failure && cancelledClients.has(client)) {
        cancelled++;
      } else {
        for (const m of r.messages) {
          if (m.status === "error") continue;
          messages++;
          statuses[m.status] = (statuses[m.status] ?? 0) + 1;
        }
        if (r.failure) {
          failed++;
          const kind = r.failure.timer ? `${r.failure.status}/${r.failure.timer}` : r.failure.status;
          errors[kind] = (errors[kind] ?? 0) + 1;
          errorExamples[kind] ??= `${r.failure.stage}: ${r.failure.detail}`;
        } else {
          completed++;
          latencies[nLatencies++] = r.decidedMs;
        }
        o.onSession?.(r, finished);
      }
      launch();
    };
    timer = setTimeout(() => {
      stopped = true;
      for (const c of active) {
        cancelledClients.add(c);
        c.close();
      }
    }, o.maxTimeMs);
    launch();
  });
  clearTimeout(timer);
  const elapsed = (performance.now() - t0) / 1000;
  return {
    spec: typeof o.client.spec === "string" ? o.client.spec : formatSpec(o.client.spec),
    sessionsRequested: o.sessions,
    concurrency: o.concurrency,
    completed,
    failed,
    cancelled,
    notStarted: o.sessions - started,
    timeLimitReached: stopped,
    messages,
    elapsedSeconds: elapsed,
    messagesPerSecond: messages / elapsed,
    sessionsPerSecond: completed / elapsed,
    latencyMs: summarizeLatency(latencies.subarray(0, nLatencies)),
    statuses,
    errors,
    errorExamples,
  };
}

const fmt = (x: number, digits: number) => (Number.isNaN(x) ? "-" : x.toFixed(digits));

export function formatLoadSummary(s: LoadSummary): string {
  const l = s.latencyMs;
  const kv = (r: Record<string, number>) => Object.entries(r).sort(([a], [b]) => a.localeCompare(b)).map(([k, v]) => `${k} ${v}`).join(", ");
  const lines = [
    `sessions: ${s.completed} completed, ${s.failed} failed of ${s.sessionsRequested} (concurrency ${s.concurrency}) against ${s.spec}`,
    `messages: ${s.messages} in ${fmt(s.elapsedSeconds, 3)} s: ${fmt(s.messagesPerSecond, 1)} messages/s`,
    `latency ms (connect to final end-of-message reply, per session): p50 ${fmt(l.p50, 3)} p90 ${fmt(l.p90, 3)} p99 ${fmt(l.p99, 3)} max ${fmt(l.max, 3)}`,
    `status: ${kv(s.statuses) || "none"}`,
    `errors: ${kv(s.errors) || "none"}`,
  ];
  for (const [k, v] of Object.entries(s.errorExamples)) lines.push(`  ${k}: ${v}`);
  if (s.timeLimitReached) {
    lines.push(`max-time reached: ${s.notStarted} sessions not started, ${s.cancelled} closed while running`);
  }
  return lines.join("\n") + "\n";
}

/** JSON (NaN becomes null). */
export function loadSummaryJson(s: LoadSummary): string {
  return JSON.stringify(s, (_k, v) => (typeof v === "number" && !Number.isFinite(v) ? null : v));
}
