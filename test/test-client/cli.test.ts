// `milterkit test-client`: every option, the reference output, robustness. Runs the tool from source as a
// child process and drives it over real sockets (the Postfix end-to-end tests use the compiled binary).
import { afterEach, describe, expect, test } from "bun:test";
import { chmodSync, mkdirSync, readdirSync, readFileSync, readlinkSync, renameSync, statSync } from "node:fs";
import { join } from "node:path";
import { encodePacket } from "../../src/milter/index.ts";
import { parseSpec } from "../../src/net/spec.ts";
import { VERSION } from "../../src/version.ts";
import { Collector, driveReference, existsSync, MAIN, referenceSession, REFERENCE_REPLIES, ROOT, ScriptedMta, startClient, stopAll, tcpSpec, tempDir, within } from "./helpers.ts";

afterEach(stopAll);

const STATS = /^\[\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z\]: \[sessions\]\[finished\] (\d+)\(\+1\) (\d+)$/;
const reference = readFileSync(join(import.meta.dir, "../fixtures/test-client/reference-session.txt"), "latin1");

async function runOnce(args: string[], env: Record<string, string> = {}, uid?: number) {
  const proc = Bun.spawn({ cmd: [process.execPath, MAIN, "test-client", ...args], cwd: ROOT, env: { ...process.env, NO_COLOR: "1", ...env }, stdout: "pipe", stderr: "pipe", uid, gid: uid });
  const timer = setTimeout(() => proc.kill("SIGKILL"), 20_000);
  const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  clearTimeout(timer);
  return { stdout, stderr, code };
}

function procStatus(pid: number): Record<string, string> {
  const o: Record<string, string> = {};
  for (const l of readFileSync(`/proc/${pid}/status`, "latin1").split("\n")) {
    const i = l.indexOf(":");
    if (i > 0) o[l.slice(0, i)] = l.slice(i + 1).trim();
  }
  return o;
}

const isRoot = process.getuid?.() === 0;

