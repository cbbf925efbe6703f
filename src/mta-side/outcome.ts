/**
 * What a step with a milter ends in, as plain values (no I/O here):
 * - a decision of the milter (continue, accept, reject, temporary-failure,
 *   discard, skip, reply-code, shutdown), including the ones we synthesise
 *   for steps that were not sent (NO_*) or not answered (NR_*);
 * - or a failure of the connection (timeout, closed, protocol-error,
 *   connection-error). Failures are values, never exceptions: a misbehaving
 *   milter must not be able to throw into the caller.
 * Also the typed message modifications collected at end-of-message.
 */
import type { MilterReply, ModificationReply, StageName } from "../milter/index.ts";

/** Final answer of a milter to one step, in milter-manager's status names. */
export type DecisionStatus =
  | "continue"
  | "accept"
  | "reject"
  | "temporary-failure"
  | "discard"
  | "skip"
  | "reply-code"
  | "shutdown";

/**
 * How the decision came about:
 * - `reply`: the milter answered;
 * - `no-reply`: sent, but the milter negotiated NR_* for it (or it is A/Q/K) — synthesised continue;
 * - `not-sent`: not sent at all (NO_* bit, protocol version too old, empty body chunk,
 *   body after a skip) — synthesised continue (or skip for body after skip).
 */
export type DecisionSource = "reply" | "no-reply" | "not-sent";

/** A parsed `y` reply. `text` is exactly what the milter sent. */
export interface ReplyCode {
  /** 4xx or 5xx. */
  code: number;
  /** Enhanced status code of the first line (`5.7.1`), when present and of the same class. */
  extended?: string;
  /** The text after code and enhanced code; continuation lines (their prefixes removed) joined with LF. `%%` left as sent. */
  message: string;
  /** The raw reply text (CRLF between lines). */
  text: string;
  /** "reject" for 5xx, "temporary-failure" for 4xx. */
  status: "reject" | "temporary-failure";
}

export interface DecisionOutcome {
  ok: true;
  status: DecisionStatus;
  /** Stage the outcome belongs to (milter-manager stage name). */
  stage: StageName;
  via: DecisionSource;
  /** Only for status "reply-code". */
  reply?: ReplyCode;
}

/** Which timer expired. */
export type TimerName =
  | "connection" // connect did not complete
  | "writing" // queued bytes made no progress
  | "reading" // no byte of a reply within reading_timeout (restarted by every byte, so by each `p`)
  | "end-of-message" // same at end-of-message, with end_of_message_timeout
  | "end-of-message-total"; // the whole end-of-message exchange took too long (Sendmail's T=E:), not restarted by `p`

export type FailureStatus = "timeout" | "closed" | "protocol-error" | "connection-error";

export interface FailureOutcome {
  ok: false;
  status: FailureStatus;
  stage: StageName;
  /** For "timeout". */
  timer?: TimerName;
  /** One line saying what happened, with the offending input. */
  detail: string;
}

/** Outcome of a step other than negotiate and end-of-message. */
export type StepOutcome = DecisionOutcome | FailureOutcome;

/** One message modification requested at end-of-message, in milter-manager's action names. */
export type Modification =
  | { type: "add-header"; name: string; value: string }
  | { type: "insert-header"; index: number; name: string; value: string }
  | { type: "change-header"; index: number; name: string; value: string }
  /** `m` with an empty value. */
  | { type: "delete-header"; index: number; name: string }
  | { type: "change-envelope-from"; address: string; args?: string }
  /** `+` (withParameters false) or `2` (true; args may still be absent). */
  | { type: "add-envelope-recipient"; address: string; args?: string; withParameters: boolean }
  | { type: "delete-envelope-recipient"; address: string }
  /** One `b` packet; consecutive chunks concatenate to the new body (see replacedBody). */
  | { type: "replace-body"; chunk: Uint8Array }
  | { type: "quarantine"; reason: string };

export type ModificationType = Modification["type"];

/** End-of-message outcome: the decision plus every modification in arrival order. */
export interface EndOfMessageDecision extends DecisionOutcome {
  modifications: Modification[];
  /** Number of `p` packets received while waiting. */
  progress: number;
}

