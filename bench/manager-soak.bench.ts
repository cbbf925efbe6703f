/**
 * Soak run of the manager as a daemon: 100,000 sessions (default) through `milter-manager
 * --daemon` (our compiled binary, built into a temporary directory with build.ts's flags) with
 * two children (`milterkit test-client --no-report-request`, each a separate process), driven by
 * milter-test-server's load engine (src/test-server/load.ts, `-m small.eml`, one connection per
 * session, C in flight). The manager logs at its default level to a file, i.e. five statistics
 * lines per session, as in production.
 *
 * Printed: the manager's RSS (VmRSS, /proc/PID/status) and open file descriptors (/proc/PID/fd)
 * at the start (listening, idle), after every 20,000 sessions, and at the end after a short idle
 * period; the same for the two children; sessions/s and latency per batch. The closing note
 * compares end and start. Bounded in count and time (--max-seconds for the whole run).
 *
 *   bun run bench/manager-soak.bench.ts [--sessions 100000] [--batch 20000] [--concurrency 10]
 *       [--max-seconds 1800] [--transport unix|tcp] [--source]   (--source: bun src/main.ts instead of the compiled binary)
 */
import { readdirSync, readFileSync, rmSync, symlinkSync } from "node:fs";
import { join, resolve } from "node:path";
import { makeTempDir } from "../test/e2e/lib/dirs.ts";
import { freePort, waitForUnix } from "../test/e2e/lib/ports.ts";
import { stopPid, trackPid } from "../test/e2e/lib/proc.ts";
import { runLoad, type LoadSummary } from "../src/test-server/load.ts";
import { parseTestServerArgs } from "../src/test-server/options.ts";
import { buildPlan } from "../src/test-server/plan.ts";

const ROOT = resolve(import.meta.dir, "..");
const MAIN = join(ROOT, "src/main.ts");
const arg = (name: string, dflt: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : dflt;
};
const SESSIONS = Number(arg("sessions", "100000"));
const BATCH = Number(arg("batch", "20000"));
const CONCURRENCY = Number(arg("concurrency", "10"));
const MAX_SECONDS = Number(arg("max-seconds", "1800"));
const TRANSPORT = arg("transport", "unix") as "unix" | "tcp";
const FROM_SOURCE = process.argv.includes("--source");

function rssKb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "latin1"));
  return m ? Number(m[1]) : NaN;
}
function fds(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length;
}
const mb = (kb: number) => (kb / 1024).toFixed(1);

const dir = makeTempDir("mk-soak-");
const started: number[] = [];
async function cleanup(): Promise<void> {
  for (const pid of started.reverse()) await stopPid(pid, { graceMs: 15_000 }).catch(() => {});
  rmSync(dir, { recursive: true, force: true });
}

let manager: string[];
if (FROM_SOURCE) {
  manager = [process.execPath, MAIN, "manager"];
} else {
  const bin = join(dir, "milterkit");
  const build = Bun.spawnSync({
    cmd: [
      process.execPath, "build", "--compile", "--minify", "--bytecode", "--format=esm",
      "--no-compile-autoload-dotenv", "--no-compile-autoload-bunfig", MAIN, "--outfile", bin,
    ],
    stdout: "pipe",
    stderr: "pipe",
  });
  if (build.exitCode !== 0) throw new Error(`bun build --compile failed: ${build.stderr.toString()}`);
  symlinkSync(bin, join(dir, "milter-manager"));
  manager = [join(dir, "milter-manager")];
}

