// smtp-source's command line (listed in src/cli/options/smtp-source.ts): Postfix's letters
// and defaults plus milterkit's long options. Pure: argv in, typed options (or an OptionError) out.
import { hostname } from "node:os";
import { type Scanned, scanOr } from "../cli/options/scan.ts";
import { SMTP_SOURCE_TABLE } from "../cli/options/smtp-source.ts";
import { countValue, OptionError, secondsValue } from "./values.ts";
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

export const SOURCE_USAGE =
  "usage: smtp-source -cdLNovP -s sess -l msglen -m msgs -C count -M myhostname -f from -t to " +
  "-r rcptcount -R delay -w delay [inet:]host[:port] | unix:pathname";

export function parseSourceArgs(argv: string[], defaultHostname = hostname()): SourceOptions {
  const scanned = scanOr(SMTP_SOURCE_TABLE, argv, (m) => new OptionError(m));
  return sourceOptions(scanned, defaultHostname);
}

/** The scanned command line as smtp-source's options. Throws OptionError. */
export function sourceOptions(s: Scanned, defaultHostname = hostname()): SourceOptions {
  const has = (k: string) => s.count(k) > 0;
  const last = (k: string) => s.last(k);
  // Postfix checks the values first, then the operand.
  const sessions = countValue(last("sessions"), "session count") ?? 1;
  const messages = countValue(last("messages"), "message count") ?? 1;
  const length = countValue(last("length"), "message length");
  const recipients = countValue(last("recipients"), "recipient count") ?? 1;
  const connectAttempts = countValue(last("connect-attempts"), "connection count") ?? 1;
  const randomDelay = secondsValue(last("random-delay"), "random delay");
  const fixedDelay = secondsValue(last("delay"), "fixed delay");
  const windowSize = countValue(last("window-size"), "TCP window size", 1, 65535);
  const timeout = secondsValue(last("timeout"), "timeout") ?? 300;
  if (has("ipv4") && has("ipv6")) throw new OptionError("-4 and -6 exclude each other");
  if (s.operands.length !== 1) throw new OptionError(SOURCE_USAGE);
  let target: Target;
  try {
    target = parseTarget(s.operands[0]);
  } catch (e) {
    if (e instanceof AddressError) throw new OptionError(e.message);
    throw e;
  }
  const myhostname = last("myhostname") ?? defaultHostname;
  const dflt = `foo@${myhostname}`;
  return {
    target,
    family: has("ipv4") ? 4 : has("ipv6") ? 6 : 0,
    keepGoing: has("ignore-errors"),
    counter: has("counter"),
    connectAttempts,
    reuse: has("reuse"),
    from: last("from") ?? dflt,
    to: last("to") ?? dflt,
    file: last("file"),
    length,
    lmtp: has("lmtp"),
    messages,
    myhostname,
    numbered: has("numbered"),
    old: has("old"),
    recipients,
    randomDelay,
    sessions,
    subject: last("subject"),
    windowSize,
    verbose: s.count("verbose"),
    fixedDelay,
    pipelining: has("pipelining"),
    starttls: has("starttls"),
    json: has("json"),
    summary: s.flag("summary") !== false,
    progress: s.flag("progress"),
    timeout,
  };
}
