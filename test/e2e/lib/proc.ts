/**
 * Process control for the end-to-end harness.
 *
 * Every process the harness starts is recorded here by PID, and stopped by PID
 * only (never by name: other test runs on the same machine start the same
 * programs). A process-exit hook kills whatever is still recorded and removes
 * registered temporary directories, so a failing or interrupted test leaves
 * nothing running. Set MK_E2E_KEEP=1 to keep the directories for inspection.
 */
import * as fs from "node:fs";
import type { Subprocess } from "bun";

/** A command run by {@link run} failed or timed out. */
export class CommandError extends Error {
  constructor(
    readonly cmd: string[],
    readonly exitCode: number | null,
    readonly stdout: string,
    readonly stderr: string,
    reason: string,
  ) {
    super(`${reason}: ${cmd.join(" ")}\n${stderr}${stdout}`.trimEnd());
    this.name = "CommandError";
  }
}

/** A harness component could not be started; `detail` holds the relevant log text. */
export class StartupError extends Error {
  constructor(what: string, reason: string, readonly detail = "") {
    super(`${what}: ${reason}${detail ? `\n--- log ---\n${detail.trimEnd()}\n--- end of log ---` : ""}`);
    this.name = "StartupError";
  }
}

export const NOBODY = { uid: 65534, gid: 65534 } as const;

/** Numeric uid/gid of a local user, from /etc/passwd (no NSS modules needed for system users). */
export function userIds(name: string): { uid: number; gid: number } {
  for (const line of fs.readFileSync("/etc/passwd", "latin1").split("\n")) {
    const f = line.split(":");
    if (f[0] === name) return { uid: Number(f[2]), gid: Number(f[3]) };
  }
  throw new Error(`no such user in /etc/passwd: ${name}`);
}

/**
 * Is `pid` a live process? A zombie counts as dead: daemons that double-fork
 * (the Postfix master) are re-parented to PID 1, which on minimal test
 * machines may never reap them.
 */
export function isAlive(pid: number): boolean {
  let stat: string;
  try {
    stat = fs.readFileSync(`/proc/${pid}/stat`, "latin1");
  } catch {
    return false;
  }
  // "pid (comm) S ..." - comm may contain spaces and parentheses: the state follows the last ")".
  const state = stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3);
  return state !== "Z" && state !== "X" && state !== "";
}

