// An MTA with Nagle on that writes a command's macros (D) and the command as two small writes, as
// Postfix does: the D gets no reply, so the session asks for the ACK at once (TCP_QUICKACK);
// otherwise the command waits ~40 ms for our delayed ACK. Asserted loosely (median of 20 steps
// far below the 40 ms timer) so that a loaded machine does not fail it.
import { expect, test } from "bun:test";
import { encodePacket } from "../../src/milter/index.ts";
import { serveMilter } from "../../src/milter-side/index.ts";

const ROUNDS = 20;
const latin1 = (s: string) => Buffer.from(s, "latin1");

test("a D packet then its command, two small writes with Nagle on: answered without the delayed-ACK stall", async () => {
  const server = await serveMilter("inet:0@[127.0.0.1]", () => ({}));
  let got = 0;
  let wake: (() => void) | undefined;
  const mta = await Bun.connect({
    hostname: "127.0.0.1",
    port: server.port!,
    socket: { data: (_s, chunk) => { got += chunk.length; wake?.(); } },
  });
  mta.setNoDelay(false);
  const reply = async (bytes: number) => {
    while (got < bytes) await new Promise<void>((r) => (wake = r));
    got -= bytes;
  };
  try {
    mta.write(encodePacket(0x4f, new Uint8Array([0, 0, 0, 6, 0, 0, 0, 0, 0, 0, 0, 0]))); // OPTNEG v6, no actions, every step
    await reply(17);
    const times: number[] = [];
    for (let i = 0; i < ROUNDS; i++) {
      const t = performance.now();
      mta.write(encodePacket(0x44, latin1("Hj\0mx.example\0"))); // macros of HELO: no reply
      mta.write(encodePacket(0x48, latin1("client.example\0"))); // HELO: continue
      await reply(5);
      times.push(performance.now() - t);
    }
    expect(times.sort((a, b) => a - b)[ROUNDS >> 1]).toBeLessThan(20);
  } finally {
    mta.end();
    await server.close({ waitMs: 0 });
  }
});
