/**
 * `milterkit manager` with two children against one milter directly, in one run
 * (docs/reference-performance.md §1: milter-manager 2.3.2 reaches 282 of 1975 messages/s, 14 %, at
 * concurrency 10; our goal is at least 50 %).
 *
 *   bun run bench/manager.bench.ts [--sessions 3000] [--concurrency 1,10,100] [--transports unix,tcp]
 *       [--setups direct,manager,relay] [--max-seconds 60] [--warmup 10000] [--rounds 1]
 *       [--driver inproc|process] [--log-level default] [--binary dist/milterkit]
 *
 * Setups, each with the same load: the test-server load engine (src/test-server/load.ts; load
 * generator L of the reference: one connection per session, OPTNEG v6, `-m small.eml` with
 * milter-test-server's macros, every step answered) with C sessions in flight:
 *   direct   load → one `test-client --no-report-request` process
 *   manager  load → `manager --no-daemon` process → two `test-client --no-report-request` processes
 * Every milter is a separate process started from src/main.ts. "unix": every socket is a unix
 * socket; "tcp": every socket is TCP on 127.0.0.1 (TCP_NODELAY on all of our sockets).
 *
 * Reported per run: messages/s, latency p50/p99 (ms, connect → final end-of-message reply),
 * the idle RSS of the manager and the relay (VmRSS once listening, before any session),
 * CPU ms per message (utime+stime from /proc/PID/stat: the test client; for the manager runs the
 * manager alone and manager + both children), the manager's peak RSS during the run (VmHWM, reset
 * before each run through /proc/PID/clear_refs), the load generator's CPU ms per message, and the
 * manager/direct ratio of messages/s per transport and concurrency, with the CPU of every process
 * per message (driver included) of both setups: when the machine is busy, the throughput ratio
 * follows the ratio of these. Runs are interleaved (direct, manager, relay, direct, … per
 * concurrency) so that the machine's other load hits all alike; with --rounds > 1 the medians are
 * reported. Bounded: --sessions per run and --max-seconds per run. Every process is first warmed up
 * with --warmup sessions at concurrency 10: JavaScriptCore keeps compiling hot functions (FTL) for
 * a few thousand sessions (still at 4500), and a manager runs for days, so the steady state is what
 * is measured (10000 by default).
 *
 * A third setup, "relay", is the floor of this architecture on this machine: a minimal fan-out
 * relay (this file run with --relay, ~100 lines on raw Bun sockets, no timers, no checks, no
 * logging) that moves the same packets as the manager — OPTNEG and the envelope commands to both
 * children at once, the content live to the first child, at end of message the whole message
 * replayed to the second child one packet per round trip, each MTA command answered once the
 * children did. What the manager costs beyond the relay is the engine's own work; what the relay
 * costs is the I/O pattern (3 connections and ~45 writes + ~45 reads per message in one process).
 *
 * The load generator shares the machine's cores with the milters, in both setups alike:
 * `--driver inproc` (default) runs runLoad() in this process; `--driver process` runs
 * `test-server --sessions N --concurrency C --json` as a child and reads its summary (its CPU
 * includes the start of Bun, so inproc is the cheaper one, see the driver column).
 */
import { existsSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { runLoad, type LoadSummary } from "../src/test-server/load.ts";
import { parseTestServerArgs } from "../src/test-server/options.ts";
import { buildPlan } from "../src/test-server/plan.ts";
import { makeTempDir } from "../test/e2e/lib/dirs.ts";
import { freePort, waitForPort, waitForUnix } from "../test/e2e/lib/ports.ts";
import { spawnTracked, stopPid, tailFile, type Spawned } from "../test/e2e/lib/proc.ts";

const ROOT = resolve(import.meta.dir, "..");
const MAIN = join(ROOT, "src/main.ts");
const SMALL_EML = join(ROOT, "test/fixtures/test-server/small.eml");
const arg = (name: string, dflt: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : dflt;
};
const SESSIONS = Number(arg("sessions", "3000"));
const CONCURRENCY = arg("concurrency", "1,10,100").split(",").map(Number);
const TRANSPORTS = arg("transports", "unix,tcp").split(",") as Transport[];
const MAX_SECONDS = Number(arg("max-seconds", "60"));
const WARMUP = Number(arg("warmup", "10000"));
const ROUNDS = Number(arg("rounds", "1"));
const DRIVER = arg("driver", "inproc") as "inproc" | "process";
const LOG_LEVEL = arg("log-level", "default");
type Setup = "direct" | "manager" | "relay";
/** --binary dist/milterkit: every milterkit process runs the compiled tool rather than src/main.ts. */
const TOOL = process.argv.includes("--binary") ? [resolve(arg("binary", "dist/milterkit"))] : [process.execPath, MAIN];
const SETUPS = arg("setups", "direct,manager,relay").split(",") as Setup[];
type Transport = "unix" | "tcp";

const CLK_TCK = 100; // Linux USER_HZ
/** utime + stime of a process (all threads), ms. */
function cpuMs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "latin1");
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return ((Number(f[11]) + Number(f[12])) * 1000) / CLK_TCK;
}
function statusKb(pid: number, field: string): number {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(readFileSync(`/proc/${pid}/status`, "latin1"));
  return m ? Number(m[1]) : NaN;
}
/** Reset VmHWM to the current RSS (Linux ≥ 4.0, "5" in clear_refs); false if not allowed. */
function resetPeak(pid: number): boolean {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, "5");
    return true;
  } catch {
    return false;
  }
}


