import { expect, test } from "bun:test";
import { scan } from "../../src/cli/options/scan.ts";
import { TEST_SERVER_TABLE } from "../../src/cli/options/test-server.ts";
import { OptionError, parseTestServerArgs, type ParseContext } from "../../src/test-server/options.ts";

/** Argument list in order: [long name, value], as the test-server applies it. */
const orderedOptions = (argv: string[]) => scan(TEST_SERVER_TABLE, argv).occurrences.map((o) => [o.def.long, o.value]);

const files: Record<string, string> = {
  "a.eml": "From: Alice <alice@example.com>\r\nTo: bob@example.org\r\nTo: Carol <carol@example.org>\r\nSubject: s\r\n\r\nbody\r\n",
  "nobody.eml": "From: x@example.com\n",
};
const ctx: ParseContext = {
  readFile(p) {
    if (!(p in files)) throw new Error(`${p}: No such file or directory`);
    return Buffer.from(files[p], "latin1");
  },
  env: {},
  isTty: false,
};
const parse = (...argv: string[]) => parseTestServerArgs(argv, ctx);

test("defaults are the original's", () => {
  const o = parse();
  expect(o.name).toBe("milter-test-server");
  expect(o.spec).toEqual({ kind: "inet", port: 10025, host: "127.0.0.1", scheme: "inet" });
  expect(o.negotiateVersion).toBe(6);
  expect(o.connectHost).toBe("mx.example.net");
  expect(o.connectAddress).toEqual({ kind: "inet", port: 50443, host: "192.168.123.123", scheme: "inet" });
  expect(o.heloFqdn).toBe("delian");
  expect(o.envelopeFrom).toBe("<sender@example.com>");
  expect(o.recipients).toEqual(["<receiver@example.org>"]);
  // From/To headers are appended when missing.
  expect(o.headers).toEqual([{ name: "From", raw: " <sender@example.com>" }, { name: "To", raw: " <receiver@example.org>" }]);
  expect(o.bodyChunks.map((b) => Buffer.from(b).toString("latin1"))).toEqual([
    "La de da de da 1.\nLa de da de da 2.\nLa de da de da 3.\nLa de da de da 4.",
  ]);
  expect(o.timeouts).toEqual({ connectionMs: 300_000, readingMs: 10_000, writingMs: 10_000, endOfMessageMs: 300_000 });
  expect(o.outputMessage).toBe(false);
  expect(o.color).toBe(false);
  expect(o.threads).toBe(0);
  expect(o.nMessages).toBe(1);
  expect(o.json).toBe(false);
  expect(o.sessions).toBeUndefined();
  expect(o.concurrency).toBe(1);
  expect(o.maxTimeMs).toBe(60_000);
  expect(o.verbose).toBe(false);
});

test("MILTER_DEFAULT_CONNECTION_SPEC and a bare path", () => {
  expect(parseTestServerArgs([], { ...ctx, env: { MILTER_DEFAULT_CONNECTION_SPEC: "unix:/tmp/m.sock" } }).spec).toEqual({ kind: "unix", path: "/tmp/m.sock", scheme: "unix" });
  expect(parse("-s", "/run/milter.sock").spec).toEqual({ kind: "unix", path: "/run/milter.sock", scheme: "unix" });
  expect(parse("--connection-spec=inet6:2000@[::1]").spec).toEqual({ kind: "inet6", port: 2000, host: "::1", scheme: "inet6" });
});

