/**
 * Postfix's /usr/sbin/smtp-source as a message generator for end-to-end tests.
 * It says HELO (not EHLO), opens one session per message unless `-d`, copies
 * -f into the From: header, and exits non-zero on the first unexpected reply
 * unless `-A` (docs/tools.md §5).
 */
import { run, type RunResult } from "./proc.ts";
import { SMTP_SOURCE } from "./sink.ts";

export interface SmtpSourceOptions {
  host?: string;
  port?: number;
  /** connect to a Unix socket instead */
  unix?: string;
  /** -m: number of messages (default 1) */
  messages?: number;
  /** -s: parallel sessions (default 1) */
  sessions?: number;
  /** -l: payload bytes (default 512) */
  length?: number;
  /** -f: envelope sender, also the From: header */
  from?: string;
  /** -t: recipient */
  to?: string;
  /** -M: HELO name and host part of default addresses (default client.milterkit.test) */
  helo?: string;
  /** more options, placed before the address (e.g. ["-A"], ["-d"], ["-S", "subject"]) */
  extraArgs?: string[];
  /** bound on the whole run (default 60 s); the process is killed after it */
  timeoutMs?: number;
  /** throw on a non-zero exit (default true) */
  check?: boolean;
}

/** Run smtp-source to completion; throws CommandError on failure (unless check: false) or timeout. */
export async function runSmtpSource(o: SmtpSourceOptions): Promise<RunResult> {
  const host = o.host ?? "127.0.0.1";
  const target = o.unix ? `unix:${o.unix}` : host.includes(":") ? `[${host.replace(/^\[|\]$/g, "")}]:${o.port}` : `${host}:${o.port}`;
  const args = [
    SMTP_SOURCE,
    ...(o.unix ? [] : [host.includes(":") ? "-6" : "-4"]),
    "-M", o.helo ?? "client.milterkit.test",
    "-m", String(o.messages ?? 1),
    "-s", String(o.sessions ?? 1),
    "-l", String(o.length ?? 512),
    ...(o.from ? ["-f", o.from] : []),
    ...(o.to ? ["-t", o.to] : []),
    ...(o.extraArgs ?? []),
    target,
  ];
  return run(args, { timeoutMs: o.timeoutMs ?? 60_000, check: o.check ?? true });
}