// ---------------------------------------------------------------------------
// --relay LISTEN CHILD1 CHILD2: the floor setup (see the top of the file). Only for test-client
// children answering every step; packets are forwarded as they came (D + command in one write).

const FINAL_REPLIES = new Set("cartdsy".split("").map((c) => c.charCodeAt(0)));
type Addr = { unix: string } | { hostname: string; port: number };
const addrOf = (spec: string): Addr => (spec.startsWith("unix:") ? { unix: spec.slice(5) } : { hostname: "127.0.0.1", port: Number(/^inet:(\d+)@/.exec(spec)![1]) });

interface Peer {
  sock: import("bun").Socket<PeerState>;
}
interface PeerState {
  reader: import("../src/milter/index.ts").PacketReader;
  /** reply bytes of the step in progress, resolved at its final packet */
  got: Uint8Array[];
  done: ((bytes: Uint8Array[]) => void) | undefined;
}

async function runRelay(listen: string, children: string[]): Promise<void> {
  const { PacketReader } = await import("../src/milter/index.ts");
  const tcp = !listen.startsWith("unix:");
  const childHandlers = {
    open(s: import("bun").Socket<PeerState>) {
      if (tcp) s.setNoDelay(true);
    },
    data(s: import("bun").Socket<PeerState>, chunk: Buffer) {
      const st = s.data;
      st.reader.push(chunk, (code, payload) => {
        const b = Buffer.allocUnsafe(5 + payload.length);
        b.writeUInt32BE(payload.length + 1, 0);
        b[4] = code;
        b.set(payload, 5);
        st.got.push(b);
        if (FINAL_REPLIES.has(code) || code === 0x4f) {
          const d = st.done!;
          const got = st.got;
          st.done = undefined;
          st.got = [];
          d(got);
        }
      });
    },
    close(s: import("bun").Socket<PeerState>) {
      s.data.done?.([]);
    },
    error() {},
  };
  const ask = (p: Peer, bytes: Uint8Array) =>
    new Promise<Uint8Array[]>((resolve) => {
      p.sock.data.done = resolve;
      p.sock.write(bytes);
    });
  const open = (spec: string) =>
    Bun.connect<PeerState>({ ...(addrOf(spec) as any), data: { reader: new PacketReader(), got: [], done: undefined }, socket: childHandlers }).then((sock) => ({ sock }) as Peer);

  interface Mta {
    reader: InstanceType<typeof PacketReader>;
    queue: Uint8Array[];
    busy: boolean;
    kids?: Peer[];
    macros?: Uint8Array;
    stored: Uint8Array[];
  }
  const serve = async (s: import("bun").Socket<Mta>) => {
    const m = s.data;
    m.busy = true;
    while (m.queue.length > 0) {
      const pkt = m.queue.shift()!;
      const code = pkt[4];
      const bytes = m.macros ? Buffer.concat([m.macros, pkt]) : pkt;
      m.macros = undefined;
      switch (code) {
        case 0x44: // D: rides with the next command
          m.macros = pkt;
          continue;
        case 0x4f: { // O
          m.kids = await Promise.all(children.map(open));
          const replies = await Promise.all(m.kids.map((k) => ask(k, bytes)));
          s.write(replies[0][0]);
          continue;
        }
        case 0x43: case 0x48: case 0x4d: case 0x52: case 0x54: case 0x55: { // C H M R T U: both at once
          if (code === 0x4d) m.stored = [];
          const replies = await Promise.all(m.kids!.map((k) => ask(k, bytes)));
          s.write(replies[0][replies[0].length - 1]);
          continue;
        }
        case 0x4c: case 0x4e: case 0x42: { // L N B: live to the first child, kept for the second
          m.stored.push(bytes);
          const r = await ask(m.kids![0], bytes);
          s.write(r[r.length - 1]);
          continue;
        }
        case 0x45: { // E: first child, then the second one replayed the whole message
          const first = await ask(m.kids![0], bytes);
          for (const b of m.stored) await ask(m.kids![1], b);
          const second = await ask(m.kids![1], bytes);
          const mods = [...first.slice(0, -1), ...second.slice(0, -1), first[first.length - 1]];
          s.write(mods.length === 1 ? mods[0] : Buffer.concat(mods));
          continue;
        }
        case 0x41: // A
          for (const k of m.kids ?? []) k.sock.write(bytes);
          continue;
        case 0x51: // Q
          for (const k of m.kids ?? []) {
            k.sock.write(bytes);
            k.sock.end();
          }
          s.end();
          continue;
      }
    }
    m.busy = false;
  };
  Bun.listen<Mta>({
    ...(addrOf(listen) as any),
    socket: {
      open(s) {
        if (tcp) s.setNoDelay(true);
        s.data = { reader: new PacketReader(), queue: [], busy: false, stored: [] };
      },
      data(s, chunk) {
        s.data.reader.push(chunk, (code, payload) => {
          const b = Buffer.allocUnsafe(5 + payload.length);
          b.writeUInt32BE(payload.length + 1, 0);
          b[4] = code;
          b.set(payload, 5);
          s.data.queue.push(b);
        });
        if (!s.data.busy) void serve(s);
      },
      close(s) {
        for (const k of s.data?.kids ?? []) k.sock.end();
      },
      error() {},
    },
  });
}

