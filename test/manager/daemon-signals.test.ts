// Signals of a running manager (a real process, as root it runs as nobody): SIGHUP with a session
// in flight (it finishes with its configuration, the next one gets the new one, a broken one is
// refused and logged), SIGUSR1 after the log file was moved, SIGTERM during a session, a second
// signal, and manager.max_connections holding sessions back.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { renameSync } from "node:fs";
import { join } from "node:path";
import { eom } from "../../src/milter-side/index.ts";
import { chain, expectStatus, SESSION } from "./support/harness.ts";
import { type ScriptedMilter, startScriptedMilter } from "./support/scripted-milter.ts";
import { existsSync, fileMode, isRoot, mta, readText, startForeground, until, workDir, writeConfig } from "./support/daemon.ts";

const work = workDir("mk-daemon-sig-");
const dir = work.dir;
let a: ScriptedMilter;
let b: ScriptedMilter;

beforeAll(async () => {
  a = await startScriptedMilter({ endOfMessage: eom([{ type: "addheader", name: "X-Milter", value: "a" }]) });
  b = await startScriptedMilter({ endOfMessage: eom([{ type: "addheader", name: "X-Milter", value: "b" }]) });
});
afterAll(async () => {
  await a?.close();
  await b?.close();
  work.remove();
});

const config = (milters: ScriptedMilter[], extra: object = {}) => ({
  log: { use_syslog: false, level: "default|info" },
  milters: milters.map((m, i) => ({ name: `m${i}`, connection_spec: m.spec })),
  ...extra,
});

/** The rest of the fixture session (from `from`, default: all of it), then QUIT; the modifications. */
async function finish(m: Awaited<ReturnType<typeof mta>>, from: Parameters<typeof chain>[2] = "connect") {
  await chain(m, "body", from);
  const o = await SESSION.endOfMessage(m);
  expectStatus(o, "continue");
  await m.quit();
  return o.ok ? o.modifications : [];
}

