// The manager as a real process: `--check` lists reachable and unreachable children with the right
// exit status and touches nothing; a UTF-8 milter name, the session summary and a reload error come
// out intact, one line each, in the log file, on standard output and in syslog; the controller
// counts the failed reload.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ConfigError, loadEffectiveConfig } from "../../src/manager/config/load.ts";
import { oneLine } from "../../src/runtime/log-text.ts";
import { Accept } from "../../src/milter-side/index.ts";
import { freePort, MAIN, mta, startForeground, until, workDir, writeConfig } from "./support/daemon.ts";
import { type ScriptedMilter, startScriptedMilter } from "./support/scripted-milter.ts";
import { parsePrometheus } from "./support/prometheus.ts";
import type { StatusDocument } from "../../src/manager/monitor.ts";

const NAME = "prüfung–α";
let child: ScriptedMilter;
let dead: string;
const work = workDir("mk-observe-");

beforeAll(async () => {
  child = await startScriptedMilter({ endOfMessage: Accept });
  dead = `inet:${freePort()}@[127.0.0.1]`;
});
afterAll(async () => {
  await child.close();
  work.remove();
});

async function run(args: string[]): Promise<{ code: number; out: string; err: string }> {
  const p = Bun.spawn([process.execPath, MAIN, "manager", ...args], { stdout: "pipe", stderr: "pipe", env: { ...process.env, NO_COLOR: "1" } });
  const timer = setTimeout(() => p.kill("SIGKILL"), 30_000);
  const [out, err] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text()]);
  const code = await p.exited;
  clearTimeout(timer);
  return { code, out, err };
}

describe("--check", () => {
  test("one line per child: reachable with what it negotiated, unreachable with why; exit 1; nothing created", async () => {
    const dir = join(work.dir, "check");
    const config = writeConfig(join(work.dir, "check.json"), {
      manager: { connection_spec: `unix:${dir}/manager.sock`, pid_file: `${dir}/manager.pid` },
      log: { path: `${dir}/manager.log`, use_syslog: false },
      controller: { connection_spec: `unix:${dir}/controller.sock` },
      milters: [
        { name: NAME, connection_spec: child.spec, applicable_conditions: ["S25R"] },
        { name: "dead", connection_spec: dead, connection_timeout: 2 },
        { name: "off", connection_spec: dead, enabled: false },
      ],
    });
    const r = await run(["--config", config, "--check"]);
    expect(r.code).toBe(1);
    const lines = r.out.trimEnd().split("\n");
    expect(lines[0]).toBe(`configuration: ${config}`);
    expect(lines[1]).toMatch(new RegExp(`^${NAME} inet:\\d+@\\[127\\.0\\.0\\.1\\] reachable [\\d.]+ms version=6 actions=\\S+ steps=\\S+ conditions=S25R$`));
    expect(lines[1]).toContain("add-header");
    expect(lines[2]).toMatch(/^dead inet:\d+@\[127\.0\.0\.1\] unreachable [\d.]+ms conditions=- error=connection-error: /);
    expect(lines[3]).toBe(`off ${dead} disabled conditions=-`);
    expect(lines[4]).toBe("1 reachable, 1 unreachable, 1 disabled");
    expect(existsSync(dir)).toBe(false); // no socket, pid file or log directory
  }, 30_000);

  test("every child reachable: exit 0; no child: the warning, exit 0; a broken configuration: exit 1 with the error", async () => {
    const ok = writeConfig(join(work.dir, "ok.json"), { log: { use_syslog: false }, milters: [{ name: "one", connection_spec: child.spec }] });
    const r = await run(["--config", ok, "--check"]);
    expect(r.code).toBe(0);
    expect(r.out).toContain("1 reachable, 0 unreachable");
    const none = writeConfig(join(work.dir, "none.json"), { log: { use_syslog: false }, milters: [] });
    const n = await run(["--config", none, "--check"]);
    expect(n.code).toBe(0);
    expect(n.out).toContain("warning: no child milter is configured or detected: every message gets manager.fallback_status");
    const bad = writeConfig(join(work.dir, "bad.json"), { milters: [{ name: "x", connection_spec: "bogus:1" }] });
    const b = await run(["--config", bad, "--check"]);
    expect(b.code).toBe(1);
    expect(b.err).toContain("connection_spec");
  }, 30_000);
});

