import { afterEach, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  SMFIP_MDS_1M,
  SMFIP_MDS_256K,
  SMFIP_NOHELO,
  SMFIP_NOMAIL,
  SMFIP_NOUNKNOWN,
  SMFIP_NR_CONN,
  SMFIP_NR_HDR,
  SMFIP_NR_RCPT,
  SMFIP_SKIP,
  decodeCommands,
  type MtaCommand,
} from "../../src/milter/index.ts";
import { FramedConnection } from "../../src/net/connection.ts";
import { MilterClient, negotiationKey, prepareBody, prepareStep, type ClientAddress } from "../../src/mta-side/index.ts";
import { startScriptedMilter, type ScriptedMilter } from "./scripted-milter.ts";

let milter: ScriptedMilter | undefined;
let client: MilterClient | undefined;
afterEach(() => {
  client?.close();
  milter?.stop();
  client = milter = undefined;
});

const ADDR: ClientAddress = { family: "4", address: "192.0.2.1", port: 25 };

async function opened(m: ScriptedMilter, options: Partial<ConstructorParameters<typeof MilterClient>[0]> = {}): Promise<MilterClient> {
  const c = new MilterClient({ spec: m.spec, readingTimeoutMs: 5000, ...options });
  const r = await c.open();
  if (!r.ok) throw new Error(`open failed: ${r.detail}`);
  return c;
}

/** Wait until the scripted milter has seen `n` commands (bounded). */
async function seen(m: ScriptedMilter, n: number): Promise<MtaCommand[]> {
  for (let i = 0; i < 200 && m.all().length < n; i++) await Bun.sleep(5);
  return m.all();
}

function types(cmds: MtaCommand[]): string {
  return cmds.map((c) => (c.type === "macro" ? `D${c.command}` : c.type)).join(" ");
}

function macroOf(cmds: MtaCommand[], letter: string): Record<string, string> | undefined {
  const d = cmds.find((c) => c.type === "macro" && c.command === letter);
  return d && d.type === "macro" ? Object.fromEntries(d.macros) : undefined;
}

test("a whole session: negotiate, every step answered, quit closes the socket", async () => {
  milter = startScriptedMilter();
  client = new MilterClient({ spec: milter.spec });
  const neg = await client.open();
  expect(neg.ok).toBe(true);
  if (!neg.ok) return;
  expect(neg.negotiated.version).toBe(6);
  expect(milter.sessions[0].offer).toEqual({ type: "optneg", version: 6, actions: 0x1ff, protocol: 0x1fffff });

  const c = client;
  const results = [
    await c.connect("mx.example.net", ADDR, { daemon_name: "test", j: "mail.example.com" }),
    await c.helo("delian", {}),
    await c.envelopeFrom("<a@example.com>", ["SIZE=10"], { "{mail_addr}": "a@example.com" }),
    await c.envelopeRecipient("<b@example.org>", [], { rcpt_addr: "<b@example.org>" }),
    await c.unknown("XFOO"),
    await c.data({ i: "Q1" }),
    await c.header("From", "a@example.com"),
    await c.header("Subject", "hi"),
    await c.endOfHeader({ i: "Q1" }),
    await c.body(Buffer.from("Hello\r\n", "latin1")),
  ];
  for (const r of results) expect(r).toMatchObject({ ok: true, status: "continue", via: "reply" });
  expect(results.map((r) => r.stage)).toEqual([
    "connect", "helo", "envelope-from", "envelope-recipient", "unknown", "data", "header", "header", "end-of-header", "body",
  ]);
  const eom = await c.endOfMessage({ i: "Q1" });
  expect(eom).toMatchObject({ ok: true, status: "continue", stage: "end-of-message", via: "reply", modifications: [], progress: 0 });
  const q = await c.quit();
  expect(q).toMatchObject({ ok: true, status: "continue", stage: "quit", via: "no-reply" });
  expect(client.closed).toBe(true);

  const cmds = await seen(milter, 18);
  expect(types(cmds)).toBe(
    "DC connect helo DM mail DR rcpt unknown DT data header header DN eoh body DE eob quit",
  );
  expect(cmds[1]).toEqual({ type: "connect", hostname: "mx.example.net", family: "4", port: 25, address: "192.0.2.1" });
  // Names normalised to the wire form: long names get braces, single letters stay bare.
  expect(macroOf(cmds, "C")).toEqual({ "{daemon_name}": "test", j: "mail.example.com" });
  expect(macroOf(cmds, "M")).toEqual({ "{mail_addr}": "a@example.com" });
  expect(macroOf(cmds, "R")).toEqual({ "{rcpt_addr}": "<b@example.org>" });
  expect(cmds.find((x) => x.type === "mail")).toEqual({ type: "mail", address: "<a@example.com>", args: ["SIZE=10"] });
  expect(cmds.find((x) => x.type === "eob")).toEqual({ type: "eob" }); // never data in E
  for (let i = 0; i < 100 && !milter.sessions[0].closed; i++) await Bun.sleep(5);
  expect(milter.sessions[0].closed).toBe(true);
  // After quit, steps report closed.
  expect(await c.helo("again")).toMatchObject({ ok: false, status: "closed", stage: "helo" });
});

