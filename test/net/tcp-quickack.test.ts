// TCP_QUICKACK on both ends we read from: a connection we opened (connect) and one we accepted
// (listen). The peer is a plain Bun socket with Nagle on that answers every byte with two small
// writes: without quick-ACK mode re-armed after each read, the second write waits ~40 ms for our
// delayed ACK. Asserted loosely (median of 20 round trips far below the 40 ms timer).
import { describe, expect, test } from "bun:test";
import { connect } from "../../src/net/connect.ts";
import type { FramedConnection } from "../../src/net/connection.ts";
import { listen } from "../../src/net/listener.ts";
import { quickAckUnavailable } from "../../src/net/tcp-quickack.ts";
import { tcp4 } from "./helpers.ts";

const ROUNDS = 20;

/** Median ms from one byte sent on `conn` until the peer's two-write answer (2 bytes) arrived. */
async function medianRoundTrip(conn: FramedConnection): Promise<number> {
  let got = 0;
  let wake: (() => void) | undefined;
  conn.setHandlers({ data: (c) => { got += c.length; if (got >= 2) wake?.(); } });
  const times: number[] = [];
  for (let i = 0; i < ROUNDS; i++) {
    got = 0;
    const answered = new Promise<void>((r) => (wake = r));
    const t = performance.now();
    conn.send(new Uint8Array([1]));
    await answered;
    times.push(performance.now() - t);
  }
  return times.sort((a, b) => a - b)[ROUNDS >> 1];
}

/** The libmilter pattern: Nagle on, every request answered with two separate small writes. */
const twoWrites = {
  open(s: { setNoDelay(on: boolean): void }) {
    s.setNoDelay(false);
  },
  data(s: { write(b: string): number }) {
    s.write("h");
    s.write("c");
  },
};

describe("TCP_QUICKACK", () => {
  test("a connection we opened: the peer's second small write is not held for our ACK", async () => {
    const peer = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: twoWrites });
    try {
      const conn = await connect({ ...tcp4, port: peer.port }, { timeoutMs: 5000 });
      expect(await medianRoundTrip(conn)).toBeLessThan(20);
      conn.destroy();
    } finally {
      peer.stop(true);
    }
    expect(quickAckUnavailable()).toBeUndefined();
  });

  test("a connection we accepted: the same", async () => {
    let accepted: ((c: FramedConnection) => void) | undefined;
    const conn = new Promise<FramedConnection>((r) => (accepted = r));
    const l = await listen(tcp4, { connection: (c) => accepted!(c) });
    const peer = await Bun.connect({ hostname: "127.0.0.1", port: l.port!, socket: twoWrites });
    twoWrites.open(peer);
    try {
      expect(await medianRoundTrip(await conn)).toBeLessThan(20);
    } finally {
      peer.end();
      await l.close({ waitMs: 0 });
    }
  });
});
