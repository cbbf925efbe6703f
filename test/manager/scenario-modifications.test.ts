// manager.md §2.13 "Modifications at EOM" (+ manager.md §2.5.3, §2.5.6, §2.8): what the MTA ends up with,
// checked by applying the packets it receives to a Postfix-semantics header model.
import { afterEach, describe, expect, test } from "bun:test";
import { type DecisionReply, SMFIP_HDR_LEADSPC, SMFIP_NOBODY, type ModificationReply } from "../../src/milter/index.ts";
import { Accept, Continue, Discard, eom, Reject, Tempfail, type EomResult } from "../../src/milter-side/index.ts";
import type { EndOfMessageOutcome, Modification } from "../../src/mta-side/index.ts";
import type { Header, HeaderPacket } from "../../src/manager/headers.ts";
import type { Script } from "./support/scripted-milter.ts";
import { applyHeaderPackets } from "./support/mta-headers.ts";
import { chain, expectStatus, SESSION, type Setup, setup } from "./support/harness.ts";

let s: Setup;
afterEach(async () => {
  await s?.close();
});

const FROM: Header = { name: "From", value: "<kou+sender@example.com>" };

/** Header modifications as the packets the MTA received. */
function headerPackets(mods: readonly Modification[]): HeaderPacket[] {
  const out: HeaderPacket[] = [];
  for (const m of mods) {
    if (m.type === "add-header") out.push({ type: "addheader", name: m.name, value: m.value });
    else if (m.type === "insert-header") out.push({ type: "insheader", index: m.index, name: m.name, value: m.value });
    else if (m.type === "change-header") out.push({ type: "chgheader", index: m.index, name: m.name, value: m.value });
    else if (m.type === "delete-header") out.push({ type: "chgheader", index: m.index, name: m.name, value: "" });
  }
  return out;
}

/** Run a message with the given headers through the manager; returns the EOM outcome. */
async function message(headers: Header[] = [FROM], body = "Hi,", offer?: { protocol: number }): Promise<EndOfMessageOutcome & { ok: true }> {
  const mta = await s.mta(offer ? { offer } : {});
  await chain(mta, "data");
  for (const h of headers) expectStatus(await mta.header(h.name, h.value), "continue");
  expectStatus(await SESSION.endOfHeader(mta), "continue");
  expectStatus(await SESSION.body(mta, body), "continue");
  const o = await SESSION.endOfMessage(mta);
  if (!o.ok) throw new Error(`end of message failed: ${o.detail}`);
  return o;
}

/** The header list the MTA ends with. */
function mtaHeaders(orig: Header[], o: EndOfMessageOutcome): Header[] {
  return applyHeaderPackets(orig, headerPackets(o.modifications));
}

const eomMods = (mods: ModificationReply[], reply: DecisionReply = Continue): Script["endOfMessage"] => eom(mods, reply);
const EVAL = { evaluation_mode: true };

