// Daemon signal handling, in a child process that signals itself: graceful stop then exit 0, a
// second stop signal exits at once, reloads never overlap, SIGUSR1 reopens.
import { expect, test } from "bun:test";
import { runScript } from "./run-script.ts";

test("SIGHUP reloads one at a time (three during a reload = one more), SIGUSR1 reopens, SIGTERM stops and exits 0", async () => {
  const r = await runScript(`
    import { installSignals } from "@ROOT@/src/runtime/signals.ts";
    const seen = [];
    let reloads = 0, running = 0, overlap = false;
    installSignals({
      notice: (sig, what) => seen.push(sig + ": " + what),
      reopen: () => seen.push("reopened"),
      async reload() { reloads++; if (running++) overlap = true; await Bun.sleep(150); running--; },
      async stop() { seen.push("stop begins"); await Bun.sleep(50); seen.push("stop done"); console.log(JSON.stringify({ reloads, overlap, seen })); },
    });
    process.kill(process.pid, "SIGHUP");
    await Bun.sleep(30);
    for (let i = 0; i < 3; i++) { process.kill(process.pid, "SIGHUP"); await Bun.sleep(10); }
    process.kill(process.pid, "SIGUSR1");
    await Bun.sleep(500);
    process.kill(process.pid, "SIGTERM");
    setInterval(() => {}, 1000);
  `);
  expect(r.stderr).toBe("");
  expect(r.code).toBe(0);
  const o = JSON.parse(r.stdout);
  expect(o.reloads).toBe(2);
  expect(o.overlap).toBe(false);
  expect(o.seen).toContain("reopened");
  expect(o.seen.filter((s: string) => s === "SIGHUP: reloading the configuration")).toHaveLength(4);
  expect(o.seen.slice(-3)).toEqual(["SIGTERM: stopping", "stop begins", "stop done"]);
});

test("a second SIGINT/SIGTERM during the graceful stop exits at once with status 1 after atOnce()", async () => {
  const r = await runScript(`
    import { installSignals } from "@ROOT@/src/runtime/signals.ts";
    installSignals({
      notice: (sig, what) => console.log(sig + ": " + what),
      atOnce: () => console.log("last words"),
      stop: () => new Promise(() => {}), // sessions that never finish
      hardExitMs: 15000,
    });
    process.kill(process.pid, "SIGINT");
    setTimeout(() => process.kill(process.pid, "SIGTERM"), 100);
    setInterval(() => {}, 1000);
  `);
  expect(r.code).toBe(1);
  expect(r.stdout).toBe("SIGINT: stopping\nSIGTERM: second stop signal: exiting now\nlast words\n");
});

test("a graceful stop that takes longer than hardExitMs ends with status 1", async () => {
  const r = await runScript(`
    import { installSignals } from "@ROOT@/src/runtime/signals.ts";
    installSignals({ notice: (sig, what) => console.log(sig + ": " + what), stop: () => new Promise(() => {}), hardExitMs: 200 });
    process.kill(process.pid, "SIGTERM");
    setInterval(() => {}, 1000);
  `);
  expect(r.code).toBe(1);
  expect(r.stdout).toBe("SIGTERM: stopping\nSIGTERM: not stopped within 0.2 s: exiting now\n");
});

test("soft stop signals never count: SIGUSR2 then SIGTERM is one graceful stop; a second SIGTERM still exits at once", async () => {
  const r = await runScript(`
    import { installSignals } from "@ROOT@/src/runtime/signals.ts";
    installSignals({
      notice: (sig, what) => console.log(sig + ": " + what),
      softStop: ["SIGUSR2"],
      stop: () => new Promise(() => {}),
      hardExitMs: 15000,
    });
    process.kill(process.pid, "SIGUSR2");
    setTimeout(() => process.kill(process.pid, "SIGUSR2"), 50);
    setTimeout(() => process.kill(process.pid, "SIGTERM"), 100);
    setTimeout(() => process.kill(process.pid, "SIGTERM"), 200);
    setInterval(() => {}, 1000);
  `);
  expect(r.code).toBe(1);
  expect(r.stdout).toBe("SIGUSR2: stopping\nSIGUSR2: already stopping\nSIGTERM: already stopping\nSIGTERM: second stop signal: exiting now\n");
});
