/**
 * End to end: a private Postfix on 127.0.0.1 hands every message to `milterkit manager` (a process
 * started from src/main.ts), whose children are three real, independently written milters: the
 * libmilter C sample (adds "X-Bench-Milter: libmilter"), the pymilter sample (adds
 * "X-Bench-Milter: pymilter") and opendkim (signs d=bench.test with a fresh test key). Mail is sent
 * with our smtp-source (and, where each message's fate matters, with the harness's SMTP client) and
 * lands in Postfix's smtp-sink, which writes one file per message. Checked at the sink:
 *   - every message carries both headers and a DKIM-Signature that verifies (dkimpy, key from the
 *     .txt file, no DNS);
 *   - a child configured to reject makes Postfix refuse the message with that child's reply;
 *   - a child killed (SIGKILL) in the middle of a run counts as its fallback (accept): every
 *     message still arrives, exactly once;
 *   - a child that hangs (SIGSTOP) counts as its fallback (temporary-failure) once its timeout
 *     expired: Postfix answers 4xx, every accepted message arrives exactly once, no refused one does.
 * Everything runs twice: over TCP (Postfix → manager → children on 127.0.0.1) and over unix
 * sockets. Needs root and Postfix (skipped otherwise).
 */
import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import * as fs from "node:fs";
import * as path from "node:path";
import {
  cleanEnv,
  dumpFiles,
  type DumpedMessage,
  e2eSkipReason,
  headerValues,
  type Peer,
  pollUntil,
  type PostfixInstance,
  readDump,
  sendMail,
  type SendMailResult,
  type ManagerProcess,
  type Sink,
  startLibmilter,
  startManagerProcess,
  startOpendkim,
  startPostfix,
  startPostfixSmtpSink,
  startPymilter,
  transcript,
  verifyDkim,
} from "./lib/index.ts";

const skip = e2eSkipReason();
if (skip) console.warn(`SKIP test/e2e/manager-postfix.test.ts: ${skip}`);

const ROOT = path.join(import.meta.dir, "../..");
const MAIN = path.join(ROOT, "src/main.ts");
const FROM = "bench@bench.test"; // opendkim signs mail from this domain
const TO = "rcpt@example.test";

type Transport = "inet" | "unix";

interface ChildConfig {
  name: string;
  connection_spec: string;
  fallback_status?: "accept" | "temporary-failure" | "reject" | "discard";
  connection_timeout?: number;
  reading_timeout?: number;
  writing_timeout?: number;
  end_of_message_timeout?: number;
}

/** The manager with these children, on `transport` (lib/manager.ts). */
function startManager(transport: Transport, milters: ChildConfig[]): Promise<ManagerProcess> {
  return startManagerProcess({ transport, milters: milters as unknown as Record<string, unknown>[] });
}

/** Our smtp-source (`milterkit smtp-source`), its JSON summary and exit code. */
async function smtpSource(port: number, messages: number, sessions: number): Promise<{ exitCode: number; summary: Record<string, any> | undefined; stderr: string }> {
  const proc = Bun.spawn(
    [process.execPath, MAIN, "smtp-source", "-4", "-M", "client.milterkit.test", "-m", String(messages), "-s", String(sessions), "-l", "1024",
      "-f", FROM, "-t", TO, "--json", `127.0.0.1:${port}`],
    { cwd: ROOT, env: cleanEnv(), stdout: "pipe", stderr: "pipe" },
  );
  const killer = setTimeout(() => proc.kill("SIGKILL"), 120_000);
  const [out, err, exitCode] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  clearTimeout(killer);
  const line = out.split("\n").find((l) => l.startsWith("{"));
  return { exitCode, summary: line ? JSON.parse(line) : undefined, stderr: err };
}

/** A message identity that Postfix makes unique: its queue id, from its own Received: header. */
function queueId(m: DumpedMessage): string {
  for (const v of headerValues(m, "Received")) {
    const id = /\bwith E?SMTP id ([0-9A-Za-z]+)/.exec(v);
    if (id) return id[1];
  }
  throw new Error(`no Postfix Received: header with a queue id in ${m.file}:\n${m.raw.slice(0, 2000)}`);
}

/** Run `f` on every item, at most `n` at a time. */
async function eachLimited<T, R>(items: T[], n: number, f: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(n, items.length) }, async () => {
      while (next < items.length) {
        const i = next++;
        out[i] = await f(items[i], i);
      }
    }),
  );
  return out;
}

