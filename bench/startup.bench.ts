/**
 * Start-up CPU of the multicall binary per tool (issue 20), beside references built alike, in one run:
 *
 *   bun run bench/startup.bench.ts [--binary dist/milterkit] [--compare OTHER-BINARY] [--rounds 40]
 *
 * Per round, interleaved (so every program meets the same load): `smtp-source -m 1` (process
 * start, one connection, one message, exit) against Postfix's smtp-sink on loopback, of our
 * binary, of --compare's (e.g. the main branch's build), of the bare client floor
 * (bench/smtp-source-floor.ts) and of Postfix's smtp-source; `milterkit --version` and
 * `milterkit manager --help` of both binaries; and a compiled hello-world (bun's own start and
 * exit). All Bun programs are compiled with the flags of build.ts (compileEntry). Reported: the
 * median and the least of the CPU time (user + system, from the child's rusage) and the wall time,
 * in ms, and each median as a ratio of the hello-world's. The machine load (uptime) is printed too.
 */
import { existsSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir, loadavg } from "node:os";
import { join, resolve } from "node:path";
import { compileEntry } from "../build.ts";

const ROOT = resolve(import.meta.dir, "..");
const arg = (name: string, dflt: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : dflt;
};
const ROUNDS = Number(arg("rounds", "40"));
const OURS = resolve(arg("binary", join(ROOT, "dist/milterkit")));
const COMPARE = process.argv.includes("--compare") ? resolve(arg("compare", "")) : undefined;
const PF_SINK = "/usr/sbin/smtp-sink";
const PF_SOURCE = "/usr/sbin/smtp-source";
for (const p of [OURS, PF_SINK, PF_SOURCE, ...(COMPARE ? [COMPARE] : [])]) {
  if (!existsSync(p)) {
    console.error(`${p} is missing (apt-get install postfix; bun run build)`);
    process.exit(1);
  }
}

const tmp = mkdtempSync(join(tmpdir(), "mk-bench-startup-"));
process.on("exit", () => rmSync(tmp, { recursive: true, force: true }));
const FLOOR = join(tmp, "floor");
compileEntry(join(import.meta.dir, "smtp-source-floor.ts"), FLOOR);
const HELLO = join(tmp, "hello");
writeFileSync(`${HELLO}.ts`, `console.log("hello");\n`);
compileEntry(`${HELLO}.ts`, HELLO);
/** A link named smtp-source to `binary`, as the tool is installed. */
const sourceLink = (binary: string, name: string) => {
  const dir = join(tmp, name);
  rmSync(dir, { recursive: true, force: true });
  Bun.spawnSync(["mkdir", "-p", dir]);
  symlinkSync(binary, join(dir, "smtp-source"));
  return join(dir, "smtp-source");
};

async function freePort(): Promise<number> {
  const s = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const p = s.port;
  s.stop(true);
  return p;
}
const port = await freePort();
const asRoot = process.getuid?.() === 0;
const sink = Bun.spawn([PF_SINK, ...(asRoot ? ["-u", "nobody"] : []), "-4", `127.0.0.1:${port}`, "1024"], { stdout: "ignore", stderr: "inherit" });
process.on("exit", () => sink.kill("SIGKILL"));
for (let i = 0; ; i++) {
  try {
    const s = await Bun.connect({ hostname: "127.0.0.1", port, socket: { data() {} } });
    s.end();
    break;
  } catch {
    if (i >= 100) throw new Error("smtp-sink did not start");
    await Bun.sleep(20);
  }
}
const TARGET = `127.0.0.1:${port}`;
const SOURCE_ARGS = ["-M", "localhost", "-l", "1024", "-m", "1", TARGET];

const programs: [string, string[]][] = [
  ["hello-world", [HELLO]],
  ["floor smtp-source -m 1", [FLOOR, ...SOURCE_ARGS]],
  ["postfix smtp-source -m 1", [PF_SOURCE, ...SOURCE_ARGS]],
  ["ours smtp-source -m 1", [sourceLink(OURS, "ours"), "--no-summary", ...SOURCE_ARGS]],
  ["ours --version", [OURS, "--version"]],
  ["ours manager --help", [OURS, "manager", "--help"]],
];
if (COMPARE) {
  programs.push(
    ["compare smtp-source -m 1", [sourceLink(COMPARE, "compare"), "--no-summary", ...SOURCE_ARGS]],
    ["compare --version", [COMPARE, "--version"]],
    ["compare manager --help", [COMPARE, "manager", "--help"]],
  );
}

interface Run { cpuMs: number; wallMs: number }
async function runOnce(cmd: string[]): Promise<Run> {
  const t0 = performance.now();
  const p = Bun.spawn(cmd, { stdout: "ignore", stderr: "pipe" });
  const timer = setTimeout(() => p.kill("SIGKILL"), 30_000);
  const [code, err] = await Promise.all([p.exited, new Response(p.stderr).text()]);
  clearTimeout(timer);
  const wallMs = performance.now() - t0;
  if (code !== 0) throw new Error(`${cmd.join(" ")} exited ${code}: ${err}`);
  const cpu = p.resourceUsage()!.cpuTime;
  return { cpuMs: Number(cpu.total) / 1000, wallMs };
}

const runs = new Map<string, Run[]>(programs.map(([n]) => [n, []]));
const load0 = loadavg();
for (const [, cmd] of programs) await runOnce(cmd); // page cache warm
for (let r = 0; r < ROUNDS; r++) {
  // Rotate the order so that no program always follows the same one.
  for (let i = 0; i < programs.length; i++) {
    const [name, cmd] = programs[(i + r) % programs.length];
    runs.get(name)!.push(await runOnce(cmd));
  }
}
const load1 = loadavg();

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const helloCpu = median(runs.get("hello-world")!.map((r) => r.cpuMs));
console.log(`start-up, ${ROUNDS} interleaved rounds; load average ${load0.map((l) => l.toFixed(2)).join(" ")} -> ${load1.map((l) => l.toFixed(2)).join(" ")}`);
console.log(`ours: ${OURS}${COMPARE ? `\ncompare: ${COMPARE}` : ""}`);
console.log(`${"program".padEnd(28)} ${"CPU ms median".padStart(14)} ${"least".padStart(7)} ${"x hello".padStart(8)} ${"wall ms median".padStart(15)} ${"least".padStart(7)}`);
for (const [name] of programs) {
  const rs = runs.get(name)!;
  const cpu = rs.map((r) => r.cpuMs), wall = rs.map((r) => r.wallMs);
  console.log(`${name.padEnd(28)} ${median(cpu).toFixed(2).padStart(14)} ${Math.min(...cpu).toFixed(2).padStart(7)} ${(median(cpu) / helloCpu).toFixed(2).padStart(8)} ${median(wall).toFixed(2).padStart(15)} ${Math.min(...wall).toFixed(2).padStart(7)}`);
}
