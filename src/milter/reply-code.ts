/**
 * SMTP reply text carried by SMFIR_REPLYCODE ('y'): build, escape, parse and
 * validate, and check a reply code against the status it goes with.
 *
 * Wire format (docs/protocol.md §3.2): `550 5.7.1 text`, multi-line as
 * `450-4.7.1 one\r\n450-4.7.1 two\r\n450 4.7.1 three` (CRLF between lines,
 * none at the end). A literal `%` must be written `%%` (Sendmail treats the
 * text as a printf format, Postfix drops a lone `%`).
 */

/** Longest line (code, separator and text, without CRLF) libmilter accepts. */
export const MAX_REPLY_LINE = 980;
/** Most lines libmilter accepts in one reply. */
export const MAX_REPLY_LINES = 32;

/** A parsed or to-be-built SMTP reply. */
export interface SmtpReply {
  /** Three-digit reply code, 4xx or 5xx. */
  code: number;
  /** Enhanced status code of the first line (`5.7.1`), if any; its class equals the code's first digit. */
  enhanced?: string;
  /** Text of each line without code, separator and enhanced code; `%` not escaped. */
  lines: string[];
}

export class ReplyTextError extends Error {
  override readonly name = "ReplyTextError";
}

/** Result of parseReplyText: the reply, or the first rule it breaks. */
export type ReplyTextResult = { ok: true; reply: SmtpReply } | { ok: false; error: string };

/** Double every `%` so MTAs show it literally. */
export function escapePercent(text: string): string {
  return text.replaceAll("%", "%%");
}

/** Turn `%%` back into `%` (the inverse of escapePercent). */
export function unescapePercent(text: string): string {
  return text.replaceAll("%%", "%");
}

const ENHANCED = /^([245])\.(\d{1,3})\.(\d{1,3})$/;
const LINE = /^([45]\d\d)([ -])(.*)$/s;
const LEADING_ENHANCED = /^([245]\.\d{1,3}\.\d{1,3})(?: |$)/;

/**
 * Build the text of a `y` reply. `lines` may be one string or several lines;
 * `%` is escaped unless `escape: false` (then the text must already be
 * escaped). Throws ReplyTextError if the result would break a rule of
 * parseReplyText (code not 4xx/5xx, enhanced class ≠ reply class, CR/LF/NUL in
 * a line, more than 32 lines, a line over 980 characters).
 */
export function buildReplyText(
  reply: { code: number; enhanced?: string; lines: string | readonly string[] },
  options: { escape?: boolean } = {},
): string {
  const { code, enhanced } = reply;
  if (!Number.isInteger(code) || code < 400 || code > 599) {
    throw new ReplyTextError(`reply code ${code} is not a 4xx or 5xx code`);
  }
  if (enhanced !== undefined) {
    const m = ENHANCED.exec(enhanced);
    if (!m) throw new ReplyTextError(`enhanced status code ${JSON.stringify(enhanced)} is not of the form X.Y.Z`);
    if (Number(m[1]) !== Math.floor(code / 100)) {
      throw new ReplyTextError(`enhanced status code ${enhanced} does not match reply code ${code}`);
    }
  }
  const lines = typeof reply.lines === "string" ? [reply.lines] : [...reply.lines];
  if (lines.length === 0) lines.push("");
  lines.forEach((line, i) => {
    if (/[\r\n]/.test(line)) throw new ReplyTextError(`line ${i + 1} ${JSON.stringify(line)} contains CR or LF`);
  });
  const escape = options.escape ?? true;
  const text = lines
    .map((line, i) => {
      const sep = i === lines.length - 1 ? " " : "-";
      const body = escape ? escapePercent(line) : line;
      const rest = enhanced === undefined ? body : body === "" ? enhanced : `${enhanced} ${body}`;
      return `${code}${sep}${rest}`;
    })
    .join("\r\n");
  const check = parseReplyText(text);
  if (!check.ok) throw new ReplyTextError(check.error);
  return text;
}

