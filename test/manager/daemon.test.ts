// `milter-manager --daemon` on a real machine (run as root in CI): the compiled binary through
// its milter-manager symlink detaches, the starting process exits 0 only once the daemon
// listens (1 with the daemon's error line otherwise), the pid file and the socket (in a
// directory that did not exist, as on a fresh tmpfs /run) appear, root becomes nobody or the
// configured user, and SIGTERM removes socket and pid file.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readlinkSync, statSync, symlinkSync } from "node:fs";
import { join } from "node:path";
import { eom } from "../../src/milter-side/index.ts";
import { chain, expectStatus, SESSION } from "./support/harness.ts";
import { type ScriptedMilter, startScriptedMilter } from "./support/scripted-milter.ts";
import {
  alive,
  existsSync,
  mkdirSync,
  fileMode,
  freePort,
  ids,
  isRoot,
  MAIN,
  mta,
  readText,
  startForeground,
  stopPid,
  track,
  until,
  workDir,
  writeConfig,
} from "./support/daemon.ts";
import { compileMilterkit } from "../../build.ts";

const work = workDir("mk-daemon-");
const dir = work.dir;
const BIN = join(dir, "bin/milterkit");
const LINK = join(dir, "bin/milter-manager");
/** A configuration directory with nothing but syslog switched off. */
const ETC = join(dir, "etc");
let child: ScriptedMilter;

beforeAll(async () => {
  if (!isRoot) return;
  // Our own compiled binary (build.ts's flags): `bun run build` would delete dist/ under other tests.
  compileMilterkit(BIN, { timeoutMs: 90_000 });
  symlinkSync(BIN, LINK);
  mkdirSync(ETC);
  writeConfig(join(ETC, "milterkit.config.json"), { log: { use_syslog: false } });
  child = await startScriptedMilter({ endOfMessage: eom([{ type: "addheader", name: "X-Child", value: "seen" }]) });
}, 120_000);

afterAll(async () => {
  await child?.close();
  work.remove();
});

/** Run the starting process to its end. */
async function runStarter(args: string[]) {
  const proc = Bun.spawn({ cmd: [LINK, ...args], argv0: LINK, cwd: dir, env: { PATH: process.env.PATH ?? "/usr/bin:/bin", NO_COLOR: "1" }, stdout: "pipe", stderr: "pipe" });
  const timer = setTimeout(() => proc.kill("SIGKILL"), 40_000);
  const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  clearTimeout(timer);
  return { stdout, stderr, code };
}

