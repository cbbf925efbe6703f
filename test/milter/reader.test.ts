/**
 * PacketReader: framing over arbitrary chunking, limits, typed errors, the
 * failed state, and the negative framing vectors of protocol-vectors.md.
 */
import { describe, expect, test } from "bun:test";
import {
  MILTER_MDS_256K,
  MilterProtocolError,
  PacketReader,
  SMFIC_MAIL,
  decodeCommand,
  decodeReply,
  encodePacket,
} from "../../src/milter/index.ts";
import { fromHex, hex, prng, randInt, randomPieces } from "./helpers.ts";

type Got = [number, string];

/** Push pieces and collect (code, payload hex) pairs. */
function collect(reader: PacketReader, pieces: Uint8Array[]): Got[] {
  const got: Got[] = [];
  for (const piece of pieces) reader.push(piece, (c, p) => got.push([c, hex(p)]));
  return got;
}

/** Run `fn`, expect a MilterProtocolError, return it. */
function protocolError(fn: () => unknown): MilterProtocolError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(MilterProtocolError);
    return e as MilterProtocolError;
  }
  throw new Error("expected a MilterProtocolError, nothing was thrown");
}

function mailPacket(dataLength: number): Buffer {
  const data = Buffer.alloc(dataLength, 0x78); // 'x' … like the negative vector
  return encodePacket(SMFIC_MAIL, data);
}

describe("negative vectors (protocol-vectors.md)", () => {
  test("0001 0000 4d + 65535 bytes: accepted at the default max", () => {
    const bytes = mailPacket(65535);
    expect(hex(bytes.subarray(0, 5))).toBe("000100004d");
    const reader = new PacketReader();
    const got = collect(reader, [bytes]);
    expect(got.length).toBe(1);
    expect(got[0][0]).toBe(0x4d);
    expect(got[0][1].length).toBe(65535 * 2);
    reader.finish();
  });

  test("0001 0001 4d + 65536 bytes: oversize at the default max, whole or in pieces", () => {
    const bytes = mailPacket(65536);
    expect(hex(bytes.subarray(0, 5))).toBe("000100014d");
    const whole = protocolError(() => collect(new PacketReader(), [bytes]));
    expect(whole.kind).toBe("oversize");
    expect(whole.message).toContain("65536 data bytes");
    expect(whole.message).toContain("'M'");
    expect(whole.code).toBe(0x4d);
    for (const maxPiece of [1, 3, 1000]) {
      const reader = new PacketReader();
      const e = protocolError(() => collect(reader, randomPieces(bytes, prng(maxPiece), maxPiece)));
      expect(e.kind).toBe("oversize");
    }
  });

  test("oversize is refused as soon as the length word is complete (before the data)", () => {
    const reader = new PacketReader();
    reader.push(fromHex("0001"), () => {});
    const e = protocolError(() => reader.push(fromHex("0001"), () => {}));
    expect(e.kind).toBe("oversize");
    expect(e.message).toContain("length word 0x00010001");
  });

  test("00000000 then a valid packet: zero-length", () => {
    const e = protocolError(() => collect(new PacketReader(), [fromHex("00000000 0000000163")]));
    expect(e.kind).toBe("zero-length");
    // Also when the zero length word arrives after a valid packet and split.
    const reader = new PacketReader();
    const got: Got[] = [];
    const e2 = protocolError(() => {
      for (const b of fromHex("0000000163 00000000 0000000163")) reader.push(Uint8Array.of(b), (c, p) => got.push([c, hex(p)]));
    });
    expect(e2.kind).toBe("zero-length");
    expect(got).toEqual([[0x63, ""]]);
  });

  test("000000015a ('Z'): framed fine, unknown to both decoders", () => {
    const got = collect(new PacketReader(), [fromHex("000000015a")]);
    expect(got).toEqual([[0x5a, ""]]);
    const c = protocolError(() => decodeCommand(0x5a, new Uint8Array(0)));
    expect(c.kind).toBe("unknown-command");
    expect(c.message).toContain("'Z'");
    const r = protocolError(() => decodeReply(0x5a, new Uint8Array(0)));
    expect(r.kind).toBe("unknown-command");
  });
});

describe("truncation and the failed state", () => {
  test("finish() inside a length word or a packet: truncated", () => {
    const r1 = new PacketReader();
    r1.push(fromHex("0000"), () => {});
    expect(r1.buffered).toBe(2);
    const e1 = protocolError(() => r1.finish());
    expect(e1.kind).toBe("truncated");
    expect(e1.message).toContain("2 of the 4 bytes of a length word");

    const r2 = new PacketReader();
    r2.push(fromHex("0000001448636c69"), () => {});
    const e2 = protocolError(() => r2.finish());
    expect(e2.kind).toBe("truncated");
    expect(e2.message).toContain("8 of 24 bytes of a 'H' packet");
  });

  test("finish() at a packet boundary is fine", () => {
    const r = new PacketReader();
    r.push(fromHex("0000000163"), () => {});
    expect(r.buffered).toBe(0);
    r.finish();
  });

  test("after an error the reader stays failed", () => {
    const r = new PacketReader();
    const first = protocolError(() => r.push(fromHex("00000000"), () => {}));
    expect(r.failure).toBe(first);
    let delivered = 0;
    expect(() => r.push(fromHex("0000000163"), () => delivered++)).toThrow(first);
    expect(() => r.finish()).toThrow(first);
    expect(delivered).toBe(0);
    expect(r.buffered).toBe(0);
  });

  test("packets before a framing error in the same chunk are delivered", () => {
    const got: Got[] = [];
    const r = new PacketReader();
    const e = protocolError(() => r.push(fromHex("0000000163 0000000161 00000000"), (c, p) => got.push([c, hex(p)])));
    expect(e.kind).toBe("zero-length");
    expect(got).toEqual([[0x63, ""], [0x61, ""]]);
  });
});

