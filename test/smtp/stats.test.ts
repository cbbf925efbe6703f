import { describe, expect, test } from "bun:test";
import { formatSummary, percentile, type RunSummary, Samples, summarizeLatency, summaryJson } from "../../src/smtp/stats.ts";
import { Progress, progressLine } from "../../src/smtp/progress.ts";

describe("stats", () => {
  test("nearest-rank percentiles", () => {
    const s = Float64Array.from({ length: 100 }, (_, i) => i + 1);
    expect(percentile(s, 50)).toBe(50);
    expect(percentile(s, 90)).toBe(90);
    expect(percentile(s, 99)).toBe(99);
    expect(percentile(s, 100)).toBe(100);
    expect(percentile([7], 99)).toBe(7);
    expect(Number.isNaN(percentile([], 50))).toBe(true);
  });
  test("samples grow and summarise", () => {
    const s = new Samples(2);
    for (let i = 1000; i >= 1; i--) s.add(i / 10);
    const l = summarizeLatency(s);
    expect(l).toEqual({ count: 1000, min: 0.1, mean: 50.05, p50: 50, p90: 90, p99: 99, max: 100 });
  });
  const summary: RunSummary = {
    target: "127.0.0.1:25", protocol: "SMTP", pipelining: true, sessions: 2, connections: 10, messagesRequested: 12,
    sent: 10, failed: 2, failures: { "450": 1, connection: 1 }, recipients: 10, bytes: 1000, elapsedSeconds: 2,
    messagesPerSecond: 5, latencyMs: summarizeLatency(new Samples()),
  };
  test("human summary", () => {
    const t = formatSummary(summary);
    expect(t).toContain("smtp-source: 10 sent, 2 failed (450=1 connection=1) of 12 messages, 10 recipients, 2 sessions, 10 connections, SMTP with PIPELINING\n");
    expect(t).toContain("smtp-source: 2.000 s, 5.0 messages/s; latency per message ms: p50 - p90 - p99 - max -\n");
  });
  test("JSON summary: NaN becomes null", () => {
    const j = JSON.parse(summaryJson(summary));
    expect(j.sent).toBe(10);
    expect(j.failures).toEqual({ "450": 1, connection: 1 });
    expect(j.latencyMs.p50).toBeNull();
  });
  test("progress line", () => {
    expect(progressLine({ done: 50, failed: 1, total: 100, elapsedSeconds: 2 })).toBe("51/100 (51%) sent 50 failed 1 25 msg/s 2.0s");
  });
  test("Progress redraws the line in place and erases it at the end", async () => {
    const writes: string[] = [];
    let done = 0;
    const p = new Progress(() => ({ done: ++done, failed: 0, total: 10, elapsedSeconds: 1 }), 2, (_fd, s) => { writes.push(s); });
    p.start(10);
    await Bun.sleep(60);
    p.stop();
    expect(writes.length).toBeGreaterThan(1);
    expect(writes[0]).toMatch(/^\r\x1b\[K\d+\/10 \(\d+%\) sent \d+ failed 0 \d+ msg\/s 1\.0s$/);
    expect(writes.at(-1)).toBe("\r\x1b[K");
    const n = writes.length;
    await Bun.sleep(30);
    expect(writes.length).toBe(n);
  });
});
