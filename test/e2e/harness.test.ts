/**
 * Self-test of the end-to-end harness (test/e2e/lib): a real private Postfix
 * on 127.0.0.1 with real peer milters (libmilter, pymilter, opendkim), relaying
 * to Postfix's smtp-sink, fed by Postfix's smtp-source and by our SMTP client.
 * Needs root and Postfix (CI has both); skipped otherwise.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import * as fs from "node:fs";
import {
  childPids,
  dotStuff,
  e2eSkipReason,
  freePort,
  freePorts,
  headerValues,
  isAlive,
  isListening,
  keepDirs,
  missingPrograms,
  parseDump,
  runSmtpSource,
  sendMail,
  startLibmilter,
  startOpendkim,
  startPostfix,
  startPostfixSmtpSink,
  startPymilter,
  transcript,
  verifyDkim,
  type DumpedMessage,
  type Peer,
  type PostfixInstance,
  type Sink,
} from "./lib/index.ts";

const skip = e2eSkipReason();
if (skip) console.warn(`SKIP test/e2e/harness.test.ts: ${skip}`);

/** State letter from /proc/PID/stat ("R", "S", "Z", ...), or undefined if there is no such process. */
function procState(pid: number): string | undefined {
  try {
    const st = fs.readFileSync(`/proc/${pid}/stat`, "latin1");
    return st.slice(st.lastIndexOf(")") + 2, st.lastIndexOf(")") + 3);
  } catch {
    return undefined;
  }
}

// ---------------------------------------------------------------------------
// Pure parts of the harness (run everywhere).

describe("harness helpers", () => {
  test("parseDump splits smtp-sink's prefix from the message", () => {
    // Layout of a real smtp-sink 3.7.11 dump (LF line ends, trailing empty line).
    const dump =
      "X-Client-Addr: 127.0.0.1\nX-Client-Proto: ESMTP\nX-Helo-Args: x\nX-Mail-Args: <a@b.test> SIZE=10\n" +
      "X-Rcpt-Args: <c@d.test>\nX-Rcpt-Args: <e@f.test>\n" +
      "Received: from x ([127.0.0.1])\n\tby smtp-sink (smtp-sink) with ESMTP id 2b8fdf77;\n\tSun, 22 Nov 2026 04:29:15 +0000 (UTC)\n" +
      "From: x\nSubject: folded\n\tcontinued\n\nbody\n.dot\n\xe9\n\n";
    const m = parseDump(Buffer.from(dump, "latin1"), "f");
    expect(m.from).toBe("a@b.test");
    expect(m.rcpts).toEqual(["c@d.test", "e@f.test"]);
    expect(m.mailArgs).toBe("<a@b.test> SIZE=10");
    expect(m.heloArgs).toBe("x");
    expect(m.clientProto).toBe("ESMTP");
    expect(m.headers).toEqual([
      ["From", "x"],
      ["Subject", "folded\tcontinued"],
    ]);
    expect(m.body).toBe("body\r\n.dot\r\n\xe9\r\n");
    expect(m.raw).toBe("From: x\r\nSubject: folded\r\n\tcontinued\r\n\r\nbody\r\n.dot\r\n\xe9\r\n");
  });

  test("dotStuff normalises line ends and escapes leading dots", () => {
    expect(dotStuff("a\n.b\r\n..c").toString("latin1")).toBe("a\r\n..b\r\n...c\r\n.\r\n");
    expect(dotStuff(Buffer.from("\xff\n", "latin1")).toString("latin1")).toBe("\xff\r\n.\r\n");
  });

  test("freePort returns a bindable loopback port", async () => {
    const p = await freePort();
    expect(p).toBeGreaterThan(0);
    const srv = Bun.listen({ hostname: "127.0.0.1", port: p, socket: { data() {} } });
    expect(isListening("127.0.0.1", p)).toBe(true);
    srv.stop(true);
    expect(isListening("127.0.0.1", p)).toBe(false);
  });

  test("freePort never hands out a port of the kernel's ephemeral range, nor one twice", () => {
    // outgoing connections take their local port from that range: such a port could be gone before our server binds it
    const [lo, hi] = fs.readFileSync("/proc/sys/net/ipv4/ip_local_port_range", "latin1").trim().split(/\s+/).map(Number);
    const ports = [...freePorts(50), freePort("::1")];
    expect(new Set(ports).size).toBe(ports.length);
    for (const p of ports) expect(p < lo || p > hi).toBe(true);
  });
});

// ---------------------------------------------------------------------------
// Real Postfix + real milters.

