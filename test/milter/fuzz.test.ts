/**
 * Fuzz: random and mutated inputs through PacketReader until at least
 * 1,000,000 packets have gone through both decoders. The only exception allowed is MilterProtocolError; every
 * packet that does decode must re-encode to the same bytes (for `D`, whose map
 * folds duplicate names, re-encoding must be stable instead).
 *
 * Reproduce a failure with the seed it prints:
 *   MILTER_FUZZ_SEED=<seed> bun test test/milter/fuzz.test.ts
 */
import { expect, test } from "bun:test";
import {
  COMMAND_CODE,
  MilterProtocolError,
  PacketReader,
  REPLY_CODE,
  decodeCommand,
  decodeReply,
  encodeCommand,
  encodePacket,
  encodeReply,
  type MilterReply,
  type MtaCommand,
} from "../../src/milter/index.ts";
import { fromHex, prng, vectors } from "./helpers.ts";

const SEED = Number(process.env.MILTER_FUZZ_SEED ?? Math.floor(Math.random() * 2 ** 32)) >>> 0;
/** Packets that must reach the decoders (many mutations break the framing first, so more are generated). */
const PACKETS = Number(process.env.MILTER_FUZZ_PACKETS ?? 1_000_000);
/** Hard bound on generated inputs. */
const MAX_ITERATIONS = PACKETS * 3;

/** Valid packets to mutate: every vector plus a few larger ones. */
function corpus(): Buffer[] {
  const out = vectors.map((v) => fromHex(v.hex));
  out.push(encodeCommand({ type: "body", chunk: Buffer.alloc(3000, 0x2e) }));
  out.push(
    encodeCommand({
      type: "macro",
      command: "M",
      macros: new Map([["{mail_addr}", "a@example.com"], ["i", "ABC"], ["{auth_type}", ""]]),
    }),
  );
  out.push(encodeReply({ type: "optneg", version: 6, actions: 0x1ff, protocol: 0, macroLists: [{ stage: 9, macros: "x y" }, { stage: 1, macros: "" }] }));
  return out;
}

const CODES = [...new Set([...Object.values(COMMAND_CODE), ...Object.values(REPLY_CODE)])];

test(`fuzz: ${PACKETS} mutated packets through the reader and both decoders (seed ${SEED})`, () => {
  const rand = prng(SEED);
  const int = (n: number) => Math.floor(rand() * n); // 0..n-1
  const base = corpus();
  const failures: string[] = [];
  let packets = 0;
  let decodedOk = 0;
  let protocolErrors = 0;

  const fail = (iteration: number, what: string, bytes: Uint8Array, e?: unknown) => {
    if (failures.length < 5) {
      failures.push(`iteration ${iteration}: ${what} for ${Buffer.from(bytes).toString("hex").slice(0, 200)}: ${e instanceof Error ? e.stack : String(e)}`);
    }
  };

  const sameBytes = (a: Uint8Array, code: number, payload: Uint8Array) =>
    a[4] === code && Buffer.compare(a.subarray(5), payload) === 0;

  function mutate(): Buffer {
    const src = base[int(base.length)];
    switch (int(8)) {
      case 0: {
        // bit flips anywhere, length word included
        const b = Buffer.from(src);
        for (let n = 1 + int(4); n > 0; n--) b[int(b.length)] ^= 1 << int(8);
        return b;
      }
      case 1:
        // truncation, length word untouched
        return src.subarray(0, int(src.length));
      case 2: {
        // truncated data, length word fixed up
        const b = Buffer.from(src.subarray(0, 5 + int(src.length - 4)));
        b.writeUInt32BE(b.length - 4, 0);
        return b;
      }
      case 3: {
        // length word changed: small delta, 0, just over the max, or random
        const b = Buffer.from(src);
        const r = int(4);
        const len = r === 0 ? b.readUInt32BE(0) + int(7) - 3 : r === 1 ? 0 : r === 2 ? 65536 + int(3) : int(2 ** 32);
        b.writeUInt32BE(len >>> 0, 0);
        return b;
      }
      case 4: {
        // another (or a random) code with this payload
        const b = Buffer.from(src);
        b[4] = int(2) ? CODES[int(CODES.length)] : int(256);
        return b;
      }
      case 5: {
        // random payload of random length with a known code, NULs likely
        const data = Buffer.allocUnsafe(int(48));
        for (let i = 0; i < data.length; i++) data[i] = int(3) === 0 ? 0 : int(256);
        return encodePacket(CODES[int(CODES.length)], data);
      }
      case 6: {
        // a byte inserted or removed inside the data, length word fixed up
        const data = Buffer.from(src.subarray(5));
        const at = int(data.length + 1);
        const next = int(2) && data.length > 0
          ? Buffer.concat([data.subarray(0, at), data.subarray(at + 1)])
          : Buffer.concat([data.subarray(0, at), Uint8Array.of(int(3) ? 0 : int(256)), data.subarray(at)]);
        return encodePacket(src[4], next);
      }
      default: {
        // splice: head of one packet's data + tail of another's, some code
        const other = base[int(base.length)];
        const a = src.subarray(5, 5 + int(src.length - 4));
        const b = other.subarray(5 + int(other.length - 4));
        return encodePacket(int(2) ? src[4] : other[4], Buffer.concat([a, b]));
      }
    }
  }

  let iteration = 0;
  let current: Uint8Array = new Uint8Array(0);
  const onPacket = (code: number, payload: Buffer) => {
    packets++;
    for (const side of [0, 1]) {
      try {
        if (side === 0) {
          const v: MtaCommand = decodeCommand(code, payload);
          const again = encodeCommand(v);
          if (!sameBytes(again, code, payload)) {
            const stable = encodeCommand(decodeCommand(code, again.subarray(5)));
            if (v.type !== "macro" || Buffer.compare(stable, again) !== 0) fail(iteration, "command round trip differs", current);
          }
        } else {
          const v: MilterReply = decodeReply(code, payload);
          const again = encodeReply(v);
          if (!sameBytes(again, code, payload)) fail(iteration, "reply round trip differs", current);
        }
        decodedOk++;
      } catch (e) {
        if (e instanceof MilterProtocolError) protocolErrors++;
        else fail(iteration, side === 0 ? "decodeCommand threw a non-protocol error" : "decodeReply threw a non-protocol error", current, e);
      }
    }
  };

  for (iteration = 0; packets < PACKETS && iteration < MAX_ITERATIONS; iteration++) {
    const reader = new PacketReader();
    let pieces: Uint8Array[];
    if (iteration % 8 === 0) {
      // a short stream of mutated packets, cut into random pieces
      current = Buffer.concat([mutate(), mutate(), mutate()]);
      pieces = [];
      for (let off = 0; off < current.length; ) {
        const n = 1 + int(24);
        pieces.push(current.subarray(off, off + n));
        off += n;
      }
    } else {
      current = mutate();
      pieces = [current];
    }
    try {
      for (const piece of pieces) reader.push(piece, onPacket);
      reader.finish();
    } catch (e) {
      if (e instanceof MilterProtocolError) protocolErrors++;
      else fail(iteration, "reader threw a non-protocol error", current, e);
    }
  }

  if (failures.length > 0) {
    console.error(`fuzz failed with MILTER_FUZZ_SEED=${SEED}\n${failures.join("\n")}`);
  }
  expect(failures).toEqual([]);
  expect(packets).toBeGreaterThanOrEqual(PACKETS);
  // The mutations must exercise both outcomes, not just one.
  expect(decodedOk).toBeGreaterThan(PACKETS / 10);
  expect(protocolErrors).toBeGreaterThan(PACKETS / 10);
}, 120_000);
