// The rule book, part shared by every stage: how the answers of several children become one
// answer for the MTA (manager.md §2.2, §2.8). Statuses in milter-manager's names, the priority
// that "compiles" them, what an evaluation-mode child's answer counts as, when a child's reply
// code is passed on, and the decision packet the MTA gets for a compiled answer.
import { Accept, Continue, Discard, Reject, Tempfail } from "../../milter-side/replies.ts";
import { type DecisionReply, parseReplyText } from "../../milter/index.ts";
import type { FallbackStatus } from "../config/schema.ts";

/**
 * A compiled status. `not-change` is "nothing compiled yet" (e.g. every child was stopped at
 * envelope-recipient); it is sent to the MTA as continue.
 */
export type Status = "not-change" | "accept" | "skip" | "continue" | "temporary-failure" | "reject" | "discard";

// DISCARD > REJECT > TEMPORARY_FAILURE > CONTINUE > SKIP > ACCEPT > NOT_CHANGE (milter_status_compare).
const PRIORITY: Record<Status, number> = {
  "not-change": 0,
  accept: 1,
  skip: 2,
  continue: 3,
  "temporary-failure": 4,
  reject: 5,
  discard: 6,
};

/** The more important of two statuses (ACCEPT is the weakest real answer). */
export function moreImportant(a: Status, b: Status): Status {
  return PRIORITY[b] > PRIORITY[a] ? b : a;
}

/** reject, temporary-failure or discard: the answer refuses the command or the message. */
export function isRefusal(s: Status): s is "temporary-failure" | "reject" | "discard" {
  return s === "temporary-failure" || s === "reject" || s === "discard";
}

/** The most important of a list of fallback statuses (or undefined for none). */
export function mostImportantFallback(list: readonly FallbackStatus[]): FallbackStatus | undefined {
  let out: FallbackStatus | undefined;
  for (const s of list) out = out === undefined ? s : (moreImportant(out, s) as FallbackStatus);
  return out;
}

/** One child's answer to one step, before merging. */
export interface ChildAnswer {
  /** The status this answer counts as in the compilation. */
  status: Status;
  /** Reply text (`y`) to store; only set when it may be forwarded. */
  replyCode?: string;
}

/** The answer a child gave, as the mta-side reports it. */
export interface ChildDecision {
  status: "continue" | "accept" | "reject" | "temporary-failure" | "discard" | "skip" | "reply-code" | "shutdown";
  /** For reply-code: the raw `y` text. */
  replyText?: string;
}

/**
 * What a child's decision counts as. An evaluation-mode child's reject, temporary-failure,
 * discard and reply code count as ACCEPT (its real answer is only logged); unlike
 * milter-manager we do not keep its reply text either, so it can never reach the MTA (manager.md §2.8 quirk).
 * `shutdown` (`4`, Postfix only) is taken as temporary-failure.
 */
export function childAnswer(d: ChildDecision, evaluation: boolean): ChildAnswer {
  switch (d.status) {
    case "continue":
    case "accept":
    case "skip":
      return { status: d.status };
    case "reject":
    case "temporary-failure":
    case "discard":
      return { status: evaluation ? "accept" : d.status };
    case "shutdown":
      return { status: evaluation ? "accept" : "temporary-failure" };
    case "reply-code": {
      if (evaluation) return { status: "accept" };
      const text = d.replyText ?? "";
      const status = replyCodeClass(text) === 4 ? "temporary-failure" : "reject";
      return { status, replyCode: text };
    }
  }
}

/** The answer a child's real decision stands for (what the child meant, evaluation or not). */
export function realStatus(d: ChildDecision): Status {
  switch (d.status) {
    case "reply-code":
      return replyCodeClass(d.replyText ?? "") === 4 ? "temporary-failure" : "reject";
    case "shutdown":
      return "temporary-failure";
    default:
      return d.status;
  }
}