describe("headers", () => {
  test("add-header", async () => {
    s = await setup({
      scripts: [
        { endOfMessage: eomMods([{ type: "addheader", name: "X-Test-Header1", value: "Test Header1 Value" }]) },
        { endOfMessage: eomMods([{ type: "addheader", name: "X-Test-Header2", value: "Test Header2 Value" }]) },
      ],
    });
    const o = await message();
    expect(o.status).toBe("continue");
    expect(mtaHeaders([FROM], o)).toEqual([FROM, { name: "X-Test-Header1", value: "Test Header1 Value" }, { name: "X-Test-Header2", value: "Test Header2 Value" }]);
    // 10027 saw 10026's header.
    expect(s.children[1].events("header").map((h) => h.name)).toEqual(["From", "X-Test-Header1"]);
  });

  test("add-header-with-leading-space: both values reach the MTA with a leading space", async () => {
    s = await setup({
      scripts: [
        { protocol: SMFIP_HDR_LEADSPC, endOfMessage: eomMods([{ type: "addheader", name: "X-Test-Header1", value: " Test Header1 Value" }]) },
        { endOfMessage: eomMods([{ type: "addheader", name: "X-Test-Header2", value: "Test Header2 Value" }]) },
      ],
    });
    const from = { name: "From", value: " <kou+sender@example.com>" };
    const o = await message([from], "Hi,", { protocol: SMFIP_HDR_LEADSPC });
    expect(mtaHeaders([from], o)).toEqual([from, { name: "X-Test-Header1", value: " Test Header1 Value" }, { name: "X-Test-Header2", value: " Test Header2 Value" }]);
    // The child without leading spaces was replayed the values without them.
    expect(s.children[1].events("header").map((h) => h.value)).toEqual(["<kou+sender@example.com>", "Test Header1 Value"]);
  });

  test("add-header-evaluation: only X2", async () => {
    s = await setup({
      scripts: [
        { endOfMessage: eomMods([{ type: "addheader", name: "X-Test-Header1", value: "Test Header1 Value" }]) },
        { endOfMessage: eomMods([{ type: "addheader", name: "X-Test-Header2", value: "Test Header2 Value" }]) },
      ],
      milters: [EVAL],
    });
    const o = await message();
    // Issue 15: `h` appends at the end, as the MTA does for a child talking to it directly.
    expect(mtaHeaders([FROM], o)).toEqual([FROM, { name: "X-Test-Header2", value: "Test Header2 Value" }]);
    // The evaluation child's header is not in the message the next child sees either.
    expect(s.children[1].events("header").map((h) => h.name)).toEqual(["From"]);
  });

  for (const [name, reply] of [["reject", Reject], ["temporary-failure", Tempfail], ["discard", Discard]] as const) {
    test(`add-header-evaluation-${name}: continue, X1 present`, async () => {
      s = await setup({
        scripts: [{ endOfMessage: eomMods([{ type: "addheader", name: "X-Test-Header1", value: "Test Header1 Value" }]) }, { endOfMessage: reply }],
        milters: [{}, EVAL],
      });
      const o = await message();
      expect(o.status).toBe("continue");
      expect(mtaHeaders([FROM], o)).toEqual([FROM, { name: "X-Test-Header1", value: "Test Header1 Value" }]);
    });
  }

  test("an evaluation child that refuses before the last one does not end the pipeline (quirk manager.md §2.5.5 fixed)", async () => {
    s = await setup({
      scripts: [{ endOfMessage: Reject }, { endOfMessage: eomMods([{ type: "addheader", name: "X-Test-Header2", value: "v" }]) }],
      milters: [EVAL],
    });
    const o = await message();
    expect(o.status).toBe("continue");
    expect(s.children[1].count("end-of-message")).toBe(1);
    expect(mtaHeaders([FROM], o)).toEqual([FROM, { name: "X-Test-Header2", value: "v" }]);
  });

  // Issue 15 item 3: `i` counts the MTA's own Received: (index 0, never shown to milters), as
  // Postfix and Sendmail do when the children talk to them directly: index 1 is above From,
  // index 2 after it. (milter-manager's scenario expected From, X2, X1.)
  test("insert-header: X1 at 2, X2 at 1 → X2, From, X1", async () => {
    s = await setup({
      scripts: [
        { endOfMessage: eomMods([{ type: "insheader", index: 2, name: "X-Test-Header1", value: "Test Header1 Value" }]) },
        { endOfMessage: eomMods([{ type: "insheader", index: 1, name: "X-Test-Header2", value: "Test Header2 Value" }]) },
      ],
    });
    const o = await message();
    expect(mtaHeaders([FROM], o)).toEqual([{ name: "X-Test-Header2", value: "Test Header2 Value" }, FROM, { name: "X-Test-Header1", value: "Test Header1 Value" }]);
  });

  test("insert-header-with-leading-space", async () => {
    s = await setup({
      scripts: [
        { protocol: SMFIP_HDR_LEADSPC, endOfMessage: eomMods([{ type: "insheader", index: 2, name: "X-Test-Header1", value: " Test Header1 Value" }]) },
        { endOfMessage: eomMods([{ type: "insheader", index: 1, name: "X-Test-Header2", value: "Test Header2 Value" }]) },
      ],
    });
    const from = { name: "From", value: " <kou+sender@example.com>" };
    const o = await message([from], "Hi,", { protocol: SMFIP_HDR_LEADSPC });
    expect(mtaHeaders([from], o)).toEqual([{ name: "X-Test-Header2", value: " Test Header2 Value" }, from, { name: "X-Test-Header1", value: " Test Header1 Value" }]);
  });

  test("insert-header-evaluation: X2, From (index 1 is above From, see insert-header)", async () => {
    s = await setup({
      scripts: [
        { endOfMessage: eomMods([{ type: "insheader", index: 2, name: "X-Test-Header1", value: "Test Header1 Value" }]) },
        { endOfMessage: eomMods([{ type: "insheader", index: 1, name: "X-Test-Header2", value: "Test Header2 Value" }]) },
      ],
      milters: [EVAL],
    });
    const o = await message();
    expect(mtaHeaders([FROM], o)).toEqual([{ name: "X-Test-Header2", value: "Test Header2 Value" }, FROM]);
  });

  const X1 = { name: "X-Test-Header1", value: "Test-Header1-Value1" };
  const addX1 = eomMods([{ type: "addheader", name: "X-Test-Header1", value: "Test-Header1-Value2" }]);
  const changeX1 = eomMods([{ type: "chgheader", index: 1, name: "X-Test-Header1", value: "Replaced Value" }]);

  // Issue 15: `h` appends at the end, as Postfix and Sendmail do for a child talking to them
  // directly (milter-manager put it before the first header of the same name, so there the
  // second child saw Value2 first and replaced it).
  test("change-header: X1:Replaced Value, X1:Test-Header1-Value2", async () => {
    s = await setup({ scripts: [{ endOfMessage: addX1 }, { endOfMessage: changeX1 }] });
    const o = await message([X1]);
    expect(mtaHeaders([X1], o)).toEqual([{ name: "X-Test-Header1", value: "Replaced Value" }, { name: "X-Test-Header1", value: "Test-Header1-Value2" }]);
    expect(s.children[1].events("header").map((h) => h.value)).toEqual(["Test-Header1-Value1", "Test-Header1-Value2"]);
  });

  test("change-header-with-leading-space: X1: Replaced Value (space added), X1: Test-Header1-Value2 (appended, see change-header)", async () => {
    s = await setup({
      scripts: [
        { protocol: SMFIP_HDR_LEADSPC, endOfMessage: eomMods([{ type: "addheader", name: "X-Test-Header1", value: " Test-Header1-Value2" }]) },
        { endOfMessage: changeX1 },
      ],
    });
    const o = await message([X1], "Hi,", { protocol: SMFIP_HDR_LEADSPC });
    expect(mtaHeaders([X1], o)).toEqual([{ name: "X-Test-Header1", value: " Replaced Value" }, { name: "X-Test-Header1", value: " Test-Header1-Value2" }]);
  });

  test("change-header-evaluation: X1:Test-Header1-Value1, X1:Test-Header1-Value2 (appended, see change-header)", async () => {
    s = await setup({ scripts: [{ endOfMessage: addX1 }, { endOfMessage: changeX1 }], milters: [{}, EVAL] });
    const o = await message([X1]);
    expect(mtaHeaders([X1], o)).toEqual([X1, { name: "X-Test-Header1", value: "Test-Header1-Value2" }]);
  });

  const addX2 = eomMods([{ type: "addheader", name: "X-Test-Header2", value: "Test Header2 Value" }]);
  const deleteX1 = eomMods([{ type: "chgheader", index: 1, name: "X-Test-Header1", value: "" }]);

  test("delete-header: only X2", async () => {
    s = await setup({ scripts: [{ endOfMessage: addX2 }, { endOfMessage: deleteX1 }] });
    const o = await message([X1]);
    expect(mtaHeaders([X1], o)).toEqual([{ name: "X-Test-Header2", value: "Test Header2 Value" }]);
  });

  test("delete-header-evaluation: X1, X2", async () => {
    s = await setup({ scripts: [{ endOfMessage: addX2 }, { endOfMessage: deleteX1 }], milters: [{}, EVAL] });
    const o = await message([X1]);
    expect(mtaHeaders([X1], o)).toEqual([X1, { name: "X-Test-Header2", value: "Test Header2 Value" }]);
  });

  test("delete-header-many (order quirk fixed): the MTA ends with X1:Value3, X2 like the manager's model", async () => {
    const orig = [1, 2, 3].map((i) => ({ name: "X-Test-Header1", value: `Test-Header1-Value${i}` }));
    s = await setup({
      scripts: [
        {
          endOfMessage: eomMods([
            { type: "chgheader", index: 2, name: "X-Test-Header1", value: "" },
            { type: "chgheader", index: 1, name: "X-Test-Header1", value: "" },
          ]),
        },
        { endOfMessage: addX2 },
      ],
    });
    const o = await message(orig);
    expect(mtaHeaders(orig, o)).toEqual([orig[2], { name: "X-Test-Header2", value: "Test Header2 Value" }]);
    expect(applyHeaderPackets(orig, headerPackets(o.modifications), { sendmail: true })).toEqual(mtaHeaders(orig, o));
  });
});

