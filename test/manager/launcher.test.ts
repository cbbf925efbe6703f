// The process launcher (manager.md §5.3): message framing, shell-style command lines, running a
// command as another user, and a real launcher process starting a real milter (our test-client)
// as `mail` on demand, with the ChildStarter waiting until it listens.
import { afterAll, describe, expect, test } from "bun:test";
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import {
  ChildStarter,
  commandAsUser,
  commandLine,
  encodeMessage,
  isListening,
  LaunchError,
  MessageDecoder,
  ProcessLauncher,
  quoteArgument,
  splitCommandLine,
} from "../../src/manager/daemon/launcher.ts";
import { parseSpec } from "../../src/net/spec.ts";

const ROOT = resolve(import.meta.dir, "../..");
const MAIN = join(ROOT, "src/main.ts");
const isRoot = process.getuid?.() === 0;

describe("messages", () => {
  test("4-byte big-endian length, fields joined by NUL; split and merged reads", () => {
    const m = encodeMessage(["launch", "/usr/sbin/opendkim -x /etc/opendkim.conf", "opendkim"]);
    expect(m.readUInt32BE(0)).toBe(m.length - 4);
    expect(m.toString("latin1", 4)).toBe("launch\0/usr/sbin/opendkim -x /etc/opendkim.conf\0opendkim");
    const d = new MessageDecoder();
    const two = Buffer.concat([m, encodeMessage(["success", "123"])]);
    expect(d.push(two.subarray(0, 3))).toEqual([]);
    expect(d.push(two.subarray(3, m.length + 2))).toEqual([["launch", "/usr/sbin/opendkim -x /etc/opendkim.conf", "opendkim"]]);
    expect(d.push(two.subarray(m.length + 2))).toEqual([["success", "123"]]);
    const big = Buffer.alloc(4);
    big.writeUInt32BE(MessageDecoder.MAX + 1);
    expect(() => new MessageDecoder().push(big)).toThrow(LaunchError);
  });
});