/** First digit of the reply code that starts `text` (4 or 5), 0 when there is none. */
export function replyCodeClass(text: string): number {
  const c = text.charCodeAt(0);
  return c >= 0x30 && c <= 0x39 ? c - 0x30 : 0;
}

/** The reply for the MTA: a status, with the reply text when one is passed on. */
export interface FinalReply {
  status: Status;
  replyCode?: string;
}

/**
 * The compiled answer of one stage: statuses are merged by priority and the last reply code
 * is kept; `final()` passes the reply code on only when it agrees with the compiled status
 * (4xx with temporary-failure, 5xx with reject) and is valid (manager.md §2.2).
 */
export class StageReply {
  status: Status = "not-change";
  replyCode: string | undefined = undefined;
  /** Set by final() when a stored reply code was dropped because it is invalid. */
  invalidReplyCode: string | undefined = undefined;

  add(answer: ChildAnswer): void {
    this.status = moreImportant(this.status, answer.status);
    if (answer.replyCode !== undefined) this.replyCode = answer.replyCode;
  }

  reset(): void {
    this.status = "not-change";
    this.replyCode = undefined;
    this.invalidReplyCode = undefined;
  }

  final(): FinalReply {
    const code = this.replyCode;
    if (code === undefined) return { status: this.status };
    const cls = replyCodeClass(code);
    const agrees = (cls === 4 && this.status === "temporary-failure") || (cls === 5 && this.status === "reject");
    if (!agrees) return { status: this.status };
    // Validated as the MTA will (code, separators, enhanced-code class, `%`): milter-manager
    // sends nothing at all for an invalid code; the plain status is the answer that makes sense.
    const problem = enhancedClassProblem(code) ?? parseReplyError(code);
    if (problem !== undefined) {
      this.invalidReplyCode = problem;
      return { status: this.status };
    }
    return { status: this.status, replyCode: code };
  }
}

const ANY_ENHANCED = /^\d{3}[ -](\d{1,3})\.\d{1,3}\.\d{1,3}(?: |$)/;

/**
 * milter-manager's leader check: something shaped like an enhanced status code must have the
 * reply's class (`554 3.7.1 …` is refused; parseReplyText would take `3.7.1` for text).
 */
function enhancedClassProblem(text: string): string | undefined {
  const m = ANY_ENHANCED.exec(text);
  if (!m || m[1] === text[0]) return undefined;
  return `reply ${JSON.stringify(text)}: class of extended status code should be the reply's class (${text[0]}), got ${m[1]}`;
}

function parseReplyError(text: string): string | undefined {
  const check = parseReplyText(text);
  return check.ok ? undefined : check.error;
}

/** The decision packet for a compiled answer: `not-change`, `continue` and `skip` are continue for the MTA. */
export function toMtaReply(r: FinalReply): DecisionReply {
  switch (r.status) {
    case "accept":
      return Accept;
    case "reject":
      return r.replyCode !== undefined ? { type: "replycode", text: r.replyCode } : Reject;
    case "temporary-failure":
      return r.replyCode !== undefined ? { type: "replycode", text: r.replyCode } : Tempfail;
    case "discard":
      return Discard;
    default:
      return Continue;
  }
}

/** Back from a decision packet to a compiled answer (the answer of an emulated DATA). */
export function fromMtaReply(r: DecisionReply): FinalReply {
  switch (r.type) {
    case "accept":
      return { status: "accept" };
    case "reject":
      return { status: "reject" };
    case "tempfail":
      return { status: "temporary-failure" };
    case "discard":
      return { status: "discard" };
    case "replycode":
      return { status: r.text.startsWith("4") ? "temporary-failure" : "reject", replyCode: r.text };
    default:
      return { status: "continue" };
  }
}

/** The status a statistics line shows for the answer the MTA got: anything that lets it go on is "pass". */
export function statisticsStatus(s: Status): string {
  return s === "continue" || s === "not-change" || s === "skip" ? "pass" : s;
}
