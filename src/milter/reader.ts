/**
 * PacketReader: turns a byte stream, delivered in chunks of any size, into
 * whole milter packets (`u32 len, u8 code, data[len - 1]`).
 *
 * Sockets both split and merge writes (docs/bun.md §1e), so every reader of
 * the protocol goes through this class. Design, after bun.md's FrameDecoder:
 * - fast path: packets that lie completely inside a chunk are handed out as
 *   views into that chunk, no copy;
 * - only the one packet that straddles chunk boundaries is copied, into an
 *   internal buffer that never holds more than that packet (bounded by the max
 *   data size), after which parsing continues zero-copy in the chunk;
 * - the length word is checked as soon as it is complete, so an oversize
 *   packet is refused before its data is buffered.
 *
 * Errors (zero-length, oversize, truncated) are MilterProtocolError. A framing
 * error leaves the stream unsynchronised, so the reader then stays failed:
 * every later push()/finish() throws the same error.
 */
import { MILTER_LEN_BYTES, MILTER_MAX_DATA_SIZE, codeLabel } from "./constants.ts";
import { asBuffer, readU32 } from "./bytes.ts";
import { MilterProtocolError } from "./errors.ts";

/**
 * Receives one packet: its code byte and its data. `payload` is a view into
 * either the pushed chunk or the reader's buffer and is valid only during
 * this call; decodeCommand/decodeReply copy what they keep.
 */
export type PacketHandler = (code: number, payload: Buffer) => void;

export interface PacketReaderOptions {
  /** Largest accepted data size (command byte excluded). Default 65535. */
  maxDataSize?: number;
}

export class PacketReader {
  /**
   * Largest accepted data size in bytes, command byte excluded (65535 unless
   * raised after MDS negotiation). A packet of exactly this much data is
   * accepted, one byte more is `oversize`. May be changed between pushes.
   */
  maxDataSize: number;

  // Backlog: bytes [start, end) of `pending` not yet delivered. Normally this is
  // the beginning of the one packet that straddles chunks; only after a
  // throwing handler can it hold complete packets too.
  private pending: Buffer = EMPTY;
  private start = 0;
  private end = 0;
  private failed: MilterProtocolError | undefined;

  constructor(options: PacketReaderOptions = {}) {
    this.maxDataSize = options.maxDataSize ?? MILTER_MAX_DATA_SIZE;
  }

  /** Bytes received but not yet delivered as a packet. */
  get buffered(): number {
    return this.end - this.start;
  }

  /** The error that stopped this reader, if any. */
  get failure(): MilterProtocolError | undefined {
    return this.failed;
  }

  /**
   * Feed the next chunk of the stream; `onPacket` is called synchronously for
   * every packet it completes, in stream order. Throws MilterProtocolError on
   * a framing error (after delivering the packets before it). If `onPacket`
   * throws, the exception propagates and the reader keeps its place: the
   * bytes after that packet are kept and parsed by the next push().
   * Do not call push() from inside `onPacket`.
   */
  push(chunk: Uint8Array, onPacket: PacketHandler): void {
    if (this.failed) throw this.failed;
    const buf = asBuffer(chunk);
    let off = 0;
    if (this.end > this.start) {
      off = this.drain(buf, onPacket);
      if (this.end > this.start) return; // chunk used up, packet still incomplete
    }
    // Fast path: packets wholly inside the chunk are delivered as views of it.
    const size = buf.length;
    try {
      while (size - off >= MILTER_LEN_BYTES) {
        const len = readU32(buf, off);
        if (len === 0 || len - 1 > this.maxDataSize) this.refuse(len, buf, off);
        const next = off + MILTER_LEN_BYTES + len;
        if (next > size) break;
        const code = buf[off + MILTER_LEN_BYTES];
        const payload = buf.subarray(off + MILTER_LEN_BYTES + 1, next);
        off = next; // advance first: a throwing handler leaves us at the next packet
        onPacket(code, payload);
      }
    } finally {
      // Keep the unparsed tail unless the stream itself failed.
      if (off < size && !this.failed) this.append(buf.subarray(off));
    }
  }

