// smtp-source's options: Postfix's letters (each also has a long name) plus milterkit's own.
import { helpOptions, type ToolOptions } from "./format.ts";
import { flag, POSTFIX_SECTIONS, value } from "./postfix.ts";

export const SMTP_SOURCE_TABLE: ToolOptions = {
  tool: "smtp-source",
  prog: "smtp-source",
  summary: "SMTP/LMTP load generator compatible with Postfix's smtp-source",
  description: [
    "SMTP/LMTP load generator, compatible with Postfix's smtp-source: same options, defaults, dialogue and stdout. " +
      "Target: [inet:]host[:port] (default port 25, IPv6 as [addr]:port) or unix:pathname.",
    "stdout stays as Postfix prints it (only the -c counter). The final summary (messages sent/failed by reply code, " +
      "elapsed, messages/s, latency p50/p90/p99 per message from connect or MAIL to the end-of-data reply) goes to stderr; " +
      "--json prints it as one JSON line on stdout instead; --no-summary drops it. A progress line is shown on stderr " +
      "when it is a terminal (not with -v or -c).",
    "Exit status 1 on a fatal error (unexpected reply without -A, lost connection without -A, unreachable target, bad option), else 0.",
  ],
  sections: POSTFIX_SECTIONS,
  operands: [{ name: "TARGET", description: "[inet:]host[:port] or unix:pathname" }],
  negatableFlags: true,
  options: [
    flag("4", "ipv4", "Connect over IPv4 only"),
    flag("6", "ipv6", "Connect over IPv6 only"),
    flag("A", "ignore-errors", "An unexpected reply or lost connection is a warning, not fatal"),
    flag("c", "counter", "Print a running count of completed DATA transactions on stdout"),
    value("C", "connect-attempts", "count", "Connection attempts when refused", { default: 1 }),
    flag("d", "reuse", "Send the next message over the same connection"),
    value("f", "from", "from", "Envelope sender (default foo@myhostname)"),
    value("F", "file", "file", "Send this message (headers + body; CRLF added, dot-stuffed)", { complete: "file" }),
    value("l", "length", "length", "Generated payload size in bytes, headers not included"),
    flag("L", "lmtp", "Speak LMTP (LHLO, one reply per recipient)"),
    value("m", "messages", "count", "Number of messages", { default: 1 }),
    value("M", "myhostname", "myhostname", "HELO name and domain of the default addresses"),
    flag("N", "numbered", "Prefix each recipient with a never-repeating number"),
    flag("o", "old", "Old mode: no HELO and no message headers"),
    flag("P", "pipelining", "EHLO and ESMTP PIPELINING when the server offers it"),
    value("r", "recipients", "count", "Recipients per transaction", { default: 1 }),
    value("R", "random-delay", "interval", "Random wait 0..interval seconds after each message, per session"),
    value("s", "sessions", "count", "Parallel sessions", { default: 1 }),
    value("S", "subject", "subject", "Add a Subject: header"),
    value("t", "to", "to", "Recipient (default foo@myhostname)"),
    value("T", "window-size", "windowsize", "TCP window size (accepted for compatibility, ignored)"),
    flag("v", "verbose", "Print the dialogue on stderr (-vv adds connection details)", { repeat: "count" }),
    value("w", "delay", "interval", "Fixed wait after each message, per session (5, 0.5, 250ms, 2s)"),
    { long: "starttls", section: "milterkit", description: "EHLO, then STARTTLS when offered (no certificate check)" },
    { long: "json", section: "milterkit", description: "Print the summary as JSON on stdout" },
    { long: "summary", default: true, section: "milterkit", description: "Final summary on stderr (--no-summary drops it)" },
    { long: "progress", section: "milterkit", description: "Live progress line on stderr (--no-progress: never; default: when stderr is a terminal)" },
    { long: "timeout", value: "required", valueName: "seconds", default: 300, section: "milterkit", description: "Limit of every wait: connect, each reply" },
    ...helpOptions({ h: true }),
  ],
};
