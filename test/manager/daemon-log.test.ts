// What a running manager (a real process) logs about a problem: once. A child that is not listening
// is one warning when it goes down and one line when it is back; each configuration problem is one
// warning per start and one per reload, with workers too; a log path that is a symbolic link stops
// the start with a clear error and leaves the link's target alone.
import { afterAll, describe, expect, test } from "bun:test";
import { chmodSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { SESSION } from "./support/harness.ts";
import { type ScriptedMilter, startScriptedMilter } from "./support/scripted-milter.ts";
import { freePort, isRoot, MAIN, mta, readText, startForeground, until, workDir, writeConfig } from "./support/daemon.ts";

const work = workDir("mk-daemon-log-");
const dir = work.dir;
afterAll(() => work.remove());

/** The log's lines without time stamps and the `[worker N][pid P] ` of worker lines. */
const entries = (log: string) =>
  readText(log)
    .split("\n")
    .filter(Boolean)
    .map((l) => l.replace(/^\[[^\]]+\]: /, "").replace(/\[worker \d+\]\[pid \d+\] /, ""));

describe("said once", () => {
  test("a child that is not listening: one warning when it goes down, one message when it is back", async () => {
    const childSpec = `inet:${freePort()}@[127.0.0.1]`; // nobody listens there yet
    const file = writeConfig(join(dir, "down.json"), {
      log: { use_syslog: false, level: "default|info" },
      manager: { milter_retry_interval: 0.5, milter_retry_max_interval: 1 },
      milters: [{ name: "child", connection_spec: childSpec, fallback_status: "accept", connection_timeout: 5 }],
    });
    const log = join(dir, "down.log");
    const sock = join(dir, "run-down/m.sock");
    const fg = await startForeground(["--config", file, "-s", `unix:${sock}`, "--log-path", log], { log });
    let child: ScriptedMilter | undefined;
    try {
      const session = async () => {
        const m = await mta(`unix:${sock}`);
        await SESSION.connect(m);
        await m.quit();
      };
      for (let i = 0; i < 3; i++) await session(); // the first one finds it down, the others do not try
      child = await startScriptedMilter({}, childSpec);
      await Bun.sleep(700); // the back-off is over: the next session tries it
      await session();
      await until(() => entries(log).filter((l) => l.includes("session: ")).length === 4, 5000, "four session lines");
      const about = entries(log).filter((l) => l.includes("milter child") && !l.includes("session: "));
      expect(about.filter((l) => l.startsWith("[warning]"))).toEqual([expect.stringMatching(/^\[warning\] \[1\] milter child \(inet:.*\) is down, counted as accept without trying for 0.5 s, then one session tries again: connection-error at negotiate: .*connection refused$/)]);
      expect(about.filter((l) => / is back after| up again/.test(l))).toEqual([expect.stringMatching(/^\[message\] \[4\] milter child \(inet:.*\) is back after \d+\.\d s$/)]);
      // Between the two, what each session did without it (at info); nothing else about it.
      expect(about.length).toBe(4);
      expect(about.slice(1, 3)).toEqual([expect.stringMatching(/^\[info\] \[2\] .* is not available, counted as accept: down: not tried again yet/), expect.stringMatching(/^\[info\] \[3\] /)]);
    } finally {
      expect(await fg.stop()).toBe(0);
      await child?.close();
    }
  }, 60_000);

  test.skipIf(!isRoot)("configuration problems: one warning each per start and per reload, with two workers", async () => {
    const etc = join(dir, "etc");
    mkdirSync(join(etc, "conf.d"), { recursive: true, mode: 0o755 });
    writeConfig(join(etc, "milterkit.config.json"), {
      log: { use_syslog: false },
      security: { strict_modes: false },
      milters: [{ name: "slow", connection_spec: "inet:1@[127.0.0.1]", connection_timeout: 300 }],
    });
    const dropIn = writeConfig(join(etc, "conf.d/more.json"), { manager: { max_connections: 50 } });
    chmodSync(dropIn, 0o664);
    const log = join(dir, "workers.log");
    writeFileSync(log, "");
    chmodSync(log, 0o664); // a log file its group can write
    const port = freePort();
    const fg = await startForeground(["-c", etc, "-s", `inet:${port}@127.0.0.1`, "--n-workers", "2", "--log-path", log], { log, ready: "2 workers listening on" });
    try {
      await until(() => entries(log).filter((l) => l.includes("listening on")).length === 3, 10_000, "both workers listening");
      const warnings = (lines: string[]) => lines.filter((l) => l.startsWith("[warning]"));
      const start = warnings(entries(log));
      expect(start.length).toBe(new Set(start).size); // each once
      expect(start.some((l) => l.startsWith("[warning] connection_timeout of slow (300 s) is longer than the MTA waits"))).toBe(true);
      expect(start.some((l) => l.startsWith(`[warning] file ${dropIn} can be written by its group (mode 0664)`))).toBe(true);
      expect(start.some((l) => l.startsWith(`[warning] nobody (uid 65534) will not be able to reopen the log ${log}`))).toBe(true); // checked before the switch
      expect(start.some((l) => l.startsWith(`[warning] log file ${log} can be written by its group (mode 0664)`))).toBe(true);

      process.kill(fg.pid, "SIGHUP");
      await until(() => entries(log).filter((l) => l.startsWith("[message] configuration reloaded")).length === 3, 10_000, "reloaded in all three");
      const reload = warnings(entries(log).slice(entries(log).findIndex((l) => l.includes("SIGHUP: reloading"))));
      expect(reload.length).toBe(new Set(reload).size);
      // Still there, so said again: once.
      expect(reload.filter((l) => l.startsWith("[warning] connection_timeout of slow")).length).toBe(1);
      expect(reload.filter((l) => l.startsWith(`[warning] file ${dropIn} can be written`)).length).toBe(1);
      expect(reload.filter((l) => l.startsWith(`[warning] log file ${log} can be written`)).length).toBe(1);
    } finally {
      expect(await fg.stop()).toBe(0);
    }
  }, 60_000);
});

test("a symbolic link at the log path: the start stops with a clear error; the link's target is untouched", async () => {
  const target = join(dir, "precious");
  writeFileSync(target, "precious\n", { mode: 0o600 });
  const log = join(dir, "link.log");
  symlinkSync(target, log);
  const file = writeConfig(join(dir, "link.json"), { log: { use_syslog: false }, milters: [] });
  const proc = Bun.spawn({ cmd: [process.execPath, MAIN, "manager", "--config", file, "-s", `unix:${join(dir, "link.sock")}`, "--log-path", log], stdout: "pipe", stderr: "pipe", env: { ...process.env, NO_COLOR: "1" } });
  const timer = setTimeout(() => proc.kill("SIGKILL"), 20_000);
  const [code, out, err] = await Promise.all([proc.exited, new Response(proc.stdout).text(), new Response(proc.stderr).text()]);
  clearTimeout(timer);
  expect(code).toBe(1);
  expect(out + err).toContain(`cannot open log file ${log}: it is a symbolic link, and a log file is never opened through one`);
  expect(readFileSync(target, "latin1")).toBe("precious\n");
}, 30_000);
