// The message body buffer: re-chunking, spilling to an unlinked temporary file, cleanup.
import { afterAll, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, readdirSync, readlinkSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BodyBuffer } from "../../src/manager/body.ts";
import { prng, randInt } from "../milter/helpers.ts";

const dir = mkdtempSync(join(tmpdir(), "mk-body-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function bytes(n: number, seed: number): Uint8Array {
  const r = prng(seed);
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = Math.floor(r() * 256);
  return b;
}

function collect(body: BodyBuffer, size: number): Uint8Array[] {
  return Array.from(body.chunks(size), (c) => Uint8Array.from(c)); // a piece read from the file is reused
}

describe("BodyBuffer in memory", () => {
  test("re-chunks to the requested size across chunk boundaries", () => {
    const b = new BodyBuffer({ tmpDir: dir });
    const data = bytes(10_000, 1);
    b.append(data.subarray(0, 3));
    b.append(data.subarray(3, 5000));
    b.append(data.subarray(5000));
    const parts = collect(b, 4096);
    expect(parts.map((p) => p.length)).toEqual([4096, 4096, 1808]);
    expect(Buffer.concat(parts)).toEqual(Buffer.from(data));
    expect(b.spilled).toBe(false);
  });

  test("an empty body has no chunk; zero-length appends are ignored", () => {
    const b = new BodyBuffer();
    b.append(new Uint8Array(0));
    expect(collect(b, 10)).toEqual([]);
    expect(b.size).toBe(0);
  });

  test("reset forgets the content (replace body)", () => {
    const b = new BodyBuffer();
    b.append(Buffer.from("old"));
    b.reset();
    b.append(Buffer.from("new"));
    expect(b.toBuffer().toString("latin1")).toBe("new");
  });

  test("random chunkings give back the same bytes", () => {
    const rand = prng(3);
    for (let i = 0; i < 200; i++) {
      const data = bytes(randInt(rand, 0, 3000), i);
      const b = new BodyBuffer({ spillThreshold: randInt(rand, 100, 4000), tmpDir: dir });
      for (let off = 0; off < data.length; ) {
        const n = Math.min(data.length - off, randInt(rand, 1, 700));
        b.append(data.slice(off, off + n));
        off += n;
      }
      const size = randInt(rand, 1, 1000);
      const parts = collect(b, size);
      expect(parts.every((p, k) => p.length === size || k === parts.length - 1)).toBe(true);
      expect(Buffer.concat(parts)).toEqual(Buffer.from(data));
      b.dispose();
    }
  });
});

describe("BodyBuffer spilled to a file", () => {
  test("above the threshold the body moves to an unlinked file, closed by dispose()", () => {
    const b = new BodyBuffer({ spillThreshold: 1000, tmpDir: dir });
    const data = bytes(5000, 2);
    b.append(data.slice(0, 900));
    expect(b.spilled).toBe(false);
    b.append(data.slice(900, 1200));
    expect(b.spilled).toBe(true);
    b.append(data.slice(1200));
    // Nothing visible in the directory: the file was unlinked as soon as it was created.
    expect(readdirSync(dir).filter((f) => f.startsWith("milterkit-body-"))).toEqual([]);
    const fd = b.fd;
    expect(readlinkSync(`/proc/self/fd/${fd}`)).toContain("(deleted)");
    const parts = collect(b, 65535);
    expect(parts.length).toBe(1);
    expect(Buffer.concat(parts)).toEqual(Buffer.from(data));
    expect(collect(b, 1000).map((p) => p.length)).toEqual([1000, 1000, 1000, 1000, 1000]);
    b.dispose();
    expect(b.fd).toBe(-1);
    expect(existsSync(`/proc/self/fd/${fd}`) && readlinkSync(`/proc/self/fd/${fd}`).includes("milterkit-body-")).toBe(false);
  });

  test("reset after a spill reuses the file", () => {
    const b = new BodyBuffer({ spillThreshold: 10, tmpDir: dir });
    b.append(Buffer.from("0123456789abcdef"));
    b.reset();
    b.append(Buffer.from("replaced"));
    expect(b.size).toBe(8);
    expect(b.toBuffer().toString("latin1")).toBe("replaced");
    b.dispose();
  });

  test("a directory that cannot hold the file gives a BodyBufferError", () => {
    const b = new BodyBuffer({ spillThreshold: 1, tmpDir: join(dir, "missing", "dir") });
    expect(() => b.append(Buffer.from("xx"))).toThrow(/cannot create a body spill file/);
  });
});
