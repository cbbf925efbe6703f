// The rule book for connect, helo, envelope-from, envelope-recipient, data and unknown
// (src/manager/rules/envelope.ts), stage by stage, without sockets.
import { describe, expect, test } from "bun:test";
import type { Status } from "../../src/manager/rules/answers.ts";
import {
  type ChildEffect,
  type ChildState,
  ENVELOPE,
  type EnvelopeStage,
  refusedByMta,
  type StopRule,
  takingPart,
  withoutRecipients,
} from "../../src/manager/rules/envelope.ts";

const ANSWERS = ["continue", "accept", "skip", "reject", "temporary-failure", "discard"] as const satisfies readonly Status[];
type Answer = (typeof ANSWERS)[number];
const COMPILED: readonly Status[] = ["not-change", ...ANSWERS];

interface Expected {
  takesPart: "session" | "message";
  /** Effect of each real answer on the child (recipient not refused by the MTA). */
  answer: Record<Answer, ChildEffect>;
  stop: StopRule | undefined;
  /** Compiled statuses that end the message for every child. */
  aborts: Status[];
  nobodyAsked: Status;
}

const ACCEPT = { status: "accept" } as const;
const BOOK: Record<EnvelopeStage, Expected> = {
  connect: {
    takesPart: "session",
    answer: { continue: "none", accept: "quit", skip: "quit", reject: "quit", "temporary-failure": "quit", discard: "quit" },
    stop: { compiled: ACCEPT, child: "quit" },
    aborts: ["discard"],
    nobodyAsked: "not-change",
  },
  helo: {
    takesPart: "session",
    answer: { continue: "none", accept: "quit", skip: "quit", reject: "quit", "temporary-failure": "quit", discard: "quit" },
    stop: { compiled: ACCEPT, child: "quit" },
    aborts: ["discard"],
    nobodyAsked: "not-change",
  },
  "envelope-from": {
    takesPart: "session",
    answer: {
      continue: "join-message",
      accept: "leave-message",
      skip: "leave-message",
      reject: "leave-message",
      "temporary-failure": "leave-message",
      discard: "leave-message",
    },
    stop: { compiled: ACCEPT, child: "leave-message" },
    aborts: ["temporary-failure", "reject", "discard"],
    nobodyAsked: "not-change",
  },
  "envelope-recipient": {
    takesPart: "message",
    answer: {
      continue: "count-recipient",
      accept: "leave-message",
      skip: "none",
      reject: "none",
      "temporary-failure": "none",
      discard: "leave-message",
    },
    stop: { compiled: undefined, child: "none" },
    aborts: ["discard"],
    nobodyAsked: "not-change",
  },
  data: {
    takesPart: "message",
    answer: {
      continue: "none",
      accept: "leave-message",
      skip: "leave-message",
      reject: "leave-message",
      "temporary-failure": "leave-message",
      discard: "leave-message",
    },
    stop: { compiled: ACCEPT, child: "abort" },
    aborts: ["temporary-failure", "reject", "discard"],
    nobodyAsked: "accept",
  },
  unknown: {
    takesPart: "session",
    answer: { continue: "none", accept: "leave-message", skip: "none", reject: "none", "temporary-failure": "none", discard: "leave-message" },
    stop: undefined,
    aborts: ["discard"],
    nobodyAsked: "not-change",
  },
};

function child(over: Partial<ChildState> & { name?: string } = {}): ChildState & { name: string } {
  return { name: "c", alive: true, processing: true, acceptedRecipients: 1, wantsRefusedRecipients: false, ...over };
}

test("every stage of the table is in the rule book and the other way round", () => {
  expect(Object.keys(ENVELOPE).sort()).toEqual(Object.keys(BOOK).sort());
});

for (const [stage, want] of Object.entries(BOOK) as [EnvelopeStage, Expected][]) {
  const rule = ENVELOPE[stage];
  describe(stage, () => {
    test(`taking part: ${want.takesPart === "session" ? "every live child" : "live children processing the message"}`, () => {
      expect(rule.takesPart).toBe(want.takesPart);
      const all = [
        child({ name: "live-processing" }),
        child({ name: "live-idle", processing: false }),
        child({ name: "gone", alive: false, processing: false }),
      ];
      const names = takingPart(rule, all).map((c) => c.name);
      expect(names).toEqual(want.takesPart === "session" ? ["live-processing", "live-idle"] : ["live-processing"]);
    });

    test.each(ANSWERS.map((a) => [a, want.answer[a]]))("real answer %s: the child's effect is %s", (answer, effect) => {
      expect(rule.answer(answer as Answer, false)).toBe(effect);
    });

    test("condition stop", () => {
      expect(rule.stop).toEqual(want.stop);
    });

    test.each(COMPILED.map((s) => [s, want.aborts.includes(s)]))("compiled %s aborts the message: %p", (status, aborts) => {
      expect(rule.abortsMessage(status as Status)).toBe(aborts as boolean);
    });

    test(`children taking part, none asked: ${want.nobodyAsked}`, () => {
      expect(rule.nobodyAsked).toBe(want.nobodyAsked);
    });
  });
}