test("every step is one socket write: macros and command together", async () => {
  milter = startScriptedMilter();
  const writes: Buffer[] = [];
  const original = FramedConnection.prototype.send;
  FramedConnection.prototype.send = function (this: FramedConnection, batch: Uint8Array) {
    writes.push(Buffer.from(batch));
    return original.call(this, batch);
  };
  try {
    client = await opened(milter);
    await client.connect("h", ADDR, { j: "x" });
    await client.helo("h", { "{tls_version}": "0" });
    await client.envelopeFrom("<a@b>", [], { "{mail_addr}": "a@b" });
    await client.header("X", "y", { i: "1" });
    await client.body(Buffer.alloc(70000, 0x61), { i: "1" });
    await client.endOfMessage({ i: "1" });
  } finally {
    FramedConnection.prototype.send = original;
  }
  // optneg, C, H, M, L, B, B, E: one send each, each holding its D first.
  expect(writes.map((w) => types(decodeCommands(w)))).toEqual([
    "optneg", "DC connect", "DH helo", "DM mail", "DL header", "DB body", "DB body", "DE eob",
  ]);
});

test("NO_* steps are not sent (their macros are), NR_* steps are not waited for", async () => {
  milter = startScriptedMilter({
    negotiate: (offer) => ({ type: "optneg", version: 6, actions: offer.actions, protocol: SMFIP_NOHELO | SMFIP_NOMAIL | SMFIP_NOUNKNOWN | SMFIP_NR_CONN | SMFIP_NR_RCPT | SMFIP_NR_HDR }),
  });
  client = await opened(milter);
  expect(await client.connect("h", ADDR)).toMatchObject({ ok: true, status: "continue", via: "no-reply" });
  expect(await client.helo("h", { "{cipher}": "0" })).toMatchObject({ ok: true, status: "continue", via: "not-sent", stage: "helo" });
  expect(await client.helo("h")).toMatchObject({ status: "continue", via: "not-sent" });
  expect(await client.envelopeFrom("<a@b>")).toMatchObject({ status: "continue", via: "not-sent" });
  expect(await client.envelopeRecipient("<c@d>")).toMatchObject({ status: "continue", via: "no-reply" });
  expect(await client.unknown("XFOO")).toMatchObject({ status: "continue", via: "not-sent" });
  expect(await client.data()).toMatchObject({ status: "continue", via: "reply" });
  expect(await client.header("A", "1")).toMatchObject({ via: "no-reply" });
  expect(await client.header("B", "2")).toMatchObject({ via: "no-reply" });
  expect(await client.endOfHeader()).toMatchObject({ via: "reply" });
  expect(await client.endOfMessage()).toMatchObject({ ok: true, status: "continue", via: "reply" });
  const cmds = await seen(milter, 8);
  expect(types(cmds)).toBe("connect DH rcpt data header header eoh eob");
});

