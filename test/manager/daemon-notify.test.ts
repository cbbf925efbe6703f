// systemd's readiness protocol from a real manager process: a fake $NOTIFY_SOCKET (a unix
// datagram socket bound by python3, as systemd binds its own) receives READY=1 only once the
// manager listens, RELOADING=1 (with MONOTONIC_USEC) and READY=1 around a SIGHUP reload,
// STOPPING=1 at SIGTERM; with workers only the supervisor speaks; a failed start says why.
import { afterAll, describe, expect, test } from "bun:test";
import { chmodSync, existsSync } from "node:fs";
import { connect } from "node:net";
import { join } from "node:path";
import { monotonicMicroseconds } from "../../src/runtime/datagram.ts";
import { freePort, MAIN, startForeground, until, workDir, writeConfig } from "./support/daemon.ts";

const work = workDir("mk-notify-");
afterAll(() => work.remove());

/** A datagram socket at `path` (world-writable, as systemd's), collecting what it receives. */
async function notifySocket(path: string) {
  const script = [
    "import json, socket, sys, time",
    "s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)",
    "s.bind(sys.argv[1])",
    "s.settimeout(1)",
    "print('bound', flush=True)",
    "end = time.time() + 60",
    "while time.time() < end:",
    "    try: d = s.recv(4096)",
    "    except socket.timeout: continue",
    "    print(json.dumps(d.decode()), flush=True)",
  ].join("\n");
  const proc = Bun.spawn(["python3", "-c", script, path], { stdout: "pipe", stderr: "inherit" });
  let out = "";
  void (async () => {
    for await (const chunk of proc.stdout) out += Buffer.from(chunk).toString();
  })();
  await until(() => out.startsWith("bound\n"), 10_000, "notify socket bound");
  chmodSync(path, 0o777);
  return {
    messages: (): string[] => out.split("\n").slice(1).filter(Boolean).map((l) => JSON.parse(l)),
    close: () => proc.kill(),
  };
}

/** Does something accept TCP connections on 127.0.0.1:port right now? */
function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host: "127.0.0.1", port }, () => (s.destroy(), resolve(true)));
    s.on("error", () => resolve(false));
  });
}

const config = (extra: object = {}) => ({ log: { use_syslog: false, level: "default|info" }, ...extra });

describe("systemd notification ($NOTIFY_SOCKET)", () => {
  test("READY=1 once it listens, RELOADING=1 then READY=1 around SIGHUP, STOPPING=1 at SIGTERM", async () => {
    const sock = join(work.dir, "notify1");
    const n = await notifySocket(sock);
    try {
      const port = freePort();
      const file = writeConfig(join(work.dir, "one.json"), config());
      const proc = Bun.spawn([process.execPath, MAIN, "manager", "--config", file, "-s", `inet:${port}@127.0.0.1`], {
        env: { ...process.env, NOTIFY_SOCKET: sock },
        stdout: "ignore",
        stderr: "pipe",
      });
      try {
        await until(() => n.messages().length > 0, 15_000, "READY=1");
        expect(await accepts(port)).toBe(true); // it was listening when it said so
        expect(n.messages()).toEqual(["READY=1"]);

        const before = monotonicMicroseconds();
        proc.kill("SIGHUP");
        await until(() => n.messages().length >= 3, 10_000, "RELOADING=1, READY=1");
        const [reloading, ready] = n.messages().slice(1);
        const m = /^RELOADING=1\nMONOTONIC_USEC=(\d+)$/.exec(reloading);
        expect(m).not.toBeNull();
        expect(BigInt(m![1])).toBeGreaterThanOrEqual(before); // the same clock as ours, taken after we signalled
        expect(BigInt(m![1]) - before).toBeLessThan(30_000_000n);
        expect(ready).toBe("READY=1");

        proc.kill("SIGTERM");
        expect(await proc.exited).toBe(0);
        await until(() => n.messages().length >= 4, 5000, "STOPPING=1");
        expect(n.messages().slice(3)).toEqual(["STOPPING=1"]);
      } finally {
        proc.kill("SIGKILL");
      }
    } finally {
      n.close();
    }
  }, 60_000);

  test("with n_workers only the supervisor speaks: one READY=1", async () => {
    const sock = join(work.dir, "notify2");
    const n = await notifySocket(sock);
    try {
      const port = freePort();
      const file = writeConfig(join(work.dir, "workers.json"), config({ manager: { n_workers: 2 } }));
      const fg = await startForeground(["--config", file, "-s", `inet:${port}@127.0.0.1`], { env: { NOTIFY_SOCKET: sock }, ready: "2 workers listening" });
      try {
        await until(() => n.messages().length > 0, 10_000, "READY=1");
        await Bun.sleep(300); // a worker that spoke too would have done so by now
        expect(n.messages()).toEqual(["READY=1"]);
      } finally {
        expect(await fg.stop()).toBe(0);
      }
      expect(n.messages()).toEqual(["READY=1", "STOPPING=1"]);
    } finally {
      n.close();
    }
  }, 60_000);

  test("a failed start-up tells systemd why (STATUS=) and never READY=1", async () => {
    const sock = join(work.dir, "notify3");
    const n = await notifySocket(sock);
    const busy = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
    try {
      const file = writeConfig(join(work.dir, "busy.json"), config());
      const proc = Bun.spawn([process.execPath, MAIN, "manager", "--config", file, "-s", `inet:${busy.port}@127.0.0.1`], {
        env: { ...process.env, NOTIFY_SOCKET: sock },
        stdout: "ignore",
        stderr: "pipe",
      });
      expect(await proc.exited).toBe(1);
      await until(() => n.messages().length > 0, 5000, "STATUS=");
      expect(n.messages()).toHaveLength(1);
      expect(n.messages()[0]).toMatch(/^STATUS=.*127\.0\.0\.1.*in use/i);
      expect(existsSync(sock)).toBe(true);
    } finally {
      busy.stop(true);
      n.close();
    }
  }, 60_000);
});
