// Log levels, line format, log files with reopen, the batched fd writer, syslog datagrams.
import { describe, expect, test } from "bun:test";
import { chmodSync, existsSync, mkdtempSync, readFileSync, renameSync, rmSync, type Stats, statSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { formatLogLevel, isoTimeMicro, LEVEL_ALL, LEVEL_DEFAULT, Logger, LogLevelError, parseLogLevel, sessionsFinishedLine } from "../../src/runtime/log.ts";
import { FdWriter, LogFileError, logFileWriters, openAppend } from "../../src/runtime/output.ts";
import { formatRfc3164, parseFacility, Syslog, SyslogError } from "../../src/runtime/syslog.ts";

function tmp() {
  const path = mkdtempSync(join(tmpdir(), "mk-rt-"));
  return { path, remove: () => rmSync(path, { recursive: true, force: true }) };
}
const until = async (f: () => boolean, ms = 3000) => {
  const end = Date.now() + ms;
  while (!f()) {
    if (Date.now() > end) throw new Error("condition not met in time");
    await Bun.sleep(10);
  }
};

describe("levels", () => {
  test("items joined with |, default, all, none; unknown items name themselves", () => {
    expect(formatLogLevel(parseLogLevel("default"))).toBe("critical|error|warning|message|statistics");
    expect(parseLogLevel("all")).toBe(LEVEL_ALL);
    expect(parseLogLevel("none")).toBe(0);
    expect(formatLogLevel(parseLogLevel("error|debug"))).toBe("error|debug");
    expect(parseLogLevel("default|info")).toBe(LEVEL_DEFAULT | parseLogLevel("info"));
    expect(formatLogLevel(parseLogLevel("Statistics|PROFILE"))).toBe("statistics|profile");
    expect(() => parseLogLevel("error|loud")).toThrow(LogLevelError);
    expect(() => parseLogLevel("error|loud")).toThrow(/unknown log level "loud"/);
    expect(() => parseLogLevel("")).toThrow(/empty/);
  });

  test("time with microseconds and the sessions statistics line", () => {
    expect(isoTimeMicro(Date.UTC(2026, 10, 22, 2, 21, 37, 582) + 0.603)).toBe("2026-11-22T02:21:37.582603Z");
    expect(isoTimeMicro()).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/);
    expect(sessionsFinishedLine(12, 1, 3)).toBe("[sessions][finished] 12(+1) 3");
  });
});

describe("Logger", () => {
  test("file output (appended to what is there), level filter, statistics without tag, reopen after rotation", async () => {
    const d = tmp();
    try {
      const path = join(d.path, "a.log");
      writeFileSync(path, "an earlier line\n", { mode: 0o640 });
      const log = new Logger({ path, level: parseLogLevel("error|statistics") });
      log.error("bad thing");
      log.info("not shown");
      log.statistics(sessionsFinishedLine(1, 1, 0));
      log.flush();
      const lines = readFileSync(path, "latin1").trim().split("\n");
      expect(lines.length).toBe(3);
      expect(lines.shift()).toBe("an earlier line"); // appended to
      expect(lines[0]).toMatch(/^\[[\d\-T:.]+Z\]: \[error\] bad thing$/);
      expect(lines[1]).toMatch(/^\[[\d\-T:.]+Z\]: \[sessions\]\[finished\] 1\(\+1\) 0$/);
      renameSync(path, `${path}.1`);
      log.reopen();
      log.error("after");
      await log.close();
      expect(readFileSync(path, "latin1")).toContain("[error] after");
      expect(readFileSync(`${path}.1`, "latin1")).not.toContain("after");
    } finally {
      d.remove();
    }
  });

  test("an unopenable path throws", () => {
    expect(() => new Logger({ path: "/nonexistent/dir/x.log" })).toThrow(/ENOENT/);
  });

  test("a symlink or a FIFO at the log path is refused (the target untouched); a reopen onto one keeps the old file and says so", async () => {
    const d = tmp();
    try {
      const target = join(d.path, "target");
      writeFileSync(target, "precious\n", { mode: 0o600 });
      const link = join(d.path, "link.log");
      symlinkSync(target, link);
      expect(() => new Logger({ path: link })).toThrow(LogFileError);
      expect(() => new Logger({ path: link })).toThrow(/it is a symbolic link, and a log file is never opened through one/);
      symlinkSync(join(d.path, "missing"), join(d.path, "dangling.log")); // O_CREAT would create the target
      expect(() => new Logger({ path: join(d.path, "dangling.log") })).toThrow(/symbolic link/);
      expect(existsSync(join(d.path, "missing"))).toBe(false);
      const fifo = join(d.path, "fifo.log");
      expect(Bun.spawnSync(["mkfifo", fifo]).exitCode).toBe(0);
      expect(() => new Logger({ path: fifo })).toThrow(/it is a FIFO, not a regular file/); // and does not wait for a reader
      expect(() => new Logger({ path: d.path })).toThrow(/it is a directory/);
      expect(() => openAppend("/dev/null")).toThrow(/it is a character device/);

      // logrotate moved the file; someone put a symlink at the name before the reopen
      const path = join(d.path, "a.log");
      const log = new Logger({ path });
      log.error("before");
      log.flush();
      renameSync(path, `${path}.1`);
      symlinkSync(target, path);
      log.reopen();
      log.error("after");
      await log.close();
      expect(readFileSync(target, "latin1")).toBe("precious\n");
      const old = readFileSync(`${path}.1`, "latin1");
      expect(old).toContain("[error] after");
      expect(old.match(/cannot reopen log file/g)?.length).toBe(1);
      expect(old).toContain(`[error] cannot reopen log file ${path}: it is a symbolic link, and a log file is never opened through one`);
      expect(old).toContain("; still writing to the file opened before");
    } finally {
      d.remove();
    }
  });

  test("who else can write the log file is named (group, others, another owner); a file of ours is quiet", () => {
    const d = tmp();
    try {
      const path = join(d.path, "a.log");
      const log = new Logger({ path });
      expect(log.fileWriters()).toBeUndefined(); // created 0640 by us
      chmodSync(path, 0o664);
      expect(log.fileWriters()).toBe(`log file ${path} can be written by its group (mode 0664): they can add or change its lines; chmod go-w ${path}`);
      chmodSync(path, 0o646);
      expect(log.fileWriters()).toStartWith(`log file ${path} can be written by everyone (mode 0646)`);
      expect(new Logger({}).fileWriters()).toBeUndefined(); // standard output
      const st = statSync(path);
      const me = process.geteuid!();
      expect(logFileWriters({ ...st, uid: 4242, mode: st.mode & ~0o022 } as Stats, path, [0, me])).toStartWith(`log file ${path} belongs to uid 4242, not to root or the user the manager runs as (uid 0/${me})`);
      expect(logFileWriters({ ...st, uid: 4242, mode: 0o100640 } as Stats, path, [0, me, 4242])).toBeUndefined(); // the user we switch to
      void log.close();
    } finally {
      d.remove();
    }
  });
});

