// The client's per-read timers are made once and restarted for every step (client.ts armTimers):
// a quick answer must not leave a stale timer that fails a later step early, a slow step after
// quick ones still times out, and a step of the other kind (end-of-message) keeps its own timeout.
import { afterEach, expect, test } from "bun:test";
import type { MtaCommand } from "../../src/milter/index.ts";
import { MilterClient, type MilterClientOptions } from "../../src/mta-side/index.ts";
import { type Answer, type MilterSession, type ScriptedMilter, sleep, startScriptedMilter } from "./scripted-milter.ts";

let milter: ScriptedMilter | undefined;
let client: MilterClient | undefined;
afterEach(() => {
  client?.close();
  milter?.stop();
  client = milter = undefined;
});

async function session(onCommand: (cmd: MtaCommand, s: MilterSession) => Answer | Promise<Answer>, options: Partial<MilterClientOptions>): Promise<MilterClient> {
  milter = startScriptedMilter({ negotiate: (o) => ({ type: "optneg", version: 6, actions: o.actions, protocol: 0 }), onCommand });
  client = new MilterClient({ spec: milter.spec, ...options });
  const r = await client.open();
  if (!r.ok) throw new Error(r.detail);
  return client;
}

test("steps that each take most of the reading timeout all succeed: every step restarts the timer", async () => {
  // 4 steps × 70 ms = 280 ms in all, beyond the 200 ms timeout; each one alone is well within it.
  const c = await session(async (): Promise<Answer> => {
    await sleep(70);
    return "default";
  }, { readingTimeoutMs: 200 });
  expect(await c.connect("h", { family: "4", address: "192.0.2.1", port: 25 })).toMatchObject({ ok: true, status: "continue" });
  expect(await c.helo("h")).toMatchObject({ ok: true, status: "continue" });
  expect(await c.envelopeFrom("<a@b>")).toMatchObject({ ok: true, status: "continue" });
  expect(await c.envelopeRecipient("<c@d>")).toMatchObject({ ok: true, status: "continue" });
});

test("a pause between steps longer than the timeout does not count against the next step", async () => {
  const c = await session(() => "default", { readingTimeoutMs: 100 });
  expect(await c.helo("h")).toMatchObject({ ok: true, status: "continue" });
  await sleep(250); // the timer fires meanwhile, with no step pending: nothing happens
  expect(c.closed).toBe(false);
  expect(await c.envelopeFrom("<a@b>")).toMatchObject({ ok: true, status: "continue" });
});

test("after quick steps, a step without an answer still times out (reading), then end-of-message has its own", async () => {
  let silentAt: string | undefined = "mail";
  const c = await session((cmd) => (cmd.type === silentAt ? new Promise<Answer>(() => {}) : "default"), { readingTimeoutMs: 120, endOfMessageTimeoutMs: 2000 });
  expect(await c.helo("h")).toMatchObject({ ok: true, status: "continue" });
  const r = await c.envelopeFrom("<a@b>");
  expect(r).toMatchObject({ ok: false, status: "timeout", timer: "reading", stage: "envelope-from" });

  // A new connection: end-of-message answered after 300 ms (> reading timeout) is fine.
  client?.close();
  milter?.stop();
  silentAt = undefined;
  const c2 = await session(async (cmd): Promise<Answer> => {
    if (cmd.type === "eob") await sleep(300);
    return "default";
  }, { readingTimeoutMs: 120, endOfMessageTimeoutMs: 2000 });
  expect(await c2.envelopeFrom("<a@b>")).toMatchObject({ ok: true, status: "continue" });
  expect(await c2.envelopeRecipient("<c@d>")).toMatchObject({ ok: true, status: "continue" });
  expect(await c2.endOfMessage()).toMatchObject({ ok: true, status: "continue" });
  expect(await c2.envelopeFrom("<a@b>")).toMatchObject({ ok: true, status: "continue" });
});
