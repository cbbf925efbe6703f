// Privilege drop, daemon readiness and worker pools, each in a child process (they change the process itself).
import { describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { lookupGroup, lookupUser, PrivilegeError } from "../../src/runtime/privilege.ts";
import { removePidFile, writePidFile } from "../../src/runtime/daemon.ts";
import { runScript as runShared } from "./run-script.ts";

const isRoot = process.getuid?.() === 0;

// These scripts start daemons and worker pools of their own: a longer bound than the default.
const runScript = (code: string, o: Parameters<typeof runShared>[1] = {}) => runShared(code, { timeoutMs: 30_000, ...o });

describe("privilege", () => {
  test("users and groups by name or number", () => {
    expect(lookupUser("nobody")).toEqual({ name: "nobody", uid: 65534, gid: 65534 });
    expect(lookupUser(65534).name).toBe("nobody");
    expect(lookupGroup("mail")).toBe(8);
    expect(lookupGroup("12")).toBe(12);
    expect(() => lookupUser("no-such-user-xyz")).toThrow(PrivilegeError);
    expect(() => lookupGroup("no-such-group-xyz")).toThrow(/unknown group/);
  });

  test.skipIf(!isRoot)("as root: initgroups + setgid + setuid, root cannot be regained", async () => {
    const r = await runScript(`
      import { dropPrivileges } from "@ROOT@/src/runtime/privilege.ts";
      const d = dropPrivileges({ user: "daemon", group: "mail" });
      const st = require("fs").readFileSync("/proc/self/status", "latin1");
      console.log(JSON.stringify({ d, uid: st.match(/Uid:\\s+(.*)/)[1], gid: st.match(/Gid:\\s+(.*)/)[1], groups: st.match(/Groups:\\s*(.*)/)[1] }));
      try { process.setuid(0); console.log("REGAINED"); } catch { console.log("stuck"); }
    `);
    expect(r.stderr).toBe("");
    const [json, after] = r.stdout.trim().split("\n");
    const o = JSON.parse(json);
    expect(o.d.user).toEqual({ name: "daemon", uid: 1, gid: 1 });
    expect(o.uid.split(/\s+/)).toEqual(["1", "1", "1", "1"]);
    expect(o.gid.split(/\s+/)).toEqual(["8", "8", "8", "8"]);
    expect(o.groups.split(/\s+/)).not.toContain("0");
    expect(after).toBe("stuck");
  });

  test("not root: asking for a user is a clear error, asking for nothing is a no-op", async () => {
    const r = await runScript(`
      import { dropPrivileges } from "@ROOT@/src/runtime/privilege.ts";
      console.log(String(dropPrivileges({})));
      try { dropPrivileges({ user: "daemon" }); } catch (e) { console.log(e.name + ": " + e.message); }
    `, { uid: isRoot ? 65534 : undefined });
    expect(r.stdout).toMatch(/^undefined\nPrivilegeError: cannot switch to user "daemon": only root can change user or group \(running as uid \d+\)\n$/);
  });
});

describe("daemon", () => {
  test("detach: READY makes the parent succeed; FAIL and an early exit make it fail with the reason", async () => {
    const child = `
      import { detach, isDaemonChild, notifyReady, notifyFailure } from "@ROOT@/src/runtime/daemon.ts";
      const mode = process.env.MODE;
      if (!isDaemonChild()) {
        const r = await detach({ timeoutMs: 10000 });
        console.log(JSON.stringify({ ok: r.ok, message: r.message.replace(/\\d+/g, "N") }));
        process.exit(r.ok ? 0 : 1);
      }
      if (mode === "ok") { notifyReady(); setTimeout(() => process.exit(0), 200); }
      else if (mode === "fail") { notifyFailure("cannot listen on inet:1: address already in use"); process.exit(1); }
      else process.exit(3);
    `;
    expect((await runScript(child, { env: { MODE: "ok" } })).stdout.trim()).toBe('{"ok":true,"message":"READY pid=N"}');
    const f = await runScript(child, { env: { MODE: "fail" } });
    expect(f.code).toBe(1);
    expect(f.stdout.trim()).toBe('{"ok":false,"message":"cannot listen on inet:N: address already in use"}');
    expect((await runScript(child, { env: { MODE: "die" } })).stdout.trim()).toBe('{"ok":false,"message":"process N exited before it was ready"}');
  });

  test("pid files", () => {
    const dir = mkdtempSync(join(tmpdir(), "mk-rt-pid-"));
    try {
      const f = join(dir, "x.pid");
      const id = writePidFile(f, 1234);
      expect(readFileSync(f, "latin1")).toBe("1234\n");
      removePidFile(f, id, 99); // not ours: stays
      expect(readFileSync(f, "latin1")).toBe("1234\n");
      // Replaced by another file with our pid (not the file we wrote): stays.
      const other = join(dir, "other.pid");
      writeFileSync(other, "1234\n");
      renameSync(f, `${f}.moved`);
      renameSync(other, f);
      removePidFile(f, id, 1234);
      expect(readFileSync(f, "latin1")).toBe("1234\n");
      renameSync(`${f}.moved`, f);
      removePidFile(f, id, 1234);
      expect(() => readFileSync(f)).toThrow();
      expect(() => writePidFile(join(dir, "no/such/dir.pid"))).toThrow(/cannot write pid file/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("workers", () => {
  test("a pool of reusePort workers on one port; a killed worker is restarted", async () => {
    const r = await runScript(`
      import { probeAddress, WorkerPool, workerIndex, WORKER_SPEC_ENV } from "@ROOT@/src/runtime/workers.ts";
      import { notifyReady } from "@ROOT@/src/runtime/daemon.ts";
      import { listen } from "@ROOT@/src/net/listener.ts";
      import { parseSpec } from "@ROOT@/src/net/spec.ts";
      if (workerIndex() !== undefined) {
        const spec = parseSpec(process.env[WORKER_SPEC_ENV], { allowPortZero: true });
        await listen(spec, { connection(c) { c.send(Buffer.from(String(process.pid))); void c.close(); } }, { reusePort: true });
        notifyReady();
      } else {
        const spec = await probeAddress(parseSpec("inet:0@[127.0.0.1]", { allowPortZero: true }));
        const pool = new WorkerPool({ n: 3, spec, restartDelayMs: 100 });
        await pool.start();
        const ask = () => new Promise((res) => { let b = ""; Bun.connect({ hostname: "127.0.0.1", port: spec.port, socket: { data(_s, d) { b += d; }, close() { res(Number(b)); } } }); });
        const seen = new Set();
        for (let i = 0; i < 200 && seen.size < 3; i++) seen.add(await ask());
        const first = pool.pids;
        process.kill(first[0], "SIGKILL");
        const t0 = Date.now();
        while ((pool.pids.length < 3 || pool.pids.includes(first[0])) && Date.now() - t0 < 10000) await Bun.sleep(50);
        await Bun.sleep(300);
        const after = pool.pids;
        await pool.stop();
        console.log(JSON.stringify({ seen: seen.size, workers: first.length, restarted: after.length === 3 && !after.includes(first[0]) }));
        process.exit(0);
      }
    `);
    expect(r.stdout.trim()).toBe('{"seen":3,"workers":3,"restarted":true}');
  }, 40_000);
});
