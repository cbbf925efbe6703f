// Runs a test script in a process of its own: what it changes (limits, signal
// handlers, privileges) must not stay with the test runner.
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

export const ROOT = resolve(import.meta.dir, "../..");

/**
 * Write `code` (with @ROOT@ replaced by the repository root) to a temporary file,
 * run it with bun, optionally as `uid` (the file is readable by every user), and
 * return its output and exit status. Killed after `timeoutMs`.
 */
export async function runScript(code: string, o: { uid?: number; env?: Record<string, string>; timeoutMs?: number } = {}) {
  const dir = mkdtempSync(join(tmpdir(), "mk-rt-"));
  const file = join(dir, "s.ts");
  writeFileSync(file, code.replaceAll("@ROOT@", ROOT));
  chmodSync(dir, 0o755);
  chmodSync(file, 0o644);
  try {
    const p = Bun.spawn({ cmd: [process.execPath, file], cwd: ROOT, uid: o.uid, gid: o.uid, env: { ...process.env, ...o.env }, stdout: "pipe", stderr: "pipe" });
    const timer = setTimeout(() => p.kill("SIGKILL"), o.timeoutMs ?? 20_000);
    const [stdout, stderr, code_] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
    clearTimeout(timer);
    return { stdout, stderr, code: code_ };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