const relayAt = process.argv.indexOf("--relay");
if (relayAt >= 0) {
  await runRelay(process.argv[relayAt + 1], process.argv.slice(relayAt + 2, relayAt + 4));
  await new Promise(() => {}); // serve until killed
}

const tmp = makeTempDir("mk-bench-manager-");
let sockN = 0;
async function newSpec(transport: Transport): Promise<string> {
  return transport === "unix" ? `unix:${join(tmp, `s${++sockN}.sock`)}` : `inet:${await freePort()}@[127.0.0.1]`;
}
async function waitSpec(spec: string, p: Spawned, what: string): Promise<void> {
  const o = { pid: p.pid, logFile: p.logFile, what };
  if (spec.startsWith("unix:")) await waitForUnix(spec.slice(5), 15_000, o);
  else await waitForPort("127.0.0.1", Number(/^inet:(\d+)@/.exec(spec)![1]), 15_000, o);
}

const asRoot = process.getuid?.() === 0 ? ["-u", "root"] : [];
async function startTestClient(transport: Transport, label: string): Promise<{ spec: string; p: Spawned }> {
  const spec = await newSpec(transport);
  const p = spawnTracked([...TOOL, "test-client", "--no-report-request", "-s", spec, ...asRoot], {
    logFile: join(tmp, `${label}.log`),
    what: label,
    cwd: ROOT,
  });
  await waitSpec(spec, p, label);
  return { spec, p };
}

async function startManager(transport: Transport, children: string[]): Promise<{ spec: string; p: Spawned }> {
  const spec = await newSpec(transport);
  const config = join(tmp, `manager-${transport}.json`);
  writeFileSync(
    config,
    JSON.stringify({
      security: { privilege_mode: false, ...(process.getuid?.() === 0 ? { effective_user: "root" } : {}) }, // as root the manager would become nobody: stay root like the test clients (-u root)
      log: { level: LOG_LEVEL, use_syslog: false }, // lines go to the log file below (stdout)
      manager: { connection_spec: spec },
      milters: children.map((c, i) => ({ name: `test-client-${i + 1}`, connection_spec: c })),
    }),
  );
  const p = spawnTracked([...TOOL, "manager", "--config", config, "--no-daemon"], {
    logFile: join(tmp, `manager-${transport}.log`),
    what: "milterkit manager",
    cwd: ROOT,
  });
  await waitSpec(spec, p, "milterkit manager");
  return { spec, p };
}

async function startRelay(transport: Transport, children: string[]): Promise<{ spec: string; p: Spawned }> {
  const spec = await newSpec(transport);
  const p = spawnTracked([process.execPath, import.meta.path, "--relay", spec, ...children], { logFile: join(tmp, `relay-${transport}.log`), what: "relay", cwd: ROOT });
  await waitSpec(spec, p, "relay");
  return { spec, p };
}

