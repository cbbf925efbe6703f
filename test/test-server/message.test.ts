import { expect, test } from "bun:test";
import { applyModifications, cloneMessage, displayValue, removeRecipient, rawFromMilter, wireValue, type MessageState } from "../../src/test-server/message.ts";

const base = (): MessageState => ({
  from: "<a@example.com>",
  recipients: [{ address: "<b@example.org>" }, { address: "<c@example.org>" }],
  headers: [
    { name: "From", raw: " a@example.com" },
    { name: "X-Dup", raw: " 1" },
    { name: "Subject", raw: " s" },
    { name: "x-dup", raw: " 2" },
  ],
  body: [Buffer.from("old\r\n")],
});

const names = (m: MessageState) => m.headers.map((h) => `${h.name}:${h.raw}`);

test("header modifications: append, insert (0 = top, past the end appends), change and delete by 1-based index per name", () => {
  const m = base();
  applyModifications(m, [
    { type: "add-header", name: "X-Added", value: "v" },
    { type: "insert-header", index: 0, name: "X-Top", value: "t" },
    { type: "insert-header", index: 99, name: "X-End", value: "e" },
    { type: "change-header", index: 2, name: "X-DUP", value: "changed" }, // case-insensitive
    { type: "change-header", index: 0, name: "Subject", value: "new" }, // 0 counts as 1
    { type: "change-header", index: 5, name: "X-Dup", value: "appended" }, // past the last: append
    { type: "delete-header", index: 1, name: "x-dup" },
    { type: "delete-header", index: 9, name: "From" }, // past the last: nothing
  ], false);
  expect(names(m)).toEqual([
    "X-Top: t", "From: a@example.com", "Subject: new", "x-dup: changed", "X-Added: v", "X-End: e", "X-Dup: appended",
  ]);
});

test("with HDR_LEADSPC the milter's value is taken verbatim", () => {
  const m = base();
  applyModifications(m, [{ type: "add-header", name: "X-A", value: " spaced" }, { type: "add-header", name: "X-B", value: "tight" }], true);
  expect(names(m).slice(-2)).toEqual(["X-A: spaced", "X-B:tight"]);
  expect(wireValue(" spaced", true)).toBe(" spaced");
  expect(wireValue(" spaced", false)).toBe("spaced");
  expect(wireValue("\ttab", false)).toBe("\ttab");
  expect(rawFromMilter("v", false)).toBe(" v");
  expect(displayValue(" v")).toBe("v");
  expect(displayValue("v")).toBe("v");
});

test("envelope modifications, body replacement, quarantine", () => {
  const m = base();
  const sent = cloneMessage(m);
  const r = applyModifications(m, [
    { type: "change-envelope-from", address: "<new@example.com>", args: "SIZE=1" },
    { type: "add-envelope-recipient", address: "<d@example.org>", withParameters: false },
    { type: "add-envelope-recipient", address: "<e@example.org>", args: "NOTIFY=NEVER", withParameters: true },
    { type: "delete-envelope-recipient", address: "B@example.org" }, // without brackets, other case
    { type: "replace-body", chunk: Buffer.from("new ") },
    { type: "quarantine", reason: "first" },
    { type: "replace-body", chunk: Buffer.from("body\r\n") },
    { type: "quarantine", reason: "second" },
  ], false);
  expect(r).toEqual({ quarantine: "second" });
  expect(m.from).toBe("<new@example.com>");
  expect(m.fromArgs).toBe("SIZE=1");
  expect(m.recipients).toEqual([{ address: "<c@example.org>" }, { address: "<d@example.org>" }, { address: "<e@example.org>", args: "NOTIFY=NEVER" }]);
  expect(Buffer.concat(m.body).toString()).toBe("new body\r\n");
  // The copy taken before is untouched.
  expect(sent).toEqual(base());
  applyModifications(m, [{ type: "change-envelope-from", address: "<plain@example.com>" }], false);
  expect(m.fromArgs).toBeUndefined();
  removeRecipient(m, "<c@example.org>");
  expect(m.recipients.map((x) => x.address)).toEqual(["<d@example.org>", "<e@example.org>"]);
});