describe("output", () => {
  test("the reference session (docs/tools.md §1.5) prints the reference lines exactly", async () => {
    const spec = await tcpSpec();
    const c = await startClient(["-s", spec]);
    expect(await driveReference(spec)).toHaveLength(REFERENCE_REPLIES);
    await c.out.waitFor(/\[sessions\]\[finished\] 1\(\+1\) 0\n/);
    const got = c.out.text.split("\n");
    const want = reference.split("\n");
    expect(got.length).toBe(want.length);
    for (let i = 0; i < want.length; i++) {
      if (STATS.test(want[i])) expect(got[i]).toMatch(STATS);
      else expect(got[i]).toBe(want[i]);
    }
    expect(await c.stop()).toBe(0);
    expect(c.err.text).toBe("");
  });

  test("--json prints one object per event with the macros", async () => {
    const spec = await tcpSpec();
    const c = await startClient(["-s", spec, "--json"]);
    await driveReference(spec);
    await c.out.waitFor(/"event":"finished"/);
    // Standard output carries only JSON (every line parses); the statistics log line goes to stderr.
    const events = c.out.text.trim().split("\n").map((l) => JSON.parse(l));
    await c.err.waitFor(/\[sessions\]\[finished\] 1\(\+1\) 0\n/);
    expect(events.map((e) => e.event)).toEqual([
      "negotiate", "connect", "helo", "envelope-from", "envelope-recipient", "envelope-recipient", "data", "header", "header", "header",
      "end-of-header", "body", "body", "end-of-message", "quit", "finished",
    ]);
    expect(events[0]).toMatchObject({ version: 6, actions: 0x1ff, protocol: 0x1fffff });
    expect(events[1]).toMatchObject({ host: "mx.example.net", family: "4", port: 50443, address: "192.0.2.10", spec: "inet:50443@[192.0.2.10]", macros: { if_addr: "127.0.0.1", if_name: "localhost", daemon_name: "milter-test-server", j: "mail.example.com" } });
    expect(Object.keys(events[1].macros)).toEqual(["if_addr", "if_name", "daemon_name", "j"]); // wire order
    expect(events[3]).toMatchObject({ address: "<alice@example.com>", args: [], macros: { mail_addr: "mail_addr" } });
    expect(events[7]).toMatchObject({ name: "From", value: "alice@example.com" });
    expect(events[12]).toMatchObject({ chunk: "this is a small fixed test body.", size: 32 });
    expect(new Set(events.map((e) => e.session)).size).toBe(1);
    await c.stop();
  });

  test("8-bit bytes go out unchanged in text mode and as U+00XX in JSON", async () => {
    const spec = await tcpSpec();
    for (const json of [false, true]) {
      const c = await startClient(["-s", spec, ...(json ? ["--json"] : [])]);
      const mta = await ScriptedMta.connect(parseSpec(spec));
      mta.send({ type: "optneg", version: 6, actions: 0x1ff, protocol: 0x1fffff }, { type: "connect", hostname: "h", family: "U" },
        { type: "mail", address: "<a>", args: [] }, { type: "rcpt", address: "<b>", args: [] },
        { type: "header", name: "Subject", value: "caf\xe9 \xff" }, { type: "body", chunk: Buffer.from([0xe4, 0x0d, 0x0a]) });
      await mta.nextTypes(6);
      await mta.quit();
      await c.out.waitFor(/finished/);
      const raw = await c.stop();
      expect(raw).toBe(0);
      if (!json) {
        expect(c.out.text).toContain("header: <Subject: caf\xe9 \xff>\n"); // collector decodes latin1: bytes 0xE9 0xFF
        expect(c.out.text).toContain("body: <\xe4\r\n>\n");
      } else {
        const utf8 = Buffer.from(c.out.text, "latin1").toString("utf8");
        const h = utf8.split("\n").map((l) => (l.startsWith("{") ? JSON.parse(l) : {})).find((e) => e.event === "header");
        expect(Buffer.from(h.value, "latin1")).toEqual(Buffer.from([0x63, 0x61, 0x66, 0xe9, 0x20, 0xff]));
      }
    }
  });

  test("unknown, abort, end-of-message with data, unix and inet6 peers", async () => {
    const spec = await tcpSpec();
    const c = await startClient(["-s", spec]);
    const mta = await ScriptedMta.connect(parseSpec(spec));
    mta.send({ type: "optneg", version: 6, actions: 0x1ff, protocol: 0x1fffff },
      { type: "connect", hostname: "[IPv6:2001:db8::1]", family: "6", port: 4321, address: "IPv6:2001:db8::1" },
      { type: "unknown", commandLine: "XFOO bar" },
      { type: "mail", address: "<a>", args: [] }, { type: "rcpt", address: "<b>", args: [] },
      { type: "eob", chunk: Buffer.from("tail") }, { type: "abort" },
      { type: "connect", hostname: "localhost", family: "L", port: 0, address: "/run/x.sock" },
      { type: "connect", hostname: "localhost", family: "U" });
    await mta.nextTypes(8);
    await mta.quit();
    await c.out.waitFor(/finished\n/);
    expect(c.out.text).toContain("connect: host=<[IPv6:2001:db8::1]>, address=<inet6:4321@[2001:db8::1]>\nunknown: <XFOO bar>\n");
    expect(c.out.text).toContain("end-of-message: <tail>\nabort\nconnect: host=<localhost>, address=<unix:/run/x.sock>\nconnect: host=<localhost>, address=<unknown>\nfinished\n");
    await c.stop();
  });

  test("--no-report-request prints only the statistics lines; it negotiates the same", async () => {
    const spec = await tcpSpec();
    const c = await startClient(["-s", spec, "--no-report-request"]);
    const mta = await ScriptedMta.connect(parseSpec(spec));
    mta.send({ type: "optneg", version: 6, actions: 0x1ff, protocol: 0x1fffff });
    expect(await mta.next()).toEqual({ type: "optneg", version: 6, actions: 0x1ff, protocol: 0x400 });
    await mta.quit();
    await driveReference(spec);
    await c.out.waitFor(/2\(\+1\) 0\n/);
    const lines = c.out.text.trim().split("\n");
    expect(lines.length).toBe(2);
    for (const l of lines) expect(l).toMatch(STATS);
    await c.stop();
  });

  test("--report-memory-profile, and more with MILTER_MEMORY_PROFILE=yes", async () => {
    for (const detail of [false, true]) {
      const spec = await tcpSpec();
      const c = await startClient(["-s", spec, "--report-memory-profile", "--no-report-request"], { env: detail ? { MILTER_MEMORY_PROFILE: "yes" } : {} });
      await driveReference(spec);
      const m = await c.out.waitFor(/memory: (.*)\n/);
      expect(m[1]).toMatch(/^VmRSS=\d+ kB, VmHWM=\d+ kB, heap-used=\d+ kB/);
      if (detail) expect(m[1]).toMatch(/RssAnon=\d+ kB.*Threads=\d+.*objects=\d+/);
      else expect(m[1]).not.toContain("RssAnon");
      await c.stop();
    }
  });
});