describe("envelope", () => {
  test("change-from: one change-from, no parameters", async () => {
    s = await setup({ scripts: [{ endOfMessage: eomMods([{ type: "chgfrom", address: "change@example.com" }]) }, {}] });
    const o = await message();
    expect(o.modifications).toEqual([{ type: "change-envelope-from", address: "change@example.com" }]);
  });

  test("change-from: the last child wins, with its ESMTP parameters", async () => {
    s = await setup({
      scripts: [
        { endOfMessage: eomMods([{ type: "chgfrom", address: "<first@example.com>" }]) },
        { endOfMessage: eomMods([{ type: "chgfrom", address: "<second@example.com>", args: "RET=HDRS ENVID=x" }]) },
      ],
    });
    const o = await message();
    expect(o.modifications).toEqual([{ type: "change-envelope-from", address: "<second@example.com>", args: "RET=HDRS ENVID=x" }]);
  });

  test("change-from-evaluation: none", async () => {
    s = await setup({ scripts: [{ endOfMessage: eomMods([{ type: "chgfrom", address: "change@example.com" }]) }, {}], milters: [EVAL] });
    expect((await message()).modifications).toEqual([]);
  });

  const adds = (a: string[]): ModificationReply[] => a.map((address) => ({ type: "addrcpt", address }));
  const dels = (a: string[]): ModificationReply[] => a.map((address) => ({ type: "delrcpt", address }));

  test("add-recipient: four packets, duplicates kept", async () => {
    s = await setup({ scripts: [{ endOfMessage: eomMods(adds(["add1@example.com", "add2@example.com"])) }, { endOfMessage: eomMods(adds(["add2@example.com", "add3@example.com"])) }] });
    const o = await message();
    expect(o.modifications.map((m) => m.type === "add-envelope-recipient" && m.address)).toEqual(["add1@example.com", "add2@example.com", "add2@example.com", "add3@example.com"]);
  });

  test("add-recipient with ESMTP parameters", async () => {
    s = await setup({
      scripts: [{ endOfMessage: eomMods([{ type: "addrcpt_par", address: "<p@example.com>", args: "NOTIFY=NEVER" }, { type: "addrcpt_par", address: "<q@example.com>" }]) }, {}],
    });
    const o = await message();
    expect(o.modifications).toEqual([
      { type: "add-envelope-recipient", address: "<p@example.com>", args: "NOTIFY=NEVER", withParameters: true },
      { type: "add-envelope-recipient", address: "<q@example.com>", withParameters: true },
    ]);
  });

  test("add-recipient-evaluation: add2, add3", async () => {
    s = await setup({ scripts: [{ endOfMessage: eomMods(adds(["add1@example.com", "add2@example.com"])) }, { endOfMessage: eomMods(adds(["add2@example.com", "add3@example.com"])) }], milters: [EVAL] });
    const o = await message();
    expect(o.modifications.map((m) => m.type === "add-envelope-recipient" && m.address)).toEqual(["add2@example.com", "add3@example.com"]);
  });

  test("delete-recipient: four packets, duplicates kept", async () => {
    s = await setup({ scripts: [{ endOfMessage: eomMods(dels(["delete1@example.com", "delete2@example.com"])) }, { endOfMessage: eomMods(dels(["delete2@example.com", "delete3@example.com"])) }] });
    const o = await message();
    expect(o.modifications).toEqual(["delete1", "delete2", "delete2", "delete3"].map((d) => ({ type: "delete-envelope-recipient", address: `${d}@example.com` })));
  });

  test("delete-recipient-evaluation: delete2, delete3", async () => {
    s = await setup({ scripts: [{ endOfMessage: eomMods(dels(["delete1@example.com", "delete2@example.com"])) }, { endOfMessage: eomMods(dels(["delete2@example.com", "delete3@example.com"])) }], milters: [EVAL] });
    const o = await message();
    expect(o.modifications).toEqual(["delete2", "delete3"].map((d) => ({ type: "delete-envelope-recipient", address: `${d}@example.com` })));
  });
});