try {
  // Two children, separate processes (as root they switch to nobody, like the manager).
  const children: { name: string; spec: string; pid: number }[] = [];
  for (const name of ["first", "second"]) {
    const spec = TRANSPORT === "unix" ? `unix:${join(dir, `${name}.sock`)}` : `inet:${await freePort()}@[127.0.0.1]`;
    const p = Bun.spawn([process.execPath, MAIN, "test-client", "--no-report-request", "-q", "-s", spec], { stdout: "ignore", stderr: "inherit" });
    trackPid(p.pid, `test-client ${name}`);
    started.push(p.pid);
    if (TRANSPORT === "unix") await waitForUnix(spec.slice(5), 15_000, { pid: p.pid });
    else await Bun.sleep(500);
    children.push({ name, spec, pid: p.pid });
  }
  const config = join(dir, "milterkit.json");
  await Bun.write(config, JSON.stringify({
    log: { use_syslog: false, path: join(dir, "log/manager.log") },
    milters: children.map((c) => ({ name: c.name, connection_spec: c.spec })),
  }));
  const spec = TRANSPORT === "unix" ? `unix:${join(dir, "run/manager.sock")}` : `inet:${await freePort()}@[127.0.0.1]`;
  const pidFile = join(dir, "run/manager.pid");
  const start = Bun.spawn([...manager, "--config", config, "--daemon", "--pid-file", pidFile, "-s", spec], {
    argv0: manager[0],
    stdout: "inherit",
    stderr: "inherit",
  });
  if ((await start.exited) !== 0) throw new Error("the manager did not start");
  const pid = Number(readFileSync(pidFile, "latin1").trim());
  trackPid(pid, "manager");
  started.push(pid);

  const plan = buildPlan(parseTestServerArgs(["-m", join(ROOT, "test/fixtures/test-server/small.eml")], { readFile: (p) => readFileSync(p), env: {} }));
  const snapshot = () => ({ rss: rssKb(pid), fds: fds(pid), children: children.map((c) => ({ rss: rssKb(c.pid), fds: fds(c.pid) })) });
  const rows: string[] = [];
  const row = (label: string, s = snapshot(), extra = "") => {
    const line = `| ${label} | ${mb(s.rss)} | ${s.fds} | ${s.children.map((c) => `${mb(c.rss)} / ${c.fds}`).join(" | ")} | ${extra} |`;
    rows.push(line);
    console.log(line);
    return s;
  };
  console.log(`# manager soak: ${SESSIONS} sessions, -m small.eml, concurrency ${CONCURRENCY}, ${TRANSPORT} sockets, ` +
    `${FROM_SOURCE ? "bun src/main.ts" : "compiled binary"}, manager --daemon pid ${pid}`);
  console.log(`# ${new Date().toISOString()} bun ${Bun.version}`);
  console.log("| after | manager RSS MB | manager fds | first RSS MB / fds | second RSS MB / fds | batch: sessions/s, p50/p99 ms, failed |");
  console.log("|---|---|---|---|---|---|");
  await Bun.sleep(500);
  const first = row("start (idle)");

  const deadline = Date.now() + MAX_SECONDS * 1000;
  let warm: ReturnType<typeof snapshot> | undefined; // after the first batch: JIT and allocator warmed up
  let done = 0;
  let failed = 0;
  let timeLimit = false;
  while (done < SESSIONS) {
    const n = Math.min(BATCH, SESSIONS - done);
    const s: LoadSummary = await runLoad({
      plan,
      client: { spec, connectionTimeoutMs: 10_000, readingTimeoutMs: 30_000, writingTimeoutMs: 10_000, endOfMessageTimeoutMs: 30_000 },
      sessions: n,
      concurrency: CONCURRENCY,
      maxTimeMs: Math.max(1000, deadline - Date.now()),
    });
    done += s.completed + s.failed + s.cancelled;
    failed += s.failed + s.cancelled;
    const errs = Object.entries(s.errors).map(([k, v]) => `${k}=${v}`).join(" ");
    const snap = snapshot();
    warm ??= snap;
    row(`${done} sessions`, snap, `${s.sessionsPerSecond.toFixed(0)}/s, ${s.latencyMs.p50.toFixed(2)}/${s.latencyMs.p99.toFixed(2)}, ${s.failed + s.cancelled}${errs ? ` (${errs})` : ""}`);
    if (s.timeLimitReached || s.notStarted > 0) {
      timeLimit = true;
      break;
    }
  }
  await Bun.sleep(2000);
  const last = row("end (idle 2 s)");
  const statLines = readFileSync(join(dir, "log/manager.log"), "latin1").match(/\[sessions\]\[finished\] (\d+)\(/g)?.length ?? 0;
  console.log(
    `\nResult: ${done} sessions (${failed} failed${timeLimit ? ", time limit reached" : ""}); ${statLines} "[sessions][finished]" lines logged. ` +
      `Manager RSS ${mb(first.rss)} → ${mb(last.rss)} MB (${last.rss >= first.rss ? "+" : ""}${mb(last.rss - first.rss)} MB), ` +
      `open fds ${first.fds} → ${last.fds}; after the first batch → end: RSS ${mb(warm!.rss)} → ${mb(last.rss)} MB, fds ${warm!.fds} → ${last.fds}; children ${first.children.map((c, i) => `${mb(c.rss)} → ${mb(last.children[i].rss)} MB, fds ${c.fds} → ${last.children[i].fds}`).join("; ")}.`,
  );
} finally {
  await cleanup();
}
