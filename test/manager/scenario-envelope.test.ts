// manager.md §2.13 "HELO / MAIL", "RCPT" and "DATA" scenarios. Where the reference answers with
// "error no-message-processing-milter" (= manager.fallback_status on the wire), the tests set
// manager.fallback_status to temporary-failure so that the fallback is told apart from a compiled accept.
import { afterEach, describe, expect, test } from "bun:test";
import { SMFIP_NODATA, SMFIP_RCPT_REJ } from "../../src/milter/index.ts";
import { Accept, Close, Continue, Discard, Reject, Tempfail, replyCode } from "../../src/milter-side/index.ts";
import type { Conditions } from "../../src/manager/stop-hook.ts";
import type { Script } from "./support/scripted-milter.ts";
import { chain, eventually, expectStatus, marks, received, SESSION, type Setup, setup } from "./support/harness.ts";

let s: Setup;
afterEach(async () => {
  await s?.close();
});

const FALLBACK = { fallback_status: "temporary-failure" as const };

/** Reply per recipient address: `{ "<reject@example.com>": Reject }`, continue otherwise. */
function byRecipient(table: Record<string, Script["envelopeRecipient"]>): Script["envelopeRecipient"] {
  return (cmd) => (table[cmd.address] ?? Continue) as never;
}

