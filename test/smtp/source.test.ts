// smtp-source against a scripted server: the dialogue byte for byte, every
// flag, and the error cases (unexpected replies, lost connections, timeouts).
import { afterEach, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runCli, type Scripted, scriptedServer } from "./helpers.ts";

let srv: Scripted | undefined;
afterEach(() => { srv?.stop(); srv = undefined; });
const src = (args: string[], timeoutMs?: number) => runCli("smtp-source", args, timeoutMs);
const base = ["-M", "client.example", "-f", "a@example.test", "-t", "b@example.test"];
const dateRe = "[A-Z][a-z]{2}, \\d{1,2} [A-Z][a-z]{2} \\d{4} \\d\\d:\\d\\d:\\d\\d \\+0000 \\(UTC\\)";

describe("smtp-source dialogue (as Postfix's)", () => {
  test("one message: HELO, MAIL, RCPT, DATA, headers + -l payload, QUIT; stdout empty", async () => {
    srv = scriptedServer();
    const r = await src([...base, "-l", "10", `127.0.0.1:${srv.port}`]);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe("");
    expect(srv.conns.length).toBe(1);
    expect(srv.conns[0].raw).toMatch(new RegExp(
      "^HELO client\\.example\\r\\nMAIL FROM:<a@example\\.test>\\r\\nRCPT TO:<b@example\\.test>\\r\\nDATA\\r\\n" +
      "From: <a@example\\.test>\\r\\nTo: <b@example\\.test>\\r\\nDate: " + dateRe + "\\r\\n" +
      "Message-Id: <[0-9a-f]{4,}\\.0000\\.0000@client\\.example>\\r\\n\\r\\nXXXXXXXXXX\\r\\n\\.\\r\\nQUIT\\r\\n$"));
    expect(r.stderr).toContain("smtp-source: 1 sent, 0 failed of 1 messages, 1 recipients, 1 session, 1 connection, SMTP\n");
    expect(r.stderr).toMatch(/messages\/s; latency per message ms: p50 [0-9.]+ p90 [0-9.]+ p99 [0-9.]+ max [0-9.]+\n$/);
  });

  test("defaults: foo@hostname, HELO hostname, Postfix's default body", async () => {
    srv = scriptedServer();
    const r = await src([`127.0.0.1:${srv.port}`]);
    expect(r.code).toBe(0);
    const host = require("node:os").hostname();
    const raw = srv.conns[0].raw;
    expect(raw).toStartWith(`HELO ${host}\r\nMAIL FROM:<foo@${host}>\r\nRCPT TO:<foo@${host}>\r\nDATA\r\nFrom: <foo@${host}>\r\nTo: <foo@${host}>\r\n`);
    expect(raw).toEndWith("\r\n\r\nLa de da de da 1.\r\nLa de da de da 2.\r\nLa de da de da 3.\r\nLa de da de da 4.\r\n.\r\nQUIT\r\n");
  });

  test("-m: one connection per message; -s spreads them over sessions", async () => {
    srv = scriptedServer();
    const r = await src([...base, "-m", "5", "-s", "2", "-l", "100", `127.0.0.1:${srv.port}`]);
    expect(r.code).toBe(0);
    expect(srv.conns.length).toBe(5);
    for (const c of srv.conns) expect(c.lines.filter((l) => l.startsWith("MAIL ")).length).toBe(1);
    const ids = srv.conns.map((c) => /Message-Id: <([^>]+)>/.exec(c.raw)![1]);
    expect(new Set(ids).size).toBe(5);
    expect(r.stderr).toContain("5 sent, 0 failed of 5 messages, 5 recipients, 2 sessions, 5 connections");
  });

  test("-s larger than -m opens only as many sessions as messages", async () => {
    srv = scriptedServer();
    const r = await src([...base, "-m", "1", "-s", "4", `127.0.0.1:${srv.port}`]);
    expect(r.code).toBe(0);
    expect(srv.conns.length).toBe(1);
  });

  test("-d: the next message over the same connection, no RSET between", async () => {
    srv = scriptedServer();
    const r = await src([...base, "-d", "-m", "3", "-l", "5", `127.0.0.1:${srv.port}`]);
    expect(r.code).toBe(0);
    expect(srv.conns.length).toBe(1);
    const cmds = srv.conns[0].lines.filter((l) => /^(HELO|MAIL|RCPT|DATA|RSET|QUIT)/.test(l));
    expect(cmds).toEqual(["HELO client.example", ...Array(3).fill(["MAIL FROM:<a@example.test>", "RCPT TO:<b@example.test>", "DATA"]).flat(), "QUIT"]);
  });

  test("-r: recipients counted down, the last one bare; -N: never-repeating numbers", async () => {
    srv = scriptedServer();
    let r = await src([...base, "-r", "3", `127.0.0.1:${srv.port}`]);
    expect(r.code).toBe(0);
    expect(srv.conns[0].lines.filter((l) => l.startsWith("RCPT"))).toEqual(
      ["RCPT TO:<3b@example.test>", "RCPT TO:<2b@example.test>", "RCPT TO:<b@example.test>"]);
    expect(srv.conns[0].raw).toContain("\r\nTo: <b@example.test>\r\n");
    r = await src([...base, "-r", "2", "-N", "-m", "2", `127.0.0.1:${srv.port}`]);
    expect(r.code).toBe(0);
    expect(srv.conns.slice(1).flatMap((c) => c.lines.filter((l) => l.startsWith("RCPT")))).toEqual(
      ["RCPT TO:<1b@example.test>", "RCPT TO:<2b@example.test>", "RCPT TO:<3b@example.test>", "RCPT TO:<4b@example.test>"]);
    expect(r.stderr).toContain("2 sent, 0 failed of 2 messages, 4 recipients");
  });

  test("-o: no HELO and no headers", async () => {
    srv = scriptedServer();
    const r = await src([...base, "-o", "-l", "3", `127.0.0.1:${srv.port}`]);
    expect(r.code).toBe(0);
    expect(srv.conns[0].raw).toBe("MAIL FROM:<a@example.test>\r\nRCPT TO:<b@example.test>\r\nDATA\r\nXXX\r\n.\r\nQUIT\r\n");
  });

  test("-S adds a Subject: header after Message-Id", async () => {
    srv = scriptedServer();
    const r = await src([...base, "-S", "Hello there", "-l", "1", `127.0.0.1:${srv.port}`]);
    expect(r.code).toBe(0);
    expect(srv.conns[0].raw).toMatch(/Message-Id: <[^>]+>\r\nSubject: Hello there\r\n\r\nX\r\n\.\r\n/);
  });

  test("-F: the file with CRLF and dot-stuffing, no generated headers", async () => {
    srv = scriptedServer();
    const dir = mkdtempSync(join(tmpdir(), "mk-src-"));
    try {
      writeFileSync(join(dir, "m.eml"), "Subject: from file\n.leading dot\nbody\n");
      const r = await src([...base, "-F", join(dir, "m.eml"), `127.0.0.1:${srv.port}`]);
      expect(r.code).toBe(0);
      expect(srv.conns[0].raw).toContain("DATA\r\nSubject: from file\r\n..leading dot\r\nbody\r\n\r\n.\r\nQUIT\r\n");
      const bad = await src([...base, "-F", join(dir, "missing.eml"), `127.0.0.1:${srv.port}`]);
      expect(bad.code).toBe(1);
      expect(bad.stderr).toBe(`smtp-source: fatal: open ${join(dir, "missing.eml")}: No such file or directory\n`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("-L: LHLO, and one end-of-data reply per recipient", async () => {
    srv = scriptedServer();
    const r = await src([...base, "-L", "-r", "3", "-m", "2", "-d", `127.0.0.1:${srv.port}`]);
    expect(r.code).toBe(0);
    expect(srv.conns.length).toBe(1);
    expect(srv.conns[0].lines[0]).toBe("LHLO client.example");
    expect(r.stderr).toContain("2 sent, 0 failed of 2 messages, 6 recipients, 1 session, 1 connection, LMTP");
  });

  test("-L: a rejected recipient in the per-recipient replies fails the message", async () => {
    srv = scriptedServer({ dotReply: (_c, n) => "250 2.2.0 Ok\r\n" + "452 4.2.2 Mailbox full\r\n".repeat(n - 1) });
    const r = await src([...base, "-L", "-A", "-r", "2", `127.0.0.1:${srv.port}`]);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain("smtp-source: warning: end of data rejected: 452 4.2.2 Mailbox full\n");
    expect(r.stderr).toContain("0 sent, 1 failed (452=1) of 1 messages");
  });

  test("-c: running counter on stdout, as Postfix prints it", async () => {
    srv = scriptedServer();
    const r = await src([...base, "-c", "-m", "3", `127.0.0.1:${srv.port}`]);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe("1\r2\r3\r\n");
  });

  test("-v: the dialogue on stderr; -vv adds connection details", async () => {
    srv = scriptedServer();
    const r = await src([...base, "-v", "-l", "1", `127.0.0.1:${srv.port}`]);
    expect(r.code).toBe(0);
    const dialogue = r.stderr.split("\n").filter((l) => l.startsWith("smtp-source: ") && !/ sent, | messages\/s/.test(l));
    expect(dialogue).toEqual([
      "smtp-source: <<< 220 scripted ESMTP", "smtp-source: HELO client.example", "smtp-source: <<< 250 scripted",
      "smtp-source: MAIL FROM:<a@example.test>", "smtp-source: <<< 250 2.0.0 Ok", "smtp-source: RCPT TO:<b@example.test>",
      "smtp-source: <<< 250 2.1.5 Ok", "smtp-source: DATA", "smtp-source: <<< 354 go ahead", "smtp-source: .",
      "smtp-source: <<< 250 2.0.0 Ok", "smtp-source: QUIT", "smtp-source: <<< 221 Bye",
    ]);
    const vv = await src([...base, "-vv", `127.0.0.1:${srv.port}`]);
    expect(vv.stderr).toContain(`smtp-source: connected to 127.0.0.1:${srv.port}\n`);
  });

  test("-w and -R wait between messages and the run completes", async () => {
    srv = scriptedServer();
    const r = await src([...base, "-m", "2", "-w", "0.05", "-R", "0.05", "-d", `127.0.0.1:${srv.port}`]);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain("2 sent, 0 failed");
  });

  test("-T is accepted (compatibility) and -C retries a refused connect", async () => {
    srv = scriptedServer();
    expect((await src([...base, "-T", "4096", `127.0.0.1:${srv.port}`])).code).toBe(0);
    const port = srv.port;
    srv.stop();
    srv = undefined;
    const r = await src([...base, "-C", "3", `127.0.0.1:${port}`]);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe("smtp-source: fatal: connect: Connection refused\n");
  });

  test("--timeout bounds the connect: a listener whose queue is full never answers the SYN", async () => {
    // A listener with backlog 0 that never accepts: once its queue holds one
    // connection, the kernel drops further SYNs and connect() waits.
    const py = Bun.spawn(["python3", "-c",
      "import socket,time\ns=socket.socket()\ns.bind(('127.0.0.1',0))\ns.listen(0)\nprint(s.getsockname()[1],flush=True)\ntime.sleep(30)"],
      { stdout: "pipe" });
    try {
      const reader = py.stdout.getReader();
      const port = Number(new TextDecoder().decode((await reader.read()).value).trim());
      const fillers: { terminate(): void }[] = [];
      for (let i = 0; i < 3; i++) {
        Bun.connect({ hostname: "127.0.0.1", port, socket: { data() {} } }).then((c) => fillers.push(c), () => {});
      }
      await Bun.sleep(200);
      const t0 = performance.now();
      const r = await src([...base, "--timeout", "1", `127.0.0.1:${port}`], 15_000);
      const secs = (performance.now() - t0) / 1000;
      expect(r.code).toBe(1);
      expect(r.stderr).toBe("smtp-source: fatal: connect: Connection timed out\n");
      expect(secs).toBeLessThan(10); // bounded by --timeout (1 s) plus the sweep, not by the kernel's SYN retries
      for (const f of fillers) f.terminate();
    } finally {
      py.kill();
      await py.exited;
    }
  }, 20_000);

  test("unix: target", async () => {
    const dir = mkdtempSync(join(tmpdir(), "mk-src-"));
    srv = scriptedServer({ unix: join(dir, "s.sock") });
    try {
      const r = await src([...base, "-m", "2", `unix:${join(dir, "s.sock")}`]);
      expect(r.code).toBe(0);
      expect(srv.conns.length).toBe(2);
    } finally {
      srv.stop();
      srv = undefined;
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("-4 / -6 restrict the address family", async () => {
    srv = scriptedServer();
    expect((await src([...base, "-4", `127.0.0.1:${srv.port}`])).code).toBe(0);
    const r = await src([...base, "-6", `127.0.0.1:${srv.port}`]);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(`smtp-source: fatal: 127.0.0.1:${srv.port}: Address family for hostname not supported\n`);
    const r4 = await src([...base, "-4", "[::1]:25"]);
    expect(r4.stderr).toBe("smtp-source: fatal: [::1]:25: Address family for hostname not supported\n");
  });
});

describe("smtp-source beyond Postfix", () => {
  test("-P: MAIL, RCPT.. and DATA go out before any reply (the server holds its replies until DATA)", async () => {
    srv = scriptedServer({ pipelining: true, holdEnvelope: true });
    const r = await src([...base, "-P", "-r", "3", "-m", "2", "--timeout", "3", `127.0.0.1:${srv.port}`]);
    expect(r.code).toBe(0);
    expect(srv.conns[0].lines[0]).toBe("EHLO client.example");
    expect(r.stderr).toContain("2 sent, 0 failed of 2 messages, 6 recipients, 1 session, 2 connections, SMTP with PIPELINING");
  });

  test("-P -d: the content, '.' and the next envelope (or QUIT) in one go (the server holds '.' replies)", async () => {
    srv = scriptedServer({ pipelining: true, holdDot: true });
    const r = await src([...base, "-P", "-d", "-m", "3", "--timeout", "3", `127.0.0.1:${srv.port}`]);
    expect(r.code).toBe(0);
    expect(srv.conns.length).toBe(1);
    expect(r.stderr).toContain("3 sent, 0 failed of 3 messages, 3 recipients, 1 session, 1 connection, SMTP with PIPELINING");
  });

  test("-P without PIPELINING offered: EHLO, then one command at a time", async () => {
    // This server answers nothing when two commands arrive in one packet.
    srv = scriptedServer({ pipelining: false, reply: (_v, _l, c) => (c.chunks.at(-1)!.split("\r\n").length > 2 && !c.raw.includes("DATA\r\nFrom") ? "silent" : undefined) });
    const r = await src([...base, "-P", "-m", "2", "-d", "--timeout", "3", `127.0.0.1:${srv.port}`]);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain("2 sent, 0 failed of 2 messages, 2 recipients, 1 session, 1 connection, SMTP\n");
  });

  test("-P -A: a rejected sender skips the transaction with RSET and the run goes on", async () => {
    let n = 0;
    srv = scriptedServer({ pipelining: true, reply: (v) => (v === "MAIL" && n++ === 0 ? "450 4.3.0 not now" : v === "RCPT" && n === 1 ? "503 5.5.1 need MAIL" : v === "DATA" && n === 1 ? "503 5.5.1 need RCPT" : undefined) });
    const r = await src([...base, "-P", "-A", "-d", "-m", "2", "--timeout", "3", `127.0.0.1:${srv.port}`]);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain("smtp-source: warning: sender rejected: 450 4.3.0 not now\n");
    expect(r.stderr).not.toContain("503 5.5.1"); // the reply, not a latency figure such as "0.503"
    expect(srv.conns[0].lines).toContain("RSET");
    expect(r.stderr).toContain("1 sent, 1 failed (450=1) of 2 messages");
  });

  test("--json: the summary as JSON on stdout, nothing on stderr", async () => {
    srv = scriptedServer();
    const r = await src([...base, "--json", "-m", "3", "-r", "2", `127.0.0.1:${srv.port}`]);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe("");
    const j = JSON.parse(r.stdout);
    expect(j).toMatchObject({ target: `127.0.0.1:${srv.port}`, protocol: "SMTP", pipelining: false, sessions: 1, connections: 3,
      messagesRequested: 3, sent: 3, failed: 0, failures: {}, recipients: 6 });
    expect(j.latencyMs.count).toBe(3);
    expect(j.latencyMs.p50).toBeGreaterThan(0);
    expect(j.messagesPerSecond).toBeGreaterThan(0);
  });

  test("--no-summary: a successful run prints nothing, like Postfix's", async () => {
    srv = scriptedServer();
    const r = await src([...base, "--no-summary", "-m", "2", `127.0.0.1:${srv.port}`]);
    expect(r).toEqual({ code: 0, stdout: "", stderr: "" });
  });
});

describe("smtp-source errors", () => {
  test.each([
    ["HELO", "HELO rejected: 450 4.3.0 no"],
    ["MAIL", "sender rejected: 450 4.3.0 no"],
    ["RCPT", "recipient rejected: 450 4.3.0 no"],
    ["DATA", "data rejected: 450 4.3.0 no"],
  ])("an unexpected reply to %s is fatal (exit 1) and counted", async (verb, text) => {
    srv = scriptedServer({ reply: (v) => (v === verb ? "450 4.3.0 no" : undefined) });
    const r = await src([...base, "-m", "3", `127.0.0.1:${srv.port}`]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`smtp-source: fatal: ${text}\n`);
    expect(r.stderr).toContain("0 sent, 1 failed (450=1) of 3 messages");
    expect(srv.conns.length).toBe(1);
    expect(srv.conns[0].lines).not.toContain("RSET");
  });

  test("a rejected end of data is fatal; with -A a warning and the run goes on", async () => {
    srv = scriptedServer({ dotReply: () => "554 5.7.1 rejected by milter" });
    let r = await src([...base, "-m", "2", `127.0.0.1:${srv.port}`]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("smtp-source: fatal: end of data rejected: 554 5.7.1 rejected by milter\n");
    r = await src([...base, "-A", "-c", "-m", "2", `127.0.0.1:${srv.port}`]);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe("1\r2\r\n");
    expect(r.stderr.match(/warning: end of data rejected/g)?.length).toBe(2);
    expect(r.stderr).toContain("0 sent, 2 failed (554=2) of 2 messages");
  });

  test("-A: rejected recipients are warnings, the message goes on with the others; all rejected -> RSET", async () => {
    srv = scriptedServer({ reply: (v, l) => (v === "RCPT" && l.includes("<2b@") ? "450 4.3.0 no" : undefined) });
    let r = await src([...base, "-A", "-r", "2", `127.0.0.1:${srv.port}`]);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain("smtp-source: warning: recipient rejected: 450 4.3.0 no\n");
    expect(r.stderr).toContain("1 sent, 0 failed of 1 messages, 1 recipients");
    srv.stop();
    srv = scriptedServer({ reply: (v) => (v === "RCPT" ? "550 5.1.1 unknown" : undefined) });
    r = await src([...base, "-A", "-m", "2", "-d", `127.0.0.1:${srv.port}`]);
    expect(r.code).toBe(0);
    const cmds = srv.conns[0].lines.filter((l) => /^(MAIL|RCPT|DATA|RSET|QUIT)/.test(l)).map((l) => l.split(" ")[0]);
    expect(cmds).toEqual(["MAIL", "RCPT", "RSET", "MAIL", "RCPT", "RSET", "QUIT"]);
    expect(r.stderr).toContain("0 sent, 2 failed (550=2) of 2 messages");
  });

  test("-A: a rejected banner or HELO is a warning and the message is still sent", async () => {
    srv = scriptedServer({ greeting: "554 5.7.1 go away\r\n", reply: (v) => (v === "HELO" ? "501 5.5.2 bad" : undefined) });
    const r = await src([...base, "-A", `127.0.0.1:${srv.port}`]);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain("smtp-source: warning: rejected at server banner: 554 5.7.1 go away\n");
    expect(r.stderr).toContain("smtp-source: warning: HELO rejected: 501 5.5.2 bad\n");
    expect(r.stderr).toContain("1 sent, 0 failed");
    const f = await src([...base, `127.0.0.1:${srv.port}`]);
    expect(f.code).toBe(1);
    expect(f.stderr).toContain("smtp-source: fatal: rejected at server banner: 554 5.7.1 go away\n");
  });

  test.each([
    ["HELO", "lost connection while sending HELO"],
    ["MAIL", "lost connection while sending sender"],
    ["RCPT", "lost connection while sending recipient"],
    ["DATA", "lost connection while sending DATA command"],
  ])("the server closes at %s: counted, reported, exit 1, no hang", async (verb, text) => {
    srv = scriptedServer({ reply: (v) => (v === verb ? "close" : undefined) });
    const r = await src([...base, "-m", "3", `127.0.0.1:${srv.port}`]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`smtp-source: fatal: ${text}\n`);
    expect(r.stderr).toContain("0 sent, 1 failed (connection=1) of 3 messages");
  });

  test("the server closes during the message: with -A every message is counted and the run ends", async () => {
    srv = scriptedServer({ dotReply: () => "close" });
    const r = await src([...base, "-A", "-m", "3", `127.0.0.1:${srv.port}`]);
    expect(r.code).toBe(0);
    expect(r.stderr.match(/warning: lost connection while sending message/g)?.length).toBe(3);
    expect(r.stderr).toContain("0 sent, 3 failed (connection=3) of 3 messages, 0 recipients, 1 session, 3 connections");
  });

  test("a server that never answers: --timeout ends the wait", async () => {
    srv = scriptedServer({ reply: (v) => (v === "DATA" ? "silent" : undefined) });
    const r = await src([...base, "--timeout", "0.5", `127.0.0.1:${srv.port}`]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("smtp-source: fatal: timeout while sending DATA command\n");
    expect(r.stderr).toContain("0 sent, 1 failed (timeout=1) of 1 messages");
  });

  test("unreachable target, bad count, unknown flag: one clear line, exit 1", async () => {
    srv = scriptedServer();
    const port = srv.port;
    srv.stop();
    srv = undefined;
    expect(await src([`127.0.0.1:${port}`])).toEqual({ code: 1, stdout: "", stderr: "smtp-source: fatal: connect: Connection refused\n" });
    const dns = await src(["nosuchhost.invalid:25"]);
    expect(dns.code).toBe(1);
    expect(dns.stderr).toMatch(/^smtp-source: fatal: nosuchhost\.invalid:25: [^\n]+\n$/); // "Name or service not known" with a resolver
    expect(await src(["-m", "0", "h"])).toEqual({ code: 1, stdout: "", stderr: "smtp-source: fatal: bad message count: 0\n" });
    expect(await src(["-s", "x", "h"])).toEqual({ code: 1, stdout: "", stderr: "smtp-source: fatal: bad session count: x\n" });
    expect((await src([])).stderr).toStartWith("smtp-source: fatal: usage: smtp-source ");
    const u = await src(["-x", "h"]);
    expect(u.code).toBe(1);
    expect(u.stderr).toBe("smtp-source: unknown option '-x'\nTry 'milterkit smtp-source --help' for more information.\n");
  });

  test("--help shows the usage with the summary channel documented", async () => {
    const r = await src(["--help"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("USAGE smtp-source");
    expect(r.stdout.replace(/\s+/g, " ")).toContain("goes to stderr"); // --help wraps lines
    expect(r.stdout).toContain("--pipelining");
  });
});
