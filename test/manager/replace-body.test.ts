// A child that replaces a large body: the manager streams the replacement to a
// spill file as it arrives and to the MTA in chunk_size packets with backpressure, so its memory
// stays flat; a child that sends more modifications than its caps counts as failed (fallback).
// The manager runs as a process; its peak RSS is read from /proc.
import { afterAll, describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { Continue, type EomResult } from "../../src/milter-side/index.ts";
import { mtaFor, startManagerProcess } from "./support/manager-process.ts";
import { type ScriptedMilter, startScriptedMilter } from "./support/scripted-milter.ts";
import { chain, expectStatus, SESSION } from "./support/harness.ts";

const children: ScriptedMilter[] = [];
afterAll(async () => {
  for (const c of children) await c.close();
});

const MB = 1024 * 1024;

/** 50 MB of body lines in 64 KiB pieces, made as they are sent (the child keeps none of it). */
function* bigBody(total: number): Generator<Uint8Array> {
  const piece = Buffer.alloc(65536);
  for (let sent = 0, n = 0; sent < total; n++) {
    const line = Buffer.from(`line ${n} of the replaced body, with some text to make it longer\r\n`, "latin1");
    let off = 0;
    while (off + line.length <= piece.length) off += line.copy(piece, off);
    const size = Math.min(off, total - sent);
    yield Buffer.from(piece.subarray(0, size));
    sent += size;
  }
}

function sha256(chunks: Iterable<Uint8Array>): string {
  const h = createHash("sha256");
  for (const c of chunks) h.update(c);
  return h.digest("hex");
}

/** The body the next child sees after `bigBody(size)` replaced it: Postfix ends its last line. */
function asNextChildSees(size: number): Uint8Array[] {
  const chunks = [...bigBody(size)];
  const last = chunks[chunks.length - 1];
  const ended = last[last.length - 2] === 0x0d && last[last.length - 1] === 0x0a;
  return ended ? chunks : [...chunks, Buffer.from("\r\n")];
}

describe("a 50 MB replaced body", () => {
  test("the MTA gets exactly the replaced body; the manager's peak RSS grows by less than 30 MB", async () => {
    const total = 50 * MB;
    // The first message gets a small replacement, kept in memory (under 1 MiB): the baseline then
    // includes what the end-of-message and replace-body code costs once per process (~12 MB of
    // heap and compiled code, whatever the size), not the spill file and streaming measured here.
    const warmSize = 200_000;
    let messages = 0;
    const replacer = await startScriptedMilter({ endOfMessage: (): EomResult => ({ reply: Continue, body: bigBody(messages++ === 0 ? warmSize : total) }) });
    const after = await startScriptedMilter({ recordBody: false });
    children.push(replacer, after);
    const m = await startManagerProcess({
      log: { level: "error", use_syslog: false },
      milters: [
        { name: "replacer", connection_spec: replacer.spec, reading_timeout: 30, end_of_message_timeout: 120, end_of_message_total_timeout: 120 },
        { name: "after", connection_spec: after.spec, reading_timeout: 30, end_of_message_timeout: 120, end_of_message_total_timeout: 120 },
      ],
    });
    const sessions: Awaited<ReturnType<typeof mtaFor>>[] = [];
    try {
      // Warm-up: a session up to the body, then one whole message through both children; the
      // baseline is the manager process's own peak RSS (/proc/PID/status VmHWM) after them.
      const idle = await mtaFor(m.port);
      sessions.push(idle);
      await chain(idle, "body");
      await idle.quit();
      const idleKb = m.peakKb();
      const warm = await mtaFor(m.port);
      sessions.push(warm);
      await chain(warm, "body");
      expectStatus(await SESSION.endOfMessage(warm), "continue");
      await warm.quit();
      const before = m.peakKb();
      const mta = await mtaFor(m.port);
      sessions.push(mta);
      await chain(mta, "body");
      const o = await SESSION.endOfMessage(mta);
      expectStatus(o, "continue");
      const peak = m.peakKb();
      const got = o.ok ? o.modifications.filter((x) => x.type === "replace-body").map((x) => (x as { chunk: Uint8Array }).chunk) : [];
      expect(got.reduce((n, c) => n + c.length, 0)).toBe(total);
      expect(sha256(got)).toBe(sha256(bigBody(total)));
      expect(Math.max(...got.map((c) => c.length))).toBeLessThanOrEqual(65535); // chunk_size packets
      // The next child got both replaced bodies, byte for byte, not the original ones.
      const seen = [...asNextChildSees(warmSize), ...asNextChildSees(total)];
      expect(after.bodyBytes).toBe(seen.reduce((n, c) => n + c.length, 0));
      expect(after.bodySha256()).toBe(sha256(seen));
      const mb = (kb: number) => (kb / 1024).toFixed(1);
      console.log(`manager peak RSS ${before} kB -> ${peak} kB (+${mb(peak - before)} MB) for a 50 MB replaced body (+${mb(peak - idleKb)} MB since before the first replaced body)`);
      expect(peak - before).toBeLessThan(30 * 1024);
    } finally {
      for (const s of sessions) s.close();
      await m.stop();
    }
  }, 120_000);
});

describe("caps on a child's modifications for one message", () => {
  test("200,000 add-header packets: the child fails at max_modifications, gets its fallback, memory stays flat", async () => {
    const flood = await startScriptedMilter({
      endOfMessage: (): EomResult => ({
        reply: Continue,
        modifications: Array.from({ length: 200_000 }, (_, i) => ({ type: "addheader" as const, name: "X-Flood", value: `value ${i}` })),
      }),
    });
    children.push(flood);
    const m = await startManagerProcess({
      log: { level: "warning", use_syslog: false },
      milters: [{ name: "flood", connection_spec: flood.spec, fallback_status: "temporary-failure", reading_timeout: 30, end_of_message_timeout: 60 }],
    });
    try {
      const warm = await mtaFor(m.port);
      await chain(warm, "body");
      await warm.quit();
      const before = m.peakKb();
      const mta = await mtaFor(m.port);
      await chain(mta, "body");
      const o = await SESSION.endOfMessage(mta);
      expectStatus(o, "temporary-failure");
      expect(o.ok && o.modifications).toEqual([]);
      const grew = m.peakKb() - before;
      console.log(`manager peak RSS +${(grew / 1024).toFixed(1)} MB for 200,000 add-header packets`);
      expect(grew).toBeLessThan(30 * 1024);
      expect(m.output()).toContain("more than 10000 modifications for one message");
      await mta.quit();
    } finally {
      await m.stop();
    }
  }, 120_000);

  test("max_modification_bytes: a child over the byte cap fails and none of its headers are applied", async () => {
    const big = await startScriptedMilter({
      endOfMessage: (): EomResult => ({
        reply: Continue,
        modifications: Array.from({ length: 40 }, (_, i) => ({ type: "addheader" as const, name: `X-Big-${i}`, value: "v".repeat(1000) })),
      }),
    });
    children.push(big);
    const m = await startManagerProcess({
      log: { level: "warning", use_syslog: false },
      milters: [{ name: "big", connection_spec: big.spec, fallback_status: "accept", max_modification_bytes: 20_000 }],
    });
    try {
      const mta = await mtaFor(m.port);
      await chain(mta, "body");
      const o = await SESSION.endOfMessage(mta);
      expectStatus(o, "accept"); // its fallback_status
      expect(o.ok && o.modifications).toEqual([]);
      expect(m.output()).toContain("more than 20000 bytes of modifications for one message");
      await mta.quit();
    } finally {
      await m.stop();
    }
  }, 60_000);
});
