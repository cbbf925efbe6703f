// The service lifecycle (src/runtime/lifecycle.ts) in a child process that signals itself: the
// steps in their order, the notifiers around ready, reload and stop, the pid file, and a failed
// start-up that leaves nothing behind.
import { expect, test } from "bun:test";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runScript } from "./run-script.ts";

/** A service whose every hook and notifier records itself in `seen`. */
const SERVICE = `
  import { existsSync } from "node:fs";
  import { runService, StartError } from "@ROOT@/src/runtime/lifecycle.ts";
  const seen = [];
  const pidFile = process.env.PID_FILE;
  const notifier = {
    ready: () => seen.push("notify ready"),
    failed: (reason) => seen.push("notify failed: " + reason),
    reloading: () => seen.push("notify reloading"),
    stopping: () => seen.push("notify stopping"),
  };
  const options = {
    prog: "svc",
    identity: {},
    graceMs: 100,
    pidFile,
    notifiers: [notifier],
    prepare: () => seen.push("prepare"),
    beforeListen: () => seen.push("before listen"),
    listen: async ({ spec, reusePort }) => {
      seen.push("listen " + spec + " " + reusePort);
      return { close: async ({ waitMs }) => seen.push("close " + waitMs) };
    },
    readyLine: () => {
      seen.push("ready line, pid file written: " + existsSync(pidFile));
      if (process.env.FAIL_LATE) throw new StartError("late failure");
      return undefined;
    },
    reload: async () => seen.push("reload"),
    stopping: () => seen.push("stopping"),
    stopped: () => seen.push("stopped"),
    cleanup: () => seen.push("cleanup"),
  };
`;

function pidFileIn(): { dir: string; pidFile: string } {
  const dir = mkdtempSync(join(tmpdir(), "mk-lc-"));
  return { dir, pidFile: join(dir, "svc.pid") };
}

test("start-up steps in order, notifiers at ready, reload and stop, pid file removed, exit 0", async () => {
  const { dir, pidFile } = pidFileIn();
  try {
    const r = await runScript(`${SERVICE}
      process.on("exit", () => console.log(JSON.stringify(seen)));
      const running = await runService(options);
      seen.push(typeof running === "object" ? "running" : "exit " + running);
      process.kill(process.pid, "SIGHUP");
      await Bun.sleep(200);
      seen.push("pid file before stop: " + existsSync(pidFile));
      process.kill(process.pid, "SIGTERM");
      setInterval(() => {}, 1000);
    `, { env: { PID_FILE: pidFile } });
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual([
      "prepare",
      "before listen",
      "listen undefined false",
      "ready line, pid file written: true",
      "notify ready",
      "running",
      "notify reloading",
      "reload",
      "notify ready",
      "pid file before stop: true",
      "notify stopping",
      "stopping",
      "close 100",
      "stopped",
    ]);
    expect(existsSync(pidFile)).toBe(false);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("a start-up failure after listening: one line, the waiting parent told, listener closed, cleanup, no pid file, status 1", async () => {
  const { dir, pidFile } = pidFileIn();
  try {
    const r = await runScript(`${SERVICE}
      const status = await runService(options);
      console.log(JSON.stringify(seen));
      process.exit(status);
    `, { env: { PID_FILE: pidFile, FAIL_LATE: "1" } });
    expect(r.stderr).toBe("svc: late failure\n");
    expect(r.code).toBe(1);
    expect(JSON.parse(r.stdout)).toEqual([
      "prepare",
      "before listen",
      "listen undefined false",
      "ready line, pid file written: true",
      "close 0",
      "cleanup",
      "notify failed: late failure",
    ]);
    expect(existsSync(pidFile)).toBe(false);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("without reload and log, SIGHUP and SIGUSR1 keep their default action (smtp-sink)", async () => {
  for (const signal of ["SIGHUP", "SIGUSR1"]) {
    const r = await runScript(`
      import { runService } from "@ROOT@/src/runtime/lifecycle.ts";
      await runService({ prog: "svc", identity: {}, graceMs: 0, listen: async () => ({ close: async () => {} }) });
      process.kill(process.pid, "${signal}");
      await Bun.sleep(2000);
      console.log("still running");
      process.exit(0);
    `);
    expect(r.stdout).toBe("");
    expect(r.code).not.toBe(0);
  }
});

test.skipIf(process.getuid?.() !== 0)("as root: the checks run before the privilege drop, know the owner, and their problems are warnings", async () => {
  const r = await runScript(`
    import { runService } from "@ROOT@/src/runtime/lifecycle.ts";
    import { Logger, LEVEL_ALL } from "@ROOT@/src/runtime/log.ts";
    const running = await runService({
      prog: "svc", identity: { user: "nobody" }, graceMs: 0,
      openLog: () => new Logger({ level: LEVEL_ALL }),
      listen: async () => ({ close: async () => {} }),
      checks: [(ctx) => ["checked as uid " + process.getuid() + " for uid " + ctx.owner.uid]],
      readyLine: () => "running as uid " + process.getuid(),
    });
    running.stop();
  `);
  expect(r.stderr).toBe("");
  expect(r.code).toBe(0);
  expect(r.stdout).toMatch(/\[warning\] checked as uid 0 for uid 65534\n.*\[message\] running as uid 65534\n/);
});
