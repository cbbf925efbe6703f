/** Shared test helpers for the milter protocol layer: seeded PRNG, chunking, vectors. */
import vectorsJson from "../fixtures/protocol-vectors.json";

/** mulberry32: small, fast, seedable PRNG returning [0, 1). */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Random integer in [lo, hi]. */
export function randInt(rand: () => number, lo: number, hi: number): number {
  return lo + Math.floor(rand() * (hi - lo + 1));
}

/** Split bytes into pieces of random length 1..maxPiece (views). */
export function randomPieces(bytes: Uint8Array, rand: () => number, maxPiece: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let off = 0; off < bytes.length; ) {
    const n = Math.min(bytes.length - off, randInt(rand, 1, maxPiece));
    out.push(bytes.subarray(off, off + n));
    off += n;
  }
  return out;
}

export function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("hex");
}

export function fromHex(h: string): Buffer {
  return Buffer.from(h.replace(/\s+/g, ""), "hex");
}

export interface Vector {
  name: string;
  direction: "mta-to-milter" | "milter-to-mta";
  hex: string;
  meaning: Record<string, unknown> & { code: string; command: string; summary: string };
  evidence: string;
}

export const vectors = vectorsJson as unknown as Vector[];

/** The vector whose id (first word of the name) is `id`. */
export function vector(id: string): Vector {
  const v = vectors.find((x) => x.name.split(" ")[0] === id);
  if (!v) throw new Error(`no vector ${id}`);
  return v;
}