test("the D of a suppressed stage goes out in the same write as the next command", async () => {
  milter = startScriptedMilter({ negotiate: (offer) => ({ type: "optneg", version: 6, actions: offer.actions, protocol: SMFIP_NOHELO | SMFIP_NOMAIL }) });
  const writes: Buffer[] = [];
  const original = FramedConnection.prototype.send;
  FramedConnection.prototype.send = function (this: FramedConnection, batch: Uint8Array) {
    writes.push(Buffer.from(batch));
    return original.call(this, batch);
  };
  try {
    client = await opened(milter);
    await client.helo("h", { "{cipher}": "0" });
    await client.envelopeFrom("<a@b>", [], { "{mail_addr}": "a@b" });
    await client.envelopeRecipient("<c@d>", [], { "{rcpt_addr}": "c@d" });
  } finally {
    FramedConnection.prototype.send = original;
  }
  expect(writes.map((w) => types(decodeCommands(w)))).toEqual(["optneg", "DH DM DR rcpt"]);
});

test("version gates: v2 gets no DATA, no UNKNOWN (nor their macros), v6-only K is not sent", async () => {
  milter = startScriptedMilter({ negotiate: (offer) => ({ type: "optneg", version: 2, actions: 0x0f, protocol: 0 }) });
  client = await opened(milter);
  expect(client.negotiated!.version).toBe(2);
  await client.connect("h", ADDR);
  expect(await client.unknown("XFOO", { x: "1" })).toMatchObject({ status: "continue", via: "not-sent", stage: "unknown" });
  expect(await client.data({ i: "1" })).toMatchObject({ status: "continue", via: "not-sent", stage: "data" });
  expect(await client.quitNc()).toMatchObject({ status: "continue", via: "not-sent", stage: "quit" });
  expect(await client.endOfMessage()).toMatchObject({ status: "continue", via: "reply" });
  expect(types(await seen(milter, 2))).toBe("connect eob");
});

test("version 3 gets UNKNOWN but not DATA", async () => {
  milter = startScriptedMilter({ negotiate: () => ({ type: "optneg", version: 3, actions: 0, protocol: 0 }) });
  client = await opened(milter);
  expect(await client.unknown("XFOO")).toMatchObject({ via: "reply" });
  expect(await client.data()).toMatchObject({ via: "not-sent" });
  expect(types(await seen(milter, 1))).toBe("unknown");
});

test("symbol lists: only requested macros, names as the milter spells them, {name} matched both ways", async () => {
  milter = startScriptedMilter({
    negotiate: (offer) => ({
      type: "optneg", version: 6, actions: offer.actions, protocol: 0,
      macroLists: [
        { stage: 0, macros: "{client_addr} j {absent}" },
        { stage: 1, macros: "" }, // listed without macros: send none
        { stage: 5, macros: "{i}" },
      ],
    }),
  });
  client = await opened(milter);
  expect([...client.negotiated!.macroLists.keys()]).toEqual([0, 1, 5]);
  await client.connect("h", ADDR, { "{j}": "mx", client_addr: "192.0.2.1", "{daemon_name}": "d" });
  await client.helo("h", { "{cipher}": "0" });
  await client.envelopeFrom("<a@b>", [], { mail_addr: "a@b" }); // no list for MAIL: all, normalised
  await client.endOfMessage({ i: "Q1", j: "mx" });
  const cmds = await seen(milter, 6);
  expect(types(cmds)).toBe("DC connect helo DM mail DE eob");
  expect(macroOf(cmds, "C")).toEqual({ "{client_addr}": "192.0.2.1", j: "mx" });
  expect(macroOf(cmds, "M")).toEqual({ "{mail_addr}": "a@b" });
  expect(macroOf(cmds, "E")).toEqual({ "{i}": "Q1" });
});

