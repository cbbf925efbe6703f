import { expect, test } from "bun:test";
import { describeOutcome, diffHeaders, displayBody, formatG, renderOutputMessage, renderSession, sessionJson, statusLine } from "../../src/test-server/render.ts";
import type { MessageState } from "../../src/test-server/message.ts";
import type { MessageResult, SessionResult } from "../../src/test-server/session.ts";
import { Negotiated } from "../../src/milter/index.ts";

test("formatG behaves like C's %g", () => {
  const cases: [number, string][] = [
    [0.000726, "0.000726"], [0.000744, "0.000744"], [0.0068, "0.0068"], [0.0164092345, "0.0164092"], [1.5, "1.5"],
    [2, "2"], [123456.7, "123457"], [1234567, "1.23457e+06"], [0.0000123, "1.23e-05"], [0.0001, "0.0001"], [0, "0"],
    [999999.6, "1e+06"], [12.5, "12.5"],
  ];
  for (const [x, s] of cases) expect(formatG(x)).toBe(s);
});

const msg = (over: Partial<MessageState> = {}): MessageState => ({
  from: "<alice@example.com>",
  recipients: [{ address: "<bob@example.org>" }],
  headers: [{ name: "From", raw: " alice@example.com" }, { name: "Subject", raw: " hi" }],
  body: [Buffer.from("Hello,"), Buffer.from("this is a small fixed test body.")],
  ...over,
});

const result = (over: Partial<MessageResult> = {}): MessageResult => ({
  status: "pass",
  stage: "end-of-message",
  sent: msg(),
  result: msg(),
  modifications: [],
  rejectedRecipients: [],
  progress: 0,
  ...over,
});

test("status line: pass, status with reply code, (null) for missing pieces", () => {
  expect(statusLine(result())).toBe("status: pass");
  expect(statusLine(result({ status: "reject", reply: { code: 554, extended: "5.7.1", message: "1% 2%% 3%%%", text: "", status: "reject" } }))).toBe(
    "status: reject [554]<5.7.1>(1% 2%% 3%%%)",
  );
  expect(statusLine(result({ status: "temporary-failure", reply: { code: 451, message: "later", text: "", status: "temporary-failure" } }))).toBe(
    "status: temporary-failure [451]<(null)>(later)",
  );
  expect(statusLine(result({ reply: { code: 550, message: "", text: "550", status: "reject" } }))).toBe("status: pass [550]<(null)>((null))");
});

test("the original's output for an unchanged message, line for line", () => {
  const s: SessionResult = { connected: true, negotiate: undefined as any, messages: [result()], elapsedMs: 0.726, decidedMs: 0.7, leadingSpace: false };
  expect(renderSession(s, { outputMessage: true, color: false }).toString("latin1")).toBe(
    [
      "status: pass",
      "elapsed-time: 0.000726 seconds",
      "",
      "Envelope:------------------------------",
      "  MAIL FROM:<alice@example.com>",
      "  RCPT TO:<bob@example.org>",
      "Header:--------------------------------",
      "  From: alice@example.com",
      "  Subject: hi",
      "Body:----------------------------------",
      "Hello,this is a small fixed test body.",
      "",
    ].join("\n"),
  );
  expect(renderSession(s, { outputMessage: false, color: false }).toString()).toBe("status: pass\nelapsed-time: 0.000726 seconds\n");
});

test("changed envelope, headers and body; stage and quarantine lines", () => {
  const r = result({
    status: "accept",
    stage: "end-of-message",
    outcome: { ok: true, status: "accept", stage: "end-of-message", via: "reply", modifications: [], progress: 0 },
    quarantine: "held",
    result: msg({
      from: "<new@example.com>",
      fromArgs: "SIZE=5",
      recipients: [{ address: "<carol@example.org>" }, { address: "<dave@example.org>", args: "NOTIFY=NEVER" }],
      headers: [{ name: "X-Top", raw: " t" }, { name: "From", raw: " alice@example.com" }, { name: "Subject", raw: " new\n\tfolded" }],
      body: [Buffer.from("replaced\r\n")],
    }),
  });
  const s: SessionResult = { connected: true, negotiate: undefined as any, messages: [r], elapsedMs: 1.5, decidedMs: 1, leadingSpace: false };
  expect(renderSession(s, { outputMessage: true, color: false }).toString("latin1")).toBe(
    [
      "status: accept",
      "elapsed-time: 0.0015 seconds",
      "stage: end-of-message (accept)",
      "Quarantine reason: <held>",
      "",
      "Envelope:------------------------------",
      "- MAIL FROM:<alice@example.com>",
      "+ MAIL FROM:<new@example.com> SIZE=5",
      "- RCPT TO:<bob@example.org>",
      "+ RCPT TO:<carol@example.org>",
      "+ RCPT TO:<dave@example.org> NOTIFY=NEVER",
      "Header:--------------------------------",
      "+ X-Top: t",
      "  From: alice@example.com",
      "+ Subject: new", // the original's order: a new value first, the old one as a left-over
      "+ \tfolded",
      "- Subject: hi",
      "Body:----------------------------------",
      "replaced\r",
      "",
      "",
    ].join("\n"),
  );
});

