// Running `milterkit manager` as a real process for the daemon tests: start it (foreground or
// --daemon), follow its log file, talk to it as an MTA, signal it and stop it by PID. Every pid
// started here is recorded and killed by the exit hook if a test fails half-way.
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { MilterClient } from "../../../src/mta-side/index.ts";

export const ROOT = resolve(import.meta.dir, "../../..");
export const MAIN = join(ROOT, "src/main.ts");
export const isRoot = process.getuid?.() === 0;

const tracked = new Set<number>();
let hooked = false;
/** Remember a pid to kill if the test process exits before the test stopped it. */
export function track(pid: number): void {
  tracked.add(pid);
  if (hooked) return;
  hooked = true;
  process.on("exit", () => {
    for (const p of tracked) {
      try {
        process.kill(p, "SIGKILL");
      } catch {}
    }
  });
}

/** Alive and not a zombie (a daemon is re-parented to PID 1, which may reap it late). */
export function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "latin1");
    const state = stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3);
    return state !== "Z" && state !== "X";
  } catch {
    return false;
  }
}

/** Wait (bounded) until `check` holds. */
export async function until(check: () => boolean, ms = 10_000, what = "condition"): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error(`${what}: not reached within ${ms} ms`);
    await Bun.sleep(20);
  }
}

/** SIGTERM `pid` (then SIGKILL after graceMs) and wait until it is gone. */
export async function stopPid(pid: number, graceMs = 15_000): Promise<void> {
  try {
    process.kill(pid, "SIGTERM");
  } catch {}
  const end = Date.now() + graceMs;
  while (alive(pid) && Date.now() < end) await Bun.sleep(20);
  if (alive(pid)) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {}
    await until(() => !alive(pid), 5000, `pid ${pid} gone`);
  }
  tracked.delete(pid);
}

/** A work directory readable by everybody (the manager reads its configuration as nobody on reload). */
export function workDir(prefix: string): { dir: string; remove(): void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  chmodSync(dir, 0o755);
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Write a JSON configuration (world-readable) and return its path. */
export function writeConfig(path: string, config: object): string {
  writeFileSync(path, JSON.stringify(config, null, 2), { mode: 0o644 });
  chmodSync(path, 0o644);
  return path;
}

export { freePort } from "../../e2e/lib/ports.ts";

export function readText(path: string): string {
  try {
    return readFileSync(path, "latin1");
  } catch {
    return "";
  }
}

/** A manager process started in the foreground (`--no-daemon`). */
export interface Foreground {
  proc: ReturnType<typeof Bun.spawn>;
  pid: number;
  /** stdout + stderr so far. */
  output(): string;
  waitFor(text: string | RegExp, ms?: number, source?: () => string): Promise<void>;
  /** SIGTERM and the exit status. */
  stop(): Promise<number>;
}

export interface StartOptions {
  /** Program and its first arguments (default: bun src/main.ts manager). */
  cmd?: string[];
  argv0?: string;
  env?: Record<string, string>;
  /** Text that says it is ready (default "listening on"), looked for in the output or in `log`. */
  ready?: string | RegExp;
  log?: string;
}

export async function startForeground(args: string[], o: StartOptions = {}): Promise<Foreground> {
  const proc = Bun.spawn({
    cmd: [...(o.cmd ?? [process.execPath, MAIN, "manager"]), ...args],
    argv0: o.argv0,
    env: { ...process.env, NO_COLOR: "1", ...o.env },
    stdout: "pipe",
    stderr: "pipe",
  });
  track(proc.pid);
  let out = "";
  const pump = async (s: ReadableStream<Uint8Array>) => {
    for await (const chunk of s) out += Buffer.from(chunk).toString("latin1");
  };
  void pump(proc.stdout as ReadableStream<Uint8Array>);
  void pump(proc.stderr as ReadableStream<Uint8Array>);
  const fg: Foreground = {
    proc,
    pid: proc.pid,
    output: () => out,
    async waitFor(text, ms = 15_000, source = () => out) {
      const hit = () => (typeof text === "string" ? source().includes(text) : text.test(source()));
      const end = Date.now() + ms;
      while (!hit()) {
        if (proc.exitCode !== null) throw new Error(`manager exited with status ${proc.exitCode} before ${text}; output:\n${out}`);
        if (Date.now() > end) throw new Error(`manager: no ${text} within ${ms} ms; output:\n${out}${o.log ? `\nlog:\n${readText(o.log)}` : ""}`);
        await Bun.sleep(20);
      }
    },
    async stop() {
      proc.kill("SIGTERM");
      const timer = setTimeout(() => proc.kill("SIGKILL"), 20_000);
      const code = await proc.exited;
      clearTimeout(timer);
      tracked.delete(proc.pid);
      return code;
    },
  };
  const ready = o.ready ?? "listening on";
  try {
    await fg.waitFor(ready, 15_000, o.log ? () => out + readText(o.log!) : undefined);
  } catch (e) {
    proc.kill("SIGKILL");
    tracked.delete(proc.pid);
    throw e;
  }
  return fg;
}

/** An MTA connected and negotiated with the manager. */
export async function mta(spec: string): Promise<MilterClient> {
  const m = new MilterClient({ spec, connectionTimeoutMs: 5000, readingTimeoutMs: 30_000, endOfMessageTimeoutMs: 60_000 });
  const neg = await m.open();
  if (!neg.ok) throw new Error(`MTA: ${neg.status}: ${neg.detail}`);
  return m;
}

/** uid, gid and groups of a process from /proc. */
export function ids(pid: number): { uid: string[]; gid: string[]; groups: string[]; ppid: number; sid: number } {
  const status = readFileSync(`/proc/${pid}/status`, "latin1");
  const field = (name: string) => new RegExp(`^${name}:\\s*(.*)$`, "m").exec(status)![1].trim().split(/\s+/).filter(Boolean);
  const stat = readFileSync(`/proc/${pid}/stat`, "latin1");
  const rest = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return { uid: field("Uid"), gid: field("Gid"), groups: field("Groups"), ppid: Number(rest[1]), sid: Number(rest[3]) };
}

/** Live child processes of `ppid`, from /proc (the manager's launcher excluded: it runs no milter protocol). */
export function childrenOf(ppid: number, o: { withLauncher?: boolean } = {}): number[] {
  const out: number[] = [];
  for (const ent of readdirSync("/proc")) {
    if (!/^\d+$/.test(ent)) continue;
    try {
      const stat = readFileSync(`/proc/${ent}/stat`, "latin1");
      const rest = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      if (Number(rest[1]) !== ppid || rest[0] === "Z") continue;
      if (!o.withLauncher && readFileSync(`/proc/${ent}/environ`, "latin1").split("\0").includes("MILTERKIT_LAUNCHER=1")) continue;
      out.push(Number(ent));
    } catch {} // raced with the process exiting
  }
  return out;
}

/** Mode bits, owner and group of a file. */
export function fileMode(path: string): { mode: number; uid: number; gid: number; socket: boolean } {
  const st = statSync(path);
  return { mode: st.mode & 0o777, uid: st.uid, gid: st.gid, socket: st.isSocket() };
}

export { existsSync, mkdirSync };
