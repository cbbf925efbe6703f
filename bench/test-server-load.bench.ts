/**
 * milter-test-server's load mode (src/test-server/load.ts) as the benchmark driver: N complete
 * sessions of `-m small.eml` (docs/reference-performance.md §1.2, one connection per session, v6,
 * the original's macros) with C in flight, against
 *   - the libmilter C milter (test/fixtures/milters/bench-milter.c: adds one header at EOM), and
 *   - our test-client (`milterkit test-client --no-report-request`),
 * over TCP (127.0.0.1) and unix sockets, in the same run.
 *
 *   bun run bench/test-server-load.bench.ts [--sessions 2000] [--concurrency 1,10,100]
 *       [--transports tcp,unix] [--max-seconds 120] [--warmup 200]
 *
 * Reported per run: messages/s, latency p50/p90/p99/max (ms, connect → final end-of-message reply,
 * per session), errors, CPU ms per message of the milter process (/proc/<pid>/stat) and of this load
 * generator (process.cpuUsage), and the libmilter/test-client ratio of messages/s. Needs root (the
 * C milter runs as nobody, as in the e2e harness). Every run is bounded in count and time.
 *
 * Over TCP, libmilter's two writes at end of message (`h`, then `c`; it does not set TCP_NODELAY)
 * meet our delayed ACK: ~44 ms per session at low concurrency (docs/postfix-bench.md, pitfall 1).
 * That is the milter's, not the driver's, latency; the unix rows show the same milter without it.
 */
import { readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { startLibmilter, type Peer } from "../test/e2e/lib/peers.ts";
import { freePort, waitForPort, waitForUnix } from "../test/e2e/lib/ports.ts";
import { makeTempDir } from "../test/e2e/lib/dirs.ts";
import { stopPid } from "../test/e2e/lib/proc.ts";
import { runLoad, type LoadSummary } from "../src/test-server/load.ts";
import { parseTestServerArgs } from "../src/test-server/options.ts";
import { buildPlan } from "../src/test-server/plan.ts";

const ROOT = resolve(import.meta.dir, "..");
const arg = (name: string, dflt: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : dflt;
};
const SESSIONS = Number(arg("sessions", "2000"));
const CONCURRENCY = arg("concurrency", "1,10,100").split(",").map(Number);
const TRANSPORTS = arg("transports", "tcp,unix").split(",") as ("tcp" | "unix")[];
const MAX_SECONDS = Number(arg("max-seconds", "120"));
const WARMUP = Number(arg("warmup", "200"));

const CLK_TCK = 100; // Linux USER_HZ
function cpuMs(pid: number): number {
  let total = 0;
  // All threads of the process (libmilter runs one thread per connection).
  const stat = readFileSync(`/proc/${pid}/stat`, "latin1");
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  total += Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14]); // utime stime cutime cstime
  return (total * 1000) / CLK_TCK;
}

interface Target {
  name: string;
  transport: "tcp" | "unix";
  spec: string;
  pid: number;
  stop(): Promise<void>;
}

async function startTestClient(transport: "tcp" | "unix"): Promise<Target> {
  let spec: string;
  if (transport === "tcp") spec = `inet:${await freePort()}@[127.0.0.1]`;
  else spec = `unix:${join(makeTempDir("mk-bench-tc-"), "tc.sock")}`;
  const asRoot = process.getuid?.() === 0 ? ["-u", "root"] : [];
  const p = Bun.spawn([process.execPath, join(ROOT, "src/main.ts"), "test-client", "--no-report-request", "-s", spec, ...asRoot], {
    stdout: "ignore",
    stderr: "inherit",
  });
  if (transport === "tcp") await waitForPort("127.0.0.1", Number(spec.slice(5, spec.indexOf("@"))), 15_000, { pid: p.pid });
  else await waitForUnix(spec.slice(5), 15_000, { pid: p.pid });
  return { name: "test-client", transport, spec, pid: p.pid, stop: async () => void (await stopPid(p.pid, { graceMs: 1000 })) };
}

async function startC(transport: "tcp" | "unix"): Promise<Target> {
  const peer: Peer = await startLibmilter(transport === "unix" ? { unix: true } : {});
  return { name: "libmilter", transport, spec: peer.spec, pid: peer.pid, stop: () => peer.stop() };
}

const plan = buildPlan(parseTestServerArgs(["-m", join(ROOT, "test/fixtures/test-server/small.eml")], { readFile: (p) => readFileSync(p), env: {} }));

async function measure(t: Target, concurrency: number, sessions: number): Promise<{ s: LoadSummary; milterCpu: number; driverCpu: number }> {
  const c0 = cpuMs(t.pid);
  const u0 = process.cpuUsage();
  const s = await runLoad({
    plan,
    client: { spec: t.spec, connectionTimeoutMs: 10_000, readingTimeoutMs: 10_000, writingTimeoutMs: 10_000, endOfMessageTimeoutMs: 10_000 },
    sessions,
    concurrency,
    maxTimeMs: MAX_SECONDS * 1000,
  });
  const u = process.cpuUsage(u0);
  return { s, milterCpu: (cpuMs(t.pid) - c0) / Math.max(1, s.messages), driverCpu: (u.user + u.system) / 1000 / Math.max(1, s.messages) };
}

const f = (x: number, d = 1) => (Number.isFinite(x) ? x.toFixed(d) : "-");
const rows: string[] = [];
const rate = new Map<string, number>();
console.log(`# milter-test-server load mode: ${SESSIONS} sessions per run, -m small.eml, max ${MAX_SECONDS} s per run`);
console.log(`# ${new Date().toISOString()} bun ${Bun.version}`);
console.log("| milter | transport | conc | completed/failed | msgs/s | p50 ms | p90 ms | p99 ms | max ms | milter CPU ms/msg | driver CPU ms/msg |");
console.log("|---|---|---|---|---|---|---|---|---|---|---|");
for (const transport of TRANSPORTS) {
  for (const start of [startC, startTestClient]) {
    const t = await start(transport);
    try {
      await measure(t, 10, WARMUP);
      for (const c of CONCURRENCY) {
        const { s, milterCpu, driverCpu } = await measure(t, c, SESSIONS);
        const l = s.latencyMs;
        rate.set(`${t.name}/${transport}/${c}`, s.messagesPerSecond);
        const errs = Object.entries(s.errors).map(([k, v]) => `${k}=${v}`).join(" ");
        const row = `| ${t.name} | ${transport} | ${c} | ${s.completed}/${s.failed}${errs ? ` (${errs})` : ""}${s.timeLimitReached ? " time limit" : ""} | ${f(s.messagesPerSecond)} | ${f(l.p50, 2)} | ${f(l.p90, 2)} | ${f(l.p99, 2)} | ${f(l.max, 2)} | ${f(milterCpu, 3)} | ${f(driverCpu, 3)} |`;
        rows.push(row);
        console.log(row);
      }
    } finally {
      await t.stop();
    }
  }
}
console.log("\n| transport | conc | libmilter / test-client msgs/s |");
console.log("|---|---|---|");
for (const transport of TRANSPORTS) {
  for (const c of CONCURRENCY) {
    const a = rate.get(`libmilter/${transport}/${c}`) ?? NaN;
    const b = rate.get(`test-client/${transport}/${c}`) ?? NaN;
    console.log(`| ${transport} | ${c} | ${f(a / b, 2)} |`);
  }
}
process.exit(0);
