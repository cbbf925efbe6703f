/**
 * Throughput of `milterkit test-client --no-report-request` against a libmilter C milter that also
 * answers continue (test/fixtures/milters/bench-milter.c, built with `cc … -lmilter`), in the same run.
 *
 *   bun run bench/test-client.bench.ts [--sessions N] [--concurrency 1,10,50] [--rounds 2] [--max-seconds 60]
 *
 * A small load driver in this process plays the MTA: per session OPTNEG, then one write per protocol
 * step (macros + command, as Postfix does) and a wait for each reply, one message (the session of
 * docs/tools.md §1.5: connect, helo, mail, 2 rcpt, data, 3 headers, eoh, 2 body chunks, eom), quit.
 * Two modes:
 *   - negotiated: the driver honours what each milter negotiated (libmilter's sample registers only
 *     end-of-message and asks the MTA to skip every other event, as a real MTA would);
 *   - full: every event is sent to both milters (equal work; libmilter answers skipped events itself).
 * Reported per run: messages/s (wall clock) and CPU ms per message of the MILTER process
 * (/proc/<pid>/stat utime+stime, all threads), and our/libmilter ratios. Bounded in count and time.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import type { Socket } from "bun";
import { decodeReply, encodeCommands, type MilterReply, type MtaCommand, type Negotiated, negotiateAsMta, PacketReader } from "../src/milter/index.ts";

const ROOT = resolve(import.meta.dir, "..");
const arg = (name: string, dflt: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : dflt;
};
const SESSIONS = Number(arg("sessions", "2000"));
const CONCURRENCY = arg("concurrency", "1,10,50").split(",").map(Number);
const ROUNDS = Number(arg("rounds", "2"));
const MAX_SECONDS = Number(arg("max-seconds", "60"));
const MODES = arg("modes", "negotiated,full").split(",") as ("negotiated" | "full")[];
const TRANSPORTS = arg("transports", "tcp,unix").split(",") as Transport[];
type Transport = "tcp" | "unix";
/** Where a milter listens: a TCP port on 127.0.0.1 or a unix socket path. */
type Address = { port: number } | { unix: string };

// ---------------------------------------------------------------------------
// The MTA side of one session, minimal and allocation-light.

const macro = (command: string, pairs: [string, string][]): MtaCommand => ({ type: "macro", command, macros: new Map(pairs) });
const OFFER = { type: "optneg", version: 6, actions: 0x1ff, protocol: 0x1fffff } as const;
/** Steps after OPTNEG: [macros, command]. */
const STEPS: [MtaCommand | undefined, MtaCommand][] = [
  [macro("C", [["j", "mx.bench.test"], ["{daemon_name}", "mx.bench.test"], ["v", "Postfix 3.7.11"]]), { type: "connect", hostname: "client.bench.test", family: "4", port: 50443, address: "192.0.2.10" }],
  [macro("H", []), { type: "helo", hostname: "client.bench.test" }],
  [macro("M", [["{mail_addr}", "alice@example.com"]]), { type: "mail", address: "<alice@example.com>", args: ["SIZE=300"] }],
  [macro("R", [["{rcpt_addr}", "bob@example.org"]]), { type: "rcpt", address: "<bob@example.org>", args: [] }],
  [macro("R", [["{rcpt_addr}", "carol@example.org"], ["i", "4ABC123"]]), { type: "rcpt", address: "<carol@example.org>", args: [] }],
  [macro("T", [["i", "4ABC123"]]), { type: "data" }],
  [macro("L", [["i", "4ABC123"]]), { type: "header", name: "From", value: "alice@example.com" }],
  [macro("L", [["i", "4ABC123"]]), { type: "header", name: "To", value: "bob@example.org" }],
  [macro("L", [["i", "4ABC123"]]), { type: "header", name: "Subject", value: "milterkit bench" }],
  [macro("N", [["i", "4ABC123"]]), { type: "eoh" }],
  [macro("B", [["i", "4ABC123"]]), { type: "body", chunk: Buffer.from("Hello,\r\nthis is a small fixed test body.\r\n") }],
  [macro("B", [["i", "4ABC123"]]), { type: "body", chunk: Buffer.from("Bye.\r\n") }],
  [macro("E", [["i", "4ABC123"]]), { type: "eob" }],
];
const OFFER_BYTES = encodeCommands([OFFER]);
const QUIT_BYTES = encodeCommands([{ type: "abort" }, { type: "quit" }]);

interface Plan {
  /** Encoded step and whether it is answered. */
  steps: { bytes: Buffer; reply: boolean }[];
}

