// The manager process and its children: the statistics lines of the original for every finished
// session and every child (what log analyzers read), a child milter started by the launcher when
// it is not reachable (privilege mode), and n_workers with a worker killed and replaced.
import { afterAll, describe, expect, test } from "bun:test";
import { chmodSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { eom, Reject } from "../../src/milter-side/index.ts";
import { chain, expectStatus, SESSION } from "./support/harness.ts";
import { startScriptedMilter } from "./support/scripted-milter.ts";
import { alive, childrenOf, freePort, ids, isRoot, MAIN, mta, readText, startForeground, stopPid, track, until, workDir, writeConfig } from "./support/daemon.ts";

const work = workDir("mk-daemon-ch-");
const dir = work.dir;
afterAll(() => work.remove());

const STAT = "\\[\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\d\\.\\d{6}Z\\]: ";
const ELAPSED = "\\[\\d+\\.\\d{6}\\]";

describe("statistics lines", () => {
  test("every finished session and every child's result, in the original's format", async () => {
    const tagger = await startScriptedMilter({ endOfMessage: eom([{ type: "addheader", name: "X-Spam-Flag", value: "NO" }]) });
    const picky = await startScriptedMilter({ envelopeRecipient: (cmd) => (cmd.address.includes("nobody") ? Reject : undefined) });
    try {
      const file = writeConfig(join(dir, "stats.json"), {
        log: { use_syslog: false }, // level "default": statistics included
        milters: [
          { name: "tagger", connection_spec: tagger.spec },
          { name: "picky", connection_spec: picky.spec },
        ],
      });
      const port = freePort();
      const fg = await startForeground(["--config", file, "-s", `inet:${port}@127.0.0.1`]);
      try {
        // 1: a message both children pass.
        const m1 = await mta(`inet:${port}@[127.0.0.1]`);
        await chain(m1, "body");
        expectStatus(await SESSION.endOfMessage(m1), "continue");
        await m1.quit();
        // 2: picky rejects the only recipient, so the MTA gets reject at RCPT.
        const m2 = await mta(`inet:${port}@[127.0.0.1]`);
        await chain(m2, "envelopeFrom");
        expectStatus(await SESSION.envelopeRecipient(m2, "<nobody@example.com>"), "reject");
        await m2.quit();
        // 3: the MTA goes away without QUIT.
        const m3 = await mta(`inet:${port}@[127.0.0.1]`);
        await chain(m3, "helo");
        m3.close();
        await fg.waitFor("[sessions][finished] 3(+1) 0");
        const out = fg.output();
        const line = (re: string) => expect(out).toMatch(new RegExp(`^${STAT}${re}$`, "m"));
        const [t1, t2, t3] = [...out.matchAll(/\[session\]\[end\]\[[^\]]+\]\[[^\]]+\]\[[^\]]+\]\((\d+)\)/g)].map((x) => x[1]);
        line(`\\[milter\\]\\[end\\]\\[end-of-message\\]\\[pass\\]${ELAPSED}\\(${t1}\\): tagger`);
        line(`\\[milter\\]\\[end\\]\\[end-of-message\\]\\[pass\\]${ELAPSED}\\(${t1}\\): picky`);
        line(`\\[session\\]\\[end\\]\\[end-of-message\\]\\[pass\\]${ELAPSED}\\(${t1}\\)`);
        line(`\\[milter\\]\\[header\\]\\[add\\]\\(${t1}\\): <X-Spam-Flag>=<NO>: tagger`);
        line(`\\[sessions\\]\\[finished\\] 1\\(\\+1\\) 0`);
        line(`\\[milter\\]\\[end\\]\\[envelope-recipient\\]\\[reject\\]${ELAPSED}\\(${t2}\\): picky`);
        line(`\\[session\\]\\[end\\]\\[envelope-recipient\\]\\[reject\\]${ELAPSED}\\(${t2}\\)`);
        line(`\\[sessions\\]\\[finished\\] 2\\(\\+1\\) 0`);
        line(`\\[session\\]\\[disconnected\\]${ELAPSED}\\(${t3}\\)`);
        line(`\\[session\\]\\[end\\]\\[helo\\]\\[pass\\]${ELAPSED}\\(${t3}\\)`);
        line(`\\[sessions\\]\\[finished\\] 3\\(\\+1\\) 0`);
        // Statistics lines carry no level tag (log analyzers match them as they are).
        expect(out).not.toMatch(/\[statistics\] \[session/);
      } finally {
        expect(await fg.stop()).toBe(0);
      }
    } finally {
      await tagger.close();
      await picky.close();
    }
  }, 60_000);
});