test("MDS: 1M offered and echoed → big body in one packet; not echoed → 65535-byte chunks", async () => {
  const body = Buffer.alloc(200_000, 0x62);
  milter = startScriptedMilter({ negotiate: (o) => ({ type: "optneg", version: 6, actions: o.actions, protocol: o.protocol & SMFIP_MDS_1M }) });
  client = await opened(milter, { offer: { maxDataSize: 1048575 } });
  expect(milter.sessions[0].offer!.protocol & SMFIP_MDS_1M).toBe(SMFIP_MDS_1M);
  expect(client.negotiated!.maxDataSize).toBe(1048575);
  expect(await client.body(body)).toMatchObject({ status: "continue", via: "reply" });
  const one = await seen(milter, 1);
  expect(one.map((c) => (c.type === "body" ? c.chunk.length : -1))).toEqual([200_000]);
  client.close();
  milter.stop();

  milter = startScriptedMilter({ negotiate: (o) => ({ type: "optneg", version: 6, actions: o.actions, protocol: 0 }) });
  client = await opened(milter, { offer: { maxDataSize: 1048575 } });
  expect(client.negotiated!.maxDataSize).toBe(65535);
  expect(await client.body(body)).toMatchObject({ status: "continue" });
  const three = await seen(milter, 4);
  expect(three.map((c) => (c.type === "body" ? c.chunk.length : -1))).toEqual([65535, 65535, 65535, 3395]);
  expect(Buffer.concat(three.map((c) => (c as { chunk: Uint8Array }).chunk))).toEqual(body);
});

test("MDS: a milter choosing a larger size than offered is a protocol error", async () => {
  milter = startScriptedMilter({ negotiate: (o) => ({ type: "optneg", version: 6, actions: o.actions, protocol: SMFIP_MDS_1M }) });
  client = new MilterClient({ spec: milter.spec, offer: { maxDataSize: 262143 } });
  const r = await client.open();
  expect(r).toMatchObject({ ok: false, status: "protocol-error", stage: "negotiate" });
  if (!r.ok) expect(r.detail).toContain("larger than the offered");
  expect(milter.sessions[0].offer!.protocol & SMFIP_MDS_256K).toBe(SMFIP_MDS_256K);
});

// Issue 15 item 1: end-of-message data goes inside our `E`, as the MTA sent it (it used to be
// sent as a separate `B` before an empty `E`); only what exceeds the data size goes before it.
test("body: never an empty chunk; chunks of at most 65535 bytes; end-of-message data inside E", async () => {
  milter = startScriptedMilter();
  client = await opened(milter);
  expect(await client.body(new Uint8Array(0))).toMatchObject({ status: "continue", via: "not-sent" });
  expect(await client.body(Buffer.alloc(65535, 1))).toMatchObject({ via: "reply" });
  expect(await client.body(Buffer.alloc(65536, 2))).toMatchObject({ via: "reply" });
  expect(await client.endOfMessage(undefined, Buffer.alloc(10, 3))).toMatchObject({ status: "continue" });
  expect(await client.endOfMessage(undefined, Buffer.alloc(65540, 4))).toMatchObject({ status: "continue" });
  const cmds = await seen(milter, 6);
  const shape = (c: (typeof cmds)[number]) =>
    c.type === "body" ? `B${c.chunk.length}` : c.type === "eob" ? `E${c.chunk?.length ?? 0}` : c.type;
  expect(cmds.map(shape)).toEqual(["B65535", "B65535", "B1", "E10", "B5", "E65535"]);
});

