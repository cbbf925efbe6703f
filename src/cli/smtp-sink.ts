// smtp-sink: SMTP/LMTP test server compatible with Postfix's smtp-sink.
import { defineCommand } from "citty";
import { writeNow } from "../runtime/output.ts";
import { VERSION } from "../version.ts";
import { OptionError } from "../smtp/getopt.ts";
import { SinkError, SmtpSink } from "../smtp/sink.ts";
import { parseSinkArgs } from "../smtp/sink-options.ts";

const PROG = "smtp-sink";

/** Start the sink; resolves to an exit status on a start-up error, else undefined (it keeps running). */
export async function runSmtpSink(argv: string[]): Promise<number | undefined> {
  const err = (s: string) => writeNow(2, s);
  let o;
  try {
    o = parseSinkArgs(argv);
  } catch (e) {
    if (e instanceof OptionError) {
      err(`${PROG}: fatal: ${e.message}\n`);
      return 1;
    }
    throw e;
  }
  const sink = new SmtpSink(o, { out: (s) => writeNow(1, s), err, prog: PROG });
  let where;
  try {
    where = await sink.start();
  } catch (e) {
    if (e instanceof SinkError) {
      err(`${PROG}: fatal: ${e.message}\n`);
      return 1;
    }
    throw e;
  }
  // A port chosen by the system must be told; a fixed one is known.
  if (o.listen.kind === "inet" && o.listen.port === 0) writeNow(1, `listening on ${where.hostname}:${where.port}\n`);
  else if (o.verbose) err(`${PROG}: listening on ${o.listen.kind === "unix" ? `unix:${where.path}` : `${where.hostname}:${where.port}`}\n`);
  let stopping = false;
  const stop = () => {
    if (stopping) return;
    stopping = true;
    sink.stop();
    if (o.counters) writeNow(1, "\n");
    if (o.summary) err(sink.summary());
    process.exit(0);
  };
  sink.onExit = stop;
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
  return undefined;
}

