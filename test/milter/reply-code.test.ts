/** SMTP reply text for 'y': building, %-escaping, parsing/validation, status agreement. */
import { describe, expect, test } from "bun:test";
import {
  MAX_REPLY_LINE,
  ReplyTextError,
  buildReplyText,
  decodeReplies,
  escapePercent,
  isShutdownCode,
  parseReplyText,
  replyCodeAgrees,
  replyCodeStatus,
  unescapePercent,
} from "../../src/milter/index.ts";
import { fromHex, vector } from "./helpers.ts";

const textOf = (id: string) => {
  const [r] = decodeReplies(fromHex(vector(id).hex));
  if (r.type !== "replycode") throw new Error(`${id} is not a y packet`);
  return r.text;
};

function parseError(text: string): string {
  const r = parseReplyText(text);
  if (r.ok) throw new Error(`expected ${JSON.stringify(text)} to be refused`);
  return r.error;
}

describe("buildReplyText", () => {
  test("single line equals R13", () => {
    expect(buildReplyText({ code: 554, enhanced: "5.7.0", lines: "Message rejected" })).toBe(textOf("R13"));
  });

  test("multi-line equals R14 (libmilter's smfi_setmlreply format)", () => {
    expect(buildReplyText({ code: 450, enhanced: "4.7.1", lines: ["line one", "line two", "line three"] })).toBe(textOf("R14"));
  });

  test("% is escaped as %% (R15); escape:false keeps the text", () => {
    expect(buildReplyText({ code: 550, enhanced: "5.7.1", lines: "100% sure" })).toBe(textOf("R15"));
    expect(buildReplyText({ code: 550, enhanced: "5.7.1", lines: "100%% sure" }, { escape: false })).toBe(textOf("R15"));
    expect(() => buildReplyText({ code: 550, lines: "50% off" }, { escape: false })).toThrow("lone '%'");
  });

  test("without enhanced code, and with empty text", () => {
    expect(buildReplyText({ code: 451, lines: "try later" })).toBe("451 try later");
    expect(buildReplyText({ code: 421, enhanced: "4.7.0", lines: "" })).toBe("421 4.7.0");
    expect(buildReplyText({ code: 451, lines: [] })).toBe("451 ");
  });

  const bad: [string, Parameters<typeof buildReplyText>[0], string][] = [
    ["2xx code", { code: 250, lines: "ok" }, "not a 4xx or 5xx"],
    ["non-integer code", { code: 55.5, lines: "x" }, "not a 4xx or 5xx"],
    ["enhanced class mismatch", { code: 550, enhanced: "4.7.1", lines: "x" }, "does not match reply code 550"],
    ["malformed enhanced code", { code: 550, enhanced: "5.7", lines: "x" }, "not of the form X.Y.Z"],
    ["CRLF inside a line", { code: 550, lines: "a\r\nb" }, "line 1 \"a\\r\\nb\" contains CR or LF"],
    ["LF inside a line", { code: 550, lines: ["ok", "a\nb"] }, "line 2 \"a\\nb\" contains CR or LF"],
    ["NUL", { code: 550, lines: "a\0b" }, "NUL"],
    ["33 lines", { code: 550, lines: Array.from({ length: 33 }, () => "x") }, "33 lines, at most 32"],
    ["line over 980 characters", { code: 550, lines: "x".repeat(MAX_REPLY_LINE - 3) }, "981 characters"],
    ["character above U+00FF", { code: 550, lines: "€" }, "above U+00FF"],
  ];
  test.each(bad)("refuses %s", (_name, input, message) => {
    let err: unknown;
    try {
      buildReplyText(input);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ReplyTextError);
    expect((err as Error).message).toContain(message);
  });

  test("32 lines of exactly 980 characters are fine", () => {
    const line = "x".repeat(MAX_REPLY_LINE - 4);
    const text = buildReplyText({ code: 550, lines: Array.from({ length: 32 }, () => line) });
    expect(text.split("\r\n").every((l) => l.length === MAX_REPLY_LINE)).toBe(true);
  });
});