test("skip: accepted after a body chunk; later body calls send nothing; the next message sends body again", async () => {
  let bodies = 0;
  milter = startScriptedMilter({
    negotiate: (o) => ({ type: "optneg", version: 6, actions: o.actions, protocol: SMFIP_SKIP }),
    onCommand: (cmd) => (cmd.type === "body" && ++bodies === 1 ? [{ type: "skip" }] : "default"),
  });
  client = await opened(milter);
  expect(client.negotiated!.skip).toBe(true);
  expect(await client.body(Buffer.from("one"))).toMatchObject({ ok: true, status: "skip", via: "reply", stage: "body" });
  expect(await client.body(Buffer.from("two"))).toMatchObject({ ok: true, status: "skip", via: "not-sent" });
  expect(await client.endOfMessage()).toMatchObject({ status: "continue", via: "reply" });
  expect(await client.envelopeFrom("<a@b>")).toMatchObject({ status: "continue" });
  expect(await client.body(Buffer.from("three"))).toMatchObject({ status: "continue", via: "reply" });
  const cmds = await seen(milter, 4);
  expect(cmds.map((c) => (c.type === "body" ? Buffer.from(c.chunk).toString("latin1") : c.type))).toEqual(["one", "eob", "mail", "three"]);
});

test("several messages on one connection: abort, then a new MAIL; K then a new connect", async () => {
  milter = startScriptedMilter();
  client = await opened(milter);
  await client.connect("h", ADDR);
  await client.helo("h");
  for (let i = 0; i < 3; i++) {
    expect(await client.envelopeFrom(`<a${i}@b>`)).toMatchObject({ status: "continue", via: "reply" });
    await client.envelopeRecipient("<r@b>");
    await client.data();
    await client.header("Subject", `m${i}`);
    await client.endOfHeader();
    await client.body(Buffer.from(`body ${i}\r\n`));
    expect(await client.endOfMessage()).toMatchObject({ status: "continue" });
    expect(await client.abort()).toMatchObject({ ok: true, status: "continue", via: "no-reply", stage: "abort" });
  }
  expect(await client.envelopeFrom("<x@b>")).toMatchObject({ status: "continue" });
  await client.abort();
  expect(await client.quitNc()).toMatchObject({ ok: true, status: "continue", via: "no-reply", stage: "quit" });
  expect(await client.connect("other", { family: "U" })).toMatchObject({ status: "continue", via: "reply" });
  const cmds = await seen(milter, 30);
  expect(types(cmds)).toBe(
    "connect helo " + "mail rcpt data header eoh body eob abort ".repeat(3) + "mail abort quit_nc connect",
  );
  expect(cmds[cmds.length - 1]).toEqual({ type: "connect", hostname: "other", family: "U" });
  expect(milter.sessions.length).toBe(1);
});

test("unix socket and IPv6 / unix client addresses", async () => {
  const dir = mkdtempSync(join(tmpdir(), "mk-mta-"));
  try {
    milter = startScriptedMilter({ unixPath: join(dir, "m.sock") });
    client = await opened(milter);
    await client.connect("h6", { family: "6", address: "2001:db8::1", port: 4321 });
    await client.connect("hl", { family: "L", address: "/run/smtp.sock" });
    const cmds = await seen(milter, 2);
    expect(cmds).toEqual([
      { type: "connect", hostname: "h6", family: "6", port: 4321, address: "2001:db8::1" },
      { type: "connect", hostname: "hl", family: "L", port: 0, address: "/run/smtp.sock" },
    ]);
  } finally {
    client?.close();
    milter?.stop();
    milter = undefined;
    rmSync(dir, { recursive: true, force: true });
  }
});

test("decisions: accept, reject, temporary-failure, discard, shutdown, reply-code", async () => {
  const answers: Record<string, any> = {
    helo: [{ type: "accept" }],
    mail: [{ type: "discard" }],
    rcpt: [{ type: "tempfail" }],
    data: [{ type: "reject" }],
    header: [{ type: "shutdown" }],
    eoh: [{ type: "replycode", text: "451-4.7.1 one\r\n451-4.7.1 two 50%%\r\n451 4.7.1 three" }],
    eob: [{ type: "replycode", text: "554 5.7.1 1% 2%% 3%%%" }],
  };
  milter = startScriptedMilter({ onCommand: (cmd) => answers[cmd.type] ?? "default" });
  client = await opened(milter);
  expect(await client.helo("h")).toMatchObject({ ok: true, status: "accept", via: "reply" });
  expect(await client.envelopeFrom("<a@b>")).toMatchObject({ status: "discard" });
  expect(await client.envelopeRecipient("<a@b>")).toMatchObject({ status: "temporary-failure" });
  expect(await client.data()).toMatchObject({ status: "reject" });
  expect(await client.header("A", "b")).toMatchObject({ status: "shutdown" });
  expect(await client.endOfHeader()).toMatchObject({
    status: "reply-code",
    reply: { code: 451, extended: "4.7.1", message: "one\ntwo 50%%\nthree", status: "temporary-failure", text: answers.eoh[0].text },
  });
  expect(await client.endOfMessage()).toMatchObject({
    status: "reply-code",
    reply: { code: 554, extended: "5.7.1", message: "1% 2%% 3%%%", status: "reject" },
    modifications: [],
  });
});

