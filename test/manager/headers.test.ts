// The manager's header model (milter-manager's editing rules) and the diff sent to the MTA,
// checked by applying the packets to small MTA simulators with Postfix's and Sendmail's semantics.
import { describe, expect, test } from "bun:test";
import { addLeadingSpace, diffHeaders, type Header, HeaderList, type HeaderPacket, stripLeadingSpace } from "../../src/manager/headers.ts";
import { prng, randInt } from "../milter/helpers.ts";
import { applyHeaderPackets as applyAsMta } from "./support/mta-headers.ts";

const h = (name: string, value: string): Header => ({ name, value });

/** Diff, apply as Postfix and as Sendmail, expect the manager's list in both. */
function expectMtaEndsWith(orig: Header[], final: Header[]): HeaderPacket[] {
  const packets = diffHeaders(orig, final);
  expect(applyAsMta(orig, packets)).toEqual(final);
  expect(applyAsMta(orig, packets, { sendmail: true })).toEqual(final);
  return packets;
}

describe("HeaderList (milter-manager's editing rules)", () => {
  test("add goes before the first header of the same name, else to the end", () => {
    const l = new HeaderList([h("From", "a"), h("X1", "v1")]);
    l.add("x1", "v0");
    l.add("X2", "new");
    expect(l.items).toEqual([h("From", "a"), h("x1", "v0"), h("X1", "v1"), h("X2", "new")]);
  });

  test("insert is 0-based in the visible list; past the end appends", () => {
    const l = new HeaderList([h("From", "a")]);
    l.insert(2, "X1", "1");
    l.insert(1, "X2", "2");
    l.insert(0, "X0", "0");
    expect(l.items).toEqual([h("X0", "0"), h("From", "a"), h("X2", "2"), h("X1", "1")]);
  });

  test("change is 1-based per name (0 counts as 1), case-insensitive; missing occurrence adds", () => {
    const l = new HeaderList([h("X1", "a"), h("Y", "y"), h("X1", "b")]);
    l.change("x1", 2, "B");
    l.change("X1", 0, "A");
    expect(l.items).toEqual([h("X1", "A"), h("Y", "y"), h("x1", "B")]);
    l.change("Y", 5, "y2"); // no 5th Y: add, i.e. before the first Y
    expect(l.items).toEqual([h("X1", "A"), h("Y", "y2"), h("Y", "y"), h("x1", "B")]);
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
    expect(s).toEqual([h("A", "1")]);
  });
});

describe("diffHeaders: the §2.5.3 / §2.13 worked examples", () => {
  test("no change → no packet", () => {
    expect(diffHeaders([h("From", "a")], [h("From", "a")])).toEqual([]);
    expect(diffHeaders([], [])).toEqual([]);
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

  test("insert-header: X1 at 2, then X2 at 1 → From, X2, X1", () => {
    const orig = [h("From", "a")];
    const l = new HeaderList(structuredClone(orig));
    l.insert(2, "X-Test-Header1", "Test Header1 Value");
    l.insert(1, "X-Test-Header2", "Test Header2 Value");
    expect(l.items.map((x) => x.name)).toEqual(["From", "X-Test-Header2", "X-Test-Header1"]);
    expectMtaEndsWith(orig, l.items);
  });

  test("insert at the top uses index 1 (after the MTA's invisible Received:)", () => {
    const orig = [h("From", "a"), h("To", "b")];
    const packets = expectMtaEndsWith(orig, [h("X-Top", "t"), ...orig]);
    expect(packets).toEqual([{ type: "insheader", index: 1, name: "X-Top", value: "t" }]);
  });

  test("change-header: add X1:V2 (goes first), change X1#1 → X1:Replaced, X1:V1", () => {
    const orig = [h("X-Test-Header1", "Test-Header1-Value1")];
    const l = new HeaderList(structuredClone(orig));
    l.add("X-Test-Header1", "Test-Header1-Value2");
    l.change("X-Test-Header1", 1, "Replaced Value");
    expect(l.items).toEqual([h("X-Test-Header1", "Replaced Value"), h("X-Test-Header1", "Test-Header1-Value1")]);
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
      const packets = diffHeaders(orig, final);
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
      const packets = diffHeaders(orig, l.items);
      expect(applyAsMta(orig, packets)).toEqual(l.items);
      expect(applyAsMta(orig, packets, { sendmail: true })).toEqual(l.items);
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
