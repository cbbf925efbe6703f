// The body of the message being processed (manager.md §2.11): kept in memory up to a threshold
// (5 MiB, like milter-manager), then moved to a temporary file so that memory stays bounded
// whatever the message size. The file is unlinked as soon as it is created (nothing is left
// behind, even after a crash) and its descriptor is closed when the message ends (dispose()).
// Chunks given to append() are kept as they are (not copied): callers pass buffers they own.
import { closeSync, openSync, readSync, unlinkSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** milter-manager's MAX_ON_MEMORY_BODY_SIZE. */
export const DEFAULT_SPILL_THRESHOLD = 5 * 1024 * 1024;
/**
 * A big body passes through buffers that are garbage at once (socket reads, packets encoded from
 * spill-file pieces); the collector does not count them as pressure, so without a collection every
 * few MB tens of MB of them pile up before it runs.
 */
export const GC_EVERY_BYTES = 2 * 1024 * 1024;

export interface BodyBufferOptions {
  /** Bytes kept in memory before the body moves to a temporary file. Default 5 MiB. */
  spillThreshold?: number;
  /** Directory for the temporary file. Default os.tmpdir(). */
  tmpDir?: string;
}

/** A spill file could not be created or written (disk full, no permission, ...). */
export class BodyBufferError extends Error {
  override readonly name = "BodyBufferError";
}

let fileCounter = 0;

export class BodyBuffer {
  private readonly threshold: number;
  private readonly dir: string;
  private memory: Uint8Array[] = [];
  private total = 0;
  private last = 0;
  /** Descriptor of the spill file, -1 while the body is in memory. */
  private file = -1;

  constructor(options: BodyBufferOptions = {}) {
    this.threshold = options.spillThreshold ?? DEFAULT_SPILL_THRESHOLD;
    this.dir = options.tmpDir ?? tmpdir();
  }

  /** The last byte appended (undefined when the body is empty). */
  get lastByte(): number | undefined {
    return this.total === 0 ? undefined : this.last;
  }

  /** Body size in bytes. */
  get size(): number {
    return this.total;
  }

  /** True once the body lives in a temporary file. */
  get spilled(): boolean {
    return this.file >= 0;
  }

  /** The spill file's descriptor (-1 if none), for diagnostics and tests. */
  get fd(): number {
    return this.file;
  }

  /** append() a chunk the caller does not own (copied only while the body is kept in memory). */
  appendCopy(chunk: Uint8Array): void {
    if (chunk.length === 0) return;
    this.append(this.file < 0 && this.total + chunk.length <= this.threshold ? Uint8Array.from(chunk) : chunk);
  }

  append(chunk: Uint8Array): void {
    if (chunk.length === 0) return;
    this.last = chunk[chunk.length - 1];
    if (this.file < 0 && this.total + chunk.length > this.threshold) this.spill();
    if (this.file >= 0) this.write(chunk, this.total);
    else this.memory.push(chunk);
    this.total += chunk.length;
  }

  /** Forget the content (a child replaces the body); a spill file is reused. */
  reset(): void {
    this.memory = [];
    this.total = 0;
  }

  /** Take over `other`'s content (memory or spill file), dropping ours; `other` is left empty. */
  adopt(other: BodyBuffer): void {
    if (other === this) return;
    this.dispose();
    this.memory = other.memory;
    this.total = other.total;
    this.file = other.file;
    this.last = other.last;
    other.memory = [];
    other.total = 0;
    other.file = -1;
  }

  /**
   * The whole body in pieces of at most `size` bytes (none for an empty body). A piece read from
   * the spill file is only valid until the next one is asked for: copy it to keep it.
   */
  *chunks(size: number): Generator<Uint8Array> {
    if (!Number.isInteger(size) || size < 1) throw new RangeError(`body chunk size ${size} must be a positive integer`);
    if (this.file >= 0) {
      // One buffer for the whole read: each piece is valid until the next is asked for (every
      // caller encodes it into a packet first), so a 50 MB body makes no 50 MB of garbage.
      const reused = Buffer.allocUnsafe(Math.min(size, this.total));
      let sinceGc = 0;
      for (let pos = 0; pos < this.total; pos += size) {
        const n = Math.min(size, this.total - pos);
        const buf = reused.subarray(0, n);
        let got = 0;
        while (got < n) {
          const r = readSync(this.file, buf, got, n - got, pos + got);
          if (r <= 0) throw new BodyBufferError(`body spill file: short read at ${pos + got} of ${this.total} bytes`);
          got += r;
        }
        yield buf;
        sinceGc += n;
        if (sinceGc >= GC_EVERY_BYTES) {
          sinceGc = 0;
          Bun.gc(true); // each piece was encoded into a packet by the caller: garbage now
        }
      }
      return;
    }
    // From memory: pass slices of the stored chunks where possible, join only across boundaries.
    let piece: Uint8Array | undefined;
    let filled = 0;
    for (const chunk of this.memory) {
      let off = 0;
      while (off < chunk.length) {
        if (filled === 0 && chunk.length - off >= size) {
          yield chunk.subarray(off, off + size);
          off += size;
          continue;
        }
        if (filled === 0) piece = new Uint8Array(Math.min(size, this.total));
        const n = Math.min(size - filled, chunk.length - off);
        piece!.set(chunk.subarray(off, off + n), filled);
        filled += n;
        off += n;
        if (filled === size) {
          yield piece!;
          filled = 0;
        }
      }
    }
    if (filled > 0) yield piece!.subarray(0, filled);
  }

  /** The whole body as one buffer (tests and small bodies only). */
  toBuffer(): Buffer {
    const parts: Uint8Array[] = [];
    for (const c of this.chunks(1024 * 1024)) parts.push(Uint8Array.from(c)); // a piece is reused: copy
    return Buffer.concat(parts);
  }

  /** Drop the content and close the spill file. The buffer can be used again afterwards. */
  dispose(): void {
    this.reset();
    if (this.file >= 0) {
      try {
        closeSync(this.file);
      } catch {} // already closed: nothing to release
      this.file = -1;
    }
  }

  private spill(): void {
    const path = join(this.dir, `milterkit-body-${process.pid}-${++fileCounter}-${Math.random().toString(36).slice(2)}`);
    try {
      this.file = openSync(path, "wx+", 0o600);
      unlinkSync(path);
    } catch (e) {
      if (this.file >= 0) closeSync(this.file);
      this.file = -1;
      throw new BodyBufferError(`cannot create a body spill file in ${this.dir}: ${(e as Error).message}`);
    }
    let pos = 0;
    for (const c of this.memory) {
      this.write(c, pos);
      pos += c.length;
    }
    this.memory = [];
  }

  private write(chunk: Uint8Array, pos: number): void {
    let done = 0;
    try {
      while (done < chunk.length) done += writeSync(this.file, chunk, done, chunk.length - done, pos + done);
    } catch (e) {
      throw new BodyBufferError(`cannot write ${chunk.length} bytes to the body spill file: ${(e as Error).message}`);
    }
  }
}
