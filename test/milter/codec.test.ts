/**
 * Decoders and encoders: strict validation with typed errors, batch encoding,
 * body splitting, 8-bit safety, and a whole session in both directions fed
 * through the reader in 1-byte pieces, random pieces and one merged chunk.
 */
import { describe, expect, test } from "bun:test";
import {
  MILTER_MDS_256K,
  MilterProtocolError,
  PacketReader,
  SMFIC_BODYEOB,
  bodyCommands,
  decodeCommand,
  decodeCommands,
  decodeReply,
  decodeReplies,
  encodeCommand,
  encodeCommands,
  encodePacket,
  encodeReplies,
  encodeReply,
  isDecision,
  isModification,
  replaceBodyReplies,
  splitBody,
  stripAngleBrackets,
  type MilterProtocolErrorKind,
  type MilterReply,
  type MtaCommand,
} from "../../src/milter/index.ts";
import { fromHex, hex, prng, randomPieces } from "./helpers.ts";

function protocolError(fn: () => unknown): MilterProtocolError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(MilterProtocolError);
    return e as MilterProtocolError;
  }
  throw new Error("expected a MilterProtocolError, nothing was thrown");
}

const cmd = (letter: string, dataHex = "") => () => decodeCommand(letter.charCodeAt(0), fromHex(dataHex));
const rep = (letter: string, dataHex = "") => () => decodeReply(letter.charCodeAt(0), fromHex(dataHex));
const ascii = (s: string) => Buffer.from(s, "latin1").toString("hex");

/** Byte chunks compare as plain bytes. */
function normalize<T>(v: T): T {
  if (v instanceof Uint8Array) return new Uint8Array(v) as T;
  if (v instanceof Map) return new Map([...v].map(([k, x]) => [k, normalize(x)])) as T;
  if (Array.isArray(v)) return v.map(normalize) as T;
  if (v && typeof v === "object") return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, normalize(x)])) as T;
  return v;
}

describe("decodeCommand rejects malformed packets", () => {
  const cases: [string, () => unknown, MilterProtocolErrorKind, string][] = [
    ["O with 11 bytes", cmd("O", "000000060000 01ff001fff"), "malformed", "expected 12 data bytes, got 11"],
    ["O with 13 bytes", cmd("O", "00000006000001ff001fffff00"), "malformed", "got 13"],
    ["D without command byte", cmd("D"), "malformed", "missing the command byte"],
    ["D without final NUL", cmd("D", "43" + ascii("j\0x")), "malformed", "not NUL-terminated"],
    ["D name without value", cmd("D", "43" + ascii("j\0v\0i\0")), "malformed", 'macro "i" has no value'],
    ["C host without NUL", cmd("C", ascii("localhost")), "malformed", "host name is not NUL-terminated"],
    ["C without family", cmd("C", ascii("localhost\0")), "malformed", "missing address family"],
    ["C with bad family", cmd("C", ascii("localhost\0X")), "malformed", "unknown address family 'X'"],
    ["C 'U' with trailing bytes", cmd("C", ascii("localhost\0U") + "00"), "malformed", "trailing byte(s) after family 'U'"],
    ["C '4' without port", cmd("C", ascii("h\0") + "3400"), "malformed", "missing port"],
    ["C '4' address without NUL", cmd("C", ascii("h\0") + "340019" + ascii("1.2.3.4")), "malformed", "address is not NUL-terminated"],
    ["C '4' trailing after address", cmd("C", ascii("h\0") + "340019" + ascii("1.2.3.4\0x")), "malformed", "trailing byte(s) after address"],
    ["C '6' without address", cmd("C", ascii("h\0") + "360019"), "malformed", "missing address"],
    ["H empty", cmd("H"), "malformed", "missing HELO argument"],
    ["H without NUL", cmd("H", ascii("client")), "malformed", "not NUL-terminated"],
    ["H with two strings", cmd("H", ascii("a\0b\0")), "malformed", "trailing byte(s) after HELO argument"],
    ["M empty", cmd("M"), "malformed", "missing address"],
    ["M without final NUL", cmd("M", ascii("<a>\0SIZE=1")), "malformed", "not NUL-terminated"],
    ["R without NUL", cmd("R", ascii("<a>")), "malformed", "not NUL-terminated"],
    ["L with name only", cmd("L", ascii("Subject\0")), "malformed", "missing header value"],
    ["L without NUL", cmd("L", ascii("Subject")), "malformed", "header name is not NUL-terminated"],
    ["L with three strings", cmd("L", ascii("a\0b\0c\0")), "malformed", "trailing byte(s) after header value"],
    ["B empty", cmd("B"), "malformed", "empty body chunk"],
    ["U without NUL", cmd("U", ascii("XFOO")), "malformed", "not NUL-terminated"],
    ["T with data", cmd("T", "00"), "malformed", "unexpected 1 data byte(s)"],
    ["N with data", cmd("N", "0000"), "malformed", "unexpected 2 data byte(s)"],
    ["A with data", cmd("A", "41"), "malformed", "unexpected"],
    ["Q with data", cmd("Q", "51"), "malformed", "unexpected"],
    ["K with data", cmd("K", "4b"), "malformed", "unexpected"],
    ["reply letter 'c' as a command", cmd("c"), "unknown-command", "unknown command 'c'"],
    ["byte 0x00", () => decodeCommand(0, new Uint8Array(0)), "unknown-command", "unknown command 0x00"],
  ];
  test.each(cases)("%s", (_name, fn, kind, text) => {
    const e = protocolError(fn);
    expect(e.kind).toBe(kind);
    expect(e.message).toContain(text);
  });

  test("messages name the packet and show the data", () => {
    const e = protocolError(cmd("C", ascii("localhost\0X")));
    expect(e.message).toBe("SMFIC_CONNECT ('C'): unknown address family 'X'; data 6c6f63616c686f73740058 (11 bytes)");
    expect(e.code).toBe(0x43);
  });
});

