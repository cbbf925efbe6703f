// The rule book for end-of-message (src/manager/rules/end-of-message.ts): answers, how each
// child's modifications change the message, and the packets the MTA gets. No sockets.
import { describe, expect, test } from "bun:test";
import type { ModificationReply } from "../../src/milter/index.ts";
import type { Modification } from "../../src/mta-side/index.ts";
import { BodyBuffer } from "../../src/manager/body.ts";
import { HeaderList } from "../../src/manager/headers.ts";
import type { Status } from "../../src/manager/rules/answers.ts";
import { END_OF_MESSAGE, type EditingChild, type EomMove, MessageEdits } from "../../src/manager/rules/end-of-message.ts";

describe("answers", () => {
  test.each([
    ["continue", "done"],
    ["accept", "done"],
    ["skip", "done"],
    ["not-change", "done"],
    ["reject", "refuse"],
    ["temporary-failure", "refuse"],
    ["discard", "refuse"],
  ] as [Status, EomMove][])("compiled %s: %s", (status, move) => {
    expect(END_OF_MESSAGE.answer(status)).toBe(move);
  });

  test("a condition stop: compiled accept, the child gets ABORT, nothing of it is applied", () => {
    expect(END_OF_MESSAGE.stop).toEqual({ compiled: { status: "accept" }, child: "abort" });
    expect(END_OF_MESSAGE.answer(END_OF_MESSAGE.stop.compiled!.status)).toBe("done");
  });
});

const te = new TextEncoder();
const td = new TextDecoder();
const plain: EditingChild = { name: "plain", evaluation: false, leadingSpace: false };
const spaced: EditingChild = { name: "spaced", evaluation: false, leadingSpace: true };
const evaluating: EditingChild = { name: "eval", evaluation: true, leadingSpace: false };

interface Case {
  name: string;
  /** Headers and body as the MTA sent them. */
  headers?: [string, string][];
  body?: string;
  leadingSpace?: boolean;
  chunkSize?: number;
  /** Children in order, each with its modifications. */
  children: [EditingChild, Modification[]][];
  packets: ModificationReply[];
  /** The body the next child would be replayed. */
  bodyAfter?: string;
  logs?: string[];
}

