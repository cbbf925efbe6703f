/**
 * Process limits of a server: the open-file limit (milter-manager's
 * manager.max_file_descriptors, setrlimit RLIMIT_NOFILE through libc, as Bun
 * has no binding for it) and the concurrent-connection limit
 * (manager.max_connections with suspend_time_on_unacceptable).
 *
 * The original stops calling accept() while the limit is reached and sleeps
 * suspend_time_on_unacceptable seconds before it looks again, so new
 * connections wait in the kernel's listen queue. Bun cannot pause accepting,
 * so ConnectionGate does the equivalent one step later: a connection beyond
 * the limit is accepted but not read (the MTA's OPTNEG stays unanswered, just
 * as it would in the listen queue) until the gate reopens; the gate then stays
 * closed for suspend_time_on_unacceptable and admits waiting connections when
 * it looks again and finds room.
 */

export class LimitError extends Error {
  override readonly name = "LimitError";
}

const RLIMIT_NOFILE = 7;
const ERRNO_NAMES: Record<number, string> = { 1: "EPERM: operation not permitted", 22: "EINVAL: invalid argument" };

// Reading the limit needs only /proc, so net/ (which watches free descriptors) owns it.
import type { FileLimit } from "../net/descriptors.ts";
import { address, errno, libc } from "../net/libc.ts";
export { fileDescriptorLimit, type FileLimit } from "../net/descriptors.ts";

/**
 * Set RLIMIT_NOFILE soft and hard limit to `n` (milter-manager sets both).
 * Raising the hard limit needs root (CAP_SYS_RESOURCE); when that is refused,
 * the soft limit is raised as far as the hard limit allows and the returned
 * `partial` says so. Throws LimitError when nothing could be set.
 */
export function setFileDescriptorLimit(n: number): FileLimit & { partial: boolean } {
  if (!Number.isInteger(n) || n <= 0) throw new LimitError(`max_file_descriptors must be a positive integer (got ${n})`);
  const c = libc();
  const buf = new Uint8Array(16);
  const view = new DataView(buf.buffer);
  const set = (soft: bigint, hard: bigint): number => {
    view.setBigUint64(0, soft, true);
    view.setBigUint64(8, hard, true);
    return c.setrlimit(RLIMIT_NOFILE, address(buf)) === 0 ? 0 : errno();
  };
  const err = set(BigInt(n), BigInt(n));
  if (err === 0) return { soft: n, hard: n, partial: false };
  if (c.getrlimit(RLIMIT_NOFILE, address(buf)) !== 0) throw new LimitError(`getrlimit(RLIMIT_NOFILE) failed: errno ${errno()}`);
  const hard = view.getBigUint64(8, true);
  const soft = BigInt(n) < hard ? BigInt(n) : hard;
  const err2 = set(soft, hard);
  if (err2 !== 0) throw new LimitError(`cannot set the open-file limit to ${n}: ${ERRNO_NAMES[err] ?? `errno ${err}`}`);
  const num = (v: bigint) => (v >= 2n ** 63n ? Infinity : Number(v));
  return { soft: num(soft), hard: num(hard), partial: true };
}

// ---------------------------------------------------------------------------------------------

export interface GateOptions {
  /** Concurrent connections; 0 = unlimited. */
  max: number;
  /** How long accepting stays paused once the limit is reached (suspend_time_on_unacceptable, ms). */
  suspendMs: number;
  /** Told once per pause (log line). */
  onSuspend?: (active: number, waiting: number) => void;
}

interface Waiter {
  admit: () => void;
}

/**
 * Counts running connections against a limit. `enter()` returns true when
 * the connection may start now; otherwise the connection waits and `admit`
 * is called once it may start (or never, if `cancel` was called first —
 * the connection closed while waiting). Every admitted connection must
 * `leave()` exactly once.
 */
export class ConnectionGate {
  private running = 0;
  private readonly queue: Waiter[] = [];
  private timer: Timer | undefined;

  constructor(private o: GateOptions) {}

  get active(): number {
    return this.running;
  }

  get waiting(): number {
    return this.queue.length;
  }

  /** A limit is set (max > 0): connections must enter and leave. */
  get limited(): boolean {
    return this.o.max > 0;
  }

  /** Paused: new connections wait even if a slot is free (until the suspend time is over). */
  get suspended(): boolean {
    return this.timer !== undefined;
  }

  /** New limits (configuration reload); waiting connections are looked at again. */
  update(o: GateOptions): void {
    this.o = o;
    if (!this.timer) this.pump();
  }

  /** True: start now. False: `admit` will be called when there is room (unless cancelled). */
  enter(admit: () => void): { admitted: boolean; cancel: () => void } {
    if (this.queue.length === 0 && !this.timer && this.room()) {
      this.running++;
      return { admitted: true, cancel: () => {} };
    }
    const w: Waiter = { admit };
    this.queue.push(w);
    if (!this.timer) this.suspend();
    return {
      admitted: false,
      cancel: () => {
        const i = this.queue.indexOf(w);
        if (i >= 0) this.queue.splice(i, 1);
      },
    };
  }

  leave(): void {
    if (this.running > 0) this.running--;
  }

  /** Stop the timer; waiting connections are not admitted any more. */
  close(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.queue.length = 0;
  }

  private room(): boolean {
    return this.o.max <= 0 || this.running < this.o.max;
  }

  private suspend(): void {
    this.o.onSuspend?.(this.running, this.queue.length);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.pump();
    }, Math.max(1, this.o.suspendMs));
  }

  /** Admit waiting connections while there is room; pause again if some are left. */
  private pump(): void {
    while (this.queue.length > 0 && this.room()) {
      this.running++;
      this.queue.shift()!.admit();
    }
    if (this.queue.length > 0) this.suspend();
  }
}