describe("body", () => {
  const body = (t: string): ModificationReply => ({ type: "replbody", chunk: Buffer.from(t, "latin1") });
  const bodyOf = (o: EndOfMessageOutcome) =>
    o.modifications.filter((m) => m.type === "replace-body").map((m) => Buffer.from((m as { chunk: Uint8Array }).chunk).toString("latin1"));

  test("replace-body: three packets from 10026 → one packet; 10027 received it as its body", async () => {
    s = await setup({ scripts: [{ endOfMessage: eomMods([body("This is "), body("the replaced "), body("message by client1.")]) }, {}] });
    const o = await message();
    expect(bodyOf(o)).toEqual(["This is the replaced message by client1."]);
    // Issue 15: as Postfix shows it to the next milter, the last line ended (Postfix keeps lines)
    expect(s.children[1].bodyChunks()).toEqual(["This is the replaced message by client1.\r\n"]);
  });

  test("replace-body-overwrite: only 10027's text; 10027 had received 10026's", async () => {
    s = await setup({
      scripts: [{ endOfMessage: eomMods([body("client1 body")]) }, { endOfMessage: eomMods([body("client2 "), body("body")]) }],
    });
    const o = await message();
    expect(bodyOf(o)).toEqual(["client2 body"]);
    expect(s.children[1].bodyChunks()).toEqual(["client1 body\r\n"]); // last line ended, see replace-body
  });

  test("replace-body-evaluation: none; 10027 receives the original body", async () => {
    s = await setup({ scripts: [{ endOfMessage: eomMods([body("replaced")]) }, {}], milters: [EVAL] });
    const o = await message();
    expect(bodyOf(o)).toEqual([]);
    expect(s.children[1].bodyChunks()).toEqual(["Hi,"]);
  });

  test("a replaced body is sent to the MTA in chunk_size packets", async () => {
    s = await setup({ scripts: [{ endOfMessage: eomMods([body("a".repeat(1500)), body("b".repeat(1000))]) }, {}], manager: { chunk_size: 1000 } });
    const o = await message();
    expect(bodyOf(o).map((c) => c.length)).toEqual([1000, 1000, 500]);
    expect(bodyOf(o).join("")).toBe("a".repeat(1500) + "b".repeat(1000));
  });

  test("a child that never got the body and replaces it overwrites (quirk fixed: no appending)", async () => {
    s = await setup({ scripts: [{ endOfMessage: eomMods([body("first")]) }, { protocol: SMFIP_NOBODY, endOfMessage: eomMods([body("second")]) }] });
    const o = await message();
    expect(bodyOf(o)).toEqual(["second"]);
  });

  test("a replacement by an empty body", async () => {
    s = await setup({ scripts: [{ endOfMessage: eomMods([{ type: "replbody", chunk: new Uint8Array(0) }]) }, {}] });
    const o = await message();
    expect(bodyOf(o)).toEqual([""]);
  });
});

