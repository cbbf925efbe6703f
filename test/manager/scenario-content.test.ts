// manager.md §2.13 "Headers / EOH", "Body" and "End of message" scenarios: the sequential
// pipeline of manager.md §2.5 over real sockets.
import { afterEach, describe, expect, test } from "bun:test";
import { SMFI_CURR_PROT, SMFIP_HDR_LEADSPC, SMFIP_NOBODY, SMFIP_SKIP } from "../../src/milter/index.ts";
import { Accept, Continue, Discard, eom, Reject, Skip, Tempfail } from "../../src/milter-side/index.ts";
import { type EndOfMessageOutcome, prepareStep } from "../../src/mta-side/index.ts";
import type { Conditions } from "../../src/manager/stop-hook.ts";
import { chain, eventually, expectStatus, marks, received, SESSION, type Setup, setup } from "./support/harness.ts";
import { defaultMilter } from "../../src/manager/config/schema.ts";
import { startScriptedMilter } from "../mta-side/scripted-milter.ts";

let s: Setup;
afterEach(async () => {
  await s?.close();
});

const skipOn = (word: string) => (cmd: { chunk: Uint8Array }) => (Buffer.from(cmd.chunk).toString("latin1").includes(word) ? Skip : Continue);

describe("headers / end-of-header", () => {
  for (const [name, reply, status] of [["reject", Reject, "reject"], ["temporary-failure", Tempfail, "temporary-failure"]] as const) {
    test(`header-${name}: the MTA gets it at once, the other child never sees the message`, async () => {
      s = await setup({ scripts: [{ header: reply }, {}] });
      const mta = await s.mta();
      await chain(mta, "data");
      expectStatus(await SESSION.header(mta), status);
      expect(received(s.children, "header")).toEqual([1, 0]);
      await eventually(() => s.children[1].count("abort") === 1, 3000, "10027 aborted");
    });
  }

  test("header-stop: 10026 stopped at every header is aborted; 10027 gets the header", async () => {
    const conditions: Conditions = { shouldStop: (child, stage) => child.name === "milter@10026" && stage === "header" };
    s = await setup({ engine: { conditions } });
    const mta = await s.mta();
    await chain(mta, "data");
    const m = marks(s.children);
    expectStatus(await SESSION.header(mta), "continue");
    expect(received(s.children, "header", m)).toEqual([0, 1]);
    await eventually(() => s.children[0].count("abort", m[0]) === 1, 3000, "10026 aborted");
    expectStatus(await SESSION.endOfHeader(mta), "continue");
    expect(received(s.children, "end-of-header", m)).toEqual([0, 1]);
    expect(received(s.children, "abort", m)).toEqual([1, 0]);
  });

  test("header-stop-all: both stopped → n=0, MTA accept, both aborted", async () => {
    s = await setup({ engine: { conditions: { shouldStop: (_c, stage) => stage === "header" } } });
    const mta = await s.mta();
    await chain(mta, "data");
    const m = marks(s.children);
    expectStatus(await SESSION.header(mta), "accept");
    expect(received(s.children, "header", m)).toEqual([0, 0]);
    await eventually(() => received(s.children, "abort", m).every((n) => n === 1), 3000, "both aborted");
  });

  for (const stage of ["end-of-header", "body", "end-of-message"] as const) {
    test(`${stage}-stop: 10026 stopped at ${stage} is aborted, 10027 gets the message`, async () => {
      const conditions: Conditions = { shouldStop: (child, st) => child.name === "milter@10026" && st === stage };
      s = await setup({ engine: { conditions } });
      const mta = await s.mta();
      await chain(mta, "endOfMessage");
      await eventually(() => s.children[0].count("abort") === 1, 3000, "10026 aborted");
      expect(received(s.children, "end-of-message")).toEqual([0, 1]);
      expect(s.children[1].bodyChunks()).toEqual(["Hi,"]);
    });
  }

  test("header-with-leading-space: 10026 asked for it and gets the value with its space", async () => {
    s = await setup({ scripts: [{ protocol: SMFIP_HDR_LEADSPC }, {}] });
    const mta = await s.mta({ offer: { protocol: SMFIP_HDR_LEADSPC } });
    expect(mta.negotiated!.leadingSpace).toBe(true);
    await chain(mta, "data");
    expectStatus(await SESSION.header(mta, "From", " <kou+sender@example.com>"), "continue");
    expect(s.children[0].events("header")[0].value).toBe(" <kou+sender@example.com>");
    await chain(mta, "endOfHeader"); // rest of the chain; the header above is already sent
  });

  test("header-with-leading-space-no-space: only 10027 asked; 10026 gets the value without the space", async () => {
    s = await setup({ scripts: [{}, { protocol: SMFIP_HDR_LEADSPC }] });
    const mta = await s.mta({ offer: { protocol: SMFIP_HDR_LEADSPC } });
    expect(mta.negotiated!.leadingSpace).toBe(true);
    await chain(mta, "data");
    expectStatus(await SESSION.header(mta, "From", " <kou+sender@example.com>"), "continue");
    expect(s.children[0].events("header")[0].value).toBe("<kou+sender@example.com>");
    expectStatus(await SESSION.endOfHeader(mta), "continue");
    expectStatus(await SESSION.endOfMessage(mta), "continue");
    expect(s.children[1].events("header")[0].value).toBe(" <kou+sender@example.com>");
  });

  test("header-again / end-of-header-again: a second message's headers go to the first child only", async () => {
    s = await setup();
    const mta = await s.mta();
    await chain(mta, "endOfMessage");
    await mta.abort();
    await chain(mta, "data", "envelopeFrom");
    const m = marks(s.children);
    expectStatus(await SESSION.header(mta), "continue");
    expectStatus(await SESSION.endOfHeader(mta), "continue");
    expect(received(s.children, "header", m)).toEqual([1, 0]);
    expect(received(s.children, "end-of-header", m)).toEqual([1, 0]);
  });
});