/** A failure at end-of-message still reports what arrived before it (for logs). */
export interface EndOfMessageFailure extends FailureOutcome {
  modifications: Modification[];
  progress: number;
}

export type EndOfMessageOutcome = EndOfMessageDecision | EndOfMessageFailure;

// ---------------------------------------------------------------------------

const DECISION_STATUS: Partial<Record<MilterReply["type"], DecisionStatus>> = {
  continue: "continue",
  accept: "accept",
  reject: "reject",
  tempfail: "temporary-failure",
  discard: "discard",
  skip: "skip",
  replycode: "reply-code",
  shutdown: "shutdown",
};

/** Status of a decision reply (a c r t d s y 4); undefined for anything else. */
export function decisionStatus(type: MilterReply["type"]): DecisionStatus | undefined {
  return DECISION_STATUS[type];
}

/** Typed modification of a modification reply (h i m b + 2 - e q). */
export function toModification(r: ModificationReply): Modification {
  switch (r.type) {
    case "addheader":
      return { type: "add-header", name: r.name, value: r.value };
    case "insheader":
      return { type: "insert-header", index: r.index, name: r.name, value: r.value };
    case "chgheader":
      return r.value === ""
        ? { type: "delete-header", index: r.index, name: r.name }
        : { type: "change-header", index: r.index, name: r.name, value: r.value };
    case "chgfrom":
      return r.args === undefined ? { type: "change-envelope-from", address: r.address } : { type: "change-envelope-from", address: r.address, args: r.args };
    case "addrcpt":
      return { type: "add-envelope-recipient", address: r.address, withParameters: false };
    case "addrcpt_par":
      return r.args === undefined
        ? { type: "add-envelope-recipient", address: r.address, withParameters: true }
        : { type: "add-envelope-recipient", address: r.address, args: r.args, withParameters: true };
    case "delrcpt":
      return { type: "delete-envelope-recipient", address: r.address };
    case "replbody":
      return { type: "replace-body", chunk: r.chunk };
    case "quarantine":
      return { type: "quarantine", reason: r.reason };
    default:
      return r satisfies never;
  }
}

/** The replacement body (all replace-body chunks concatenated), or undefined if the body was not replaced. */
export function replacedBody(mods: readonly Modification[]): Buffer | undefined {
  const chunks: Uint8Array[] = [];
  for (const m of mods) if (m.type === "replace-body") chunks.push(m.chunk);
  return chunks.length === 0 ? undefined : Buffer.concat(chunks);
}

const FIRST_LINE = /^([45]\d\d)(?:([ -])(.*))?$/s;
const EXTENDED = /^([245]\.\d{1,3}\.\d{1,3})(?: |$)/;

/**
 * Parse a `y` text leniently, as MTAs do: the first line must start with a
 * 4xx/5xx code followed by space, `-` or nothing; an enhanced status code of
 * the same class is taken apart. `%` is not checked (Postfix drops a lone `%`,
 * we report the text as sent). Returns an error string for anything else.
 */
export function parseReplyCode(text: string): ReplyCode | string {
  const lines = text.split(/\r?\n/);
  if (lines.length > 1 && lines[lines.length - 1] === "") lines.pop();
  const m = FIRST_LINE.exec(lines[0]);
  if (!m) return `reply text ${JSON.stringify(text.slice(0, 80))} does not start with a 4xx or 5xx code`;
  const code = Number(m[1]);
  const parts: string[] = [];
  let extended: string | undefined;
  lines.forEach((line, i) => {
    let rest = i === 0 ? (m[3] ?? "") : line.replace(/^\d\d\d[ -]?/, "");
    const e = EXTENDED.exec(rest);
    if (e && e[1][0] === m[1][0]) {
      if (i === 0) extended = e[1];
      if (i === 0 || e[1] === extended) rest = rest.slice(e[0].length);
    }
    parts.push(rest);
  });
  const reply: ReplyCode = { code, message: parts.join("\n"), text, status: code >= 500 ? "reject" : "temporary-failure" };
  if (extended !== undefined) reply.extended = extended;
  return reply;
}

/** True for an outcome the caller may treat as "go on" (continue, whether answered, synthesised or not sent). */
export function isContinue(o: StepOutcome): boolean {
  return o.ok && o.status === "continue";
}