describe("FdWriter", () => {
  test("many writes in one turn become one write; latin1 and utf8 encodings", async () => {
    const d = tmp();
    try {
      const path = join(d.path, "o");
      const fd = openAppend(path);
      const w = new FdWriter(fd);
      for (let i = 0; i < 1000; i++) w.write(`line ${i}\n`);
      w.write("\xe4\xff\n");
      await w.drain();
      const buf = readFileSync(path);
      expect(buf.toString("latin1").split("\n").length).toBe(1002);
      expect([...buf.subarray(buf.length - 3)]).toEqual([0xe4, 0xff, 0x0a]);
      const u = new FdWriter(fd, undefined, "utf8");
      u.write("\xe4\n");
      await u.drain();
      expect([...readFileSync(path).subarray(-3)]).toEqual([0xc3, 0xa4, 0x0a]);
    } finally {
      d.remove();
    }
  });

  test("the queue is bounded: what does not fit is dropped and counted", () => {
    const w = new FdWriter(-1, 10);
    w.write("12345");
    w.write("1234567890");
    expect(w.dropped).toBe(10);
  });
});

describe("syslog", () => {
  test("RFC 3164 framing and facilities", () => {
    const d = new Date(2026, 10, 2, 3, 4, 5);
    expect(formatRfc3164(2, 6, "milter-test-client", "hello", d, 42)).toBe("<22>Nov  2 03:04:05 milter-test-client[42]: hello");
    expect(parseFacility("LOCAL7")).toBe(23);
    expect(parseFacility("daemon")).toBe(3);
    expect(() => parseFacility("nope")).toThrow(SyslogError);
  });

  test("datagrams reach a unix datagram receiver through bun:ffi; a missing socket is reported, not thrown", async () => {
    const d = tmp();
    chmodSync(d.path, 0o755);
    const sock = join(d.path, "log");
    const rx = Bun.spawn(["python3", join(import.meta.dir, "../fixtures/test-client/syslog_receiver.py"), sock], { stdout: "pipe" });
    try {
      let out = "";
      void (async () => {
        for await (const c of rx.stdout) out += Buffer.from(c).toString("latin1");
      })();
      await until(() => out.includes("ready"));
      const s = new Syslog({ ident: "mk-test", facility: "local1", path: sock });
      expect(s.transport).toBe("ffi");
      // Text goes out as UTF-8 (the receiver prints the datagram's bytes; read back as UTF-8).
      expect(s.log("err", "café ✖ prüfung–α")).toBe(true);
      await until(() => out.includes("mk-test["));
      expect(Buffer.from(out, "latin1").toString("utf8")).toMatch(new RegExp(`<139>\\w{3} [ \\d]\\d \\d\\d:\\d\\d:\\d\\d mk-test\\[${process.pid}\\]: café ✖ prüfung–α`));
      s.close();
      const none = new Syslog({ ident: "x", path: join(d.path, "missing") });
      expect(none.available).toBe(false);
      expect(none.failure).toMatch(/cannot connect/);
      expect(none.log("info", "dropped")).toBe(false);
    } finally {
      rx.kill();
      await rx.exited;
      d.remove();
    }
  });
});
