/**
 * JavaScript objects the manager allocates per message, by type (JavaScriptCore's heap counts).
 *
 *   bun run bench/manager-alloc.bench.ts [--transport unix|tcp] [--messages 100] [--windows 12]
 *       [--warmup 6000] [--top 25]
 *
 * The load of bench/manager.bench.ts (test-server load engine, -m small.eml, concurrency 10)
 * against `manager --no-daemon` with two `test-client` children, all from src/main.ts. The
 * manager runs with bench/lib/heap-stats-preload.ts: before and after each window of --messages
 * messages it writes its heap's object counts per type. Bun's GC timer is off in that process and
 * the heap sized large, so that collections are rare; one inside a window lowers the difference, so
 * the window with the largest total is reported: what one message allocates. Fewer objects per message means fewer collections and a smaller heap at the next one.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { runLoad } from "../src/test-server/load.ts";
import { parseTestServerArgs } from "../src/test-server/options.ts";
import { buildPlan } from "../src/test-server/plan.ts";
import { makeTempDir } from "../test/e2e/lib/dirs.ts";
import { freePort, waitForPort, waitForUnix } from "../test/e2e/lib/ports.ts";
import { cleanEnv, sleep, spawnTracked, stopPid, type Spawned } from "../test/e2e/lib/proc.ts";

const ROOT = resolve(import.meta.dir, "..");
const MAIN = join(ROOT, "src/main.ts");
const arg = (name: string, dflt: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : dflt;
};
const TRANSPORT = arg("transport", "unix");
const MESSAGES = Number(arg("messages", "100"));
const WINDOWS = Number(arg("windows", "12"));
const WARMUP = Number(arg("warmup", "6000")); // JavaScriptCore still compiles (and allocates for it) at a few thousand
const TOP = Number(arg("top", "25"));

const tmp = makeTempDir("mk-bench-alloc-");
let n = 0;
const newSpec = async () => (TRANSPORT === "unix" ? `unix:${join(tmp, `s${++n}.sock`)}` : `inet:${await freePort()}@[127.0.0.1]`);
async function waitSpec(spec: string, p: Spawned, what: string): Promise<void> {
  const o = { pid: p.pid, logFile: p.logFile, what };
  if (spec.startsWith("unix:")) await waitForUnix(spec.slice(5), 15_000, o);
  else await waitForPort("127.0.0.1", Number(/^inet:(\d+)@/.exec(spec)![1]), 15_000, o);
}

const asRoot = process.getuid?.() === 0;
const started: Spawned[] = [];
const children: string[] = [];
for (const label of ["child-1", "child-2"]) {
  const spec = await newSpec();
  const p = spawnTracked([process.execPath, MAIN, "test-client", "--no-report-request", "-s", spec, ...(asRoot ? ["-u", "root"] : [])], {
    logFile: join(tmp, `${label}.log`),
    what: label,
    cwd: ROOT,
  });
  started.push(p);
  await waitSpec(spec, p, label);
  children.push(spec);
}
const spec = await newSpec();
const config = join(tmp, "manager.json");
writeFileSync(
  config,
  JSON.stringify({
    security: { privilege_mode: false, ...(asRoot ? { effective_user: "root" } : {}) },
    log: { level: "default", use_syslog: false },
    manager: { connection_spec: spec },
    milters: children.map((c, i) => ({ name: `test-client-${i + 1}`, connection_spec: c })),
  }),
);
const statsFile = join(tmp, "heap-stats.jsonl");
const manager = spawnTracked([process.execPath, "--preload", join(ROOT, "bench/lib/heap-stats-preload.ts"), MAIN, "manager", "--config", config, "--no-daemon"], {
  logFile: join(tmp, "manager.log"),
  what: "milterkit manager",
  cwd: ROOT,
  // No collection inside a window if it can be helped: Bun's GC timer off, JavaScriptCore's heap sized as for a big machine.
  env: cleanEnv({ MK_HEAP_STATS_OUT: statsFile, BUN_GC_TIMER_DISABLE: "1", BUN_JSC_forceRAMSize: "64000000000", BUN_JSC_largeHeapSize: "8000000000" }),
});
started.push(manager);
await waitSpec(spec, manager, "milterkit manager");

const plan = buildPlan(parseTestServerArgs(["-m", join(ROOT, "test/fixtures/test-server/small.eml")], { readFile: (p) => readFileSync(p), env: {} }));
const TIMEOUTS = { connectionTimeoutMs: 10_000, readingTimeoutMs: 10_000, writingTimeoutMs: 10_000, endOfMessageTimeoutMs: 10_000 };
const load = (sessions: number) => runLoad({ plan, client: { spec, ...TIMEOUTS }, sessions, concurrency: 10, maxTimeMs: 120_000 });

type Sample = { heapSize: number; counts: Record<string, number> };
let lines = 0;
async function sample(): Promise<Sample> {
  process.kill(manager.pid, "SIGWINCH");
  for (let i = 0; i < 100; i++) {
    await sleep(20);
    const all = readFileSync(statsFile, { encoding: "utf8", flag: "a+" }).trim().split("\n").filter(Boolean);
    if (all.length > lines) return JSON.parse(all[lines++]);
  }
  throw new Error("the manager wrote no heap statistics");
}

try {
  const w = await load(WARMUP);
  if (w.failed > 0) throw new Error(`warm-up: ${w.failed} sessions failed`);
  let best: { total: number; before: Sample; after: Sample } | undefined;
  const totals: number[] = [];
  for (let i = 0; i < WINDOWS; i++) {
    const before = await sample();
    const s = await load(MESSAGES);
    if (s.failed > 0) throw new Error(`${s.failed} sessions failed`);
    const after = await sample();
    const total = Object.keys(after.counts).reduce((t, k) => t + after.counts[k] - (before.counts[k] ?? 0), 0);
    totals.push(total / MESSAGES);
    if (!best || total > best.total) best = { total, before, after };
  }
  const { before, after } = best!;
  console.log(`# objects allocated by the manager per message (${TRANSPORT}, ${MESSAGES} messages per window, ${WINDOWS} windows, best of ${totals.map((t) => t.toFixed(0)).join(" ")})`);
  console.log(`total ${(best!.total / MESSAGES).toFixed(1)}`);
  const rows = Object.keys(after.counts)
    .map((k) => [k, (after.counts[k] - (before.counts[k] ?? 0)) / MESSAGES] as const)
    .filter(([, v]) => v >= 0.5)
    .sort((a, b) => b[1] - a[1]);
  for (const [k, v] of rows.slice(0, TOP)) console.log(`${v.toFixed(1).padStart(8)} ${k}`);
} finally {
  for (const p of started) await stopPid(p.pid);
}
