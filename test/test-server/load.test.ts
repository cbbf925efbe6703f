import { afterEach, expect, test } from "bun:test";
import { decodeCommands } from "../../src/milter/index.ts";
import { FramedConnection } from "../../src/net/connection.ts";
import { percentile, summarizeLatency } from "../../src/test-server/load.ts";
import { startScriptedMilter, type Answer, type ScriptedMilter, type ScriptOptions } from "../mta-side/scripted-milter.ts";
import { SMALL_EML, run, types } from "./helpers.ts";

let milter: ScriptedMilter | undefined;
afterEach(() => {
  milter?.stop();
  milter = undefined;
});

function start(opts: ScriptOptions = {}): string {
  milter = startScriptedMilter(opts);
  return milter.spec;
}

test("percentiles: nearest rank", () => {
  const s = new Float64Array([5, 1, 4, 2, 3, 6, 7, 8, 9, 10]);
  expect(summarizeLatency(s)).toEqual({ count: 10, min: 1, mean: 5.5, p50: 5, p90: 9, p99: 10, max: 10 });
  expect(percentile([], 50)).toBeNaN();
  expect(percentile([7], 99)).toBe(7);
});

test("load mode: N complete sessions with C in flight, summary with rate and latency", async () => {
  let inFlight = 0;
  let maxInFlight = 0;
  const spec = start({
    onCommand: async (cmd): Promise<Answer> => {
      if (cmd.type === "connect") maxInFlight = Math.max(maxInFlight, ++inFlight);
      if (cmd.type === "eob") {
        await Bun.sleep(2);
        inFlight--;
      }
      return "default";
    },
  });
  const r = await run(["-s", spec, "-m", SMALL_EML, "--sessions", "60", "--concurrency", "6"]);
  expect(r.code).toBe(0);
  const lines = r.stdout.split("\n");
  expect(lines[0]).toBe(`sessions: 60 completed, 0 failed of 60 (concurrency 6) against ${spec}`);
  expect(lines[1]).toMatch(/^messages: 60 in [0-9.]+ s: [0-9.]+ messages\/s$/);
  expect(lines[2]).toMatch(/^latency ms \(connect to final end-of-message reply, per session\): p50 [0-9.]+ p90 [0-9.]+ p99 [0-9.]+ max [0-9.]+$/);
  expect(lines.slice(3)).toEqual(["status: pass 60", "errors: none", ""]);
  expect(milter!.sessions.length).toBe(60);
  for (let i = 0; i < 200 && milter!.sessions.some((s) => !s.closed); i++) await Bun.sleep(5);
  await Bun.sleep(5);
  expect(maxInFlight).toBeLessThanOrEqual(6);
  expect(maxInFlight).toBeGreaterThan(1);
  for (const s of milter!.sessions) {
    expect(types(s.commands)).toBe("DC connect DH helo DM mail DR rcpt DT data header header header header header DN eoh body DE eob quit");
  }
});

test("load mode reuses one encoded session for every connection", async () => {
  const spec = start();
  const batches: Uint8Array[] = [];
  const original = FramedConnection.prototype.send;
  FramedConnection.prototype.send = function (this: FramedConnection, batch: Uint8Array) {
    batches.push(batch);
    return original.call(this, batch);
  };
  try {
    expect((await run(["-s", spec, "--sessions", "5", "--concurrency", "2"])).code).toBe(0);
  } finally {
    FramedConnection.prototype.send = original;
  }
  const connects = batches.filter((b) => decodeCommands(b).some((c) => c.type === "connect"));
  expect(connects.length).toBe(5);
  for (const b of connects) expect(b).toBe(connects[0]); // the same Buffer object each time
});

test("load mode: several messages per session, statuses counted, JSON summary", async () => {
  let n = 0;
  const spec = start({ onCommand: (cmd) => (cmd.type === "eob" ? (++n % 3 === 0 ? [{ type: "reject" }] : "default") : "default") });
  const r = await run(["-s", spec, "--sessions", "10", "--concurrency", "3", "--n-messages", "3", "--json"]);
  expect(r.code).toBe(0);
  const j = JSON.parse(r.stdout);
  expect(j).toMatchObject({ sessionsRequested: 10, concurrency: 3, completed: 10, failed: 0, cancelled: 0, notStarted: 0, timeLimitReached: false, messages: 30, errors: {} });
  expect(j.statuses).toEqual({ pass: 20, reject: 10 });
  expect(j.latencyMs.count).toBe(10);
  expect(j.messagesPerSecond).toBeGreaterThan(0);
});

test("load mode: errors by kind with an example, exit 1", async () => {
  const spec = start({
    onCommand: (cmd, s) => {
      if (cmd.type === "connect" && s.index % 4 === 0) return new Promise<Answer>(() => {});
      if (cmd.type === "helo" && s.index % 4 === 1) return [{ type: "addheader", name: "X", value: "y" }];
      return "default";
    },
  });
  const r = await run(["-s", spec, "--sessions", "8", "--concurrency", "4", "--reading-timeout", "0.2"]);
  expect(r.code).toBe(1);
  expect(r.stdout).toContain("sessions: 4 completed, 4 failed of 8");
  expect(r.stdout).toContain("errors: protocol-error 2, timeout/reading 2\n");
  expect(r.stdout).toContain("  timeout/reading: connect: ");
  expect(r.stdout).toContain("  protocol-error: helo: ");
});

test("load mode is bounded in time: --max-time closes running sessions and starts no more", async () => {
  const spec = start({ onCommand: (cmd) => (cmd.type === "eob" ? new Promise<Answer>(() => {}) : "default") });
  const t0 = performance.now();
  const r = await run(["-s", spec, "--sessions", "1000", "--concurrency", "4", "--max-time", "0.3", "--end-of-message-timeout", "60", "--json"]);
  expect(performance.now() - t0).toBeLessThan(10_000); // bounded, not a timing assertion on the milter
  expect(r.code).toBe(1);
  const j = JSON.parse(r.stdout);
  expect(j).toMatchObject({ timeLimitReached: true, completed: 0, failed: 0, cancelled: 4, notStarted: 996 });
});

test("load mode against an unreachable milter: connection errors counted", async () => {
  const spec = start();
  milter!.stop();
  milter = undefined;
  const r = await run(["-s", spec, "--sessions", "3", "--concurrency", "3"]);
  expect(r.code).toBe(1);
  expect(r.stdout).toContain("errors: connection-error 3\n");
});
