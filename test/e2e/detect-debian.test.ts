// Auto-detection on this machine's real Debian packages (installed by .ci/run): each milter is
// found with the socket its own configuration gives, with milter manager's Debian default
// conditions, and a session through the manager reaches the milters that run without network
// data (opendkim, opendmarc, pyspf-milter, spamass-milter), each started the way its service
// starts it. clamav-milter (needs virus signatures from the network) and rspamd (needs its
// scanner workers) are checked for detection only.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chownSync, existsSync, mkdirSync, readFileSync, rmSync, unlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { freePort, isAlive, makeTempDir, userIds, waitForPort, waitForUnix } from "./lib/index.ts";

const MAIN = join(import.meta.dir, "../../src/main.ts");
const PACKAGES = ["/usr/sbin/opendkim", "/usr/sbin/opendmarc", "/usr/sbin/spamass-milter", "/usr/bin/pyspf-milter", "/usr/sbin/clamav-milter", "/usr/bin/rspamd"];
const skip = process.getuid?.() !== 0 ? "needs root (starts the milters as their services do)" : null;
/** Detection looks at the real system here (test/preload.ts points it at an empty tree otherwise). */
const ENV = { ...process.env, MILTERKIT_DETECT_ROOT: "/" };

function cli(args: string[]) {
  const r = Bun.spawnSync([process.execPath, MAIN, "manager", ...args], { env: ENV, stdout: "pipe", stderr: "pipe", timeout: 20_000 });
  return { code: r.exitCode, stdout: r.stdout.toString(), stderr: r.stderr.toString() };
}

describe.skipIf(!!skip)("auto-detection of the installed Debian milters", () => {
  test("the packages are installed (by .ci/run)", () => {
    expect(PACKAGES.filter((p) => !existsSync(p))).toEqual([]);
  });

  test("--detect: each milter with the socket of its real configuration and the Debian defaults", () => {
    const r = cli(["--detect"]);
    expect(r.code).toBe(0);
    const block = (name: string) => r.stdout.split("\n\n").find((b) => b.startsWith(`${name}: `)) ?? `${name} not detected:\n${r.stdout}`;
    expect(block("opendkim")).toStartWith("opendkim: local:/run/opendkim/opendkim.sock\n  socket from      /etc/opendkim.conf:");
    expect(block("opendkim")).toContain("conditions       (none)");
    expect(block("opendmarc")).toStartWith("opendmarc: local:/run/opendmarc/opendmarc.sock\n  socket from      /etc/opendmarc.conf:");
    // Debian's init script puts the socket under Postfix's spool when Postfix is installed.
    expect(block("spamass-milter")).toStartWith("spamass-milter: unix:/var/spool/postfix/spamass/spamass.sock\n  socket from      /etc/init.d/spamass-milter:");
    expect(block("spamass-milter")).toContain("conditions       Remote Network, Unauthenticated, No Stress");
    expect(block("pyspf-milter")).toStartWith("pyspf-milter: inet:8893@localhost\n  socket from      /etc/pyspf-milter/pyspf-milter.conf:");
    expect(block("pyspf-milter")).toContain("conditions       Remote Network, Unauthenticated, No Stress");
    expect(block("clamav-milter")).toStartWith("clamav-milter: unix:/var/run/clamav/clamav-milter.ctl\n  socket from      /etc/clamav/clamav-milter.conf:");
    expect(block("rspamd")).toStartWith("rspamd: inet:11332@localhost\n  socket from      /etc/rspamd/rspamd.conf:");
    expect(block("rspamd")).toContain("conditions       Remote Network, Unauthenticated, No Stress");
  });

  test("--show-config with no configuration file: each detected milter says where it came from", () => {
    const none = makeTempDir("detect-none");
    const r = cli(["-c", none, "--show-config"]);
    rmSync(none, { recursive: true, force: true });
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/# detected from \/etc\/opendkim\.conf:\d+\n\[\[milters\]\]\n# detected from \/etc\/opendkim\.conf:\d+\nname = "opendkim"\n/);
    expect(r.stdout).toMatch(/# detected from \/etc\/opendkim\.conf:\d+\nconnection_spec = "local:\/run\/opendkim\/opendkim\.sock"\n/);
    expect(r.stdout).toContain('connection_spec = "unix:/var/spool/postfix/spamass/spamass.sock"');
  });
});

/**
 * The daemons below run at their system paths (/run/opendkim/...), where two test runs on one
 * machine would share them, and one run's stop would cut the other's sessions (connection reset at
 * negotiate): runs take turns through a lock directory holding the owner's pid.
 */
const LOCK = "/run/milterkit-e2e-debian-milters.lock";
async function takeLock(timeoutMs: number): Promise<void> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    try {
      mkdirSync(LOCK, { mode: 0o700 });
      writeFileSync(join(LOCK, "pid"), String(process.pid));
      return;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
    }
    let owner = 0;
    try {
      owner = Number(readFileSync(join(LOCK, "pid"), "utf8"));
    } catch {}
    // an owner that is gone left a stale lock (no pid yet: the owner is between mkdir and write)
    if (owner > 0 && !isAlive(owner)) {
      rmSync(LOCK, { recursive: true, force: true });
      continue;
    }
    if (Date.now() >= end) throw new Error(`${LOCK}: still held by process ${owner} after ${timeoutMs} ms`);
    await Bun.sleep(100);
  }
}
function releaseLock() {
  try {
    if (Number(readFileSync(join(LOCK, "pid"), "utf8")) === process.pid) rmSync(LOCK, { recursive: true, force: true });
  } catch {}
}

