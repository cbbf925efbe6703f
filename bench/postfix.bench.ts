/**
 * Latency behind a real Postfix: one SMTP session at a time (`smtp-source -s 1`), each message
 * through a private Postfix on 127.0.0.1 (test/e2e/lib) to Postfix's smtp-sink. Setups, all in one
 * run, interleaved round by round so that the machine's other load hits all alike:
 *   none          Postfix without milters (the floor)
 *   manager-inet  Postfix → `milterkit manager` → libmilter C + pymilter + opendkim, every socket TCP
 *   manager-unix  the same with every socket a unix socket
 *   chain-inet / chain-unix (with --chains) the three children set in smtpd_milters directly
 * Reported per setup: median and p90 ms per message (our smtp-source's per-message latency), and the
 * inet − unix median difference. Peers with Nagle on that write twice (libmilter's `h` then `c`,
 * Postfix's macros then command) stall ~40 ms on a delayed ACK unless the reader re-arms
 * TCP_QUICKACK (src/net/tcp-quickack.ts); this bench shows whether anything still does.
 *
 *   bun run bench/postfix.bench.ts [--messages 40] [--rounds 3] [--warmup 5] [--chains] [--binary dist/milterkit]
 *
 * Needs root and Postfix, opendkim, pymilter, libmilter-dev (as test/e2e). The manager runs from
 * --binary if given (the compiled tool), otherwise from src/main.ts.
 */
import { writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import {
  cleanEnv, e2eSkipReason, freePort, makeTempDir, removeDir, spawnTracked, startLibmilter, startOpendkim, startPostfix,
  startPostfixSmtpSink, startPymilter, stopPid, tailFile, waitForPort, waitForUnix, type Peer, type Spawned,
} from "../test/e2e/lib/index.ts";

const ROOT = resolve(import.meta.dir, "..");
const MAIN = join(ROOT, "src/main.ts");
const arg = (name: string, dflt: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : dflt;
};
const MESSAGES = Number(arg("messages", "40"));
const ROUNDS = Number(arg("rounds", "3"));
const WARMUP = Number(arg("warmup", "5"));
const CHAINS = process.argv.includes("--chains");
const BINARY = process.argv.includes("--binary") ? resolve(arg("binary", "dist/milterkit")) : undefined;
const tool = (name: string) => (BINARY ? [BINARY, name] : [process.execPath, MAIN, name]);

const skip = e2eSkipReason();
if (skip) {
  console.error(`postfix.bench.ts: ${skip}`);
  process.exit(1);
}

type Transport = "inet" | "unix";
const base = makeTempDir("mk-bench-postfix-");
const started: Spawned[] = [];
const peers: Peer[] = [];

async function startManager(transport: Transport, children: Peer[]): Promise<string> {
  let spec: string;
  let postfixSpec: string;
  if (transport === "unix") {
    spec = postfixSpec = `unix:${base}/manager.sock`;
  } else {
    const port = await freePort();
    spec = `inet:${port}@[127.0.0.1]`;
    postfixSpec = `inet:127.0.0.1:${port}`;
  }
  const config = join(base, `manager-${transport}.json`);
  writeFileSync(config, JSON.stringify({
    security: { privilege_mode: false },
    log: { level: "error", use_syslog: false },
    manager: { connection_spec: spec, unix_socket_group: "postfix", unix_socket_mode: 0o660 },
    milters: children.map((p) => ({ name: p.name, connection_spec: p.spec })),
  }));
  const p = spawnTracked([...tool("manager"), "--config", config, "--no-daemon"], {
    logFile: join(base, `manager-${transport}.log`), cwd: ROOT, env: cleanEnv({ NO_COLOR: "1" }), what: "milterkit manager",
  });
  started.push(p);
  const wait = { pid: p.pid, logFile: p.logFile, what: "milterkit manager" };
  if (transport === "unix") await waitForUnix(spec.slice(5), 15_000, wait);
  else await waitForPort("127.0.0.1", Number(/^inet:(\d+)@/.exec(spec)![1]), 15_000, wait);
  return postfixSpec;
}

/** `smtp-source -s 1 -m N` against Postfix; per-message latency p50/p90 ms. */
async function smtpSource(port: number, messages: number): Promise<{ p50: number; p90: number; sent: number }> {
  const proc = Bun.spawn(
    [...tool("smtp-source"), "-4", "-M", "client.milterkit.test", "-m", String(messages), "-s", "1", "-l", "1024",
      "-f", "bench@bench.test", "-t", "rcpt@example.test", "--json", `127.0.0.1:${port}`],
    { cwd: ROOT, env: cleanEnv(), stdout: "pipe", stderr: "pipe" },
  );
  const killer = setTimeout(() => proc.kill("SIGKILL"), 120_000);
  const [out, err] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  clearTimeout(killer);
  const line = out.split("\n").find((l) => l.startsWith("{"));
  if (!line) throw new Error(`smtp-source printed no summary: ${out.slice(0, 400)} ${err.slice(0, 400)}`);
  const s = JSON.parse(line);
  return { p50: s.latencyMs.p50, p90: s.latencyMs.p90, sent: s.sent };
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const loadavg = async () => (await Bun.file("/proc/loadavg").text()).split(" ").slice(0, 3).join(" ");

let pf: Awaited<ReturnType<typeof startPostfix>> | undefined;
let sink: Awaited<ReturnType<typeof startPostfixSmtpSink>> | undefined;
try {
  sink = await startPostfixSmtpSink({});
  const three = (o: { unix?: true }) => Promise.all([startLibmilter(o), startPymilter(o), startOpendkim(o)]);
  const [inetPeers, unixPeers] = await Promise.all([three({}), three({ unix: true })]);
  peers.push(...inetPeers, ...unixPeers);
  pf = await startPostfix({ relayPort: sink.port!, defaultAction: "tempfail" });
  const setups = new Map<string, string>([
    ["none", ""],
    ["manager-inet", await startManager("inet", inetPeers)],
    ["manager-unix", await startManager("unix", unixPeers)],
  ]);
  if (CHAINS) {
    setups.set("chain-inet", inetPeers.map((p) => p.postfixSpec).join(", "));
    setups.set("chain-unix", unixPeers.map((p) => p.postfixSpec).join(", "));
  }
  console.log(`# Postfix ${MESSAGES} messages per run, smtp-source -s 1, ${ROUNDS} round(s), manager ${BINARY ?? "src/main.ts"}`);
  console.log(`# ${new Date().toISOString()} bun ${Bun.version} loadavg ${await loadavg()}`);
  const results = new Map<string, { p50: number[]; p90: number[] }>([...setups.keys()].map((k) => [k, { p50: [], p90: [] }]));
  for (let r = 0; r < ROUNDS; r++) {
    for (const [name, milters] of setups) {
      await pf.setMainCf({ smtpd_milters: milters });
      if (WARMUP > 0) await smtpSource(pf.smtpPort, WARMUP);
      const s = await smtpSource(pf.smtpPort, MESSAGES);
      if (s.sent !== MESSAGES) throw new Error(`${name}: ${s.sent} of ${MESSAGES} messages sent`);
      results.get(name)!.p50.push(s.p50);
      results.get(name)!.p90.push(s.p90);
    }
  }
  console.log("| setup | median ms/msg | p90 ms/msg | medians of the rounds |");
  console.log("|---|---|---|---|");
  for (const [name, r] of results) {
    console.log(`| ${name} | ${median(r.p50).toFixed(2)} | ${median(r.p90).toFixed(2)} | ${r.p50.map((x) => x.toFixed(2)).join(" ")} |`);
  }
  const inet = median(results.get("manager-inet")!.p50);
  const unix = median(results.get("manager-unix")!.p50);
  console.log(`\nmanager inet − unix median: ${(inet - unix).toFixed(2)} ms (goal ≤ 2 ms); unix median ${unix.toFixed(2)} ms (goal ≤ 10 ms); loadavg ${await loadavg()}`);
} catch (e) {
  console.error(String((e as Error)?.stack ?? e));
  for (const p of started) console.error(`--- ${p.logFile}\n${tailFile(p.logFile, 4000)}`);
  process.exitCode = 1;
} finally {
  await pf?.stop();
  for (const p of started) await stopPid(p.pid, { graceMs: 2000 });
  await Promise.all(peers.map((p) => p.stop()));
  await sink?.stop();
  removeDir(base);
}
process.exit(process.exitCode ?? 0);
