import { afterEach, expect, test } from "bun:test";
import { encodeReplies, SMFIP_NR_BODY, type MtaCommand } from "../../src/milter/index.ts";
import { MilterClient, type MilterClientOptions } from "../../src/mta-side/index.ts";
import { startScriptedMilter, type Answer, type MilterSession, type ScriptedMilter } from "./scripted-milter.ts";

let milter: ScriptedMilter | undefined;
let client: MilterClient | undefined;
afterEach(() => {
  client?.close();
  milter?.stop();
  client = milter = undefined;
});

async function session(onCommand: (cmd: MtaCommand, s: MilterSession) => Answer | Promise<Answer>, options: Partial<MilterClientOptions>, protocol = 0): Promise<MilterClient> {
  milter = startScriptedMilter({ negotiate: (o) => ({ type: "optneg", version: 6, actions: o.actions, protocol }), onCommand });
  client = new MilterClient({ spec: milter.spec, ...options });
  const r = await client.open();
  if (!r.ok) throw new Error(r.detail);
  return client;
}

const never = () => new Promise<Answer>(() => {});

test("reading timeout: no reply to HELO", async () => {
  const c = await session((cmd) => (cmd.type === "helo" ? never() : "default"), { readingTimeoutMs: 150 });
  const r = await c.helo("h");
  expect(r).toMatchObject({ ok: false, status: "timeout", timer: "reading", stage: "helo" });
  if (!r.ok) expect(r.detail).toBe(`${milter!.spec}: no reply to helo within 0.15 s`);
  expect(c.closed).toBe(true);
  expect(await c.envelopeFrom("<a@b>")).toMatchObject({ ok: false, status: "closed", stage: "envelope-from" });
});

test("reading timeout also covers the negotiation", async () => {
  milter = startScriptedMilter({ negotiate: () => new Uint8Array(0) });
  client = new MilterClient({ spec: milter.spec, readingTimeoutMs: 100 });
  expect(await client.open()).toMatchObject({ ok: false, status: "timeout", timer: "reading", stage: "negotiate" });
});

/** Write `bytes` one byte every `ms` (as long as the session is open). */
async function drip(s: MilterSession, bytes: Uint8Array, ms: number): Promise<Answer> {
  for (let i = 0; i < bytes.length && !s.closed; i++) {
    s.write(bytes.subarray(i, i + 1));
    await Bun.sleep(ms);
  }
  return new Uint8Array(0);
}

// The bounds below are several times the timeout (a loaded machine fires timers late) and far
// below what a deadline restarted by every byte would take (the whole drip).
test("a reply dripped one byte at a time does not extend the reading deadline (negotiation, connect)", async () => {
  // 13 bytes of OPTNEG reply at 180 ms each = 2.3 s; the deadline is 200 ms after OPTNEG was sent.
  milter = startScriptedMilter({ negotiate: () => new Uint8Array(0) });
  const optneg = encodeReplies([{ type: "optneg", version: 6, actions: 0, protocol: 0 }]);
  const m = milter;
  const started = Date.now();
  client = new MilterClient({ spec: m.spec, readingTimeoutMs: 200 });
  const opening = client.open();
  await Bun.sleep(20);
  void drip(m.sessions[0], optneg, 180);
  expect(await opening).toMatchObject({ ok: false, status: "timeout", timer: "reading", stage: "negotiate" });
  expect(Date.now() - started).toBeLessThan(1000);
  client.close();
  m.stop();

  // A 37-byte reply at 100 ms a byte = 3.7 s; the deadline is 150 ms.
  const c = await session((cmd, s) => (cmd.type === "connect" ? drip(s, encodeReplies([{ type: "replycode", text: "550 5.7.1 sent one byte at a time" }]), 100) : "default"), { readingTimeoutMs: 150 });
  const t0 = Date.now();
  expect(await c.connect("h", { family: "U" })).toMatchObject({ ok: false, status: "timeout", timer: "reading", stage: "connect" });
  expect(Date.now() - t0).toBeLessThan(750);
});

test("a reply dripped one byte at a time does not extend the end-of-message deadline", async () => {
  const reply = encodeReplies([{ type: "addheader", name: "X-Slow", value: "yes" }, { type: "continue" }]);
  // About 30 bytes at 150 ms a byte = 4.5 s; the deadline is 200 ms.
  const c = await session((cmd, s) => (cmd.type === "eob" ? drip(s, reply, 150) : "default"), { readingTimeoutMs: 5000, endOfMessageTimeoutMs: 200 });
  const t0 = Date.now();
  expect(await c.endOfMessage()).toMatchObject({ ok: false, status: "timeout", timer: "end-of-message" });
  expect(Date.now() - t0).toBeLessThan(1000);
});

test("progress outside end-of-message is a protocol error, not a reason to wait", async () => {
  const c = await session(async (cmd, s) => {
    if (cmd.type !== "rcpt") return "default";
    // 40 × 50 ms = 2 s if each `p` restarted the 150 ms timer.
    for (let i = 0; i < 40 && !s.closed; i++) {
      s.write([{ type: "progress" }]);
      await Bun.sleep(50);
    }
    return [{ type: "continue" }];
  }, { readingTimeoutMs: 150 });
  const t0 = Date.now();
  const r = await c.envelopeRecipient("<a@b>");
  expect(r).toMatchObject({ ok: false, status: "protocol-error", stage: "envelope-recipient" });
  if (!r.ok) expect(r.detail).toContain("progress is only valid at end-of-message");
  expect(Date.now() - t0).toBeLessThan(750);
});

