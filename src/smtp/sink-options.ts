// smtp-sink's command line: Postfix's letters plus milterkit's long options.
// Pure: argv in, typed options (or an OptionError) out.
import { getopt, interval, last, OptionError, type OptDef, positiveInt } from "./getopt.ts";
import { AddressError, parseListen, type Target } from "./target.ts";

/** A reply chosen for a command: `RCPT=550 5.1.1 No such user`, `RCPT:<bad@x>=550 ...`. */
export interface CustomReply {
  command: string;
  /** Only when the command's argument contains this text (case-insensitive). */
  match?: string;
  reply: string;
}

export interface CommandDelay {
  command: string;
  seconds: number;
  /** With odds N: wait a random multiple 0..N-1 of `seconds`. */
  odds?: number;
}

export interface SinkOptions {
  listen: Target;
  backlog?: number;
  family: 0 | 4 | 6;
  no8bitmime: boolean;
  noAuth: boolean;
  abortDelay?: number;
  softReply: string;
  hardReply: string;
  counters: boolean;
  noXclient: boolean;
  dumpTemplate?: string;
  appendTemplate?: string;
  noEsmtp: boolean;
  noEnhancedCodes: boolean;
  hardReject: Set<string>;
  noXforward: boolean;
  hostname: string;
  readDelay?: number;
  lmtp: boolean;
  maxConnections: number;
  exitAfterMessages?: number;
  exitAfterSessions?: number;
  noDsn: boolean;
  noPipelining: boolean;
  pixBanner: boolean;
  disconnect: Set<string>;
  disconnect421: Set<string>;
  softReject: Set<string>;
  chroot?: string;
  log: Set<string>;
  dumpPrefix?: string;
  timeout: number;
  windowSize?: number;
  user?: string;
  verbose: number;
  dataDelay?: number;
  delays: CommandDelay[];
  replies: CustomReply[];
  tlsCert?: string;
  tlsKey?: string;
  summary: boolean;
}

export const SINK_OPTIONS: OptDef[] = [
  { key: "ipv4", short: "4", long: "ipv4", takesValue: false },
  { key: "ipv6", short: "6", long: "ipv6", takesValue: false },
  { key: "no8bitmime", short: "8", long: "no-8bitmime", takesValue: false },
  { key: "noAuth", short: "a", long: "no-auth", takesValue: false },
  { key: "abortDelay", short: "A", long: "abort-delay", takesValue: true },
  { key: "softReply", short: "b", long: "soft-reply", takesValue: true },
  { key: "hardReply", short: "B", long: "hard-reply", takesValue: true },
  { key: "counters", short: "c", long: "counters", takesValue: false },
  { key: "noXclient", short: "C", long: "no-xclient", takesValue: false },
  { key: "dump", short: "d", long: "dump", takesValue: true },
  { key: "append", short: "D", long: "dump-append", takesValue: true },
  { key: "noEsmtp", short: "e", long: "no-esmtp", takesValue: false },
  { key: "noEnhancedCodes", short: "E", long: "no-enhancedstatuscodes", takesValue: false },
  { key: "hardReject", short: "f", long: "hard-reject", takesValue: true },
  { key: "noXforward", short: "F", long: "no-xforward", takesValue: false },
  { key: "hostname", short: "h", long: "hostname", takesValue: true },
  { key: "readDelay", short: "H", long: "read-delay", takesValue: true },
  { key: "lmtp", short: "L", long: "lmtp", takesValue: false },
  { key: "maxConnections", short: "m", long: "max-connections", takesValue: true },
  { key: "exitMessages", short: "M", long: "exit-after-messages", takesValue: true },
  { key: "exitSessions", short: "n", long: "exit-after-sessions", takesValue: true },
  { key: "noDsn", short: "N", long: "no-dsn", takesValue: false },
  { key: "noPipelining", short: "p", long: "no-pipelining", takesValue: false },
  { key: "pix", short: "P", long: "pix", takesValue: false },
  { key: "disconnect", short: "q", long: "disconnect", takesValue: true },
  { key: "disconnect421", short: "Q", long: "disconnect-421", takesValue: true },
  { key: "softReject", short: "r", long: "soft-reject", takesValue: true },
  { key: "chroot", short: "R", long: "chroot", takesValue: true },
  { key: "log", short: "s", long: "log", takesValue: true },
  { key: "prefix", short: "S", long: "dump-prefix", takesValue: true },
  { key: "timeout", short: "t", long: "timeout", takesValue: true },
  { key: "windowSize", short: "T", long: "window-size", takesValue: true },
  { key: "user", short: "u", long: "user", takesValue: true },
  { key: "verbose", short: "v", long: "verbose", takesValue: false },
  { key: "dataDelay", short: "w", long: "data-delay", takesValue: true },
  { key: "delay", short: "W", long: "delay", takesValue: true },
  { key: "reply", long: "reply", takesValue: true },
  { key: "tlsCert", long: "tls-cert", takesValue: true },
  { key: "tlsKey", long: "tls-key", takesValue: true },
  { key: "summary", long: "summary", takesValue: false },
];