function plan(n: Negotiated, mode: "negotiated" | "full"): Plan {
  const steps: Plan["steps"] = [];
  for (const [m, cmd] of STEPS) {
    if (mode === "negotiated" && !n.sends(cmd.type)) continue;
    steps.push({ bytes: encodeCommands(m ? [m, cmd] : [cmd]), reply: n.expectsReply(cmd.type) });
  }
  return { steps };
}

type Conn = { reader: PacketReader; replies: MilterReply[]; wake?: () => void; closed: boolean };

function oneSession(addr: Address, mode: "negotiated" | "full", plans: Map<string, Plan>): Promise<void> {
  return new Promise((resolveSession, reject) => {
    const st: Conn = { reader: new PacketReader(), replies: [], closed: false };
    const timer = setTimeout(() => reject(new Error("session timed out (10 s)")), 10_000);
    const socket = {
      open(s: Socket<Conn>) {
        if (!("unix" in addr)) s.setNoDelay(true);
        void run(s);
      },
      data(_s: Socket<Conn>, d: Buffer) {
        st.reader.push(d, (c, p) => st.replies.push(decodeReply(c, p)));
        st.wake?.();
      },
      close() {
        st.closed = true;
        st.wake?.();
      },
      error() {
        st.closed = true;
        st.wake?.();
      },
    };
    ("unix" in addr ? Bun.connect<Conn>({ unix: addr.unix, data: st, socket }) : Bun.connect<Conn>({ hostname: "127.0.0.1", port: addr.port, data: st, socket })).catch(reject);
    const next = async (): Promise<MilterReply> => {
      while (st.replies.length === 0) {
        if (st.closed) throw new Error("milter closed the connection");
        await new Promise<void>((r) => (st.wake = r));
      }
      return st.replies.shift()!;
    };
    const decision = async (): Promise<void> => {
      for (;;) {
        const r = await next();
        if (r.type !== "progress" && r.type !== "addheader") return;
      }
    };
    async function run(s: Socket<Conn>) {
      try {
        s.write(OFFER_BYTES);
        const o = await next();
        if (o.type !== "optneg") throw new Error(`expected O, got ${o.type}`);
        const key = `${o.version}/${o.actions}/${o.protocol}`;
        let p = plans.get(key);
        if (!p) {
          p = plan(negotiateAsMta(OFFER, o), mode);
          plans.set(key, p);
        }
        for (const step of p.steps) {
          s.write(step.bytes);
          if (step.reply) await decision();
        }
        s.write(QUIT_BYTES);
        s.end();
        clearTimeout(timer);
        resolveSession();
      } catch (e) {
        clearTimeout(timer);
        s.end();
        reject(e);
      }
    }
  });
}

async function load(addr: Address, n: number, c: number, mode: "negotiated" | "full"): Promise<{ done: number; seconds: number; failed: number }> {
  const plans = new Map<string, Plan>();
  let started = 0;
  let done = 0;
  let failed = 0;
  const deadline = performance.now() + MAX_SECONDS * 1000;
  const t0 = performance.now();
  const worker = async () => {
    while (started < n && performance.now() < deadline) {
      started++;
      try {
        await oneSession(addr, mode, plans);
        done++;
      } catch {
        failed++;
      }
    }
  };
  await Promise.all(Array.from({ length: c }, worker));
  return { done, failed, seconds: (performance.now() - t0) / 1000 };
}

// ---------------------------------------------------------------------------
// The two milters

const TICK_MS = 1000 / 100; // CLK_TCK = 100 on Linux
function cpuMs(pid: number): number {
  const st = readFileSync(`/proc/${pid}/stat`, "latin1");
  const f = st.slice(st.lastIndexOf(")") + 2).split(" ");
  return (Number(f[11]) + Number(f[12])) * TICK_MS; // utime, stime (fields 14, 15)
}

async function freePort(): Promise<number> {
  const s = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const p = s.port;
  s.stop(true);
  return p;
}

async function waitPort(addr: Address, proc: { exitCode: number | null }): Promise<void> {
  const end = Date.now() + 15_000;
  for (;;) {
    try {
      const s = await ("unix" in addr ? Bun.connect({ unix: addr.unix, socket: { data() {} } }) : Bun.connect({ hostname: "127.0.0.1", port: addr.port, socket: { data() {} } }));
      s.end();
      return;
    } catch {}
    if (proc.exitCode !== null || Date.now() > end) throw new Error(`milter on ${JSON.stringify(addr)} did not start`);
    await Bun.sleep(20);
  }
}