const plan = buildPlan(parseTestServerArgs(["-m", SMALL_EML], { readFile: (p) => readFileSync(p), env: {} }));
const TIMEOUTS = { connectionTimeoutMs: 10_000, readingTimeoutMs: 10_000, writingTimeoutMs: 10_000, endOfMessageTimeoutMs: 10_000 };

/** One load run against `spec`; its summary and the driver's CPU ms. */
async function drive(spec: string, concurrency: number, sessions: number): Promise<{ s: LoadSummary; driverMs: number }> {
  if (DRIVER === "inproc") {
    const u0 = process.cpuUsage();
    const s = await runLoad({ plan, client: { spec, ...TIMEOUTS }, sessions, concurrency, maxTimeMs: MAX_SECONDS * 1000 });
    const u = process.cpuUsage(u0);
    return { s, driverMs: (u.user + u.system) / 1000 };
  }
  const proc = Bun.spawn(
    [...TOOL, "test-server", "-s", spec, "-m", SMALL_EML, "--sessions", String(sessions), "--concurrency", String(concurrency),
      "--max-time", String(MAX_SECONDS), "--json", "--all-timeouts", "10"],
    { stdout: "pipe", stderr: "pipe", cwd: ROOT },
  );
  const killer = setTimeout(() => proc.kill("SIGKILL"), (MAX_SECONDS + 30) * 1000);
  let driverMs = 0;
  // /proc/PID/stat disappears once reaped: sample until the end.
  const sampler = setInterval(() => {
    try {
      driverMs = cpuMs(proc.pid);
    } catch {}
  }, 50);
  const out = await new Response(proc.stdout).text();
  const err = await new Response(proc.stderr).text();
  await proc.exited;
  clearInterval(sampler);
  clearTimeout(killer);
  const line = out.split("\n").find((l) => l.startsWith("{"));
  if (!line) throw new Error(`test-server --json printed no summary: ${out.slice(0, 500)} ${err.slice(0, 500)}`);
  return { s: JSON.parse(line) as LoadSummary, driverMs };
}

interface Row {
  msgs: number;
  p50: number;
  p99: number;
  completed: number;
  failed: number;
  errors: string;
  cpuMain: number;
  cpuTotal: number;
  rssKb: number;
  driver: number;
}

async function measure(spec: string, concurrency: number, sessions: number, main: number, others: number[]): Promise<Row> {
  const pids = [main, ...others];
  const c0 = pids.map(cpuMs);
  const peakReset = others.length > 0 && resetPeak(main);
  const { s, driverMs } = await drive(spec, concurrency, sessions);
  const c1 = pids.map(cpuMs);
  const n = Math.max(1, s.messages);
  const used = c1.map((c, i) => c - c0[i]);
  return {
    msgs: s.messagesPerSecond,
    p50: s.latencyMs.p50,
    p99: s.latencyMs.p99,
    completed: s.completed,
    failed: s.failed,
    errors: Object.entries(s.errors).map(([k, v]) => `${k}=${v}`).join(" ") + (s.timeLimitReached ? " time-limit" : ""),
    cpuMain: used[0] / n,
    cpuTotal: used.reduce((a, b) => a + b, 0) / n,
    rssKb: others.length > 0 ? (peakReset ? statusKb(main, "VmHWM") : NaN) : NaN,
    driver: driverMs / n,
  };
}

