/**
 * smtp-source and smtp-sink against the real thing: our smtp-source into
 * Postfix's smtp-sink, Postfix's smtp-source into our smtp-sink, and ours into
 * a private Postfix that relays to our smtp-sink. Message counts and
 * recipients must match exactly what was sent. Needs root and Postfix.
 */
import { afterAll, describe, expect, test } from "bun:test";
import * as path from "node:path";
import { readDumpDir } from "../../src/smtp/dump.ts";
import {
  e2eSkipReason, freePort, makeTempDir, pollUntil, removeDir, run, runSmtpSource, spawnTracked, startPostfix,
  startPostfixSmtpSink, stopPid, tailFile, waitForPort, waitForUnix,
} from "./lib/index.ts";

const skip = e2eSkipReason();
if (skip) console.warn(`SKIP test/e2e/smtp-source-sink.test.ts: ${skip}`);
const MAIN = path.resolve(import.meta.dir, "../../src/main.ts");
const dirs: string[] = [];
afterAll(() => { for (const d of dirs) removeDir(d); });

/** Our smtp-source, to completion. */
async function ourSource(args: string[]) {
  return run([process.execPath, MAIN, "smtp-source", "--no-summary", "-M", "client.milterkit.test", ...args], { timeoutMs: 60_000, check: false });
}

/** Our smtp-sink as a process, dumping into a fresh directory. */
async function ourSink(opts: { lmtp?: boolean; unix?: boolean } = {}) {
  const base = makeTempDir("mk-oursink-");
  dirs.push(base);
  const dump = path.join(base, "dump");
  const log = path.join(base, "sink.log");
  const port = opts.unix ? undefined : await freePort();
  const unix = opts.unix ? path.join(base, "sink.sock") : undefined;
  const where = unix ? `unix:${unix}` : `127.0.0.1:${port}`;
  const sp = spawnTracked([process.execPath, MAIN, "smtp-sink", ...(opts.lmtp ? ["-L"] : []), "-d", dump, where, "256"], { logFile: log, what: "our smtp-sink" });
  if (unix) await waitForUnix(unix, 10_000, { pid: sp.pid, logFile: log });
  else await waitForPort("127.0.0.1", port!, 10_000, { pid: sp.pid, logFile: log });
  return {
    port, unix, dump, log,
    records: () => { try { return readDumpDir(dump); } catch { return []; } },
    async waitFor(n: number) {
      const ok = await pollUntil(() => this.records().length >= n, 30_000, 50);
      if (!ok) throw new Error(`our smtp-sink: ${this.records().length} of ${n} messages\n${tailFile(log)}`);
      return this.records();
    },
    stop: () => stopPid(sp.pid, { graceMs: 2000 }),
  };
}

const numbered = (n: number, to: string) => Array.from({ length: n }, (_, i) => `${i + 1}${to}`).sort();

describe.skipIf(!!skip)("our smtp-source into Postfix's smtp-sink", () => {
  test("-r 5 -N over 3 sessions: every message and every numbered recipient arrives once", async () => {
    const sink = await startPostfixSmtpSink({ dumpDir: true });
    try {
      const r = await ourSource(["-s", "3", "-m", "10", "-r", "5", "-N", "-l", "1024", "-f", "a@source.test", "-t", "r@sink.test", `127.0.0.1:${sink.port}`]);
      expect(r.exitCode).toBe(0);
      const msgs = await sink.waitForMessages(10);
      expect(msgs.length).toBe(10);
      expect(msgs.flatMap((m) => m.rcpts).sort()).toEqual(numbered(50, "r@sink.test"));
      for (const m of msgs) {
        expect(m.from).toBe("a@source.test");
        expect(m.heloArgs).toBe("client.milterkit.test");
        expect(m.body.length).toBe(1024 + 2);
      }
      expect(new Set(msgs.map((m) => m.headers.find(([k]) => k === "Message-Id")![1])).size).toBe(10);
    } finally {
      await sink.stop();
    }
  });

  test("-d (one connection) and -P -d (pipelined): counts match", async () => {
    const sink = await startPostfixSmtpSink({ dumpDir: true });
    try {
      expect((await ourSource(["-d", "-m", "7", "-t", "d@sink.test", `127.0.0.1:${sink.port}`])).exitCode).toBe(0);
      expect((await ourSource(["-P", "-d", "-m", "13", "-r", "2", "-t", "p@sink.test", `127.0.0.1:${sink.port}`])).exitCode).toBe(0);
      const msgs = await sink.waitForMessages(20);
      expect(msgs.length).toBe(20);
      expect(msgs.filter((m) => m.rcpts.includes("d@sink.test")).length).toBe(7);
      expect(msgs.filter((m) => m.rcpts.join() === "2p@sink.test,p@sink.test").length).toBe(13);
      expect(msgs.filter((m) => m.rcpts.includes("p@sink.test")).every((m) => m.clientProto === "ESMTP")).toBe(true);
    } finally {
      await sink.stop();
    }
  });

  test("-L into an LMTP smtp-sink, and a unix: target", async () => {
    const lmtp = await startPostfixSmtpSink({ dumpDir: true, lmtp: true });
    const sockDir = makeTempDir("mk-srcunix-");
    dirs.push(sockDir);
    const unix = await startPostfixSmtpSink({ dumpDir: true, unix: path.join(sockDir, "sink.sock") });
    try {
      const r = await ourSource(["-L", "-m", "4", "-r", "3", "-t", "l@sink.test", `127.0.0.1:${lmtp.port}`]);
      expect(r.exitCode).toBe(0);
      const lm = await lmtp.waitForMessages(4);
      expect(lm.length).toBe(4);
      expect(lm.every((m) => m.clientProto === "LMTP" && m.rcpts.length === 3)).toBe(true);
      expect((await ourSource(["-m", "3", "-t", "u@sink.test", `unix:${path.join(sockDir, "sink.sock")}`])).exitCode).toBe(0);
      const um = await unix.waitForMessages(3);
      expect(um.map((m) => m.rcpts.join())).toEqual(["u@sink.test", "u@sink.test", "u@sink.test"]);
    } finally {
      await lmtp.stop();
      await unix.stop();
    }
  });
});

