// What the engine tells the outside about what happens (metrics, /status, the children's
// up/down log lines). One small sink object: the leader, the children's code and the daemon call
// it; the Monitor (monitor.ts) is the real one, NO_EVENTS drops everything.
import type { StageName } from "../milter/index.ts";

/** How a child failed: the step outcome's failure status, or "down": not tried, it is down (rules/availability.ts). */
export type FailureKind = "timeout" | "closed" | "protocol-error" | "connection-error" | "down";

export interface ManagerEvents {
  /** A step with a child ended: its answer (decision status, or `error` for a failure) after `ms`. */
  childAnswer(child: string, stage: StageName, status: string, ms: number): void;
  /** A child failed at `stage` (timer: which timeout expired). */
  childFailure(child: string, kind: FailureKind, stage: StageName, detail: string, timer?: string): void;
  /** A child could (up) or could not (down) be connected and negotiated. */
  childState(child: string, up: boolean, detail?: string): void;
  /** An MTA session started. */
  sessionStart(): void;
  /** An MTA session ended with this answer (statistics status: pass, accept, reject, …). */
  sessionEnd(status: string, elapsedMs: number): void;
  /** A message (MAIL … end-of-message or abort) ended with this answer. */
  messageEnd(status: string): void;
  /** A configuration reload was tried. */
  reload(ok: boolean, detail?: string): void;
}

const nothing = () => {};
export const NO_EVENTS: ManagerEvents = {
  childAnswer: nothing,
  childFailure: nothing,
  childState: nothing,
  sessionStart: nothing,
  sessionEnd: nothing,
  messageEnd: nothing,
  reload: nothing,
};