describe("decodeReply rejects malformed packets", () => {
  const cases: [string, () => unknown, MilterProtocolErrorKind, string][] = [
    // Negative vector: `00000002 63 00` (c + 1 byte) → Postfix "followed by … data bytes".
    ["c + 1 byte (negative vector)", rep("c", "00"), "malformed", "unexpected 1 data byte(s) after a packet without data"],
    ["a + data", rep("a", "0000"), "malformed", "unexpected 2 data byte(s)"],
    ["d r t s p 4 f + data", rep("4", "20"), "malformed", "unexpected 1"],
    ["O with 8 bytes", rep("O", "0000000600000000"), "malformed", "expected at least 12 data bytes, got 8"],
    ["O with 3 bytes after the words", rep("O", "00000006000001ff00000000000000"), "malformed", "truncated macro list at offset 12"],
    ["O list without NUL", rep("O", "00000006000001ff0000000000000000" + ascii("j")), "malformed", "macro list for stage 0 is not NUL-terminated"],
    ["y without NUL", rep("y", ascii("550 5.7.1 no")), "malformed", "reply text is not NUL-terminated"],
    ["y with two strings", rep("y", ascii("550 x\0y\0")), "malformed", "trailing"],
    ["y empty", rep("y"), "malformed", "missing reply text"],
    ["h with one string", rep("h", ascii("X-A\0")), "malformed", "missing header value"],
    ["i with 3 bytes", rep("i", "000000"), "malformed", "missing header index"],
    ["m without value", rep("m", "00000001" + ascii("Subject\0")), "malformed", "missing header value"],
    ["+ without NUL", rep("+", ascii("<a>")), "malformed", "not NUL-terminated"],
    ["- with trailing bytes", rep("-", ascii("<a>\0x")), "malformed", "trailing"],
    ["e empty", rep("e"), "malformed", "missing address"],
    ["e with three strings", rep("e", ascii("<a>\0X=1\0Y=2\0")), "malformed", "got 3 strings"],
    ["2 without final NUL", rep("2", ascii("<a>\0X")), "malformed", "not NUL-terminated"],
    ["q without NUL", rep("q", ascii("why")), "malformed", "not NUL-terminated"],
    ["l with 2 bytes", rep("l", "0000"), "malformed", "missing stage"],
    ["command letter 'C' as a reply", rep("C"), "unknown-command", "unknown reply 'C'"],
  ];
  test.each(cases)("%s", (_name, fn, kind, text) => {
    const e = protocolError(fn);
    expect(e.kind).toBe(kind);
    expect(e.message).toContain(text);
  });
});

