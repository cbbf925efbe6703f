// bun run bench/smtp-source.bench.ts
//
// Postfix's smtp-source and ours, in turn, against Postfix's smtp-sink on
// 127.0.0.1: `-m M -l 1024 -s S` for S in 1 10 50, ours also with -P; then
// the same with -d (one connection per session). Prints messages/second (wall
// time around each process, start-up included, as docs/postfix-bench.md
// measures), the ratio ours / Postfix's pair by pair (medians over the
// repeats), and the CPU time per message of the client and of the sink.
//
// Knobs (environment): BENCH_M (10000), BENCH_L (1024), BENCH_SESSIONS ("1 10 50"),
// BENCH_REPEAT (1), BENCH_REUSE (1: also the -d set; "only": just that set),
// BENCH_OURS (dist/smtp-source if built, else "bun src/main.ts smtp-source").
//
// Every run gets a fresh sink on a fresh port: one connection per message
// leaves a TIME_WAIT socket per message behind, and thousands of them on the
// same address pair slow down the next run's connect() (the kernel searches
// longer for a free local port). A new port has none, so every run starts alike.
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";

const ROOT = join(import.meta.dir, "..");
const M = Number(process.env.BENCH_M ?? 10000);
const L = Number(process.env.BENCH_L ?? 1024);
const SESSIONS = (process.env.BENCH_SESSIONS ?? "1 10 50").split(/\s+/).filter(Boolean).map(Number);
const REPEAT = Number(process.env.BENCH_REPEAT ?? 1);
const REUSE = process.env.BENCH_REUSE ?? "1";
const PF_SOURCE = "/usr/sbin/smtp-source";
const PF_SINK = "/usr/sbin/smtp-sink";
const OURS = process.env.BENCH_OURS
  ? process.env.BENCH_OURS.split(" ")
  : existsSync(join(ROOT, "dist/smtp-source")) ? [join(ROOT, "dist/smtp-source")] : [process.execPath, join(ROOT, "src/main.ts"), "smtp-source"];
const TICK_MS = 10; // /proc/PID/stat counts CPU time in 1/100 s

for (const p of [PF_SOURCE, PF_SINK]) {
  if (!existsSync(p)) {
    console.error(`${p} is missing (apt-get install postfix)`);
    process.exit(1);
  }
}

async function freePort(): Promise<number> {
  const s = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const p = s.port;
  s.stop(true);
  return p;
}

/** utime + stime of a process in milliseconds. */
function cpuMs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "latin1");
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(f[11]) + Number(f[12])) * TICK_MS;
}

const asRoot = process.getuid?.() === 0;

async function startSink(): Promise<{ port: number; proc: ReturnType<typeof Bun.spawn> }> {
  const port = await freePort();
  const proc = Bun.spawn([PF_SINK, ...(asRoot ? ["-u", "nobody"] : []), "-4", `127.0.0.1:${port}`, "1024"], { stdout: "ignore", stderr: "inherit" });
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

interface Run { rate: number; clientMs: number; sinkMs: number }

/** One run against a fresh sink: messages/second by wall time, CPU per message; throws if the run failed. */
async function runOnce(cmd: string[], args: string[]): Promise<Run> {
  const sink = await startSink();
  try {
    await Bun.sleep(100); // the probe connection's close settles
    const sink0 = cpuMs(sink.proc.pid);
    const t0 = performance.now();
    const p = Bun.spawn([...cmd, ...args, `127.0.0.1:${sink.port}`], { stdout: "ignore", stderr: "pipe" });
    const timer = setTimeout(() => p.kill("SIGKILL"), 600_000);
    const [code, err] = await Promise.all([p.exited, new Response(p.stderr).text()]);
    clearTimeout(timer);
    const secs = (performance.now() - t0) / 1000;
    const sinkMs = cpuMs(sink.proc.pid) - sink0;
    if (code !== 0) throw new Error(`${cmd.join(" ")}: exit ${code}\n${err}`);
    const cpu = p.resourceUsage()?.cpuTime;
    const clientMs = cpu ? Number(cpu.total) / 1000 : NaN;
    return { rate: M / secs, clientMs: clientMs / M, sinkMs: sinkMs / M };
  } finally {
    sink.proc.kill("SIGTERM");
    await sink.proc.exited;
  }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const medianRun = (rs: Run[]): Run => ({
  rate: median(rs.map((r) => r.rate)), clientMs: median(rs.map((r) => r.clientMs)), sinkMs: median(rs.map((r) => r.sinkMs)),
});

interface Row { label: string; pf: Run; ours: Run; oursP: Run }
const rows: Row[] = [];
const us = (ms: number) => `${(ms * 1000).toFixed(0)}`;

const sets = REUSE === "only" ? [true] : REUSE === "1" ? [false, true] : [false];
for (const reuse of sets) {
  for (const s of SESSIONS) {
    const common = ["-m", String(M), "-l", String(L), "-s", String(s), ...(reuse ? ["-d"] : [])];
    const pf: Run[] = [];
    const ours: Run[] = [];
    const oursP: Run[] = [];
    for (let r = 0; r < REPEAT; r++) {
      pf.push(await runOnce([PF_SOURCE], common));
      ours.push(await runOnce([...OURS, "--no-summary"], common));
      oursP.push(await runOnce([...OURS, "--no-summary", "-P"], common));
    }
    const row = { label: `-s ${s}${reuse ? " -d" : ""}`, pf: medianRun(pf), ours: medianRun(ours), oursP: medianRun(oursP) };
    rows.push(row);
    console.log(`${row.label.padEnd(8)} postfix ${row.pf.rate.toFixed(0).padStart(6)} msg/s  ours ${row.ours.rate.toFixed(0).padStart(6)} msg/s ` +
      `(x${(row.ours.rate / row.pf.rate).toFixed(2)})  ours -P ${row.oursP.rate.toFixed(0).padStart(6)} msg/s (x${(row.oursP.rate / row.pf.rate).toFixed(2)})`);
  }
}

console.log(`\nsmtp-source -m ${M} -l ${L} against Postfix's smtp-sink, ${REPEAT} run(s) each, median msg/s by wall time; ours = ${OURS.join(" ")}`);
console.log("CPU µs/msg: client / sink (the sink's in 10 ms ticks)");
console.log("| sessions | Postfix msg/s | ours msg/s | ratio | ours -P msg/s | ratio -P | CPU Postfix | CPU ours | CPU ours -P |");
console.log("|---|---|---|---|---|---|---|---|---|");
for (const r of rows) {
  const cpu = (x: Run) => `${us(x.clientMs)} / ${us(x.sinkMs)}`;
  console.log(`| ${r.label} | ${r.pf.rate.toFixed(0)} | ${r.ours.rate.toFixed(0)} | ${(r.ours.rate / r.pf.rate).toFixed(2)} | ` +
    `${r.oursP.rate.toFixed(0)} | ${(r.oursP.rate / r.pf.rate).toFixed(2)} | ${cpu(r.pf)} | ${cpu(r.ours)} | ${cpu(r.oursP)} |`);
}
