// bun run bench/smtp-source.bench.ts
//
// Postfix's smtp-source and ours, in turn, against the same Postfix smtp-sink
// on 127.0.0.1: `-m M -l 1024 -s S` for S in 1 10 50, ours also with -P; then
// the same with -d (one connection per session). Prints messages/second (wall
// time around each process, as docs/postfix-bench.md measures) and the ratio
// ours / Postfix's, pair by pair (medians over the repeats).
//
// Knobs (environment): BENCH_M (10000), BENCH_L (1024), BENCH_SESSIONS ("1 10 50"),
// BENCH_REPEAT (1), BENCH_REUSE (1: also the -d set), BENCH_TW_MAX (3000),
// BENCH_OURS (dist/smtp-source if built, else "bun src/main.ts smtp-source").
//
// One connection per message leaves one TIME_WAIT socket per message at the
// sink; thousands of them slow connect() down for whoever runs next. Before
// each run the script waits (at most 75 s) until fewer than BENCH_TW_MAX
// TIME_WAIT sockets of the sink's port remain, so every run starts alike.
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";

const ROOT = join(import.meta.dir, "..");
const M = Number(process.env.BENCH_M ?? 10000);
const L = Number(process.env.BENCH_L ?? 1024);
const SESSIONS = (process.env.BENCH_SESSIONS ?? "1 10 50").split(/\s+/).filter(Boolean).map(Number);
const REPEAT = Number(process.env.BENCH_REPEAT ?? 1);
const REUSE = (process.env.BENCH_REUSE ?? "1") === "1";
const TW_MAX = Number(process.env.BENCH_TW_MAX ?? 3000);
const PF_SOURCE = "/usr/sbin/smtp-source";
const PF_SINK = "/usr/sbin/smtp-sink";
const OURS = process.env.BENCH_OURS
  ? process.env.BENCH_OURS.split(" ")
  : existsSync(join(ROOT, "dist/smtp-source")) ? [join(ROOT, "dist/smtp-source")] : [process.execPath, join(ROOT, "src/main.ts"), "smtp-source"];

for (const p of [PF_SOURCE, PF_SINK]) {
  if (!existsSync(p)) {
    console.error(`${p} is missing (apt-get install postfix)`);
    process.exit(1);
  }
}

/** TIME_WAIT sockets whose local port is `port` (the sink's side of closed sessions). */
function timeWait(port: number): number {
  const hex = `:${port.toString(16).toUpperCase().padStart(4, "0")}`;
  let n = 0;
  for (const f of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    let text = "";
    try { text = readFileSync(f, "latin1"); } catch { continue; }
    for (const line of text.split("\n")) {
      const c = line.trim().split(/\s+/);
      if (c[3] === "06" && c[1]?.endsWith(hex)) n++;
    }
  }
  return n;
}

async function settle(port: number): Promise<void> {
  const end = Date.now() + 75_000;
  while (timeWait(port) >= TW_MAX && Date.now() < end) await Bun.sleep(500);
}

async function freePort(): Promise<number> {
  const s = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const p = s.port;
  s.stop(true);
  return p;
}

const port = await freePort();
const asRoot = process.getuid?.() === 0;
const sink = Bun.spawn([PF_SINK, ...(asRoot ? ["-u", "nobody"] : []), "-4", `127.0.0.1:${port}`, "1024"], { stdout: "ignore", stderr: "inherit" });
for (let i = 0; i < 100; i++) {
  try {
    const s = await Bun.connect({ hostname: "127.0.0.1", port, socket: { data() {} } });
    s.end();
    break;
  } catch {
    await Bun.sleep(50);
  }
}

/** One run: messages/second by wall time; throws if the run failed. */
async function runOnce(cmd: string[]): Promise<number> {
  await settle(port);
  const t0 = performance.now();
  const p = Bun.spawn(cmd, { stdout: "ignore", stderr: "pipe" });
  const timer = setTimeout(() => p.kill("SIGKILL"), 600_000);
  const [code, err] = await Promise.all([p.exited, new Response(p.stderr).text()]);
  clearTimeout(timer);
  const secs = (performance.now() - t0) / 1000;
  if (code !== 0) throw new Error(`${cmd.join(" ")}: exit ${code}\n${err}`);
  return M / secs;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

interface Row { label: string; pf: number; ours: number; oursP: number }
const rows: Row[] = [];

try {
  const sets = REUSE ? [false, true] : [false];
  for (const reuse of sets) {
    for (const s of SESSIONS) {
      const common = ["-m", String(M), "-l", String(L), "-s", String(s), ...(reuse ? ["-d"] : []), `127.0.0.1:${port}`];
      const pf: number[] = [];
      const ours: number[] = [];
      const oursP: number[] = [];
      for (let r = 0; r < REPEAT; r++) {
        pf.push(await runOnce([PF_SOURCE, ...common]));
        ours.push(await runOnce([...OURS, "--no-summary", ...common]));
        oursP.push(await runOnce([...OURS, "--no-summary", "-P", ...common]));
      }
      const row = { label: `-s ${s}${reuse ? " -d" : ""}`, pf: median(pf), ours: median(ours), oursP: median(oursP) };
      rows.push(row);
      console.log(`${row.label.padEnd(8)} postfix ${row.pf.toFixed(0).padStart(6)} msg/s  ours ${row.ours.toFixed(0).padStart(6)} msg/s ` +
        `(x${(row.ours / row.pf).toFixed(2)})  ours -P ${row.oursP.toFixed(0).padStart(6)} msg/s (x${(row.oursP / row.pf).toFixed(2)})`);
    }
  }
} finally {
  sink.kill("SIGTERM");
  await sink.exited;
}

console.log(`\nsmtp-source -m ${M} -l ${L} against Postfix's smtp-sink, ${REPEAT} run(s) each, median msg/s by wall time; ours = ${OURS.join(" ")}`);
console.log("| sessions | Postfix msg/s | ours msg/s | ratio | ours -P msg/s | ratio -P |");
console.log("|---|---|---|---|---|---|");
for (const r of rows) {
  console.log(`| ${r.label} | ${r.pf.toFixed(0)} | ${r.ours.toFixed(0)} | ${(r.ours / r.pf).toFixed(2)} | ${r.oursP.toFixed(0)} | ${(r.oursP / r.pf).toFixed(2)} |`);
}
