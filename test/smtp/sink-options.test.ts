import { describe, expect, test } from "bun:test";
import { parseSinkArgs, SINK_USAGE, unescapeC } from "../../src/smtp/sink-options.ts";

const p = (...a: string[]) => parseSinkArgs(a);

describe("smtp-sink options", () => {
  test("defaults", () => {
    const o = p("127.0.0.1:0", "100");
    expect(o).toMatchObject({
      listen: { kind: "inet", host: "127.0.0.1", port: 0 }, backlog: 100, hostname: "smtp-sink", lmtp: false,
      maxConnections: 256, timeout: 100, softReply: "450 4.3.0 Error: command failed",
      hardReply: "500 5.3.0 Error: command failed", noPipelining: false, counters: false, summary: true,
    });
    expect(p("unix:/tmp/s.sock").listen).toEqual({ kind: "unix", path: "/tmp/s.sock" });
  });
  test("every flag", () => {
    const o = p("-8acCeEFLNpPv", "127.0.0.1:1");
    expect(o).toMatchObject({ no8bitmime: true, noAuth: true, counters: true, noXclient: true, noEsmtp: true,
      noEnhancedCodes: true, noXforward: true, lmtp: true, noDsn: true, noPipelining: true, pixBanner: true, verbose: 1 });
  });
  test("-4/-6 each", () => {
    expect(p("-4", ":1").family).toBe(4);
    expect(p("-6", ":1").family).toBe(6);
  });
  test("every value option", () => {
    const o = p("-A", "1", "-b", "451 4.7.1 soft", "-B", "554 5.7.1 hard", "-d", "/tmp/d", "-D", "/tmp/all-%Y", "-f", "RCPT,data",
      "-h", "sink.example", "-H", "0.5", "-m", "3", "-M", "10", "-n", "4", "-q", "quit", "-Q", "MAIL", "-r", "EHLO", "-R", "/x",
      "-s", "mail,rcpt", "-S", "X-Start: 1\\n", "-t", "5", "-T", "4096", "-u", "nobody", "-w", "2", "-W", "rcpt:1:3",
      "--reply", "RCPT:<bad@=550 5.1.1 No such user", "--reply", ".=451 4.3.0 try later", "--tls-cert", "c.pem", "--tls-key", "k.pem",
      "--no-summary", "127.0.0.1:25", "10");
    expect(o).toMatchObject({ abortDelay: 1, softReply: "451 4.7.1 soft", hardReply: "554 5.7.1 hard", dumpTemplate: "/tmp/d",
      appendTemplate: "/tmp/all-%Y", hostname: "sink.example", readDelay: 0.5, maxConnections: 3, exitAfterMessages: 10,
      exitAfterSessions: 4, chroot: "/x", dumpPrefix: "X-Start: 1\n", timeout: 5, windowSize: 4096, user: "nobody", dataDelay: 2,
      tlsCert: "c.pem", tlsKey: "k.pem", summary: false, noPipelining: true });
    expect([...o.hardReject]).toEqual(["RCPT", "DATA"]);
    expect([...o.softReject]).toEqual(["EHLO"]);
    expect([...o.disconnect]).toEqual(["QUIT"]);
    expect([...o.disconnect421]).toEqual(["MAIL"]);
    expect([...o.log]).toEqual(["MAIL", "RCPT"]);
    expect(o.delays).toEqual([{ command: "RCPT", seconds: 1, odds: 3 }]);
    expect(o.replies).toEqual([{ command: "RCPT", match: "<bad@", reply: "550 5.1.1 No such user" }, { command: ".", match: undefined, reply: "451 4.3.0 try later" }]);
  });
  test("C escapes of -S", () => {
    expect(unescapeC("a\\tb\\r\\n\\101\\\\")).toBe("a\tb\r\nA\\");
  });
  test.each([
    [[], SINK_USAGE],
    [["127.0.0.1"], "127.0.0.1: missing port"],
    [[":1", "x"], "bad backlog: x"],
    [["-m", "0", ":1"], "bad maximum concurrency: 0"],
    [["-M", "x", ":1"], "bad message count: x"],
    [["-t", "0", ":1"], "bad timeout: 0"],
    [["-b", "hello", ":1"], 'bad soft reply: hello (expected "ddd text")'],
    [["--reply", "RCPT", ":1"], "bad --reply COMMAND[:MATCH]=REPLY: RCPT"],
    [["-W", "rcpt", ":1"], "bad -W command:delay[:odds]: rcpt"],
    [["--tls-cert", "c", ":1"], "--tls-cert and --tls-key go together"],
    [["-Z", ":1"], "unknown option '-Z'"],
  ] as [string[], string][])("%j -> %s", (argv, msg) => {
    expect(() => p(...argv)).toThrow(msg);
  });
});
