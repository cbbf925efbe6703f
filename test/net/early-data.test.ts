// A connection without a data handler does not pause reading up front (that would cost two
// epoll_ctl calls per accepted connection); it pauses once data arrives for nobody, keeps that
// data, and hands it over in order when a handler is set — also a large burst, and an end after it.
import { afterAll, expect, test } from "bun:test";
import { pair, tcp4, tempDir, unixIn, within } from "./helpers.ts";

const tmp = tempDir();
afterAll(() => tmp.remove());

for (const [name, spec] of [["TCP", () => tcp4], ["unix", () => unixIn(tmp.path, "early.sock")]] as const) {
  test(`${name}: bytes sent before the server sets a data handler are kept and delivered in order`, async () => {
    const p = await pair(spec());
    try {
      const burst = Buffer.alloc(3 * 1024 * 1024);
      for (let i = 0; i < burst.length; i++) burst[i] = i % 251;
      p.client.send(Buffer.from("first:"));
      p.client.send(burst);
      const flushed = p.client.flushed();
      await Bun.sleep(100); // data arrives while nobody takes it
      const chunks: Buffer[] = [];
      let ended!: () => void;
      const end = new Promise<void>((r) => (ended = r));
      p.server.setHandlers({ data: (c) => void chunks.push(Buffer.from(c)), end: () => ended() });
      await within(flushed, 5000, "client flush");
      p.client.shutdown();
      await within(end, 5000, "end after the data");
      const got = Buffer.concat(chunks);
      expect(got.length).toBe(6 + burst.length);
      expect(got.subarray(0, 6).toString("latin1")).toBe("first:");
      expect(got.subarray(6).equals(burst)).toBe(true);
    } finally {
      await p.close();
    }
  });
}
