/**
 * The statistics lines milter-manager writes (docs manager.md §4.4,
 * tools.md §3.3), byte for byte, so milter-manager-log-analyzer and home-grown log
 * parsers keep working. They are logged at level `statistics`: in a log file
 * or on stdout without a level tag, in syslog prefixed `[statistics] `.
 *
 *   [session][end][<last stage>][<status>][<elapsed s>](<tag>)
 *   [milter][end][<last stage>][<status>][<elapsed s>](<tag>): <child name>
 *   [session][disconnected][<elapsed s>](<tag>)
 *   [sessions][finished] <total>(+<n>) <processing>
 *   [milter][header][add](<tag>): <<name>>=<<value>>: <child name>
 *
 * Status names are the analyzer's: pass (continue / not changed), accept,
 * reject, discard, temporary-failure, quarantine, abort, error, and for a
 * child also stop (an applicable condition stopped it).
 */

import { wireText } from "./log-text.ts";

/** Elapsed seconds as the original prints them (six decimals: `0.006848`). */
export function formatElapsed(elapsedMs: number): string {
  return (Math.max(0, elapsedMs) / 1000).toFixed(6);
}

/** Status words of the statistics lines. */
export type StatisticsStatus =
  | "pass" | "accept" | "reject" | "discard" | "temporary-failure" | "quarantine" | "abort" | "error" | "stop";

/**
 * A reply or outcome status as the analyzer counts it: continue, not-change,
 * skip, no reply and "default" are `pass`; a reply code counts as what its
 * class means; anything unknown is `error`.
 */
export function statisticsStatus(status: string | undefined): StatisticsStatus {
  switch (status) {
    case undefined:
    case "":
    case "default":
    case "pass":
    case "continue":
    case "not-change":
    case "skip":
    case "progress":
    case "no-reply":
    case "all-options":
      return "pass";
    case "accept":
    case "reject":
    case "discard":
    case "temporary-failure":
    case "quarantine":
    case "abort":
    case "stop":
    case "error":
      return status;
    case "tempfail":
      return "temporary-failure";
    default:
      if (/^4\d\d/.test(status)) return "temporary-failure";
      if (/^5\d\d/.test(status)) return "reject";
      return "error";
  }
}

/** `[session][end][end-of-message][pass][0.006848](1)` — an MTA session ended. */
export function sessionEndLine(tag: number | string, lastStage: string, status: string, elapsedMs: number): string {
  return `[session][end][${lastStage}][${statisticsStatus(status)}][${formatElapsed(elapsedMs)}](${tag})`;
}

/** `[milter][end][end-of-message][accept][0.004211](1): spamassassin` — one child's part of a session ended. */
export function milterEndLine(tag: number | string, name: string, lastStage: string, status: string, elapsedMs: number): string {
  return `[milter][end][${lastStage}][${statisticsStatus(status)}][${formatElapsed(elapsedMs)}](${tag}): ${name}`;
}

/** `[session][disconnected][0.512000](3)` — the MTA went away without QUIT. */
export function sessionDisconnectedLine(tag: number | string, elapsedMs: number): string {
  return `[session][disconnected][${formatElapsed(elapsedMs)}](${tag})`;
}

/** `[sessions][finished] 12(+1) 3` — total finished, finished since the last line, still running. */
export function sessionsFinishedLine(total: number, delta: number, processing: number): string {
  return `[sessions][finished] ${total}(+${delta}) ${processing}`;
}

/**
 * `[milter][header][add](1): <X-Spam-Flag>=<YES>: spamassassin` — a child added or changed a header.
 * Name and value are wire bytes (latin1 strings): shown by wireText, so UTF-8 stays readable.
 */
export function headerAddLine(tag: number | string, name: string, value: string, child: string): string {
  return `[milter][header][add](${tag}): <${wireText(name)}>=<${wireText(value)}>: ${child}`;
}
