/**
 * Text for one log line. A log entry is one line whatever it carries: line
 * breaks, tabs and other control characters are written as escapes (`\n`,
 * `\t`, `\x1b`), so a folded header value or a multi-line error stays on its
 * line and a reader can still see what was there. Text from the wire
 * (latin1 strings: one char per byte) is shown as UTF-8 when its bytes are
 * UTF-8 and byte by byte (`\xe9`) otherwise, never re-encoded.
 */

const CONTROL = /[\x00-\x1f\x7f\u0085\u2028\u2029]/;
const CONTROLS = /[\x00-\x1f\x7f\u0085\u2028\u2029]/g;
const NAMED: Record<string, string> = { "\n": "\\n", "\r": "\\r", "\t": "\\t" };

function escapeOne(c: string): string {
  const code = c.charCodeAt(0);
  return NAMED[c] ?? (code <= 0xff ? `\\x${code.toString(16).padStart(2, "0")}` : `\\u${code.toString(16).padStart(4, "0")}`);
}

/** `text` with its control characters escaped: it fits on one line. */
export function oneLine(text: string): string {
  return CONTROL.test(text) ? text.replace(CONTROLS, escapeOne) : text;
}

const utf8 = new TextDecoder("utf-8", { fatal: true });
const HIGH = /[\x80-\xff]/;
const HIGH_BYTES = /[\x80-\xff]/g;

/**
 * Bytes from the wire (a latin1 string) for a log line: ASCII as is; bytes that form UTF-8 as
 * that text; any other byte as `\xNN`. Control characters are left for oneLine().
 */
export function wireText(bytes: string): string {
  if (!HIGH.test(bytes)) return bytes;
  try {
    return utf8.decode(Buffer.from(bytes, "latin1"));
  } catch {
    return bytes.replace(HIGH_BYTES, (c) => `\\x${c.charCodeAt(0).toString(16)}`);
  }
}