test("colour: + green, - red", () => {
  const r = result({ result: msg({ headers: [{ name: "From", raw: " alice@example.com" }] }) });
  const out = renderOutputMessage(r, true).toString();
  expect(out).toContain("\x1b[31m- Subject: hi\x1b[0m\n");
  const added = renderOutputMessage(result({ result: msg({ headers: [...msg().headers, { name: "X", raw: " 1" }] }) }), true).toString();
  expect(added).toContain("\x1b[32m+ X: 1\x1b[0m\n");
  expect(added).toContain("  From: alice@example.com\n");
});

test("header diff follows the original's walk: deleted, added, changed, same name both ways", () => {
  const h = (name: string, v: string) => ({ name, raw: ` ${v}` });
  const show = (a: ReturnType<typeof h>[], b: ReturnType<typeof h>[]) => diffHeaders(a, b).map(([m, x]) => `${m}${x.name}${x.raw}`);
  expect(show([h("A", "1"), h("B", "2"), h("C", "3")], [h("B", "2"), h("C", "x"), h("D", "4")])).toEqual(["-A 1", " B 2", "+C x", "+D 4", "-C 3"]);
  // Both still needed later on the other side and the same name: `-` then `+`.
  expect(show([h("X", "1"), h("X", "2")], [h("X", "2"), h("X", "1")])).toEqual(["-X 1", "+X 2", "+X 1", "-X 2"]);
  expect(show([h("A", "1")], [h("N", "0"), h("A", "1")])).toEqual(["+N 0", " A 1"]);
});

test("body converted from the Content-Type charset; conversion errors print an Error block", () => {
  const latin = displayBody([{ name: "Content-Type", raw: ' text/plain; charset="ISO-8859-1"' }], Buffer.from([0x63, 0x61, 0x66, 0xe9]));
  expect(Buffer.from(latin.bytes).toString("utf8")).toBe("café");
  const sjis = displayBody([{ name: "content-type", raw: " text/plain; charset=shift_jis" }], Buffer.from([0x82, 0xa0]));
  expect(Buffer.from(sjis.bytes).toString("utf8")).toBe("あ");
  const bad = displayBody([{ name: "Content-Type", raw: " text/plain; charset=x-unknown" }], Buffer.from("x"));
  expect(bad.error).toContain("cannot convert the body from x-unknown to UTF-8");
  const r = result({ result: msg({ headers: [{ name: "Content-Type", raw: " text/plain; charset=x-unknown" }] }) });
  expect(renderOutputMessage(r, false).toString()).toContain("Error:---------------------------------\ncannot convert");
  expect(displayBody([], Buffer.from([0xff])).bytes).toEqual(Buffer.from([0xff])); // no charset: bytes as they are
});

test("describeOutcome names the failure and its timer", () => {
  expect(describeOutcome({ ok: false, status: "timeout", timer: "reading", stage: "helo", detail: "no reply" })).toBe("timeout/reading: no reply");
  expect(describeOutcome({ ok: true, status: "reply-code", stage: "envelope-recipient", via: "reply", reply: { code: 550, message: "", text: "550-a\r\n550 b", status: "reject" } })).toBe(
    "reply-code 550-a / 550 b",
  );
});

test("several messages: one block each, elapsed-time once at the end", () => {
  const s: SessionResult = { connected: true, negotiate: undefined as any, messages: [result(), result({ status: "discard", stage: "envelope-from", outcome: { ok: true, status: "discard", stage: "envelope-from", via: "reply" } })], elapsedMs: 2, decidedMs: 1, leadingSpace: false };
  expect(renderSession(s, { outputMessage: false, color: false }).toString()).toBe(
    "message: 1/2\nstatus: pass\nmessage: 2/2\nstatus: discard\nstage: envelope-from (discard)\nelapsed-time: 0.002 seconds\n",
  );
});

test("JSON: statuses, negotiation, messages with latin1 data", () => {
  const negotiated = new Negotiated({ version: 6, actions: 0x21, protocol: 0x400, skip: true, maxDataSize: 65535 });
  const r = result({ modifications: [{ type: "replace-body", chunk: Buffer.from([0xe9]) }], result: msg({ body: [Buffer.from([0xe9])] }) });
  const s: SessionResult = { connected: true, negotiate: { ok: true, status: "negotiated", stage: "negotiate", negotiated, offer: undefined as any, reply: undefined as any }, messages: [r], elapsedMs: 1, decidedMs: 1, leadingSpace: false };
  const j = JSON.parse(JSON.stringify(sessionJson(s, "inet:1@[127.0.0.1]")));
  expect(j).toMatchObject({
    spec: "inet:1@[127.0.0.1]", status: "pass", stage: "end-of-message", reply: null, quarantine: null, elapsedSeconds: 0.001, error: null,
    negotiated: { version: 6, actions: "add-headers|quarantine", protocol: "skip", maxDataSize: 65535, macroLists: {} },
  });
  expect(j.messages[0].modifications).toEqual([{ type: "replace-body", chunk: "\u00e9" }]);
  expect(j.messages[0].result.body).toBe("\u00e9");
  expect(j.messages[0].sent.headers[0]).toEqual({ name: "From", value: "alice@example.com", raw: " alice@example.com" });
});
