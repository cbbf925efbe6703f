// smtp-source's command line: Postfix's letters and defaults plus milterkit's
// long options. Pure: argv in, typed options (or an OptionError) out.
import { hostname } from "node:os";
import { getopt, interval, last, negated, OptionError, type OptDef, positiveInt } from "./getopt.ts";
import { AddressError, parseTarget, type Target } from "./target.ts";

export interface SourceOptions {
  target: Target;
  /** 4 or 6 to restrict the address family, 0 for either. */
  family: 0 | 4 | 6;
  /** -A: an unexpected reply is a warning, not the end of the run. */
  keepGoing: boolean;
  /** -c: running counter on stdout. */
  counter: boolean;
  /** -C: connection attempts when the server answers with a reset. */
  connectAttempts: number;
  /** -d: send the next message over the same connection. */
  reuse: boolean;
  from: string;
  to: string;
  /** -F: a prepared message instead of the generated one. */
  file?: string;
  /** -l: generated payload size; undefined = Postfix's four default lines. */
  length?: number;
  lmtp: boolean;
  messages: number;
  myhostname: string;
  /** -N: number recipients with a counter that never repeats. */
  numbered: boolean;
  /** -o: no HELO and no headers. */
  old: boolean;
  recipients: number;
  /** -R: random wait of 0..randomDelay seconds after each message of a session. */
  randomDelay?: number;
  sessions: number;
  subject?: string;
  /** -T: accepted for compatibility; Bun cannot set the socket receive buffer. */
  windowSize?: number;
  verbose: number;
  /** -w: fixed wait in seconds after each message of a session. */
  fixedDelay?: number;
  /** -P: ESMTP PIPELINING when the server offers it. */
  pipelining: boolean;
  starttls: boolean;
  json: boolean;
  summary: boolean;
  /** undefined = automatic (on when stderr is a terminal). */
  progress?: boolean;
  /** Seconds any single wait (connect, reply) may take. */
  timeout: number;
}

export const SOURCE_OPTIONS: OptDef[] = [
  { key: "ipv4", short: "4", long: "ipv4", takesValue: false },
  { key: "ipv6", short: "6", long: "ipv6", takesValue: false },
  { key: "keepGoing", short: "A", long: "ignore-errors", takesValue: false },
  { key: "counter", short: "c", long: "counter", takesValue: false },
  { key: "connectAttempts", short: "C", long: "connect-attempts", takesValue: true },
  { key: "reuse", short: "d", long: "reuse", takesValue: false },
  { key: "from", short: "f", long: "from", takesValue: true },
  { key: "file", short: "F", long: "file", takesValue: true },
  { key: "length", short: "l", long: "length", takesValue: true },
  { key: "lmtp", short: "L", long: "lmtp", takesValue: false },
  { key: "messages", short: "m", long: "messages", takesValue: true },
  { key: "myhostname", short: "M", long: "myhostname", takesValue: true },
  { key: "numbered", short: "N", long: "numbered", takesValue: false },
  { key: "old", short: "o", long: "old", takesValue: false },
  { key: "recipients", short: "r", long: "recipients", takesValue: true },
  { key: "randomDelay", short: "R", long: "random-delay", takesValue: true },
  { key: "sessions", short: "s", long: "sessions", takesValue: true },
  { key: "subject", short: "S", long: "subject", takesValue: true },
  { key: "to", short: "t", long: "to", takesValue: true },
  { key: "windowSize", short: "T", long: "window-size", takesValue: true },
  { key: "verbose", short: "v", long: "verbose", takesValue: false },
  { key: "fixedDelay", short: "w", long: "delay", takesValue: true },
  { key: "pipelining", short: "P", long: "pipelining", takesValue: false },
  { key: "starttls", long: "starttls", takesValue: false },
  { key: "json", long: "json", takesValue: false },
  { key: "summary", long: "summary", takesValue: false },
  { key: "progress", long: "progress", takesValue: false },
  { key: "timeout", long: "timeout", takesValue: true },
];

export const SOURCE_USAGE =
  "usage: smtp-source -cdLNovP -s sess -l msglen -m msgs -C count -M myhostname -f from -t to " +
  "-r rcptcount -R delay -w delay [inet:]host[:port] | unix:pathname";

function count(s: ReturnType<typeof getopt>, key: string, what: string, dflt: number, min = 1, max?: number): number {
  const text = last(s, key);
  if (text === undefined) return dflt;
  const n = positiveInt(text, min, max);
  if (n === undefined) throw new OptionError(`bad ${what}: ${text}`);
  return n;
}

function delay(s: ReturnType<typeof getopt>, key: string, what: string): number | undefined {
  const text = last(s, key);
  if (text === undefined) return undefined;
  const n = interval(text);
  if (n === undefined) throw new OptionError(`bad ${what}: ${text}`);
  return n;
}

export function parseSourceArgs(argv: string[], defaultHostname = hostname()): SourceOptions {
  const s = getopt(argv, SOURCE_OPTIONS);
  const has = (k: string) => (s.flags.get(k) ?? 0) > 0;
  // Postfix checks the values first, then the operand.
  const sessions = count(s, "sessions", "session count", 1);
  const messages = count(s, "messages", "message count", 1);
  const lengthText = last(s, "length");
  let length: number | undefined;
  if (lengthText !== undefined) {
    length = positiveInt(lengthText);
    if (length === undefined) throw new OptionError(`bad message length: ${lengthText}`);
  }
  const recipients = count(s, "recipients", "recipient count", 1);
  const connectAttempts = count(s, "connectAttempts", "connection count", 1);
  const randomDelay = delay(s, "randomDelay", "random delay");
  const fixedDelay = delay(s, "fixedDelay", "fixed delay");
  const wsText = last(s, "windowSize");
  let windowSize: number | undefined;
  if (wsText !== undefined) {
    windowSize = positiveInt(wsText, 1, 65535);
    if (windowSize === undefined) throw new OptionError(`bad TCP window size: ${wsText}`);
  }
  const timeoutText = last(s, "timeout");
  let timeout = 300;
  if (timeoutText !== undefined) {
    const t = interval(timeoutText);
    if (t === undefined) throw new OptionError(`bad timeout: ${timeoutText}`);
    timeout = t;
  }
  if (has("ipv4") && has("ipv6")) throw new OptionError("-4 and -6 exclude each other");
  if (s.operands.length !== 1) throw new OptionError(SOURCE_USAGE);
  let target: Target;
  try {
    target = parseTarget(s.operands[0]);
  } catch (e) {
    if (e instanceof AddressError) throw new OptionError(e.message);
    throw e;
  }
  const myhostname = last(s, "myhostname") ?? defaultHostname;
  const dflt = `foo@${myhostname}`;
  return {
    target,
    family: has("ipv4") ? 4 : has("ipv6") ? 6 : 0,
    keepGoing: has("keepGoing"),
    counter: has("counter"),
    connectAttempts,
    reuse: has("reuse"),
    from: last(s, "from") ?? dflt,
    to: last(s, "to") ?? dflt,
    file: last(s, "file"),
    length,
    lmtp: has("lmtp"),
    messages,
    myhostname,
    numbered: has("numbered"),
    old: has("old"),
    recipients,
    randomDelay,
    sessions,
    subject: last(s, "subject"),
    windowSize,
    verbose: s.flags.get("verbose") ?? 0,
    fixedDelay,
    pipelining: has("pipelining"),
    starttls: has("starttls"),
    json: has("json"),
    summary: !negated(s, "summary"),
    progress: negated(s, "progress") ? false : has("progress") ? true : undefined,
    timeout,
  };
}
