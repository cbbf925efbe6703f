// The rule book for header, end-of-header and body (src/manager/rules/content.ts), without sockets.
import { describe, expect, test } from "bun:test";
import type { Status } from "../../src/manager/rules/answers.ts";
import { CONTENT, CONTENT_PHASE, type ContentStage, headerValueFor, type Move } from "../../src/manager/rules/content.ts";
import { type ChildState, mustRunData, takingPart } from "../../src/manager/rules/envelope.ts";

// A child's answer as compiled (evaluation mode already counted as accept) -> how the message moves on.
const MOVES: [Status, Move][] = [
  ["continue", "continue"],
  ["not-change", "continue"],
  ["skip", "skip"],
  ["accept", "accept"],
  ["reject", "refuse"],
  ["temporary-failure", "refuse"],
  ["discard", "refuse"],
];

const STAGES: ContentStage[] = ["header", "end-of-header", "body"];

test("the three content stages are in the rule book", () => {
  expect(Object.keys(CONTENT).sort()).toEqual([...STAGES].sort());
});

for (const stage of STAGES) {
  describe(stage, () => {
    test.each(MOVES)("answer %s moves: %s", (status, move) => {
      expect(CONTENT[stage].answer(status)).toBe(move);
    });

    test("a condition stop: compiled accept, the child gets ABORT (and then moves as accept)", () => {
      const stop = CONTENT[stage].stop;
      expect(stop).toEqual({ compiled: { status: "accept" }, child: "abort" });
      expect(CONTENT[stage].answer(stop.compiled!.status)).toBe("accept");
    });
  });
}

describe("who takes part", () => {
  const c = (name: string, over: Partial<ChildState>) => ({ name, alive: true, processing: true, acceptedRecipients: 1, wantsRefusedRecipients: false, ...over });
  test("children processing the message, in order; one that refused every recipient first leaves with ABORT", () => {
    const all = [c("a", {}), c("none-left", { acceptedRecipients: 0 }), c("idle", { processing: false }), c("gone", { alive: false }), c("b", {})];
    expect(takingPart(CONTENT_PHASE, all).map((x) => [x.name, CONTENT_PHASE.before(x)])).toEqual([
      ["a", "none"],
      ["none-left", "abort"],
      ["b", "none"],
    ]);
  });
});

describe("DATA skipped by the MTA", () => {
  test.each([
    [false, 6, true],
    [false, 4, true],
    [false, 3, false],
    [false, 2, false],
    [true, 6, false],
  ] as const)("DATA seen %p, protocol version %p: DATA is run first %p", (seen, version, run) => {
    expect(mustRunData(seen, version)).toBe(run);
  });
});

describe("header values and HDR_LEADSPC", () => {
  test.each([
    // MTA agreed, child agreed, value from the message -> value for the child
    [true, true, " v", " v"],
    [true, false, " v", "v"],
    [true, false, "v", "v"],
    [true, false, "  v", " v"],
    [false, false, "v", "v"],
    [false, true, "v", "v"],
  ] as const)("MTA leading space %p, child %p: %j is sent as %j", (mta, child, value, sent) => {
    expect(headerValueFor(mta, child, value)).toBe(sent);
  });
});
