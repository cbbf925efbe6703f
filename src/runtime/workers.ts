/**
 * Worker processes sharing one TCP port (milter-manager's --n-workers).
 *
 * Approach (verified with Bun 1.4.5 on Linux): every worker is this program
 * re-executed with MILTERKIT_WORKER=<i> and listens itself on the same
 * address with SO_REUSEPORT (`listen(spec, …, { reusePort: true })`); the
 * kernel spreads new connections over the workers. The supervisor (the
 * process the user started) does not accept connections: it checks the
 * address once (bind + close, which also turns port 0 into a real port that
 * every worker then uses), starts the workers, waits for each one's READY on
 * its fd 3, restarts a worker that dies, and stops them all by pid.
 *
 * Unix sockets cannot be shared like this (SO_REUSEPORT is TCP/UDP only, and
 * Bun cannot pass a listening descriptor to a child), so for a unix: spec the
 * caller serves in one process and says so (workersSupported()).
 */
import type { Subprocess } from "bun";
import { listen } from "../net/listener.ts";
import { type ConnectionSpec, formatSpec } from "../net/spec.ts";
import { READY_ENV, readReady, selfCommand } from "./daemon.ts";

export const WORKER_ENV = "MILTERKIT_WORKER";
/** The spec (formatSpec) every worker must listen on; set by the supervisor. */
export const WORKER_SPEC_ENV = "MILTERKIT_WORKER_SPEC";
export const MAX_WORKERS = 1000;

/** Our worker number (1…n), or undefined in a process that is not a worker. */
export function workerIndex(): number | undefined {
  const v = process.env[WORKER_ENV];
  return v && /^\d+$/.test(v) ? Number(v) : undefined;
}

export function workersSupported(spec: ConnectionSpec): boolean {
  return spec.kind !== "unix";
}

/** Bind and release the address once: fails like listen() would, and fixes port 0. */
export async function probeAddress(spec: ConnectionSpec): Promise<ConnectionSpec> {
  const l = await listen(spec, { connection: (c) => c.destroy() }, { reusePort: true });
  const bound = l.spec;
  await l.close({ waitMs: 0 });
  return bound;
}

export interface WorkerPoolOptions {
  n: number;
  /** The address every worker listens on (after probeAddress). */
  spec: ConnectionSpec;
  /** Arguments for the workers (default: ours). */
  args?: readonly string[];
  startTimeoutMs?: number;
  /** Delay before restarting a worker that died (default 1000 ms). */
  restartDelayMs?: number;
  log?: (level: "error" | "warning" | "info", msg: string) => void;
  /**
   * Signal that asks a worker to stop (default SIGTERM). The manager uses SIGUSR2: its workers
   * may get SIGTERM/SIGINT from elsewhere as well (systemd's control group, Ctrl-C to the
   * process group), and one stop request must not count as a second, "exit at once" one.
   */
  stopSignal?: NodeJS.Signals;
  /** Put each worker in its own session (setsid), out of reach of the terminal's Ctrl-C. */
  detached?: boolean;
}

interface Slot {
  index: number;
  proc: Subprocess | undefined;
}

export class WorkerPool {
  private slots: Slot[] = [];
  private stopping = false;
  private timers = new Set<Timer>();

  constructor(private readonly o: WorkerPoolOptions) {}

  get pids(): number[] {
    return this.slots.map((s) => s.proc?.pid).filter((p): p is number => p !== undefined);
  }

  /** Start every worker; rejects with the first worker's failure line (the others are stopped). */
  async start(): Promise<void> {
    for (let i = 1; i <= this.o.n; i++) this.slots.push({ index: i, proc: undefined });
    const results = await Promise.all(this.slots.map((s) => this.spawn(s)));
    const bad = results.find((r) => !r.ok);
    if (bad) {
      await this.stop();
      throw new Error(bad.message);
    }
  }

  private async spawn(slot: Slot): Promise<{ ok: boolean; message: string }> {
    const proc: Subprocess = Bun.spawn({
      cmd: selfCommand(this.o.args),
      argv0: process.argv0,
      env: { ...process.env, [WORKER_ENV]: String(slot.index), [WORKER_SPEC_ENV]: formatSpec(this.o.spec), [READY_ENV]: "3" },
      stdio: ["ignore", "inherit", "inherit", "pipe"],
      detached: this.o.detached,
      onExit: (_p, code, signal): void => this.exited(slot, proc, code, signal === null ? null : String(signal)),
    });
    slot.proc = proc;
    const r = await readReady(proc, this.o.startTimeoutMs ?? 30_000);
    return { ok: r.ok, message: r.ok ? r.message : `worker ${slot.index}: ${r.message}` };
  }

  private exited(slot: Slot, proc: Subprocess, code: number | null, signal: string | null): void {
    if (slot.proc !== proc || this.stopping) return;
    slot.proc = undefined;
    this.o.log?.("error", `worker ${slot.index} (pid ${proc.pid}) exited (${signal ?? `status ${code}`}); restarting it`);
    const t = setTimeout(() => {
      this.timers.delete(t);
      if (this.stopping) return;
      void this.spawn(slot).then((r) => {
        if (!r.ok) this.o.log?.("error", r.message);
      });
    }, this.o.restartDelayMs ?? 1000);
    this.timers.add(t);
  }

  /** Ask every worker to stop (stopSignal), SIGKILL those still there after graceMs. */
  async stop(graceMs = 5000): Promise<void> {
    this.stopping = true;
    for (const t of this.timers) clearTimeout(t);
    const procs = this.slots.map((s) => s.proc).filter((p): p is Subprocess => p !== undefined);
    for (const p of procs) {
      try {
        p.kill(this.o.stopSignal ?? "SIGTERM");
      } catch {}
    }
    let timer: Timer | undefined;
    await Promise.race([Promise.all(procs.map((p) => p.exited)), new Promise((r) => (timer = setTimeout(r, graceMs)))]);
    clearTimeout(timer);
    for (const p of procs) {
      if (p.exitCode === null && p.signalCode === null) {
        try {
          p.kill("SIGKILL");
        } catch {}
      }
    }
  }
}

/**
 * In a worker: call `onGone` once when the supervisor is gone (we were re-parented, e.g. it was
 * SIGKILLed), so a worker never serves on alone. Checks every intervalMs; does not keep the process alive.
 */
export function watchSupervisor(onGone: () => void, intervalMs = 1000): () => void {
  const supervisor = process.ppid;
  const timer = setInterval(() => {
    if (process.ppid === supervisor) return;
    clearInterval(timer);
    onGone();
  }, intervalMs);
  timer.unref?.();
  return () => clearInterval(timer);
}
