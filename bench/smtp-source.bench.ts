// bun run bench/smtp-source.bench.ts [--quick]
//
// Three SMTP clients against Postfix's smtp-sink on 127.0.0.1, in one run:
//   postfix  Postfix's smtp-source (/usr/sbin/smtp-source)
//   ours     our smtp-source (dist/smtp-source)
//   floor    bench/smtp-source-floor.ts compiled like ours: a bare client that
//            speaks the same dialogue with the same bytes and does nothing
//            else, so it shows what the runtime allows on this machine.
// Modes: -s 1/10/50, with and without -d, with and without -P, SMTP and LMTP
// (-L; the sink speaks LMTP too); -l 1024, one recipient. Postfix's client
// has no -P: a -P row compares with its run without -P.
//
// Rounds are interleaved (every mode and client once per round, the order of
// the clients rotating), and medians over the rounds are printed, so the
// machine's other load hits every client alike; a ratio is the median of the
// rounds' ratios (a mode's clients run one after the other in a round). Each run gets a fresh sink on
// a fresh port (one connection per message leaves a TIME_WAIT socket per
// message on the address pair, which slows the next run's connect()).
//
// Every client and mode runs twice per round, with the full message count and
// with a quarter of it, one after the other. The steady rate and CPU per
// message come from the difference of the two (messages / wall time, and
// client CPU = user + system from the kernel's rusage at exit), so they hold
// neither the process start-up nor the JIT's warm-up (over within the short
// run), which a long run spreads thin and a short one does not. What the two
// leave over is printed apart:
// the fixed CPU of a run (long run's CPU - messages x steady CPU: start-up,
// compiling the hot code, exit) and, for reference, each client's least wall
// and CPU time for `-m 1` (process start, one connection, one message; load
// only ever adds to them), run twice per round. The sink's CPU per message is
// from /proc in 10 ms ticks over the long run.
//
// Knobs (environment): BENCH_ROUNDS (3), BENCH_SESSIONS ("1 10 50"),
// BENCH_M_CONN (messages per run without -d, 2000), BENCH_M_REUSE (with -d,
// 8000; with -d -P four times as many, so that every run lasts about as long
// and the JIT's warm-up weighs alike), BENCH_LMTP (1: also LMTP; 0: SMTP only; "only"), BENCH_REUSE (1: both;
// 0: without -d; "only"), BENCH_OURS (the command of ours, default
// dist/smtp-source). --quick: 2 rounds, -s 1 and 10, SMTP only, fewer messages.
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const ROOT = join(import.meta.dir, "..");
const QUICK = process.argv.includes("--quick");
const env = (k: string, dflt: string, quick = dflt) => process.env[k] ?? (QUICK ? quick : dflt);
const ROUNDS = Number(env("BENCH_ROUNDS", "3", "2"));
const SESSIONS = env("BENCH_SESSIONS", "1 10 50", "1 10").split(/\s+/).filter(Boolean).map(Number);
const M_CONN = Number(env("BENCH_M_CONN", "2000", "1000"));
const M_REUSE = Number(env("BENCH_M_REUSE", "8000", "4000"));
const LMTP = env("BENCH_LMTP", "1", "0");
const REUSE = env("BENCH_REUSE", "1");
const L = 1024;
const MYHOSTNAME = "bench.milterkit.test";
const PF_SOURCE = "/usr/sbin/smtp-source";
const PF_SINK = "/usr/sbin/smtp-sink";
const OURS = process.env.BENCH_OURS ? process.env.BENCH_OURS.split(" ") : [join(ROOT, "dist/smtp-source")];
const TICK_MS = 10; // /proc/PID/stat counts CPU time in 1/100 s

for (const p of [PF_SOURCE, PF_SINK, OURS[0]]) {
  if (!existsSync(p)) {
    console.error(`${p} is missing (apt-get install postfix; bun run build)`);
    process.exit(1);
  }
}

// The floor, compiled with the flags of our binary (build.ts) so that both start alike.
const tmp = mkdtempSync(join(tmpdir(), "mk-floor-"));
const FLOOR = join(tmp, "floor");
{
  const b = Bun.spawnSync([process.execPath, "build", "--compile", "--minify", "--bytecode", "--format=esm",
    "--no-compile-autoload-dotenv", "--no-compile-autoload-bunfig", join(import.meta.dir, "smtp-source-floor.ts"), "--outfile", FLOOR]);
  if (b.exitCode !== 0) throw new Error(`compiling the floor failed: ${b.stderr}`);
}
process.on("exit", () => rmSync(tmp, { recursive: true, force: true }));

type Client = "postfix" | "ours" | "floor";
const COMMAND: Record<Client, string[]> = {
  postfix: [PF_SOURCE],
  ours: [...OURS, "--no-summary"],
  floor: [FLOOR],
};

async function freePort(): Promise<number> {
  const s = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const p = s.port;
  s.stop(true);
  return p;
}

