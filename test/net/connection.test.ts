import { afterAll, describe, expect, test } from "bun:test";
import { ConnectionError } from "../../src/net/connection.ts";
import type { ConnectionSpec } from "../../src/net/spec.ts";
import { pair, tcp4, tempDir, unixIn, within } from "./helpers.ts";

const tmp = tempDir();
afterAll(() => tmp.remove());

const MiB = 1024 * 1024;

/** Deterministic pseudo-random numbers so failures can be reproduced. */
function rng(seed: number): (n: number) => number {
  let x = seed >>> 0 || 1;
  return (n) => {
    x ^= x << 13; x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5; x >>>= 0;
    return x % n;
  };
}

/** Test-only framing: uint32 BE length, then payload (uint32 sequence number + filler). */
class TestReader {
  private pending = Buffer.alloc(0);
  frames: Buffer[] = [];
  push(chunk: Uint8Array): void {
    this.pending = Buffer.concat([this.pending, chunk]);
    let off = 0;
    while (this.pending.length - off >= 4) {
      const len = this.pending.readUInt32BE(off);
      if (this.pending.length - off - 4 < len) break;
      this.frames.push(this.pending.subarray(off + 4, off + 4 + len));
      off += 4 + len;
    }
    this.pending = this.pending.subarray(off);
  }
}

function packets(count: number, rand: (n: number) => number): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < count; i++) {
    const payload = Buffer.alloc(4 + rand(400));
    payload.writeUInt32BE(i, 0);
    for (let j = 4; j < payload.length; j++) payload[j] = (i + j) & 0xff;
    const head = Buffer.alloc(4);
    head.writeUInt32BE(payload.length, 0);
    out.push(head, payload);
  }
  return out;
}

const specs: [string, () => ConnectionSpec][] = [
  ["TCP", () => tcp4],
  ["unix", () => unixIn(tmp.path, "conn.sock")],
];