describe("a running manager's log in each sink", () => {
  test("file and syslog: UTF-8 name, summary line with client and queue id, reload error as one line; controller counts the reload", async () => {
    const sock = join(work.dir, "syslog.sock");
    const rx = Bun.spawn(["python3", join(import.meta.dir, "../fixtures/test-client/syslog_receiver.py"), sock], { stdout: "pipe" });
    const chunks: Buffer[] = [];
    void (async () => {
      for await (const c of rx.stdout) chunks.push(Buffer.from(c));
    })();
    const syslog = () => Buffer.concat(chunks).toString("utf8");
    await until(() => syslog().includes("ready"), 5000, "syslog receiver");
    const log = join(work.dir, "run.log");
    const port = freePort();
    const controller = join(work.dir, "ctl.sock");
    const config = join(work.dir, "run.json");
    const good = {
      manager: { connection_spec: `inet:${port}@[127.0.0.1]` },
      log: { path: log, use_syslog: true },
      controller: { connection_spec: `unix:${controller}` },
      milters: [{ name: NAME, connection_spec: child.spec }],
    };
    writeConfig(config, good);
    const fg = await startForeground(["--config", config], { env: { MILTERKIT_SYSLOG_SOCKET: sock }, log });
    try {
      const m = await mta(`inet:${port}@[127.0.0.1]`);
      await m.connect("client.example", { family: "4", address: "192.0.2.7", port: 4321 });
      await m.helo("helo.example");
      await m.envelopeFrom("<sender@example.org>", []);
      await m.envelopeRecipient("<rcpt@example.net>", []);
      await m.data({ i: "4XyZ12" });
      await m.header("Subject", "x");
      await m.endOfHeader();
      await m.body(Buffer.from("hi\r\n"));
      expect((await m.endOfMessage()).ok).toBe(true);
      await m.quit();
      const summary = new RegExp(`\\[message\\] \\[\\d+\\] 4XyZ12: client=client\\.example\\[192\\.0\\.2\\.7\\]:4321 helo=<helo\\.example> from=<sender@example\\.org> nrcpt=1 milters: ${NAME}: .*end-of-message=accept/[\\d.]+ms; reply=accept at end-of-message elapsed=`);
      await until(() => summary.test(readFileSync(log, "utf8")), 5000, "summary line in the file");
      await until(() => summary.test(syslog()), 5000, "summary line in syslog");

      // A broken configuration on reload: the error is one line, intact, in both sinks.
      const broken = { ...good, milters: [{ name: NAME, connection_spec: "bogus:1" }, { name: "zweite", connection_spec: child.spec, applicable_conditions: ["nope"] }] };
      writeConfig(config, broken);
      let message = "";
      try {
        await loadEffectiveConfig({ kind: "file", path: config });
      } catch (e) {
        if (e instanceof ConfigError) message = e.message;
      }
      expect(message).toContain("\n"); // several lines as loaded …
      expect(message).toContain("✖");
      process.kill(fg.pid, "SIGHUP");
      const expected = `[error] reload failed, keeping the old configuration: ${oneLine(message)}`;
      await until(() => readFileSync(log, "utf8").includes(expected), 5000, "reload error in the file");
      await until(() => syslog().includes(expected), 5000, "reload error in syslog");
      const fileLine = readFileSync(log, "utf8").split("\n").find((l) => l.includes("reload failed"))!;
      expect(fileLine.endsWith(oneLine(message))).toBe(true); // … one line here
      const metrics = parsePrometheus(await (await fetch("http://localhost/metrics", { unix: controller } as RequestInit)).text());
      expect(metrics.get("milterkit_reloads_total", { outcome: "failed" })).toBe(1);
      expect(metrics.get("milterkit_sessions_total", { status: "accept" })).toBe(1);
      const status = (await (await fetch("http://localhost/status", { unix: controller } as RequestInit)).json()) as StatusDocument;
      expect(status.reloads.last_error).toBe(message);
      expect(status.configuration.source).toBe(config);
      expect(status.children[0]).toMatchObject({ name: NAME, state: "up" });
    } finally {
      expect(await fg.stop()).toBe(0);
      rx.kill();
      await rx.exited;
    }
  }, 60_000);

  test("stdout: the UTF-8 name and summary intact", async () => {
    const port = freePort();
    const config = writeConfig(join(work.dir, "stdout.json"), {
      manager: { connection_spec: `inet:${port}@[127.0.0.1]` },
      log: { use_syslog: false },
      milters: [{ name: NAME, connection_spec: child.spec }],
    });
    const fg = await startForeground(["--config", config]);
    try {
      const m = await mta(`inet:${port}@[127.0.0.1]`);
      await m.connect("client.example", { family: "6", address: "2001:db8::7", port: 25 });
      await m.quit();
      // The helper reads stdout as latin1: decode the bytes as UTF-8 here.
      const out = () => Buffer.from(fg.output(), "latin1").toString("utf8");
      await until(() => out().includes(`session: client=client.example[2001:db8::7]:25 helo=<> messages=0 milters: ${NAME}: connect=continue/`), 5000, "session line on stdout");
      expect(out()).toContain(`milters ${NAME} (`);
    } finally {
      expect(await fg.stop()).toBe(0);
    }
  }, 30_000);
});