describe.skipIf(!isRoot)("the process launcher (security.privilege_mode)", () => {
  test("a child that is not reachable at negotiation is started as milter.user_name and the session goes through it", async () => {
    const childDir = join(dir, "child");
    mkdirSync(childDir);
    chmodSync(childDir, 0o777); // the child (user mail) puts its socket and pid file here
    const sock = join(childDir, "tc.sock");
    const childPid = join(childDir, "tc.pid");
    const file = writeConfig(join(dir, "launch.json"), {
      security: { privilege_mode: true },
      log: { use_syslog: false, level: "default|info" },
      milters: [{
        name: "test-client",
        connection_spec: `unix:${sock}`,
        command: process.execPath,
        command_options: [MAIN, "test-client", "-s", `unix:${sock}`, "--unix-socket-mode", "0666", "--pid-file", childPid],
        user_name: "mail",
      }],
    });
    const port = freePort();
    const fg = await startForeground(["--config", file, "-s", `inet:${port}@127.0.0.1`]);
    let pid = 0;
    try {
      expect(ids(fg.pid).uid[0]).toBe("65534"); // the manager itself dropped root
      const m = await mta(`inet:${port}@[127.0.0.1]`);
      await chain(m, "body");
      expectStatus(await SESSION.endOfMessage(m), "continue");
      await m.quit();
      await fg.waitFor("[sessions][finished] 1(+1) 0");
      pid = Number(readText(childPid).trim());
      track(pid);
      expect(ids(pid).uid).toEqual(["8", "8", "8", "8"]);
      const out = fg.output();
      expect(out).toContain(`[info] milter test-client: started ${process.execPath} ${MAIN} test-client -s unix:${sock} --unix-socket-mode 0666 --pid-file ${childPid} as mail (pid ${pid})`);
      expect(out).toMatch(/\[milter\]\[end\]\[end-of-message\]\[pass\]\[\d+\.\d{6}\]\(\d+\): test-client/);
      // The child's own report (its stdout goes to the manager's stderr through the launcher).
      expect(out).toContain("envelope-from: <<kou+sender@example.com>>");
      // A second session finds it running: no second start.
      const m2 = await mta(`inet:${port}@[127.0.0.1]`);
      await chain(m2, "endOfMessage");
      await m2.quit();
      await fg.waitFor("[sessions][finished] 2(+1) 0");
      expect(fg.output().match(/milter test-client: started/g)).toHaveLength(1);
    } finally {
      expect(await fg.stop()).toBe(0);
      if (pid) await stopPid(pid);
    }
  }, 60_000);
});