describe("other negative vectors as decoded values", () => {
  test("h is a modification (Postfix refuses it after H; the MTA side checks the stage)", () => {
    const r = decodeReplies(fromHex("0000000768582d41007600"));
    expect(r).toEqual([{ type: "addheader", name: "X-A", value: "v" }]);
    expect(isModification(r[0])).toBe(true);
    expect(isDecision(r[0])).toBe(false);
  });
  test("f decodes as conn_fail, which is not a decision", () => {
    const [r] = decodeReplies(fromHex("0000000166"));
    expect(r).toEqual({ type: "conn_fail" });
    expect(isDecision(r)).toBe(false);
  });
  test("4 decodes as shutdown, a decision", () => {
    const [r] = decodeReplies(fromHex("0000000134"));
    expect(r).toEqual({ type: "shutdown" });
    expect(isDecision(r)).toBe(true);
  });
});

describe("decoding details", () => {
  test("E with data is accepted (libmilter does); empty E has no chunk", () => {
    expect(decodeCommand(SMFIC_BODYEOB, new Uint8Array(0))).toEqual({ type: "eob" });
    const e = decodeCommand(SMFIC_BODYEOB, fromHex("0d0a"));
    expect(e.type).toBe("eob");
    expect(hex((e as { chunk: Uint8Array }).chunk)).toBe("0d0a");
  });

  test("decoded values own their bytes (no alias into the reader's buffer)", () => {
    const bytes = fromHex("000000054248690d0a");
    const [b] = decodeCommands(bytes);
    bytes.fill(0);
    expect(hex((b as { chunk: Uint8Array }).chunk)).toBe("48690d0a");
  });

  test("D for stages without a libmilter slot (L, B, U) and with zero pairs decode", () => {
    for (const s of ["L", "B", "U", "H"]) {
      expect(decodeCommand(0x44, Buffer.from(s))).toEqual({ type: "macro", command: s, macros: new Map() });
    }
  });

  test("empty strings are fine: empty host, empty header value, empty macro value, empty ESMTP arg", () => {
    expect(decodeCommand(0x43, fromHex("0055"))).toEqual({ type: "connect", hostname: "", family: "U" });
    expect(decodeCommand(0x4c, Buffer.from("X\0\0", "latin1"))).toEqual({ type: "header", name: "X", value: "" });
    expect(decodeCommand(0x44, Buffer.from("M{mail_addr}\0\0", "latin1"))).toEqual({
      type: "macro",
      command: "M",
      macros: new Map([["{mail_addr}", ""]]),
    });
    expect(decodeCommand(0x4d, Buffer.from("<>\0\0", "latin1"))).toEqual({ type: "mail", address: "<>", args: [""] });
  });

  test("all 255 non-NUL byte values survive as latin1 strings, and all 256 in bodies", () => {
    const all = Buffer.alloc(255);
    for (let i = 0; i < 255; i++) all[i] = i + 1;
    const value = all.toString("latin1");
    const packet = encodeCommand({ type: "header", name: "X-Bytes", value });
    expect(hex(packet.subarray(5 + 8, 5 + 8 + 255))).toBe(hex(all));
    const back = decodeCommand(0x4c, packet.subarray(5)) as { value: string };
    expect(back.value).toBe(value);
    expect([...back.value].map((c) => c.charCodeAt(0))).toEqual([...all]);

    const body = Buffer.alloc(256);
    for (let i = 0; i < 256; i++) body[i] = i;
    const [b] = decodeCommands(encodeCommand({ type: "body", chunk: body }));
    expect(hex((b as { chunk: Uint8Array }).chunk)).toBe(hex(body));
  });

  test("decodeCommands/decodeReplies report truncation", () => {
    expect(protocolError(() => decodeCommands(fromHex("0000001448636c69"))).kind).toBe("truncated");
    expect(protocolError(() => decodeReplies(fromHex("00000001"))).kind).toBe("truncated");
  });
});

