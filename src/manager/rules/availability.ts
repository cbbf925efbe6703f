// The rule book, across sessions: a child that could not be opened (connect or negotiation failed
// or timed out) is down. A black-holed child would otherwise cost every session its full
// connection_timeout, one after another, until the MTA's own milter timeouts fire and apply the
// MTA's default action instead of our fallback_status.
//   down          for a back-off period (manager.milter_retry_interval, doubling after every
//                 failed try, at most manager.milter_retry_max_interval) sessions count the child
//                 as its fallback_status at once, without connecting
//   probe         when the period is over, one session (only one at a time) tries it; the others
//                 still count it as down meanwhile
//   up            a session opened it: it is back, the back-off starts from the beginning
// Down and back are logged once each (by the leader), not once per session.
import type { MilterConfig } from "../config/schema.ts";

/** What a session does with a child before opening it. */
export type OpenPlan = "open" | "probe" | "skip";

/** What an open changed: the child went down, is still down (a probe failed) or came back. */
export type AvailabilityChange = { event: "down" | "still-down"; retryInMs: number } | { event: "up"; downForMs: number } | undefined;

interface Down {
  since: number;
  retryAt: number;
  intervalMs: number;
  probing: boolean;
}

export interface RetryIntervals {
  /** First back-off after a child goes down. */
  minMs: number;
  /** The back-off doubles after each failed probe, up to this. */
  maxMs: number;
}

/** Which children are down, shared by every session of the engine (pure: the time is passed in). */
export class Availability {
  private readonly down = new Map<string, Down>();

  constructor(private intervals: RetryIntervals) {}

  /** New intervals (reload); children already down keep their current period. */
  update(intervals: RetryIntervals): void {
    this.intervals = intervals;
  }

  /** A session is about to open `milter`. */
  plan(milter: MilterConfig, now: number): OpenPlan {
    const d = this.down.get(keyOf(milter));
    if (!d) return "open";
    if (d.probing || now < d.retryAt) return "skip";
    d.probing = true;
    return "probe";
  }

  /** The open planned as "open" or "probe" ended: `ok` = connected and negotiated. */
  opened(milter: MilterConfig, ok: boolean, now: number): AvailabilityChange {
    const key = keyOf(milter);
    const d = this.down.get(key);
    if (ok) {
      if (!d) return undefined;
      this.down.delete(key);
      return { event: "up", downForMs: now - d.since };
    }
    const { minMs, maxMs } = this.intervals;
    if (!d) {
      const intervalMs = Math.max(0, Math.min(minMs, maxMs));
      this.down.set(key, { since: now, retryAt: now + intervalMs, intervalMs, probing: false });
      return { event: "down", retryInMs: intervalMs };
    }
    if (!d.probing) return undefined; // a session that started opening before it went down: nothing new
    d.probing = false;
    d.intervalMs = Math.min(Math.max(d.intervalMs * 2, minMs), maxMs);
    d.retryAt = now + d.intervalMs;
    return { event: "still-down", retryInMs: d.intervalMs };
  }

  /** Is `milter` down now (for tests and --show-config)? */
  isDown(milter: MilterConfig): boolean {
    return this.down.has(keyOf(milter));
  }
}

function keyOf(m: MilterConfig): string {
  return `${m.name}\0${m.connection_spec}`;
}

/** Postfix's milter_connect_timeout default: how long the MTA waits for the manager to answer at all. */
export const MTA_CONNECT_TIMEOUT_S = 30;

/** One warning line when a child's connection_timeout exceeds what the MTA waits, else undefined. */
export function connectionTimeoutWarning(milters: readonly MilterConfig[]): string | undefined {
  const long = milters.filter((m) => m.enabled && m.connection_timeout > MTA_CONNECT_TIMEOUT_S);
  if (long.length === 0) return undefined;
  const list = long.map((m) => `${m.name} (${m.connection_timeout} s)`).join(", ");
  return (
    `connection_timeout of ${list} is longer than the MTA waits for a milter (Postfix's milter_connect_timeout is ${MTA_CONNECT_TIMEOUT_S} s): ` +
    `a child that does not answer its connect makes the MTA apply its own default action, not the child's fallback_status; set connection_timeout below it`
  );
}