/** utime + stime of a live process in milliseconds. */
function cpuMs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "latin1");
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(f[11]) + Number(f[12])) * TICK_MS;
}

const asRoot = process.getuid?.() === 0;

async function startSink(lmtp: boolean): Promise<{ port: number; proc: ReturnType<typeof Bun.spawn> }> {
  const port = await freePort();
  const proc = Bun.spawn([PF_SINK, ...(asRoot ? ["-u", "nobody"] : []), ...(lmtp ? ["-L"] : []), "-4", `127.0.0.1:${port}`, "1024"],
    { stdout: "ignore", stderr: "inherit" });
  for (let i = 0; i < 100; i++) {
    try {
      const s = await Bun.connect({ hostname: "127.0.0.1", port, socket: { data() {} } });
      s.end();
      return { port, proc };
    } catch {
      await Bun.sleep(20);
    }
  }
  proc.kill("SIGKILL");
  throw new Error("smtp-sink did not start");
}

/** Wall and CPU time (ms) of one client run against a fresh sink, and the sink's CPU (ms). */
interface Raw { wallMs: number; cpuMs: number; sinkMs: number }

async function runOnce(client: Client, args: string[], lmtp: boolean): Promise<Raw> {
  const sink = await startSink(lmtp);
  try {
    await Bun.sleep(50); // the probe connection's close settles
    const sink0 = cpuMs(sink.proc.pid);
    const t0 = performance.now();
    const p = Bun.spawn([...COMMAND[client], ...args, `127.0.0.1:${sink.port}`], { stdout: "ignore", stderr: "pipe" });
    const timer = setTimeout(() => p.kill("SIGKILL"), 120_000);
    const [code, err] = await Promise.all([p.exited, new Response(p.stderr).text()]);
    clearTimeout(timer);
    const wallMs = performance.now() - t0;
    const sinkMs = cpuMs(sink.proc.pid) - sink0;
    if (code !== 0) throw new Error(`${client} ${args.join(" ")}: exit ${code}\n${err}`);
    const cpu = p.resourceUsage()?.cpuTime;
    return { wallMs, cpuMs: cpu ? Number(cpu.total) / 1000 : NaN, sinkMs };
  } finally {
    sink.proc.kill("SIGTERM");
    await sink.proc.exited;
  }
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

interface Mode { s: number; reuse: boolean; lmtp: boolean }
const modes: Mode[] = [];
const reuseSet = REUSE === "only" ? [true] : REUSE === "0" ? [false] : [false, true];
const lmtpSet = LMTP === "only" ? [true] : LMTP === "0" ? [false] : [false, true];
for (const lmtp of lmtpSet) for (const reuse of reuseSet) for (const s of SESSIONS) modes.push({ s, reuse, lmtp });

type Variant = "postfix" | "ours" | "floor" | "ours -P" | "floor -P";
const VARIANTS: Variant[] = ["postfix", "ours", "floor", "ours -P", "floor -P"];
const messages = (m: Mode, v: Variant) => (!m.reuse ? M_CONN : v.endsWith("-P") ? 4 * M_REUSE : M_REUSE);
const label = (m: Mode) => `${m.lmtp ? "-L " : ""}-s ${m.s}${m.reuse ? " -d" : ""}`;
const argsOf = (m: Mode, v: Variant, n: number) => [
  "-M", MYHOSTNAME, "-l", String(L), "-m", String(n), "-s", String(m.s),
  ...(m.reuse ? ["-d"] : []), ...(m.lmtp ? ["-L"] : []), ...(v.endsWith("-P") ? ["-P"] : []),
];
const clientOf = (v: Variant) => v.split(" ")[0] as Client;

const SHORT = 4; // the short run has 1/SHORT of the messages
const raw = new Map<string, { long: Raw; short: Raw }[]>();
const push = (k: string, r: { long: Raw; short: Raw }) => (raw.get(k) ?? raw.set(k, []).get(k)!).push(r);
const startup: Record<Client, Raw[]> = { postfix: [], ours: [], floor: [] };

const t0 = performance.now();
console.log(`load: ${readFileSync("/proc/loadavg", "latin1").trim()}; ${ROUNDS} rounds of ${modes.length} modes`);
for (let round = 0; round < ROUNDS; round++) {
  for (let k = 0; k < 2; k++) {
    for (const c of ["postfix", "ours", "floor"] as Client[]) {
      startup[c].push(await runOnce(c, ["-M", MYHOSTNAME, "-l", String(L), "-m", "1"], false));
    }
  }
  for (const [i, m] of modes.entries()) {
    const order = VARIANTS.map((_, j) => VARIANTS[(j + round + i) % VARIANTS.length]);
    for (const v of order) {
      const n = messages(m, v);
      const short = await runOnce(clientOf(v), argsOf(m, v, Math.round(n / SHORT)), m.lmtp);
      const long = await runOnce(clientOf(v), argsOf(m, v, n), m.lmtp);
      push(`${label(m)}|${v}`, { long, short });
    }
  }
  console.log(`round ${round + 1}/${ROUNDS} done, ${((performance.now() - t0) / 1000).toFixed(0)} s`);
}

const up: Record<Client, { wallMs: number; cpuMs: number }> = {} as any;
for (const c of ["postfix", "ours", "floor"] as Client[]) {
  up[c] = { wallMs: Math.min(...startup[c].map((r) => r.wallMs)), cpuMs: Math.min(...startup[c].map((r) => r.cpuMs)) };
}

/** Per round (r) and as the median over the rounds. */
interface Steady { rate: number; cpuUs: number; fixedMs: number; wholeUs: number; sinkUs: number; r: { rate: number[]; cpuUs: number[]; wholeUs: number[] } }
function steady(m: Mode, v: Variant): Steady {
  const rs = raw.get(`${label(m)}|${v}`)!;
  const n = messages(m, v), d = n - Math.round(n / SHORT);
  const r = {
    rate: rs.map((x) => d / ((x.long.wallMs - x.short.wallMs) / 1000)),
    cpuUs: rs.map((x) => ((x.long.cpuMs - x.short.cpuMs) * 1000) / d),
    wholeUs: rs.map((x) => (x.long.cpuMs * 1000) / n),
  };
  const cpuUs = median(r.cpuUs);
  const longCpu = median(rs.map((x) => x.long.cpuMs));
  return {
    rate: d / (median(rs.map((x) => x.long.wallMs - x.short.wallMs)) / 1000),
    cpuUs,
    fixedMs: longCpu - (cpuUs * n) / 1000,
    wholeUs: (longCpu * 1000) / n,
    sinkUs: median(rs.map((x) => (x.long.sinkMs * 1000) / n)),
    r,
  };
}
/** The median of the per-round ratios: both runs of a round met the same load. */
const ratio = (a: number[], b: number[]) => median(a.map((x, i) => x / b[i]));

const f0 = (x: number) => x.toFixed(0);
const f1 = (x: number) => x.toFixed(1);
const f2 = (x: number) => x.toFixed(2);
console.log(`\nsmtp-source -l ${L} against Postfix's smtp-sink; ${ROUNDS} rounds, medians; -m ${M_CONN} (one connection per message), ${M_REUSE} (-d) or ${4 * M_REUSE} (-d -P), each also with 1/${SHORT} of it`);
console.log(`ours = ${OURS.join(" ")}; load now: ${readFileSync("/proc/loadavg", "latin1").trim()}`);
console.log("\nstart-up (-m 1: process start, one connection, one message), least wall / CPU ms:");
for (const c of ["postfix", "ours", "floor"] as Client[]) console.log(`  ${c.padEnd(8)} ${up[c].wallMs.toFixed(1)} / ${up[c].cpuMs.toFixed(1)}`);
console.log("\nsteady rate (msg/s) and client CPU µs/msg: from the difference of the long and the short run, so without start-up and JIT warm-up;");
console.log("ratio = ours / floor, ours / Postfix (a -P row compares with Postfix without -P), the median of the rounds' ratios. fixed = CPU ms of the long run beyond messages x steady CPU");
console.log("(start-up, JIT warm-up, exit); whole = the long run's CPU / messages, everything included");
console.log("| mode | Postfix msg/s | ours msg/s | floor msg/s | ours/floor | ours/Postfix | floor/Postfix | CPU µs Postfix | CPU µs ours | CPU µs floor | CPU ours/floor | fixed CPU ms (pf / ours / floor) | whole CPU µs ours / floor (ratio) | sink CPU µs (pf / ours / floor) |");
console.log("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
for (const m of modes) {
  const pf = steady(m, "postfix");
  for (const p of ["", " -P"]) {
    const o = steady(m, `ours${p}` as Variant), fl = steady(m, `floor${p}` as Variant);
    console.log(`| ${label(m)}${p} | ${f0(pf.rate)} | ${f0(o.rate)} | ${f0(fl.rate)} | ${f2(ratio(o.r.rate, fl.r.rate))} | ${f2(ratio(o.r.rate, pf.r.rate))} | ${f2(ratio(fl.r.rate, pf.r.rate))} | ` +
      `${f1(pf.cpuUs)} | ${f1(o.cpuUs)} | ${f1(fl.cpuUs)} | ${f2(ratio(o.r.cpuUs, fl.r.cpuUs))} | ${f0(pf.fixedMs)} / ${f0(o.fixedMs)} / ${f0(fl.fixedMs)} | ` +
      `${f1(o.wholeUs)} / ${f1(fl.wholeUs)} (${f2(ratio(o.r.wholeUs, fl.r.wholeUs))}) | ${f0(pf.sinkUs)} / ${f0(o.sinkUs)} / ${f0(fl.sinkUs)} |`);
  }
}
console.log(`\ntotal ${((performance.now() - t0) / 1000).toFixed(0)} s`);