export default defineCommand({
  meta: {
    name: "smtp-sink",
    version: VERSION,
    description:
      "SMTP/LMTP test server compatible with Postfix's smtp-sink: accepts mail and discards or dumps it.\n" +
      "  Listen on [inet:][host]:port (empty host: every address; port 0 prints 'listening on HOST:PORT' on stdout)\n" +
      "  or unix:pathname; the backlog operand is accepted and left to the system. Advertises PIPELINING and\n" +
      "  8BITMIME (and STARTTLS with --tls-cert/--tls-key). -d DIR writes one file per message into DIR (a template\n" +
      "  with strftime % fields not ending in '/' is a file-name prefix, as with Postfix): X-Client-Addr, X-Client-Proto,\n" +
      "  X-Helo-Args, X-Mail-Args, one X-Rcpt-Args per recipient, a Received: header, then the message (LF line ends)\n" +
      "  and an empty line - Postfix smtp-sink's layout. Command lists (-f -q -Q -r -W) take SMTP verbs, '.' (end of\n" +
      "  data) and CONNECT (the greeting). On SIGTERM/SIGINT, -M or -n it prints a summary on stderr and exits 0.",
  },
  args: {
    ipv4: { type: "boolean", alias: "4", description: "listen on IPv4 only (with an empty host)" },
    ipv6: { type: "boolean", alias: "6", description: "listen on IPv6 only (with an empty host)" },
    "no-8bitmime": { type: "boolean", alias: "8", description: "do not announce 8BITMIME" },
    "no-auth": { type: "boolean", alias: "a", description: "do not announce SASL AUTH" },
    "abort-delay": { type: "string", alias: "A", valueHint: "delay", description: "after 354, wait delay seconds, answer 550 and disconnect" },
    "soft-reply": { type: "string", alias: "b", valueHint: "reply", description: "soft rejection text (450 4.3.0 Error: command failed)" },
    "hard-reply": { type: "string", alias: "B", valueHint: "reply", description: "hard rejection text (500 5.3.0 Error: command failed)" },
    counters: { type: "boolean", alias: "c", description: "print sess=N quit=N mesg=N counters on stdout" },
    "no-xclient": { type: "boolean", alias: "C", description: "disable XCLIENT" },
    dump: { type: "string", alias: "d", valueHint: "dir", description: "write each message to its own file in dir" },
    "dump-append": { type: "string", alias: "D", valueHint: "template", description: "append every message to one file per strftime(template)" },
    "no-esmtp": { type: "boolean", alias: "e", description: "do not announce ESMTP (EHLO is an unknown command)" },
    "no-enhancedstatuscodes": { type: "boolean", alias: "E", description: "do not announce ENHANCEDSTATUSCODES" },
    "hard-reject": { type: "string", alias: "f", valueHint: "cmds", description: "answer these commands with the hard reply (implies -p)" },
    "no-xforward": { type: "boolean", alias: "F", description: "disable XFORWARD" },
    hostname: { type: "string", alias: "h", valueHint: "hostname", description: "name in the greeting and HELO/EHLO replies (smtp-sink)" },
    "read-delay": { type: "string", alias: "H", valueHint: "delay", description: "delay the first read after DATA" },
    lmtp: { type: "boolean", alias: "L", description: "speak LMTP (LHLO, one reply per recipient after the message)" },
    "max-connections": { type: "string", alias: "m", valueHint: "count", description: "simultaneous sessions (256); extra ones wait for a slot" },
    "exit-after-messages": { type: "string", alias: "M", valueHint: "count", description: "exit after count messages" },
    "exit-after-sessions": { type: "string", alias: "n", valueHint: "count", description: "exit after count sessions" },
    "no-dsn": { type: "boolean", alias: "N", description: "do not announce DSN" },
    "no-pipelining": { type: "boolean", alias: "p", description: "do not announce PIPELINING" },
    pix: { type: "boolean", alias: "P", description: "greeting as behind a Cisco PIX (implies -e)" },
    disconnect: { type: "string", alias: "q", valueHint: "cmds", description: "after these commands disconnect without a reply" },
    "disconnect-421": { type: "string", alias: "Q", valueHint: "cmds", description: "after these commands answer 421 and disconnect" },
    "soft-reject": { type: "string", alias: "r", valueHint: "cmds", description: "answer these commands with the soft reply (implies -p)" },
    chroot: { type: "string", alias: "R", valueHint: "dir", description: "chroot (not supported: refused)" },
    log: { type: "string", alias: "s", valueHint: "cmds", description: "print these commands on stderr" },
    "dump-prefix": { type: "string", alias: "S", valueHint: "string", description: "prepend string (C escapes) to every dumped message" },
    timeout: { type: "string", alias: "t", valueHint: "seconds", description: "idle limit per session (100)" },
    "window-size": { type: "string", alias: "T", valueHint: "windowsize", description: "TCP window size (accepted for compatibility, ignored)" },
    user: { type: "string", alias: "u", valueHint: "user", description: "as root: switch to this user after opening the socket" },
    verbose: { type: "boolean", alias: "v", description: "print the SMTP conversations on stderr" },
    "data-delay": { type: "string", alias: "w", valueHint: "delay", description: "wait delay seconds before answering DATA" },
    delay: { type: "string", alias: "W", valueHint: "cmd:delay[:odds]", description: "wait before answering cmd (odds: random multiple)" },
    reply: { type: "string", valueHint: "CMD[:match]=REPLY", description: "answer CMD (when its argument contains match) with REPLY, e.g. 'RCPT:<bad@=550 5.1.1 No such user'" },
    "tls-cert": { type: "string", valueHint: "file", description: "PEM certificate: offer STARTTLS" },
    "tls-key": { type: "string", valueHint: "file", description: "PEM private key for STARTTLS" },
    summary: { type: "boolean", default: true, description: "summary on stderr at exit (--no-summary to drop it)" },
    listen: { type: "positional", required: false, description: "[inet:][host]:port or unix:pathname" },
    backlog: { type: "positional", required: false, description: "listen backlog (accepted)" },
  },
  run({ rawArgs }) {
    return runSmtpSink(rawArgs);
  },
});