describe.skipIf(!!skip)("Postfix's smtp-source into our smtp-sink", () => {
  test("-r 5 -N, -d: counts and recipients match", async () => {
    const sink = await ourSink();
    try {
      await runSmtpSource({ port: sink.port, messages: 6, sessions: 2, to: "n@ours.test", extraArgs: ["-r", "5", "-N"] });
      await runSmtpSource({ port: sink.port, messages: 4, to: "d@ours.test", extraArgs: ["-d"] });
      const recs = await sink.waitFor(10);
      expect(recs.length).toBe(10);
      const n = recs.filter((r) => r.recipients.some((x) => x.endsWith("n@ours.test")));
      expect(n.flatMap((r) => r.recipients).sort()).toEqual(numbered(30, "n@ours.test"));
      expect(recs.filter((r) => r.recipients.join() === "d@ours.test").length).toBe(4);
      for (const r of recs) {
        expect(r.helo).toBe("client.milterkit.test");
        expect(r.proto).toBe("SMTP");
        expect(r.body.length).toBe(512 + 2);
      }
    } finally {
      await sink.stop();
    }
  });

  test("-L into our LMTP sink, and unix:", async () => {
    const lmtp = await ourSink({ lmtp: true });
    const unix = await ourSink({ unix: true });
    try {
      await runSmtpSource({ port: lmtp.port, messages: 3, to: "l@ours.test", extraArgs: ["-L", "-r", "2"] });
      const lr = await lmtp.waitFor(3);
      expect(lr.map((r) => [r.proto, r.recipients.join()])).toEqual(Array(3).fill(["LMTP", "2l@ours.test,l@ours.test"]));
      await runSmtpSource({ unix: unix.unix, messages: 2, to: "u@ours.test" });
      const ur = await unix.waitFor(2);
      expect(ur.map((r) => [r.clientAddr, r.recipients.join()])).toEqual(Array(2).fill(["local", "u@ours.test"]));
    } finally {
      await lmtp.stop();
      await unix.stop();
    }
  });
});

describe.skipIf(!!skip)("our smtp-source into a private Postfix relaying to our smtp-sink", () => {
  test("SMTP relay: -r 5 -N over 2 sessions and -P -d; every message and recipient arrives once", async () => {
    const sink = await ourSink();
    const pf = await startPostfix({ relayPort: sink.port! });
    try {
      let r = await ourSource(["-s", "2", "-m", "8", "-r", "5", "-N", "-l", "700", "-f", "s@source.test", "-t", "x@relay.test", `127.0.0.1:${pf.smtpPort}`]);
      expect(r.exitCode).toBe(0);
      r = await ourSource(["-P", "-d", "-m", "6", "-f", "s@source.test", "-t", "y@relay.test", `127.0.0.1:${pf.smtpPort}`]);
      expect(r.exitCode).toBe(0);
      await pf.waitQueueEmpty(30_000);
      const recs = await sink.waitFor(14);
      expect(recs.length).toBe(14);
      expect(recs.flatMap((x) => x.recipients).filter((a) => a.endsWith("x@relay.test")).sort()).toEqual(numbered(40, "x@relay.test"));
      expect(recs.filter((x) => x.recipients.join() === "y@relay.test").length).toBe(6);
      for (const x of recs) expect(x.from).toBe("s@source.test");
      // Postfix added its own Received: header in front of smtp-source's headers.
      expect(recs.every((x) => x.headers[0][0] === "Received" && x.headers.some(([k]) => k === "Message-Id"))).toBe(true);
    } finally {
      await pf.stop();
      await sink.stop();
    }
  });

  test("LMTP relay: Postfix delivers to our sink with -L", async () => {
    const sink = await ourSink({ lmtp: true });
    const pf = await startPostfix({ relayPort: sink.port!, relayLmtp: true });
    try {
      const r = await ourSource(["-m", "5", "-r", "3", "-N", "-t", "z@relay.test", `127.0.0.1:${pf.smtpPort}`]);
      expect(r.exitCode).toBe(0);
      await pf.waitQueueEmpty(30_000);
      const recs = await sink.waitFor(5);
      expect(recs.length).toBe(5);
      expect(recs.every((x) => x.proto === "LMTP")).toBe(true);
      expect(recs.flatMap((x) => x.recipients).sort()).toEqual(numbered(15, "z@relay.test"));
    } finally {
      await pf.stop();
      await sink.stop();
    }
  });
});
