// Log levels, line format, log files with reopen, the batched fd writer, syslog datagrams.
import { describe, expect, test } from "bun:test";
import { chmodSync, mkdtempSync, readFileSync, renameSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { formatLogLevel, isoTimeMicro, LEVEL_ALL, LEVEL_DEFAULT, Logger, LogLevelError, parseLogLevel, sessionsFinishedLine } from "../../src/runtime/log.ts";
import { FdWriter, openAppend } from "../../src/runtime/output.ts";
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
  test("file output, level filter, statistics without tag, reopen after rotation", async () => {
    const d = tmp();
    try {
      const path = join(d.path, "a.log");
      const log = new Logger({ path, level: parseLogLevel("error|statistics") });
      log.error("bad thing");
      log.info("not shown");
      log.statistics(sessionsFinishedLine(1, 1, 0));
      log.flush();
      const lines = readFileSync(path, "latin1").trim().split("\n");
      expect(lines.length).toBe(2);
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