describe("HELO / MAIL", () => {
  for (const [name, reply] of [["reject", Reject], ["temporary-failure", Tempfail]] as const) {
    test(`helo-${name}-evaluation: MTA continue, the child is gone afterwards`, async () => {
      s = await setup({ scripts: [{ helo: reply }, {}], milters: [{ evaluation_mode: true }] });
      const mta = await s.mta();
      await chain(mta, "connect");
      expectStatus(await SESSION.helo(mta), "continue");
      expect(received(s.children, "helo")).toEqual([1, 1]);
      expectStatus(await SESSION.envelopeFrom(mta), "continue");
      expect(received(s.children, "envelope-from")).toEqual([0, 1]);
    });
  }

  test("envelope-from-reject, then RCPT: no child processes the message (fallback)", async () => {
    s = await setup({ scripts: [{ envelopeFrom: Reject }, {}], manager: FALLBACK });
    const mta = await s.mta();
    await chain(mta, "helo");
    expectStatus(await SESSION.envelopeFrom(mta), "reject");
    expect(received(s.children, "envelope-from")).toEqual([1, 1]);
    // The message is refused: children in it are aborted.
    await eventually(() => received(s.children, "abort").every((n) => n === 1), 3000, "aborts");
    expectStatus(await SESSION.envelopeRecipient(mta), "temporary-failure");
    expect(received(s.children, "envelope-recipient")).toEqual([0, 0]);
  });

  test("envelope-from-reject-again: both reject a second MAIL", async () => {
    s = await setup({ scripts: [{ envelopeFrom: Reject }, {}], manager: FALLBACK });
    const mta = await s.mta();
    await chain(mta, "helo");
    expectStatus(await SESSION.envelopeFrom(mta), "reject");
    s.children[1].set({ envelopeFrom: Reject });
    expectStatus(await SESSION.envelopeFrom(mta), "reject");
    expect(received(s.children, "envelope-from")).toEqual([2, 2]);
    expectStatus(await SESSION.envelopeRecipient(mta), "temporary-failure");
  });

  test("envelope-from-reject-and-accept: reject", async () => {
    s = await setup({ scripts: [{ envelopeFrom: Reject }, { envelopeFrom: Accept }], manager: FALLBACK });
    const mta = await s.mta();
    await chain(mta, "helo");
    expectStatus(await SESSION.envelopeFrom(mta), "reject");
    expectStatus(await SESSION.envelopeRecipient(mta), "temporary-failure");
  });

  test("envelope-from-reject-and-discard: discard wins", async () => {
    s = await setup({ scripts: [{ envelopeFrom: Reject }, { envelopeFrom: Discard }] });
    const mta = await s.mta();
    await chain(mta, "helo");
    expectStatus(await SESSION.envelopeFrom(mta), "discard");
  });

  test("envelope-from-discard", async () => {
    s = await setup({ scripts: [{ envelopeFrom: Discard }, {}], manager: FALLBACK });
    const mta = await s.mta();
    await chain(mta, "helo");
    expectStatus(await SESSION.envelopeFrom(mta), "discard");
    expectStatus(await SESSION.envelopeRecipient(mta), "temporary-failure");
  });

  test("envelope-from-discard-evaluation: continue, RCPT only to 10027", async () => {
    s = await setup({ scripts: [{ envelopeFrom: Discard }, {}], milters: [{ evaluation_mode: true }] });
    const mta = await s.mta();
    await chain(mta, "helo");
    expectStatus(await SESSION.envelopeFrom(mta), "continue");
    expectStatus(await SESSION.envelopeRecipient(mta), "continue");
    expect(received(s.children, "envelope-recipient")).toEqual([0, 1]);
  });

  test("envelope-from-accept: continue, RCPT only to 10027", async () => {
    s = await setup({ scripts: [{ envelopeFrom: Accept }, {}] });
    const mta = await s.mta();
    await chain(mta, "helo");
    expectStatus(await SESSION.envelopeFrom(mta), "continue");
    expectStatus(await SESSION.envelopeRecipient(mta), "continue");
    expect(received(s.children, "envelope-recipient")).toEqual([0, 1]);
  });

  test("envelope-from-accept-all: accept, then RCPT gets the fallback", async () => {
    s = await setup({ scripts: [{ envelopeFrom: Accept }, { envelopeFrom: Accept }], manager: FALLBACK });
    const mta = await s.mta();
    await chain(mta, "helo");
    expectStatus(await SESSION.envelopeFrom(mta), "accept");
    expectStatus(await SESSION.envelopeRecipient(mta), "temporary-failure");
  });

  test("envelope-from-stop: a condition stops 10026 for stop@example.com", async () => {
    const conditions: Conditions = {
      shouldStop: (child, _stage, ctx) =>
        child.name === "milter@10026" && ctx.event.stage === "envelope-from" && ctx.event.from === "<stop@example.com>",
    };
    s = await setup({ scripts: [{ envelopeFrom: Reject }, {}], engine: { conditions } });
    const mta = await s.mta();
    await chain(mta, "helo");
    expectStatus(await SESSION.envelopeFrom(mta, "<stop@example.com>"), "continue");
    expect(received(s.children, "envelope-from")).toEqual([0, 1]);
    expectStatus(await SESSION.envelopeRecipient(mta), "continue");
    expect(received(s.children, "envelope-recipient")).toEqual([0, 1]);
  });

  test("envelope-from-again: a second MAIL after a finished message", async () => {
    s = await setup();
    const mta = await s.mta();
    await chain(mta, "endOfMessage");
    await mta.abort();
    const m = marks(s.children);
    expectStatus(await SESSION.envelopeFrom(mta), "continue");
    expect(received(s.children, "envelope-from", m)).toEqual([1, 1]);
  });

  test("envelope-from-discarded-again: a second MAIL after an end-of-message discard", async () => {
    s = await setup({ scripts: [{ endOfMessage: Discard }, {}] });
    const mta = await s.mta();
    await chain(mta, "body");
    expectStatus(await SESSION.endOfMessage(mta), "discard");
    await mta.abort();
    const m = marks(s.children);
    expectStatus(await SESSION.envelopeFrom(mta), "continue");
    expect(received(s.children, "envelope-from", m)).toEqual([1, 1]);
  });
});