for (const [name, spec] of specs) {
  describe(name, () => {
    test("10,000 packets in random-size writes arrive intact and in order", async () => {
      const p = await pair(spec());
      try {
        const rand = rng(42);
        const sent = packets(10_000, rand);
        const stream = Buffer.concat(sent);
        const reader = new TestReader();
        const done = new Promise<void>((resolve) =>
          p.server.setHandlers({
            data(chunk) {
              reader.push(chunk);
              if (reader.frames.length === 10_000) resolve();
            },
          }),
        );
        for (let off = 0; off < stream.length; ) {
          const n = Math.min(1 + rand(5000), stream.length - off);
          if (!p.client.send(stream.subarray(off, off + n))) await within(p.client.flushed(), 10_000, "flush");
          off += n;
        }
        await within(done, 20_000, "10,000 packets");
        for (let i = 0; i < 10_000; i++) {
          expect(reader.frames[i].readUInt32BE(0)).toBe(i);
          expect(reader.frames[i].equals(sent[2 * i + 1])).toBe(true);
        }
        expect(p.server.bytesRead).toBe(stream.length);
        expect(p.client.bytesSent).toBe(stream.length);
      } finally {
        await p.close();
      }
    });

    test("backpressure: 32 MiB to a paused peer, bounded queue, nothing lost", async () => {
      const highWaterMark = 1 * MiB;
      const chunkSize = 64 * 1024;
      const total = 32 * MiB;
      const p = await pair(spec(), {}, { highWaterMark });
      try {
        let received = 0;
        let corrupt = 0;
        let deliveredWhilePaused = 0;
        let paused = true;
        p.server.pauseReading();
        const allIn = new Promise<void>((resolve) =>
          p.server.setHandlers({
            data(chunk) {
              if (paused) deliveredWhilePaused += chunk.length;
              for (let i = 0; i < chunk.length; i++) if (chunk[i] !== (((received + i) * 7 + ((received + i) >>> 16)) & 0xff)) corrupt++;
              received += chunk.length;
              if (received === total) resolve();
            },
          }),
        );
        let maxQueued = 0;
        let blocked = false;
        const sender = (async () => {
          for (let off = 0; off < total; off += chunkSize) {
            const chunk = new Uint8Array(chunkSize);
            for (let i = 0; i < chunkSize; i++) chunk[i] = ((off + i) * 7 + ((off + i) >>> 16)) & 0xff;
            const below = p.client.send(chunk);
            maxQueued = Math.max(maxQueued, p.client.queued);
            if (!below) {
              blocked = true;
              await p.client.flushed();
            }
          }
        })();
        // The sender must get stuck: the peer reads nothing and the kernel buffers fill up.
        await within((async () => { while (!blocked || p.client.queued === 0) await Bun.sleep(10); })(), 10_000, "sender blocked");
        await Bun.sleep(100);
        expect(p.client.queued).toBeGreaterThan(highWaterMark);
        expect(deliveredWhilePaused).toBe(0);
        paused = false;
        p.server.resumeReading();
        await within(sender, 30_000, "sender");
        await within(allIn, 30_000, "receiver");
        expect(received).toBe(total);
        expect(corrupt).toBe(0);
        expect(maxQueued).toBeLessThanOrEqual(highWaterMark + chunkSize); // the bound the API promises
        expect(p.client.queued).toBe(0);
      } finally {
        await p.close();
      }
    }, 60_000);

    test("maxQueued is enforced with a typed error, the connection stays usable", async () => {
      const p = await pair(spec(), {}, { highWaterMark: 64 * 1024, maxQueued: 1 * MiB });
      try {
        p.server.pauseReading();
        p.server.setHandlers({ data() {} });
        let err: unknown;
        for (let i = 0; i < 10_000 && !err; i++) {
          try {
            p.client.send(new Uint8Array(64 * 1024));
          } catch (e) {
            err = e;
          }
        }
        expect(err).toBeInstanceOf(ConnectionError);
        expect((err as ConnectionError).kind).toBe("queue-full");
        expect(p.client.queued).toBeLessThanOrEqual(1 * MiB);
        expect(p.client.writable).toBe(true);
        p.server.resumeReading();
        await within(p.client.flushed(), 10_000, "flush after resume");
      } finally {
        await p.close();
      }
    });

    test("local and remote addresses", async () => {
      const p = await pair(spec());
      try {
        const s = spec();
        if (s.kind === "unix") {
          expect(p.client.remote).toEqual({ family: "unix", path: s.path });
          expect(p.server.local).toEqual({ family: "unix", path: s.path });
          expect(p.client.peer).toBe(`unix:${s.path}`);
        } else {
          expect(p.client.remote).toEqual({ family: "IPv4", address: "127.0.0.1", port: p.listener.port! });
          expect(p.server.remote).toEqual(p.client.local!);
          expect(p.server.local).toEqual(p.client.remote!);
        }
      } finally {
        await p.close();
      }
    });

    test("reading pauses while our own queue is above the high-water mark", async () => {
      const p = await pair(spec(), {}, { highWaterMark: 64 * 1024 });
      try {
        let got = "";
        p.client.setHandlers({ data: (c) => void (got += Buffer.from(c).toString("latin1")) });
        p.server.pauseReading();
        p.server.setHandlers({ data() {} });
        while (p.client.send(new Uint8Array(64 * 1024))) {} // until above the mark
        await Bun.sleep(20);
        p.server.send(Buffer.from("ping"));
        await Bun.sleep(100);
        expect(got).toBe(""); // the peer's bytes wait in the kernel, not in our memory
        p.server.resumeReading();
        await within(p.client.flushed(), 10_000, "flush");
        await within((async () => { while (got !== "ping") await Bun.sleep(5); })(), 5000, "ping after resume");
      } finally {
        await p.close();
      }
    });

    test("half-close: we shut down, the peer still answers, we read it", async () => {
      const p = await pair(spec());
      try {
        let request = "";
        p.server.setHandlers({
          data: (c) => void (request += Buffer.from(c).toString("latin1")),
          end() {
            p.server.send(Buffer.from(`reply to ${request}`, "latin1"));
            void p.server.close();
          },
        });
        let reply = "";
        p.client.setHandlers({ data: (c) => void (reply += Buffer.from(c).toString("latin1")) });
        p.client.send(Buffer.from("QUIT", "latin1"));
        p.client.shutdown();
        expect(p.client.writable).toBe(false);
        expect(() => p.client.send(Buffer.from("late"))).toThrow(ConnectionError);
        expect(await within(p.client.closed, 5000, "client close")).toBeUndefined();
        expect(reply).toBe("reply to QUIT");
      } finally {
        await p.close();
      }
    });
  });
}

