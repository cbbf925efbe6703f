// Every wait for a child has an overall deadline: a child that drips its reply a
// byte at a time, or sends `p` (progress) where it is not allowed, cannot hold the MTA beyond its
// reading_timeout; at end-of-message `p` extends end_of_message_timeout, forwarded to the MTA,
// up to end_of_message_total_timeout. Each time the MTA gets the child's fallback_status.
import { afterEach, describe, expect, test } from "bun:test";
import { encodeReplies } from "../../src/milter/index.ts";
import { defaultMilter } from "../../src/manager/config/schema.ts";
import { type MilterSession, type ScriptedMilter, type ScriptOptions, startScriptedMilter } from "../mta-side/scripted-milter.ts";
import { chain, expectStatus, SESSION, type Setup, setup } from "./support/harness.ts";

let s: Setup | undefined;
let raw: ScriptedMilter | undefined;
afterEach(async () => {
  await s?.close();
  raw?.stop();
  s = raw = undefined;
});

/** Write `bytes` one byte every `ms` while the child's connection is open. */
async function drip(session: MilterSession, bytes: Uint8Array, ms: number): Promise<Uint8Array> {
  for (let i = 0; i < bytes.length && !session.closed; i++) {
    session.write(bytes.subarray(i, i + 1));
    await Bun.sleep(ms);
  }
  return new Uint8Array(0);
}

/** A raw child, first in line (fallback temporary-failure), before one well-behaved scripted child. */
async function withRawChild(onCommand: NonNullable<ScriptOptions["onCommand"]>, items: object): Promise<Setup> {
  raw = startScriptedMilter({ onCommand });
  s = await setup({ scripts: [{}], before: [{ ...defaultMilter("raw", raw.spec), fallback_status: "temporary-failure", ...items }] });
  return s;
}

describe("a child's reply cannot be stretched", () => {
  // Bounds are several times the timeout (timers fire late under load), far below the whole drip.
  test("a connect reply dripped one byte every 150 ms: temporary-failure after reading_timeout (0.4 s), not the late reject", async () => {
    // 37 bytes: 5.5 s for the whole reply.
    const setupDone = await withRawChild(
      (cmd, session) => (cmd.type === "connect" ? drip(session, encodeReplies([{ type: "replycode", text: "550 5.7.1 sent one byte at a time" }]), 150) : "default"),
      { reading_timeout: 0.4 },
    );
    const mta = await setupDone.mta();
    const t0 = Date.now();
    expectStatus(await SESSION.connect(mta), "temporary-failure");
    expect(Date.now() - t0).toBeLessThan(2000);
  });

  test("an end-of-message reply dripped one byte every 100 ms: fallback after end_of_message_timeout (0.4 s)", async () => {
    const reply = encodeReplies([{ type: "addheader", name: "X-Dripped", value: "yes" }, { type: "continue" }]);
    const setupDone = await withRawChild((cmd, session) => (cmd.type === "eob" ? drip(session, reply, 100) : "default"), { end_of_message_timeout: 0.4 });
    const mta = await setupDone.mta();
    await chain(mta, "body");
    const t0 = Date.now();
    const o = await SESSION.endOfMessage(mta);
    expectStatus(o, "temporary-failure");
    expect(Date.now() - t0).toBeLessThan(2000); // the whole reply takes 3.5 s
    expect(o.ok && o.modifications).toEqual([]);
  });

  test("`p` every 100 ms at RCPT: a protocol error, fallback at once, nothing swallowed", async () => {
    const setupDone = await withRawChild(async (cmd, session) => {
      if (cmd.type !== "rcpt") return "default";
      for (let i = 0; i < 60 && !session.closed; i++) { // 6 s if each `p` restarted the 2 s timer
        session.write([{ type: "progress" }]);
        await Bun.sleep(100);
      }
      return [{ type: "continue" }];
    }, { reading_timeout: 2 });
    const mta = await setupDone.mta();
    await chain(mta, "envelopeFrom");
    const t0 = Date.now();
    expectStatus(await SESSION.envelopeRecipient(mta), "temporary-failure");
    expect(Date.now() - t0).toBeLessThan(2000);
  });

  test("`p` every 100 ms at end-of-message: forwarded to the MTA, extends the wait, but not beyond end_of_message_total_timeout", async () => {
    const setupDone = await withRawChild(async (cmd, session) => {
      if (cmd.type !== "eob") return "default";
      for (let i = 0; i < 100 && !session.closed; i++) {
        session.write([{ type: "progress" }]);
        await Bun.sleep(100);
      }
      return [{ type: "continue" }];
    }, { end_of_message_timeout: 0.3, end_of_message_total_timeout: 1.2 });
    let progress = 0;
    const mta = await setupDone.mta({ onProgress: () => progress++ });
    await chain(mta, "body");
    const t0 = Date.now();
    const o = await SESSION.endOfMessage(mta);
    const took = Date.now() - t0;
    expectStatus(o, "temporary-failure");
    expect(took).toBeGreaterThanOrEqual(1100); // progress kept it past the 0.3 s end_of_message_timeout
    expect(took).toBeLessThan(5000); // the total ended it (unbounded: 10 s of `p`)
    expect(progress).toBeGreaterThan(5);
  });
});