describe("encoders refuse values that cannot go on the wire", () => {
  const cases: [string, () => unknown, MilterProtocolErrorKind, string][] = [
    ["NUL in a header value", () => encodeCommand({ type: "header", name: "X", value: "a\0b" }), "malformed", "contains a NUL byte"],
    ["character above U+00FF", () => encodeCommand({ type: "helo", hostname: "h€llo" }), "malformed", "above U+00FF"],
    ["empty body chunk", () => encodeCommand({ type: "body", chunk: new Uint8Array(0) }), "malformed", "empty body chunk"],
    ["port out of range", () => encodeCommand({ type: "connect", hostname: "h", family: "4", port: 70000, address: "1.2.3.4" }), "malformed", "port 70000"],
    ["bad family", () => encodeCommand({ type: "connect", hostname: "h", family: "X" as "4", port: 1, address: "a" }), "malformed", "unknown family"],
    ["macro command of two letters", () => encodeCommand({ type: "macro", command: "CH", macros: new Map() }), "malformed", "not one latin1 character"],
    ["negative header index", () => encodeReply({ type: "chgheader", index: -1, name: "X", value: "" }), "malformed", "index -1 is not a u32"],
    ["fractional version", () => encodeReply({ type: "optneg", version: 6.5, actions: 0, protocol: 0 }), "malformed", "version 6.5"],
    ["unknown reply type", () => encodeReply({ type: "bogus" } as unknown as MilterReply), "malformed", 'unknown reply type "bogus"'],
    ["unknown command type", () => encodeCommands([{ type: "bogus" } as unknown as MtaCommand]), "malformed", 'unknown command type "bogus"'],
    ["NUL in a macro list", () => encodeReply({ type: "optneg", version: 6, actions: 0, protocol: 0, macroLists: [{ stage: 0, macros: "j\0" }] }), "malformed", "NUL"],
    ["header over 65535 data bytes", () => encodeCommand({ type: "header", name: "X", value: "v".repeat(65534) }), "oversize", "65537 data bytes"],
    ["body chunk over the max", () => encodeReplies([{ type: "replbody", chunk: new Uint8Array(65536) }]), "oversize", "the maximum data size is 65535"],
  ];
  test.each(cases)("%s", (_name, fn, kind, text) => {
    const e = protocolError(fn);
    expect(e.kind).toBe(kind);
    expect(e.message).toContain(text);
  });

  test("a larger negotiated max lets bigger packets through", () => {
    const b = encodeReply({ type: "replbody", chunk: new Uint8Array(65536) }, MILTER_MDS_256K);
    expect(b.length).toBe(65541);
    expect(hex(b.subarray(0, 5))).toBe("0001000162");
  });
});