describe("limits", () => {
  test("maxDataSize can be raised after MDS negotiation", () => {
    const bytes = mailPacket(MILTER_MDS_256K);
    expect(protocolError(() => collect(new PacketReader(), [bytes])).kind).toBe("oversize");
    const r = new PacketReader();
    r.maxDataSize = MILTER_MDS_256K;
    const got = collect(r, randomPieces(bytes, prng(7), 70000));
    expect(got.length).toBe(1);
    expect(got[0][1].length).toBe(MILTER_MDS_256K * 2);
    expect(protocolError(() => collect(new PacketReader({ maxDataSize: MILTER_MDS_256K }), [mailPacket(MILTER_MDS_256K + 1)])).kind).toBe("oversize");
  });

  test("a lower maxDataSize is enforced", () => {
    const r = new PacketReader({ maxDataSize: 10 });
    expect(collect(r, [encodePacket(0x42, Buffer.alloc(10))]).length).toBe(1);
    expect(protocolError(() => collect(r, [encodePacket(0x42, Buffer.alloc(11))])).kind).toBe("oversize");
  });
});

describe("chunking", () => {
  // Random packets (payloads up to 70 KB) as one stream, cut in many ways.
  const rand = prng(0xc0ffee);
  const packets: Buffer[] = [];
  for (let i = 0; i < 400; i++) {
    const big = rand() < 0.05;
    const data = Buffer.allocUnsafe(big ? randInt(rand, 60000, 70000) : randInt(rand, 0, 300));
    for (let j = 0; j < data.length; j++) data[j] = (rand() * 256) | 0;
    packets.push(encodePacket(randInt(rand, 0x21, 0x7e), data));
  }
  const stream = Buffer.concat(packets);
  const expected: Got[] = packets.map((p) => [p[4], hex(p.subarray(5))]);

  test.each([1, 3, 7, 100, 1500, 65536, 600000])("random pieces up to %d bytes", (maxPiece) => {
    const r = new PacketReader({ maxDataSize: 70000 });
    const got = collect(r, randomPieces(stream, prng(maxPiece), maxPiece));
    r.finish();
    expect(got.length).toBe(expected.length);
    expect(got).toEqual(expected);
  });

  test("one merged chunk", () => {
    const r = new PacketReader({ maxDataSize: 70000 });
    expect(collect(r, [stream])).toEqual(expected);
  });

  test("plain Uint8Array chunks (not Buffers) work and payloads come out as Buffers", () => {
    const r = new PacketReader();
    const u8 = new Uint8Array(fromHex("0000000163 000000056248690d0a"));
    const kinds: boolean[] = [];
    r.push(u8.subarray(0, 7), (_c, p) => kinds.push(Buffer.isBuffer(p)));
    r.push(u8.subarray(7), (_c, p) => kinds.push(Buffer.isBuffer(p)));
    expect(kinds).toEqual([true, true]);
  });
});

describe("a throwing handler", () => {
  const stream = fromHex("0000000163 0000000161 0000000172 0000000174");

  test("fast path: the reader resumes at the next packet", () => {
    const r = new PacketReader();
    const seen: number[] = [];
    let throwOn = 0x61;
    const onPacket = (c: number) => {
      seen.push(c);
      if (c === throwOn) throw new Error("handler failed");
    };
    expect(() => r.push(stream, onPacket)).toThrow("handler failed");
    expect(r.failure).toBeUndefined();
    expect(r.buffered).toBe(10);
    throwOn = 0;
    r.push(new Uint8Array(0), onPacket);
    r.finish();
    expect(seen).toEqual([0x63, 0x61, 0x72, 0x74]);
  });

  test("backlog path: the reader resumes at the next packet", () => {
    const r = new PacketReader();
    const seen: number[] = [];
    let throwOn = 0x63;
    const onPacket = (c: number) => {
      seen.push(c);
      if (c === throwOn) throw new Error("handler failed");
    };
    r.push(stream.subarray(0, 3), onPacket); // start a packet in the backlog
    expect(() => r.push(stream.subarray(3), onPacket)).toThrow("handler failed");
    throwOn = 0;
    r.push(new Uint8Array(0), onPacket);
    r.finish();
    expect(seen).toEqual([0x63, 0x61, 0x72, 0x74]);
  });
});
