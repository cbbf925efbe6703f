// The rule book for the content stages: header, end-of-header and body (manager.md §2.5, §2.11).
// pipeline.ts only sequences them (who is next, replays, sending) and does the I/O.
//
// Who takes part (CONTENT_PHASE): the children still processing the message when its first
// content command arrives, after those that refused every recipient left with ABORT, one at a
// time in configuration order. Nobody left: the manager's fallback_status. When the MTA skipped
// DATA, DATA is run on the children first (envelope.ts mustRunData).
// Only the first child still in the message gets the MTA's commands live; its answer drives the
// reply. When it leaves, the next one is first replayed what was kept so far.
// Every stage moves on by the child's answer as compiled (evaluation mode counts as accept):
//   continue  the MTA gets continue; the child goes on getting the message live
//   skip      the child gets no more body; the MTA gets continue (the others need the body)
//   accept    the child leaves the message; the next child takes over in the same step
//   refuse    (reject, temporary-failure, discard, reply code, a failure whose fallback is one)
//             every child of the session gets ABORT; the MTA gets the compiled answer
// A condition stop: the child gets ABORT, counts as accept and leaves the message; the others go on.
// Every child left during the stream: the compiled answer (normally accept) ends the message.
import { type ChildAnswer, isRefusal, type Status } from "./answers.ts";
import { type ChildEffect, type ChildState, type StopRule, withoutRecipients } from "./envelope.ts";
import { stripLeadingSpace } from "../headers.ts";

export type ContentStage = "header" | "end-of-header" | "body";

/** How one child's answer moves the message on (the table above). */
export type Move = "continue" | "skip" | "accept" | "refuse";

export interface ContentRule {
  /** The move of a child's compiled answer. */
  readonly answer: (compiled: Status) => Move;
  /** What a condition stop does; it then moves as accept. */
  readonly stop: StopRule;
}

const ACCEPT: ChildAnswer = { status: "accept" };

function move(s: Status): Move {
  if (s === "accept" || s === "skip") return s;
  return isRefusal(s) ? "refuse" : "continue";
}

const STREAMED: ContentRule = { answer: move, stop: { compiled: ACCEPT, child: "abort" } };

/** The three stages follow the same rules. */
export const CONTENT: Readonly<Record<ContentStage, ContentRule>> = {
  header: STREAMED,
  "end-of-header": STREAMED,
  body: STREAMED,
};

/** Who takes part in the content phase: what happens to each child processing the message first, then those still processing it. */
export const CONTENT_PHASE: { readonly takesPart: "message"; readonly before: (child: ChildState) => ChildEffect } = {
  takesPart: "message",
  before: withoutRecipients,
};

/**
 * A header value as a child gets it: the message keeps the leading space when the MTA agreed to
 * HDR_LEADSPC; a child that did not agree gets the value without it.
 */
export function headerValueFor(mtaLeadingSpace: boolean, childLeadingSpace: boolean, value: string): string {
  return mtaLeadingSpace && !childLeadingSpace ? stripLeadingSpace(value) : value;
}