describe("batches and bodies", () => {
  test("encodeCommands puts macros + command into one buffer equal to the single encodings", () => {
    const step: MtaCommand[] = [
      { type: "macro", command: "H", macros: new Map() },
      { type: "helo", hostname: "client.example.org" },
    ];
    const batch = encodeCommands(step);
    expect(hex(batch)).toBe("000000024448" + "0000001448636c69656e742e6578616d706c652e6f726700");
    expect(hex(batch)).toBe(step.map((c) => hex(encodeCommand(c))).join(""));
  });

  test("encodeReplies of an empty list is an empty buffer", () => {
    expect(encodeReplies([]).length).toBe(0);
  });

  test("splitBody: never empty, at most max bytes, views of the input", () => {
    expect(splitBody(new Uint8Array(0))).toEqual([]);
    expect(splitBody(new Uint8Array(65535)).map((c) => c.length)).toEqual([65535]);
    expect(splitBody(new Uint8Array(65536)).map((c) => c.length)).toEqual([65535, 1]);
    const mib = new Uint8Array(1 << 20);
    const chunks = splitBody(mib, 65536);
    expect(chunks.length).toBe(16);
    expect(chunks.every((c) => c.length === 65536 && c.buffer === mib.buffer)).toBe(true);
    expect(splitBody(new Uint8Array(10), 3).map((c) => c.length)).toEqual([3, 3, 3, 1]);
    expect(() => splitBody(new Uint8Array(1), 0)).toThrow(RangeError);
  });

  test("bodyCommands and replaceBodyReplies", () => {
    const body = Buffer.alloc(150000, 0x61);
    const cmds = bodyCommands(body);
    expect(cmds.map((c) => c.chunk.length)).toEqual([65535, 65535, 18930]);
    expect(bodyCommands(new Uint8Array(0))).toEqual([]);
    expect(replaceBodyReplies(body).map((r) => r.chunk.length)).toEqual([65535, 65535, 18930]);
    // An empty replacement still has to say "replace": one empty `b`.
    const empty = replaceBodyReplies(new Uint8Array(0));
    expect(empty.length).toBe(1);
    expect(hex(encodeReplies(empty))).toBe("0000000162");
    expect(decodeReplies(encodeReplies(empty))).toEqual([{ type: "replbody", chunk: Buffer.alloc(0) }]);
  });

  test("E with a chunk encodes (for tests of milters that accept it)", () => {
    expect(hex(encodeCommand({ type: "eob", chunk: Buffer.from("x") }))).toBe("000000024578");
  });

  test("encodePacket writes raw bytes without checks", () => {
    expect(hex(encodePacket(0x63, Uint8Array.of(0)))).toBe("000000026300");
    expect(hex(encodePacket(0x5a))).toBe("000000015a");
  });

  test("stripAngleBrackets", () => {
    expect(stripAngleBrackets("<a@example.com>")).toBe("a@example.com");
    expect(stripAngleBrackets("<>")).toBe("");
    expect(stripAngleBrackets("a@example.com")).toBe("a@example.com");
    expect(stripAngleBrackets("<a")).toBe("<a");
  });
});