describe("RCPT", () => {
  for (const [name, reply, status] of [["reject", Reject, "reject"], ["temporary-failure", Tempfail, "temporary-failure"]] as const) {
    test(`envelope-recipient-${name}: only that recipient is refused; next RCPT and DATA reach both`, async () => {
      s = await setup({ scripts: [{ envelopeRecipient: byRecipient({ "<bad@example.com>": reply }) }, {}] });
      const mta = await s.mta();
      await chain(mta, "envelopeFrom");
      expectStatus(await SESSION.envelopeRecipient(mta, "<bad@example.com>"), status);
      const m = marks(s.children);
      expectStatus(await SESSION.envelopeRecipient(mta), "continue");
      expect(received(s.children, "envelope-recipient", m)).toEqual([1, 1]);
      expectStatus(await SESSION.data(mta), "continue");
      expect(received(s.children, "data")).toEqual([1, 1]);
    });
  }

  test("envelope-recipient-temporary-failure-all: both tempfail one RCPT; next RCPT and DATA to both", async () => {
    const script = { envelopeRecipient: byRecipient({ "<bad@example.com>": Tempfail }) };
    s = await setup({ scripts: [script, script] });
    const mta = await s.mta();
    await chain(mta, "envelopeFrom");
    expectStatus(await SESSION.envelopeRecipient(mta, "<bad@example.com>"), "temporary-failure");
    expectStatus(await SESSION.envelopeRecipient(mta), "continue");
    expectStatus(await SESSION.data(mta), "continue");
    expect(received(s.children, "envelope-recipient")).toEqual([2, 2]);
    expect(received(s.children, "data")).toEqual([1, 1]);
  });

  test("envelope-recipient--reject--temp-fail--discard: reject, continue, discard; then the fallback", async () => {
    s = await setup({
      scripts: [{ envelopeRecipient: byRecipient({ "<reject@example.com>": Reject, "<discard@example.com>": Discard }) }, {}],
      manager: FALLBACK,
    });
    const mta = await s.mta();
    await chain(mta, "envelopeFrom");
    expectStatus(await SESSION.envelopeRecipient(mta, "<reject@example.com>"), "reject");
    expectStatus(await SESSION.envelopeRecipient(mta, "<temp-fail@example.com>"), "continue");
    expectStatus(await SESSION.envelopeRecipient(mta, "<discard@example.com>"), "discard");
    await eventually(() => received(s.children, "abort").every((n) => n === 1), 3000, "aborts");
    expectStatus(await SESSION.envelopeRecipient(mta), "temporary-failure");
  });

  test("envelope-recipient-discard: discard; further RCPT gets the fallback", async () => {
    s = await setup({ scripts: [{ envelopeRecipient: Discard }, {}], manager: FALLBACK });
    const mta = await s.mta();
    await chain(mta, "envelopeFrom");
    expectStatus(await SESSION.envelopeRecipient(mta), "discard");
    expectStatus(await SESSION.envelopeRecipient(mta), "temporary-failure");
  });

  test("envelope-recipient-reject-and-discard-simultaneously: discard; then the fallback", async () => {
    s = await setup({ scripts: [{ envelopeRecipient: Reject }, { envelopeRecipient: Discard }], manager: FALLBACK });
    const mta = await s.mta();
    await chain(mta, "envelopeFrom");
    expectStatus(await SESSION.envelopeRecipient(mta), "discard");
    expectStatus(await SESSION.envelopeRecipient(mta), "temporary-failure");
  });

  test("envelope-recipient-accept: continue; later RCPT and DATA only to 10027", async () => {
    s = await setup({ scripts: [{ envelopeRecipient: Accept }, {}] });
    const mta = await s.mta();
    await chain(mta, "envelopeFrom");
    expectStatus(await SESSION.envelopeRecipient(mta), "continue");
    const m = marks(s.children);
    expectStatus(await SESSION.envelopeRecipient(mta, "<other@example.com>"), "continue");
    expectStatus(await SESSION.data(mta), "continue");
    expect(received(s.children, "envelope-recipient", m)).toEqual([0, 1]);
    expect(received(s.children, "data")).toEqual([0, 1]);
  });

  test("envelope-recipient-accept-all: accept; next RCPT gets the fallback", async () => {
    s = await setup({ scripts: [{ envelopeRecipient: Accept }, { envelopeRecipient: Accept }], manager: FALLBACK });
    const mta = await s.mta();
    await chain(mta, "envelopeFrom");
    expectStatus(await SESSION.envelopeRecipient(mta), "accept");
    expectStatus(await SESSION.envelopeRecipient(mta), "temporary-failure");
  });

  test("envelope-recipient-stop: 10026 does not see stop@, but stays in the message", async () => {
    const conditions: Conditions = {
      shouldStop: (child, _stage, ctx) =>
        child.name === "milter@10026" && ctx.event.stage === "envelope-recipient" && ctx.event.recipient === "<stop@example.com>",
    };
    s = await setup({ engine: { conditions } });
    const mta = await s.mta();
    await chain(mta, "envelopeFrom");
    expectStatus(await SESSION.envelopeRecipient(mta, "<stop@example.com>"), "continue");
    expect(received(s.children, "envelope-recipient")).toEqual([0, 1]);
    const m = marks(s.children);
    expectStatus(await SESSION.envelopeRecipient(mta), "continue");
    expectStatus(await SESSION.data(mta), "continue");
    expect(received(s.children, "envelope-recipient", m)).toEqual([1, 1]);
    expect(received(s.children, "data", m)).toEqual([1, 1]);
  });

  test("envelope-recipient-again: RCPT of a second message reaches both", async () => {
    s = await setup();
    const mta = await s.mta();
    await chain(mta, "endOfMessage");
    await mta.abort();
    expectStatus(await SESSION.envelopeFrom(mta), "continue");
    const m = marks(s.children);
    expectStatus(await SESSION.envelopeRecipient(mta), "continue");
    expect(received(s.children, "envelope-recipient", m)).toEqual([1, 1]);
  });

  const evaluation: [string, Script["envelopeRecipient"]][] = [
    ["reject", Reject],
    ["temporary-failure", Tempfail],
    ["reply-code-4xx", replyCode(451, "4.7.1", "Greylisting in action, please come back later")],
    ["reply-code-5xx", { type: "replycode", text: "554 5.7.1 1% 2%% 3%%%" }],
  ];
  for (const [name, reply] of evaluation) {
    test(`envelope-recipient-${name}-evaluation: MTA continue; at DATA 10026 is aborted; rest only to 10027`, async () => {
      s = await setup({ scripts: [{ envelopeRecipient: reply }, {}], milters: [{ evaluation_mode: true }] });
      const mta = await s.mta();
      await chain(mta, "envelopeFrom");
      expectStatus(await SESSION.envelopeRecipient(mta), "continue");
      expectStatus(await SESSION.envelopeRecipient(mta, "<other@example.com>"), "continue");
      const m = marks(s.children);
      expectStatus(await SESSION.data(mta), "continue");
      expect(received(s.children, "data", m)).toEqual([0, 1]);
      await eventually(() => s.children[0].count("abort", m[0]) === 1, 3000, "10026 aborted");
      expect(received(s.children, "abort", m)).toEqual([1, 0]);
      expectStatus(await SESSION.header(mta), "continue");
      expectStatus(await SESSION.endOfHeader(mta), "continue");
      expectStatus(await SESSION.body(mta), "continue");
      expectStatus(await SESSION.endOfMessage(mta), "continue");
      expect(received(s.children, "header", m)).toEqual([0, 1]);
      expect(received(s.children, "end-of-message", m)).toEqual([0, 1]);
      expect(s.children[1].bodyChunks(m[1])).toEqual(["Hi,"]);
    });
  }

  test("a recipient the MTA refused itself (RCPT_REJ) only goes to the children that asked for those", async () => {
    s = await setup({ scripts: [{ protocol: SMFIP_RCPT_REJ }, {}] });
    const mta = await s.mta();
    expect(mta.negotiated!.protocol & SMFIP_RCPT_REJ).toBe(SMFIP_RCPT_REJ);
    await chain(mta, "envelopeFrom");
    const refused = { "{rcpt_mailer}": "error", "{rcpt_host}": "5.1.1", "{rcpt_addr}": "User unknown" };
    expectStatus(await mta.envelopeRecipient("<nobody@example.com>", [], refused), "continue");
    expect(received(s.children, "envelope-recipient")).toEqual([1, 0]);
  });
});