  /**
   * Declare the end of the stream. Throws `truncated` if bytes of an
   * unfinished packet are left (or the earlier failure, if any).
   */
  finish(): void {
    if (this.failed) throw this.failed;
    const have = this.end - this.start;
    if (have === 0) return;
    let what = `${have} of the 4 bytes of a length word`;
    if (have >= MILTER_LEN_BYTES) {
      const total = MILTER_LEN_BYTES + readU32(this.pending, this.start);
      const code = codeLabel(this.pending[this.start + MILTER_LEN_BYTES] ?? 0);
      what = have < total ? `${have} of ${total} bytes of a ${code} packet` : `${have} undelivered bytes`;
    }
    this.fail(new MilterProtocolError("truncated", `stream ended inside a packet: got ${what}`));
  }

  /**
   * Deliver backlog packets, taking from `buf` only the bytes needed to
   * complete them. Returns how many bytes of `buf` were used; when the
   * backlog is still non-empty afterwards, all of `buf` was used.
   */
  private drain(buf: Buffer, onPacket: PacketHandler): number {
    let off = 0;
    while (this.end > this.start) {
      let have = this.end - this.start;
      if (have < MILTER_LEN_BYTES) {
        const take = Math.min(MILTER_LEN_BYTES - have, buf.length - off);
        this.append(buf.subarray(off, off + take));
        off += take;
        if (take + have < MILTER_LEN_BYTES) return off;
        have += take;
      }
      const len = readU32(this.pending, this.start);
      if (len === 0 || len - 1 > this.maxDataSize) {
        this.refuse(len, this.pending.subarray(this.start, this.end), 0, buf.subarray(off));
      }
      const total = MILTER_LEN_BYTES + len;
      if (have < total) {
        const take = Math.min(total - have, buf.length - off);
        this.append(buf.subarray(off, off + take));
        off += take;
        if (have + take < total) return off;
      }
      const s = this.start;
      this.start += total;
      if (this.start === this.end) this.start = this.end = 0; // reset first: a throwing handler leaves us consistent
      try {
        onPacket(this.pending[s + MILTER_LEN_BYTES], this.pending.subarray(s + MILTER_LEN_BYTES + 1, s + total));
      } catch (e) {
        this.append(buf.subarray(off)); // keep the rest of the chunk for the next push
        throw e;
      }
    }
    return off;
  }

  /** Add bytes to the backlog, compacting or growing the buffer as needed. */
  private append(src: Uint8Array): void {
    if (src.length === 0) return;
    if (this.end + src.length > this.pending.length) {
      const live = this.end - this.start;
      if (live + src.length <= this.pending.length) {
        this.pending.copyWithin(0, this.start, this.end);
      } else {
        let cap = Math.max(256, this.pending.length);
        while (cap < live + src.length) cap *= 2;
        const next = Buffer.allocUnsafe(cap);
        next.set(this.pending.subarray(this.start, this.end), 0);
        this.pending = next;
      }
      this.start = 0;
      this.end = live;
    }
    this.pending.set(src, this.end);
    this.end += src.length;
  }

  /**
   * Fail on a bad length word found at `at[off]`; `more` continues `at` (for
   * naming the command byte when it is already there).
   */
  private refuse(len: number, at: Uint8Array, off: number, more: Uint8Array = EMPTY): never {
    if (len === 0) {
      this.fail(new MilterProtocolError("zero-length", "packet with length word 0 (no command byte)"));
    }
    const i = off + MILTER_LEN_BYTES;
    const code = i < at.length ? at[i] : i - at.length < more.length ? more[i - at.length] : undefined;
    const what = code === undefined ? "packet" : `${codeLabel(code)} packet`;
    const word = len.toString(16).padStart(8, "0");
    return this.fail(
      new MilterProtocolError(
        "oversize",
        `${what} with ${len - 1} data bytes (length word 0x${word}) exceeds the maximum data size ${this.maxDataSize}`,
        code,
      ),
    );
  }

  private fail(e: MilterProtocolError): never {
    this.failed = e;
    this.pending = EMPTY;
    this.start = this.end = 0;
    throw e;
  }
}

const EMPTY = Buffer.alloc(0);
