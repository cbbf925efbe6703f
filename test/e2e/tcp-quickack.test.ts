// No delayed-ACK stall on the TCP sockets we read from (tcp-quickack.ts). libmilter answers the end
// of message with two small writes (`h`, then `c`) and Nagle on: the second leaves only once our
// side acknowledged the first, which Linux delays by ~40 ms unless quick-ACK mode is re-armed after
// every read. So a session that ends in ~1 ms over unix took ~44 ms over TCP. Asserted loosely
// (median of 20 sessions far below the 40 ms timer) so that a loaded machine does not fail it.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { run, SMALL_EML } from "../test-server/helpers.ts";
import { e2eSkipReason, type ManagerProcess, startLibmilter, startManagerProcess, type Peer } from "./lib/index.ts";

const skip = e2eSkipReason();
const SESSIONS = 20;

/** Median ms per session of test-server's load mode (one session at a time, each on its own connection). */
async function medianSessionMs(spec: string): Promise<number> {
  const r = await run(["-s", spec, "-m", SMALL_EML, "--sessions", String(SESSIONS), "--concurrency", "1", "--json"]);
  expect(r.code, r.stderr).toBe(0);
  const summary = JSON.parse(r.stdout.split("\n").find((l) => l.startsWith("{"))!);
  expect(summary.completed).toBe(SESSIONS);
  return summary.latencyMs.p50;
}

describe.skipIf(!!skip)("TCP_QUICKACK: a child writing twice with Nagle on is answered without the delayed-ACK stall", () => {
  let libmilter: Peer;
  let manager: ManagerProcess;

  beforeAll(async () => {
    libmilter = await startLibmilter();
    manager = await startManagerProcess({ transport: "inet", logLevel: "error", milters: [{ name: "libmilter", connection_spec: libmilter.spec }] });
  }, 120_000);

  afterAll(async () => {
    await manager?.stop();
    await libmilter?.stop();
  });

  test("test-server → libmilter over TCP", async () => {
    expect(await medianSessionMs(libmilter.spec)).toBeLessThan(20);
  });

  test("test-server → manager → libmilter, both hops over TCP", async () => {
    expect(await medianSessionMs(manager.spec)).toBeLessThan(20);
  });
});
