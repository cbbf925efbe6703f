// manager.max_file_descriptors (setrlimit through libc, checked in /proc) and the
// max_connections gate with suspend_time_on_unacceptable.
import { describe, expect, test } from "bun:test";
import { ConnectionGate, fileDescriptorLimit, LimitError, setFileDescriptorLimit } from "../../src/runtime/limits.ts";
import { runScript } from "./run-script.ts";

const isRoot = process.getuid?.() === 0;

describe("open-file limit", () => {
  test("read from /proc/<pid>/limits", () => {
    const l = fileDescriptorLimit();
    expect(l.soft).toBeGreaterThan(0);
    expect(l.hard).toBeGreaterThanOrEqual(l.soft);
  });

  test("setrlimit(RLIMIT_NOFILE) sets soft and hard, as /proc shows", async () => {
    const r = await runScript(`
      import { setFileDescriptorLimit } from "@ROOT@/src/runtime/limits.ts";
      const set = setFileDescriptorLimit(1000);
      const line = require("fs").readFileSync("/proc/self/limits", "latin1").split("\\n").find((l) => l.startsWith("Max open files"));
      console.log(JSON.stringify({ set, line: line.replace(/\\s+/g, " ").trim() }));
    `);
    expect(r.stderr).toBe("");
    expect(JSON.parse(r.stdout)).toEqual({ set: { soft: 1000, hard: 1000, partial: false }, line: "Max open files 1000 1000 files" });
  });

  test.skipIf(!isRoot)("above the hard limit without the right to raise it: the soft limit goes up to the hard one, marked partial", async () => {
    const r = await runScript(`
      import { setFileDescriptorLimit } from "@ROOT@/src/runtime/limits.ts";
      setFileDescriptorLimit(512);          // lower both: allowed to anyone
      process.setgid(65534); process.setuid(65534);
      console.log(JSON.stringify(setFileDescriptorLimit(4096)));
    `);
    expect(r.stderr).toBe("");
    expect(JSON.parse(r.stdout)).toEqual({ soft: 512, hard: 512, partial: true });
  });

  test("nonsense values are refused with the value", () => {
    expect(() => setFileDescriptorLimit(0)).toThrow(LimitError);
    expect(() => setFileDescriptorLimit(1.5)).toThrow(/got 1.5/);
  });
});

describe("ConnectionGate", () => {
  test("unlimited (max 0): everything enters at once", () => {
    const gate = new ConnectionGate({ max: 0, suspendMs: 1000 });
    for (let i = 0; i < 100; i++) expect(gate.enter(() => {}).admitted).toBe(true);
    expect(gate.active).toBe(100);
    expect(gate.suspended).toBe(false);
  });

  test("at the limit: later connections wait; the gate looks again only after the suspend time, then admits in order", async () => {
    const suspends: [number, number][] = [];
    const gate = new ConnectionGate({ max: 2, suspendMs: 40, onSuspend: (a, w) => suspends.push([a, w]) });
    const admitted: string[] = [];
    expect(gate.enter(() => admitted.push("a")).admitted).toBe(true);
    expect(gate.enter(() => admitted.push("b")).admitted).toBe(true);
    const c = gate.enter(() => admitted.push("c"));
    const d = gate.enter(() => admitted.push("d"));
    expect(c.admitted || d.admitted).toBe(false);
    expect(gate.waiting).toBe(2);
    expect(gate.suspended).toBe(true);
    expect(suspends).toEqual([[2, 1]]);
    gate.leave(); // room for one, but accepting is paused until the suspend time is over
    expect(admitted).toEqual([]);
    // While paused even a free slot does not let a newcomer pass ahead of the waiting ones.
    const e = gate.enter(() => admitted.push("e"));
    expect(e.admitted).toBe(false);
    const until = Date.now() + 3000;
    while (admitted.length === 0 && Date.now() < until) await Bun.sleep(5);
    expect(admitted).toEqual(["c"]); // one slot: c; d and e wait for the next look
    expect(gate.active).toBe(2);
    expect(gate.suspended).toBe(true);
    expect(suspends[1]).toEqual([2, 2]);
    gate.leave();
    gate.leave();
    while (admitted.length < 3 && Date.now() < until) await Bun.sleep(5);
    expect(admitted).toEqual(["c", "d", "e"]);
    expect(gate.waiting).toBe(0);
    gate.close();
  });

  test("a waiting connection that goes away is never admitted; update() applies a new limit", async () => {
    const gate = new ConnectionGate({ max: 1, suspendMs: 20 });
    const admitted: string[] = [];
    gate.enter(() => admitted.push("a"));
    const b = gate.enter(() => admitted.push("b"));
    const c = gate.enter(() => admitted.push("c"));
    b.cancel();
    expect(gate.waiting).toBe(1);
    gate.update({ max: 3, suspendMs: 20 });
    expect(admitted).toEqual([]); // still paused: the next look admits
    const until = Date.now() + 3000;
    while (admitted.length === 0 && Date.now() < until) await Bun.sleep(5);
    expect(admitted).toEqual(["c"]);
    expect(gate.active).toBe(2);
    void c;
    gate.close();
  });
});