function buildBinary(tmp: string): string {
  const out = join(tmp, "milterkit");
  const b = Bun.spawnSync({
    cmd: [process.execPath, "build", "--compile", "--minify", "--bytecode", "--format=esm", "--no-compile-autoload-dotenv", "--no-compile-autoload-bunfig", join(ROOT, "src/main.ts"), "--outfile", out],
    stdout: "pipe", stderr: "pipe",
  });
  if (b.exitCode !== 0) throw new Error(`bun build failed: ${b.stderr}`);
  return out;
}

function buildLibmilter(tmp: string): string {
  const out = join(tmp, "bench-milter");
  const b = Bun.spawnSync({ cmd: ["cc", "-O2", "-Wall", "-o", out, join(ROOT, "test/fixtures/milters/bench-milter.c"), "-lmilter", "-lpthread"], stdout: "pipe", stderr: "pipe" });
  if (b.exitCode !== 0) throw new Error(`cc bench-milter.c failed (install libmilter-dev): ${b.stderr}`);
  return out;
}

interface Milter {
  name: string;
  start(addr: Address): string[];
}

let sockN = 0;
async function measure(m: Milter, c: number, mode: "negotiated" | "full", transport: Transport) {
  const addr: Address = transport === "unix" ? { unix: join(tmp, `m${++sockN}.sock`) } : { port: await freePort() };
  const proc = Bun.spawn({ cmd: m.start(addr), stdout: "ignore", stderr: "ignore" });
  try {
    await waitPort(addr, proc);
    await load(addr, Math.min(200, SESSIONS), c, mode); // warm-up
    const cpu0 = cpuMs(proc.pid);
    const r = await load(addr, SESSIONS, c, mode);
    const cpu = cpuMs(proc.pid) - cpu0;
    return { ...r, mps: r.done / r.seconds, cpuPerMsg: cpu / Math.max(1, r.done) };
  } finally {
    proc.kill("SIGKILL");
    await proc.exited;
  }
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

const tmp = mkdtempSync(join(tmpdir(), "mk-bench-tc-"));
try {
  const bin = buildBinary(tmp);
  const lm = buildLibmilter(tmp);
  const spec = (a: Address) => ("unix" in a ? `unix:${a.unix}` : `inet:${a.port}@127.0.0.1`);
  // -u root: the benchmark runs as root, and the socket files live in our private 700 directory
  const ours: Milter = { name: "milterkit test-client", start: (a) => [bin, "test-client", "-s", spec(a), "--no-report-request", "-q", ...(process.getuid?.() === 0 ? ["-u", "root"] : [])] };
  const theirs: Milter = { name: "libmilter bench-milter", start: (a) => [lm, "-s", spec(a)] };
  console.log(`# milterkit test-client vs libmilter C milter — ${SESSIONS} sessions × 1 message per run, ${ROUNDS} rounds, median`);
  console.log(`# ${new Date().toISOString()}  bun ${Bun.version}  cpus ${navigator.hardwareConcurrency}  loadavg ${readFileSync("/proc/loadavg", "latin1").split(" ").slice(0, 3).join(" ")}`);
  console.log("| transport | mode | conc | ours msg/s | libmilter msg/s | speed ratio (ours/lm) | ours CPU ms/msg | libmilter CPU ms/msg | CPU ratio (ours/lm) | failed |");
  console.log("|---|---|---|---|---|---|---|---|---|---|");
  for (const transport of TRANSPORTS) for (const mode of MODES) {
    for (const c of CONCURRENCY) {
      const a: Awaited<ReturnType<typeof measure>>[] = [];
      const b: Awaited<ReturnType<typeof measure>>[] = [];
      for (let i = 0; i < ROUNDS; i++) {
        a.push(await measure(ours, c, mode, transport));
        b.push(await measure(theirs, c, mode, transport));
      }
      const am = median(a.map((x) => x.mps));
      const bm = median(b.map((x) => x.mps));
      const ac = median(a.map((x) => x.cpuPerMsg));
      const bc = median(b.map((x) => x.cpuPerMsg));
      const failed = [...a, ...b].reduce((n, x) => n + x.failed, 0);
      console.log(`| ${transport} | ${mode} | ${c} | ${am.toFixed(0)} | ${bm.toFixed(0)} | ${(am / bm).toFixed(2)} | ${ac.toFixed(3)} | ${bc.toFixed(3)} | ${(ac / bc).toFixed(2)} | ${failed} |`);
    }
  }
} finally {
  rmSync(tmp, { recursive: true, force: true });
}
void existsSync;
