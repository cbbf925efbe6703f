import { describe, expect, test } from "bun:test";
import { ehloKeywords, ehloOffers, type Reply, ReplyParser, ReplySyntaxError, replyText } from "../../src/smtp/reply.ts";

// As plain objects: a one-line reply reads its text on demand.
const plain = (r: Reply) => ({ code: r.code, lines: r.lines });

function parseRaw(chunks: string[]): Reply[] {
  const p = new ReplyParser();
  const out: Reply[] = [];
  for (const c of chunks) p.push(c, (r) => out.push(r));
  return out;
}

function parseAll(chunks: string[]): Reply[] {
  const p = new ReplyParser();
  const out: Reply[] = [];
  for (const c of chunks) p.push(c, (r) => out.push(plain(r)));
  return out;
}

describe("ReplyParser", () => {
  const ehlo = "250-smtp-sink\r\n250-PIPELINING\r\n250-8BITMIME\r\n250 \r\n";
  test("single and multi-line replies in one chunk", () => {
    const rs = parseAll(["220 smtp-sink ESMTP\r\n" + ehlo + "354 go\r\n"]);
    expect(rs.map((r) => r.code)).toEqual([220, 250, 354]);
    expect(rs[1].lines).toEqual(["250-smtp-sink", "250-PIPELINING", "250-8BITMIME", "250 "]);
    expect([...ehloKeywords(rs[1])]).toEqual(["PIPELINING", "8BITMIME"]);
  });
  test("any split of the byte stream gives the same replies", () => {
    const text = "220 hi\r\n" + ehlo + "250 2.1.0 Ok\r\n550 5.1.1 no\n";
    const whole = parseAll([text]);
    for (let size = 1; size <= 7; size++) {
      const chunks: string[] = [];
      for (let i = 0; i < text.length; i += size) chunks.push(text.slice(i, i + size));
      expect(parseAll(chunks)).toEqual(whole);
    }
    expect(whole.map((r) => r.code)).toEqual([220, 250, 250, 550]);
  });
  test("bytes in any split, 8-bit text kept as latin1", () => {
    const bytes = Buffer.from("250-caf\xe9\r\n250 ok\r\n554 5.7.1 \xff\r\n", "latin1");
    for (let size = 1; size <= 5; size++) {
      const p = new ReplyParser();
      const out: Reply[] = [];
      for (let i = 0; i < bytes.length; i += size) p.push(new Uint8Array(bytes.subarray(i, i + size)), (r) => out.push(plain(r)));
      expect(out).toEqual([{ code: 250, lines: ["250-caf\xe9", "250 ok"] }, { code: 554, lines: ["554 5.7.1 \xff"] }]);
    }
  });
  test("a line longer than 64 KiB without its end is an error, not a growing buffer", () => {
    const p = new ReplyParser();
    expect(() => p.push(Buffer.alloc(70 * 1024, 0x32), () => {})).toThrow(ReplySyntaxError);
  });
  test("a bare code line and LF-only line ends", () => {
    expect(parseAll(["250\n"])).toEqual([{ code: 250, lines: ["250"] }]);
  });
  test("malformed line throws with the line", () => {
    expect(() => parseAll(["hello\r\n"])).toThrow(ReplySyntaxError);
    expect(() => parseAll(["hello\r\n"])).toThrow('"hello"');
  });
  test("replyText joins continuation lines like Postfix prints them", () => {
    expect(replyText({ code: 450, lines: ["450 4.3.0 Error: command failed"] })).toBe("450 4.3.0 Error: command failed");
    expect(replyText({ code: 550, lines: ["550-first", "550 second"] })).toBe("550-first second");
  });
});

describe("ehloOffers", () => {
  const parsed = (text: string) => parseRaw([text])[0];
  test("finds a keyword in any case, only as a whole word, never in the greeting line", () => {
    const r = parsed("250-PIPELINING smtp-sink\r\n250-8BITMIME\r\n250-starttls\r\n250-AUTH PLAIN\r\n250 PIPELININGX\r\n");
    expect(ehloOffers(r, "STARTTLS")).toBe(true);
    expect(ehloOffers(r, "8BITMIME")).toBe(true);
    expect(ehloOffers(r, "AUTH")).toBe(true);
    expect(ehloOffers(r, "PLAIN")).toBe(false);
    expect(ehloOffers(r, "PIPELINING")).toBe(false);
    expect(ehloOffers(parsed("250-x\n250 PIPELINING\n"), "PIPELINING")).toBe(true);
    expect(ehloOffers(parsed("250 PIPELINING\r\n"), "PIPELINING")).toBe(false);
  });
  test("agrees with ehloKeywords, in any split of the bytes", () => {
    const text = "250-smtp-sink\r\n250-PIPELINING\r\n250-8BITMIME\r\n250-  dsn \r\n250 STARTTLS\r\n";
    for (let size = 1; size <= 9; size++) {
      const chunks: string[] = [];
      for (let i = 0; i < text.length; i += size) chunks.push(text.slice(i, i + size));
      const r = parseRaw(chunks)[0];
      const kws = ehloKeywords(r);
      expect([...kws]).toEqual(["PIPELINING", "8BITMIME", "DSN", "STARTTLS"]);
      for (const k of ["PIPELINING", "8BITMIME", "DSN", "STARTTLS", "SMTPUTF8"]) expect(ehloOffers(r, k)).toBe(kws.has(k));
    }
  });
});

describe("ReplyParser bounds", () => {
  test("a multi-line reply longer than 64 KiB without its last line is an error", () => {
    const p = new ReplyParser();
    const line = Buffer.from("250-" + "x".repeat(1000) + "\r\n", "latin1");
    expect(() => { for (let i = 0; i < 100; i++) p.push(line, () => {}); }).toThrow(ReplySyntaxError);
  });
});
