// The messages smtp-source sends, byte for byte as Postfix's smtp-source
// builds them (observed with Postfix 3.7.11). Pure: no I/O.

const CRLF = "\r\n";
export const END_OF_DATA = Buffer.from(".\r\n", "latin1");

/** Body without -l: four fixed lines (what Postfix's smtp-source sends). */
export function defaultBody(): Buffer {
  let s = "";
  for (let i = 1; i <= 4; i++) s += `La de da de da ${i}.\r\n`;
  return Buffer.from(s, "latin1");
}

/**
 * Body of -l LENGTH: lines of 80 bytes (78 characters + CRLF) while more than
 * 80 bytes remain, each starting with its line number modulo 10; the rest
 * (1..80 bytes) as one line of 'X' without a number.
 */
export function generatedBody(length: number): Buffer {
  if (!Number.isInteger(length) || length < 1) throw new RangeError(`bad message length: ${length}`);
  const full = Math.max(0, Math.ceil(length / 80) - 1);
  const rest = length - full * 80;
  const out = Buffer.alloc(full * 80 + rest + 2, 0x58 /* X */);
  for (let i = 0; i < full; i++) {
    out[i * 80] = 0x30 + ((i + 1) % 10);
    out[i * 80 + 78] = 13;
    out[i * 80 + 79] = 10;
  }
  out[out.length - 2] = 13;
  out[out.length - 1] = 10;
  return out;
}

/**
 * Message of -F FILE: every line gets CRLF (a CR before the LF of the file is
 * taken as part of the line ending, where Postfix would send CR CR LF), lines
 * starting with '.' are dot-stuffed, and an empty line follows the file (as
 * Postfix's smtp-source does).
 */
export function fileMessage(file: Uint8Array): Buffer {
  const text = Buffer.from(file.buffer, file.byteOffset, file.byteLength).toString("latin1");
  const lines = text.split("\n");
  if (lines.length > 0 && lines[lines.length - 1] === "") lines.pop();
  let out = "";
  for (let line of lines) {
    if (line.endsWith("\r")) line = line.slice(0, -1);
    out += (line.startsWith(".") ? "." : "") + line + CRLF;
  }
  return Buffer.from(out + CRLF, "latin1");
}

const DAYS = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
const p2 = (n: number) => (n < 10 ? "0" : "") + n;

/** RFC 5322 date in UTC, e.g. "Sun, 22 Nov 2026 04:27:18 +0000 (UTC)". */
export function rfc5322Date(d: Date): string {
  return `${DAYS[d.getUTCDay()]}, ${d.getUTCDate()} ${MONTHS[d.getUTCMonth()]} ${d.getUTCFullYear()} ` +
    `${p2(d.getUTCHours())}:${p2(d.getUTCMinutes())}:${p2(d.getUTCSeconds())} +0000 (UTC)`;
}

/** The Date header changes once a second; cache it. */
let dateSecond = -1;
let dateText = "";
export function currentDate(nowMs = Date.now()): string {
  const sec = Math.floor(nowMs / 1000);
  if (sec !== dateSecond) {
    dateSecond = sec;
    dateText = rfc5322Date(new Date(sec * 1000));
  }
  return dateText;
}

const hex4 = (n: number) => (n >>> 0).toString(16).padStart(4, "0");

export interface HeaderFields {
  from: string;
  to: string;
  myhostname: string;
  subject?: string;
  pid: number;
  session: number;
  message: number;
  date: string;
}

/** The generated header block including the empty line that ends it. */
export function generatedHeaders(h: HeaderFields): string {
  return headerTemplate(h)(h.date, h.message);
}

/**
 * The header block of one session with only the date and the message number
 * left open: everything else is formatted once, not for every message.
 */
export function headerTemplate(h: Omit<HeaderFields, "date" | "message">): (date: string, message: number) => string {
  const head = `From: <${h.from}>\r\nTo: <${h.to}>\r\nDate: `;
  const id = `\r\nMessage-Id: <${hex4(h.pid)}.${hex4(h.session)}.`;
  const tail = `@${h.myhostname}>\r\n` + (h.subject === undefined ? "" : `Subject: ${h.subject}\r\n`) + CRLF;
  return (date, message) => head + date + id + hex4(message) + tail;
}

/**
 * Recipients of one transaction. Without -N: `count` down to 1, the number
 * prefixed except for the last ("2x@y", "x@y"). With -N every recipient gets
 * the next number of a counter that runs across all messages.
 */
export function recipients(to: string, count: number, numbered: boolean, next: () => number): string[] {
  const out = new Array<string>(count);
  for (let i = 0; i < count; i++) {
    if (numbered) out[i] = `${next()}${to}`;
    else out[i] = count - i > 1 ? `${count - i}${to}` : to;
  }
  return out;
}

/**
 * One session's DATA content: [headers][body ".\r\n"][tail], built in a
 * buffer that holds the body once, so a message costs no copy of the body.
 * The returned view stays valid until the next build() on this builder.
 */
export class ContentBuilder {
  private buf: Buffer;
  private readonly bodyStart: number;
  private readonly bodyEnd: number;

  constructor(body: Uint8Array, headerRoom = 512, tailRoom = 512) {
    this.bodyStart = headerRoom;
    this.bodyEnd = headerRoom + body.length + END_OF_DATA.length;
    this.buf = Buffer.allocUnsafe(this.bodyEnd + tailRoom);
    this.buf.set(body, this.bodyStart);
    this.buf.set(END_OF_DATA, this.bodyEnd - END_OF_DATA.length);
  }

  /** Content plus end-of-data, preceded by `headers` and followed by `tail` (commands pipelined after it). */
  build(headers: string, tail?: Uint8Array): Uint8Array {
    const tailLen = tail ? tail.length : 0;
    if (headers.length > this.bodyStart || this.bodyEnd + tailLen > this.buf.length) {
      const body = this.buf.subarray(this.bodyStart, this.bodyEnd);
      return Buffer.concat(tail ? [Buffer.from(headers, "latin1"), body, tail] : [Buffer.from(headers, "latin1"), body]);
    }
    const start = this.bodyStart - headers.length;
    if (headers.length) this.buf.write(headers, start, headers.length, "latin1");
    if (tail) this.buf.set(tail, this.bodyEnd);
    return this.buf.subarray(start, this.bodyEnd + tailLen);
  }
}
