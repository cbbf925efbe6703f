// The manager's header model (the MTA's editing rules, hidden entries included: docs/transparency.md) and the
// diff sent to the MTA, checked by applying the packets to small MTA simulators with Postfix's and
// Sendmail's semantics.
import { describe, expect, test } from "bun:test";
import {
  addLeadingSpace,
  diffHeaders,
  type Header,
  HeaderList,
  type HeaderPacket,
  hiddenHeadersOf,
  POSTFIX_HIDDEN_HEADERS,
  SENDMAIL_HIDDEN_HEADERS,
  stripLeadingSpace,
} from "../../src/manager/headers.ts";
import { prng, randInt } from "../milter/helpers.ts";
import { applyHeaderPackets as applyAsMta } from "./support/mta-headers.ts";

const h = (name: string, value: string): Header => ({ name, value });

/** Postfix's hidden entry (its own Received:), as HeaderList.all has it. */
const RECEIVED = h(":mta-0", "");
const full = (l: Header[]): Header[] => [RECEIVED, ...l];

/** Diff whole lists, apply as Postfix and as Sendmail, expect the manager's list in both. */
function expectMtaEndsWithAll(orig: Header[], final: Header[]): HeaderPacket[] {
  const packets = diffHeaders(orig, final);
  expect(applyAsMta(orig, packets, { full: true })).toEqual(final);
  expect(applyAsMta(orig, packets, { full: true, sendmail: true })).toEqual(final);
  return packets;
}

/** The same for lists of visible headers below Postfix's Received:. */
function expectMtaEndsWith(orig: Header[], final: Header[]): HeaderPacket[] {
  return expectMtaEndsWithAll(full(orig), full(final));
}

describe("HeaderList (the MTA's editing rules)", () => {
  // Issue 15: milter-manager put an added header before the first one of the same name; Postfix
  // and Sendmail append it, so a child gets the same result through the manager as directly.
  test("add appends at the end, even when a header of that name exists", () => {
    const l = new HeaderList([h("From", "a"), h("X1", "v1")]);
    l.add("x1", "v0");
    l.add("X2", "new");
    expect(l.items).toEqual([h("From", "a"), h("X1", "v1"), h("x1", "v0"), h("X2", "new")]);
  });

  // Issue 15 item 3: the MTA counts its own Received: (never shown to milters) as index 0.
  test("insert counts the MTA's hidden Received: as 0; past the end appends", () => {
    const l = new HeaderList([h("From", "a")]);
    l.insert(3, "X1", "1");
    l.insert(1, "X2", "2");
    l.insert(0, "X0", "0");
    expect(l.all).toEqual([h("X0", "0"), RECEIVED, h("X2", "2"), h("From", "a"), h("X1", "1")]);
    expect(l.items).toEqual([h("X0", "0"), h("X2", "2"), h("From", "a"), h("X1", "1")]);
  });

  test("Sendmail's layout: 8 hidden entries; indexes 1..8 all land above the first message header", () => {
    const l = new HeaderList([h("From", "a"), h("To", "b")], SENDMAIL_HIDDEN_HEADERS);
    l.insert(9, "After-From", "x");
    l.insert(5, "Mid", "y");
    l.insert(0, "Top", "z");
    expect(l.items).toEqual([h("Top", "z"), h("Mid", "y"), h("From", "a"), h("After-From", "x"), h("To", "b")]);
    expectMtaEndsWithAll(new HeaderList([h("From", "a"), h("To", "b")], SENDMAIL_HIDDEN_HEADERS).all, l.all);
  });

  test("Sendmail: a deleted header stays a tombstone that later m indexes count; a change brings it back", () => {
    const orig = [h("X-Repeat", "one"), h("X-Repeat", "two"), h("X-Repeat", "three")];
    const l = new HeaderList(structuredClone(orig), SENDMAIL_HIDDEN_HEADERS, true);
    l.delete("X-Repeat", 2);
    l.delete("X-Repeat", 2); // the tombstone again: nothing more goes
    expect(l.items.map((x) => x.value)).toEqual(["one", "three"]);
    l.change("X-Repeat", 2, "back");
    expect(l.items.map((x) => x.value)).toEqual(["one", "back", "three"]);
    const p = new HeaderList(structuredClone(orig)); // Postfix: indexes shift
    p.delete("X-Repeat", 2);
    p.delete("X-Repeat", 2);
    expect(p.items.map((x) => x.value)).toEqual(["one"]);
    const before = new HeaderList(structuredClone(orig), SENDMAIL_HIDDEN_HEADERS, true);
    expectMtaEndsWithAll(before.all, l.all);
  });

  test("the MTA is told apart by its macros: Postfix's v, Sendmail's {mail_mailer}", () => {
    const m = (kv: Record<string, string>) => (name: string) => kv[name];
    expect(hiddenHeadersOf(m({ v: "Postfix 3.7.11" }))).toBe(POSTFIX_HIDDEN_HEADERS);
    expect(hiddenHeadersOf(m({ "{mail_mailer}": "relay" }))).toBe(SENDMAIL_HIDDEN_HEADERS);
    expect(hiddenHeadersOf(m({}))).toBe(POSTFIX_HIDDEN_HEADERS);
  });

  test("change is 1-based per name (0 counts as 1), case-insensitive; missing occurrence adds", () => {
    const l = new HeaderList([h("X1", "a"), h("Y", "y"), h("X1", "b")]);
    l.change("x1", 2, "B");
    l.change("X1", 0, "A");
    expect(l.items).toEqual([h("X1", "A"), h("Y", "y"), h("x1", "B")]);
    l.change("Y", 5, "y2"); // no 5th Y: add, i.e. at the end
    expect(l.items).toEqual([h("X1", "A"), h("Y", "y"), h("x1", "B"), h("Y", "y2")]);
  });

  test("change with an empty value deletes; deleting a missing occurrence does nothing", () => {
    const l = new HeaderList([h("X1", "a"), h("X1", "b")]);
    l.change("X1", 1, "");
    l.delete("X1", 7);
    expect(l.items).toEqual([h("X1", "b")]);
  });

  test("snapshot is a copy", () => {
    const l = new HeaderList([h("A", "1")]);
    const s = l.snapshot();
    l.change("A", 1, "2");
    expect(s).toEqual(full([h("A", "1")]));
  });
});