describe("DATA", () => {
  test("data-close-without-reply: both children close at DATA → their fallback (accept)", async () => {
    s = await setup({ scripts: [{ data: Close }, { data: "close" }] });
    const mta = await s.mta();
    await chain(mta, "envelopeRecipient");
    expectStatus(await SESSION.data(mta), "accept");
  });

  test("data-close-without-reply with fallback_status temporary-failure on one child", async () => {
    s = await setup({ scripts: [{ data: "close" }, {}], milters: [{ fallback_status: "temporary-failure" }] });
    const mta = await s.mta();
    await chain(mta, "envelopeRecipient");
    expectStatus(await SESSION.data(mta), "temporary-failure");
  });

  test("data-reply-code-reject", async () => {
    s = await setup({ scripts: [{ data: { type: "replycode", text: "554 5.5.4 Spam: pgrishin" } }, {}] });
    const mta = await s.mta();
    await chain(mta, "envelopeRecipient");
    expectStatus(await SESSION.data(mta), "reply-code", "554 5.5.4 Spam: pgrishin");
    expect(received(s.children, "data")).toEqual([1, 1]);
  });

  test("no-data-second-client: 10027 negotiated no-data and gets the body at end of message", async () => {
    s = await setup({ scripts: [{}, { protocol: SMFIP_NODATA }] });
    const mta = await s.mta();
    await chain(mta, "envelopeRecipient");
    expectStatus(await SESSION.data(mta), "continue");
    expect(received(s.children, "data")).toEqual([1, 0]);
    await chain(mta, "body");
    const m = marks(s.children);
    expectStatus(await SESSION.endOfMessage(mta), "continue");
    expect(received(s.children, "header")).toEqual([1, 1]);
    expect(received(s.children, "end-of-message", m)).toEqual([1, 1]);
    expect(s.children[1].bodyChunks()).toEqual(["Hi,"]);
  });

  test("DATA stop of one child (quirk #54 fixed): the other child still answers DATA", async () => {
    const conditions: Conditions = { shouldStop: (child, stage) => child.name === "milter@10026" && stage === "data" };
    s = await setup({ scripts: [{}, { data: Reject }], engine: { conditions } });
    const mta = await s.mta();
    await chain(mta, "envelopeRecipient");
    const m = marks(s.children);
    expectStatus(await SESSION.data(mta), "reject");
    expect(received(s.children, "data", m)).toEqual([0, 1]);
    await eventually(() => s.children[0].count("abort", m[0]) === 1, 3000, "10026 aborted");
  });

  test("DATA emulation: header without DATA from a v6 MTA runs DATA on the children first", async () => {
    s = await setup();
    const mta = await s.mta();
    await chain(mta, "envelopeRecipient");
    expectStatus(await SESSION.header(mta), "continue");
    expect(received(s.children, "data")).toEqual([1, 1]);
    expect(received(s.children, "header")).toEqual([1, 0]);
  });

  test("DATA emulation: a refused emulated DATA answers the header", async () => {
    s = await setup({ scripts: [{ data: Tempfail }, {}] });
    const mta = await s.mta();
    await chain(mta, "envelopeRecipient");
    expectStatus(await SESSION.header(mta), "temporary-failure");
    expect(received(s.children, "header")).toEqual([0, 0]);
  });
});
