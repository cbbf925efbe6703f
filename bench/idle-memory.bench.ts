/**
 * Idle memory of `milterkit manager` beside a compiled Bun listener that does nothing, in one run
 * (issue 16: the manager idles at ≤ 40 MB; a bare compiled Bun listener idles at ~26 MB).
 *
 *   bun run bench/idle-memory.bench.ts [--binary dist/milterkit] [--compare OTHER-BINARY]
 *       [--rounds 3] [--settle-ms 2000] [--no-pieces]
 *
 * Every program is compiled with the flags of build.ts (compileEntry): without --binary the
 * manager is built from src/main.ts into a temporary directory. The manager runs a typical
 * configuration: two children (milterkit test-client, one on a unix socket, one on TCP, run from a
 * copy of the binary so that they share no pages with the manager), listening on TCP, started as
 * the systemd unit starts it (`milter-manager --no-daemon`, through a symlink) and as
 * `milterkit manager --no-daemon`. The reference is `Bun.listen` alone, compiled alike. With
 * --compare, the manager of another build (e.g. the main branch's) runs beside them, started as
 * milter-manager too: a before/after in one run.
 *
 * Reported per process (medians over --rounds, all processes of a round started together):
 * VmRSS, RssAnon, RssFile (/proc/PID/status), PSS (/proc/PID/smaps_rollup) and threads, once
 * listening plus --settle-ms, and for the managers again after one milter session (test-server's
 * load engine, -m small.eml) plus --settle-ms.
 *
 * The breakdown (unless --no-pieces; one run each): small programs compiled alike, each doing one
 * thing the manager does at start (a module, a Bun API, JavaScriptCore's JIT tiers or GC), then listening.
 * For each: its memory above the reference listener. Then the manager's pages of the binary
 * (its code and data, mapped from the file: what RssFile counts) beyond the listener's, explained
 * piece by piece in the order of the table (a page already explained by an earlier piece is not
 * counted again); what no piece explains is our own code's share (the bundle's bytecode and the
 * Bun paths only the manager takes). RssFile counts every page of the binary the process has
 * touched, and more: the kernel maps the page cache's neighbouring pages around a fault, so the
 * figures move by a few MB with how the page cache holds the file (the same listener measured 21
 * to 26 MB at different times of one day). Only figures of one run compare, so every program is
 * built afresh in the run.
 */