describe("command lines", () => {
  test("split like a shell: quotes, escapes, blanks; no expansion", () => {
    expect(splitCommandLine(`/usr/bin/milter -p 'unix:/run/a b.sock'  -c "x \\"y\\" $HOME" z\\ w ''`)).toEqual([
      "/usr/bin/milter", "-p", "unix:/run/a b.sock", "-c", 'x "y" $HOME', "z w", "",
    ]);
    expect(splitCommandLine("  a\tb\n c ")).toEqual(["a", "b", "c"]);
    expect(() => splitCommandLine("a 'b")).toThrow(/unbalanced '/);
    expect(() => splitCommandLine('a "b')).toThrow(/unbalanced "/);
    expect(() => splitCommandLine("a \\")).toThrow(/backslash/);
  });

  test("milter.command + command_options: a string as written, a list quoted element by element", () => {
    expect(commandLine("/usr/bin/systemctl", "start opendkim")).toBe("/usr/bin/systemctl start opendkim");
    expect(commandLine("/usr/sbin/milter", ["-s", "unix:/run/x y.sock", "it's"])).toBe(`/usr/sbin/milter -s 'unix:/run/x y.sock' 'it'\\''s'`);
    expect(commandLine("/bin/true", null)).toBe("/bin/true");
    expect(splitCommandLine(commandLine("/usr/sbin/milter", ["-s", "unix:/run/x y.sock", "it's", ""]))).toEqual(["/usr/sbin/milter", "-s", "unix:/run/x y.sock", "it's", ""]);
    expect(quoteArgument("plain-arg_1.conf")).toBe("plain-arg_1.conf");
  });

  test("as another user: through setpriv with initgroups when root; refused otherwise", () => {
    expect(commandAsUser(["/bin/id"], "")).toEqual({ cmd: ["/bin/id"] });
    expect(commandAsUser(["/bin/id", "-a"], "mail", { root: true, setpriv: "/usr/bin/setpriv" })).toEqual({
      cmd: ["/usr/bin/setpriv", "--reuid=8", "--regid=8", "--init-groups", "--", "/bin/id", "-a"],
    });
    expect(commandAsUser(["/bin/id"], "mail", { root: true, setpriv: undefined })).toEqual({ cmd: ["/bin/id"], uid: 8, gid: 8 });
    expect(() => commandAsUser(["/bin/id"], "mail", { root: false })).toThrow(/does not run as root/);
    expect(() => commandAsUser([], "")).toThrow(/empty command line/);
    expect(() => commandAsUser(["/bin/id"], "no-such-user-xyz", { root: true })).toThrow(/unknown user/);
  });
});

describe.skipIf(!isRoot)("a launcher process (as root)", () => {
  const dir = mkdtempSync(join(tmpdir(), "mk-launcher-"));
  chmodSync(dir, 0o777); // the started milter (user mail) writes its socket and pid file here
  const started: number[] = [];
  afterAll(() => {
    for (const pid of started) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {}
    }
    rmSync(dir, { recursive: true, force: true });
  });

  test("starts the command as the user, refuses it while it runs, the starter waits until it listens", async () => {
    const launcher = ProcessLauncher.start([process.execPath, MAIN]);
    try {
      const sock = join(dir, "child.sock");
      const milter = {
        name: "child",
        connection_spec: `unix:${sock}`,
        command: process.execPath,
        command_options: [MAIN, "test-client", "-s", `unix:${sock}`, "--pid-file", join(dir, "child.pid")],
        user_name: "mail",
      };
      const logs: string[] = [];
      const starter = new ChildStarter({ launcher, retryMs: 15_000, log: (level, text) => logs.push(`${level}: ${text}`) });
      expect(isListening(parseSpec(milter.connection_spec))).toBe(false);
      // Two sessions find the child unreachable at the same time: one launch.
      const [a, b] = await Promise.all([starter.unreachable(milter), starter.unreachable(milter)]);
      expect([a, b]).toEqual([true, true]);
      expect(isListening(parseSpec(milter.connection_spec))).toBe(true);
      expect(logs).toHaveLength(1);
      const pid = Number(/\(pid (\d+)\)/.exec(logs[0])![1]);
      started.push(pid);
      expect(logs[0]).toBe(`info: milter child: started ${commandLine(milter.command, milter.command_options)} as mail (pid ${pid})`);
      const status = readFileSync(`/proc/${pid}/status`, "latin1");
      expect(/Uid:\s+(.*)/.exec(status)![1].split(/\s+/)).toEqual(["8", "8", "8", "8"]);
      expect(/Gid:\s+(.*)/.exec(status)![1].split(/\s+/)).toEqual(["8", "8", "8", "8"]);
      expect(/PPid:\s+(\d+)/.exec(status)![1]).toBe(String(launcher.pid)); // reaped by the launcher
      // Still running: refused.
      const again = await launcher.launch(commandLine(milter.command, milter.command_options), "mail");
      expect(again).toEqual({ ok: false, message: `already running (pid ${pid}): ${commandLine(milter.command, milter.command_options)}` });
      // No command: nothing to start.
      expect(await starter.unreachable({ ...milter, command: null })).toBe(false);
      // A command that does not exist: the launcher says why.
      const bad = await launcher.launch("/no/such/program --x", "");
      expect(bad.ok).toBe(false);
      expect(bad.message).toContain("cannot start /no/such/program --x");
      process.kill(pid, "SIGTERM");
      const end = Date.now() + 10_000;
      while (existsSync(`/proc/${pid}`) && Date.now() < end) await Bun.sleep(20);
      expect(existsSync(sock)).toBe(false);
    } finally {
      await launcher.close();
    }
    // The launcher leaves when its request pipe closes.
    expect(existsSync(`/proc/${launcher.pid}/status`) && !/State:\s+Z/.test(readFileSync(`/proc/${launcher.pid}/status`, "latin1"))).toBe(false);
  }, 30_000);
});
