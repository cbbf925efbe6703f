import { expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { extractAddress, parseMailFile, splitLines } from "../../src/test-server/mail-file.ts";

const text = (b: Uint8Array) => Buffer.from(b).toString("latin1");

test("small.eml (CRLF): headers, envelope, one body chunk with the line ends kept", () => {
  const m = parseMailFile(readFileSync(join(import.meta.dir, "../fixtures/test-server/small.eml")));
  expect(m.from).toBe("alice@example.com");
  expect(m.recipients).toEqual(["bob@example.org"]);
  expect(m.headers).toEqual([
    { name: "From", raw: " alice@example.com" },
    { name: "To", raw: " bob@example.org" },
    { name: "Subject", raw: " milterkit test" },
    { name: "Message-ID", raw: " <test-1@example.com>" },
    { name: "Date", raw: " Mon, 01 Jan 2024 00:00:00 +0000" },
  ]);
  expect(m.bodyChunks.map(text)).toEqual(["Hello,\r\nthis is a small fixed test body.\r\nBye.\r\n"]);
});

test("mbox From line skipped, LF line ends, folded headers joined with LF, raw value kept", () => {
  const m = parseMailFile(
    Buffer.from("From sender@example.com Mon Jan  1 00:00:00 2024\nFrom: \"A, B\" <a@example.com>\nX-Folded: first\n\tsecond\n  third\nTo:nospace@example.org\n\nline\n", "latin1"),
  );
  expect(m.from).toBe("a@example.com");
  expect(m.recipients).toEqual(["nospace@example.org"]);
  expect(m.headers).toEqual([
    { name: "From", raw: ' "A, B" <a@example.com>' },
    { name: "X-Folded", raw: " first\n\tsecond\n  third" },
    { name: "To", raw: "nospace@example.org" },
  ]);
  expect(m.bodyChunks.map(text)).toEqual(["line\n"]);
});

test("no body, no separator, 8-bit bytes kept", () => {
  const m = parseMailFile(Buffer.from([...Buffer.from("Subject: caf"), 0xe9, 0x0d, 0x0a]));
  expect(m.headers).toEqual([{ name: "Subject", raw: " caf\u00e9" }]);
  expect(m.bodyChunks).toEqual([]);
  expect(m.from).toBeUndefined();
});

test("a line that is not a header field starts the body", () => {
  const m = parseMailFile(Buffer.from("Subject: x\r\nnot a header\r\nmore\r\n"));
  expect(m.headers).toEqual([{ name: "Subject", raw: " x" }]);
  expect(m.bodyChunks.map(text)).toEqual(["not a header\r\nmore\r\n"]);
});

test("body chunks of at most 65535 bytes, cut at line boundaries", () => {
  const line = "x".repeat(998) + "\r\n"; // 1000 bytes
  const body = line.repeat(200); // 200 000 bytes
  const m = parseMailFile(Buffer.from(`Subject: big\r\n\r\n${body}`));
  expect(m.bodyChunks.map((c) => c.length)).toEqual([65000, 65000, 65000, 5000]);
  expect(m.bodyChunks.map(text).join("")).toBe(body);
  for (const c of m.bodyChunks) expect(text(c).endsWith("\r\n")).toBe(true);
});

test("splitLines: a line longer than the limit is cut", () => {
  const chunks = splitLines(Buffer.from("ab\nccccccc\nd"), 4);
  expect(chunks.map(text)).toEqual(["ab\n", "cccc", "ccc\n", "d"]);
  expect(splitLines(new Uint8Array(0), 4)).toEqual([]);
});

test("extractAddress", () => {
  expect(extractAddress(" Bob <bob@example.org> ")).toBe("bob@example.org");
  expect(extractAddress(" bob@example.org ")).toBe("bob@example.org");
  expect(extractAddress("<>")).toBe("");
});
