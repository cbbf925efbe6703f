// smtp-sink's command line (listed in src/cli/options/smtp-sink.ts): Postfix's letters plus
// milterkit's long options. Pure: argv in, typed options (or an OptionError) out.
import { type Scanned, scanOr } from "../cli/options/scan.ts";
import { SMTP_SINK_TABLE } from "../cli/options/smtp-sink.ts";
import { countValue, OptionError, positiveInt, secondsValue } from "./values.ts";
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

function commandLists(values: readonly string[]): Set<string> {
  const out = new Set<string>();
  for (const v of values) for (const c of commandList(v)) out.add(c);
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

export function parseSinkArgs(argv: string[]): SinkOptions {
  const scanned = scanOr(SMTP_SINK_TABLE, argv, (m) => new OptionError(m));
  return sinkOptions(scanned);
}

/** The scanned command line as smtp-sink's options. Throws OptionError. */
export function sinkOptions(s: Scanned): SinkOptions {
  const has = (k: string) => s.count(k) > 0;
  const last = (k: string) => s.last(k);
  const num = (key: string, what: string): number | undefined => countValue(last(key), what);
  const maxConnections = num("max-connections", "maximum concurrency") ?? 256;
  const exitAfterMessages = num("exit-after-messages", "message count");
  const exitAfterSessions = num("exit-after-sessions", "session count");
  const windowSize = num("window-size", "TCP window size");
  const timeout = secondsValue(last("timeout"), "timeout") ?? 100;
  const delays: CommandDelay[] = [];
  for (const v of s.all("delay")) {
    const m = /^([^:]+):([^:]+)(?::([0-9]+))?$/.exec(v);
    const secs = m ? secondsValue(m[2], "delay", true) : undefined;
    const odds = m?.[3] !== undefined ? positiveInt(m[3]) : undefined;
    if (!m || secs === undefined || (m[3] !== undefined && odds === undefined)) throw new OptionError(`bad -W command:delay[:odds]: ${v}`);
    for (const c of commandList(m[1])) delays.push({ command: c, seconds: secs, odds });
  }
  const replies: CustomReply[] = [];
  for (const v of s.all("reply")) {
    const m = /^([^=:]+)(?::([^=]*))?=(.*)$/.exec(v);
    if (!m) throw new OptionError(`bad --reply COMMAND[:MATCH]=REPLY: ${v}`);
    replies.push({ command: m[1].toUpperCase(), match: m[2] === undefined ? undefined : m[2].toLowerCase(), reply: replyArg(m[3], "--reply") });
  }
  const tlsCert = last("tls-cert");
  const tlsKey = last("tls-key");
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
  const hardReject = commandLists(s.all("hard-reject"));
  const softReject = commandLists(s.all("soft-reject"));
  return {
    listen,
    backlog,
    family: has("ipv4") ? 4 : has("ipv6") ? 6 : 0,
    no8bitmime: has("no-8bitmime"),
    noAuth: has("no-auth"),
    abortDelay: secondsValue(last("abort-delay"), "abort delay", true),
    softReply: replyArg(last("soft-reply") ?? "450 4.3.0 Error: command failed", "soft reply"),
    hardReply: replyArg(last("hard-reply") ?? "500 5.3.0 Error: command failed", "hard reply"),
    counters: has("counters"),
    noXclient: has("no-xclient"),
    dumpTemplate: last("dump"),
    appendTemplate: last("dump-append"),
    noEsmtp: has("no-esmtp") || has("pix"),
    noEnhancedCodes: has("no-enhancedstatuscodes"),
    hardReject,
    noXforward: has("no-xforward"),
    hostname: last("hostname") ?? "smtp-sink",
    readDelay: secondsValue(last("read-delay"), "read delay", true),
    lmtp: has("lmtp"),
    maxConnections,
    exitAfterMessages,
    exitAfterSessions,
    noDsn: has("no-dsn"),
    // Rejecting commands makes pipelined clients unpredictable: Postfix's -f/-r imply -p.
    noPipelining: has("no-pipelining") || hardReject.size > 0 || softReject.size > 0,
    pixBanner: has("pix"),
    disconnect: commandLists(s.all("disconnect")),
    disconnect421: commandLists(s.all("disconnect-421")),
    softReject,
    chroot: last("chroot"),
    log: commandLists(s.all("log")),
    dumpPrefix: last("dump-prefix") === undefined ? undefined : unescapeC(last("dump-prefix")!),
    timeout,
    windowSize,
    user: last("user"),
    verbose: s.count("verbose"),
    dataDelay: secondsValue(last("data-delay"), "delay", true),
    delays,
    replies,
    tlsCert,
    tlsKey,
    summary: s.flag("summary") !== false,
  };
}
