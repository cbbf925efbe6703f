// smtp-source: Postfix-compatible SMTP/LMTP load generator (same letters,
// defaults, dialogue and stdout), plus pipelining, STARTTLS and a summary.
import { defineCommand } from "citty";
import { readFileSync } from "node:fs";
import { isatty } from "node:tty";
import { writeNow } from "../runtime/output.ts";
import { VERSION } from "../version.ts";
import { OptionError } from "../smtp/getopt.ts";
import { Progress } from "../smtp/progress.ts";
import { SmtpSource } from "../smtp/source.ts";
import { parseSourceArgs } from "../smtp/source-options.ts";
import { formatSummary, summaryJson } from "../smtp/stats.ts";

const PROG = "smtp-source";

/** Run smtp-source with `argv` (without the program name); resolves to the exit status. */
export async function runSmtpSource(argv: string[]): Promise<number> {
  const err = (s: string) => writeNow(2, s);
  let o;
  try {
    o = parseSourceArgs(argv);
  } catch (e) {
    if (e instanceof OptionError) {
      err(`${PROG}: fatal: ${e.message}\n`);
      return 1;
    }
    throw e;
  }
  // With several sessions the client and the server under test keep both
  // cores busy, and optimizing compiles (on a thread of their own) take CPU
  // from the server: tier up 100 times later (measured, -s 50 -d -P: 233 vs
  // 272 ms per 10000 messages). One session leaves a core idle while the
  // other side works, and fully optimized code shortens every round trip.
  if (o.sessions > 1) Bun.unsafe.setJITPolicy(100);
  let file: Uint8Array | undefined;
  if (o.file !== undefined) {
    try {
      file = readFileSync(o.file);
    } catch (e: any) {
      const why = e?.code === "ENOENT" ? "No such file or directory" : e?.code === "EACCES" ? "Permission denied" : e?.message;
      err(`${PROG}: fatal: open ${o.file}: ${why}\n`);
      return 1;
    }
  }
  const source = new SmtpSource(o, { out: (s) => writeNow(1, s), err, prog: PROG }, file);
  const showProgress = o.progress ?? (isatty(2) && o.verbose === 0 && !o.counter);
  const progress = showProgress ? new Progress(() => source.progress()) : undefined;
  progress?.start();
  const summary = await source.run();
  progress?.stop();
  // An unreachable target is one line; a run that talked to the server is summarised.
  if (summary.connections > 0 || !summary.fatal) {
    if (o.json) writeNow(1, summaryJson(summary) + "\n");
    else if (o.summary) err(formatSummary(summary, PROG));
  }
  return summary.fatal ? 1 : 0;
}

export default defineCommand({
  meta: {
    name: "smtp-source",
    version: VERSION,
    description:
      "SMTP/LMTP load generator, compatible with Postfix's smtp-source: same options, defaults, dialogue and stdout.\n" +
      "  Target: [inet:]host[:port] (default port 25, IPv6 as [addr]:port) or unix:pathname.\n" +
      "  stdout stays as Postfix prints it (only the -c counter). The final summary (messages sent/failed by reply code,\n" +
      "  elapsed, messages/s, latency p50/p90/p99 per message from connect or MAIL to the end-of-data reply) goes to stderr;\n" +
      "  --json prints it as one JSON line on stdout instead; --no-summary drops it. A progress line is shown on stderr\n" +
      "  when it is a terminal (not with -v or -c). Exit status 1 on a fatal error (unexpected reply without -A, lost\n" +
      "  connection without -A, unreachable target, bad option), else 0.",
  },
  args: {
    ipv4: { type: "boolean", alias: "4", description: "connect over IPv4 only" },
    ipv6: { type: "boolean", alias: "6", description: "connect over IPv6 only" },
    "ignore-errors": { type: "boolean", alias: "A", description: "an unexpected reply or lost connection is a warning, not fatal" },
    counter: { type: "boolean", alias: "c", description: "print a running count of completed DATA transactions on stdout" },
    "connect-attempts": { type: "string", alias: "C", valueHint: "count", description: "connection attempts when refused (default 1)" },
    reuse: { type: "boolean", alias: "d", description: "send the next message over the same connection" },
    from: { type: "string", alias: "f", valueHint: "from", description: "envelope sender (default foo@myhostname)" },
    file: { type: "string", alias: "F", valueHint: "file", description: "send this message (headers + body; CRLF added, dot-stuffed)" },
    length: { type: "string", alias: "l", valueHint: "length", description: "generated payload size in bytes, headers not included" },
    lmtp: { type: "boolean", alias: "L", description: "speak LMTP (LHLO, one reply per recipient)" },
    messages: { type: "string", alias: "m", valueHint: "count", description: "number of messages (default 1)" },
    myhostname: { type: "string", alias: "M", valueHint: "myhostname", description: "HELO name and domain of the default addresses" },
    numbered: { type: "boolean", alias: "N", description: "prefix each recipient with a never-repeating number" },
    old: { type: "boolean", alias: "o", description: "old mode: no HELO and no message headers" },
    recipients: { type: "string", alias: "r", valueHint: "count", description: "recipients per transaction (default 1)" },
    "random-delay": { type: "string", alias: "R", valueHint: "interval", description: "random wait 0..interval seconds after each message, per session" },
    sessions: { type: "string", alias: "s", valueHint: "count", description: "parallel sessions (default 1)" },
    subject: { type: "string", alias: "S", valueHint: "subject", description: "add a Subject: header" },
    to: { type: "string", alias: "t", valueHint: "to", description: "recipient (default foo@myhostname)" },
    "window-size": { type: "string", alias: "T", valueHint: "windowsize", description: "TCP window size (accepted for compatibility, ignored)" },
    verbose: { type: "boolean", alias: "v", description: "print the dialogue on stderr (-vv adds connection details)" },
    delay: { type: "string", alias: "w", valueHint: "interval", description: "fixed wait after each message, per session (5, 0.5, 250ms, 2s)" },
    pipelining: { type: "boolean", alias: "P", description: "EHLO and ESMTP PIPELINING when the server offers it" },
    starttls: { type: "boolean", description: "EHLO, then STARTTLS when offered (no certificate check)" },
    json: { type: "boolean", description: "print the summary as JSON on stdout" },
    summary: { type: "boolean", default: true, description: "final summary on stderr (--no-summary to drop it)" },
    progress: { type: "boolean", description: "live progress line on stderr (default: when a terminal)" },
    timeout: { type: "string", valueHint: "seconds", description: "limit of every wait: connect, each reply (default 300)" },
    target: { type: "positional", required: false, description: "[inet:]host[:port] or unix:pathname" },
  },
  run({ rawArgs }) {
    return runSmtpSource(rawArgs);
  },
});