describe.skipIf(!!skip)("a session through the manager reaches the detected milters", () => {
  const stops: (() => void | Promise<void>)[] = [];
  /** SIGTERM, then SIGKILL after 3 s (pyspf-milter can take long to notice SIGTERM). */
  async function stopChild(p: ReturnType<typeof Bun.spawn>) {
    p.kill("SIGTERM");
    if ((await Promise.race([p.exited.then(() => true), Bun.sleep(3000).then(() => false)])) === false) p.kill("SIGKILL");
    await p.exited;
  }
  let port = 0;
  let confDir = "";
  let manager: ReturnType<typeof Bun.spawn> | undefined;
  let log = "";

  function dir(path: string, user: string) {
    mkdirSync(path, { recursive: true });
    const { uid, gid } = userIds(user);
    chownSync(path, uid, gid);
  }
  function removeStalePidFile(path: string) {
    try {
      const pid = Number(readFileSync(path, "utf8").trim());
      if (pid > 0 && !isAlive(pid)) unlinkSync(path);
    } catch {}
  }
  /** libmilter's daemons notice SIGTERM at their next poll of the listening socket: up to 15 s. */
  async function exitOf(pid: number) {
    for (let i = 0; i < 300 && isAlive(pid); i++) await Bun.sleep(50);
  }
  /** The pid in a pid file when that process is alive. */
  function livePid(pidFile: string): number | undefined {
    try {
      const pid = Number(readFileSync(pidFile, "utf8").trim());
      return pid > 0 && isAlive(pid) ? pid : undefined;
    } catch {
      return undefined;
    }
  }
  /**
   * Start a forking daemon as its service does, unless it already runs (a service on this machine,
   * or one still stopping from an earlier run): then use that one and leave it alone.
   */
  async function forking(cmd: string[], pidFile: string) {
    if (livePid(pidFile) !== undefined) return;
    const r = Bun.spawnSync(cmd, { stdout: "pipe", stderr: "pipe", timeout: 10_000 });
    if (r.exitCode !== 0) throw new Error(`${cmd.join(" ")}: ${r.stderr.toString()}`);
    // The daemon writes its pid file after forking.
    for (let i = 0; i < 100 && livePid(pidFile) === undefined; i++) await Bun.sleep(50);
    const pid = livePid(pidFile);
    if (pid === undefined) throw new Error(`${cmd.join(" ")}: no process in ${pidFile}`);
    stops.push(async () => {
      try {
        process.kill(pid, "SIGTERM");
      } catch {}
      await exitOf(pid);
    });
  }

  beforeAll(async () => {
    await takeLock(45_000);
    // As their services start them: the daemon reads its own configuration file from /etc.
    dir("/run/opendkim", "opendkim");
    await forking(["/usr/sbin/opendkim"], "/run/opendkim/opendkim.pid");
    dir("/run/opendmarc", "opendmarc");
    await forking(["/usr/sbin/opendmarc"], "/run/opendmarc/opendmarc.pid");
    dir("/run/pyspf-milter", "pyspf-milter");
    removeStalePidFile("/run/pyspf-milter/pyspf-milter.pid"); // it refuses to start over one, and SIGTERM leaves it

    const spf = Bun.spawn(["/usr/bin/pyspf-milter", "/etc/pyspf-milter/pyspf-milter.conf"], { stdout: "ignore", stderr: "ignore" });
    stops.push(() => stopChild(spf));
    dir("/var/spool/postfix/spamass", "spamass-milter");
    // The init script's command line with /etc/default/spamass-milter's OPTIONS (-i 127.0.0.1: no spamd needed for local mail).
    const spamass = Bun.spawn(["/usr/sbin/spamass-milter", "-p", "/var/spool/postfix/spamass/spamass.sock", "-u", "spamass-milter", "-i", "127.0.0.1"], { stdout: "ignore", stderr: "ignore" });
    stops.push(() => stopChild(spamass));
    await Promise.all([
      waitForUnix("/run/opendkim/opendkim.sock"),
      waitForUnix("/run/opendmarc/opendmarc.sock"),
      waitForUnix("/var/spool/postfix/spamass/spamass.sock"),
      waitForPort("127.0.0.1", 8893),
    ]);

    // Detection on, and the configuration overrides detected items: the session comes from
    // 127.0.0.1, which "Remote Network" would stop, and two milters cannot run here.
    confDir = makeTempDir("detect-session");
    writeFileSync(join(confDir, "milterkit.config.toml"), [
      "[manager]", "auto_detect = true", "",
      "[[milters]]", 'name = "pyspf-milter"', "applicable_conditions = []", "",
      "[[milters]]", 'name = "spamass-milter"', "applicable_conditions = []", "",
      "[[milters]]", 'name = "clamav-milter"', "enabled = false", "",
      "[[milters]]", 'name = "rspamd"', "enabled = false", "",
    ].join("\n"));
    port = await freePort();
    manager = Bun.spawn(
      [process.execPath, MAIN, "manager", "-c", confDir, "--no-daemon", "--no-syslog", "--log-level", "all", "-s", `inet:${port}@[127.0.0.1]`, "-u", "root"],
      { env: ENV, stdout: "pipe", stderr: "pipe" },
    );
    (async () => {
      for await (const chunk of manager!.stdout as ReadableStream<Uint8Array>) log += new TextDecoder().decode(chunk);
    })();
    await waitForPort("127.0.0.1", port, 20_000);
  }, 120_000);

  afterAll(async () => {
    manager?.kill("SIGTERM");
    await manager?.exited;
    await Promise.all(stops.map((stop) => stop()));
    if (confDir) rmSync(confDir, { recursive: true, force: true });
    releaseLock();
  }, 40_000);

  test("each reached milter ends the session with its own result", async () => {
    const r = Bun.spawnSync(
      [process.execPath, MAIN, "test-server", "-s", `inet:${port}@[127.0.0.1]`, "--connect-address", "inet:50443@[127.0.0.1]", "--connect-host", "localhost",
        "-f", "someone@example.org", "-r", "postmaster@localhost", "-h", "Subject: detection", "-b", "hello\r\n"],
      { stdout: "pipe", stderr: "pipe", timeout: 30_000 },
    );
    for (let i = 0; i < 400 && !/\[session\]\[end\]/.test(log); i++) await Bun.sleep(50);
    if (!r.stdout.toString().includes("status: pass")) console.error(`the manager's log:\n${log}`); // which milter failed, and how
    expect(r.stderr.toString()).toBe("");
    expect(r.stdout.toString()).toContain("status: pass");
    for (const name of ["opendkim", "opendmarc", "pyspf-milter", "spamass-milter"]) {
      expect(log).toMatch(new RegExp(`\\[milter\\]\\[end\\]\\[[a-z-]+\\]\\[(pass|accept|continue)\\].*: ${name}\\n`));
    }
    expect(log).not.toMatch(/: (clamav-milter|rspamd)\n/);
  }, 60_000);
});