test("end-of-message timeout: progress keeps the wait alive past the timeout, silence ends it", async () => {
  let progress = 0;
  const c = await session(async (cmd, s) => {
    if (cmd.type !== "eob") return "default";
    // 6 × 60 ms = 360 ms of work, more than the 150 ms timeout, with a `p` every 60 ms.
    for (let i = 0; i < 6; i++) {
      await Bun.sleep(60);
      s.write([{ type: "progress" }]);
    }
    return [{ type: "addheader", name: "X-Slow", value: "yes" }, { type: "continue" }];
  }, { readingTimeoutMs: 5000, endOfMessageTimeoutMs: 150, onProgress: () => progress++ });
  const ok = await c.endOfMessage();
  expect(ok).toMatchObject({ ok: true, status: "continue", progress: 6, modifications: [{ type: "add-header", name: "X-Slow", value: "yes" }] });
  expect(progress).toBe(6);

  // Same milter, now silent at EOM: the end-of-message timer fires, not the reading one.
  client!.close();
  milter!.stop();
  const c2 = await session((cmd) => (cmd.type === "eob" ? never() : "default"), { readingTimeoutMs: 5000, endOfMessageTimeoutMs: 120 });
  const r = await c2.endOfMessage();
  expect(r).toMatchObject({ ok: false, status: "timeout", timer: "end-of-message", stage: "end-of-message", modifications: [], progress: 0 });
});

test("end-of-message uses its own timeout, not the reading timeout", async () => {
  const c = await session(async (cmd): Promise<"default"> => (cmd.type === "eob" ? (await Bun.sleep(250), "default") : "default"), { readingTimeoutMs: 100, endOfMessageTimeoutMs: 5000 });
  expect(await c.endOfMessage()).toMatchObject({ ok: true, status: "continue" });
});

test("overall end-of-message timeout: not restarted by progress", async () => {
  const c = await session(async (cmd, s) => {
    if (cmd.type !== "eob") return "default";
    for (let i = 0; i < 50; i++) {
      await Bun.sleep(30);
      if (s.closed) return undefined;
      s.write([{ type: "progress" }]);
    }
    return [{ type: "continue" }];
  }, { endOfMessageTimeoutMs: 200, endOfMessageTotalTimeoutMs: 250 });
  const r = await c.endOfMessage();
  expect(r).toMatchObject({ ok: false, status: "timeout", timer: "end-of-message-total", stage: "end-of-message" });
  expect(r.progress).toBeGreaterThan(2);
  if (!r.ok) expect(r.detail).toContain("did not finish within 0.25 s");
});

test("writing timeout: a milter that stops reading", async () => {
  // NR_BODY: nothing answers body chunks, so only the write queue can tell us the milter is stuck.
  const c = await session((cmd, s) => {
    if (cmd.type === "helo") s.socket.pause();
    return "default";
  }, { writingTimeoutMs: 200 }, SMFIP_NR_BODY);
  expect(await c.helo("h")).toMatchObject({ ok: true });
  const chunk = Buffer.alloc(65535, 0x78);
  let last;
  for (let i = 0; i < 2000; i++) {
    last = await c.body(chunk);
    if (!last.ok) break;
  }
  expect(last).toMatchObject({ ok: false, status: "timeout", timer: "writing", stage: "body" });
});

test("connection timeout: a peer whose accept queue is full", async () => {
  const py = Bun.spawn(
    ["/usr/bin/python3", "-c", "import socket,time\ns=socket.socket()\ns.bind(('127.0.0.1',0))\ns.listen(0)\nprint(s.getsockname()[1],flush=True)\ntime.sleep(60)"],
    { stdout: "pipe", stderr: "inherit" },
  );
  const clients: MilterClient[] = [];
  try {
    const first = await new Response(py.stdout).body!.getReader().read();
    const port = Number(Buffer.from(first.value!).toString("latin1").trim());
    let timedOut;
    for (let i = 0; i < 8 && !timedOut; i++) {
      const c = new MilterClient({ spec: `inet:${port}@[127.0.0.1]`, connectionTimeoutMs: 200, readingTimeoutMs: 100 });
      clients.push(c);
      const r = await c.open();
      // Accepted by the kernel (queued) connections get no OPTNEG reply: a reading timeout.
      if (!r.ok && r.timer === "connection") timedOut = r;
      else expect(r).toMatchObject({ ok: false, status: "timeout", timer: "reading" });
    }
    expect(timedOut).toMatchObject({ ok: false, status: "timeout", timer: "connection", stage: "negotiate" });
  } finally {
    for (const c of clients) c.close();
    py.kill();
    await py.exited;
  }
});

test("a timeout of 0 means no limit", async () => {
  const c = await session(async (cmd): Promise<"default"> => (cmd.type === "helo" || cmd.type === "eob" ? (await Bun.sleep(80), "default") : "default"), {
    readingTimeoutMs: 0, endOfMessageTimeoutMs: 0, connectionTimeoutMs: 0,
  });
  expect(await c.helo("h")).toMatchObject({ ok: true, status: "continue" });
  expect(await c.endOfMessage()).toMatchObject({ ok: true, status: "continue" });
});