describe("diffHeaders: the manager.md §2.5.3 / §2.13 worked examples", () => {
  test("no change → no packet", () => {
    expect(diffHeaders(full([h("From", "a")]), full([h("From", "a")]))).toEqual([]);
    expect(diffHeaders(full([]), full([]))).toEqual([]);
  });

  test("add-header: two children add → appended with h, in order", () => {
    const orig = [h("From", "<kou+sender@example.com>")];
    const l = new HeaderList(structuredClone(orig));
    l.add("X-Test-Header1", "Test Header1 Value");
    l.add("X-Test-Header2", "Test Header2 Value");
    const packets = expectMtaEndsWith(orig, l.items);
    expect(packets).toEqual([
      { type: "addheader", name: "X-Test-Header1", value: "Test Header1 Value" },
      { type: "addheader", name: "X-Test-Header2", value: "Test Header2 Value" },
    ]);
  });

  test("insert-header: X1 at 2, then X2 at 1 → X2, From, X1 (index 0 is the MTA's Received:)", () => {
    const orig = [h("From", "a")];
    const l = new HeaderList(structuredClone(orig));
    l.insert(2, "X-Test-Header1", "Test Header1 Value");
    l.insert(1, "X-Test-Header2", "Test Header2 Value");
    expect(l.items.map((x) => x.name)).toEqual(["X-Test-Header2", "From", "X-Test-Header1"]);
    expectMtaEndsWithAll(full(orig), l.all);
  });

  test("insert above the first header uses index 1 (after the MTA's invisible Received:)", () => {
    const orig = [h("From", "a"), h("To", "b")];
    const packets = expectMtaEndsWith(orig, [h("X-Top", "t"), ...orig]);
    expect(packets).toEqual([{ type: "insheader", index: 1, name: "X-Top", value: "t" }]);
  });

  test("insert at 0 (opendkim's DKIM-Signature) stays above the MTA's Received: (index 0)", () => {
    const orig = [h("From", "a"), h("To", "b")];
    const l = new HeaderList(structuredClone(orig));
    l.insert(0, "DKIM-Signature", "v=1");
    const packets = expectMtaEndsWithAll(full(orig), l.all);
    expect(packets).toEqual([{ type: "insheader", index: 0, name: "DKIM-Signature", value: "v=1" }]);
  });

  test("change-header: add X1:V2 (appended), change X1#1 → X1:Replaced, X1:V2", () => {
    const orig = [h("X-Test-Header1", "Test-Header1-Value1")];
    const l = new HeaderList(structuredClone(orig));
    l.add("X-Test-Header1", "Test-Header1-Value2");
    l.change("X-Test-Header1", 1, "Replaced Value");
    expect(l.items).toEqual([h("X-Test-Header1", "Replaced Value"), h("X-Test-Header1", "Test-Header1-Value2")]);
    expectMtaEndsWith(orig, l.items);
  });

  test("change-header-evaluation: only the add applies → X1:V2, X1:V1", () => {
    const orig = [h("X-Test-Header1", "Test-Header1-Value1")];
    const l = new HeaderList(structuredClone(orig));
    l.add("X-Test-Header1", "Test-Header1-Value2");
    expectMtaEndsWith(orig, l.items);
  });

  test("delete-header: add X2, delete X1#1 → only X2", () => {
    const orig = [h("X-Test-Header1", "Test Header1 Value")];
    const l = new HeaderList(structuredClone(orig));
    l.add("X-Test-Header2", "Test Header2 Value");
    l.delete("X-Test-Header1", 1);
    expect(l.items).toEqual([h("X-Test-Header2", "Test Header2 Value")]);
    expectMtaEndsWith(orig, l.items);
  });

  test("delete-header-many (quirk fixed: the MTA ends with the manager's order X1:V3, X2)", () => {
    const orig = [h("X1", "Value1"), h("X1", "Value2"), h("X1", "Value3")];
    const l = new HeaderList(structuredClone(orig));
    l.delete("X1", 2);
    l.delete("X1", 1);
    l.add("X2", "Value");
    expect(l.items).toEqual([h("X1", "Value3"), h("X2", "Value")]);
    const packets = expectMtaEndsWith(orig, l.items);
    // deletes come last, highest index first
    expect(packets.slice(-2)).toEqual([
      { type: "chgheader", index: 2, name: "X1", value: "" },
      { type: "chgheader", index: 1, name: "X1", value: "" },
    ]);
  });

  test("a value changed in place is one m packet with its per-name index", () => {
    const orig = [h("Subject", "a"), h("X", "1"), h("X", "2")];
    const packets = expectMtaEndsWith(orig, [h("Subject", "a"), h("X", "1"), h("X", "two")]);
    expect(packets).toEqual([{ type: "chgheader", index: 2, name: "X", value: "two" }]);
  });

  test("a header whose new value is empty is not reached by m (that would delete it)", () => {
    const orig = [h("X", "1")];
    const packets = expectMtaEndsWith(orig, [h("X", "")]);
    expect(packets).toEqual([
      { type: "insheader", index: 1, name: "X", value: "" },
      { type: "chgheader", index: 2, name: "X", value: "" },
    ]);
  });

  test("everything removed", () => {
    expectMtaEndsWith([h("A", "1"), h("B", "2"), h("A", "3")], []);
  });

  test("everything new", () => {
    expectMtaEndsWith([], [h("A", "1"), h("B", "2")]);
  });

  test("reordering", () => {
    expectMtaEndsWith([h("A", "1"), h("B", "2"), h("C", "3")], [h("C", "3"), h("A", "1"), h("B", "2")]);
    expectMtaEndsWith([h("A", "1"), h("B", "2")], [h("B", "2"), h("A", "1")]);
  });

  test("name case changes are applied", () => {
    expectMtaEndsWith([h("subject", "x")], [h("Subject", "x")]);
  });
});