describe("signals", () => {
  test("SIGHUP: the session in flight finishes with the old configuration, the next one uses the new one; a broken file is refused", async () => {
    const file = writeConfig(join(dir, "reload.json"), config([a]));
    const log = join(dir, "log-reload/manager.log");
    const sock = join(dir, "run-reload/m.sock");
    const fg = await startForeground(["--config", file, "-s", `unix:${sock}`, "--log-path", log], { log });
    try {
      const first = await mta(`unix:${sock}`);
      await chain(first, "envelopeRecipient");
      writeConfig(file, config([b]));
      process.kill(fg.pid, "SIGHUP");
      await until(() => readText(log).includes("configuration reloaded: milters m0 (" + b.spec + ")"), 10_000, "reload");
      expect(await finish(first, "data")).toEqual([{ type: "add-header", name: "X-Milter", value: "a" }]);
      expect(b.sessions).toBe(0);
      const aSessions = a.sessions;

      expect(await finish(await mta(`unix:${sock}`))).toEqual([{ type: "add-header", name: "X-Milter", value: "b" }]);
      expect(a.sessions).toBe(aSessions);

      writeConfig(file, { ...config([a]), milters: [{ name: "broken", connection_spec: "tcp:nonsense" }] });
      process.kill(fg.pid, "SIGHUP");
      await until(() => readText(log).includes("reload failed, keeping the old configuration"), 10_000, "refused reload");
      expect(readText(log)).toMatch(new RegExp(`\\[error\\] reload failed, keeping the old configuration: ${file}.*\\n`));
      expect(readText(log)).toContain("milters[0].connection_spec");
      expect(await finish(await mta(`unix:${sock}`))).toEqual([{ type: "add-header", name: "X-Milter", value: "b" }]);
      expect(a.sessions).toBe(aSessions);
    } finally {
      expect(await fg.stop()).toBe(0);
    }
  }, 60_000);

  test("SIGUSR1 after the log file was moved: new lines go to a new file at the configured path", async () => {
    const file = writeConfig(join(dir, "reopen.json"), config([a]));
    const log = join(dir, "log-reopen/manager.log");
    const sock = join(dir, "run-reopen/m.sock");
    const fg = await startForeground(["--config", file, "-s", `unix:${sock}`, "--log-path", log], { log });
    try {
      await finish(await mta(`unix:${sock}`));
      await until(() => readText(log).includes("[sessions][finished] 1(+1)"), 5000, "first statistics line");
      renameSync(log, `${log}.1`); // what logrotate does
      process.kill(fg.pid, "SIGUSR1");
      await until(() => existsSync(log), 5000, "new log file");
      await finish(await mta(`unix:${sock}`));
      await until(() => readText(log).includes("[sessions][finished] 2(+1)"), 5000, "second statistics line");
      expect(readText(`${log}.1`)).not.toContain("[sessions][finished] 2(+1)");
      expect(readText(`${log}.1`)).toContain("[message] SIGUSR1: reopening the log file");
      if (isRoot) expect(fileMode(log)).toMatchObject({ uid: 65534 }); // created by the manager after the drop
    } finally {
      expect(await fg.stop()).toBe(0);
    }
  }, 60_000);

  test("SIGTERM during a session: no new connections, the session finishes, socket and pid file go, exit 0", async () => {
    const file = writeConfig(join(dir, "term.json"), config([a]));
    const log = join(dir, "log-term/manager.log");
    const sock = join(dir, "run-term/m.sock");
    const pid = join(dir, "run-term/m.pid");
    const fg = await startForeground(["--config", file, "-s", `unix:${sock}`, "--log-path", log, "--pid-file", pid], { log });
    expect(readText(pid)).toBe(`${fg.pid}\n`);
    const inFlight = await mta(`unix:${sock}`);
    await chain(inFlight, "envelopeRecipient");
    fg.proc.kill("SIGTERM");
    await until(() => readText(log).includes("SIGTERM: stopping"), 5000, "stopping");
    await until(() => !existsSync(sock), 5000, "socket removed");
    await expect(mta(`unix:${sock}`)).rejects.toThrow(/connection-error/);
    expect(fg.proc.exitCode).toBeNull(); // still finishing the session
    expect(await finish(inFlight, "data")).toEqual([{ type: "add-header", name: "X-Milter", value: "a" }]);
    expect(await fg.proc.exited).toBe(0);
    expect(existsSync(pid)).toBe(false);
    expect(readText(log)).toContain("[session][end][end-of-message][pass]");
    expect(readText(log)).toContain("[message] stopped");
  }, 60_000);

  test("a second SIGTERM while a session is still running exits at once (status 1), the pid file is removed", async () => {
    const slow = await startScriptedMilter({ endOfMessage: "hang" });
    try {
      const file = writeConfig(join(dir, "twice.json"), { ...config([slow]), milters: [{ name: "slow", connection_spec: slow.spec, end_of_message_timeout: 120 }] });
      const sock = join(dir, "run-twice/m.sock");
      const pid = join(dir, "run-twice/m.pid");
      const fg = await startForeground(["--config", file, "-s", `unix:${sock}`, "--pid-file", pid]);
      const m = await mta(`unix:${sock}`);
      await chain(m, "body");
      const pending = SESSION.endOfMessage(m);
      await until(() => slow.count("end-of-message") === 1, 5000, "end-of-message at the child");
      fg.proc.kill("SIGTERM");
      await fg.waitFor("SIGTERM: stopping");
      fg.proc.kill("SIGTERM");
      expect(await fg.proc.exited).toBe(1);
      expect(fg.output()).toContain("SIGTERM: second stop signal: exiting now");
      expect(existsSync(pid)).toBe(false);
      const o = await pending;
      expect(o.ok).toBe(false); // the connection went away with the process
      m.close();
    } finally {
      await slow.close();
    }
  }, 60_000);
});

describe("manager.max_connections", () => {
  test("beyond the limit a session waits (unanswered) until a running one ends and the suspend time is over", async () => {
    const file = writeConfig(join(dir, "max.json"), config([a], { manager: { max_connections: 1, suspend_time_on_unacceptable: 1 } }));
    const log = join(dir, "log-max/manager.log");
    const sock = join(dir, "run-max/m.sock");
    const fg = await startForeground(["--config", file, "-s", `unix:${sock}`, "--log-path", log], { log });
    try {
      const before = a.sessions;
      const first = await mta(`unix:${sock}`);
      await chain(first, "helo");
      let secondOpen = false;
      const second = mta(`unix:${sock}`).then((m) => {
        secondOpen = true;
        return m;
      });
      await until(() => readText(log).includes("manager.max_connections (1) reached: 1 sessions running, 1 waiting"), 5000, "suspend line");
      expect(secondOpen).toBe(false);
      expect(a.sessions).toBe(before + 1); // the waiting session has not opened its children
      await chain(first, "endOfMessage", "envelopeFrom");
      await first.quit();
      const m2 = await second;
      expect(a.sessions).toBe(before + 2);
      await chain(m2, "endOfMessage");
      await m2.quit();
    } finally {
      expect(await fg.stop()).toBe(0);
    }
  }, 60_000);
});