describe("logging options", () => {
  test("--log-level=none and -q drop the statistics line; --verbose and -v log everything", async () => {
    for (const flag of ["--log-level=none", "-q"]) {
      const spec = await tcpSpec();
      const c = await startClient(["-s", spec, flag]);
      await driveReference(spec);
      await c.out.waitFor(/finished\n/);
      await c.stop();
      expect(c.out.text).not.toContain("[sessions]");
    }
    for (const flag of ["--verbose", "-v", "--log-level=info|statistics"]) {
      const spec = await tcpSpec();
      const c = await startClient(["-s", spec, flag]);
      await c.out.waitFor(/\]: \[info\] listening on inet:\d+@\[127\.0\.0\.1\]\n/);
      await driveReference(spec);
      await c.out.waitFor(/\[sessions\]\[finished\] 1\(\+1\) 0\n/);
      await c.stop();
    }
  });

  test("--log-level=error|warning keeps errors, drops statistics", async () => {
    const spec = await tcpSpec();
    const c = await startClient(["-s", spec, "--log-level=error|warning", "--no-report-request"]);
    const mta = await ScriptedMta.connect(parseSpec(spec));
    mta.sendRaw(Buffer.from("000000015a", "hex"));
    await mta.waitClosed();
    await c.out.waitFor(/\[error\] \[session \d+\] \[protocol\] unknown command 'Z'/);
    expect(c.out.text).not.toContain("[sessions]");
    await c.stop();
  });

  test("--log-path=FILE writes the log there, SIGUSR1 reopens it; --log-path=- is stdout", async () => {
    const dir = tempDir();
    chmodSync(dir.path, 0o777); // the tool runs as nobody after listening
    try {
      const log = join(dir.path, "client.log");
      const spec = await tcpSpec();
      const c = await startClient(["-s", spec, `--log-path=${log}`]);
      await driveReference(spec);
      await c.out.waitFor(/finished\n/);
      await within((async () => { while (!readFileSync(log, "latin1").includes("1(+1)")) await Bun.sleep(20); })(), 5000, "log line");
      expect(c.out.text).not.toContain("[sessions]");
      renameSync(log, `${log}.1`);
      c.proc.kill("SIGUSR1");
      await within((async () => { while (!existsSync(log)) await Bun.sleep(20); })(), 5000, "reopened log");
      await driveReference(spec);
      await within((async () => { while (!readFileSync(log, "latin1").includes("2(+1)")) await Bun.sleep(20); })(), 5000, "log line after reopen");
      expect(readFileSync(`${log}.1`, "latin1")).not.toContain("2(+1)");
      await c.stop();

      const spec2 = await tcpSpec();
      const d = await startClient(["-s", spec2, "--log-path=-"]);
      await driveReference(spec2);
      await d.out.waitFor(/\[sessions\]\[finished\] 1\(\+1\) 0\n/);
      await d.stop();
    } finally {
      dir.remove();
    }
  });

  test("--syslog sends RFC 3164 lines (facility mail, or --syslog-facility) to the syslog socket", async () => {
    const dir = tempDir();
    chmodSync(dir.path, 0o755);
    const sock = join(dir.path, "log.sock");
    const rx = Bun.spawn(["python3", join(import.meta.dir, "../fixtures/test-client/syslog_receiver.py"), sock], { stdout: "pipe", stderr: "inherit" });
    try {
      const got = new Collector(rx.stdout);
      await got.waitFor(/ready/);
      for (const [flags, pri] of [[[], 2 * 8 + 6], [["--syslog-facility=local3"], 19 * 8 + 6]] as const) {
        const spec = await tcpSpec();
        const c = await startClient(["-s", spec, "--syslog", ...flags], { env: { MILTERKIT_SYSLOG_SOCKET: sock } });
        await driveReference(spec);
        const re = new RegExp(`<${pri}>\\w{3} [ \\d]\\d \\d\\d:\\d\\d:\\d\\d milter-test-client\\[${c.proc.pid}\\]: \\[statistics\\] \\[sessions\\]\\[finished\\] 1\\(\\+1\\) 0`);
        await got.waitFor(re);
        await c.out.waitFor(/\[sessions\]\[finished\] 1\(\+1\) 0\n/); // stdout still gets it
        await c.stop();
      }
      const bad = await runOnce(["-s", await tcpSpec(), "--syslog-facility=bogus"]);
      expect(bad.code).toBe(1);
      expect(bad.stderr).toContain("unknown syslog facility");
    } finally {
      rx.kill();
      await rx.exited;
      dir.remove();
    }
  });

  test("a bad --log-level or an unwritable --log-path is one line and exit 1", async () => {
    const a = await runOnce(["-s", await tcpSpec(), "--log-level=default|loud"]);
    expect(a.code).toBe(1);
    expect(a.stderr.trim().split("\n")).toEqual([`milter-test-client: --log-level: unknown log level "loud" in "default|loud" (expected default, all, none, critical, error, warning, message, info, debug, statistics, profile joined with |)`]);
    const b = await runOnce(["-s", await tcpSpec(), "--log-path=/nonexistent/dir/x.log"]);
    expect(b.code).toBe(1);
    expect(b.stderr).toMatch(/^milter-test-client: cannot open log file \/nonexistent\/dir\/x\.log: .*ENOENT.*\n$/);
  });
});

