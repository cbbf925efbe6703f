// smtp-sink's options: Postfix's letters (each also has a long name) plus milterkit's own.
import { helpOptions, type ToolOptions } from "./format.ts";
import { flag, POSTFIX_SECTIONS, value } from "./postfix.ts";

export const SMTP_SINK_TABLE: ToolOptions = {
  tool: "smtp-sink",
  prog: "smtp-sink",
  summary: "SMTP/LMTP test server compatible with Postfix's smtp-sink",
  description: [
    "SMTP/LMTP test server compatible with Postfix's smtp-sink: accepts mail and discards or dumps it.",
    "Listen on [inet:][host]:port (empty host: every address; port 0 prints 'listening on HOST:PORT' on stdout) " +
      "or unix:pathname; the backlog operand is accepted and left to the system. Advertises PIPELINING and 8BITMIME " +
      "(and STARTTLS with --tls-cert/--tls-key).",
    "-d DIR writes one file per message into DIR (a template with strftime % fields not ending in '/' is a file-name prefix, " +
      "as with Postfix): X-Client-Addr, X-Client-Proto, X-Helo-Args, X-Mail-Args, one X-Rcpt-Args per recipient, " +
      "a Received: header, then the message (LF line ends) and an empty line - Postfix smtp-sink's layout.",
    "Command lists (-f -q -Q -r -W) take SMTP verbs, '.' (end of data) and CONNECT (the greeting). " +
      "On SIGTERM/SIGINT, -M or -n it prints a summary on stderr and exits 0.",
  ],
  sections: POSTFIX_SECTIONS,
  operands: [
    { name: "LISTEN", description: "[inet:][host]:port or unix:pathname" },
    { name: "BACKLOG", description: "Listen backlog (accepted)", optional: true },
  ],
  negatableFlags: true,
  options: [
    flag("4", "ipv4", "Listen on IPv4 only (with an empty host)"),
    flag("6", "ipv6", "Listen on IPv6 only (with an empty host)"),
    flag("8", "no-8bitmime", "Do not announce 8BITMIME"),
    flag("a", "no-auth", "Do not announce SASL AUTH"),
    value("A", "abort-delay", "delay", "After 354, wait delay seconds, answer 550 and disconnect"),
    value("b", "soft-reply", "reply", "Soft rejection text", { default: "450 4.3.0 Error: command failed" }),
    value("B", "hard-reply", "reply", "Hard rejection text", { default: "500 5.3.0 Error: command failed" }),
    flag("c", "counters", "Print sess=N quit=N mesg=N counters on stdout"),
    flag("C", "no-xclient", "Disable XCLIENT"),
    value("d", "dump", "dir", "Write each message to its own file in dir", { complete: "directory" }),
    value("D", "dump-append", "template", "Append every message to one file per strftime(template)", { complete: "file" }),
    flag("e", "no-esmtp", "Do not announce ESMTP (EHLO is an unknown command)"),
    flag("E", "no-enhancedstatuscodes", "Do not announce ENHANCEDSTATUSCODES"),
    value("f", "hard-reject", "cmds", "Answer these commands with the hard reply (implies -p)", { repeat: "list" }),
    flag("F", "no-xforward", "Disable XFORWARD"),
    value("h", "hostname", "hostname", "Name in the greeting and HELO/EHLO replies", { default: "smtp-sink" }),
    value("H", "read-delay", "delay", "Delay the first read after DATA"),
    flag("L", "lmtp", "Speak LMTP (LHLO, one reply per recipient after the message)"),
    value("m", "max-connections", "count", "Simultaneous sessions; extra ones wait for a slot", { default: 256 }),
    value("M", "exit-after-messages", "count", "Exit after count messages"),
    value("n", "exit-after-sessions", "count", "Exit after count sessions"),
    flag("N", "no-dsn", "Do not announce DSN"),
    flag("p", "no-pipelining", "Do not announce PIPELINING"),
    flag("P", "pix", "Greeting as behind a Cisco PIX (implies -e)"),
    value("q", "disconnect", "cmds", "After these commands disconnect without a reply", { repeat: "list" }),
    value("Q", "disconnect-421", "cmds", "After these commands answer 421 and disconnect", { repeat: "list" }),
    value("r", "soft-reject", "cmds", "Answer these commands with the soft reply (implies -p)", { repeat: "list" }),
    value("R", "chroot", "dir", "Chroot (not supported: refused)"),
    value("s", "log", "cmds", "Print these commands on stderr", { repeat: "list" }),
    value("S", "dump-prefix", "string", "Prepend string (C escapes) to every dumped message"),
    value("t", "timeout", "seconds", "Idle limit per session", { default: 100 }),
    value("T", "window-size", "windowsize", "TCP window size (accepted for compatibility, ignored)"),
    value("u", "user", "user", "As root: switch to this user after opening the socket", { complete: "user" }),
    flag("v", "verbose", "Print the SMTP conversations on stderr", { repeat: "count" }),
    value("w", "data-delay", "delay", "Wait delay seconds before answering DATA"),
    value("W", "delay", "cmd:delay[:odds]", "Wait before answering cmd (odds: random multiple)", { repeat: "list" }),
    { long: "reply", value: "required", valueName: "CMD[:match]=REPLY", repeat: "list", section: "milterkit", description: "Answer CMD (when its argument contains match) with REPLY, e.g. 'RCPT:<bad@=550 5.1.1 No such user'" },
    { long: "tls-cert", value: "required", valueName: "file", section: "milterkit", complete: "file", description: "PEM certificate: offer STARTTLS" },
    { long: "tls-key", value: "required", valueName: "file", section: "milterkit", complete: "file", description: "PEM private key for STARTTLS" },
    { long: "summary", default: true, section: "milterkit", description: "Summary on stderr at exit (--no-summary drops it)" },
    ...helpOptions({ h: false }),
  ],
};
