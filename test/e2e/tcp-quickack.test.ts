// No delayed-ACK stall on the TCP sockets we read from (tcp-quickack.ts). libmilter answers the end
// of message with two small writes (`h`, then `c`) and Nagle on: the second leaves only once our
// side acknowledged the first, which Linux delays by ~40 ms unless quick-ACK mode is re-armed after
// every read. So a session that ends in ~1 ms over unix took ~44 ms over TCP. Asserted loosely
// (median of 20 sessions far below the 40 ms timer) so that a loaded machine does not fail it.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import * as fs from "node:fs";
import * as path from "node:path";
import { run, SMALL_EML } from "../test-server/helpers.ts";
import { cleanEnv, e2eSkipReason, freePort, makeTempDir, removeDir, spawnTracked, startLibmilter, stopPid, waitForPort, type Peer, type Spawned } from "./lib/index.ts";

const skip = e2eSkipReason();
const ROOT = path.join(import.meta.dir, "../..");
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
  let manager: Spawned;
  let managerPort: number;
  let base: string;

  beforeAll(async () => {
    libmilter = await startLibmilter();
    base = makeTempDir("mk-e2e-quickack-");
    managerPort = await freePort();
    const config = path.join(base, "milterkit.json");
    fs.writeFileSync(config, JSON.stringify({
      security: { privilege_mode: false },
      log: { level: "error", use_syslog: false },
      manager: { connection_spec: `inet:${managerPort}@[127.0.0.1]` },
      milters: [{ name: "libmilter", connection_spec: libmilter.spec }],
    }));
    manager = spawnTracked([process.execPath, path.join(ROOT, "src/main.ts"), "manager", "--config", config, "--no-daemon"], {
      logFile: path.join(base, "manager.log"), cwd: ROOT, env: cleanEnv({ NO_COLOR: "1" }), what: "milterkit manager",
    });
    await waitForPort("127.0.0.1", managerPort, 15_000, { pid: manager.pid, logFile: manager.logFile, what: "milterkit manager" });
  }, 120_000);

  afterAll(async () => {
    if (manager) await stopPid(manager.pid, { graceMs: 5000 });
    await libmilter?.stop();
    if (base) removeDir(base);
  });

  test("test-server → libmilter over TCP", async () => {
    expect(await medianSessionMs(libmilter.spec)).toBeLessThan(20);
  });

  test("test-server → manager → libmilter, both hops over TCP", async () => {
    expect(await medianSessionMs(`inet:${managerPort}@[127.0.0.1]`)).toBeLessThan(20);
  });
});
