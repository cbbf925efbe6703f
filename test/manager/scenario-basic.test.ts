// manager.md §2.13 "Basic flow": the upstream leader scenarios, over real sockets (test MTA →
// manager → two scripted child milters). Each test is named after the fixture.
import { afterEach, describe, expect, test } from "bun:test";
import { SMFIP_SKIP, SMFI_CURR_PROT } from "../../src/milter/index.ts";
import { Reject, replyCode } from "../../src/milter-side/index.ts";
import { chain, eventually, expectStatus, marks, received, SESSION, type Setup, setup } from "./support/harness.ts";

let s: Setup;
afterEach(async () => {
  await s?.close();
});

describe("basic flow", () => {
  test("negotiate", async () => {
    s = await setup({ scripts: [{ protocol: SMFIP_SKIP }, {}] });
    const mta = await s.mta({ offer: { version: 6, actions: 0x7f, protocol: SMFI_CURR_PROT } });
    // Both children got the MTA's option verbatim.
    for (const c of s.children) expect(c.events("negotiate")[0].offer).toEqual({ version: 6, actions: 0x7f, protocol: SMFI_CURR_PROT });
    expect(received(s.children, "negotiate")).toEqual([1, 1]);
    expect({ version: mta.negotiated!.version, actions: mta.negotiated!.actions, protocol: mta.negotiated!.protocol }).toEqual({
      version: 6,
      actions: 0x7f,
      protocol: SMFIP_SKIP,
    });
  });

  test("connect", async () => {
    s = await setup();
    const mta = await s.mta();
    expectStatus(await SESSION.connect(mta), "continue");
    expect(received(s.children, "connect")).toEqual([1, 1]);
    for (const c of s.children) {
      expect(c.events("connect")[0]).toMatchObject({ host: "mx.local.net", family: "4", address: "192.168.1.29", port: 2929 });
    }
  });

  test("connect-with-macro", async () => {
    s = await setup();
    const mta = await s.mta();
    expectStatus(await SESSION.connect(mta), "continue");
    for (const c of s.children) expect(c.events("connect")[0].macros).toEqual({ daemon_name: "Postfix", j: "postfix" });
  });

  test("helo", async () => {
    s = await setup();
    const mta = await s.mta();
    await chain(mta, "connect");
    expectStatus(await SESSION.helo(mta), "continue");
    expect(s.children.map((c) => c.events("helo")[0]?.fqdn)).toEqual(["delian", "delian"]);
  });

  test("envelope-from", async () => {
    s = await setup();
    const mta = await s.mta();
    await chain(mta, "helo");
    expectStatus(await SESSION.envelopeFrom(mta), "continue");
    expect(s.children.map((c) => c.events("envelope-from")[0]?.address)).toEqual(["<kou+sender@example.com>", "<kou+sender@example.com>"]);
  });

  test("envelope-from-with-macro", async () => {
    s = await setup();
    const mta = await s.mta();
    await chain(mta, "helo");
    const macros = { "{auth_authen}": "kou", "{auth_type}": "PLAIN", "{auth_author}": "kou+author" };
    expectStatus(await mta.envelopeFrom("<kou+sender@example.com>", [], macros), "continue");
    for (const c of s.children) {
      expect(c.events("envelope-from")[0].macros).toEqual({ auth_authen: "kou", auth_type: "PLAIN", auth_author: "kou+author" });
    }
  });

  test("envelope-recipient", async () => {
    s = await setup();
    const mta = await s.mta();
    await chain(mta, "envelopeFrom");
    expectStatus(await SESSION.envelopeRecipient(mta), "continue");
    expect(received(s.children, "envelope-recipient")).toEqual([1, 1]);
  });

  test("data", async () => {
    s = await setup();
    const mta = await s.mta();
    await chain(mta, "envelopeRecipient");
    expectStatus(await SESSION.data(mta), "continue");
    expect(received(s.children, "data")).toEqual([1, 1]);
    expect(s.children.map((c) => c.events("data")[0].macros)).toEqual([{ i: "QID1" }, { i: "QID1" }]);
  });

  test("header-from: only the first child gets it live", async () => {
    s = await setup();
    const mta = await s.mta();
    await chain(mta, "data");
    expectStatus(await SESSION.header(mta), "continue");
    expect(received(s.children, "header")).toEqual([1, 0]);
    expect(s.children[0].events("header")[0]).toMatchObject({ name: "From", value: "<kou+sender@example.com>", macros: { i: "QID1" } });
  });

  test("header-from-and-mailer", async () => {
    s = await setup();
    const mta = await s.mta();
    await chain(mta, "header");
    expectStatus(await SESSION.header(mta, "X-Mailer", "milter-test-server"), "continue");
    expect(received(s.children, "header")).toEqual([2, 0]);
  });

  test("end-of-header", async () => {
    s = await setup();
    const mta = await s.mta();
    await chain(mta, "header");
    expectStatus(await SESSION.endOfHeader(mta), "continue");
    expect(received(s.children, "end-of-header")).toEqual([1, 0]);
  });

  test("body", async () => {
    s = await setup();
    const mta = await s.mta();
    await chain(mta, "endOfHeader");
    expectStatus(await SESSION.body(mta), "continue");
    expect(s.children.map((c) => c.bodyChunks())).toEqual([["Hi,"], []]);
  });

  test("end-of-message: child 1 gets only EOM, child 2 the whole message at EOM", async () => {
    s = await setup();
    const mta = await s.mta();
    await chain(mta, "body");
    const m = marks(s.children);
    const o = await SESSION.endOfMessage(mta);
    expectStatus(o, "continue");
    expect(o.ok && o.modifications).toEqual([]);
    expect(received(s.children, "end-of-message", m)).toEqual([1, 1]);
    expect(received(s.children, "header", m)).toEqual([0, 1]);
    expect(s.children.map((c) => c.bodyChunks(m[s.children.indexOf(c)]))).toEqual([[], ["Hi,"]]);
    expect(s.children[1].events("header")[0]).toMatchObject({ name: "From", value: "<kou+sender@example.com>" });
  });

  test("quit", async () => {
    s = await setup();
    const mta = await s.mta();
    await chain(mta, "endOfMessage");
    await mta.quit();
    await eventually(() => s.children.every((c) => c.count("quit") === 1), 3000, "children quit");
    await eventually(() => s.manager.sessions === 0, 3000, "leader finished");
  });

  test("abort-on-envelope-from", async () => {
    s = await setup();
    const mta = await s.mta();
    await chain(mta, "envelopeFrom");
    await mta.abort();
    await eventually(() => s.children.every((c) => c.count("abort") === 1), 3000, "both children aborted");
  });

  test("abort-on-end-of-message", async () => {
    s = await setup();
    const mta = await s.mta();
    await chain(mta, "endOfMessage");
    await mta.abort();
    await eventually(() => s.children.every((c) => c.count("abort") === 1), 3000, "both children aborted");
  });

  test("unknown", async () => {
    s = await setup();
    const mta = await s.mta();
    await chain(mta, "helo");
    expectStatus(await mta.unknown("UNKNWON COMMAND"), "continue");
    expect(s.children.map((c) => c.events("unknown")[0]?.commandLine)).toEqual(["UNKNWON COMMAND", "UNKNWON COMMAND"]);
  });

  test("reply-code: a 5xx reply code at MAIL reaches the MTA as is", async () => {
    s = await setup({ scripts: [{ envelopeFrom: { type: "replycode", text: "554 5.7.1 1%% 2%% 3%%" } }, {}] });
    const mta = await s.mta();
    await chain(mta, "helo");
    expectStatus(await SESSION.envelopeFrom(mta), "reply-code", "554 5.7.1 1%% 2%% 3%%");
    expect(received(s.children, "envelope-from")).toEqual([1, 1]);
  });

  test("reply-code-invalid (quirk fixed: the plain status instead of no reply)", async () => {
    s = await setup({ scripts: [{ envelopeFrom: () => ({ type: "replycode", text: "554 3.7.1 1%% 2%% 3%%" }) }, {}] });
    const mta = await s.mta();
    await chain(mta, "helo");
    expectStatus(await SESSION.envelopeFrom(mta), "reject");
  });

  test("a reply code that another child's stronger status overrides is not forwarded", async () => {
    s = await setup({ scripts: [{ envelopeFrom: replyCode(451, "4.7.1", "later") }, { envelopeFrom: Reject }] });
    const mta = await s.mta();
    await chain(mta, "helo");
    expectStatus(await SESSION.envelopeFrom(mta), "reject");
  });

  test("unknown rejected inside a transaction only refuses that command (our choice; manager.md §2.4 leaves it open)", async () => {
    s = await setup({ scripts: [{ unknown: Reject }, {}] });
    const mta = await s.mta();
    await chain(mta, "envelopeRecipient");
    expectStatus(await mta.unknown("XFOO"), "reject");
    const m = marks(s.children);
    expectStatus(await SESSION.envelopeRecipient(mta, "<second@example.com>"), "continue");
    expect(received(s.children, "envelope-recipient", m)).toEqual([1, 1]);
    expect(received(s.children, "abort", m)).toEqual([0, 0]);
  });

  test("K (QUIT_NC): a new SMTP session on the same connection gets fresh children", async () => {
    s = await setup();
    const mta = await s.mta();
    await chain(mta, "endOfMessage");
    expectStatus(await mta.quitNc(), "continue");
    await eventually(() => s.children.every((c) => c.sessions === 2), 3000, "children reopened");
    const m = marks(s.children);
    await chain(mta, "endOfMessage");
    expect(received(s.children, "connect", m)).toEqual([1, 1]);
    expect(received(s.children, "end-of-message", m)).toEqual([1, 1]);
  });

  test("40 concurrent MTA sessions: each message reaches the children in its own session", async () => {
    s = await setup({ scripts: [{ recordBody: true }, {}] });
    await Promise.all(
      Array.from({ length: 40 }, async (_, i) => {
        const mta = await s.mta();
        await chain(mta, "endOfHeader");
        expectStatus(await SESSION.body(mta, `body ${i}`), "continue");
        expectStatus(await SESSION.endOfMessage(mta), "continue");
        await mta.quit();
      }),
    );
    for (const c of s.children) {
      const bySession = new Map<number, string[]>();
      for (const r of c.events("body")) bySession.set(r.session, [...(bySession.get(r.session) ?? []), r.chunk!]);
      expect(bySession.size).toBe(40);
      expect([...bySession.values()].every((v) => v.length === 1)).toBe(true);
      expect(new Set([...bySession.values()].map((v) => v[0])).size).toBe(40);
    }
    await eventually(() => s.manager.sessions === 0, 5000, "all sessions ended");
  });
});