describe("a full session", () => {
  const m = (record: Record<string, string>) => new Map(Object.entries(record));
  const i = "3300A21403C";
  const commands: MtaCommand[] = [
    { type: "optneg", version: 6, actions: 0x1ff, protocol: 0x1fffff },
    { type: "macro", command: "C", macros: m({ j: "mta.example.test", "{daemon_name}": "mta.example.test", "{daemon_addr}": "127.0.0.1", v: "Postfix 3.7.11", _: "localhost [127.0.0.1]" }) },
    { type: "connect", hostname: "localhost", family: "4", port: 41578, address: "127.0.0.1" },
    { type: "macro", command: "H", macros: m({}) },
    { type: "helo", hostname: "client.example.org" },
    { type: "macro", command: "M", macros: m({ "{mail_addr}": "sender@example.com", "{mail_host}": "example.com", "{mail_mailer}": "discard" }) },
    { type: "mail", address: "<sender@example.com>", args: ["SIZE=2048", "BODY=8BITMIME"] },
    { type: "macro", command: "R", macros: m({ "{rcpt_addr}": "rcpt@example.net", "{rcpt_host}": "example.net", "{rcpt_mailer}": "discard" }) },
    { type: "rcpt", address: "<rcpt@example.net>", args: [] },
    { type: "macro", command: "T", macros: m({ i }) },
    { type: "data" },
    { type: "macro", command: "L", macros: m({ i }) },
    { type: "header", name: "From", value: "Sender <sender@example.com>" },
    { type: "macro", command: "L", macros: m({ i }) },
    { type: "header", name: "Subject", value: "caf\xe9 \xff" },
    { type: "macro", command: "L", macros: m({ i }) },
    { type: "header", name: "X-Folded", value: "first part\n\tsecond part" },
    { type: "macro", command: "N", macros: m({ i }) },
    { type: "eoh" },
    { type: "macro", command: "B", macros: m({ i }) },
    { type: "body", chunk: Buffer.from("Body line 1\r\n\r\n.dot line\r\n\x00\x80\xff\r\n", "latin1") },
    { type: "macro", command: "E", macros: m({ i }) },
    { type: "eob" },
    { type: "abort" },
    { type: "quit" },
  ];
  const replies: MilterReply[] = [
    { type: "optneg", version: 6, actions: 0x1ff, protocol: 0x400, macroLists: [{ stage: 0, macros: "{client_addr} j" }, { stage: 5, macros: "i" }] },
    { type: "continue" },
    { type: "continue" },
    { type: "progress" },
    { type: "continue" },
    { type: "continue" },
    { type: "addheader", name: "X-Added", value: "yes" },
    { type: "insheader", index: 0, name: "X-Top", value: "inserted" },
    { type: "chgheader", index: 1, name: "Subject", value: "new subject" },
    { type: "chgheader", index: 2, name: "X-Old", value: "" },
    { type: "replbody", chunk: Buffer.from("Hi\r\n") },
    { type: "replbody", chunk: Buffer.from("there\r\n") },
    { type: "addrcpt", address: "<extra@example.org>" },
    { type: "addrcpt_par", address: "<extra2@example.org>", args: "NOTIFY=NEVER" },
    { type: "delrcpt", address: "<rcpt@example.net>" },
    { type: "chgfrom", address: "<bounce@example.org>", args: "SIZE=1234" },
    { type: "chgfrom", address: "<plain@example.org>" },
    { type: "quarantine", reason: "suspicious" },
    { type: "replycode", text: "450-4.7.1 line one\r\n450 4.7.1 line two" },
    { type: "accept" },
  ];

  function feed<T>(bytes: Uint8Array, pieces: Uint8Array[], decode: (c: number, p: Uint8Array) => T): T[] {
    expect(pieces.reduce((n, p) => n + p.length, 0)).toBe(bytes.length);
    const reader = new PacketReader();
    const out: T[] = [];
    for (const piece of pieces) reader.push(piece, (c, p) => out.push(decode(c, p)));
    reader.finish();
    return out;
  }
  const oneByte = (b: Uint8Array) => Array.from({ length: b.length }, (_, k) => b.subarray(k, k + 1));

  test("MTA → milter stream: 1-byte pieces, random pieces and one chunk decode identically", () => {
    const bytes = encodeCommands(commands);
    expect(bytes.length).toBe(commands.reduce((n, c) => n + encodeCommand(c).length, 0));
    const a = feed(bytes, oneByte(bytes), decodeCommand);
    const b = feed(bytes, [bytes], decodeCommand);
    const c = feed(bytes, randomPieces(bytes, prng(42), 37), decodeCommand);
    expect(normalize(a)).toEqual(normalize(commands));
    expect(normalize(b)).toEqual(normalize(commands));
    expect(normalize(c)).toEqual(normalize(commands));
    expect(hex(encodeCommands(a))).toBe(hex(bytes));
  });

  test("milter → MTA stream: 1-byte pieces, random pieces and one chunk decode identically", () => {
    const bytes = encodeReplies(replies);
    const a = feed(bytes, oneByte(bytes), decodeReply);
    const b = feed(bytes, [bytes], decodeReply);
    const c = feed(bytes, randomPieces(bytes, prng(43), 11), decodeReply);
    expect(normalize(a)).toEqual(normalize(replies));
    expect(normalize(b)).toEqual(normalize(replies));
    expect(normalize(c)).toEqual(normalize(replies));
    expect(hex(encodeReplies(a))).toBe(hex(bytes));
  });
});