describe.skipIf(!isRoot)("--daemon (compiled, through the milter-manager symlink)", () => {
  test("starts, writes the pid file, drops root to nobody, serves, and SIGTERM removes socket and pid file", async () => {
    const run = join(dir, "run1/milterkit"); // does not exist yet
    const config = writeConfig(join(dir, "daemon.json"), { log: { use_syslog: false }, milters: [{ name: "child", connection_spec: child.spec }] });
    const r = await runStarter([
      "--config", config, "--daemon", "--pid-file", join(run, "milter-manager.pid"),
      "-s", `unix:${join(run, "milter-manager.sock")}`, "--log-path", join(dir, "log1/milter-manager.log"),
    ]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    // READY came after the socket, the pid file and the privilege drop.
    const pid = Number(readText(join(run, "milter-manager.pid")).trim());
    expect(pid).toBeGreaterThan(0);
    track(pid);
    try {
      expect(alive(pid)).toBe(true);
      const who = ids(pid);
      expect(who.uid).toEqual(["65534", "65534", "65534", "65534"]);
      expect(who.gid).toEqual(["65534", "65534", "65534", "65534"]);
      expect(who.groups).not.toContain("0");
      expect(who.sid).toBe(pid); // its own session: no controlling terminal
      for (const fd of [0, 1, 2]) expect(readlinkSync(`/proc/${pid}/fd/${fd}`)).toBe("/dev/null");
      const argv = readText(`/proc/${pid}/cmdline`).split("\0");
      expect(argv[0]).toBe(LINK); // re-executed under the name it was started with
      const sock = join(run, "milter-manager.sock");
      expect(fileMode(sock)).toEqual({ mode: 0o660, uid: 65534, gid: 0, socket: true });
      // Created for the user: root's, group-writable for its group with the sticky bit, so it can
      // remove its own socket but not replace what it does not own.
      expect(fileMode(run)).toMatchObject({ uid: 0, gid: 65534, mode: 0o775 });
      expect(statSync(run).mode & 0o1000).toBe(0o1000);
      // A session through it.
      const m = await mta(`unix:${sock}`);
      await chain(m, "body");
      const o = await SESSION.endOfMessage(m);
      expectStatus(o, "continue");
      expect(o.ok && o.modifications).toEqual([{ type: "add-header", name: "X-Child", value: "seen" }]);
      await m.quit();
      await until(() => readText(join(dir, "log1/milter-manager.log")).includes("[sessions][finished] 1(+1) 0"), 5000, "statistics line");
    } finally {
      await stopPid(pid);
    }
    expect(existsSync(join(run, "milter-manager.sock"))).toBe(false);
    expect(existsSync(join(run, "milter-manager.pid"))).toBe(false);
    const log = readText(join(dir, "log1/milter-manager.log"));
    expect(log).toContain("[message] SIGTERM: stopping");
    expect(log).toContain("[message] stopped");
  }, 60_000);

  test("the port is taken: the starting process exits 1 with the daemon's error line, nothing is left", async () => {
    const holder = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
    try {
      const pidFile = join(dir, "run2/m.pid");
      const r = await runStarter(["--daemon", "--no-syslog", "--pid-file", pidFile, "-s", `inet:${holder.port}@[127.0.0.1]`, "-c", ETC]);
      expect(r.code).toBe(1);
      expect(r.stderr).toBe(`milter-manager: cannot listen on inet:${holder.port}@[127.0.0.1]: address already in use\n`);
      expect(existsSync(pidFile)).toBe(false);
    } finally {
      holder.stop(true);
    }
  }, 60_000);

  test("--no-daemon cancels manager.daemon from the configuration", async () => {
    const config = writeConfig(join(dir, "daemon-true.json"), { manager: { daemon: true }, log: { use_syslog: false } });
    const port = freePort();
    const fg = await startForeground(["--config", config, "--no-daemon", "-s", `inet:${port}@127.0.0.1`], { cmd: [LINK], argv0: LINK });
    try {
      expect(alive(fg.pid)).toBe(true); // the process we started is the server itself
      expect(fg.output()).toContain(`listening on inet:${port}@[127.0.0.1]`);
    } finally {
      expect(await fg.stop()).toBe(0);
    }
  }, 30_000);
});

describe.skipIf(!isRoot)("privileges and the unix socket", () => {
  test("--user-name mail --group-name nogroup: uid, gid and groups after the drop; socket mode and group", async () => {
    const sock = join(dir, "run3/m.sock");
    const fg = await startForeground([
      "--no-syslog", "-c", ETC, "-s", `unix:${sock}`,
      "--user-name", "mail", "--group-name", "nogroup", "--unix-socket-mode", "0640", "--unix-socket-group", "mail",
    ]);
    try {
      const who = ids(fg.pid);
      expect(who.uid).toEqual(["8", "8", "8", "8"]);
      expect(who.gid).toEqual(["65534", "65534", "65534", "65534"]);
      expect(who.groups).toContain("65534");
      expect(who.groups).not.toContain("0");
      expect(fileMode(sock)).toEqual({ mode: 0o640, uid: 8, gid: 8, socket: true });
      expect(fileMode(join(dir, "run3"))).toMatchObject({ uid: 0, gid: 65534, mode: 0o775 });
    } finally {
      expect(await fg.stop()).toBe(0);
    }
    expect(existsSync(sock)).toBe(false);
  }, 30_000);

  test("a stale socket file is reclaimed; a live one is refused", async () => {
    const sock = join(dir, "run4/m.sock");
    const first = await startForeground(["--no-syslog", "-c", ETC, "-s", `unix:${sock}`]);
    try {
      const second = Bun.spawn({ cmd: [process.execPath, MAIN, "manager", "--no-syslog", "-c", ETC, "-s", `unix:${sock}`], stdout: "pipe", stderr: "pipe" });
      track(second.pid);
      const [err, code] = await Promise.all([new Response(second.stderr).text(), second.exited]);
      expect(code).toBe(1);
      expect(err).toBe(`milter-manager: cannot listen on unix:${sock}: address already in use (another process is listening on ${sock})\n`);
    } finally {
      first.proc.kill("SIGKILL"); // leaves the socket file behind
      await first.proc.exited;
    }
    expect(existsSync(sock)).toBe(true);
    const again = await startForeground(["--no-syslog", "-c", ETC, "-s", `unix:${sock}`]);
    expect(await again.stop()).toBe(0);
    expect(existsSync(sock)).toBe(false);
  }, 30_000);
});
