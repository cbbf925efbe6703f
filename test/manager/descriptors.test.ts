// Out of file descriptors: the manager stops accepting instead of spinning on
// accept() (EMFILE), says so once, and accepts again when descriptors are free. The manager runs
// as a process with manager.max_file_descriptors = 64.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import type { Socket } from "bun";
import { encodeCommand } from "../../src/milter/index.ts";
import { SMFI_CURR_ACTS, SMFI_CURR_PROT, SMFI_PROT_VERSION } from "../../src/milter/constants.ts";
import { mtaFor, startManagerProcess } from "./support/manager-process.ts";
import { type ScriptedMilter, startScriptedMilter } from "./support/scripted-milter.ts";
import { chain, expectStatus, SESSION } from "./support/harness.ts";

const OPTNEG = encodeCommand({ type: "optneg", version: SMFI_PROT_VERSION, actions: SMFI_CURR_ACTS, protocol: SMFI_CURR_PROT });

/** CPU time (user + system) of a process in clock ticks (1/100 s). */
function cpuTicks(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "latin1");
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return Number(f[11]) + Number(f[12]); // utime, stime (fields 14 and 15)
}

let child: ScriptedMilter;
beforeAll(async () => {
  child = await startScriptedMilter({});
});
afterAll(async () => {
  await child?.close();
});

test("max_file_descriptors = 64 and 150 connections: accepting pauses (CPU stays low, one log line), then resumes", async () => {
  const m = await startManagerProcess({
    log: { level: "all", use_syslog: false },
    manager: { max_file_descriptors: 64, suspend_time_on_unacceptable: 1 },
    milters: [{ name: "child", connection_spec: child.spec }],
  });
  const socks: Socket<undefined>[] = [];
  try {
    // Each negotiated connection holds two of the manager's descriptors (the MTA's and the child's).
    for (let i = 0; i < 150; i++) {
      socks.push(await Bun.connect({ hostname: "127.0.0.1", port: m.port, socket: { data() {}, error() {} } }));
      socks[i].write(OPTNEG);
    }
    if (!(await m.waitFor("out of file descriptors", 10_000))) throw new Error(m.output());
    await Bun.sleep(500);
    const before = cpuTicks(m.proc.pid);
    await Bun.sleep(2000);
    const used = cpuTicks(m.proc.pid) - before;
    // A spinning accept loop burns all 200 ticks of the 2 s; a paused one next to nothing.
    expect(used).toBeLessThan(15); // main spun at 46 of 200 on a loaded 2-core machine
    expect(m.output().split("\n").filter((l) => l.includes("out of file descriptors")).length).toBe(1);
    for (const s of socks) s.terminate();
    socks.length = 0;
    if (!(await m.waitFor("file descriptors free again", 15_000))) throw new Error(`exit ${m.proc.exitCode}: ${m.output()}`);
    let mta;
    try {
      mta = await mtaFor(m.port, { readingTimeoutMs: 10_000 });
    } catch (e) {
      throw new Error(`${e}\n${m.output()}`);
    }
    await chain(mta, "body");
    expectStatus(await SESSION.endOfMessage(mta), "continue");
    await mta.quit();
  } finally {
    for (const s of socks) s.terminate();
    await m.stop();
  }
}, 60_000);