describe("quarantine and progress", () => {
  test("quarantine: one quarantine, status continue", async () => {
    s = await setup({ scripts: [{ endOfMessage: eomMods([{ type: "quarantine", reason: "MAYBE VIRUS" }]) }, {}] });
    const o = await message();
    expect(o.status).toBe("continue");
    expect(o.modifications).toEqual([{ type: "quarantine", reason: "MAYBE VIRUS" }]);
  });

  test("quarantine-evaluation: none", async () => {
    s = await setup({ scripts: [{ endOfMessage: eomMods([{ type: "quarantine", reason: "MAYBE VIRUS" }]) }, {}], milters: [EVAL] });
    expect((await message()).modifications).toEqual([]);
  });

  test("quarantine-header-change: header first, then quarantine right before the final accept", async () => {
    s = await setup({
      scripts: [
        { endOfMessage: Accept },
        { endOfMessage: eomMods([{ type: "quarantine", reason: "MAYBE VIRUS" }, { type: "addheader", name: "X-Quarantine", value: "yes" }], Accept) },
      ],
    });
    const o = await message();
    expect(o.status).toBe("accept");
    expect(o.modifications).toEqual([
      { type: "add-header", name: "X-Quarantine", value: "yes" },
      { type: "quarantine", reason: "MAYBE VIRUS" },
    ]);
  });

  test("progress: every progress is forwarded at once", async () => {
    const progressing = (_cmd: unknown, ctx: { progress(): boolean }) => {
      ctx.progress();
      return Continue;
    };
    s = await setup({ scripts: [{ endOfMessage: progressing }, { endOfMessage: progressing }] });
    const o = await message();
    expect(o.status).toBe("continue");
    expect(o.progress).toBe(2);
  });

  test("progress restarts the child's end-of-message timeout", async () => {
    const slow = async (_cmd: unknown, ctx: { progress(): boolean }): Promise<EomResult> => {
      for (let i = 0; i < 6; i++) {
        await Bun.sleep(150);
        ctx.progress();
      }
      return eom([{ type: "addheader", name: "X-Slow", value: "done" }]);
    };
    // 0.5 s without a packet would be a timeout; the child takes ~0.9 s but sends `p` every 0.15 s.
    s = await setup({ scripts: [{ endOfMessage: slow }, {}], milters: [{ end_of_message_timeout: 0.5, fallback_status: "temporary-failure" }] });
    const o = await message();
    expect(o.status).toBe("continue");
    expect(o.progress).toBe(6);
    expect(mtaHeaders([FROM], o)).toEqual([FROM, { name: "X-Slow", value: "done" }]);
  });
});