import { copyFileSync, mkdirSync, openSync, readFileSync, readSync, closeSync, realpathSync, symlinkSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { compileEntry, compileMilterkit } from "../build.ts";
import { runLoad } from "../src/test-server/load.ts";
import { parseTestServerArgs } from "../src/test-server/options.ts";
import { buildPlan } from "../src/test-server/plan.ts";
import { makeTempDir } from "../test/e2e/lib/dirs.ts";
import { freePort, waitForPort, waitForUnix } from "../test/e2e/lib/ports.ts";
import { cleanEnv, spawnTracked, stopPid, type Spawned } from "../test/e2e/lib/proc.ts";

const ROOT = resolve(import.meta.dir, "..");
const arg = (name: string, dflt: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : dflt;
};
const ROUNDS = Number(arg("rounds", "3"));
const SETTLE_MS = Number(arg("settle-ms", "2000"));
const PIECES = !process.argv.includes("--no-pieces");
const COMPARE = process.argv.includes("--compare") ? resolve(arg("compare", "")) : undefined;
const SMALL_EML = join(ROOT, "test/fixtures/test-server/small.eml");

const tmp = makeTempDir("mk-bench-idle-");
const MB = (kb: number) => (kb / 1024).toFixed(1);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

interface Mem { rss: number; anon: number; file: number; pss: number; threads: number }

/** kB figures of a live process. */
function memOf(pid: number): Mem {
  const st = readFileSync(`/proc/${pid}/status`, "latin1");
  const kb = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+)`, "m").exec(st)?.[1] ?? NaN);
  const roll = readFileSync(`/proc/${pid}/smaps_rollup`, "latin1");
  return { rss: kb("VmRSS"), anon: kb("RssAnon"), file: kb("RssFile"), pss: Number(/^Pss:\s+(\d+)/m.exec(roll)?.[1] ?? NaN), threads: kb("Threads") };
}

/**
 * Which pages of the executable are mapped in `pid`, per mapping (key: permissions and file
 * offset, the same in every program compiled by the same Bun: only the appended bundle differs).
 */
function binaryPages(pid: number, binary: string): Map<string, Uint8Array> {
  const self = realpathSync(binary);
  const out = new Map<string, Uint8Array>();
  const fd = openSync(`/proc/${pid}/pagemap`, "r");
  try {
    for (const line of readFileSync(`/proc/${pid}/maps`, "latin1").split("\n")) {
      const m = /^([0-9a-f]+)-([0-9a-f]+) (\S+) ([0-9a-f]+) \S+ \S+\s*(.*)$/.exec(line);
      if (!m || m[5] !== self) continue;
      const start = parseInt(m[1], 16);
      const n = (parseInt(m[2], 16) - start) / 4096;
      const buf = Buffer.alloc(n * 8);
      readSync(fd, buf, 0, n * 8, (start / 4096) * 8);
      const present = new Uint8Array(n);
      for (let i = 0; i < n; i++) present[i] = buf[i * 8 + 7] >> 7; // bit 63: present
      out.set(`${m[3]}@${m[4]}`, present);
    }
  } finally {
    closeSync(fd);
  }
  return out;
}

/** Compile, then flush: pages still under writeback are not mapped around a fault, which skews RssFile. */
function compile(entry: string, out: string): void {
  compileEntry(entry, out);
  Bun.spawnSync(["sync"]);
}

// ---------------------------------------------------------------------------------------------
// The programs

// No "ready" line: process.stdout is a node stream whose first use alone costs ~7 MB. The bench waits for the port.
const LISTEN = `Bun.listen({ hostname: "127.0.0.1", port: Number(process.env.PORT), socket: { data() {} } });`;
const src = (rel: string) => JSON.stringify(join(ROOT, "src", rel));
const dep = (name: string) => JSON.stringify(Bun.resolveSync(name, ROOT));

/**
 * One program per piece, each ending in the reference listener. First what any Bun program may
 * touch (JavaScriptCore's GC, parser, JIT tiers; Bun's built-in modules, which are JavaScript
 * compiled when first imported), then the manager's start-up, each piece including the previous.
 * The order is the attribution order of the last column.
 */
function pieces(config: string): [name: string, code: string][] {
  const schema = src("manager/config/schema.ts");
  return [
    ["GC (one full collection)", `Bun.gc(true);`],
    ["JS parser (new Function)", `new Function("a", Array.from({ length: 100 }, (_, i) => "function f" + i + "(x) { const o = { x, y: [x, ...[1]], z: \`t\${x}\` }; for (const k of Object.keys(o)) if (typeof o[k] === 'string') return o[k].slice(1); class C { #p = 1; get q() { return this.#p; } async m() { await null; return x?.b ?? 1; } } return new C(); }").join("\\n") + "; return f1(a);")(1);`],
    ["JIT: baseline", `let s = 0; function f(a) { return (a * 3) ^ (a >> 2); } for (let i = 0; i < 600; i++) s = (s + f(i)) | 0; globalThis.s = s;`],
    ["JIT: DFG and FTL", `let s = 0; function f(a) { return (a * 3) ^ (a >> 2); } for (let i = 0; i < 300000; i++) s = (s + f(i)) | 0; globalThis.s = s;`],
    ["RegExp", `const rs = [/^[a-z0-9._%+-]+@[a-z0-9.-]+\\.[a-z]{2,}$/i, /^\\d{1,3}(\\.\\d{1,3}){3}$/, /\\p{L}/u, /(?<n>\\w+)=(?<v>.*)/]; for (let i = 0; i < 100; i++) for (const r of rs) r.test("a" + i + "@b.org");`],
    ["node:fs", `import { readFileSync } from "node:fs"; readFileSync("/proc/self/stat");`],
    ["node:net", `import { isIPv4 } from "node:net"; globalThis.x = isIPv4("127.0.0.1");`],
    ["node:dns", `import { Resolver } from "node:dns"; globalThis.x = new Resolver();`],
    ["node:tty", `import { isatty } from "node:tty"; globalThis.x = isatty(2);`],
    ["node:util (citty's, milterkit TOOL only)", `import { parseArgs } from "node:util"; globalThis.x = parseArgs({ args: [], options: {} });`],
    ["process.stdout (a node stream; not used by the manager)", `process.stdout.write("");`],
    ["bun:ffi (libc: syslog, descriptor limit, TCP_QUICKACK)", `import { libc } from ${src("net/libc.ts")}; libc();`],
    ["start 1: zod imported", `import { z } from ${dep("zod")}; globalThis.x = z.string;`],
    ["start 2: + what the schema's checks call (net/spec.ts, runtime/log.ts; node:net)", `import { z } from ${dep("zod")}; import { parseSpec } from ${src("net/spec.ts")}; import { parseLogLevel } from ${src("runtime/log.ts")}; globalThis.x = [z.string, parseSpec("inet:10025@[127.0.0.1]"), parseLogLevel("default")];`],
    ["start 3: + our configuration schema built", `import { ConfigFileSchema } from ${schema}; globalThis.x = ConfigFileSchema;`],
    ["start 4: + one file validated", `import { ConfigFileSchema } from ${schema}; globalThis.x = ConfigFileSchema.safeParse(${JSON.stringify(JSON.parse(readFileSync(config, "utf8")))});`],
    ["start 5: + the whole loader (loadEffectiveConfig)", `import { loadEffectiveConfig } from ${src("manager/config/load.ts")}; globalThis.x = await loadEffectiveConfig({ kind: "file", path: ${JSON.stringify(config)} });`],
  ];
}

// ---------------------------------------------------------------------------------------------

async function waitSpec(spec: string, p: Spawned, what: string): Promise<void> {
  const o = { pid: p.pid, logFile: p.logFile, what };
  if (spec.startsWith("unix:")) await waitForUnix(spec.slice(5), 15_000, o);
  else await waitForPort("127.0.0.1", Number(/^inet:(\d+)@/.exec(spec)![1]), 15_000, o);
}

/** Start a piece (or the reference) and wait until it listens. */
async function startPiece(binary: string, label: string): Promise<Spawned> {
  const port = await freePort();
  const logFile = join(tmp, `${label.replace(/[^\w.-]+/g, "_")}.log`);
  const p = spawnTracked([binary], { logFile, what: label, env: { ...cleanEnv(), PORT: String(port) } });
  await waitForPort("127.0.0.1", port, 15_000, { pid: p.pid, logFile: p.logFile, what: label });
  return p;
}

let sockN = 0;
async function startManager(cmd: string[], children: string[], label: string): Promise<{ p: Spawned; spec: string; config: string }> {
  const spec = `inet:${await freePort()}@[127.0.0.1]`;
  const config = join(tmp, `${label}-${++sockN}.json`);
  writeFileSync(
    config,
    JSON.stringify({
      // As root the manager would become nobody: stay root like the test clients (-u root).
      security: { privilege_mode: false, ...(process.getuid?.() === 0 ? { effective_user: "root" } : {}) },
      manager: { connection_spec: spec },
      milters: children.map((c, i) => ({ name: `child-${i + 1}`, connection_spec: c })),
    }),
  );
  const p = spawnTracked([...cmd, "--config", config, "--no-daemon"], { logFile: join(tmp, `${label}.log`), what: label });
  await waitSpec(spec, p, label);
  return { p, spec, config };
}

const plan = buildPlan(parseTestServerArgs(["-m", SMALL_EML], { readFile: (p) => readFileSync(p), env: {} }));
async function oneSession(spec: string): Promise<void> {
  const t = 10_000;
  const s = await runLoad({ plan, client: { spec, connectionTimeoutMs: t, readingTimeoutMs: t, writingTimeoutMs: t, endOfMessageTimeoutMs: t }, sessions: 1, concurrency: 1, maxTimeMs: 30_000 });
  if (s.completed !== 1) throw new Error(`the session through ${spec} did not complete: ${JSON.stringify(s).slice(0, 300)}`);
}

const started: Spawned[] = [];
const track = <T extends { p: Spawned } | Spawned>(x: T): T => (started.push("p" in x ? x.p : x), x);
const row = (what: string, ms: Mem[], ref?: Mem[]) => {
  const m = (k: keyof Mem) => median(ms.map((x) => x[k]));
  const d = (k: keyof Mem) => (ref ? ` (+${MB(m(k) - median(ref.map((x) => x[k])))})` : "");
  return `| ${what} | ${MB(m("rss"))}${d("rss")} | ${MB(m("anon"))}${d("anon")} | ${MB(m("file"))}${d("file")} | ${MB(m("pss"))} | ${m("threads")} |`;
};

try {
  const load = readFileSync("/proc/loadavg", "latin1").split(" ").slice(0, 3).join(" ");
  console.log(`# idle memory, MB: ${ROUNDS} round(s), settle ${SETTLE_MS} ms; ${new Date().toISOString()} bun ${Bun.version} cpus ${navigator.hardwareConcurrency} loadavg ${load}`);
  let binary = process.argv.includes("--binary") ? resolve(arg("binary", "dist/milterkit")) : join(tmp, "milterkit");
  if (!process.argv.includes("--binary")) {
    compileMilterkit(binary);
    Bun.spawnSync(["sync"]);
  }
  binary = realpathSync(binary);
  const link = join(tmp, "milter-manager");
  symlinkSync(binary, link);
  let compareLink: string | undefined;
  if (COMPARE) {
    const copy = join(tmp, "compare-milterkit"); // a copy: the page cache holds it as freshly as ours
    copyFileSync(COMPARE, copy);
    compareLink = join(tmp, "compare", "milter-manager");
    mkdirSync(join(tmp, "compare"));
    symlinkSync(copy, compareLink);
  }
  const childBinary = join(tmp, "children-milterkit");
  copyFileSync(binary, childBinary);
  writeFileSync(join(tmp, "bare.ts"), LISTEN);
  const bare = join(tmp, "bare");
  compile(join(tmp, "bare.ts"), bare);

  const asRoot = process.getuid?.() === 0 ? ["-u", "root"] : [];
  const children: string[] = [];
  for (const spec of [`unix:${join(tmp, "child.sock")}`, `inet:${await freePort()}@[127.0.0.1]`]) {
    const p = track(spawnTracked([childBinary, "test-client", "--no-report-request", "-s", spec, ...asRoot], { logFile: join(tmp, `child-${children.length}.log`), what: "test-client" }));
    await waitSpec(spec, p, "test-client");
    children.push(spec);
  }

  const res = { bare: [] as Mem[], link: [] as Mem[], multi: [] as Mem[], linkAfter: [] as Mem[], multiAfter: [] as Mem[], cmp: [] as Mem[], cmpAfter: [] as Mem[] };
  let managerPages: Map<string, Uint8Array> | undefined;
  let barePages: Map<string, Uint8Array> | undefined;
  let managerConfig = "";
  for (let r = 0; r < ROUNDS; r++) {
    const b = track(await startPiece(bare, `bare-${r}`));
    const l = track(await startManager([link], children, `milter-manager-${r}`));
    const m = track(await startManager([binary, "manager"], children, `milterkit-manager-${r}`));
    const c = compareLink ? track(await startManager([compareLink], children, `compare-${r}`)) : undefined;
    await Bun.sleep(SETTLE_MS);
    if (c) res.cmp.push(memOf(c.p.pid));
    res.bare.push(memOf(b.pid));
    res.link.push(memOf(l.p.pid));
    res.multi.push(memOf(m.p.pid));
    if (r === 0) {
      managerPages = binaryPages(l.p.pid, binary);
      barePages = binaryPages(b.pid, bare);
      managerConfig = l.config;
    }
    await oneSession(l.spec);
    await oneSession(m.spec);
    if (c) await oneSession(c.spec);
    await Bun.sleep(SETTLE_MS);
    if (c) res.cmpAfter.push(memOf(c.p.pid));
    res.linkAfter.push(memOf(l.p.pid));
    res.multiAfter.push(memOf(m.p.pid));
    for (const p of [b, l.p, m.p, ...(c ? [c.p] : [])]) await stopPid(p.pid, { graceMs: 12_000 });
  }
  console.log("\n| process | VmRSS | RssAnon | RssFile | PSS | threads |\n|---|---|---|---|---|---|");
  console.log(row("Bun.listen alone (reference)", res.bare));
  console.log(row("manager, started as milter-manager (systemd unit)", res.link, res.bare));
  console.log(row("manager, started as milterkit manager", res.multi, res.bare));
  console.log(row("milter-manager after one session", res.linkAfter, res.bare));
  console.log(row("milterkit manager after one session", res.multiAfter, res.bare));
  if (COMPARE) {
    console.log(row(`--compare ${COMPARE}: milter-manager`, res.cmp, res.bare));
    console.log(row(`--compare ${COMPARE}: after one session`, res.cmpAfter, res.bare));
  }

  if (PIECES && managerPages && barePages) {
    const list = pieces(managerConfig);
    const built: [string, string][] = [];
    for (const [i, [name, code]] of list.entries()) {
      const file = join(tmp, `piece-${i}.ts`);
      writeFileSync(file, `${code}\n${LISTEN}\n`);
      compile(file, join(tmp, `piece-${i}`));
      built.push([name, join(tmp, `piece-${i}`)]);
    }
    // What the manager maps of the binary beyond the listener, page by page.
    const left = new Map<string, Set<number>>();
    let total = 0;
    for (const [key, pages] of managerPages) {
      const ref = barePages.get(key);
      const s = new Set<number>();
      pages.forEach((v, i) => { if (v && !ref?.[i]) s.add(i); });
      left.set(key, s);
      total += s.size;
    }
    console.log(`\n| piece (then the reference listener) | VmRSS | RssAnon above the listener | RssFile above the listener | the manager's binary pages it explains (in this order), MB |\n|---|---|---|---|---|`);
    for (const [name, bin] of built) {
      const p = track(await startPiece(bin, name));
      await Bun.sleep(SETTLE_MS);
      const mem = memOf(p.pid);
      const pages = binaryPages(p.pid, bin);
      await stopPid(p.pid, { graceMs: 2000, signal: "SIGKILL" });
      let explained = 0;
      for (const [key, s] of left) {
        const has = pages.get(key);
        if (!has) continue;
        for (const i of [...s]) if (has[i]) { s.delete(i); explained++; }
      }
      const ref = (k: keyof Mem) => median(res.bare.map((x) => x[k]));
      console.log(`| ${name} | ${MB(mem.rss)} | ${MB(mem.anon - ref("anon"))} | ${MB(mem.file - ref("file"))} | ${MB(explained * 4)} |`);
    }
    const rest = [...left.values()].reduce((n, s) => n + s.size, 0);
    console.log(`| (unexplained: our bundle's bytecode and the paths only the manager takes) | | | | ${MB(rest * 4)} |`);
    console.log(`\nThe manager's binary pages beyond the listener's: ${MB(total * 4)} MB.`);
  }
} finally {
  for (const p of started) await stopPid(p.pid, { graceMs: 5000 });
}
