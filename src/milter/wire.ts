/**
 * Field-level readers and writers shared by the command and reply codecs
 * (internal). Readers validate strictly and throw MilterProtocolError
 * "malformed" naming the packet, the field and the data; writers refuse values
 * that would corrupt the framing (NUL inside a string, characters above U+00FF,
 * integers out of range).
 */
import { hexPreview, isCstrSafe, quote, readLatin1, writeLatin1, writeU32 } from "./bytes.ts";
import { MILTER_LEN_BYTES } from "./constants.ts";
import { MilterProtocolError } from "./errors.ts";

/**
 * Names a packet for messages (`commandName` or `replyName`: code →
 * `SMFIC_HELO ('H')`); called only when an error is thrown, so the success
 * path builds no strings.
 */
export type PacketLabel = (code: number) => string;

export function malformed(label: PacketLabel, code: number, problem: string, data?: Uint8Array): never {
  const tail = data === undefined ? "" : `; data ${hexPreview(data)}`;
  throw new MilterProtocolError("malformed", `${label(code)}: ${problem}${tail}`, code);
}

/** Throw unless the packet carries no data. */
export function expectEmpty(p: Buffer, label: PacketLabel, code: number): void {
  if (p.length !== 0) malformed(label, code, `unexpected ${p.length} data byte(s) after a packet without data`, p);
}

/**
 * Read exactly one NUL-terminated string starting at `from` that must end the
 * packet. `field` names it in messages.
 */
export function onlyCstr(p: Buffer, from: number, label: PacketLabel, code: number, field: string): string {
  const last = p.length - 1;
  if (last < from) malformed(label, code, `missing ${field}`, p);
  const nul = p.indexOf(0, from);
  if (nul < 0) malformed(label, code, `${field} is not NUL-terminated`, p);
  if (nul !== last) malformed(label, code, `${last - nul} trailing byte(s) after ${field}`, p);
  return readLatin1(p, from, nul);
}

/**
 * Read NUL-terminated strings from `from` to the end of the packet (every one
 * terminated). Returns them in order; an empty range gives [].
 */
export function cstrList(p: Buffer, from: number, label: PacketLabel, code: number, field: string): string[] {
  const out: string[] = [];
  if (from >= p.length) return out;
  if (p[p.length - 1] !== 0) malformed(label, code, `last ${field} is not NUL-terminated`, p);
  let pos = from;
  while (pos < p.length) {
    const nul = p.indexOf(0, pos);
    out.push(readLatin1(p, pos, nul));
    pos = nul + 1;
  }
  return out;
}

/** Copy a byte range out of a (possibly reader-owned) payload. */
export function copyBytes(p: Buffer, from = 0): Buffer {
  return Buffer.from(from === 0 ? p : p.subarray(from));
}

// ---------------------------------------------------------------------------
// Writing

/** Check a string for a NUL-terminated field; returns its byte length + 1 (the NUL). */
export function cstrSize(s: string, label: PacketLabel, code: number, field: string): number {
  if (typeof s !== "string") malformed(label, code, `cannot encode: ${field} is not a string`);
  if (!isCstrSafe(s)) {
    malformed(label, code, `cannot encode: ${field} ${quote(s)} contains a NUL byte or a character above U+00FF`);
  }
  return s.length + 1;
}

/** Write a string (already checked with cstrSize) and its NUL; returns the new offset. */
export function putCstr(buf: Buffer, off: number, s: string): number {
  off = writeLatin1(buf, off, s);
  buf[off] = 0;
  return off + 1;
}

export function checkU32(v: number, label: PacketLabel, code: number, field: string): void {
  if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) malformed(label, code, `cannot encode: ${field} ${v} is not a u32`);
}

export function checkBytes(b: Uint8Array, label: PacketLabel, code: number, field: string): void {
  if (!(b instanceof Uint8Array)) malformed(label, code, `cannot encode: ${field} is not a Uint8Array`);
}

/** Write the length word and code of a packet whose data ends at `end`; `start` is where the packet begins. */
export function closePacket(buf: Buffer, start: number, code: number, end: number): number {
  writeU32(buf, start, end - start - MILTER_LEN_BYTES);
  buf[start + MILTER_LEN_BYTES] = code;
  return end;
}

/** Copy raw bytes into the packet; returns the new offset. */
export function putBytes(buf: Buffer, off: number, b: Uint8Array): number {
  buf.set(b, off);
  return off + b.length;
}


/** One codec's view of its values, for encodeBatch. */
export interface PacketCodec<T> {
  code(value: T): number;
  label: PacketLabel;
  /** Data bytes of the value's packet; validates the value. */
  dataSize(value: T): number;
  /** Write the whole packet at `off`, return the offset after it. */
  write(buf: Buffer, off: number, value: T): number;
}

/**
 * Encode values into one exact-size Buffer (one allocation, so a protocol step
 * goes out in one socket write). Throws MilterProtocolError "oversize" if a
 * packet's data exceeds `maxDataSize`, and whatever the codec's checks throw.
 */
export function encodeBatch<T>(values: readonly T[], codec: PacketCodec<T>, maxDataSize: number): Buffer {
  let total = 0;
  for (const v of values) {
    const n = codec.dataSize(v);
    if (n > maxDataSize) {
      const code = codec.code(v);
      throw new MilterProtocolError("oversize", `${codec.label(code)}: cannot encode ${n} data bytes, the maximum data size is ${maxDataSize}`, code);
    }
    total += MILTER_LEN_BYTES + 1 + n;
  }
  const buf = Buffer.allocUnsafe(total);
  let off = 0;
  for (const v of values) off = codec.write(buf, off, v);
  return buf;
}