test("every value option", () => {
  const o = parse(
    "--name", "srv", "--negotiate-version", "4", "--connect-host", "client.example", "--connect-address", "inet6:25@[2001:db8::1]",
    "--helo-fqdn", "helo.example", "-f", "a@example.com", "-r", "b@example.org", "--recipient", "<c@example.org>",
    "-h", "Subject:  hello", "--header=X-Tab:\tv", "-b", "one", "--body", "two", "--unknown", "XFOO bar",
    "--authenticated-name", "user", "--authenticated-type", "PLAIN", "--authenticated-author", "author",
    "--output-message", "-t", "3", "-v", "--n-messages", "2", "--json",
  );
  expect(o.name).toBe("srv");
  expect(o.negotiateVersion).toBe(4);
  expect(o.connectHost).toBe("client.example");
  expect(o.connectAddress).toEqual({ kind: "inet6", port: 25, host: "2001:db8::1", scheme: "inet6" });
  expect(o.heloFqdn).toBe("helo.example");
  expect(o.envelopeFrom).toBe("<a@example.com>");
  expect(o.recipients).toEqual(["<b@example.org>", "<c@example.org>"]);
  expect(o.headers).toEqual([
    { name: "Subject", raw: " hello" }, // value left-stripped
    { name: "X-Tab", raw: " v" },
    { name: "From", raw: " <a@example.com>" },
    { name: "To", raw: " <b@example.org>" },
  ]);
  expect(o.bodyChunks.map((b) => Buffer.from(b).toString())).toEqual(["one", "two"]);
  expect(o.unknown).toBe("XFOO bar");
  expect([o.authenticatedName, o.authenticatedType, o.authenticatedAuthor]).toEqual(["user", "PLAIN", "author"]);
  expect([o.outputMessage, o.threads, o.verbose, o.nMessages, o.json]).toEqual([true, 3, true, 2, true]);
});

test("macros per stage, in order, repeatable", () => {
  const o = parse(
    "--connect-macro", "j:mx", "--connect-macro", "{daemon_name}:d", "--helo-macro", "cipher:AES",
    "--envelope-from-macro", "x:1", "--envelope-recipient-macro", "y:2", "--data-macro", "i:Q1",
    "--end-of-header-macro", "i:Q2", "--end-of-message-macro", "i:Q3", "--end-of-message-macro", "v:a:b",
  );
  expect(o.macros).toEqual({
    connect: [["j", "mx"], ["{daemon_name}", "d"]],
    helo: [["cipher", "AES"]],
    "envelope-from": [["x", "1"]],
    "envelope-recipient": [["y", "2"]],
    data: [["i", "Q1"]],
    "end-of-header": [["i", "Q2"]],
    "end-of-message": [["i", "Q3"], ["v", "a:b"]],
  });
});

test("timeouts: each one, and --all-timeouts; the EOM timeout is not the writing timeout", () => {
  expect(parse("--connection-timeout", "1", "--reading-timeout", "2.5", "--writing-timeout", "3", "--end-of-message-timeout", "4").timeouts).toEqual({
    connectionMs: 1000, readingMs: 2500, writingMs: 3000, endOfMessageMs: 4000,
  });
  expect(parse("--end-of-message-timeout", "7").timeouts.writingMs).toBe(10_000);
  expect(parse("--all-timeouts", "0.5").timeouts).toEqual({ connectionMs: 500, readingMs: 500, writingMs: 500, endOfMessageMs: 500 });
  expect(parse("--all-timeouts", "5", "--reading-timeout", "1").timeouts.readingMs).toBe(1000);
});

test("--color: bare is yes, values, auto follows the terminal", () => {
  expect(parse("--color").color).toBe(true);
  expect(parse("--color=yes").color).toBe(true);
  expect(parse("--color=true").color).toBe(true);
  expect(parse("--color=no").color).toBe(false);
  expect(parse("--color=false").color).toBe(false);
  expect(parse("--color=auto").color).toBe(false);
  expect(parseTestServerArgs(["--color=auto"], { ...ctx, isTty: true }).color).toBe(true);
  expect(parseTestServerArgs([], { ...ctx, isTty: true }).color).toBe(true);
  // A bare --color never takes the next argument.
  expect(parse("--color", "--output-message").outputMessage).toBe(true);
  expect(() => parse("--color=maybe")).toThrow("--color: expected yes, true, no, false or auto, got 'maybe'");
});

