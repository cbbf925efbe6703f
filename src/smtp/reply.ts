// SMTP replies (RFC 5321 §4.2): "ddd-text" continuation lines, then "ddd text".
// Pure: fed with latin1 text in arbitrary chunks, yields whole replies.

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

export class ReplyParser {
  private partial = "";
  private lines: string[] = [];

  /** Append `text` and call `onReply` for every reply completed by it. */
  push(text: string, onReply: (r: Reply) => void): void {
    let s = this.partial === "" ? text : this.partial + text;
    let start = 0;
    for (;;) {
      const nl = s.indexOf("\n", start);
      if (nl < 0) break;
      const end = nl > start && s.charCodeAt(nl - 1) === 13 ? nl - 1 : nl;
      const line = s.slice(start, end);
      start = nl + 1;
      const c0 = line.charCodeAt(0) - 48, c1 = line.charCodeAt(1) - 48, c2 = line.charCodeAt(2) - 48;
      if (!(c0 >= 0 && c0 <= 9 && c1 >= 0 && c1 <= 9 && c2 >= 0 && c2 <= 9)) throw new ReplySyntaxError(line);
      const sep = line.length > 3 ? line.charCodeAt(3) : 32;
      this.lines.push(line);
      if (sep !== 45 /* '-' */) {
        const lines = this.lines;
        this.lines = [];
        onReply({ code: c0 * 100 + c1 * 10 + c2, lines });
      }
    }
    s = start === 0 ? s : s.slice(start);
    if (s.length > MAX_LINE) throw new ReplySyntaxError(s);
    this.partial = s;
  }
}
