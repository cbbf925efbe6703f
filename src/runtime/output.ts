/**
 * FdWriter: batched, non-blocking-safe writes to a file descriptor (stdout,
 * a log file). Text is queued and written once per event-loop turn, so a
 * burst of lines costs one write(2); EAGAIN on a non-blocking pipe is retried
 * later instead of blocking or crashing, and the queue is bounded (lines
 * beyond it are dropped and counted). Strings are written as latin1, so bytes
 * that came from the wire (macro values, body chunks) go out unchanged.
 */
import { closeSync, constants, fstatSync, fsyncSync, lstatSync, openSync, type Stats, writeSync } from "node:fs";

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

/** A log path that names something we do not write to: a symbolic link, a FIFO, a device… */
export class LogFileError extends Error {
  override readonly name = "LogFileError";
}

const O_CLOEXEC = 0o2000000;
// O_NOFOLLOW: a symlink at the name is not followed (as root it could point at any file);
// O_NONBLOCK: a FIFO without a reader cannot hang the open; O_NOCTTY: a tty never becomes ours.
const APPEND = constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT | constants.O_NOFOLLOW | constants.O_NONBLOCK | constants.O_NOCTTY | O_CLOEXEC;

/**
 * Open a log file for appending (created 0640). Only a regular file: anything else at the name is
 * refused before it is opened (opening a device can do things), and what was opened is checked
 * again on its descriptor (the name may change in between). Throws LogFileError (its message says
 * why, without the path) or the fs error.
 */
export function openAppend(path: string): number {
  let before: Stats | undefined;
  try {
    before = lstatSync(path);
  } catch {} // missing: created below, or the open says what is wrong
  if (before && !before.isFile()) throw new LogFileError(notRegular(before));
  let fd: number;
  try {
    fd = openSync(path, APPEND, 0o640);
  } catch (e) {
    if ((e as { code?: string }).code === "ELOOP") throw new LogFileError(notRegular(undefined));
    throw e;
  }
  const st = fstatSync(fd);
  if (!st.isFile()) {
    closeSync(fd);
    throw new LogFileError(notRegular(st));
  }
  return fd;
}

function notRegular(st: Stats | undefined): string {
  if (!st || st.isSymbolicLink()) return "it is a symbolic link, and a log file is never opened through one (as root a link could point at any file); give the path of the file itself";
  const kind = st.isFIFO() ? "a FIFO" : st.isSocket() ? "a socket" : st.isCharacterDevice() ? "a character device" : st.isBlockDevice() ? "a block device" : st.isDirectory() ? "a directory" : "not a file";
  return `it is ${kind}, not a regular file`;
}

/**
 * Who besides us can write the log file `st` (and so add or change lines): a warning naming `path`
 * and the fix, or undefined. `owners`: who may own it (root, us, the user we switch to), as the
 * configuration's check (manager/config/modes.ts); a log is not run, so this warns, not refuses.
 */
export function logFileWriters(st: Stats, path: string, owners: readonly number[]): string | undefined {
  if (!owners.includes(st.uid)) {
    return `log file ${path} belongs to uid ${st.uid}, not to root or the user the manager runs as (uid ${owners.join("/")}): that user can add or change its lines; chown root ${path}`;
  }
  const mode = st.mode & 0o7777;
  if (mode & 0o022) {
    const who = mode & 0o002 ? "everyone" : "its group";
    return `log file ${path} can be written by ${who} (mode 0${mode.toString(8).padStart(3, "0")}): they can add or change its lines; chmod go-w ${path}`;
  }
  return undefined;
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