export const SINK_USAGE =
  "usage: smtp-sink [-468acCeEFLpPv] [-A abort_delay] [-b soft_bounce_reply] [-B hard_bounce_reply] " +
  "[-d dump-template] [-D dump-template] [-f commands] [-h hostname] [-m max_concurrency] " +
  "[-M message_quit_count] [-n quit_count] [-q commands] [-r commands] [-S start-string] [-u user_privs] " +
  "[-w delay] [inet:][host]:port | unix:pathname [backlog]";

/** Command names as the fault options use them: upper case; "." is end of data, CONNECT the greeting. */
function commandList(text: string | undefined): Set<string> {
  const out = new Set<string>();
  if (!text) return out;
  for (const c of text.split(/[,\s]+/)) if (c) out.add(c.toUpperCase());
  return out;
}

function commandLists(values: string[] | undefined): Set<string> {
  const out = new Set<string>();
  for (const v of values ?? []) for (const c of commandList(v)) out.add(c);
  return out;
}

/** A complete SMTP reply text: "ddd text" (a bare code gets no text). */
function replyArg(text: string, what: string): string {
  if (!/^[2-5][0-9][0-9]([ -].*)?$/.test(text)) throw new OptionError(`bad ${what}: ${text} (expected "ddd text")`);
  return text;
}

/** Postfix's -S string: C escapes \n \r \t \\ \ooo. */
export function unescapeC(s: string): string {
  return s.replace(/\\([0-7]{1,3}|.)/g, (_m, c: string) => {
    if (/^[0-7]+$/.test(c)) return String.fromCharCode(parseInt(c, 8));
    return ({ n: "\n", r: "\r", t: "\t", b: "\b", f: "\f", v: "\v", a: "\x07" } as Record<string, string>)[c] ?? c;
  });
}

function seconds(text: string | undefined, what: string, allowZero = false): number | undefined {
  if (text === undefined) return undefined;
  if (allowZero && /^0+(\.0+)?$/.test(text)) return 0;
  const n = interval(text);
  if (n === undefined) throw new OptionError(`bad ${what}: ${text}`);
  return n;
}