/**
 * Parse and validate the text of a `y` reply. Rules: every line is
 * `[45]dd` + `-` (all but the last) or ` ` (the last) + text, all lines carry
 * the same code, lines are separated by CRLF with none at the end, no bare CR
 * or LF or NUL, at most 32 lines of at most 980 characters, an enhanced status
 * code (if present) has the reply's class, every `%` is doubled, latin1 only.
 */
export function parseReplyText(text: string): ReplyTextResult {
  const fail = (error: string): ReplyTextResult => ({ ok: false, error: `reply ${quoteText(text)}: ${error}` });
  if (text === "") return fail("empty");
  if (/[\0]/.test(text)) return fail("contains a NUL byte");
  if (/[\u0100-\uffff]/.test(text)) return fail("contains a character above U+00FF");
  const raw = text.split("\r\n");
  if (raw.length > 1 && raw[raw.length - 1] === "") return fail("ends with CRLF");
  if (raw.length > MAX_REPLY_LINES) return fail(`${raw.length} lines, at most ${MAX_REPLY_LINES} allowed`);
  let code = 0;
  let enhanced: string | undefined;
  const lines: string[] = [];
  for (let i = 0; i < raw.length; i++) {
    const line = raw[i];
    const n = i + 1;
    if (/[\r\n]/.test(line)) return fail(`line ${n} contains a bare CR or LF`);
    if (line.length > MAX_REPLY_LINE) return fail(`line ${n} has ${line.length} characters, at most ${MAX_REPLY_LINE} allowed`);
    const m = LINE.exec(line);
    if (!m) return fail(`line ${n} does not start with a 4xx/5xx code followed by space or '-'`);
    const lineCode = Number(m[1]);
    if (i === 0) code = lineCode;
    else if (lineCode !== code) return fail(`line ${n} has code ${lineCode}, line 1 has ${code}`);
    const last = i === raw.length - 1;
    if (last && m[2] !== " ") return fail(`last line ${n} uses '-' instead of a space after the code`);
    if (!last && m[2] !== "-") return fail(`line ${n} uses a space instead of '-' before a continuation line`);
    let rest = m[3];
    const e = LEADING_ENHANCED.exec(rest);
    if (e) {
      if (Number(e[1][0]) !== Math.floor(code / 100)) {
        return fail(`enhanced status code ${e[1]} on line ${n} does not match reply code ${code}`);
      }
      if (i === 0) enhanced = e[1];
      rest = rest.slice(e[0].length);
    }
    const lone = lonePercent(rest);
    if (lone >= 0) return fail(`line ${n} has a lone '%' (write '%%' for a literal percent)`);
    lines.push(unescapePercent(rest));
  }
  const reply: SmtpReply = enhanced === undefined ? { code, lines } : { code, enhanced, lines };
  return { ok: true, reply };
}

/** Index of the first `%` not part of a `%%` pair, or -1. */
function lonePercent(s: string): number {
  for (let i = s.indexOf("%"); i >= 0; i = s.indexOf("%", i)) {
    if (s.charCodeAt(i + 1) !== 0x25) return i;
    i += 2;
  }
  return -1;
}

function quoteText(s: string): string {
  return JSON.stringify(s.length > 80 ? `${s.slice(0, 80)}…` : s);
}

/** Status a reply code stands for: 4xx → tempfail, 5xx → reject, other → undefined. */
export function replyCodeStatus(code: number): "tempfail" | "reject" | undefined {
  const cls = Math.floor(code / 100);
  return cls === 4 ? "tempfail" : cls === 5 ? "reject" : undefined;
}

/** 421: both MTAs send it and close the SMTP session (milter-manager's "shutdown"-like tempfail). */
export function isShutdownCode(code: number): boolean {
  return code === 421;
}

/**
 * Does a reply code fit the decision it is sent with? tempfail ↔ 4xx (421
 * included), reject ↔ 5xx, shutdown ↔ 421 only. libmilter sends a plain
 * `r`/`t` instead of a `y` that does not fit; do the same.
 */
export function replyCodeAgrees(code: number, status: "tempfail" | "reject" | "shutdown"): boolean {
  if (status === "shutdown") return isShutdownCode(code);
  return replyCodeStatus(code) === status;
}