describe("timeouts", () => {
  test("read timeout fires when no reply comes", async () => {
    const p = await pair(tcp4);
    try {
      p.server.setHandlers({ data() {} }); // never answers
      p.client.setHandlers({ data() {} });
      p.client.send(Buffer.from("command"));
      p.client.expectReply(100);
      const err = await within(p.client.closed, 5000, "read timeout");
      expect(err).toBeInstanceOf(ConnectionError);
      expect(err!.kind).toBe("read-timeout");
      expect(err!.message).toBe(`${p.client.peer}: no data within 100 ms`);
    } finally {
      await p.close();
    }
  });

  test("read timeout stopped by replyReceived() does not fire", async () => {
    const p = await pair(tcp4);
    try {
      p.server.setHandlers({ data: () => void setTimeout(() => p.server.send(Buffer.from("ok")), 20) });
      const got = new Promise<void>((resolve) =>
        p.client.setHandlers({
          data() {
            p.client.replyReceived();
            resolve();
          },
        }),
      );
      p.client.send(Buffer.from("command"));
      p.client.expectReply(100);
      await within(got, 5000, "reply");
      await Bun.sleep(300);
      expect(p.client.isClosed).toBe(false);
    } finally {
      await p.close();
    }
  });

  test("write timeout fires when the peer stops reading", async () => {
    const p = await pair(tcp4, {}, { writeTimeoutMs: 150 });
    try {
      p.server.pauseReading();
      p.server.setHandlers({ data() {} });
      p.client.setHandlers({ data() {} });
      for (let i = 0; i < 128 && p.client.queued === 0; i++) p.client.send(new Uint8Array(256 * 1024));
      expect(p.client.queued).toBeGreaterThan(0);
      const err = await within(p.client.closed, 5000, "write timeout");
      expect(err?.kind).toBe("write-timeout");
      await expect(p.client.flushed()).rejects.toBeInstanceOf(ConnectionError);
    } finally {
      await p.close();
    }
  });
});

describe("delivery order and lifecycle", () => {
  test("a slow async consumer pauses; data stays in order, end and close come after it", async () => {
    const p = await pair(tcp4);
    try {
      const seen: string[] = [];
      const queue: Uint8Array[] = [];
      let busy = false;
      const finished = new Promise<void>((resolve) => {
        const work = async () => {
          busy = true;
          p.server.pauseReading();
          while (queue.length) {
            await Bun.sleep(1);
            seen.push(Buffer.from(queue.shift()!).toString("latin1"));
          }
          busy = false;
          p.server.resumeReading();
        };
        p.server.setHandlers({
          data(chunk) {
            queue.push(chunk);
            if (!busy) void work();
          },
          end() {
            seen.push("<end>");
            void p.server.close();
          },
          close: () => resolve(),
        });
      });
      const text = Array.from({ length: 500 }, (_, i) => `line ${i}\n`).join("");
      for (let i = 0; i < text.length; i += 37) {
        p.client.send(Buffer.from(text.slice(i, i + 37), "latin1"));
        if (i % 370 === 0) await Bun.sleep(0);
      }
      await p.client.close();
      await within(finished, 10_000, "server close");
      expect(seen.at(-1)).toBe("<end>");
      expect(seen.slice(0, -1).join("")).toBe(text);
    } finally {
      await p.close();
    }
  });

  test("data that arrives before a handler is set is kept", async () => {
    const p = await pair(tcp4);
    try {
      p.server.send(Buffer.from("greeting"));
      await Bun.sleep(50);
      const got = new Promise<string>((resolve) => p.client.setHandlers({ data: (c) => resolve(Buffer.from(c).toString("latin1")) }));
      expect(await within(got, 5000, "greeting")).toBe("greeting");
    } finally {
      await p.close();
    }
  });

  test("a peer FIN without an end handler closes the connection gracefully", async () => {
    const p = await pair(tcp4);
    try {
      p.server.setHandlers({ data() {} });
      p.client.setHandlers({ data() {} });
      p.client.shutdown();
      expect(await within(p.server.closed, 5000, "server close")).toBeUndefined();
      expect(await within(p.client.closed, 5000, "client close")).toBeUndefined();
    } finally {
      await p.close();
    }
  });

  test("a throwing receiver closes the connection with a typed error", async () => {
    const p = await pair(tcp4);
    try {
      p.server.setHandlers({
        data() {
          throw new Error("bad packet length 0");
        },
      });
      p.client.setHandlers({ data() {} });
      p.client.send(Buffer.from("garbage"));
      const err = await within(p.server.closed, 5000, "server close");
      expect(err?.kind).toBe("receiver");
      expect(err?.message).toContain("bad packet length 0");
      expect(() => p.server.send(Buffer.from("x"))).toThrow(ConnectionError);
    } finally {
      await p.close();
    }
  });

  test("close flushes queued data first", async () => {
    const p = await pair(tcp4);
    try {
      const total = 8 * MiB;
      let received = 0;
      p.server.pauseReading();
      const done = new Promise<void>((resolve) => p.server.setHandlers({ data: (c) => void (received += c.length), close: () => resolve() }));
      p.client.setHandlers({ data() {} });
      for (let off = 0; off < total; off += MiB) p.client.send(new Uint8Array(MiB));
      expect(p.client.queued).toBeGreaterThan(0);
      const closing = p.client.close(10_000);
      await Bun.sleep(50);
      p.server.resumeReading();
      expect(await within(closing, 10_000, "client close")).toBeUndefined();
      await within(done, 10_000, "server close");
      expect(received).toBe(total);
    } finally {
      await p.close();
    }
  });
});