const median = (xs: number[]) => {
  const s = xs.filter(Number.isFinite).sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const medRow = (rs: Row[]): Row => ({
  msgs: median(rs.map((r) => r.msgs)),
  p50: median(rs.map((r) => r.p50)),
  p99: median(rs.map((r) => r.p99)),
  completed: rs.reduce((a, r) => a + r.completed, 0),
  failed: rs.reduce((a, r) => a + r.failed, 0),
  errors: rs.map((r) => r.errors).filter(Boolean).join("; "),
  cpuMain: median(rs.map((r) => r.cpuMain)),
  cpuTotal: median(rs.map((r) => r.cpuTotal)),
  rssKb: Math.max(...rs.map((r) => (Number.isFinite(r.rssKb) ? r.rssKb : -Infinity))),
  driver: median(rs.map((r) => r.driver)),
});

const f = (x: number, d = 1) => (Number.isFinite(x) ? x.toFixed(d) : "-");
const started: Spawned[] = [];
const ratios: string[] = [];
const idle: string[] = [];
try {
  console.log(`# milterkit manager (2 test-client children) vs one test-client directly: ${SESSIONS} sessions per run, ${ROUNDS} round(s), -m small.eml, driver ${DRIVER}, manager log level ${LOG_LEVEL}, setups ${SETUPS.join(",")}`);
  console.log(`# ${new Date().toISOString()} bun ${Bun.version} cpus ${navigator.hardwareConcurrency} loadavg ${readFileSync("/proc/loadavg", "latin1").split(" ").slice(0, 3).join(" ")}`);
  console.log("| transport | setup | conc | completed/failed | msgs/s | p50 ms | p99 ms | CPU ms/msg (milter, manager or relay) | CPU ms/msg total | manager peak RSS kB | driver CPU ms/msg |");
  console.log("|---|---|---|---|---|---|---|---|---|---|---|");
  for (const transport of TRANSPORTS) {
    const direct = await startTestClient(transport, `direct-${transport}`);
    const c1 = await startTestClient(transport, `child1-${transport}`);
    const c2 = await startTestClient(transport, `child2-${transport}`);
    started.push(direct.p, c1.p, c2.p);
    const children = [c1.p.pid, c2.p.pid];
    const targets = new Map<Setup, { spec: string; pid: number; others: number[] }>();
    for (const setup of SETUPS) {
      if (setup === "direct") targets.set(setup, { spec: direct.spec, pid: direct.p.pid, others: [] });
      else {
        const t = setup === "manager" ? await startManager(transport, [c1.spec, c2.spec]) : await startRelay(transport, [c1.spec, c2.spec]);
        started.push(t.p);
        targets.set(setup, { spec: t.spec, pid: t.p.pid, others: children });
      }
    }
    await Bun.sleep(1000); // let start-up settle
    for (const [setup, t] of targets) if (setup !== "direct") idle.push(`${transport} ${setup} ${f(statusKb(t.pid, "VmRSS"), 0)} kB`);
    // warm-up (JIT) of every process
    for (const t of targets.values()) await measure(t.spec, 10, WARMUP, t.pid, t.others);
    for (const c of CONCURRENCY) {
      const rows = new Map<Setup, Row[]>(SETUPS.map((s) => [s, []]));
      for (let r = 0; r < ROUNDS; r++) {
        for (const [setup, t] of targets) rows.get(setup)!.push(await measure(t.spec, c, SESSIONS, t.pid, t.others));
      }
      const med = new Map([...rows].map(([k, v]) => [k, medRow(v)]));
      for (const [setup, r] of med) {
        console.log(
          `| ${transport} | ${setup} | ${c} | ${r.completed}/${r.failed}${r.errors ? ` (${r.errors})` : ""} | ${f(r.msgs)} | ${f(r.p50, 2)} | ${f(r.p99, 2)} | ${f(r.cpuMain, 3)} | ${f(r.cpuTotal, 3)} | ${setup === "direct" ? "-" : f(r.rssKb, 0)} | ${f(r.driver, 3)} |`,
        );
      }
      const dr = med.get("direct");
      for (const setup of ["manager", "relay"] as const) {
        const x = med.get(setup);
        if (!dr || !x) continue;
        ratios.push(`| ${transport} | ${c} | ${setup} | ${f(dr.msgs)} | ${f(x.msgs)} | ${f((100 * x.msgs) / dr.msgs, 0)} % | ${f(x.cpuMain / dr.cpuMain, 2)} | ${f(x.cpuTotal + x.driver, 3)} / ${f(dr.cpuTotal + dr.driver, 3)} |`);
      }
    }
    for (const p of started.splice(0)) await stopPid(p.pid, { graceMs: 2000 });
  }
  console.log("\n| transport | conc | setup | direct msgs/s | setup msgs/s | setup / direct | its CPU / test-client CPU per msg | all CPU per msg incl. driver: setup / direct (ms) |");
  console.log("|---|---|---|---|---|---|---|---|");
  for (const r of ratios) console.log(r);
  console.log(`\nidle RSS (listening, before any session): ${idle.join(", ")}; loadavg ${readFileSync("/proc/loadavg", "latin1").split(" ").slice(0, 3).join(" ")}`);
  console.log("\n(milter-manager 2.3.2, same kind of machine, TCP, concurrency 10: 282 / 1975 msgs/s = 14 %, 4.5 ms server CPU per message)");
} catch (e) {
  console.error(String((e as Error)?.stack ?? e));
  for (const p of started) if (existsSync(p.logFile)) console.error(`--- ${p.logFile}\n${tailFile(p.logFile, 4000)}`);
  process.exitCode = 1;
} finally {
  for (const p of started) await stopPid(p.pid, { graceMs: 1000 });
  rmSync(tmp, { recursive: true, force: true });
}
process.exit(process.exitCode ?? 0);
