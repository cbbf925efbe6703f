// Child failures (manager.md §2.7, with the pipeline quirk fixed): a child that hangs, closes,
// dies or breaks the protocol at any stage counts as its fallback_status and the session goes
// on with the other children; earlier modifications are kept.
import { afterEach, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { encodeReply, SMFIC_OPTNEG } from "../../src/milter/index.ts";
import { eom } from "../../src/milter-side/index.ts";
import { defaultMilter } from "../../src/manager/config/schema.ts";
import type { Script } from "./support/scripted-milter.ts";
import { chain, type ChainStage, eventually, expectStatus, received, SESSION, type Setup, setup } from "./support/harness.ts";

let s: Setup;
afterEach(async () => {
  await s?.close();
});

const QUICK = { reading_timeout: 0.5, end_of_message_timeout: 0.5, writing_timeout: 1 };

const STAGES: [keyof Script, ChainStage, string][] = [
  ["connect", "connect", "connect"],
  ["helo", "helo", "helo"],
  ["envelopeFrom", "envelopeFrom", "envelope-from"],
  ["envelopeRecipient", "envelopeRecipient", "envelope-recipient"],
  ["data", "data", "data"],
  ["header", "header", "header"],
  ["endOfHeader", "endOfHeader", "end-of-header"],
  ["body", "body", "body"],
  ["endOfMessage", "endOfMessage", "end-of-message"],
];

describe("a child that hangs", () => {
  for (const [scriptKey, chainStage, stage] of STAGES) {
    test(`at ${stage}: fallback (accept) after reading_timeout, the session goes on with the other child`, async () => {
      s = await setup({ scripts: [{ [scriptKey]: "hang" }, {}], milters: [QUICK] });
      const mta = await s.mta();
      await chain(mta, chainStage); // every step continue, the hung one included
      if (chainStage !== "endOfMessage") await chain(mta, "endOfMessage", nextOf(chainStage));
      expect(s.children[1].count("end-of-message")).toBe(1);
      expect(s.children[1].bodyChunks()).toEqual(["Hi,"]);
      expect(s.children[0].count("end-of-message")).toBe(stage === "end-of-message" ? 1 : 0);
    });
  }

  test("at unknown: fallback (accept) after reading_timeout, the other child's continue", async () => {
    s = await setup({ scripts: [{ unknown: "hang" }, {}], milters: [QUICK] });
    const mta = await s.mta();
    await chain(mta, "helo");
    expectStatus(await mta.unknown("XFOO"), "continue");
    await chain(mta, "endOfMessage", "envelopeFrom");
    expect(received(s.children, "end-of-message")).toEqual([0, 1]);
  });

  test("at end-of-message with fallback temporary-failure: the MTA gets temporary-failure", async () => {
    s = await setup({ scripts: [{ endOfMessage: "hang" }, {}], milters: [{ ...QUICK, fallback_status: "temporary-failure" }] });
    const mta = await s.mta();
    await chain(mta, "body");
    expectStatus(await SESSION.endOfMessage(mta), "temporary-failure");
    expect(s.children[1].count("end-of-message")).toBe(0);
  });

  test("in the middle of the pipeline: earlier modifications are kept, later children still run", async () => {
    s = await setup({
      scripts: [
        { endOfMessage: eom([{ type: "addheader", name: "X-First", value: "1" }]) },
        { endOfMessage: "hang" },
        { endOfMessage: eom([{ type: "addheader", name: "X-Third", value: "3" }]) },
      ],
      milters: [{}, QUICK, {}],
    });
    const mta = await s.mta();
    await chain(mta, "body");
    const o = await SESSION.endOfMessage(mta);
    expectStatus(o, "continue");
    expect(o.ok && o.modifications).toEqual([
      { type: "add-header", name: "X-First", value: "1" },
      { type: "add-header", name: "X-Third", value: "3" },
    ]);
    // The third child saw the first child's header.
    expect(s.children[2].events("header").map((h) => h.name)).toEqual(["From", "X-First"]);
  });

  test("the MTA going away while the manager waits for a child ends the session at once", async () => {
    s = await setup({ scripts: [{ endOfMessage: "hang" }, {}], milters: [{ end_of_message_timeout: 120 }] });
    const mta = await s.mta();
    await chain(mta, "body");
    const pending = SESSION.endOfMessage(mta);
    await eventually(() => s.children[0].count("end-of-message") === 1, 3000, "child got EOM");
    mta.close();
    await pending;
    await eventually(() => s.manager.sessions === 0, 5000, "manager session ended");
  });
});

describe("the manager's own failures", () => {
  test("the body cannot be spilled to a temporary file: the MTA gets manager.fallback_status", async () => {
    s = await setup({
      manager: { fallback_status: "temporary-failure" },
      engine: { bodySpillThreshold: 4, tmpDir: "/nonexistent/milterkit-test-dir" },
    });
    const mta = await s.mta();
    await chain(mta, "endOfHeader");
    expectStatus(await SESSION.body(mta, "more than four bytes"), "temporary-failure");
  });
});

describe("a child that goes away", () => {
  test("closes its connection mid-message: fallback, the other child gets the message", async () => {
    s = await setup({ scripts: [{ body: "close" }, {}] });
    const mta = await s.mta();
    await chain(mta, "endOfMessage");
    expect(s.children[1].bodyChunks()).toEqual(["Hi,"]);
    // Gone for the rest of the session: the next message only reaches the other child.
    await mta.abort();
    await chain(mta, "envelopeFrom", "envelopeFrom");
    expect(received(s.children, "envelope-from")).toEqual([1, 2]);
  });

  test("is killed (SIGKILL) mid-message: fallback, the session goes on", async () => {
    const proc = Bun.spawn(["bun", join(import.meta.dir, "support", "child-process.ts"), "body"], { stdout: "pipe", stderr: "inherit" });
    try {
      const out = lines(proc.stdout);
      const port = Number((await out.next(/^PORT (\d+)$/))[1]);
      // The process child goes first, so it gets the body live and hangs on it.
      s = await setup({ scripts: [{}], before: [{ ...defaultMilter("killed", `inet:${port}@[127.0.0.1]`), reading_timeout: 60 }] });
      const mta = await s.mta();
      await chain(mta, "endOfHeader");
      const body = SESSION.body(mta);
      await out.next(/^GOT body$/);
      proc.kill("SIGKILL");
      expectStatus(await body, "continue"); // the other child was replayed the message and answered
      expect(s.children[0].bodyChunks()).toEqual(["Hi,"]);
      expectStatus(await SESSION.endOfMessage(mta), "continue");
      expect(s.children[0].count("end-of-message")).toBe(1);
    } finally {
      proc.kill("SIGKILL");
      await proc.exited;
    }
  });

  test("breaks the protocol (unknown reply byte): fallback, the other child answers", async () => {
    const bad = Bun.listen({
      hostname: "127.0.0.1",
      port: 0,
      socket: {
        data(sock, chunk) {
          if (chunk[4] === SMFIC_OPTNEG) sock.write(encodeReply({ type: "optneg", version: 6, actions: 0, protocol: 0 }));
          else sock.write(Buffer.from("000000015a", "hex")); // 'Z'
        },
      },
    });
    try {
      s = await setup({ scripts: [{}], extra: [defaultMilter("broken", `inet:${bad.port}@[127.0.0.1]`)] });
      const mta = await s.mta();
      expectStatus(await SESSION.connect(mta), "continue");
      expectStatus(await SESSION.helo(mta), "continue");
      expect(received(s.children, "helo")).toEqual([1]);
    } finally {
      bad.stop(true);
    }
  });
});

function nextOf(stage: ChainStage): ChainStage {
  const order: ChainStage[] = ["connect", "helo", "envelopeFrom", "envelopeRecipient", "data", "header", "endOfHeader", "body", "endOfMessage"];
  return order[order.indexOf(stage) + 1];
}

/** Lines of a child process's stdout; next(re) waits (bounded) for the next line matching re. */
function lines(stream: ReadableStream<Uint8Array>) {
  const reader = stream.getReader();
  let buffered = "";
  return {
    async next(re: RegExp, ms = 10_000): Promise<RegExpExecArray> {
      const deadline = Date.now() + ms;
      for (;;) {
        const nl = buffered.indexOf("\n");
        if (nl >= 0) {
          const line = buffered.slice(0, nl);
          buffered = buffered.slice(nl + 1);
          const m = re.exec(line);
          if (m) return m;
          continue;
        }
        if (Date.now() > deadline) throw new Error(`no line matching ${re} within ${ms} ms`);
        const timer = Bun.sleep(ms).then(() => ({ value: undefined, done: true }));
        const { value, done } = await Promise.race([reader.read(), timer]);
        if (done || !value) throw new Error(`child process output ended before a line matching ${re}`);
        buffered += Buffer.from(value).toString("latin1");
      }
    },
  };
}