for (const transport of ["inet", "unix"] as const) {
  describe.skipIf(!!skip)(`Postfix → milterkit manager → libmilter + pymilter + opendkim over ${transport}`, () => {
    const sockets = transport === "unix" ? { unix: true as const } : {};
    let sink: Sink;
    let libmilter: Peer;
    let pymilter: Peer;
    let opendkim: Peer;
    let pf: PostfixInstance;
    let manager: ManagerProcess | undefined;
    const extraPeers: Peer[] = [];

    beforeAll(async () => {
      sink = await startPostfixSmtpSink({ dumpDir: true });
      [libmilter, pymilter, opendkim] = await Promise.all([startLibmilter(sockets), startPymilter(sockets), startOpendkim(sockets)]);
      pf = await startPostfix({ relayPort: sink.port!, defaultAction: "tempfail" });
    }, 120_000);

    afterAll(async () => {
      await pf?.stop();
      await Promise.all([libmilter?.stop(), pymilter?.stop(), opendkim?.stop(), sink?.stop()]);
    }, 60_000);

    afterEach(async () => {
      await pf.setMainCf({ smtpd_milters: "" });
      await manager?.stop();
      manager = undefined;
      for (const p of extraPeers.splice(0)) await p.stop();
      // every test starts with an empty dump directory and an empty queue
      await pf.waitQueueEmpty(30_000).catch(() => {});
      for (const f of dumpFiles(sink.dumpDir!)) fs.rmSync(f, { force: true });
    }, 60_000);

    /** Start the manager with these children and make it Postfix's only milter. */
    async function useManager(milters: ChildConfig[]): Promise<ManagerProcess> {
      manager = await startManager(transport, milters);
      await pf.setMainCf({ smtpd_milters: manager.postfixSpec });
      return manager;
    }

    const diagnostics = () => `manager log:\n${manager?.log().slice(-6000)}\nmaillog:\n${pf.maillog().slice(-6000)}`;

    test("every message carries both headers and a DKIM signature that verifies", async () => {
      await useManager([
        { name: "libmilter", connection_spec: libmilter.spec },
        { name: "pymilter", connection_spec: pymilter.spec },
        { name: "opendkim", connection_spec: opendkim.spec },
      ]);
      const N = 20;
      const run = await smtpSource(pf.smtpPort, N, 4);
      expect(run.exitCode, `${run.stderr}\n${diagnostics()}`).toBe(0);
      expect(run.summary?.sent).toBe(N);
      const messages = await sink.waitForMessages(N, 30_000);
      await pf.waitQueueEmpty(30_000);
      expect(readDump(sink.dumpDir!).length).toBe(N);
      expect(new Set(messages.map(queueId)).size).toBe(N);
      const verified = await eachLimited(messages, 4, async (m) => {
        expect(headerValues(m, "X-Bench-Milter").sort(), m.raw).toEqual(["libmilter", "pymilter"]);
        const sig = headerValues(m, "DKIM-Signature");
        expect(sig.length, m.raw).toBe(1);
        expect(sig[0]).toContain("d=bench.test");
        expect(sig[0]).toContain("s=bench");
        return verifyDkim(m.raw, opendkim.keyTxtPath!);
      });
      expect(verified).toEqual(messages.map(() => true));
      const finished = await pollUntil(() => manager!.log().includes(`[sessions][finished] ${N}(+1) `), 10_000);
      expect(finished, diagnostics()).toBe(true);
    }, 120_000);

    test("a child that rejects makes Postfix refuse the message with the child's reply", async () => {
      const rejecting = await startLibmilter({ ...sockets, reject: "550 5.7.1 Rejected by the rejecting child" });
      extraPeers.push(rejecting);
      await useManager([
        { name: "pymilter", connection_spec: pymilter.spec },
        { name: "rejecting", connection_spec: rejecting.spec },
        { name: "opendkim", connection_spec: opendkim.spec },
      ]);
      const r = await sendMail({
        port: pf.smtpPort,
        from: FROM,
        rcpts: [TO],
        data: `From: ${FROM}\r\nTo: ${TO}\r\nSubject: refuse me\r\n\r\nThis message is refused.\r\n`,
      });
      expect(r.accepted, transcript(r.steps)).toBe(false);
      expect(r.final?.code, transcript(r.steps)).toBe(550);
      expect(r.final?.text).toBe("5.7.1 Rejected by the rejecting child");
      // smtp-source stops at the refusal (exit 1) having sent nothing
      const run = await smtpSource(pf.smtpPort, 3, 1);
      expect(run.exitCode).not.toBe(0);
      expect(run.summary?.sent ?? 0).toBe(0);
      await pf.waitForLog(/milter-reject: END-OF-MESSAGE from [^:]+: 5\.7\.1 Rejected by the rejecting child/, 10_000);
      await pf.waitQueueEmpty(30_000);
      expect(sink.count(), diagnostics()).toBe(0);
    }, 90_000);

    test("a child killed in the middle of a run counts as its fallback (accept); no message is lost or duplicated", async () => {
      const victim = await startPymilter({ ...sockets, headerName: "X-Victim", header: "alive" });
      extraPeers.push(victim);
      await useManager([
        { name: "libmilter", connection_spec: libmilter.spec },
        { name: "victim", connection_spec: victim.spec, fallback_status: "accept", connection_timeout: 5, reading_timeout: 5, end_of_message_timeout: 5 },
        { name: "opendkim", connection_spec: opendkim.spec },
      ]);
      const N = 150;
      const running = smtpSource(pf.smtpPort, N, 5);
      // kill the child once a fifth of the messages arrived, while the rest are on their way
      const arrived = await pollUntil(() => sink.count() >= N / 5, 60_000, 10);
      expect(arrived, diagnostics()).toBe(true);
      process.kill(victim.pid, "SIGKILL");
      const killedAfter = sink.count();
      const run = await running;
      expect(run.exitCode, `${run.stderr}\n${diagnostics()}`).toBe(0);
      expect(run.summary?.sent).toBe(N);
      expect(killedAfter, "the run ended before the kill").toBeLessThan(N);
      const messages = await sink.waitForMessages(N, 60_000);
      await pf.waitQueueEmpty(30_000);
      const all = readDump(sink.dumpDir!);
      expect(all.length, diagnostics()).toBe(N);
      expect(new Set(all.map(queueId)).size).toBe(N);
      for (const m of all) {
        expect(headerValues(m, "X-Bench-Milter"), m.raw).toEqual(["libmilter"]);
        expect(headerValues(m, "DKIM-Signature").length, m.raw).toBe(1);
      }
      const withVictim = all.filter((m) => headerValues(m, "X-Victim").length === 1).length;
      expect(withVictim).toBeGreaterThanOrEqual(killedAfter); // the ones before the kill
      expect(withVictim).toBeLessThan(N); // the ones after it went without the child
      // a sample of the signatures, from both sides of the kill
      const sample = [...messages.slice(0, 3), ...messages.slice(-3)];
      expect(await eachLimited(sample, 3, (m) => verifyDkim(m.raw, opendkim.keyTxtPath!))).toEqual(sample.map(() => true));
      expect(manager!.log()).toMatch(/milter victim .*(failed|not available), counted as accept/);
    }, 180_000);

    test("a child that hangs counts as its fallback (temporary-failure) after its timeout; accepted mail arrives exactly once", async () => {
      const victim = await startPymilter({ ...sockets, headerName: "X-Victim", header: "alive" });
      extraPeers.push(victim);
      await useManager([
        { name: "libmilter", connection_spec: libmilter.spec },
        {
          name: "victim",
          connection_spec: victim.spec,
          fallback_status: "temporary-failure",
          connection_timeout: 2,
          reading_timeout: 2,
          writing_timeout: 2,
          end_of_message_timeout: 2,
        },
      ]);
      const N = 24;
      const results: (SendMailResult | undefined)[] = new Array(N);
      let stopped = false;
      try {
        await eachLimited(Array.from({ length: N }, (_, i) => i), 4, async (i) => {
          if (i === N / 3 && !stopped) {
            // freeze the child: it neither answers nor closes its connections
            process.kill(victim.pid, "SIGSTOP");
            stopped = true;
          }
          results[i] = await sendMail({
            port: pf.smtpPort,
            from: FROM,
            rcpts: [TO],
            data: `From: ${FROM}\r\nTo: ${TO}\r\nSubject: hang ${i}\r\n\r\nMessage ${i}.\r\n`,
            timeoutMs: 60_000,
          });
        });
      } finally {
        if (stopped) process.kill(victim.pid, "SIGCONT");
      }
      const accepted = results.filter((r) => r!.accepted);
      const refused = results.filter((r) => !r!.accepted);
      expect(refused.length, diagnostics()).toBeGreaterThan(0);
      for (const r of refused) {
        const failure = r!.failure ?? r!.steps[r!.steps.length - 1];
        expect(failure.reply.code, transcript(r!.steps)).toBeGreaterThanOrEqual(400);
        expect(failure.reply.code, transcript(r!.steps)).toBeLessThan(500);
      }
      await pf.waitQueueEmpty(30_000);
      const all = readDump(sink.dumpDir!);
      const subjects = all.map((m) => headerValues(m, "Subject")[0]);
      const acceptedSubjects = results.flatMap((r, i) => (r!.accepted ? [`hang ${i}`] : []));
      expect(subjects.sort()).toEqual(acceptedSubjects.sort());
      expect(all.length).toBe(accepted.length);
      expect(manager!.log()).toMatch(/milter victim .*timeout/);
    }, 180_000);
  });
}