describe("body", () => {
  test("body-larger-than-milter-chunk-size: the first child gets the MTA's chunks unchanged, the second re-chunked", async () => {
    s = await setup({ manager: { chunk_size: 1000 } });
    const mta = await s.mta();
    await chain(mta, "endOfHeader");
    const big = "x".repeat(5000);
    expectStatus(await SESSION.body(mta, big), "continue");
    expectStatus(await SESSION.body(mta, "0"), "continue");
    expect(s.children[0].bodyChunks()).toEqual([big, "0"]);
    expect(s.children[1].bodyChunks()).toEqual([]);
    expectStatus(await SESSION.endOfMessage(mta), "continue");
    expect(s.children[1].bodyChunks().map((c) => c.length)).toEqual([1000, 1000, 1000, 1000, 1000, 1]);
    expect(s.children[1].bodyChunks().join("")).toBe(`${big}0`);
  });

  test("body-skip: 10026 skips; its next chunk is not sent; 10027 gets everything at EOM", async () => {
    s = await setup({ scripts: [{ protocol: SMFIP_SKIP, body: skipOn("Skip") }, {}] });
    const mta = await s.mta();
    await chain(mta, "endOfHeader");
    expectStatus(await SESSION.body(mta, "Skip"), "continue");
    const m = marks(s.children);
    expectStatus(await SESSION.body(mta, "Continue"), "continue");
    expect(received(s.children, "body", m)).toEqual([0, 0]);
    const e = marks(s.children);
    expectStatus(await SESSION.endOfMessage(mta), "continue");
    expect(received(s.children, "end-of-message", e)).toEqual([1, 1]);
    expect(s.children[1].bodyChunks()).toEqual(["SkipContinue"]);
  });

  // Issue 15 item 2: a child answering skip to a body chunk without SMFIP_SKIP was dropped as a
  // protocol error (counted as its fallback, never got end-of-message); now the skip is honoured
  // and logged at debug, as milter-manager does.
  test("body-skip-not-negotiated: honoured and logged at debug; the child stays and gets end-of-message", async () => {
    let bodies = 0;
    const raw = startScriptedMilter({ onCommand: (cmd) => (cmd.type === "body" && ++bodies === 1 ? [{ type: "skip" }] : "default") });
    const logs: string[] = [];
    try {
      s = await setup({
        scripts: [{}],
        before: [defaultMilter("raw-skipper", raw.spec)],
        engine: { log: { enabled: () => true, write: (level, text) => logs.push(`${level} ${text}`) } },
      });
      const mta = await s.mta();
      await chain(mta, "endOfHeader");
      expectStatus(await SESSION.body(mta, "Skip"), "continue");
      expectStatus(await SESSION.body(mta, "more"), "continue");
      expectStatus(await SESSION.endOfMessage(mta), "continue");
      const cmds = raw.all().map((c) => c.type);
      expect(cmds.filter((t) => t === "body")).toHaveLength(1); // nothing more after its skip
      expect(cmds).toContain("eob");
      expect(s.children[0].bodyChunks().join("")).toBe("Skipmore");
      expect(logs.some((l) => l.startsWith("debug") && l.includes("SMFIP_SKIP was not negotiated; honoured"))).toBe(true);
      expect(logs.some((l) => l.includes("raw-skipper failed"))).toBe(false);
    } finally {
      raw.stop();
    }
  });

  test("body-skip-all: both skip; 10027 gets the whole body at EOM", async () => {
    s = await setup({ scripts: [{ protocol: SMFIP_SKIP, body: skipOn("First") }, { protocol: SMFIP_SKIP, body: skipOn("Second") }] });
    const mta = await s.mta();
    await chain(mta, "endOfHeader");
    expectStatus(await SESSION.body(mta, "First skip message"), "continue");
    expectStatus(await SESSION.body(mta, "Second skip message"), "continue");
    expect(s.children[0].bodyChunks()).toEqual(["First skip message"]);
    expectStatus(await SESSION.endOfMessage(mta), "continue");
    expect(s.children[1].bodyChunks()).toEqual(["First skip messageSecond skip message"]);
    expect(received(s.children, "end-of-message")).toEqual([1, 1]);
  });

  test("body-accept: 10026 accepts, 10027 is replayed and accepts too → MTA accept", async () => {
    const acceptOn = (cmd: { chunk: Uint8Array }) => (Buffer.from(cmd.chunk).toString("latin1") === "Accept message" ? Accept : Continue);
    s = await setup({ scripts: [{ body: acceptOn }, { body: acceptOn }] });
    const mta = await s.mta();
    await chain(mta, "endOfHeader");
    const m = marks(s.children);
    expectStatus(await SESSION.body(mta, "Accept message"), "accept");
    expect(received(s.children, "body", m)).toEqual([1, 1]);
    expect(received(s.children, "header", m)).toEqual([0, 1]); // replayed to 10027
  });

  test("body-accept of the first child only: the MTA gets continue and 10027 goes on live", async () => {
    s = await setup({ scripts: [{ body: Accept }, {}] });
    const mta = await s.mta();
    await chain(mta, "endOfHeader");
    expectStatus(await SESSION.body(mta, "one"), "continue");
    expectStatus(await SESSION.body(mta, "two"), "continue");
    expect(s.children[1].bodyChunks()).toEqual(["one", "two"]);
    expectStatus(await SESSION.endOfMessage(mta), "continue");
    expect(received(s.children, "end-of-message")).toEqual([0, 1]);
  });

  test("body-again: the body of a second message goes to the first child only", async () => {
    s = await setup();
    const mta = await s.mta();
    await chain(mta, "endOfMessage");
    await mta.abort();
    await chain(mta, "endOfHeader", "envelopeFrom");
    const m = marks(s.children);
    expectStatus(await SESSION.body(mta), "continue");
    expect(received(s.children, "body", m)).toEqual([1, 0]);
  });

  test("no-body-flag: 10026 negotiated no-body; 10027 gets the body at EOM", async () => {
    s = await setup({ scripts: [{ protocol: SMFIP_NOBODY }, {}] });
    const mta = await s.mta();
    await chain(mta, "endOfHeader");
    expectStatus(await SESSION.body(mta), "continue");
    expect(received(s.children, "body")).toEqual([0, 0]);
    expectStatus(await SESSION.endOfMessage(mta), "continue");
    expect(received(s.children, "end-of-message")).toEqual([1, 1]);
    expect(s.children[1].bodyChunks()).toEqual(["Hi,"]);
  });

  test("no-body-flag-on-second-client: the body goes to 10026 only", async () => {
    s = await setup({ scripts: [{}, { protocol: SMFIP_NOBODY }] });
    const mta = await s.mta();
    await chain(mta, "body");
    expectStatus(await SESSION.endOfMessage(mta), "continue");
    expect(s.children.map((c) => c.bodyChunks())).toEqual([["Hi,"], []]);
    expect(received(s.children, "end-of-message")).toEqual([1, 1]);
  });

  test("no-body-flag-on-both-client (omitted upstream): nobody gets the body, the message still completes", async () => {
    s = await setup({ scripts: [{ protocol: SMFIP_NOBODY }, { protocol: SMFIP_NOBODY }] });
    const mta = await s.mta();
    await chain(mta, "body");
    expectStatus(await SESSION.endOfMessage(mta), "continue");
    expect(received(s.children, "body")).toEqual([0, 0]);
    expect(received(s.children, "end-of-message")).toEqual([1, 1]);
  });
});