/** PIDs of the live children of `ppid` (from /proc). */
/** Children of ppid; with withZombies, also those that exited but are not reaped yet. */
export function childPids(ppid: number, withZombies = false): number[] {
  const out: number[] = [];
  for (const ent of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(ent)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${ent}/stat`, "latin1");
      const rest = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      if (Number(rest[1]) === ppid && (withZombies || rest[0] !== "Z")) out.push(Number(ent));
    } catch {
      // raced with the process exiting
    }
  }
  return out;
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Poll `cond` every `stepMs` until it is true or `timeoutMs` passed; returns the last result. */
export async function pollUntil(cond: () => boolean | Promise<boolean>, timeoutMs: number, stepMs = 25): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    if (await cond()) return true;
    if (Date.now() >= end) return false;
    await sleep(Math.min(stepMs, Math.max(1, end - Date.now())));
  }
}

// ---------------------------------------------------------------------------
// Registry of what must be cleaned up if the test process exits early.

interface TrackedPid {
  pid: number;
  /** signal for the exit hook: SIGTERM for daemons that must stop their own children (Postfix master) */
  signal: NodeJS.Signals;
  what: string;
  proc?: Subprocess;
}
const tracked = new Map<number, TrackedPid>();
const dirs = new Set<string>();

/** Record a PID (started by us, possibly indirectly) so the exit hook stops it. */
export function trackPid(pid: number, what: string, signal: NodeJS.Signals = "SIGKILL", proc?: Subprocess): void {
  tracked.set(pid, { pid, what, signal, proc });
  installExitHook();
}
export function untrackPid(pid: number): void {
  tracked.delete(pid);
}
/** Remove `dir` (recursively) when the test process exits, unless MK_E2E_KEEP=1. */
export function trackDir(dir: string): void {
  dirs.add(dir);
  installExitHook();
}
export function untrackDir(dir: string): void {
  dirs.delete(dir);
}
/** PIDs currently recorded (for diagnostics and the harness self-test). */
export function trackedPids(): number[] {
  return [...tracked.keys()];
}

export const keepDirs = () => process.env.MK_E2E_KEEP === "1";

/** Remove a directory tree unless MK_E2E_KEEP=1; never throws. */
export function removeDir(dir: string): void {
  untrackDir(dir);
  if (keepDirs()) return;
  try {
    fs.rmSync(dir, { recursive: true, force: true });
  } catch {
    // best effort: a daemon may still be writing its last log line
  }
}

let hookInstalled = false;
function installExitHook(): void {
  if (hookInstalled) return;
  hookInstalled = true;
  process.on("exit", cleanupSync);
  for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
    process.once(sig, () => {
      cleanupSync();
      process.exit(128 + (sig === "SIGINT" ? 2 : sig === "SIGTERM" ? 15 : 1));
    });
  }
}

/** Synchronous last-resort cleanup: signal every recorded PID, wait briefly, KILL, remove dirs. */
export function cleanupSync(): void {
  const list = [...tracked.values()];
  tracked.clear();
  for (const t of list) {
    try {
      if (isAlive(t.pid)) process.kill(t.pid, t.signal);
    } catch {
      // already gone
    }
  }
  const end = Date.now() + 3000;
  while (list.some((t) => isAlive(t.pid)) && Date.now() < end) Bun.sleepSync(20);
  for (const t of list) {
    try {
      if (isAlive(t.pid)) process.kill(t.pid, "SIGKILL");
    } catch {
      // already gone
    }
  }
  for (const d of [...dirs]) removeDir(d);
}

// ---------------------------------------------------------------------------
// Starting and stopping.

export interface SpawnOptions {
  /** appended to (created if missing); receives stdout and stderr */
  logFile: string;
  uid?: number;
  gid?: number;
  cwd?: string;
  env?: Record<string, string | undefined>;
  /** run with umask 000 (Unix sockets that another user must be able to connect to) */
  umask000?: boolean;
  /** label for errors and diagnostics */
  what?: string;
}

export interface Spawned {
  pid: number;
  proc: Subprocess;
  logFile: string;
  /** resolves with the exit code when the process ends */
  exited: Promise<number>;
}

/** Start a long-running process with output going to `logFile`, and track its PID. */
export function spawnTracked(cmd: string[], opts: SpawnOptions): Spawned {
  const fd = fs.openSync(opts.logFile, "a");
  // umask via "sh -c 'umask 000; exec ...'": exec keeps the PID, so the PID we record is the program itself.
  const argv = opts.umask000 ? ["/bin/sh", "-c", 'umask 000; exec "$@"', "sh", ...cmd] : cmd;
  let proc: Subprocess;
  try {
    proc = Bun.spawn({
      cmd: argv,
      cwd: opts.cwd ?? "/",
      env: opts.env ?? cleanEnv(),
      stdin: "ignore",
      stdout: fd,
      stderr: fd,
      uid: opts.uid,
      gid: opts.gid,
    });
  } finally {
    fs.closeSync(fd);
  }
  trackPid(proc.pid, opts.what ?? cmd[0], "SIGKILL", proc);
  return { pid: proc.pid, proc, logFile: opts.logFile, exited: proc.exited };
}

/** A small, predictable environment for child processes (no pyenv shims, C locale). */
export function cleanEnv(extra: Record<string, string> = {}): Record<string, string> {
  return { PATH: "/usr/sbin:/usr/bin:/sbin:/bin", LANG: "C", LC_ALL: "C", HOME: "/", ...extra };
}

export interface StopOptions {
  /** time to wait after SIGTERM before SIGKILL (default 5000 ms) */
  graceMs?: number;
  signal?: NodeJS.Signals;
}

/**
 * Stop a process by PID: `signal` (SIGTERM), wait up to `graceMs`, then SIGKILL.
 * Returns how it ended: "absent" (was not running), "exited" or "killed".
 */
export async function stopPid(pid: number, opts: StopOptions = {}): Promise<"absent" | "exited" | "killed"> {
  const { graceMs = 5000, signal = "SIGTERM" } = opts;
  const t = tracked.get(pid);
  try {
    if (!isAlive(pid)) return "absent";
    try {
      process.kill(pid, signal);
    } catch {
      return "absent";
    }
    const gone = () => !isAlive(pid);
    const exited = t?.proc ? t.proc.exited.then(() => true) : null;
    const ok = exited
      ? await Promise.race([exited, sleep(graceMs).then(() => gone())])
      : await pollUntil(gone, graceMs);
    if (ok || gone()) return "exited";
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      return "exited";
    }
    await pollUntil(gone, 3000);
    return "killed";
  } finally {
    // Let Bun reap its own child before we return: an unreaped child of a test process that exits
    // right after would be left as a zombie under PID 1, which may never reap it.
    if (t?.proc) await Promise.race([t.proc.exited, sleep(2000)]);
    untrackPid(pid);
  }
}

export interface RunResult {
  exitCode: number;
  stdout: string;
  stderr: string;
}

/**
 * Run a short command to completion (bounded by `timeoutMs`), capturing its output as latin1.
 * Throws {@link CommandError} on a non-zero exit unless `check: false`, and always on a timeout.
 */
export async function run(
  cmd: string[],
  opts: { timeoutMs?: number; check?: boolean; stdin?: Uint8Array | string; env?: Record<string, string>; cwd?: string } = {},
): Promise<RunResult> {
  const { timeoutMs = 30_000, check = true } = opts;
  const proc = Bun.spawn({
    cmd,
    cwd: opts.cwd ?? "/",
    env: opts.env ?? cleanEnv(),
    stdin: opts.stdin === undefined ? "ignore" : typeof opts.stdin === "string" ? Buffer.from(opts.stdin, "latin1") : opts.stdin,
    stdout: "pipe",
    stderr: "pipe",
  });
  trackPid(proc.pid, cmd[0], "SIGKILL", proc);
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    try {
      proc.kill("SIGKILL");
    } catch {
      // already gone
    }
  }, timeoutMs);
  try {
    const [out, err, code] = await Promise.all([
      new Response(proc.stdout).arrayBuffer(),
      new Response(proc.stderr).arrayBuffer(),
      proc.exited,
    ]);
    const stdout = Buffer.from(out).toString("latin1");
    const stderr = Buffer.from(err).toString("latin1");
    if (timedOut) throw new CommandError(cmd, null, stdout, stderr, `timed out after ${timeoutMs} ms`);
    if (check && code !== 0) throw new CommandError(cmd, code, stdout, stderr, `exit code ${code}`);
    return { exitCode: code, stdout, stderr };
  } finally {
    clearTimeout(timer);
    untrackPid(proc.pid);
  }
}

/** Last `maxBytes` of a text file (latin1), or "" if it cannot be read. */
export function tailFile(path: string, maxBytes = 16 * 1024): string {
  try {
    const buf = fs.readFileSync(path);
    return buf.subarray(Math.max(0, buf.length - maxBytes)).toString("latin1");
  } catch {
    return "";
  }
}
