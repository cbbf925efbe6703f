// SMTP replies (RFC 5321 §4.2): "ddd-text" continuation lines, then "ddd text".
// Pure: fed with bytes in arbitrary chunks, yields whole replies.

export interface Reply {
  code: number;
  /** Every line of the reply without its line ending, e.g. ["250-smtp-sink", "250 PIPELINING"]. */
  readonly lines: string[];
}

export class ReplySyntaxError extends Error {
  constructor(public readonly line: string) {
    super(`malformed SMTP reply line: ${JSON.stringify(line.slice(0, 200))}`);
    this.name = "ReplySyntaxError";
  }
}

const MAX_REPLY = 64 * 1024;
const LF = 10, CR = 13, DASH = 45, SPACE = 32;

/**
 * A reply as the parser makes it: its bytes, whose text becomes strings only
 * when asked for (a load run reads the code of nearly every reply and the
 * text of hardly any).
 */
class ParsedReply implements Reply {
  private text: string[] | undefined;
  /** `bytes[start, end)` holds every line of the reply, the last one without its line ending. */
  constructor(readonly code: number, readonly bytes: Buffer, readonly start: number, readonly end: number) {}

  get lines(): string[] {
    if (this.text) return this.text;
    const out: string[] = [];
    const b = this.bytes;
    let s = this.start;
    for (;;) {
      const nl = b.indexOf(LF, s);
      if (nl < 0 || nl >= this.end) break;
      out.push(b.toString("latin1", s, nl > s && b[nl - 1] === CR ? nl - 1 : nl));
      s = nl + 1;
    }
    out.push(b.toString("latin1", s, this.end));
    return (this.text = out);
  }

  toJSON(): { code: number; lines: string[] } {
    return { code: this.code, lines: this.lines };
  }
}

/** A reply as one line for messages: continuation lines joined with a space, like Postfix prints them. */
export function replyText(r: Reply): string {
  return r.lines.length === 1 ? r.lines[0] : r.lines.map((l, i) => (i === 0 ? l : l.slice(4))).join(" ");
}

/** ESMTP keywords of an EHLO/LHLO reply, upper case (the first line is the greeting). */
export function ehloKeywords(r: Reply): Set<string> {
  const out = new Set<string>();
  const lines = r.lines;
  for (let i = 1; i < lines.length; i++) {
    const l = lines[i];
    let a = 4;
    while (a < l.length && l.charCodeAt(a) <= SPACE) a++;
    let b = a;
    while (b < l.length && l.charCodeAt(b) > SPACE) b++;
    if (b > a) out.add(l.slice(a, b).toUpperCase());
  }
  return out;
}

/**
 * Whether an EHLO/LHLO reply offers `keyword` (given in upper case), as
 * ehloKeywords(r).has(keyword) but on the reply's bytes: no string per line.
 */
export function ehloOffers(r: Reply, keyword: string): boolean {
  if (!(r instanceof ParsedReply)) return ehloKeywords(r).has(keyword);
  const b = r.bytes;
  const n = keyword.length;
  let s = b.indexOf(LF, r.start); // the first line is the greeting
  while (s >= 0 && s < r.end) {
    let a = s + 5; // after the LF and "ddd-"
    let e = b.indexOf(LF, s + 1);
    if (e < 0 || e > r.end) e = r.end;
    const lineEnd = e < r.end && b[e - 1] === CR ? e - 1 : e;
    while (a < lineEnd && b[a] <= SPACE) a++;
    if (lineEnd - a >= n && (lineEnd - a === n || b[a + n] <= SPACE)) {
      let i = 0;
      // Compared case-blind: a-z folded to A-Z.
      while (i < n && (b[a + i] >= 97 && b[a + i] <= 122 ? b[a + i] - 32 : b[a + i]) === keyword.charCodeAt(i)) i++;
      if (i === n) return true;
    }
    s = e < r.end ? e : -1;
  }
  return false;
}

/**
 * Replies from the bytes as they arrive. Works on the bytes themselves: a
 * reply keeps the chunk it came in and becomes text only when asked for.
 * Decoding each chunk to text first cost a load run more CPU than the rest
 * of the reply handling.
 */
export class ReplyParser {
  /** The bytes of a reply not yet complete (its whole lines so far and the start of the next). */
  private partial: Buffer | undefined;
  /** Where in `partial` the incomplete line starts: the lines before it are checked already. */
  private resume = 0;

  /**
   * Append `chunk` and call `onReply` for every reply completed by it. A
   * reply reads its text from `chunk` when asked, so the chunk must not
   * change afterwards (Bun gives every data event a buffer of its own).
   */
  push(chunk: Uint8Array | string, onReply: (r: Reply) => void): void {
    let b = chunk instanceof Buffer ? chunk : toBuffer(chunk);
    let start = 0; // where the line being parsed starts
    if (this.partial !== undefined) {
      b = Buffer.concat([this.partial, b]);
      start = this.resume;
      this.partial = undefined;
    }
    let first = 0; // where the reply being parsed starts
    for (;;) {
      const nl = b.indexOf(LF, start);
      if (nl < 0) break;
      const end = nl > start && b[nl - 1] === CR ? nl - 1 : nl;
      const c0 = b[start] - 48, c1 = b[start + 1] - 48, c2 = b[start + 2] - 48;
      if (!(end - start >= 3 && c0 >= 0 && c0 <= 9 && c1 >= 0 && c1 <= 9 && c2 >= 0 && c2 <= 9)) {
        throw new ReplySyntaxError(b.toString("latin1", start, end));
      }
      const last = end - start === 3 || b[start + 3] !== DASH;
      start = nl + 1;
      if (last) {
        onReply(new ParsedReply(c0 * 100 + c1 * 10 + c2, b, first, end));
        first = start;
      }
    }
    const rest = b.length - first;
    if (rest > MAX_REPLY) throw new ReplySyntaxError(b.toString("latin1", first, first + 200));
    // Keep a copy: the caller may reuse its buffer.
    if (rest > 0) {
      this.partial = Buffer.from(b.subarray(first));
      this.resume = start - first;
    }
  }
}

function toBuffer(chunk: Uint8Array | string): Buffer {
  return typeof chunk === "string" ? Buffer.from(chunk, "latin1") : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
}