describe("end of message", () => {
  // Issue 15 item 1: the data came to the children as a separate B before an empty E; now each
  // child gets it inside its own E, as the MTA sent it (the first child live, the second in the
  // replay after the body "Hi,"). A libmilter child still hands it to its body callback first.
  test("end-of-message-chunk: data carried in the E packet reaches both children inside their own E", async () => {
    s = await setup();
    const mta = await s.mta();
    await chain(mta, "body");
    const m = marks(s.children);
    // E with data, as libmilter accepts it (our MTA side never sends that by itself)
    const step = prepareStep(mta.negotiated!, { type: "eob", chunk: Buffer.from("The last text", "latin1") });
    const o = (await mta.perform(step)) as EndOfMessageOutcome;
    expectStatus(o, "continue");
    for (const c of s.children) expect(c.events("end-of-message").map((e) => e.chunk)).toEqual(["The last text"]);
    expect(s.children[0].bodyChunks(m[0])).toEqual(["The last text"]);
    expect(s.children[1].bodyChunks(m[1]).join("")).toBe("Hi,The last text");
    expect(received(s.children, "end-of-message", m)).toEqual([1, 1]);
  });

  test("end-of-message-chunk-reject: a child that rejects on the E data rejects the message; the next is not asked", async () => {
    s = await setup({
      scripts: [{ endOfMessage: (cmd: { chunk?: Uint8Array }) => (cmd.chunk && Buffer.from(cmd.chunk).toString("latin1") === "reject me" ? Reject : Continue) }, {}],
    });
    const mta = await s.mta();
    await chain(mta, "body");
    const step = prepareStep(mta.negotiated!, { type: "eob", chunk: Buffer.from("reject me", "latin1") });
    expectStatus((await mta.perform(step)) as EndOfMessageOutcome, "reject");
    expect(received(s.children, "end-of-message")).toEqual([1, 0]);
  });

  test("end-of-message-accept: 10026 accepts EOM, 10027 is still processed, MTA continue", async () => {
    s = await setup({ scripts: [{ endOfMessage: Accept }, {}] });
    const mta = await s.mta();
    await chain(mta, "body");
    expectStatus(await SESSION.endOfMessage(mta), "continue");
    expect(received(s.children, "end-of-message")).toEqual([1, 1]);
  });

  for (const [name, reply, status] of [
    ["reject", Reject, "reject"],
    ["temporary-failure", Tempfail, "temporary-failure"],
    ["discard", Discard, "discard"],
  ] as const) {
    test(`end-of-message-${name}: n=1, 10027 never sees the message`, async () => {
      s = await setup({ scripts: [{ endOfMessage: reply }, {}] });
      const mta = await s.mta();
      await chain(mta, "body");
      expectStatus(await SESSION.endOfMessage(mta), status);
      expect(received(s.children, "end-of-message")).toEqual([1, 0]);
      expect(received(s.children, "header")).toEqual([1, 0]);
      await eventually(() => s.children[1].count("abort") === 1, 3000, "10027 aborted");
    });
  }

  test("end-of-message-discard-again: a whole second message after a discard, discarded again", async () => {
    s = await setup({ scripts: [{ endOfMessage: Discard }, {}] });
    const mta = await s.mta();
    await chain(mta, "body");
    expectStatus(await SESSION.endOfMessage(mta), "discard");
    await mta.abort();
    expectStatus(await SESSION.envelopeFrom(mta), "continue");
    expectStatus(await SESSION.envelopeRecipient(mta), "continue");
    expectStatus(await SESSION.data(mta), "continue");
    expectStatus(await SESSION.header(mta), "continue");
    expectStatus(await SESSION.endOfHeader(mta), "continue");
    expectStatus(await SESSION.body(mta), "continue");
    expectStatus(await SESSION.endOfMessage(mta), "discard");
  });

  test("end-of-message-reply-code-reject", async () => {
    s = await setup({ scripts: [{ endOfMessage: { type: "replycode", text: "554 5.7.1 virus Eicar-Test-Signature detected" } }, {}] });
    const mta = await s.mta();
    await chain(mta, "body");
    expectStatus(await SESSION.endOfMessage(mta), "reply-code", "554 5.7.1 virus Eicar-Test-Signature detected");
  });

  test("end-of-message-reply-code-temporary-failure", async () => {
    s = await setup({ scripts: [{ endOfMessage: { type: "replycode", text: "451 4.7.0 DNS timeout" } }, {}] });
    const mta = await s.mta();
    await chain(mta, "body");
    const o = await SESSION.endOfMessage(mta);
    expectStatus(o, "reply-code", "451 4.7.0 DNS timeout");
    expect(o.ok && o.reply?.status).toBe("temporary-failure");
  });

  test("end-of-message-replaced: 10027 receives the body as replaced by 10026", async () => {
    s = await setup({ scripts: [{ endOfMessage: eom([{ type: "replbody", chunk: Buffer.from("Replaced body\r\n") }]) }, {}] });
    const mta = await s.mta();
    await chain(mta, "body");
    expectStatus(await SESSION.endOfMessage(mta), "continue");
    expect(s.children[1].bodyChunks()).toEqual(["Replaced body\r\n"]);
  });

  // Issue 15: Postfix keeps a body as lines, so the milter after one that replaced the body
  // without a final line end gets that line with its end (seen with opendkim's body hash).
  test("end-of-message-replaced without a final line end: 10027 gets it with CRLF (Postfix)", async () => {
    s = await setup({ scripts: [{ endOfMessage: eom([{ type: "replbody", chunk: Buffer.from("Replaced\r\nbody") }]) }, {}] });
    const mta = await s.mta();
    await chain(mta, "body");
    expectStatus(await SESSION.endOfMessage(mta), "continue");
    expect(s.children[1].bodyChunks().join("")).toBe("Replaced\r\nbody\r\n");
  });

  test("end-of-message-again: EOM of a second message", async () => {
    s = await setup();
    const mta = await s.mta();
    await chain(mta, "endOfMessage");
    await mta.abort();
    await chain(mta, "body", "envelopeFrom");
    const m = marks(s.children);
    expectStatus(await SESSION.endOfMessage(mta), "continue");
    expect(received(s.children, "end-of-message", m)).toEqual([1, 1]);
  });

  test("end-of-message-without-header: n=2, no header at all", async () => {
    s = await setup();
    const mta = await s.mta();
    await chain(mta, "data");
    const o = await SESSION.endOfMessage(mta);
    expectStatus(o, "continue");
    expect(o.ok && o.modifications).toEqual([]);
    expect(received(s.children, "end-of-message")).toEqual([1, 1]);
    expect(received(s.children, "header")).toEqual([0, 0]);
  });

  test("end-of-message statuses are reset per message (quirk fixed): a rejected message does not taint the next", async () => {
    let n = 0;
    s = await setup({ scripts: [{ endOfMessage: () => (++n === 1 ? Reject : Continue) }, {}] });
    const mta = await s.mta();
    await chain(mta, "body");
    expectStatus(await SESSION.endOfMessage(mta), "reject");
    await mta.abort();
    await chain(mta, "body", "envelopeFrom");
    expectStatus(await SESSION.endOfMessage(mta), "continue");
  });

  test("several messages on one connection without abort in between (Sendmail style)", async () => {
    s = await setup();
    const mta = await s.mta({ offer: { protocol: SMFI_CURR_PROT } });
    await chain(mta, "endOfMessage");
    for (let i = 0; i < 3; i++) {
      expectStatus(await SESSION.envelopeFrom(mta), "continue");
      expectStatus(await SESSION.envelopeRecipient(mta), "continue");
      expectStatus(await SESSION.data(mta), "continue");
      expectStatus(await SESSION.header(mta), "continue");
      expectStatus(await SESSION.endOfHeader(mta), "continue");
      expectStatus(await SESSION.body(mta, `message ${i}`), "continue");
      expectStatus(await SESSION.endOfMessage(mta), "continue");
    }
    expect(received(s.children, "end-of-message")).toEqual([4, 4]);
    expect(s.children[1].bodyChunks()).toEqual(["Hi,", "message 0", "message 1", "message 2"]);
  });
});
