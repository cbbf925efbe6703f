// The rule book for the stages sent to several children at once (manager.md §2.4, §2.9):
// connect, helo, envelope-from (MAIL), envelope-recipient (RCPT), data (DATA) and unknown.
// One entry per stage says everything about it; leader.ts only sequences (asks the conditions,
// sends, waits, compiles with answers.ts, applies the effects with Child.take) and does the I/O.
//
// Shared by every entry:
// - nobody takes part (every child gone; for RCPT and DATA: none processes the message): the
//   manager answers its fallback_status without asking anyone (failures.ts);
// - the children asked answer at once; their answers compile by priority (answers.ts); a failed
//   child counts as its fallback_status (failures.ts);
// - each child's *real* answer (what it meant, evaluation mode or not) has the entry's effect on
//   that child; the compiled answer may end the message for every child (abortsMessage).
import type { Status, ChildAnswer } from "./answers.ts";
import { isRefusal } from "./answers.ts";

export type EnvelopeStage = "connect" | "helo" | "envelope-from" | "envelope-recipient" | "data" | "unknown";

/** What a rule does to one child; Child.take (children.ts) carries it out. */
export type ChildEffect =
  | "none" //            stays as it is
  | "join-message" //    takes part in the current message
  | "count-recipient" // one more recipient of the message it did not refuse
  | "leave-message" //   takes no further part in the message (nothing is sent)
  | "abort" //           ABORT: its transaction ends, it takes no further part in the message
  | "quit"; //           QUIT: out of the SMTP session

/** What the rules read of a child. */
export interface ChildState {
  readonly alive: boolean;
  readonly processing: boolean;
  readonly acceptedRecipients: number;
  /** It negotiated SMFIP_RCPT_REJ: it wants the recipients the MTA refused itself. */
  readonly wantsRefusedRecipients: boolean;
}

/** What an applicable condition stopping a child does (conditions are asked before the command goes to it). */
export interface StopRule {
  /** What the stop compiles as, in place of the child's answer; undefined: nothing is compiled. */
  readonly compiled: ChildAnswer | undefined;
  readonly child: ChildEffect;
}

export interface EnvelopeRule {
  /** Who takes part: "session" = every live child, "message" = live children processing the current message. */
  readonly takesPart: "session" | "message";
  /** Before the command goes out, what happens to each child that takes part. */
  readonly before?: (child: ChildState) => ChildEffect;
  /** Whether a child that takes part is sent the command (default: yes). */
  readonly asked?: (child: ChildState, refusedByMta: boolean) => boolean;
  /** The answer when children take part but none of them is asked. */
  readonly nobodyAsked: Status;
  /** What a child's real answer does to that child. */
  readonly answer: (real: Status, refusedByMta: boolean) => ChildEffect;
  /** What a condition stop does; undefined: conditions are not asked at this stage. */
  readonly stop: StopRule | undefined;
  /** Whether the compiled answer ends the message for every child (each gets ABORT). */
  readonly abortsMessage: (compiled: Status) => boolean;
}

const ACCEPT: ChildAnswer = { status: "accept" };

/** A discard ends the message whatever the stage. */
const onlyDiscard = (s: Status): boolean => s === "discard";

/** DATA (and the start of the content phase): a child that refused every recipient leaves with ABORT. */
export function withoutRecipients(child: ChildState): ChildEffect {
  return child.acceptedRecipients === 0 ? "abort" : "none";
}

/** The MTA sent a content command without DATA: from protocol version 4 on, DATA is run on the children first. */
export function mustRunData(dataSeen: boolean, mtaVersion: number): boolean {
  return !dataSeen && mtaVersion >= 4;
}

/**
 * With RCPT_REJ agreed, the MTA also reports the recipients it refused itself, with
 * `{rcpt_mailer}` = `error`: only children that asked for them get those, and a child's continue
 * then accepts nothing.
 */
export function refusedByMta(rcptRejAgreed: boolean, rcptMailer: string | undefined): boolean {
  return rcptRejAgreed && rcptMailer === "error";
}

/** connect and helo: any answer but continue (accept, reject, tempfail; discard is invalid here) quits the child for the session. */
const GREETING: EnvelopeRule = {
  takesPart: "session",
  nobodyAsked: "not-change",
  answer: (s) => (s === "continue" ? "none" : "quit"),
  stop: { compiled: ACCEPT, child: "quit" },
  abortsMessage: onlyDiscard,
};

export const ENVELOPE: Readonly<Record<EnvelopeStage, EnvelopeRule>> = {
  connect: GREETING,
  helo: GREETING,
  // Only a child that continues takes part in the message; a refused MAIL refuses the message.
  "envelope-from": {
    takesPart: "session",
    nobodyAsked: "not-change",
    answer: (s) => (s === "continue" ? "join-message" : "leave-message"),
    stop: { compiled: ACCEPT, child: "leave-message" },
    abortsMessage: isRefusal,
  },
  // A refused recipient concerns only the child that refused it (and the MTA, when compiled).
  // A stopped child just does not see this recipient: nothing is compiled for it.
  "envelope-recipient": {
    takesPart: "message",
    asked: (c, byMta) => !byMta || c.wantsRefusedRecipients,
    nobodyAsked: "not-change",
    answer: (s, byMta) => {
      if (s === "continue") return byMta ? "none" : "count-recipient";
      return s === "accept" || s === "discard" ? "leave-message" : "none";
    },
    stop: { compiled: undefined, child: "none" },
    abortsMessage: onlyDiscard,
  },
  // A child without recipients leaves first; nobody left wants the message: accept. Any answer
  // but continue ends the child's part; a refused DATA refuses the message. A stopped child
  // leaves with ABORT; the others still answer (manager.md §2.9: not milter-manager's stop for
  // all). Skipped by the MTA: run before the first content command (mustRunData).
  data: {
    takesPart: "message",
    before: withoutRecipients,
    nobodyAsked: "accept",
    answer: (s) => (s === "continue" ? "none" : "leave-message"),
    stop: { compiled: ACCEPT, child: "abort" },
    abortsMessage: isRefusal,
  },
  // No conditions are asked for unknown commands.
  unknown: {
    takesPart: "session",
    nobodyAsked: "not-change",
    answer: (s) => (s === "accept" || s === "discard" ? "leave-message" : "none"),
    stop: undefined,
    abortsMessage: onlyDiscard,
  },
};

/** The children a stage's command concerns, in configuration order. */
export function takingPart<C extends ChildState>(rule: { readonly takesPart: "session" | "message" }, children: readonly C[]): C[] {
  return rule.takesPart === "session" ? children.filter((c) => c.alive) : children.filter((c) => c.alive && c.processing);
}