describe("diffHeaders: randomized against the MTA simulators", () => {
  const names = ["From", "To", "X1", "x1", "Subject", "Received", "X-Spam"];
  const values = ["a", "b", "c", " d", "", "e\n\tf"];

  function randomList(rand: () => number, max: number): Header[] {
    const n = randInt(rand, 0, max);
    return Array.from({ length: n }, () => h(names[randInt(rand, 0, names.length - 1)], values[randInt(rand, 0, values.length - 1)]));
  }

  test("random lists: 3000 cases", () => {
    const rand = prng(20261122);
    for (let i = 0; i < 3000; i++) {
      const orig = randomList(rand, 8);
      const final = randomList(rand, 8);
      const packets = diffHeaders(full(orig), full(final));
      const got = applyAsMta(orig, packets);
      if (JSON.stringify(got) !== JSON.stringify(final)) {
        throw new Error(`case ${i}: orig ${JSON.stringify(orig)} final ${JSON.stringify(final)} packets ${JSON.stringify(packets)} → ${JSON.stringify(got)}`);
      }
      expect(applyAsMta(orig, packets, { sendmail: true })).toEqual(final);
    }
  });

  test("random edits through the model: 3000 cases, and few packets for small edits", () => {
    const rand = prng(7);
    for (let i = 0; i < 3000; i++) {
      const orig = randomList(rand, 10);
      const l = new HeaderList(structuredClone(orig));
      const edits = randInt(rand, 0, 4);
      for (let e = 0; e < edits; e++) {
        const name = names[randInt(rand, 0, names.length - 1)];
        const value = values[randInt(rand, 0, values.length - 1)] || "v";
        switch (randInt(rand, 0, 3)) {
          case 0: l.add(name, value); break;
          case 1: l.insert(randInt(rand, 0, 12), name, value); break;
          case 2: l.change(name, randInt(rand, 0, 3), value); break;
          default: l.delete(name, randInt(rand, 1, 3));
        }
      }
      const packets = diffHeaders(full(orig), l.all);
      expect(applyAsMta(full(orig), packets, { full: true })).toEqual(l.all);
      expect(applyAsMta(full(orig), packets, { full: true, sendmail: true })).toEqual(l.all);
      expect(packets.length).toBeLessThanOrEqual(2 * edits);
    }
  });
});

describe("leading space conversion", () => {
  test("strip one space for a child without HDR_LEADSPC, add one for the MTA", () => {
    expect(stripLeadingSpace(" value")).toBe("value");
    expect(stripLeadingSpace("  two")).toBe(" two");
    expect(stripLeadingSpace("\tx")).toBe("\tx");
    expect(addLeadingSpace("value")).toBe(" value");
    expect(addLeadingSpace(" value")).toBe(" value");
    expect(addLeadingSpace("")).toBe(" ");
  });
});
