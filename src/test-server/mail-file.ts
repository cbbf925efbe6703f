/**
 * Reading an RFC 5322 message file for `--mail-file` (pure, bytes in):
 * - a leading mbox `From ` line is skipped;
 * - header fields end at the first empty line (CRLF or LF line ends);
 *   folded continuation lines stay in the value, joined with LF as on the
 *   milter wire;
 * - `From:` gives the envelope sender, each `To:` one recipient (the address
 *   inside `<…>`, else the whole value), as the original does (`Cc:` unused);
 * - the body is cut at line boundaries into chunks of at most 65535 bytes,
 *   line ends kept as in the file.
 */
import { MILTER_CHUNK_SIZE } from "../milter/index.ts";

/** A header field: its name and the raw text after the colon (`" value"` for `Name: value`), folds as LF. */
export interface HeaderField {
  name: string;
  raw: string;
}

export interface MailFile {
  from?: string;
  recipients: string[];
  headers: HeaderField[];
  bodyChunks: Uint8Array[];
}

/** The address of a From:/To: value: inside `<…>` if present, else the trimmed value. */
export function extractAddress(value: string): string {
  const m = /<([^<>]*)>/.exec(value);
  return (m ? m[1] : value).trim();
}

export function parseMailFile(bytes: Uint8Array, chunkSize = MILTER_CHUNK_SIZE): MailFile {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let pos = 0;
  if (buf.subarray(0, 5).toString("latin1") === "From ") pos = lineEnd(buf, 0);
  const headers: HeaderField[] = [];
  while (pos < buf.length) {
    const end = lineEnd(buf, pos);
    const line = stripEol(buf.toString("latin1", pos, end));
    if (line === "") {
      pos = end;
      break;
    }
    const first = line.charCodeAt(0);
    if ((first === 0x20 || first === 0x09) && headers.length > 0) {
      headers[headers.length - 1].raw += `\n${line}`;
    } else {
      const colon = line.indexOf(":");
      if (colon <= 0) break; // not a header field: the body starts here
      headers.push({ name: line.slice(0, colon), raw: line.slice(colon + 1) });
    }
    pos = end;
  }
  let from: string | undefined;
  const recipients: string[] = [];
  for (const h of headers) {
    const n = h.name.toLowerCase();
    if (n === "from") from = extractAddress(h.raw.replace(/\n/g, " "));
    else if (n === "to") recipients.push(extractAddress(h.raw.replace(/\n/g, " ")));
  }
  return { from, recipients, headers, bodyChunks: splitLines(buf.subarray(pos), chunkSize) };
}

/** Index after the LF ending the line that starts at `pos` (or the end of the buffer). */
function lineEnd(buf: Buffer, pos: number): number {
  const lf = buf.indexOf(0x0a, pos);
  return lf < 0 ? buf.length : lf + 1;
}

function stripEol(s: string): string {
  return s.replace(/\r?\n$/, "");
}

/** Chunks of at most `max` bytes ending at line boundaries (a longer line is cut). Views, no copy. */
export function splitLines(body: Uint8Array, max: number): Uint8Array[] {
  const buf = Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  const out: Uint8Array[] = [];
  let start = 0;
  while (start < buf.length) {
    if (buf.length - start <= max) {
      out.push(buf.subarray(start));
      break;
    }
    // The last LF within the allowed size ends the chunk.
    const lf = buf.lastIndexOf(0x0a, start + max - 1);
    const end = lf >= start ? lf + 1 : start + max;
    out.push(buf.subarray(start, end));
    start = end;
  }
  return out;
}