describe.skipIf(!isRoot)("manager.n_workers", () => {
  test("two workers share the port; one killed is replaced; SIGTERM stops them all", async () => {
    const child = await startScriptedMilter({ endOfMessage: eom([{ type: "addheader", name: "X-Worker", value: "yes" }]) });
    try {
      const file = writeConfig(join(dir, "workers.json"), { log: { use_syslog: false }, milters: [{ name: "child", connection_spec: child.spec }] });
      const port = freePort();
      const pidFile = join(dir, "run-workers/m.pid");
      const fg = await startForeground(["--config", file, "-s", `inet:${port}@127.0.0.1`, "--n-workers", "2", "--pid-file", pidFile], { ready: "2 workers listening on" });
      let workers: number[] = [];
      try {
        workers = /2 workers listening on \S+: pids (\d+) (\d+)/.exec(fg.output())!.slice(1).map(Number);
        for (const w of workers) track(w);
        expect(readText(pidFile)).toBe(`${fg.pid}\n`);
        for (const w of workers) {
          expect(ids(w).ppid).toBe(fg.pid);
          expect(ids(w).uid[0]).toBe("65534");
        }
        const session = async () => {
          const m = await mta(`inet:${port}@[127.0.0.1]`);
          await chain(m, "body");
          const o = await SESSION.endOfMessage(m);
          expectStatus(o, "continue");
          await m.quit();
          return o.ok ? o.modifications : [];
        };
        for (let i = 0; i < 6; i++) expect(await session()).toEqual([{ type: "add-header", name: "X-Worker", value: "yes" }]);

        process.kill(workers[0], "SIGKILL");
        await fg.waitFor(`worker 1 (pid ${workers[0]}) exited (SIGKILL); restarting it`);
        await until(() => (fg.output().match(/listening on inet:\d+@\[127\.0\.0\.1\] \(worker 1\)/g) ?? []).length === 2, 15_000, "worker 1 back");
        const after = childrenOf(fg.pid);
        expect(after).toHaveLength(2);
        expect(after).toContain(workers[1]);
        expect(after).not.toContain(workers[0]);
        const replacement = after.find((p) => p !== workers[1])!;
        track(replacement);
        workers.push(replacement);
        expect(ids(replacement).uid[0]).toBe("65534");
        for (let i = 0; i < 6; i++) expect(await session()).toEqual([{ type: "add-header", name: "X-Worker", value: "yes" }]);
        expect(alive(workers[0])).toBe(false);
        expect(alive(workers[1])).toBe(true);
      } finally {
        expect(await fg.stop()).toBe(0);
      }
      for (const w of workers) await until(() => !alive(w), 10_000, `worker ${w} gone`);
      expect(readText(pidFile)).toBe("");
    } finally {
      await child.close();
    }
  }, 60_000);

  test("SIGTERM to every process at once (systemd's KillMode=control-group) is one graceful stop; a worker without its supervisor stops", async () => {
    const child = await startScriptedMilter({ endOfMessage: eom([{ type: "addheader", name: "X-Worker", value: "yes" }]) });
    try {
      const file = writeConfig(join(dir, "workers2.json"), { log: { use_syslog: false }, milters: [{ name: "child", connection_spec: child.spec }] });
      const port = freePort();
      const fg = await startForeground(["--config", file, "-s", `inet:${port}@127.0.0.1`, "--n-workers", "2"], { ready: "2 workers listening on" });
      const workers = /2 workers listening on \S+: pids (\d+) (\d+)/.exec(fg.output())!.slice(1).map(Number);
      for (const w of workers) track(w);
      try {
        const m = await mta(`inet:${port}@[127.0.0.1]`);
        await chain(m, "envelopeRecipient");
        for (const pid of [fg.pid, ...workers]) process.kill(pid, "SIGTERM");
        // Each of the three stops once, by systemd's SIGTERM or by the supervisor's SIGUSR2, whichever came first.
        await fg.waitFor(/(SIGTERM|SIGUSR2): stopping[\s\S]*(SIGTERM|SIGUSR2): stopping[\s\S]*(SIGTERM|SIGUSR2): stopping/);
        await chain(m, "body", "data");
        expectStatus(await SESSION.endOfMessage(m), "continue"); // the session in flight finished
        await m.quit();
        expect(await fg.proc.exited).toBe(0);
        expect(fg.output()).not.toContain("second stop signal");
        for (const w of workers) await until(() => !alive(w), 10_000, `worker ${w} gone`);
      } finally {
        if (alive(fg.pid)) await fg.stop();
      }

      // Supervisor killed: its workers notice and stop by themselves.
      const fg2 = await startForeground(["--config", file, "-s", `inet:${port}@127.0.0.1`, "--n-workers", "2"], { ready: "2 workers listening on" });
      const orphans = /2 workers listening on \S+: pids (\d+) (\d+)/.exec(fg2.output())!.slice(1).map(Number);
      for (const w of orphans) track(w);
      fg2.proc.kill("SIGKILL");
      for (const w of orphans) await until(() => !alive(w), 15_000, `orphaned worker ${w} gone`);
    } finally {
      await child.close();
    }
  }, 60_000);
});
