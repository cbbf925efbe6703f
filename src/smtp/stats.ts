// Counting and summarising an smtp-source run. Pure: numbers in, text/JSON out.
import { type LatencySummary, percentile, summarizeSorted } from "../runtime/latency.ts";

/** Latency samples in milliseconds, grown on demand (bounded by the message count). */
export class Samples {
  private data: Float64Array;
  length = 0;

  constructor(expected = 1024) {
    this.data = new Float64Array(Math.max(16, Math.min(expected, 1 << 20)));
  }

  add(ms: number): void {
    if (this.length === this.data.length) {
      const next = new Float64Array(this.data.length * 2);
      next.set(this.data);
      this.data = next;
    }
    this.data[this.length++] = ms;
  }

  /** Sorted copy of the samples. */
  sorted(): Float64Array {
    return this.data.slice(0, this.length).sort();
  }
}

export { type LatencySummary, percentile };

export function summarizeLatency(samples: Samples): LatencySummary {
  return summarizeSorted(samples.sorted());
}

export interface RunSummary {
  target: string;
  protocol: "SMTP" | "LMTP";
  pipelining: boolean;
  sessions: number;
  connections: number;
  messagesRequested: number;
  /** Messages whose end of data was accepted (for LMTP: by every recipient). */
  sent: number;
  failed: number;
  /** Failed messages by the reply code that failed them, or "connection"/"timeout". */
  failures: Record<string, number>;
  recipients: number;
  bytes: number;
  elapsedSeconds: number;
  messagesPerSecond: number;
  latencyMs: LatencySummary;
  /** The fatal error that ended the run early, if any. */
  fatal?: string;
}

const fmt = (x: number, digits: number) => (Number.isNaN(x) ? "-" : x.toFixed(digits));

/** Human summary, a few lines for stderr. */
export function formatSummary(s: RunSummary, prog = "smtp-source"): string {
  const failures = Object.entries(s.failures).sort(([a], [b]) => a.localeCompare(b))
    .map(([k, v]) => `${k}=${v}`).join(" ");
  const l = s.latencyMs;
  const lines = [
    `${prog}: ${s.sent} sent, ${s.failed} failed` + (failures ? ` (${failures})` : "") +
      ` of ${s.messagesRequested} messages, ${s.recipients} recipients, ` +
      `${s.sessions} session${s.sessions === 1 ? "" : "s"}, ${s.connections} connection${s.connections === 1 ? "" : "s"}` +
      `, ${s.protocol}${s.pipelining ? " with PIPELINING" : ""}`,
    `${prog}: ${fmt(s.elapsedSeconds, 3)} s, ${fmt(s.messagesPerSecond, 1)} messages/s; latency per message ms: ` +
      `p50 ${fmt(l.p50, 3)} p90 ${fmt(l.p90, 3)} p99 ${fmt(l.p99, 3)} max ${fmt(l.max, 3)}`,
  ];
  return lines.join("\n") + "\n";
}

/** JSON summary (NaN becomes null). */
export function summaryJson(s: RunSummary): string {
  return JSON.stringify(s, (_k, v) => (typeof v === "number" && !Number.isFinite(v) ? null : v));
}
