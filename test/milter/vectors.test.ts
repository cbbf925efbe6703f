/**
 * Every vector of test/fixtures/protocol-vectors.json (built by
 * shared/vectors/make-vectors.py from captured Postfix/libmilter bytes), both
 * ways: bytes → reader (random pieces) → exactly one packet → decoder →
 * compared with `meaning`; `meaning` → encoder → compared byte-exact with `hex`.
 *
 * Regenerating the fixture (the JSON is not shipped in shared/; the script
 * writes it next to itself and looks for captures/ one level up):
 *   T=$(mktemp -d); mkdir $T/vectors; cp ../shared/vectors/make-vectors.py $T/vectors/
 *   cp -r ../shared/captures $T/; (cd $T/vectors && python3 make-vectors.py)
 *   cp $T/vectors/protocol-vectors.json test/fixtures/
 */
import { describe, expect, test } from "bun:test";
import {
  ACTION_FLAGS,
  PROTOCOL_FLAGS,
  PacketReader,
  commandName,
  decodeCommand,
  decodeReply,
  encodeCommand,
  encodeReply,
  flagNames,
  replyName,
  replyType,
  type MilterReply,
  type MtaCommand,
} from "../../src/milter/index.ts";
import { fromHex, hex, prng, randomPieces, vectors, type Vector } from "./helpers.ts";

const SEED = 0x5eed01;

/** Build the typed command a vector's `meaning` describes. */
function commandFromMeaning(m: Vector["meaning"]): MtaCommand {
  const s = (k: string) => m[k] as string;
  switch (m.code) {
    case "O":
      return { type: "optneg", version: m.version as number, actions: parseInt(s("actions"), 16), protocol: parseInt(s("protocol"), 16) };
    case "D":
      return { type: "macro", command: s("for_command"), macros: new Map(Object.entries(m.macros as Record<string, string>)) };
    case "C":
      return m.family === "U"
        ? { type: "connect", hostname: s("hostname"), family: "U" }
        : { type: "connect", hostname: s("hostname"), family: s("family") as "4" | "6" | "L", port: m.port as number, address: s("address") };
    case "H":
      return { type: "helo", hostname: s("argument") };
    case "M":
      return { type: "mail", address: s("address"), args: m.esmtp_args as string[] };
    case "R":
      return { type: "rcpt", address: s("address"), args: m.esmtp_args as string[] };
    case "T":
      return { type: "data" };
    case "L":
      return { type: "header", name: s("name"), value: s("value") };
    case "N":
      return { type: "eoh" };
    case "B":
      return { type: "body", chunk: Buffer.from(s("chunk"), "latin1") };
    case "E":
      return { type: "eob" };
    case "A":
      return { type: "abort" };
    case "Q":
      return { type: "quit" };
    case "K":
      return { type: "quit_nc" };
    case "U":
      return { type: "unknown", commandLine: s("command_line") };
  }
  throw new Error(`vector command ${m.code} not mapped`);
}

/** Build the typed reply a vector's `meaning` describes. */
function replyFromMeaning(m: Vector["meaning"]): MilterReply {
  const s = (k: string) => m[k] as string;
  switch (m.code) {
    case "O": {
      const r: MilterReply = { type: "optneg", version: m.version as number, actions: parseInt(s("actions"), 16), protocol: parseInt(s("protocol"), 16) };
      const lists = m.macro_lists as { stage: number; macros: string }[] | undefined;
      if (lists) r.macroLists = lists.map((l) => ({ stage: l.stage, macros: l.macros }));
      return r;
    }
    case "y":
      return { type: "replycode", text: s("reply") };
    case "h":
      return { type: "addheader", name: s("name"), value: s("value") };
    case "i":
      return { type: "insheader", index: m.index as number, name: s("name"), value: s("value") };
    case "m":
      return { type: "chgheader", index: m.index as number, name: s("name"), value: s("value") };
    case "b":
      return { type: "replbody", chunk: Buffer.from(s("chunk"), "latin1") };
    case "+":
      return { type: "addrcpt", address: s("address") };
    case "-":
      return { type: "delrcpt", address: s("address") };
    case "2":
      return m.esmtp_args === undefined ? { type: "addrcpt_par", address: s("address") } : { type: "addrcpt_par", address: s("address"), args: s("esmtp_args") };
    case "e":
      return m.esmtp_args === undefined ? { type: "chgfrom", address: s("address") } : { type: "chgfrom", address: s("address"), args: s("esmtp_args") };
    case "q":
      return { type: "quarantine", reason: s("reason") };
    case "l":
      return { type: "setsymlist", stage: m.stage as number, macros: s("macros") };
  }
  const t = replyType(m.code.charCodeAt(0));
  if (t === undefined) throw new Error(`vector reply ${m.code} not mapped`);
  return { type: t } as MilterReply;
}

/** Byte chunks compare as plain bytes (decoders return Buffers). */
function normalize<T>(v: T): T {
  if (v instanceof Uint8Array) return new Uint8Array(v) as T;
  if (v instanceof Map) return new Map([...v].map(([k, x]) => [k, normalize(x)])) as T;
  if (Array.isArray(v)) return v.map(normalize) as T;
  if (v && typeof v === "object") return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, normalize(x)])) as T;
  return v;
}

test("fixture has all 59 vectors (31 MTA→milter, 28 milter→MTA)", () => {
  expect(vectors.length).toBe(59);
  expect(vectors.filter((v) => v.direction === "mta-to-milter").length).toBe(31);
  expect(vectors.filter((v) => v.direction === "milter-to-mta").length).toBe(28);
});

describe.each(vectors.map((v) => [v.name, v] as const))("%s", (_name, v) => {
  const bytes = fromHex(v.hex);
  const code = v.meaning.code.charCodeAt(0);
  const toMta = v.direction === "mta-to-milter";
  const expected = toMta ? commandFromMeaning(v.meaning) : replyFromMeaning(v.meaning);

  test("reader: random pieces give exactly one packet", () => {
    const rand = prng(SEED ^ bytes.length);
    for (const maxPiece of [1, 2, 3, 7, 64, bytes.length]) {
      const reader = new PacketReader();
      const got: [number, string][] = [];
      for (const piece of randomPieces(bytes, rand, maxPiece)) reader.push(piece, (c, p) => got.push([c, hex(p)]));
      reader.finish();
      expect(got).toEqual([[code, v.hex.slice(10)]]);
    }
  });

  test("decode matches meaning", () => {
    const reader = new PacketReader();
    let decoded: MtaCommand | MilterReply | undefined;
    reader.push(bytes, (c, p) => {
      decoded = toMta ? decodeCommand(c, p) : decodeReply(c, p);
    });
    expect(normalize(decoded)).toEqual(normalize(expected));
    // The mfdef.h name agrees with the vector's.
    expect((toMta ? commandName(code) : replyName(code)).split(" ")[0]).toBe(v.meaning.command);
    if (v.meaning.code === "O") {
      const o = decoded as { actions: number; protocol: number };
      expect(flagNames(o.actions, ACTION_FLAGS)).toEqual(v.meaning.action_flags as string[]);
      expect(flagNames(o.protocol, PROTOCOL_FLAGS)).toEqual(v.meaning.protocol_flags as string[]);
    }
  });

  test("encode of meaning is byte-exact", () => {
    const out = toMta ? encodeCommand(expected as MtaCommand) : encodeReply(expected as MilterReply);
    expect(hex(out)).toBe(v.hex);
  });
});
