// The rule book, part shared by every stage: how failures become fallbacks (manager.md §2.3, §2.7).
//   a child fails a step     (timeout, connection closed, protocol error) it counts as having
//                            answered its fallback_status at that step, and it is out of the
//                            session (its connection is closed; no QUIT, no ABORT)
//   a child fails to open    (connect or negotiation, within connection_timeout) it is left out;
//                            when the most important fallback_status among those left out is a
//                            refusal, every command of the session gets it and the others are quit
//   nobody can take a command every child is gone (or, for RCPT and DATA, none processes the
//                            message): the manager's own fallback_status answers
// What each stage then does with that answer is the stage's own rule (envelope.ts, content.ts,
// end-of-message.ts): a fallback is compiled like the answer it names.
import type { FallbackStatus } from "../config/schema.ts";
import { type ChildDecision, isRefusal, mostImportantFallback } from "./answers.ts";

/** The decision a failed step counts as: the child's fallback_status. */
export function failedStep(fallback: FallbackStatus): ChildDecision {
  return { status: fallback };
}

/** What went wrong, for the log: `timeout (reading timeout) at envelope-from: …`. */
export function failureText(f: { status: string; timer?: string; stage: string; detail: string }): string {
  return `${f.status}${f.timer ? ` (${f.timer} timeout)` : ""} at ${f.stage}: ${f.detail}`;
}

/**
 * Children that could not be opened: the fallback every command of the session then gets, or
 * undefined when the session goes on without them (none of their fallbacks refuses).
 */
export function fatalFallback(failed: readonly FallbackStatus[]): FallbackStatus | undefined {
  const most = mostImportantFallback(failed);
  return most !== undefined && isRefusal(most) ? most : undefined;
}