describe.skipIf(!!skip)("private Postfix with real milters", () => {
  let sink: Sink;
  let libmilter: Peer;
  let pymilter: Peer;
  let opendkim: Peer;
  let pfA: PostfixInstance;
  // every PID and directory the tests started, checked at the end
  const pids: number[] = [];
  const dirs: string[] = [];
  const masters: number[] = [];
  const remember = (...xs: { pid?: number; masterPid?: number; base: string }[]) => {
    for (const x of xs) {
      pids.push(x.pid ?? x.masterPid!);
      if (x.masterPid) masters.push(x.masterPid);
      dirs.push(x.base);
    }
  };
  // Postfix instances are stopped first (so they do not see their milters vanish), then peers and sinks.
  const pfStops: (() => Promise<void>)[] = [];
  const stops: (() => Promise<void>)[] = [];
  const stopFirst = (f: () => Promise<void>) => pfStops.push(f);
  const stopAll = async () => {
    await Promise.all(pfStops.splice(0).map((f) => f()));
    await Promise.all(stops.splice(0).map((f) => f()));
  };

  beforeAll(async () => {
    expect(missingPrograms()).toEqual([]);
    sink = await startPostfixSmtpSink({ dumpDir: true });
    stops.push(() => sink.stop());
    [libmilter, pymilter, opendkim] = await Promise.all([startLibmilter(), startPymilter(), startOpendkim()]);
    stops.push(() => libmilter.stop(), () => pymilter.stop(), () => opendkim.stop());
    pfA = await startPostfix({
      relayPort: sink.port!,
      milters: [libmilter, pymilter, opendkim].map((p) => p.postfixSpec).join(", "),
      sasl: true,
    });
    stopFirst(() => pfA.stop());
    remember(sink, libmilter, pymilter, opendkim, pfA);
  }, 60_000);

  afterAll(stopAll);

  test("smtp-source x2 + AUTH PLAIN message pass libmilter, pymilter and opendkim", async () => {
    expect(libmilter.spec).toBe(`inet:${libmilter.port}@[127.0.0.1]`);
    expect(libmilter.postfixSpec).toBe(`inet:127.0.0.1:${libmilter.port}`);
    expect(pfA.saslUser).toBeTruthy();

    await runSmtpSource({ port: pfA.smtpPort, messages: 2, length: 512, from: "a@bench.test", to: "rcpt@example.test" });
    const r = await sendMail({
      port: pfA.smtpPort,
      from: "auth@bench.test",
      rcpts: ["rcpt2@example.test"],
      data: "From: auth@bench.test\nTo: rcpt2@example.test\nSubject: harness\n\nhello\n.leading dot\n",
      auth: { user: pfA.saslUser!, password: pfA.saslPassword! },
    });
    expect(r.accepted, transcript(r.steps)).toBe(true);
    expect(r.codes).toEqual([220, 250, 235, 250, 250, 354, 250, 221]);

    const msgs = await sink.waitForMessages(3, 30_000);
    expect(msgs.length).toBe(3);
    const byFrom = (f: string) => msgs.filter((m) => m.from === f);
    expect(byFrom("a@bench.test").length).toBe(2);
    expect(byFrom("a@bench.test").map((m) => m.rcpts)).toEqual([["rcpt@example.test"], ["rcpt@example.test"]]);
    const authed = byFrom("auth@bench.test");
    expect(authed.length).toBe(1);
    expect(authed[0].body).toBe("hello\r\n.leading dot\r\n");
    for (const m of msgs) {
      expect(headerValues(m, "X-Bench-Milter").sort()).toEqual(["libmilter", "pymilter"]);
      const sig = headerValues(m, "DKIM-Signature");
      expect(sig.length).toBe(1);
      expect(sig[0]).toContain("d=bench.test");
      expect(sig[0]).toContain("s=bench");
      expect(await verifyDkim(m.raw, opendkim.keyTxtPath!)).toBe(true);
    }
    // a tampered body must not verify: the check is real
    const bad = authed[0].raw.replace("hello", "HELLO");
    expect(await verifyDkim(bad, opendkim.keyTxtPath!)).toBe(false);

    await pfA.waitQueueEmpty(10_000);
    expect(pfA.maillog()).toContain(`${pfA.syslogName}/smtpd[`);
    expect(pfA.maillog()).toContain(`sasl_username=${pfA.saslUser}`);
  }, 60_000);

  test("a second instance runs concurrently and isolated; libmilter in reject mode gives 5xx at end of DATA", async () => {
    const rejecter = await startLibmilter({ reject: true });
    stops.push(() => rejecter.stop());
    const pfB = await startPostfix({ relayPort: sink.port!, milters: rejecter.postfixSpec, defaultAction: "accept" });
    stopFirst(() => pfB.stop());
    remember(rejecter, pfB);

    // isolation: distinct ports, directories, names; both masters alive
    expect(pfB.smtpPort).not.toBe(pfA.smtpPort);
    expect(pfB.base).not.toBe(pfA.base);
    expect(pfB.queueDir).not.toBe(pfA.queueDir);
    expect(pfB.syslogName).not.toBe(pfA.syslogName);
    expect(pfB.masterPid).not.toBe(pfA.masterPid);
    expect(isAlive(pfA.masterPid) && isAlive(pfB.masterPid)).toBe(true);
    expect(await pfB.postconf("data_directory")).toBe(`${pfB.base}/data`);

    const before = sink.count();
    const data = "From: a@bench.test\nTo: r@example.test\nSubject: reject me\n\nbody\n";
    // both instances at the same time: A accepts, B's milter rejects
    const [ra, rb] = await Promise.all([
      sendMail({ port: pfA.smtpPort, from: "a@bench.test", rcpts: ["r@example.test"], data }),
      sendMail({ port: pfB.smtpPort, from: "a@bench.test", rcpts: ["r@example.test"], data }),
    ]);
    expect(ra.accepted, transcript(ra.steps)).toBe(true);
    expect(rb.accepted).toBe(false);
    expect(rb.final?.code, transcript(rb.steps)).toBe(550);
    expect(rb.final?.text).toBe("5.7.1 Rejected by bench-milter");
    expect(rb.failure?.command).toBe("<end of data>");
    expect(rb.codes).toEqual([220, 250, 250, 250, 354, 550, 221]);
    expect(rejecter.reject).toBe("550 5.7.1 Rejected by bench-milter");

    await sink.waitForMessages(before + 1, 20_000);
    await pfA.waitQueueEmpty(10_000);
    expect(pfB.queueCount()).toBe(0);
    expect(sink.count()).toBe(before + 1); // only A's message arrived
    const logB = await pfB.waitForLog(/milter-reject: END-OF-MESSAGE/, 5000);
    expect(logB).toContain("5.7.1 Rejected by bench-milter");
    // each maillog only has its own instance's lines
    expect(pfB.maillog()).not.toContain(pfA.syslogName + "/");
    expect(pfA.maillog()).not.toContain(pfB.syslogName + "/");
  }, 60_000);

  test("Unix-socket milters, IPv6 listener and setMainCf reload", async () => {
    const [lmU, pyU] = await Promise.all([startLibmilter({ unix: true, headerName: "X-Unix-Milter", header: "libmilter-unix" }), startPymilter({ unix: true })]);
    stops.push(() => lmU.stop(), () => pyU.stop());
    expect(lmU.spec).toBe(`unix:${lmU.unix}`);
    expect(lmU.header).toBe("X-Unix-Milter: libmilter-unix");
    expect(lmU.postfixSpec).toBe(lmU.spec);
    const own = await startPostfixSmtpSink({ dumpDir: true });
    stops.push(() => own.stop());
    const pfC = await startPostfix({ relayPort: own.port!, milters: `${lmU.postfixSpec}, ${pyU.postfixSpec}`, ipv6: true });
    stopFirst(() => pfC.stop());
    remember(lmU, pyU, own, pfC);
    expect(pfC.smtpPort6).toBeGreaterThan(0);

    const data = "From: u@bench.test\nTo: r@example.test\nSubject: unix\n\nbody\n";
    const r1 = await sendMail({ host: "::1", port: pfC.smtpPort6!, from: "u@bench.test", rcpts: ["r@example.test"], data });
    expect(r1.accepted, transcript(r1.steps)).toBe(true);
    const [m1] = await own.waitForMessages(1, 20_000);
    expect(headerValues(m1, "X-Unix-Milter")).toEqual(["libmilter-unix"]);
    expect(headerValues(m1, "X-Bench-Milter")).toEqual(["pymilter"]);
    expect(headerValues(m1, "Received")[0]).toContain("[IPv6:::1]"); // it came in over ::1

    // only the pymilter from now on
    await pfC.setMainCf({ smtpd_milters: pyU.postfixSpec });
    expect(await pfC.postconf("smtpd_milters")).toBe(pyU.postfixSpec);
    const r2 = await sendMail({ port: pfC.smtpPort, from: "u@bench.test", rcpts: ["r@example.test"], data });
    expect(r2.accepted, transcript(r2.steps)).toBe(true);
    const msgs = await own.waitForMessages(2, 20_000);
    const m2 = msgs.find((m) => m.file !== m1.file) as DumpedMessage;
    expect(headerValues(m2, "X-Bench-Milter")).toEqual(["pymilter"]);
    expect(headerValues(m2, "X-Unix-Milter")).toEqual([]);
  }, 60_000);

  test("stopping everything leaves no process, zombie, listener or directory behind", async () => {
    const daemons = masters.flatMap((m) => childPids(m));
    expect(daemons.length).toBeGreaterThan(0);
    const ports = [sink.port!, libmilter.port!, pymilter.port!, opendkim.port!, pfA.smtpPort];
    await stopAll();
    for (const p of [...pids, ...daemons]) {
      expect(isAlive(p), `pid ${p} still running`).toBe(false);
      // stopped processes must also have been reaped (PID 1 may never reap orphans)
      expect(procState(p), `pid ${p} left as a zombie`).not.toBe("Z");
    }
    if (!keepDirs()) for (const d of dirs) expect(fs.existsSync(d), `${d} still exists`).toBe(false);
    for (const p of ports) expect(isListening("127.0.0.1", p), `port ${p} still listening`).toBe(false);
  }, 30_000);
});