describe("listening and exit status", () => {
  test("an invalid spec, a port in use, an uncreatable socket: exit 1 with one line", async () => {
    const bad = await runOnce(["-s", "inet:99999@[127.0.0.1]"]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toBe("milter-test-client: invalid connection spec <inet:99999@[127.0.0.1]>: port 99999 is greater than 65535\n");

    const spec = await tcpSpec();
    const first = await startClient(["-s", spec]);
    const busy = await runOnce(["-s", spec]);
    expect(busy.code).toBe(1);
    expect(busy.stderr).toBe(`milter-test-client: cannot listen on ${spec}: address already in use\n`);
    await first.stop();

    const dir = tempDir();
    try {
      chmodSync(dir.path, 0o755);
      mkdirSync(join(dir.path, "locked"), { mode: 0o755 });
      const path = join(dir.path, "locked/m.sock");
      const denied = await runOnce(["-s", `unix:${path}`], {}, isRoot ? 65534 : undefined);
      expect(denied.code).toBe(1);
      expect(denied.stderr).toBe(`milter-test-client: cannot listen on unix:${path}: permission denied\n`);
    } finally {
      dir.remove();
    }
  });

  test("MILTER_DEFAULT_CONNECTION_SPEC is the default spec; -s and --connection-spec= override it", async () => {
    const spec = await tcpSpec();
    const c = await startClient(["--connection-spec=" + spec], { env: { MILTER_DEFAULT_CONNECTION_SPEC: "inet:1@[127.0.0.1]" } });
    await driveReference(spec);
    await c.out.waitFor(/finished\n/);
    await c.stop();
    const spec2 = await tcpSpec();
    const proc = Bun.spawn({ cmd: [process.execPath, MAIN, "test-client"], cwd: ROOT, env: { ...process.env, MILTER_DEFAULT_CONNECTION_SPEC: spec2 }, stdout: "pipe", stderr: "pipe" });
    try {
      const { waitListening } = await import("./helpers.ts");
      await waitListening(spec2, proc);
      expect(await driveReference(spec2)).toHaveLength(REFERENCE_REPLIES);
    } finally {
      proc.kill();
      await proc.exited;
    }
  });

  test("unix socket with --unix-socket-mode and --unix-socket-group (and the deprecated --socket-group-name)", async () => {
    const dir = tempDir();
    chmodSync(dir.path, 0o1777); // sticky like /run/…: nobody may remove the socket it owns
    try {
      for (const [flag, mode] of [["--unix-socket-group=mail", 0o640], ["--socket-group-name=mail", 0o660]] as const) {
        const path = join(dir.path, `m-${mode}.sock`);
        const c = await startClient(["-s", `unix:${path}`, flag, ...(mode === 0o640 ? ["--unix-socket-mode=0640"] : [])]);
        // The socket accepts connections a moment before the chown to the dropped-to user: wait (bounded) for it.
        let st = statSync(path);
        for (let i = 0; isRoot && st.uid !== 65534 && i < 200; i++) {
          await Bun.sleep(10);
          st = statSync(path);
        }
        expect(st.mode & 0o777).toBe(mode);
        if (isRoot) {
          expect(st.gid).toBe(8);
          expect(st.uid).toBe(65534); // chowned to the user it switched to
        }
        expect(await driveReference(`unix:${path}`)).toHaveLength(REFERENCE_REPLIES);
        await c.out.waitFor(/finished\n/);
        await c.stop();
        expect(existsSync(path)).toBe(false);
      }
      const bad = await runOnce(["-s", `unix:${join(dir.path, "x.sock")}`, "--unix-socket-mode=999"]);
      expect(bad.code).toBe(1);
      expect(bad.stderr).toContain("--unix-socket-mode");
    } finally {
      dir.remove();
    }
  });

  test("--pid-file is written after listening and removed on SIGTERM", async () => {
    const dir = tempDir();
    chmodSync(dir.path, 0o777);
    try {
      const pidFile = join(dir.path, "tc.pid");
      const c = await startClient(["-s", await tcpSpec(), `--pid-file=${pidFile}`]);
      await within((async () => { while (!existsSync(pidFile)) await Bun.sleep(20); })(), 5000, "pid file");
      expect(readFileSync(pidFile, "latin1")).toBe(`${c.proc.pid}\n`);
      expect(await c.stop()).toBe(0);
      expect(existsSync(pidFile)).toBe(false);
    } finally {
      dir.remove();
    }
  });

  test("--daemon: exits 0 once the background process listens; a failing start exits 1 with its line", async () => {
    const dir = tempDir();
    chmodSync(dir.path, 0o777);
    const pidFile = join(dir.path, "d.pid");
    const spec = await tcpSpec();
    let pid = 0;
    try {
      const r = await runOnce(["-s", spec, "--daemon", `--pid-file=${pidFile}`, "--no-report-request"]);
      expect(r).toEqual({ stdout: "", stderr: "", code: 0 });
      pid = Number(readFileSync(pidFile, "latin1"));
      expect(procStatus(pid).State).toMatch(/^S|^R/);
      expect(await driveReference(spec)).toHaveLength(REFERENCE_REPLIES);
      const again = await runOnce(["-s", spec, "--daemon"]);
      expect(again.code).toBe(1);
      expect(again.stderr).toBe(`milter-test-client: cannot listen on ${spec}: address already in use\n`);
      const cancelled = await runOnce(["-s", spec, "--daemon", "--no-daemon"]);
      expect(cancelled.code).toBe(1); // --no-daemon: runs in the foreground, so the busy port is reported directly
      expect(cancelled.stderr).toContain("address already in use");
    } finally {
      if (pid > 0) {
        process.kill(pid, "SIGTERM");
        await within((async () => { while (existsSync(`/proc/${pid}`) && !/^Z/.test(procStatus(pid).State ?? "")) await Bun.sleep(20); })(), 10_000, "daemon exit");
      }
      dir.remove();
    }
  });
});

describe("users and groups", () => {
  test.skipIf(!isRoot)("as root it switches to nobody after listening unless told otherwise", async () => {
    const cases: [string[], number, number][] = [
      [[], 65534, 65534],
      [["-u", "daemon"], 1, 1],
      [["--user-name=daemon"], 1, 1],
      [["--user-id=1"], 1, 1],
      [["-u", "daemon", "-g", "mail"], 1, 8],
      [["--user=nobody", "--group-name=mail"], 65534, 8],
      [["--group-id=8"], 65534, 8],
    ];
    for (const [flags, uid, gid] of cases) {
      const spec = await tcpSpec();
      const c = await startClient(["-s", spec, "--no-report-request", ...flags]);
      expect(await driveReference(spec)).toHaveLength(REFERENCE_REPLIES); // served after the switch
      const st = procStatus(c.proc.pid);
      expect(st.Uid.split(/\s+/).map(Number)).toEqual([uid, uid, uid, uid]);
      expect(st.Gid.split(/\s+/).map(Number)).toEqual([gid, gid, gid, gid]);
      expect(st.Groups.split(/\s+/).filter(Boolean).map(Number)).not.toContain(0);
      await c.stop();
    }
  });

  test("without root, -u/-g are refused with one line", async () => {
    const r = await runOnce(["-s", await tcpSpec(), "-u", "daemon"], {}, isRoot ? 65534 : undefined);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^milter-test-client: cannot switch to user "daemon": only root can change user or group \(running as uid \d+\)\n$/);
    const bad = await runOnce(["-s", await tcpSpec(), "--user-id=abc"]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toBe('milter-test-client: --user-id: "abc" is not a number\n');
    const unknown = await runOnce(["-s", await tcpSpec(), "-u", "no-such-user-xyz"]);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain('unknown user "no-such-user-xyz"');
  });
});

describe("compatibility options", () => {
  test("--event-loop-backend, --packet-buffer-size, --max-pending-finished-sessions: accepted and checked", async () => {
    const spec = await tcpSpec();
    const c = await startClient(["-s", spec, "--event-loop-backend=libev", "--packet-buffer-size=4096", "--max-pending-finished-sessions=10"]);
    expect(await driveReference(spec)).toHaveLength(REFERENCE_REPLIES);
    await c.stop();
    for (const [flag, text] of [
      ["--event-loop-backend=epoll", `--event-loop-backend: "epoll" is not glib or libev`],
      ["--packet-buffer-size=-1", `--packet-buffer-size: "-1" is not an integer`],
      ["--max-pending-finished-sessions=x", `--max-pending-finished-sessions: "x" is not an integer`],
      ["--n-workers=1001", `--n-workers: "1001" is not an integer between 0 and 1000`],
    ]) {
      const r = await runOnce(["-s", await tcpSpec(), flag]);
      expect(r.code).toBe(1);
      expect(r.stderr).toContain(text);
    }
  });

  test("--help, --help-all, --help-milter, --version; unknown options are refused", async () => {
    for (const flag of ["--help", "-h", "--help-all", "--help-milter"]) {
      const r = await runOnce([flag]);
      expect(r.code).toBe(0);
      expect(r.stdout).toContain("--connection-spec");
      expect(r.stdout).toContain("--no-report-request");
      expect(r.stdout.replace(/\s+/g, " ")).toContain("Bun's own event loop serves both"); // --help wraps lines
    }
    const v = await runOnce(["--version"]);
    expect(v).toEqual({ stdout: `${VERSION}\n`, stderr: "", code: 0 });
    const u = await runOnce(["--frobnicate"]);
    expect(u.code).toBe(1);
    expect(u.stderr.split("\n")[0]).toBe("milter-test-client: unknown option '--frobnicate'");
  });

  test("--n-workers=2 on TCP: two worker processes share the port; SIGTERM stops them", async () => {
    const spec = await tcpSpec();
    const c = await startClient(["-s", spec, "--n-workers=2", "--json"]);
    const pids = new Set<number>();
    for (let i = 0; i < 60 && pids.size < 2; i++) {
      const mta = await ScriptedMta.connect(parseSpec(spec));
      mta.send({ type: "optneg", version: 6, actions: 0x1ff, protocol: 0x1fffff });
      await mta.next();
      await mta.quit();
      const lines = (await c.out.waitFor(new RegExp(`("event":"finished".*\\n[^]*){${i + 1}}`))).input!.split("\n");
      for (const l of lines) if (l.startsWith("{")) pids.add(JSON.parse(l).pid);
    }
    expect(pids.size).toBe(2);
    expect(pids.has(c.proc.pid)).toBe(false); // the supervisor does not serve
    expect(await c.stop()).toBe(0);
    for (const pid of pids) await within((async () => { while (existsSync(`/proc/${pid}`)) await Bun.sleep(20); })(), 10_000, `worker ${pid} exit`);
  });

  // The supervisor passes SIGUSR1 and SIGHUP on to its workers: each reopens its own log file.
  for (const signal of ["SIGUSR1", "SIGHUP"] as const) {
    test(`--n-workers=2: ${signal} to the supervisor makes every worker reopen the log`, async () => {
      const dir = tempDir();
      chmodSync(dir.path, 0o777); // the workers run as nobody after listening and create the new file
      try {
        const log = join(dir.path, "client.log");
        const spec = await tcpSpec();
        const c = await startClient(["-s", spec, "--n-workers=2", "--log-level=all", `--log-path=${log}`]);
        let pids: number[] = [];
        await within((async () => {
          for (;;) {
            const m = /2 workers listening on .*: pids (\d+) (\d+)/.exec(readFileSync(log, "latin1"));
            if (m) return void (pids = [Number(m[1]), Number(m[2])]);
            await Bun.sleep(20);
          }
        })(), 10_000, "workers line");
        /** The files a process holds open. */
        const openFiles = (pid: number) => readdirSync(`/proc/${pid}/fd`).map((fd) => { try { return readlinkSync(`/proc/${pid}/fd/${fd}`); } catch { return ""; } });
        for (const pid of pids) expect(openFiles(pid)).toContain(log);
        renameSync(log, `${log}.1`);
        c.proc.kill(signal);
        await within((async () => {
          while (!pids.every((pid) => openFiles(pid).includes(log) && !openFiles(pid).includes(`${log}.1`))) await Bun.sleep(20);
        })(), 10_000, "every worker holding the new log file");
        expect(await c.stop()).toBe(0);
      } finally {
        dir.remove();
      }
    }, 30_000);
  }

  test("--n-workers with a unix socket serves in one process and says so", async () => {
    const dir = tempDir();
    chmodSync(dir.path, 0o755);
    try {
      const path = join(dir.path, "w.sock");
      const c = await startClient(["-s", `unix:${path}`, "--n-workers=2"]);
      await c.out.waitFor(/\[warning\] --n-workers=2 is ignored for unix:.*serving in one process/);
      expect(await driveReference(`unix:${path}`)).toHaveLength(REFERENCE_REPLIES);
      await c.stop();
    } finally {
      dir.remove();
    }
  });
});

describe("robustness", () => {
  test("a malformed packet and an abrupt disconnect end only that session, with an ERROR line", async () => {
    const spec = await tcpSpec();
    const c = await startClient(["-s", spec]);
    const bad = await ScriptedMta.connect(parseSpec(spec));
    bad.send({ type: "optneg", version: 6, actions: 0x1ff, protocol: 0x1fffff });
    await bad.next();
    bad.sendRaw(encodePacket(0x48, Buffer.from("no-nul"))); // HELO without its NUL
    await bad.waitClosed();
    await c.out.waitFor(/ERROR: .*SMFIC_HELO.*\nfinished\n/);
    const cut = await ScriptedMta.connect(parseSpec(spec));
    cut.send({ type: "optneg", version: 6, actions: 0x1ff, protocol: 0x1fffff }, { type: "connect", hostname: "h", family: "U" }, { type: "mail", address: "<a>", args: [] });
    await cut.nextTypes(3);
    cut.conn.destroy();
    await c.out.waitFor(/ERROR: the MTA closed the connection without SMFIC_QUIT.*\nfinished\n/);
    expect(await driveReference(spec)).toHaveLength(REFERENCE_REPLIES);
    await c.out.waitFor(/3\(\+1\) 0\n/);
    expect(await c.stop()).toBe(0);
  });

  test("hundreds of concurrent sessions", async () => {
    const spec = await tcpSpec();
    const c = await startClient(["-s", spec, "--no-report-request"]);
    const N = 300;
    const mtas = await Promise.all(Array.from({ length: N }, () => ScriptedMta.connect(parseSpec(spec))));
    for (const m of mtas) m.send(...referenceSession());
    const replies = await Promise.all(mtas.map((m) => m.nextTypes(REFERENCE_REPLIES, 20_000)));
    for (const r of replies) expect(r).toEqual(["optneg", ...Array(REFERENCE_REPLIES - 1).fill("continue")]);
    await Promise.all(mtas.map((m) => m.quit()));
    await c.out.waitFor(new RegExp(`\\[sessions\\]\\[finished\\] ${N}\\(\\+1\\) 0\\n`), 20_000);
    expect(await c.stop()).toBe(0);
  }, 60_000);
});
