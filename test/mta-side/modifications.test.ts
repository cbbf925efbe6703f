import { afterEach, expect, test } from "bun:test";
import { SMFIF_ADDHDRS, SMFI_CURR_ACTS, encodeReplies, replaceBodyReplies, type MilterReply } from "../../src/milter/index.ts";
import { MilterClient, replacedBody, type EndOfMessageOutcome } from "../../src/mta-side/index.ts";
import { startScriptedMilter, type ScriptedMilter } from "./scripted-milter.ts";

let milter: ScriptedMilter | undefined;
let client: MilterClient | undefined;
afterEach(() => {
  client?.close();
  milter?.stop();
  client = milter = undefined;
});

/** A milter answering `eom` at end of message, every action granted unless `actions` says otherwise. */
async function endOfMessageWith(eom: MilterReply[] | Uint8Array, actions = SMFI_CURR_ACTS, opts: { onProgress?: (s: string) => void } = {}): Promise<EndOfMessageOutcome> {
  milter = startScriptedMilter({
    negotiate: () => ({ type: "optneg", version: 6, actions, protocol: 0 }),
    onCommand: (cmd) => (cmd.type === "eob" ? eom : "default"),
  });
  client = new MilterClient({ spec: milter.spec, readingTimeoutMs: 5000, endOfMessageTimeoutMs: 5000, onProgress: opts.onProgress });
  const neg = await client.open();
  if (!neg.ok) throw new Error(neg.detail);
  return client.endOfMessage({ i: "Q" });
}

test("every modification type, in arrival order, then the decision", async () => {
  const o = await endOfMessageWith([
    { type: "addheader", name: "X-Added", value: "added value" },
    { type: "insheader", index: 0, name: "X-Top", value: "top" },
    { type: "chgheader", index: 1, name: "Subject", value: "new subject" },
    { type: "chgheader", index: 2, name: "X-Old", value: "" },
    { type: "chgfrom", address: "<bounce@example.org>", args: "SIZE=1234" },
    { type: "chgfrom", address: "<plain@example.org>" },
    { type: "addrcpt", address: "<extra@example.org>" },
    { type: "addrcpt_par", address: "<extra2@example.org>", args: "NOTIFY=NEVER" },
    { type: "addrcpt_par", address: "<extra3@example.org>" },
    { type: "delrcpt", address: "<old@example.net>" },
    { type: "quarantine", reason: "suspicious" },
    { type: "replbody", chunk: Buffer.from("Hi\r\n") },
    { type: "accept" },
  ]);
  expect(o).toMatchObject({ ok: true, status: "accept", stage: "end-of-message", via: "reply", progress: 0 });
  expect(o.modifications).toEqual([
    { type: "add-header", name: "X-Added", value: "added value" },
    { type: "insert-header", index: 0, name: "X-Top", value: "top" },
    { type: "change-header", index: 1, name: "Subject", value: "new subject" },
    { type: "delete-header", index: 2, name: "X-Old" },
    { type: "change-envelope-from", address: "<bounce@example.org>", args: "SIZE=1234" },
    { type: "change-envelope-from", address: "<plain@example.org>" },
    { type: "add-envelope-recipient", address: "<extra@example.org>", withParameters: false },
    { type: "add-envelope-recipient", address: "<extra2@example.org>", args: "NOTIFY=NEVER", withParameters: true },
    { type: "add-envelope-recipient", address: "<extra3@example.org>", withParameters: true },
    { type: "delete-envelope-recipient", address: "<old@example.net>" },
    { type: "quarantine", reason: "suspicious" },
    { type: "replace-body", chunk: new Uint8Array(Buffer.from("Hi\r\n")) },
  ]);
});

test("a replacement body larger than 64 KiB arrives in several b packets and concatenates", async () => {
  const body = Buffer.alloc(150_000);
  for (let i = 0; i < body.length; i++) body[i] = (i * 7) & 0xff;
  const o = await endOfMessageWith([...replaceBodyReplies(body, 65535), { type: "continue" }]);
  expect(o.ok).toBe(true);
  expect(o.modifications.map((m) => m.type)).toEqual(["replace-body", "replace-body", "replace-body"]);
  expect(replacedBody(o.modifications)).toEqual(body);
  expect(replacedBody([])).toBeUndefined();
});

test("modifications in many small TCP segments and a decision in the same segment as the last one", async () => {
  // The whole reply in one write, as libmilter sends it: many packets per data event.
  const replies: MilterReply[] = [];
  for (let i = 0; i < 500; i++) replies.push({ type: "addheader", name: `X-N${i}`, value: `v${i}` });
  replies.push({ type: "continue" });
  const o = await endOfMessageWith(encodeReplies(replies));
  expect(o.ok && o.status).toBe("continue");
  expect(o.modifications.length).toBe(500);
  expect(o.modifications[499]).toEqual({ type: "add-header", name: "X-N499", value: "v499" });
});

test("progress at end-of-message is counted and reported as it arrives", async () => {
  const seen: string[] = [];
  const o = await endOfMessageWith(
    [{ type: "progress" }, { type: "addheader", name: "X-A", value: "1" }, { type: "progress" }, { type: "discard" }],
    SMFI_CURR_ACTS,
    { onProgress: (s) => seen.push(s) },
  );
  expect(o).toMatchObject({ ok: true, status: "discard", progress: 2 });
  expect(o.modifications).toEqual([{ type: "add-header", name: "X-A", value: "1" }]);
  expect(seen).toEqual(["end-of-message", "end-of-message"]);
});

test("a modification whose action was not negotiated is a protocol error", async () => {
  const o = await endOfMessageWith([{ type: "addheader", name: "X-A", value: "1" }, { type: "chgfrom", address: "<x@y>" }, { type: "continue" }], SMFIF_ADDHDRS);
  expect(o).toMatchObject({ ok: false, status: "protocol-error", stage: "end-of-message" });
  if (!o.ok) expect(o.detail).toContain("SMFIR_CHGFROM ('e')");
  expect(o.modifications).toEqual([{ type: "add-header", name: "X-A", value: "1" }]); // what came before, for logs
  expect(client!.closed).toBe(true);
});