export function parseSinkArgs(argv: string[]): SinkOptions {
  const s = getopt(argv, SINK_OPTIONS);
  const has = (k: string) => (s.flags.get(k) ?? 0) > 0;
  const num = (key: string, what: string, min = 1): number | undefined => {
    const t = last(s, key);
    if (t === undefined) return undefined;
    const n = positiveInt(t, min);
    if (n === undefined) throw new OptionError(`bad ${what}: ${t}`);
    return n;
  };
  const maxConnections = num("maxConnections", "maximum concurrency") ?? 256;
  const exitAfterMessages = num("exitMessages", "message count");
  const exitAfterSessions = num("exitSessions", "session count");
  const windowSize = num("windowSize", "TCP window size");
  const timeout = seconds(last(s, "timeout"), "timeout") ?? 100;
  const delays: CommandDelay[] = [];
  for (const v of s.values.get("delay") ?? []) {
    const m = /^([^:]+):([^:]+)(?::([0-9]+))?$/.exec(v);
    const secs = m ? seconds(m[2], "delay", true) : undefined;
    const odds = m?.[3] !== undefined ? positiveInt(m[3]) : undefined;
    if (!m || secs === undefined || (m[3] !== undefined && odds === undefined)) throw new OptionError(`bad -W command:delay[:odds]: ${v}`);
    for (const c of commandList(m[1])) delays.push({ command: c, seconds: secs, odds });
  }
  const replies: CustomReply[] = [];
  for (const v of s.values.get("reply") ?? []) {
    const m = /^([^=:]+)(?::([^=]*))?=(.*)$/.exec(v);
    if (!m) throw new OptionError(`bad --reply COMMAND[:MATCH]=REPLY: ${v}`);
    replies.push({ command: m[1].toUpperCase(), match: m[2] === undefined ? undefined : m[2].toLowerCase(), reply: replyArg(m[3], "--reply") });
  }
  const tlsCert = last(s, "tlsCert");
  const tlsKey = last(s, "tlsKey");
  if ((tlsCert === undefined) !== (tlsKey === undefined)) throw new OptionError("--tls-cert and --tls-key go together");
  if (has("ipv4") && has("ipv6")) throw new OptionError("-4 and -6 exclude each other");
  if (s.operands.length < 1 || s.operands.length > 2) throw new OptionError(SINK_USAGE);
  let listen: Target;
  try {
    listen = parseListen(s.operands[0]);
  } catch (e) {
    if (e instanceof AddressError) throw new OptionError(e.message);
    throw e;
  }
  let backlog: number | undefined;
  if (s.operands.length === 2) {
    backlog = positiveInt(s.operands[1]);
    if (backlog === undefined) throw new OptionError(`bad backlog: ${s.operands[1]}`);
  }
  const hardReject = commandLists(s.values.get("hardReject"));
  const softReject = commandLists(s.values.get("softReject"));
  return {
    listen,
    backlog,
    family: has("ipv4") ? 4 : has("ipv6") ? 6 : 0,
    no8bitmime: has("no8bitmime"),
    noAuth: has("noAuth"),
    abortDelay: seconds(last(s, "abortDelay"), "abort delay", true),
    softReply: replyArg(last(s, "softReply") ?? "450 4.3.0 Error: command failed", "soft reply"),
    hardReply: replyArg(last(s, "hardReply") ?? "500 5.3.0 Error: command failed", "hard reply"),
    counters: has("counters"),
    noXclient: has("noXclient"),
    dumpTemplate: last(s, "dump"),
    appendTemplate: last(s, "append"),
    noEsmtp: has("noEsmtp") || has("pix"),
    noEnhancedCodes: has("noEnhancedCodes"),
    hardReject,
    noXforward: has("noXforward"),
    hostname: last(s, "hostname") ?? "smtp-sink",
    readDelay: seconds(last(s, "readDelay"), "read delay", true),
    lmtp: has("lmtp"),
    maxConnections,
    exitAfterMessages,
    exitAfterSessions,
    noDsn: has("noDsn"),
    // Rejecting commands makes pipelined clients unpredictable: Postfix's -f/-r imply -p.
    noPipelining: has("noPipelining") || hardReject.size > 0 || softReject.size > 0,
    pixBanner: has("pix"),
    disconnect: commandLists(s.values.get("disconnect")),
    disconnect421: commandLists(s.values.get("disconnect421")),
    softReject,
    chroot: last(s, "chroot"),
    log: commandLists(s.values.get("log")),
    dumpPrefix: last(s, "prefix") === undefined ? undefined : unescapeC(last(s, "prefix")!),
    timeout,
    windowSize,
    user: last(s, "user"),
    verbose: s.flags.get("verbose") ?? 0,
    dataDelay: seconds(last(s, "dataDelay"), "delay", true),
    delays,
    replies,
    tlsCert,
    tlsKey,
    summary: !s.values.has("no-summary"),
  };
}
