/**
 * Detaching into the background without fork() (docs/bun.md §3): the
 * starting process re-executes itself with setsid (Bun.spawn detached), its
 * stdin/stdout/stderr on /dev/null and a readiness pipe on fd 3, and exits 0
 * only once the child wrote `READY`, or 1 with the child's `FAIL <reason>`
 * line (or "exited before it was ready") otherwise. Also: pid files.
 */
import { closeSync, readFileSync, unlinkSync, writeSync } from "node:fs";
import { type FileIdentity, stillOurs, writeFileNoFollow } from "../fs/own-files.ts";

/** Set in the environment of the re-executed child. */
export const DAEMON_ENV = "MILTERKIT_DAEMON_CHILD";
/** Set (to "3") for a process whose parent waits for READY/FAIL on fd 3 (daemon child, worker). */
export const READY_ENV = "MILTERKIT_READY_FD";
const READY_FD = 3;

/** True in the re-executed background child. */
export function isDaemonChild(): boolean {
  return process.env[DAEMON_ENV] === "1";
}

/** argv that runs this program again: the compiled binary alone, or `bun <script>` from source. */
export function selfCommand(args: readonly string[] = process.argv.slice(2)): string[] {
  const script = process.argv[1] ?? "";
  const compiled = script.startsWith("/$bunfs/") || script.startsWith("B:/~BUN/");
  return compiled ? [process.execPath, ...args] : [process.execPath, script, ...args];
}

export interface DetachOptions {
  /** Arguments for the child (default: ours). */
  args?: readonly string[];
  /** How long to wait for READY (default 30 s). */
  timeoutMs?: number;
  env?: Record<string, string | undefined>;
}

export interface DetachResult {
  ok: boolean;
  /** Child pid. */
  pid: number;
  /** READY or FAIL line from the child, or why none came. */
  message: string;
}

/** Parent side: start the background child and wait for its verdict. */
export async function detach(o: DetachOptions = {}): Promise<DetachResult> {
  const child = Bun.spawn({
    cmd: selfCommand(o.args),
    argv0: process.argv0,
    env: { ...process.env, ...o.env, [DAEMON_ENV]: "1", [READY_ENV]: String(READY_FD) },
    detached: true,
    stdio: ["ignore", "ignore", "ignore", "pipe"],
  });
  const r = await readReady(child, o.timeoutMs ?? 30_000);
  child.unref();
  return r;
}

/**
 * Wait for the READY/FAIL line a child spawned with `stdio[3] = "pipe"` writes
 * (see notifyReady/notifyFailure). EOF before a line = the child died first.
 */
export async function readReady(child: { pid: number; stdio: unknown[] }, timeoutMs: number): Promise<DetachResult> {
  const fd = child.stdio[READY_FD] as unknown as number;
  const reader = Bun.file(fd).stream().getReader();
  let text = "";
  let timer: Timer | undefined;
  const timeout = new Promise<"timeout">((r) => (timer = setTimeout(() => r("timeout"), timeoutMs)));
  try {
    for (;;) {
      const r = await Promise.race([reader.read(), timeout]);
      if (r === "timeout") return { ok: false, pid: child.pid, message: `no READY from process ${child.pid} within ${timeoutMs} ms` };
      if (r.done) break;
      text += Buffer.from(r.value).toString("latin1");
      if (text.includes("\n")) break;
    }
  } finally {
    clearTimeout(timer);
    reader.cancel().catch(() => {});
  }
  const line = text.split("\n")[0];
  if (line.startsWith("READY")) return { ok: true, pid: child.pid, message: line };
  if (line.startsWith("FAIL ")) return { ok: false, pid: child.pid, message: line.slice(5) };
  return { ok: false, pid: child.pid, message: `process ${child.pid} exited before it was ready` };
}

/** True if a parent waits for our READY/FAIL line on fd 3. */
export function readinessExpected(): boolean {
  return process.env[READY_ENV] === String(READY_FD);
}

function tell(line: string): void {
  if (!readinessExpected()) return;
  delete process.env[READY_ENV]; // once, and not inherited by our own children
  try {
    writeSync(READY_FD, line);
    closeSync(READY_FD);
  } catch {}
}

/** Tell the waiting parent (daemon starter or worker supervisor) that we listen. No-op when nobody waits. */
export function notifyReady(): void {
  tell(`READY pid=${process.pid}\n`);
}

/** Tell the waiting parent why we could not start. No-op when nobody waits. */
export function notifyFailure(reason: string): void {
  tell(`FAIL ${reason.replace(/\n/g, " ")}\n`);
}

export class PidFileError extends Error {
  override readonly name = "PidFileError";
}

/** Write our pid (`<pid>\n`) to `path`. Throws PidFileError with the reason. */
export function writePidFile(path: string, pid = process.pid): FileIdentity {
  try {
    // Not through whatever sits at the path: as root that could be a link to any file.
    return writeFileNoFollow(path, `${pid}\n`, 0o644);
  } catch (e) {
    throw new PidFileError(`cannot write pid file ${path}: ${(e as Error).message}`);
  }
}

/** Remove the pid file if it is still the file writePidFile made (`identity`, never through a link) and holds our pid. */
export function removePidFile(path: string, identity: FileIdentity, pid = process.pid): void {
  try {
    if (stillOurs(path, identity) && readFileSync(path, "latin1").trim() === String(pid)) unlinkSync(path);
  } catch {}
}
