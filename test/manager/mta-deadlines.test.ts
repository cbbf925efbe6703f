// Deadlines on the MTA's side of the manager: connections that never negotiate,
// that stop in the middle of a packet, or that negotiate and then stay silent are closed within
// manager.negotiation_timeout / packet_timeout / idle_timeout; the manager's descriptors return to
// their baseline, and normal sessions are served meanwhile. Run against the manager as a process.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { Socket } from "bun";
import { encodeCommand } from "../../src/milter/index.ts";
import { SMFI_CURR_ACTS, SMFI_CURR_PROT, SMFI_PROT_VERSION } from "../../src/milter/constants.ts";
import { type RunningManager, mtaFor, startManagerProcess } from "./support/manager-process.ts";
import { type ScriptedMilter, startScriptedMilter } from "./support/scripted-milter.ts";
import { chain, expectStatus, SESSION } from "./support/harness.ts";

const OPTNEG = encodeCommand({ type: "optneg", version: SMFI_PROT_VERSION, actions: SMFI_CURR_ACTS, protocol: SMFI_CURR_PROT });
/** The first 7 of the 17 bytes of a HELO packet: a length word and part of the data. */
const HALF_PACKET = encodeCommand({ type: "helo", hostname: "delian.example" }).subarray(0, 7);

interface Raw {
  closedAt: number | undefined;
  gotReply: boolean;
  socket: Socket<undefined>;
}

/** Open `n` raw connections (in batches, bounded) and send each `first` (and `then` once replied to). */
async function openRaw(port: number, n: number, first?: Uint8Array, then?: Uint8Array): Promise<Raw[]> {
  const all: Raw[] = [];
  for (let i = 0; i < n; i += 100) {
    const batch = await Promise.all(
      Array.from({ length: Math.min(100, n - i) }, async () => {
        const r: Raw = { closedAt: undefined, gotReply: false, socket: undefined as never };
        r.socket = await Bun.connect({
          hostname: "127.0.0.1",
          port,
          socket: {
            data(s) {
              if (r.gotReply) return;
              r.gotReply = true;
              if (then) s.write(then);
            },
            close() {
              r.closedAt ??= Date.now();
            },
            error() {},
          },
        });
        if (first) r.socket.write(first);
        return r;
      }),
    );
    all.push(...batch);
  }
  return all;
}

async function until(check: () => boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (!check() && Date.now() < end) await Bun.sleep(50);
  return check();
}

async function normalSession(port: number): Promise<void> {
  const mta = await mtaFor(port, { readingTimeoutMs: 10_000 });
  await chain(mta, "body");
  expectStatus(await SESSION.endOfMessage(mta), "continue");
  await mta.quit();
}

describe("deadlines on the MTA side", () => {
  let child: ScriptedMilter;
  beforeAll(async () => {
    child = await startScriptedMilter({});
  });
  afterAll(async () => {
    await child?.close();
  });

  test("1,000 silent and 1,000 half-packet connections are closed within the deadlines; normal sessions served meanwhile", async () => {
    const m: RunningManager = await startManagerProcess({
      log: { level: "warning", use_syslog: false },
      manager: { negotiation_timeout: 2, packet_timeout: 2, idle_timeout: 600 },
      milters: [{ name: "child", connection_spec: child.spec }],
    });
    try {
      await normalSession(m.port);
      const baseline = m.fds();
      const t0 = Date.now();
      const silent = await openRaw(m.port, 1000);
      // Negotiated, then half a packet: only the packet deadline applies (the idle time is 600 s).
      const half = await openRaw(m.port, 1000, OPTNEG, HALF_PACKET);
      const opened = Date.now();
      expect(await until(() => half.every((r) => r.gotReply), 10_000)).toBe(true);
      let served = 0;
      const all = [...silent, ...half];
      while (all.some((r) => r.closedAt === undefined) && Date.now() - opened < 20_000) {
        await normalSession(m.port);
        served++;
      }
      const open = all.filter((r) => r.closedAt === undefined).length;
      for (const r of all) r.socket.terminate();
      expect(open).toBe(0);
      expect(served).toBeGreaterThan(0);
      // Deadline 2 s after each connection's start (the last opened at `opened`), plus room for load.
      const last = Math.max(...all.map((r) => r.closedAt!));
      expect(last - opened).toBeLessThan(12_000);
      expect(Math.min(...all.map((r) => r.closedAt!)) - t0).toBeGreaterThanOrEqual(1500);
      expect(await until(() => m.fds() <= baseline, 10_000)).toBe(true);
      expect(m.output()).toContain("did not negotiate within 2000 ms");
      expect(m.output()).toContain("did not finish a started packet within 2000 ms");
      await normalSession(m.port);
    } finally {
      await m.stop();
    }
  }, 90_000);

  test("max_connections = 20: twenty negotiated-then-silent connections end at idle_timeout and free the places", async () => {
    const m = await startManagerProcess({
      log: { level: "warning", use_syslog: false },
      manager: { max_connections: 20, idle_timeout: 2 },
      milters: [{ name: "child", connection_spec: child.spec }],
    });
    try {
      const idle = await openRaw(m.port, 20, OPTNEG);
      expect(await until(() => idle.every((r) => r.gotReply), 10_000)).toBe(true);
      const started = Date.now();
      // The 21st session waits for a place; it gets one once the silent ones are closed.
      await normalSession(m.port);
      expect(Date.now() - started).toBeGreaterThanOrEqual(1000);
      expect(await until(() => idle.every((r) => r.closedAt !== undefined), 10_000)).toBe(true);
      for (const r of idle) r.socket.terminate();
      // and the child's connections for them are gone too
      expect(await until(() => child.live === 0, 10_000)).toBe(true);
    } finally {
      await m.stop();
    }
  }, 60_000);
});