const b = (s: string) => te.encode(s);
const CASES: Case[] = [
  { name: "nothing changed: no packet", headers: [["Subject", "hi"]], body: "x", children: [[plain, []]], packets: [] },
  {
    name: "add-header after every other header: h, with a statistics line",
    headers: [["Subject", "hi"]],
    children: [[plain, [{ type: "add-header", name: "X-Spam", value: "no" }]]],
    packets: [{ type: "addheader", name: "X-Spam", value: "no" }],
    logs: ["statistics [milter][header][add](7): <X-Spam>=<no>: plain"],
  },
  // Issue 15 item 3: a child's index counts the MTA's own Received: as it does with the MTA
  // directly: 0 stays above it (was sent as 1, one line too low), 1 is right below it.
  {
    name: "insert-header at 0: above the MTA's Received:, index 0",
    headers: [["Subject", "hi"]],
    children: [[plain, [{ type: "insert-header", index: 0, name: "X-First", value: "1" }]]],
    packets: [{ type: "insheader", index: 0, name: "X-First", value: "1" }],
    logs: ["statistics [milter][header][add](7): <X-First>=<1>: plain"],
  },
  {
    name: "insert-header at 1: below the MTA's Received:, index 1",
    headers: [["Subject", "hi"]],
    children: [[plain, [{ type: "insert-header", index: 1, name: "X-First", value: "1" }]]],
    packets: [{ type: "insheader", index: 1, name: "X-First", value: "1" }],
    logs: ["statistics [milter][header][add](7): <X-First>=<1>: plain"],
  },
  {
    name: "change-header and delete-header: m packets",
    headers: [["Subject", "hi"], ["X-Old", "a"]],
    children: [
      [
        plain,
        [
          { type: "change-header", index: 1, name: "Subject", value: "new" },
          { type: "delete-header", index: 1, name: "X-Old" },
        ],
      ],
    ],
    packets: [
      { type: "chgheader", index: 1, name: "Subject", value: "new" },
      { type: "chgheader", index: 1, name: "X-Old", value: "" },
    ],
    logs: ["statistics [milter][header][add](7): <Subject>=<new>: plain"],
  },
  {
    name: "evaluation mode: nothing applied, one info line",
    headers: [["Subject", "hi"]],
    body: "old",
    children: [[evaluating, [{ type: "add-header", name: "X-A", value: "1" }, { type: "replace-body", chunk: b("new") }, { type: "quarantine", reason: "q" }]]],
    packets: [],
    bodyAfter: "old",
    logs: ["info milter eval (evaluation mode): 3 modification(s) not applied"],
  },
  {
    name: "leading space agreed with the MTA: a child that did not agree gets one added, one that did is kept",
    headers: [["Subject", " hi"]],
    leadingSpace: true,
    children: [
      [plain, [{ type: "add-header", name: "X-A", value: "1" }]],
      [spaced, [{ type: "add-header", name: "X-B", value: "2" }]],
    ],
    packets: [
      { type: "addheader", name: "X-A", value: " 1" },
      { type: "addheader", name: "X-B", value: "2" },
    ],
    // The statistics line shows the value as the child sent it.
    logs: ["statistics [milter][header][add](7): <X-A>=<1>: plain", "statistics [milter][header][add](7): <X-B>=<2>: spaced"],
  },
  {
    name: "replace-body: one child's packets continue each other, a later child starts over, chunk_size pieces",
    body: "original",
    chunkSize: 4,
    children: [
      [plain, [{ type: "replace-body", chunk: b("aa") }, { type: "replace-body", chunk: b("bb") }]],
      [spaced, [{ type: "replace-body", chunk: b("12345") }, { type: "replace-body", chunk: b("6") }]],
    ],
    packets: [
      { type: "replbody", chunk: b("1234") },
      { type: "replbody", chunk: b("56") },
    ],
    bodyAfter: "123456",
  },
  {
    name: "body replaced by nothing: one empty b",
    body: "original",
    children: [[plain, [{ type: "replace-body", chunk: b("") }]]],
    packets: [{ type: "replbody", chunk: new Uint8Array(0) }],
    bodyAfter: "",
  },
  {
    name: "envelope: the last change of sender wins, recipients in order, quarantine (last one), then the body",
    headers: [["Subject", "hi"]],
    body: "x",
    children: [
      [
        plain,
        [
          { type: "quarantine", reason: "first" },
          { type: "change-envelope-from", address: "<a@x>" },
          { type: "add-envelope-recipient", address: "<r1@x>", withParameters: false },
          { type: "replace-body", chunk: b("y") },
        ],
      ],
      [
        spaced,
        [
          { type: "change-envelope-from", address: "<b@x>", args: "SIZE=1" },
          { type: "delete-envelope-recipient", address: "<r0@x>" },
          { type: "add-envelope-recipient", address: "<r2@x>", withParameters: true, args: "NOTIFY=NEVER" },
          { type: "add-envelope-recipient", address: "<r3@x>", withParameters: true },
          { type: "quarantine", reason: "second" },
          { type: "add-header", name: "X-Z", value: "z" },
        ],
      ],
    ],
    packets: [
      { type: "addheader", name: "X-Z", value: "z" },
      { type: "chgfrom", address: "<b@x>", args: "SIZE=1" },
      { type: "addrcpt", address: "<r1@x>" },
      { type: "delrcpt", address: "<r0@x>" },
      { type: "addrcpt_par", address: "<r2@x>", args: "NOTIFY=NEVER" },
      { type: "addrcpt_par", address: "<r3@x>" },
      { type: "quarantine", reason: "second" },
      { type: "replbody", chunk: b("y") },
    ],
    bodyAfter: "y",
    logs: ["statistics [milter][header][add](7): <X-Z>=<z>: spaced"],
  },
];

describe("modifications", () => {
  test.each(CASES.map((c) => [c.name, c]))("%s", (_name, c) => {
    const headers = new HeaderList();
    for (const [n, v] of c.headers ?? []) headers.append(n, v);
    const body = new BodyBuffer();
    if (c.body !== undefined) body.append(b(c.body));
    const logs: string[] = [];
    const edits = new MessageEdits(
      { headers, body },
      { leadingSpace: c.leadingSpace ?? false, chunkSize: c.chunkSize ?? 65535, tag: 7, log: (level, text) => logs.push(`${level} ${text}`) },
    );
    const original = headers.snapshot();
    for (const [child, mods] of c.children) edits.apply(child, mods);
    // The body goes after the other modifications, streamed in chunk_size pieces.
    const body_ = edits.replacedBodyChunks();
    const packets = [...edits.packets(original), ...[...(body_ ?? [])].map((chunk) => ({ type: "replbody", chunk: Uint8Array.from(chunk) }))];
    expect(packets).toEqual(c.packets);
    if (c.bodyAfter !== undefined) expect(td.decode(body.toBuffer())).toBe(c.bodyAfter);
    expect(logs).toEqual(c.logs ?? []);
    body.dispose();
  });
});