describe("parseReplyText", () => {
  test("R13, R14, R15 parse, %% unescaped", () => {
    expect(parseReplyText(textOf("R13"))).toEqual({ ok: true, reply: { code: 554, enhanced: "5.7.0", lines: ["Message rejected"] } });
    expect(parseReplyText(textOf("R14"))).toEqual({
      ok: true,
      reply: { code: 450, enhanced: "4.7.1", lines: ["line one", "line two", "line three"] },
    });
    expect(parseReplyText(textOf("R15"))).toEqual({ ok: true, reply: { code: 550, enhanced: "5.7.1", lines: ["100% sure"] } });
  });

  test("enhanced code is optional", () => {
    expect(parseReplyText("451 try later")).toEqual({ ok: true, reply: { code: 451, lines: ["try later"] } });
  });

  test("build(parse(x)) gives x back", () => {
    for (const id of ["R13", "R14", "R15"]) {
      const r = parseReplyText(textOf(id));
      if (!r.ok) throw new Error(r.error);
      expect(buildReplyText(r.reply)).toBe(textOf(id));
    }
  });

  // Negative vectors: Postfix calls the first two "malformed reply" and shows the third as "50 off".
  test("y '250 2.0.0 fine' → first digit not 4/5", () => {
    expect(parseError("250 2.0.0 fine")).toContain("does not start with a 4xx/5xx code");
  });
  test("y '550 4.7.1 mismatch' → enhanced class mismatch", () => {
    expect(parseError("550 4.7.1 mismatch")).toContain("enhanced status code 4.7.1 on line 1 does not match reply code 550");
  });
  test("y '550 5.7.1 50% off' → lone %", () => {
    expect(parseError("550 5.7.1 50% off")).toContain("lone '%'");
  });

  const bad: [string, string, string][] = [
    ["empty", "", "empty"],
    ["two digits", "55 x", "4xx/5xx"],
    ["no separator", "550x", "4xx/5xx"],
    ["code only", "550", "4xx/5xx"],
    ["trailing CRLF", "550 x\r\n", "ends with CRLF"],
    ["bare LF separator", "550-a\n550 b", "bare CR or LF"],
    ["last line with '-'", "550-a\r\n550-b", "uses '-' instead of a space"],
    ["continuation with space", "550 a\r\n550 b", "uses a space instead of '-'"],
    ["different codes", "550-a\r\n554 b", "line 2 has code 554"],
    ["mismatch on line 2", "450-4.7.1 a\r\n450 5.7.1 b", "on line 2"],
    ["NUL", "550 a\0", "NUL"],
    ["33 lines", [...Array(32).fill("550-x"), "550 x"].join("\r\n"), "33 lines"],
    ["line too long", "550 " + "x".repeat(977), "981 characters"],
  ];
  test.each(bad)("refuses %s", (_name, text, message) => {
    expect(parseError(text)).toContain(message);
  });

  test("error messages quote the reply", () => {
    expect(parseError("250 ok")).toStartWith('reply "250 ok": ');
  });
});

describe("percent and status helpers", () => {
  test("escapePercent / unescapePercent", () => {
    expect(escapePercent("50% of 100%")).toBe("50%% of 100%%");
    expect(unescapePercent("50%% of 100%%")).toBe("50% of 100%");
    expect(unescapePercent(escapePercent("%%%"))).toBe("%%%");
  });

  test("replyCodeStatus / isShutdownCode / replyCodeAgrees", () => {
    expect(replyCodeStatus(451)).toBe("tempfail");
    expect(replyCodeStatus(554)).toBe("reject");
    expect(replyCodeStatus(250)).toBeUndefined();
    expect(isShutdownCode(421)).toBe(true);
    expect(isShutdownCode(451)).toBe(false);
    expect(replyCodeAgrees(451, "tempfail")).toBe(true);
    expect(replyCodeAgrees(421, "tempfail")).toBe(true);
    expect(replyCodeAgrees(550, "tempfail")).toBe(false);
    expect(replyCodeAgrees(550, "reject")).toBe(true);
    expect(replyCodeAgrees(451, "reject")).toBe(false);
    expect(replyCodeAgrees(421, "shutdown")).toBe(true);
    expect(replyCodeAgrees(451, "shutdown")).toBe(false);
  });
});
