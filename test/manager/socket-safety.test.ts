// The unix socket as root: its owner and mode are set without following a
// name that was swapped for a symlink (a race tried 50 times against an attacker process that
// swaps the name as fast as it can), and at stop only our own socket is removed — a file that
// replaced it stays, and remove_unix_socket_on_close = false keeps the socket.
import { afterAll, describe, expect, test } from "bun:test";
import { chmodSync, chownSync, existsSync, lstatSync, mkdirSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { listen, ListenError } from "../../src/net/listener.ts";
import { parseSpec } from "../../src/net/spec.ts";
import { chownFile } from "../../src/runtime/lifecycle.ts";
import { lookupUser } from "../../src/runtime/privilege.ts";
import { isRoot, startForeground, workDir, writeConfig } from "./support/daemon.ts";

const work = workDir("mk-socket-safety-");
afterAll(() => work.remove());

/**
 * A process that, as fast as it can, moves `path` away and puts a symlink to `victim` there, until
 * stop() (or 30 s); stop() resolves to how many times it swapped the name.
 */
async function attacker(path: string, victim: string): Promise<{ stop(): Promise<number> }> {
  const stopFile = `${path}.stop`;
  rmSync(stopFile, { force: true });
  const script = `
    const { existsSync, renameSync, symlinkSync } = require("node:fs");
    const [path, victim, stopFile] = process.argv.slice(2);
    const end = Date.now() + 30000;
    let hits = 0;
    console.log("ready");
    for (let n = 1; ; n++) {
      try { renameSync(path, path + ".moved"); symlinkSync(victim, path); hits++; } catch {}
      if (n % 1024 === 0 && (existsSync(stopFile) || Date.now() > end)) break;
    }
    console.log("hits " + hits);`;
  const file = join(work.dir, "attacker.js");
  writeFileSync(file, script);
  const proc = Bun.spawn([process.execPath, file, path, victim, stopFile], { stdout: "pipe", stderr: "inherit" });
  const killer = setTimeout(() => proc.kill("SIGKILL"), 40_000);
  const reader = (proc.stdout as ReadableStream<Uint8Array>).getReader();
  let text = "";
  while (!text.includes("ready")) {
    const r = await reader.read(); // it is running: the tries start now
    if (r.done) break;
    text += Buffer.from(r.value).toString("latin1");
  }
  return {
    async stop() {
      writeFileSync(stopFile, "");
      for (;;) {
        const r = await reader.read();
        if (r.done) break;
        text += Buffer.from(r.value).toString("latin1");
      }
      await proc.exited;
      clearTimeout(killer);
      return Number(/hits (\d+)/.exec(text)?.[1] ?? 0);
    },
  };
}

/** Owner, group and permission bits, not following a symlink. */
function owner(path: string): string {
  const st = lstatSync(path);
  return `${st.uid}:${st.gid} ${(st.mode & 0o7777).toString(8)}`;
}

/** A file of root's, mode 0600, that the attacker wants us to change. */
function victimFile(name: string): string {
  const victim = join(work.dir, name);
  writeFileSync(victim, "secret\n");
  chownSync(victim, 0, 0);
  chmodSync(victim, 0o600);
  return victim;
}

describe.skipIf(!isRoot)("as root, the socket's owner and mode are never set through a swapped name", () => {
  test("listen() with mode and group: 50 tries against an attacker, the victim file is never changed", async () => {
    const dir = join(work.dir, "race1");
    const path = join(dir, "m.sock");
    const victim = victimFile("victim1");
    await listen(parseSpec(`unix:${path}`), { connection: (c) => c.destroy() }).then((l) => l.close()); // makes the directory
    const evil = await attacker(path, victim);
    let refused = 0;
    let hits = 0;
    try {
      // At least 50 tries, and more (bounded) until the attacker has won the race at least once.
      for (let i = 0; i < 50 || (refused === 0 && i < 2000); i++) {
        try {
          const l = await listen(parseSpec(`unix:${path}`), { connection: (c) => c.destroy() }, { mode: 0o666, group: 8 });
          await l.close();
        } catch (e) {
          if (!(e instanceof ListenError)) throw e;
          refused++; // the name was swapped before we could set mode and group: refused, nothing changed
        }
        for (const p of [path, `${path}.moved`]) rmSync(p, { force: true });
        expect(owner(victim)).toBe("0:0 600");
      }
    } finally {
      hits = await evil.stop();
    }
    expect(hits).toBeGreaterThan(0); // the race did happen
    expect(refused).toBeGreaterThan(0);
    expect(owner(victim)).toBe("0:0 600");
  }, 60_000);

  test("chownFile (the socket handed to the user we become): 50 tries, the victim file is never changed", async () => {
    const dir = join(work.dir, "race2");
    const path = join(dir, "m.sock");
    const victim = victimFile("victim2");
    const evil = await attacker(path, victim);
    let swapped = 0;
    try {
      for (let i = 0; i < 50 || (swapped === 0 && i < 2000); i++) {
        try {
          const l = await listen(parseSpec(`unix:${path}`), { connection: (c) => c.destroy() });
          try {
            const nobody = lookupUser("nobody");
            chownFile(path, "socket", { uid: nobody.uid, gid: nobody.gid });
          } catch {
            swapped++; // refused: the name no longer points to our socket
          }
          await l.close();
        } catch (e) {
          if (!(e instanceof ListenError)) throw e;
        }
        for (const p of [path, `${path}.moved`]) rmSync(p, { force: true });
        expect(owner(victim)).toBe("0:0 600");
      }
    } finally {
      expect(await evil.stop()).toBeGreaterThan(0);
    }
  }, 60_000);
});

describe.skipIf(!isRoot)("at stop, only our own socket is removed (manager as root, dropping to nobody)", () => {
  test("the socket moved away and a regular file put in its place: SIGTERM leaves the file", async () => {
    const run = join(work.dir, "stop1");
    const sock = join(run, "m.sock");
    const config = writeConfig(join(work.dir, "stop1.json"), { log: { use_syslog: false } });
    const m = await startForeground(["--config", config, "--no-daemon", "-s", `unix:${sock}`]);
    renameSync(sock, `${sock}.away`);
    writeFileSync(sock, "not a socket\n");
    expect(await m.stop()).toBe(0);
    expect(existsSync(sock)).toBe(true);
    expect(lstatSync(sock).isFile()).toBe(true);
    expect(existsSync(`${sock}.away`)).toBe(true); // moved away: not ours to look for either
  }, 30_000);

  test("remove_unix_socket_on_close = false keeps the socket; true (the default) removes it", async () => {
    const run = join(work.dir, "stop2");
    const sock = join(run, "m.sock");
    const keep = writeConfig(join(work.dir, "stop2.json"), { log: { use_syslog: false }, manager: { remove_unix_socket_on_close: false } });
    const m = await startForeground(["--config", keep, "--no-daemon", "-s", `unix:${sock}`]);
    expect(await m.stop()).toBe(0);
    expect(lstatSync(sock).isSocket()).toBe(true);
    // Also in an existing directory only root can write to (nobody could not even re-link it there).
    const rootDir = join(work.dir, "stop2-root");
    mkdirSync(rootDir, { mode: 0o755 });
    const sock2 = join(rootDir, "m.sock");
    const m3 = await startForeground(["--config", keep, "--no-daemon", "-s", `unix:${sock2}`]);
    expect(await m3.stop()).toBe(0);
    expect(lstatSync(sock2).isSocket()).toBe(true);
    const removing = writeConfig(join(work.dir, "stop3.json"), { log: { use_syslog: false } });
    const m2 = await startForeground(["--config", removing, "--no-daemon", "-s", `unix:${sock}`]); // reclaims the stale one
    expect(await m2.stop()).toBe(0);
    expect(existsSync(sock)).toBe(false);
  }, 30_000);
});
