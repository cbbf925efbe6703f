/**
 * FdWriter: batched, non-blocking-safe writes to a file descriptor (stdout,
 * a log file). Text is queued and written once per event-loop turn, so a
 * burst of lines costs one write(2); EAGAIN on a non-blocking pipe is retried
 * later instead of blocking or crashing, and the queue is bounded (lines
 * beyond it are dropped and counted). Strings are written as latin1, so bytes
 * that came from the wire (macro values, body chunks) go out unchanged.
 */
import { closeSync, fsyncSync, openSync, writeSync } from "node:fs";

export class FdWriter {
  /** Bytes dropped because the queue was full or the fd failed. */
  dropped = 0;
  private parts: string[] = [];
  private queued = 0;
  private pending: Buffer | undefined;
  private scheduled = false;
  private retryTimer: Timer | undefined;

  constructor(
    public fd: number,
    /** Queue bound in characters (default 64 MiB). */
    private readonly maxQueued = 64 * 1024 * 1024,
    /** latin1 (default) writes each char ≤ U+00FF as that byte; utf8 for text meant as UTF-8 (logs, JSON). */
    readonly encoding: "latin1" | "utf8" = "latin1",
  ) {}

  write(text: string): void {
    if (this.queued + text.length > this.maxQueued) {
      this.dropped += text.length;
      return;
    }
    this.parts.push(text);
    this.queued += text.length;
    if (!this.scheduled && !this.retryTimer) {
      this.scheduled = true;
      queueMicrotask(this.flushSoon);
    }
  }

  private readonly flushSoon = (): void => {
    this.scheduled = false;
    this.flush();
  };

  /** Write everything queued now (stops early on EAGAIN and retries in 5 ms). */
  flush(): void {
    for (;;) {
      if (!this.pending) {
        if (this.parts.length === 0) return;
        this.pending = Buffer.from(this.parts.length === 1 ? this.parts[0] : this.parts.join(""), this.encoding);
        this.parts = [];
        this.queued = 0;
      }
      try {
        const n = writeSync(this.fd, this.pending);
        this.pending = n >= this.pending.length ? undefined : this.pending.subarray(n);
      } catch (e) {
        const code = (e as { code?: string }).code;
        if (code === "EAGAIN" || code === "EWOULDBLOCK") {
          if (!this.retryTimer) {
            this.retryTimer = setTimeout(() => {
              this.retryTimer = undefined;
              this.flush();
            }, 5);
          }
          return;
        }
        // EPIPE, EBADF…: nobody reads any more; drop instead of crashing the server.
        this.dropped += this.pending?.length ?? 0;
        this.pending = undefined;
      }
    }
  }

  /** Flush and wait (up to `ms`) for an EAGAIN backlog to drain; for exit paths. */
  async drain(ms = 2000): Promise<void> {
    const end = Date.now() + ms;
    this.flush();
    while ((this.pending || this.parts.length) && Date.now() < end) {
      await new Promise((r) => setTimeout(r, 5));
      this.flush();
    }
  }
}

/** Open a log file for appending (created 0640). Throws the fs error. */
export function openAppend(path: string): number {
  return openSync(path, "a", 0o640);
}

export function closeFd(fd: number): void {
  try {
    fsyncSync(fd);
  } catch {}
  try {
    closeSync(fd);
  } catch {}
}

/**
 * One synchronous write of `text` (a string as UTF-8, or bytes) to `fd`, for lines a tool prints
 * as it goes; an fd that is closed or failing is ignored rather than crashing the tool.
 */
export function writeNow(fd: number, text: string | Uint8Array): void {
  try {
    if (typeof text === "string") writeSync(fd, text);
    else writeSync(fd, text);
  } catch {}
}
