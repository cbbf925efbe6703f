// SMTP replies (RFC 5321 §4.2): "ddd-text" continuation lines, then "ddd text".
// Pure: fed with bytes in arbitrary chunks, yields whole replies.

export interface Reply {
  code: number;
  /** Every line of the reply without its line ending, e.g. ["250-smtp-sink", "250 PIPELINING"]. */
  lines: string[];
}

export class ReplySyntaxError extends Error {
  constructor(public readonly line: string) {
    super(`malformed SMTP reply line: ${JSON.stringify(line.slice(0, 200))}`);
    this.name = "ReplySyntaxError";
  }
}

/** A reply as one line for messages: continuation lines joined with a space, like Postfix prints them. */
export function replyText(r: Reply): string {
  return r.lines.length === 1 ? r.lines[0] : r.lines.map((l, i) => (i === 0 ? l : l.slice(4))).join(" ");
}

/** ESMTP keywords of an EHLO/LHLO reply, upper case (the first line is the greeting). */
export function ehloKeywords(r: Reply): Set<string> {
  const out = new Set<string>();
  for (let i = 1; i < r.lines.length; i++) {
    const kw = r.lines[i].slice(4).trim().split(/\s+/)[0];
    if (kw) out.add(kw.toUpperCase());
  }
  return out;
}

const MAX_LINE = 64 * 1024;
const LF = 10, CR = 13, DASH = 45, SPACE = 32;
const EMPTY = Buffer.alloc(0);

/**
 * Replies from the bytes as they arrive. Works on the bytes themselves (a
 * line becomes a string only once it is whole): decoding each chunk to text
 * first cost a load run more CPU than the rest of the reply handling.
 */
export class ReplyParser {
  private partial: Buffer = EMPTY;
  private lines: string[] = [];

  /** Append `chunk` and call `onReply` for every reply completed by it. */
  push(chunk: Uint8Array | string, onReply: (r: Reply) => void): void {
    let b = typeof chunk === "string" ? Buffer.from(chunk, "latin1")
      : chunk instanceof Buffer ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    if (this.partial.length) b = Buffer.concat([this.partial, b]);
    let start = 0;
    for (;;) {
      const nl = b.indexOf(LF, start);
      if (nl < 0) break;
      const end = nl > start && b[nl - 1] === CR ? nl - 1 : nl;
      const c0 = b[start] - 48, c1 = b[start + 1] - 48, c2 = b[start + 2] - 48;
      if (!(end - start >= 3 && c0 >= 0 && c0 <= 9 && c1 >= 0 && c1 <= 9 && c2 >= 0 && c2 <= 9)) {
        throw new ReplySyntaxError(b.toString("latin1", start, end));
      }
      const sep = end - start > 3 ? b[start + 3] : SPACE;
      this.lines.push(b.toString("latin1", start, end));
      start = nl + 1;
      if (sep !== DASH) {
        const lines = this.lines;
        this.lines = [];
        onReply({ code: c0 * 100 + c1 * 10 + c2, lines });
      }
    }
    const rest = b.length - start;
    if (rest > MAX_LINE) throw new ReplySyntaxError(b.toString("latin1", start, start + 200));
    // Keep a copy: the caller may reuse its buffer.
    this.partial = rest === 0 ? EMPTY : Buffer.from(b.subarray(start));
  }
}