test("connect refused is a connection-error outcome, steps afterwards report closed", async () => {
  milter = startScriptedMilter();
  const spec = milter.spec;
  milter.stop();
  milter = undefined;
  client = new MilterClient({ spec, connectionTimeoutMs: 5000 });
  const r = await client.open();
  expect(r).toMatchObject({ ok: false, status: "connection-error", stage: "negotiate" });
  if (!r.ok) expect(r.detail).toContain("connection refused");
  expect(await client.helo("x")).toMatchObject({ ok: false, status: "closed", stage: "helo" });
  expect(await client.endOfMessage()).toMatchObject({ ok: false, status: "closed", modifications: [] });
});

test("misuse is a programming error: a step before open, two steps at once", async () => {
  milter = startScriptedMilter({ onCommand: async (cmd): Promise<"default"> => (cmd.type === "helo" ? (await Bun.sleep(50), "default") : "default") });
  client = new MilterClient({ spec: milter.spec });
  expect(() => client!.helo("x")).toThrow("before open()");
  await client.open();
  const first = client.helo("x");
  expect(() => client!.envelopeFrom("<a@b>")).toThrow("still pending");
  expect(await first).toMatchObject({ ok: true, status: "continue" });
});

test("prepared steps: encoded once, performed on several clients with the same negotiation", async () => {
  milter = startScriptedMilter({ negotiate: (o) => ({ type: "optneg", version: 6, actions: o.actions, protocol: SMFIP_NR_HDR, macroLists: [{ stage: 0, macros: "j" }] }) });
  const a = await opened(milter);
  const b = await opened(milter);
  try {
    expect(negotiationKey(a.negotiated!)).toBe(negotiationKey(b.negotiated!));
    const n = a.negotiated!;
    const steps = [
      prepareStep(n, { type: "connect", hostname: "h", family: "U" }, { j: "mx", other: "x" }),
      prepareStep(n, { type: "header", name: "A", value: "1" }),
      ...prepareBody(n, Buffer.alloc(70000, 0x41)),
      prepareStep(n, { type: "eob" }),
    ];
    expect(steps.map((s) => [s.type, s.expectReply])).toEqual([["connect", true], ["header", false], ["body", true], ["body", true], ["eob", true]]);
    for (const c of [a, b]) {
      const outs = [];
      for (const s of steps) outs.push(await c.perform(s));
      expect(outs.map((o) => (o.ok ? `${o.status}/${o.via}` : o.status))).toEqual([
        "continue/reply", "continue/no-reply", "continue/reply", "continue/reply", "continue/reply",
      ]);
    }
    for (let i = 0; i < 200 && milter.all().length < 12; i++) await Bun.sleep(5);
    for (const s of milter.sessions) {
      expect(types(s.commands)).toBe("DC connect header body body eob");
      expect(macroOf(s.commands, "C")).toEqual({ j: "mx" });
    }
    // An unencodable step fails when performed, without throwing.
    const bad = prepareStep(n, { type: "helo", hostname: "a\0b" });
    expect(bad.error).toContain("NUL");
    expect(await a.perform(bad)).toMatchObject({ ok: false, status: "protocol-error", stage: "helo" });
  } finally {
    a.close();
    b.close();
  }
});
