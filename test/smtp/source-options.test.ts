import { describe, expect, test } from "bun:test";
import { OptionError } from "../../src/smtp/values.ts";
import { parseSourceArgs, SOURCE_USAGE } from "../../src/smtp/source-options.ts";

const p = (...a: string[]) => parseSourceArgs(a, "host.example");

describe("smtp-source options", () => {
  test("Postfix's defaults", () => {
    const o = p("127.0.0.1:25");
    expect(o).toMatchObject({
      target: { kind: "inet", host: "127.0.0.1", port: 25 }, family: 0, keepGoing: false, counter: false,
      connectAttempts: 1, reuse: false, from: "foo@host.example", to: "foo@host.example", file: undefined, length: undefined,
      lmtp: false, messages: 1, myhostname: "host.example", numbered: false, old: false, recipients: 1,
      randomDelay: undefined, sessions: 1, subject: undefined, windowSize: undefined, verbose: 0, fixedDelay: undefined,
      pipelining: false, starttls: false, json: false, summary: true, progress: undefined, timeout: 300,
    });
  });
  test("every value flag, separate and attached", () => {
    const o = p("-C", "3", "-f", "a@b", "-F", "/tmp/m.eml", "-l", "1024", "-m", "10000", "-M", "[10.0.0.1]", "-r", "5",
      "-R", "2", "-s", "50", "-S", "Subject here", "-t", "c@d", "-T", "4096", "-w", "1s", "--timeout", "5", "unix:/tmp/s");
    expect(o).toMatchObject({ connectAttempts: 3, from: "a@b", file: "/tmp/m.eml", length: 1024, messages: 10000,
      myhostname: "[10.0.0.1]", recipients: 5, randomDelay: 2, sessions: 50, subject: "Subject here", to: "c@d",
      windowSize: 4096, fixedDelay: 1, timeout: 5, target: { kind: "unix", path: "/tmp/s" } });
    expect(p("-s50", "-m1000", "-l1024", "h").sessions).toBe(50);
  });
  test("-M sets the default sender and recipient", () => {
    const o = p("-M", "client.example", "h");
    expect([o.from, o.to, o.myhostname]).toEqual(["foo@client.example", "foo@client.example", "client.example"]);
  });
  test("grouped flags as in Postfix's usage: -cdLNov", () => {
    const o = p("-cdLNov", "h:25");
    expect(o).toMatchObject({ counter: true, reuse: true, lmtp: true, numbered: true, old: true, verbose: 1 });
    expect(p("-4", "-A", "-P", "h").family).toBe(4);
    expect(p("-6", "-A", "-P", "h")).toMatchObject({ family: 6, keepGoing: true, pipelining: true });
  });
  test("-v counts", () => {
    expect(p("-vvv", "h").verbose).toBe(3);
    expect(p("-v", "-v", "h").verbose).toBe(2);
    expect(p("-cv", "--verbose", "h").verbose).toBe(2);
    // a value that contains v is not a flag
    expect(p("-f", "v@x", "-fv", "h").verbose).toBe(0);
  });
  test("options after the target, --, long names", () => {
    expect(p("h", "-m", "3").messages).toBe(3);
    expect(p("--sessions=4", "--messages", "8", "--pipelining", "--json", "--no-summary", "--no-progress", "--starttls", "h"))
      .toMatchObject({ sessions: 4, messages: 8, pipelining: true, json: true, summary: false, progress: false, starttls: true });
    expect(p("--progress", "h").progress).toBe(true);
    expect(p("--", "-weird").target).toEqual({ kind: "inet", host: "-weird", port: 25 });
  });
  test("intervals: seconds, fractions and units", () => {
    expect(p("-w", "0.5", "h").fixedDelay).toBe(0.5);
    expect(p("-w", "250ms", "h").fixedDelay).toBe(0.25);
    expect(p("-R", "2m", "h").randomDelay).toBe(120);
  });
  test.each([
    [["-s", "0", "h"], "bad session count: 0"],
    [["-s", "abc", "h"], "bad session count: abc"],
    [["-m", "0", "h"], "bad message count: 0"],
    [["-m", "-5", "h"], "bad message count: -5"],
    [["-m", "1x", "h"], "bad message count: 1x"],
    [["-l", "0", "h"], "bad message length: 0"],
    [["-l", "abc", "h"], "bad message length: abc"],
    [["-r", "0", "h"], "bad recipient count: 0"],
    [["-C", "0", "h"], "bad connection count: 0"],
    [["-R", "0", "h"], "bad random delay: 0"],
    [["-R", "x", "h"], "bad random delay: x"],
    [["-w", "-1", "h"], "bad fixed delay: -1"],
    [["-T", "0", "h"], "bad TCP window size: 0"],
    [["-T", "70000", "h"], "bad TCP window size: 70000"],
    [["--timeout", "0", "h"], "bad timeout: 0"],
    [["-4", "-6", "h"], "-4 and -6 exclude each other"],
    [[], SOURCE_USAGE],
    [["a", "b"], SOURCE_USAGE],
    [["h:99999"], "h:99999: bad port number: 99999"],
    [["-x", "h"], "unknown option '-x'"],
    [["--bogus", "h"], "unknown option '--bogus'"],
    [["-m"], "option '-m' needs a value"],
  ] as [string[], string][])("%j -> %s", (argv, msg) => {
    let err: unknown;
    try { p(...argv); } catch (e) { err = e; }
    expect(err).toBeInstanceOf(OptionError);
    expect((err as Error).message).toBe(msg);
  });
});
