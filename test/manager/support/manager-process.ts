// `milterkit manager --config FILE --no-daemon -s inet:PORT@127.0.0.1` as a real process for the
// tests: started with a JSON configuration, its output collected, stopped by its PID.
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { MilterClient } from "../../../src/mta-side/index.ts";
import { freePort } from "../../e2e/lib/ports.ts";

export const MAIN = join(import.meta.dir, "../../../src/main.ts");

export { freePort };

export interface RunningManager {
  proc: ReturnType<typeof Bun.spawn>;
  port: number;
  output(): string;
  /** Resolves once the output contains `text` (bounded by timeoutMs); false if it did not. */
  waitFor(text: string | RegExp, timeoutMs?: number): Promise<boolean>;
  /** Open descriptors of the manager process. */
  fds(): number;
  /** Peak resident set size (VmHWM) in KiB. */
  peakKb(): number;
  stop(): Promise<number>;
}

export interface StartOptions {
  /** Extra arguments (default: -u root, see below). */
  args?: string[];
  /** Prefix of the command, e.g. ["prlimit", "--nofile=64"]. */
  wrap?: string[];
  /** Directory for the configuration file (default: a fresh temporary one). */
  dir?: string;
  /** Entry point (default: this tree's src/main.ts); another tree's for a before/after comparison. */
  main?: string;
}

/** Start the manager process and wait (bounded) until it says it listens. */
export async function startManagerProcess(config: object, opts: StartOptions = {}): Promise<RunningManager> {
  const dir = opts.dir ?? mkdtempSync(join(tmpdir(), "mk-manager-proc-"));
  const file = join(dir, `config-${Math.random().toString(36).slice(2)}.json`);
  writeFileSync(file, JSON.stringify(config), { mode: 0o644 });
  const port = freePort();
  // -u root: started as root the manager would switch to nobody, who cannot reach the children's sockets here.
  const args = opts.args ?? ["-u", "root"];
  const proc = Bun.spawn([...(opts.wrap ?? []), process.execPath, opts.main ?? MAIN, "manager", "--config", file, "--no-daemon", "-s", `inet:${port}@127.0.0.1`, ...args], {
    stdout: "pipe",
    stderr: "pipe",
    env: { ...process.env, NO_COLOR: "1" },
  });
  let out = "";
  void (async () => {
    for await (const chunk of proc.stdout as ReadableStream<Uint8Array>) out += Buffer.from(chunk).toString("latin1");
  })();
  let err = "";
  void (async () => {
    for await (const chunk of proc.stderr as ReadableStream<Uint8Array>) err += Buffer.from(chunk).toString("latin1");
  })();
  const output = () => out + err;
  const waitFor = async (text: string | RegExp, timeoutMs = 15_000) => {
    const deadline = Date.now() + timeoutMs;
    const has = () => (typeof text === "string" ? output().includes(text) : text.test(output()));
    while (!has()) {
      if (Date.now() > deadline || proc.exitCode !== null) return has();
      await Bun.sleep(20);
    }
    return true;
  };
  if (!(await waitFor("listening on"))) {
    proc.kill("SIGKILL");
    if (!opts.dir) rmSync(dir, { recursive: true, force: true });
    throw new Error(`manager did not start: ${output()}`);
  }
  return {
    proc,
    port,
    output,
    waitFor,
    fds: () => readdirSync(`/proc/${proc.pid}/fd`).length,
    peakKb: () => Number(/VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${proc.pid}/status`, "latin1"))![1]),
    async stop() {
      proc.kill("SIGTERM");
      const timer = setTimeout(() => proc.kill("SIGKILL"), 10_000);
      const code = await proc.exited;
      clearTimeout(timer);
      if (!opts.dir) rmSync(dir, { recursive: true, force: true });
      return code;
    },
  };
}

/** A negotiated MTA connection to the manager. */
export async function mtaFor(port: number, timeouts: { readingTimeoutMs?: number } = {}): Promise<MilterClient> {
  const mta = new MilterClient({
    spec: `inet:${port}@[127.0.0.1]`,
    connectionTimeoutMs: 5000,
    readingTimeoutMs: timeouts.readingTimeoutMs ?? 30_000,
    endOfMessageTimeoutMs: 60_000,
  });
  const neg = await mta.open();
  if (!neg.ok) throw new Error(neg.detail);
  return mta;
}