describe("envelope-recipient refused by the MTA ({rcpt_mailer} = error with RCPT_REJ)", () => {
  const rule = ENVELOPE["envelope-recipient"];

  test.each([
    [true, "error", true],
    [true, "local", false],
    [true, undefined, false],
    [false, "error", false],
  ] as const)("RCPT_REJ agreed %p, {rcpt_mailer} %p: refused by the MTA %p", (agreed, mailer, refused) => {
    expect(refusedByMta(agreed, mailer)).toBe(refused);
  });

  test("only children that asked for refused recipients get it; every child gets the others", () => {
    const wants = child({ wantsRefusedRecipients: true });
    const plain = child();
    expect([rule.asked!(wants, true), rule.asked!(plain, true)]).toEqual([true, false]);
    expect([rule.asked!(wants, false), rule.asked!(plain, false)]).toEqual([true, true]);
  });

  test("a continue then accepts nothing; other answers do what they always do", () => {
    const want: Record<Answer, ChildEffect> = {
      continue: "none",
      accept: "leave-message",
      skip: "none",
      reject: "none",
      "temporary-failure": "none",
      discard: "leave-message",
    };
    for (const a of ANSWERS) expect([a, rule.answer(a, true)]).toEqual([a, want[a]]);
  });
});

describe("data: children that refused every recipient", () => {
  test.each([
    [0, "abort"],
    [1, "none"],
    [3, "none"],
  ] as const)("%p recipients accepted: %s before DATA", (n, effect) => {
    expect(withoutRecipients(child({ acceptedRecipients: n }))).toBe(effect);
    expect(ENVELOPE.data.before!(child({ acceptedRecipients: n }))).toBe(effect);
  });

  test("no other stage does anything before its command", () => {
    for (const stage of Object.keys(ENVELOPE) as EnvelopeStage[]) {
      if (stage !== "data") expect([stage, ENVELOPE[stage].before]).toEqual([stage, undefined]);
    }
  });
});

describe("a transaction through the rules alone", () => {
  // The effects carried out on plain records, as Child.take does on the real children.
  type Mutable = { -readonly [K in keyof ChildState]: ChildState[K] } & { name: string; aborted: boolean; quit: boolean };
  const take = (c: Mutable, e: ChildEffect): void => {
    if (e === "join-message") c.processing = true;
    else if (e === "count-recipient") c.acceptedRecipients++;
    else if (e === "leave-message") c.processing = false;
    else if (e === "abort") (c.aborted = true), (c.processing = false);
    else if (e === "quit") (c.quit = true), (c.alive = false), (c.processing = false);
  };
  const make = (name: string): Mutable => ({
    name,
    alive: true,
    processing: false,
    acceptedRecipients: 0,
    wantsRefusedRecipients: false,
    aborted: false,
    quit: false,
  });

  test("helo accept quits a child; MAIL; one child refuses the only recipient and leaves at DATA with ABORT", () => {
    const [a, b, c] = [make("a"), make("b"), make("c")];
    const all = [a, b, c];
    const stage = (name: EnvelopeStage, answers: Record<string, Answer>): void => {
      const rule = ENVELOPE[name];
      if (rule.before) for (const x of takingPart(rule, all)) take(x, rule.before(x));
      for (const x of takingPart(rule, all)) take(x, rule.answer(answers[x.name] ?? "continue", false));
    };
    stage("helo", { c: "accept" });
    expect(c.quit).toBe(true);
    stage("envelope-from", {});
    expect(takingPart(ENVELOPE["envelope-recipient"], all).map((x) => x.name)).toEqual(["a", "b"]);
    stage("envelope-recipient", { a: "reject" });
    expect([a.acceptedRecipients, b.acceptedRecipients]).toEqual([0, 1]);
    stage("data", {});
    expect([a.aborted, a.processing, b.aborted, b.processing]).toEqual([true, false, false, true]);
  });
});