test("--mail-file: envelope from From:/To:, headers and body from the file", () => {
  const o = parse("-m", "a.eml");
  expect(o.envelopeFrom).toBe("<alice@example.com>");
  expect(o.recipients).toEqual(["<bob@example.org>", "<carol@example.org>"]);
  expect(o.headers.map((h) => h.name)).toEqual(["From", "To", "To", "Subject"]);
  expect(o.bodyChunks.map((b) => Buffer.from(b).toString())).toEqual(["body\r\n"]);
});

test("--mail-file and -f/-r: option order decides", () => {
  expect(parse("-f", "first@example.com", "-m", "a.eml").envelopeFrom).toBe("<alice@example.com>");
  expect(parse("-m", "a.eml", "-f", "last@example.com").envelopeFrom).toBe("<last@example.com>");
  expect(parse("-r", "r1@example.com", "-m", "a.eml", "-r", "r2@example.com").recipients).toEqual([
    "<r1@example.com>", "<bob@example.org>", "<carol@example.org>", "<r2@example.com>",
  ]);
  // -h before -m comes first; the file's From/To make the defaults unnecessary.
  expect(parse("-h", "X-First:1", "-m", "a.eml").headers.map((h) => h.name)).toEqual(["X-First", "From", "To", "To", "Subject"]);
});

test("--mail-file without a body and without To: keeps the defaults that apply", () => {
  const o = parse("--mail-file", "nobody.eml");
  expect(o.envelopeFrom).toBe("<x@example.com>");
  expect(o.recipients).toEqual(["<receiver@example.org>"]);
  expect(o.bodyChunks).toEqual([]); // the file has no body: no default body either
  expect(o.headers).toEqual([{ name: "From", raw: " x@example.com" }, { name: "To", raw: " <receiver@example.org>" }]);
});

test("load mode options", () => {
  const o = parse("--sessions", "2000", "--concurrency", "10", "--max-time", "30");
  expect([o.sessions, o.concurrency, o.maxTimeMs]).toEqual([2000, 10, 30_000]);
});

test("errors name the option and the value", () => {
  const cases: [string[], string][] = [
    [["--header", "NoColon"], "--header: expected NAME:VALUE, got 'NoColon'"],
    [["--connect-macro", ":v"], "--connect-macro: expected NAME:VALUE, got ':v'"],
    [["--negotiate-version", "six"], "--negotiate-version: 'six' is not an integer ≥ 0"],
    [["--n-messages", "0"], "--n-messages: '0' is not an integer ≥ 1"],
    [["--reading-timeout", "-1"], "--reading-timeout: '-1' is not a number ≥ 0"],
    [["--max-time", "0"], "--max-time: '0' is not a number ≥ 0.001"],
    [["-s", "tcp:1"], "--connection-spec: invalid connection spec <tcp:1>: unknown scheme"],
    [["--connect-address", "inet:"], "--connect-address: invalid connection spec <inet:>: missing port"],
    [["-m", "missing.eml"], "--mail-file: missing.eml: No such file or directory"],
    [["--bogus"], "unknown option '--bogus'"],
    [["-x"], "unknown option '-x'"],
    [["-f"], "option '-f' needs a value"],
    [["--output-message=1"], "option '--output-message' takes no value"],
    [["stray"], "unexpected argument 'stray'"],
  ];
  for (const [argv, msg] of cases) {
    let err: unknown;
    try {
      parse(...argv);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(OptionError);
    expect((err as Error).message).toContain(msg);
  }
});

test("the scanner: short options with attached values and bundled flags", () => {
  expect(orderedOptions(["-vfa@b", "-t2", "-r", "x", "--from=y"])).toEqual([
    ["verbose", undefined], ["envelope-from", "a@b"], ["threads", "2"], ["envelope-recipient", "x"], ["envelope-from", "y"],
  ]);
});
