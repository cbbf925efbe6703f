/**
 * Short constructors for handler results, so handlers read like milter code:
 *
 *   return Reject;                                   // 'r'
 *   return replyCode(550, "5.7.1", "no thanks");     // 'y' "550 5.7.1 no thanks"
 *   return eom([{ type: "addheader", name: "X-Scanned", value: "yes" }]);
 */
import {
  buildReplyText,
  type AcceptReply,
  type ContinueReply,
  type DecisionReply,
  type DiscardReply,
  type ModificationReply,
  type RejectReply,
  type ReplycodeReply,
  type ShutdownReply,
  type SkipReply,
  type TempfailReply,
} from "../milter/index.ts";
import type { CloseResult, EomResult } from "./types.ts";

export const Continue: ContinueReply = Object.freeze({ type: "continue" });
export const Accept: AcceptReply = Object.freeze({ type: "accept" });
export const Reject: RejectReply = Object.freeze({ type: "reject" });
export const Tempfail: TempfailReply = Object.freeze({ type: "tempfail" });
export const Discard: DiscardReply = Object.freeze({ type: "discard" });
export const Skip: SkipReply = Object.freeze({ type: "skip" });
export const Shutdown: ShutdownReply = Object.freeze({ type: "shutdown" });
export const Close: CloseResult = Object.freeze({ type: "close" });

/**
 * A `y` reply with checked SMTP text: `replyCode(451, "4.7.1", "try later")`,
 * several lines as an array. `%` is escaped. Throws ReplyTextError for text
 * an MTA would refuse (code not 4xx/5xx, enhanced class mismatch, CR/LF, …).
 */
export function replyCode(code: number, enhanced: string | undefined, lines: string | readonly string[]): ReplycodeReply {
  return { type: "replycode", text: buildReplyText(enhanced === undefined ? { code, lines } : { code, enhanced, lines }) };
}

/** End-of-message result: modifications, then the decision (default continue). */
export function eom(modifications: readonly ModificationReply[], reply: DecisionReply | CloseResult = Continue): EomResult {
  return { modifications, reply };
}
