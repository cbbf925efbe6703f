// A child that cannot be opened is down for a while (rules/availability.ts):
// sessions count it as its fallback_status at once instead of each waiting connection_timeout;
// one session at a time tries it again after the back-off; down and back are logged once each.
import { afterEach, describe, expect, test } from "bun:test";
import type { ManagerLog } from "../../src/manager/log.ts";
import { connectionTimeoutWarning } from "../../src/manager/rules/availability.ts";
import { defaultMilter } from "../../src/manager/config/schema.ts";
import { ScriptedMilter } from "./support/scripted-milter.ts";
import { chain, expectStatus, SESSION, type Setup, setup } from "./support/harness.ts";

let s: Setup | undefined;
let late: ScriptedMilter | undefined;
afterEach(async () => {
  await s?.close();
  await late?.close();
  s = late = undefined;
});

function capture(): { log: ManagerLog; lines: string[] } {
  const lines: string[] = [];
  return { lines, log: { enabled: () => true, write: (level, text) => void lines.push(`${level}: ${text}`) } };
}

async function timed<T>(f: () => Promise<T>): Promise<[T, number]> {
  const t0 = Date.now();
  const r = await f();
  return [r, Date.now() - t0];
}

describe("a black-holed child (never answers its connection)", () => {
  test("costs connection_timeout once; then sessions go on at once; one probe after the back-off; one log line", async () => {
    const { log, lines } = capture();
    s = await setup({
      scripts: [{ negotiate: "hang" }, {}],
      milters: [{ connection_timeout: 1.5, fallback_status: "accept" }],
      manager: { milter_retry_interval: 4, milter_retry_max_interval: 8 },
      engine: { log },
    });
    const [, first] = await timed(async () => {
      const mta = await s!.mta();
      expectStatus(await SESSION.connect(mta), "continue");
    });
    expect(first).toBeGreaterThanOrEqual(1400);
    // Five more sessions within the back-off: none waits for the black hole.
    for (let i = 0; i < 5; i++) {
      const [, took] = await timed(async () => {
        const mta = await s!.mta();
        await chain(mta, "helo");
        await mta.quit();
      });
      expect(took).toBeLessThan(1000); // well under the 1.5 s connection_timeout
    }
    expect(s.children[0].sessions).toBe(1);
    await Bun.sleep(4100); // the back-off is over
    // One session probes (and waits its connection_timeout); another one meanwhile does not.
    const probe = timed(async () => {
      const mta = await s!.mta();
      expectStatus(await SESSION.connect(mta), "continue");
    });
    await Bun.sleep(100);
    const [, other] = await timed(async () => {
      const mta = await s!.mta();
      expectStatus(await SESSION.connect(mta), "continue");
    });
    expect(other).toBeLessThan(1000);
    const [, probed] = await probe;
    expect(probed).toBeGreaterThanOrEqual(1400);
    expect(s.children[0].sessions).toBe(2);
    const down = lines.filter((l) => l.startsWith("warning:") && l.includes("is down"));
    expect(down.length).toBe(1);
    expect(down[0]).toContain("counted as accept without trying for 4 s");
    expect(lines.filter((l) => l.includes("still down; next try in 8 s")).length).toBe(1);
  }, 30_000);
});

describe("a child that is back", () => {
  test("is used again after the back-off, and that is logged once", async () => {
    const { log, lines } = capture();
    // A port nobody listens on yet.
    const probe = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
    const port = probe.port;
    probe.stop(true);
    s = await setup({
      scripts: [{}],
      before: [{ ...defaultMilter("comes-back", `inet:${port}@[127.0.0.1]`), fallback_status: "accept" }],
      manager: { milter_retry_interval: 0.5, milter_retry_max_interval: 1 },
      engine: { log },
    });
    const m1 = await s.mta();
    await chain(m1, "helo");
    late = await new ScriptedMilter({}).start(`inet:${port}@[127.0.0.1]`);
    const m2 = await s.mta(); // within the back-off: not tried
    await chain(m2, "helo");
    expect(late.sessions).toBe(0);
    await Bun.sleep(600);
    const m3 = await s.mta();
    await chain(m3, "helo");
    expect(late.sessions).toBe(1);
    expect(lines.filter((l) => l.includes("is down")).length).toBe(1);
    const back = lines.filter((l) => l.includes("is back after"));
    expect(back.length).toBe(1);
    expect(back[0]).toStartWith("message:");
  }, 30_000);
});

test("connection_timeout above what Postfix waits (30 s) is warned about", () => {
  const slow = { ...defaultMilter("slow", "inet:1@[127.0.0.1]") }; // default 297 s
  const quick = { ...defaultMilter("quick", "inet:2@[127.0.0.1]"), connection_timeout: 10 };
  expect(connectionTimeoutWarning([quick])).toBeUndefined();
  expect(connectionTimeoutWarning([slow, quick])).toStartWith("connection_timeout of slow (297 s) is longer than the MTA waits for a milter (Postfix's milter_connect_timeout is 30 s)");
});
