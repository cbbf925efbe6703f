/**
 * Byte helpers shared by the codec: 8-bit-safe strings (latin1: byte N ↔
 * U+00NN, never TextDecoder, see docs/bun.md §8), big-endian integers and a
 * hex preview for error messages.
 */

/** Node/Bun Buffer methods that exist at run time but are missing from the typings. */
interface Latin1Buffer extends Buffer {
  latin1Slice(start: number, end: number): string;
  latin1Write(s: string, offset: number): number;
}

/** View a Uint8Array as a Buffer without copying (Buffers are returned as they are). */
export function asBuffer(bytes: Uint8Array): Buffer {
  return bytes instanceof Buffer ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** Bytes [start, end) as a string, one code point per byte. */
export function readLatin1(buf: Buffer, start: number, end: number): string {
  return (buf as Latin1Buffer).latin1Slice(start, end);
}

/** Characters that cannot go into a NUL-terminated latin1 field. */
const NOT_CSTR = /[\0\u0100-\uffff]/;
/** Characters that cannot be written as latin1 bytes. */
const NOT_LATIN1 = /[\u0100-\uffff]/;

/** True if `s` can be written as a NUL-terminated latin1 field (no NUL, nothing above U+00FF). */
export function isCstrSafe(s: string): boolean {
  return !NOT_CSTR.test(s);
}
/** True if every character of `s` is ≤ U+00FF. */
export function isLatin1(s: string): boolean {
  return !NOT_LATIN1.test(s);
}

/** Write `s` as latin1 at `off` (caller checked it with isCstrSafe/isLatin1 and sized the buffer); returns the new offset. */
export function writeLatin1(buf: Buffer, off: number, s: string): number {
  return s.length === 0 ? off : off + (buf as Latin1Buffer).latin1Write(s, off);
}

export function readU32(b: Uint8Array, off: number): number {
  return ((b[off] << 24) | (b[off + 1] << 16) | (b[off + 2] << 8) | b[off + 3]) >>> 0;
}
export function readU16(b: Uint8Array, off: number): number {
  return (b[off] << 8) | b[off + 1];
}
export function writeU32(b: Uint8Array, off: number, v: number): number {
  b[off] = v >>> 24;
  b[off + 1] = v >>> 16;
  b[off + 2] = v >>> 8;
  b[off + 3] = v;
  return off + 4;
}
export function writeU16(b: Uint8Array, off: number, v: number): number {
  b[off] = v >>> 8;
  b[off + 1] = v;
  return off + 2;
}

/** `"6869 00… (N bytes)"`-style preview of at most `max` bytes, for error messages. */
export function hexPreview(b: Uint8Array, max = 32): string {
  const n = Math.min(b.length, max);
  let s = "";
  for (let i = 0; i < n; i++) s += b[i].toString(16).padStart(2, "0");
  return `${s}${b.length > max ? "…" : ""} (${b.length} bytes)`;
}

/** A string quoted for an error message, shortened to `max` characters. */
export function quote(s: string, max = 60): string {
  return JSON.stringify(s.length > max ? `${s.slice(0, max)}…` : s);
}
