// smtp-sink in-process: Postfix smtp-sink's replies, LMTP, fault options,
// dumps, counters, limits and STARTTLS; smtp-source (the CLI) against it.
import { afterEach, beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { readDumpDir } from "../../src/smtp/dump.ts";
import { SmtpSink } from "../../src/smtp/sink.ts";
import { parseSinkArgs } from "../../src/smtp/sink-options.ts";
import { chat, runCli } from "./helpers.ts";

const EHLO = "250-smtp-sink\r\n250-PIPELINING\r\n250-8BITMIME\r\n250-AUTH PLAIN LOGIN\r\n250-XCLIENT NAME HELO\r\n" +
  "250-XFORWARD NAME ADDR PROTO HELO\r\n250-ENHANCEDSTATUSCODES\r\n250-DSN\r\n250 \r\n";

let sink: SmtpSink | undefined;
let out = "";
let err = "";
let dir = "";
afterEach(() => {
  sink?.stop();
  sink = undefined;
  if (dir) rmSync(dir, { recursive: true, force: true });
  dir = "";
});

async function start(...args: string[]): Promise<{ port: number; sink: SmtpSink }> {
  out = "";
  err = "";
  sink = new SmtpSink(parseSinkArgs([...args, args.some((a) => a.startsWith("unix:")) ? "" : "127.0.0.1:0"].filter(Boolean)),
    { out: (s) => { out += s; }, err: (s) => { err += s; }, prog: "smtp-sink" });
  const w = await sink.start();
  return { port: w.port!, sink };
}

describe("smtp-sink replies (as Postfix's smtp-sink)", () => {
  test("a full session: EHLO, HELO, MAIL, RCPT, DATA, RSET, NOOP, VRFY, unknown, state errors, QUIT", async () => {
    const { port } = await start();
    const r = await chat({ port }, ["EHLO x", "HELO y", "MAIL FROM:<a@b>", "RCPT TO:<c@d>", "DATA", "Subject: x\r\n\r\nbody\r\n.",
      "RSET", "NOOP", "VRFY x", "BOGUS", "DATA", "RCPT TO:<e@f>", "mail from:<x>", "XCLIENT NAME=x", "XFORWARD NAME=y", "QUIT"]);
    expect(r).toBe("220 smtp-sink ESMTP\r\n" + EHLO + "250 smtp-sink\r\n250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n" +
      "354 End data with <CR><LF>.<CR><LF>\r\n250 2.0.0 Ok\r\n250 2.0.0 Ok\r\n250 2.0.0 Ok\r\n250 2.0.0 Ok\r\n" +
      "500 5.5.1 Error: unknown command\r\n503 5.5.1 Error: need RCPT command\r\n503 5.5.1 Error: need MAIL command\r\n" +
      "250 2.1.0 Ok\r\n250 2.0.0 Ok\r\n250 2.0.0 Ok\r\n221 Bye\r\n<closed>");
    expect(sink!.stats).toMatchObject({ messages: 1, recipients: 1, quits: 1 });
  });

  test("pipelined commands in one packet get their replies in one write", async () => {
    const { port } = await start();
    const r = await chat({ port }, ["EHLO x\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nRCPT TO:<e@d>\r\nDATA\r\nline\r\n.\r\nQUIT\r\n"]);
    expect(r).toBe("220 smtp-sink ESMTP\r\n" + EHLO + "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n250 2.1.5 Ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n250 2.0.0 Ok\r\n221 Bye\r\n<closed>");
  });

  test("-L: LHLO, EHLO/HELO unknown, one reply per recipient", async () => {
    const { port } = await start("-L");
    const r = await chat({ port }, ["LHLO x", "EHLO x", "HELO x", "MAIL FROM:<a@b>", "RCPT TO:<c@d>", "RCPT TO:<e@d>", "DATA", "body\r\n.", "QUIT"]);
    expect(r).toBe("220 smtp-sink ESMTP\r\n" + EHLO + "500 5.5.1 Error: unknown command\r\n500 5.5.1 Error: unknown command\r\n" +
      "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n250 2.1.5 Ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n250 2.2.0 Ok\r\n250 2.2.0 Ok\r\n221 Bye\r\n<closed>");
  });

  test("-h, -e, -P and the EHLO keyword switches -8 -a -C -E -F -N -p", async () => {
    let { port } = await start("-h", "sink.example", "-8", "-a", "-C", "-E", "-F", "-N", "-p");
    expect(await chat({ port }, ["EHLO x", "XCLIENT NAME=x", "XFORWARD NAME=x", "AUTH PLAIN x", "QUIT"])).toBe(
      "220 sink.example ESMTP\r\n250-sink.example\r\n250 \r\n500 5.5.1 Error: unknown command\r\n500 5.5.1 Error: unknown command\r\n500 5.5.1 Error: unknown command\r\n221 Bye\r\n<closed>");
    sink!.stop();
    ({ port } = await start("-e"));
    expect(await chat({ port }, ["EHLO x", "QUIT"])).toBe("220 smtp-sink\r\n500 5.5.1 Error: unknown command\r\n221 Bye\r\n<closed>");
    sink!.stop();
    ({ port } = await start("-P"));
    expect(await chat({ port }, ["QUIT"])).toBe("220 ********\r\n221 Bye\r\n<closed>");
  });
});

describe("smtp-sink fault options", () => {
  test("-r / -f with -b / -B: chosen commands get the chosen soft / hard replies; PIPELINING is not offered", async () => {
    const { port } = await start("-r", "MAIL,DATA", "-f", "RCPT", "-b", "451 4.7.1 soft", "-B", "554 5.7.1 hard");
    expect(await chat({ port }, ["EHLO x", "MAIL FROM:<a@b>", "RCPT TO:<c@d>", "DATA", "QUIT"])).toBe(
      "220 smtp-sink ESMTP\r\n" + EHLO.replace("250-PIPELINING\r\n", "") + "451 4.7.1 soft\r\n554 5.7.1 hard\r\n451 4.7.1 soft\r\n221 Bye\r\n<closed>");
  });

  test("-q: disconnect without a reply; -Q: 421 and disconnect", async () => {
    let { port } = await start("-q", "RCPT");
    expect(await chat({ port }, ["HELO x", "MAIL FROM:<a@b>", "RCPT TO:<c@d>", "DATA"])).toBe("220 smtp-sink ESMTP\r\n250 smtp-sink\r\n250 2.1.0 Ok\r\n<closed>");
    sink!.stop();
    ({ port } = await start("-Q", "MAIL"));
    expect(await chat({ port }, ["HELO x", "MAIL FROM:<a@b>", "RCPT TO:<c@d>"])).toBe("220 smtp-sink ESMTP\r\n250 smtp-sink\r\n421 4.0.0 Server closing connection\r\n<closed>");
  });

  test("CONNECT and '.' in the command lists", async () => {
    let { port } = await start("-f", "connect");
    expect(await chat({ port }, ["QUIT"])).toBe("500 5.3.0 Error: command failed\r\n221 Bye\r\n<closed>");
    sink!.stop();
    ({ port } = await start("-r", "."));
    expect(await chat({ port }, ["HELO x", "MAIL FROM:<a@b>", "RCPT TO:<c@d>", "DATA", "x\r\n.", "QUIT"])).toContain(
      "354 End data with <CR><LF>.<CR><LF>\r\n450 4.3.0 Error: command failed\r\n221 Bye");
  });

  test("--reply: a chosen reply per command, optionally only for arguments containing a text", async () => {
    const { port } = await start("--reply", "RCPT:<bad@=550 5.1.1 No such user", "--reply", ".=452 4.3.1 Insufficient storage");
    expect(await chat({ port }, ["HELO x", "MAIL FROM:<a@b>", "RCPT TO:<bad@x>", "RCPT TO:<good@x>", "DATA", "x\r\n.", "QUIT"])).toBe(
      "220 smtp-sink ESMTP\r\n250 smtp-sink\r\n250 2.1.0 Ok\r\n550 5.1.1 No such user\r\n250 2.1.5 Ok\r\n" +
      "354 End data with <CR><LF>.<CR><LF>\r\n452 4.3.1 Insufficient storage\r\n221 Bye\r\n<closed>");
  });

  test("-w / -W delay replies, -A aborts after 354, -H delays the read after DATA; input in between is kept", async () => {
    let { port } = await start("-w", "0.1", "-W", "RCPT:0.05", "-H", "0.05");
    expect(await chat({ port }, ["HELO x\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\nbody\r\n.\r\nQUIT\r\n"], 400)).toBe(
      "220 smtp-sink ESMTP\r\n250 smtp-sink\r\n250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n250 2.0.0 Ok\r\n221 Bye\r\n<closed>");
    sink!.stop();
    ({ port } = await start("-A", "0.05"));
    expect(await chat({ port }, ["HELO x", "MAIL FROM:<a@b>", "RCPT TO:<c@d>", "DATA", "x"], 150)).toBe(
      "220 smtp-sink ESMTP\r\n250 smtp-sink\r\n250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n550 This violates SMTP\r\n<closed>");
  });

  test("-t: an idle session is closed", async () => {
    const { port } = await start("-t", "0.2");
    // chat() waits 700 ms before its first line: the session is gone by then.
    expect(await chat({ port }, ["HELO x"], 700)).toBe("220 smtp-sink ESMTP\r\n<closed>");
  });
});

describe("smtp-sink data handling, counters, limits", () => {
  test("the end of data is found however the bytes are split; dot-unstuffed in the dump", async () => {
    dir = mkdtempSync(join(tmpdir(), "mk-sink-"));
    const { port } = await start("-d", dir);
    const msg = "Subject: split\r\n\r\n..dot\r\nline\r\n.\r\n";
    const bytes = [...Buffer.from(msg)].map((b) => new Uint8Array([b]));
    const r = await chat({ port }, ["HELO client.example", "MAIL FROM:<a@b> BODY=8BITMIME", "RCPT TO:<c@d>", "RCPT TO:<e@d>", "DATA", ...bytes, "QUIT"], 5);
    expect(r).toEndWith("250 2.0.0 Ok\r\n221 Bye\r\n<closed>");
    const [rec, ...rest] = readDumpDir(dir);
    expect(rest).toEqual([]);
    expect(rec).toMatchObject({ clientAddr: "127.0.0.1", proto: "SMTP", helo: "client.example", mailArgs: "<a@b> BODY=8BITMIME",
      from: "a@b", recipients: ["c@d", "e@d"] });
    expect(rec.message.toString()).toBe("Subject: split\r\n\r\n.dot\r\nline\r\n");
    expect(rec.received).toMatch(/^Received: from client\.example \(\[127\.0\.0\.1\]\) by smtp-sink \(smtp-sink\) with SMTP id [0-9a-f]{8}; /);
  });

  test("an empty message and a terminator at a chunk boundary", async () => {
    dir = mkdtempSync(join(tmpdir(), "mk-sink-"));
    const { port } = await start("-d", dir + "/");
    await chat({ port }, ["EHLO x", "MAIL FROM:<>", "RCPT TO:<c@d>", "DATA", ".", "MAIL FROM:<a@b>", "RCPT TO:<c@d>", "DATA", ...["a\r\n", ".\r", "\n"].map((t) => Buffer.from(t)), "QUIT"]);
    const recs = readDumpDir(dir);
    expect(recs.map((r) => [r.proto, r.from, r.message.toString()])).toEqual([["ESMTP", "", ""], ["ESMTP", "a@b", "a\r\n"]]);
  });

  test("-d with a strftime template (Postfix's form) and -S prefix; -D appends to one file", async () => {
    dir = mkdtempSync(join(tmpdir(), "mk-sink-"));
    const { port } = await start("-d", `${dir}/%Y/m.`, "-S", "X-Start: yes\\n", "-D", `${dir}/all-%Y`);
    await chat({ port }, ["HELO x", "MAIL FROM:<a@b>", "RCPT TO:<c@d>", "DATA", "one\r\n.", "MAIL FROM:<a@b>", "RCPT TO:<c@d>", "DATA", "two\r\n.", "QUIT"]);
    const year = String(new Date().getUTCFullYear());
    const files = readdirSync(join(dir, year));
    expect(files.length).toBe(2);
    expect(files.every((f) => /^m\.[0-9a-f]{8}$/.test(f))).toBe(true);
    const recs = readDumpDir(join(dir, year));
    expect(recs.map((r) => r.prefix)).toEqual(["X-Start: yes\n", "X-Start: yes\n"]);
    const all = readFileSync(join(dir, `all-${year}`), "latin1");
    expect(all.match(/^X-Client-Addr:/gm)?.length).toBe(2);
  });

  test("-c: counters on stdout", async () => {
    const { port } = await start("-c");
    await chat({ port }, ["HELO x\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\nx\r\n.\r\nQUIT\r\n"]);
    await Bun.sleep(50);
    expect(out).toBe("sess=0 quit=0 mesg=1\rsess=1 quit=1 mesg=1\r"); // as Postfix's smtp-sink -c
  });

  test("-M / -n: exit after so many messages / sessions", async () => {
    let { port, sink: s } = await start("-M", "2");
    let exited = false;
    s.onExit = () => { exited = true; };
    await chat({ port }, ["HELO x", "MAIL FROM:<a@b>", "RCPT TO:<c@d>", "DATA", "x\r\n.", "QUIT"]);
    expect(exited).toBe(false);
    await chat({ port }, ["HELO x", "MAIL FROM:<a@b>", "RCPT TO:<c@d>", "DATA", "x\r\n.", "QUIT"]);
    await Bun.sleep(60);
    expect(exited).toBe(true);
    s.stop();
    ({ port, sink: s } = await start("-n", "1"));
    exited = false;
    s.onExit = () => { exited = true; };
    await chat({ port }, ["QUIT"]);
    await Bun.sleep(60);
    expect(exited).toBe(true);
  });

  test("-m: sessions beyond the limit wait for a free slot before the greeting", async () => {
    const { port } = await start("-m", "1");
    let second = "";
    const first = await Bun.connect({ hostname: "127.0.0.1", port, socket: { data() {} } });
    await Bun.sleep(50);
    const s2 = await Bun.connect({ hostname: "127.0.0.1", port, socket: { data(_s, d) { second += d.toString(); } } });
    await Bun.sleep(100);
    expect(second).toBe("");
    first.end();
    await Bun.sleep(100);
    expect(second).toBe("220 smtp-sink ESMTP\r\n");
    s2.end();
  });

  test("unix:pathname; a stale socket file is reclaimed; -v logs the dialogue", async () => {
    dir = mkdtempSync(join(tmpdir(), "mk-sink-"));
    const path = join(dir, "sink.sock");
    await start("-v", `unix:${path}`);
    sink!.stop();
    await start("-v", `unix:${path}`);
    expect(await chat({ unix: path }, ["HELO x", "QUIT"])).toBe("220 smtp-sink ESMTP\r\n250 smtp-sink\r\n221 Bye\r\n<closed>");
    expect(err).toContain("smtp-sink: HELO x\n");
    sink!.stop();
    expect(existsSync(path)).toBe(false);
  });
});

describe("smtp-source into smtp-sink", () => {
  test("messages, recipients and dialogue variants arrive complete", async () => {
    dir = mkdtempSync(join(tmpdir(), "mk-sink-"));
    const { port } = await start("-d", dir);
    const runs = [
      ["-m", "4", "-s", "2", "-r", "5", "-N"],
      ["-m", "3", "-d", "-P"],
      ["-m", "2", "-P", "-r", "2", "-S", "piped"],
    ];
    for (const args of runs) {
      const r = await runCli("smtp-source", ["-M", "client.example", "-t", "r@example.test", "-l", "300", ...args, `127.0.0.1:${port}`]);
      expect(r.code).toBe(0);
    }
    const recs = readDumpDir(dir);
    expect(recs.length).toBe(9);
    expect(recs.slice(0, 4).flatMap((r) => r.recipients).sort()).toEqual(
      Array.from({ length: 20 }, (_, i) => `${i + 1}r@example.test`).sort());
    for (const r of recs) expect(r.body.length).toBe(300 + 2);
    expect(recs.slice(4).every((r) => r.proto === "ESMTP")).toBe(true);
  });
});

let tls: { cert: string; key: string } | undefined;
beforeAll(() => {
  if (!existsSync("/usr/bin/openssl")) return;
  const d = mkdtempSync(join(tmpdir(), "mk-tls-"));
  const p = Bun.spawnSync(["/usr/bin/openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", join(d, "key.pem"),
    "-out", join(d, "cert.pem"), "-days", "1", "-subj", "/CN=localhost"], { stdout: "ignore", stderr: "ignore" });
  if (p.exitCode === 0) tls = { cert: join(d, "cert.pem"), key: join(d, "key.pem") };
});

describe("STARTTLS", () => {
  test("--starttls against a sink with --tls-cert/--tls-key: the messages go over TLS", async () => {
    if (!tls) throw new Error("openssl is needed to make a test certificate");
    dir = mkdtempSync(join(tmpdir(), "mk-sink-"));
    const { port } = await start("--tls-cert", tls.cert, "--tls-key", tls.key, "-d", dir);
    const r = await runCli("smtp-source", ["--starttls", "-vv", "-P", "-d", "-m", "2", "-M", "client.example", `127.0.0.1:${port}`]);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain("smtp-source: <<< 250-STARTTLS\n");
    expect(r.stderr).toContain("smtp-source: <<< 220 2.0.0 Ready to start TLS\n");
    expect(r.stderr).toContain("smtp-source: STARTTLS: TLS session established\n");
    expect(r.stderr.match(/smtp-source: EHLO client.example/g)?.length).toBe(2);
    expect(r.stderr).toContain("2 sent, 0 failed");
    expect(readDumpDir(dir).length).toBe(2);
  });

  test("--starttls when the server does not offer it: fatal, with -A plaintext", async () => {
    const { port } = await start();
    let r = await runCli("smtp-source", ["--starttls", `127.0.0.1:${port}`]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("smtp-source: fatal: STARTTLS not offered by the server\n");
    r = await runCli("smtp-source", ["--starttls", "-A", `127.0.0.1:${port}`]);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain("smtp-source: warning: STARTTLS not offered by the server\n");
    expect(r.stderr).toContain("1 sent");
  });
});

describe("smtp-sink CLI", () => {
  test("bad input: one line, exit 1", async () => {
    expect(await runCli("smtp-sink", ["-m", "0", ":1"])).toEqual({ code: 1, stdout: "", stderr: "smtp-sink: fatal: bad maximum concurrency: 0\n" });
    expect((await runCli("smtp-sink", [])).stderr).toStartWith("smtp-sink: fatal: usage: smtp-sink ");
    expect((await runCli("smtp-sink", ["-R", "/x", "127.0.0.1:0"])).stderr).toBe("smtp-sink: fatal: -R (chroot) is not supported\n");
  });

  test.skipIf(process.getuid?.() !== 0)("-u: as root, switch to the user after opening the socket; the dump dir belongs to it", async () => {
    dir = mkdtempSync(join(tmpdir(), "mk-sink-"));
    chmodSync(dir, 0o755); // nobody must reach the dump dir the sink creates for it
    const p = Bun.spawn([process.execPath, join(import.meta.dir, "../../src/main.ts"), "smtp-sink", "-u", "nobody", "-d", join(dir, "d"), "127.0.0.1:0"], { stdout: "pipe", stderr: "pipe" });
    try {
      const { value } = await p.stdout.getReader().read();
      const port = /listening on 127\.0\.0\.1:(\d+)/.exec(new TextDecoder().decode(value))![1];
      const status = readFileSync(`/proc/${p.pid}/status`, "latin1");
      expect(status).toMatch(/^Uid:\t65534\t65534\t65534\t65534$/m);
      expect((await runCli("smtp-source", ["-m", "2", `127.0.0.1:${port}`])).code).toBe(0);
      expect(readDumpDir(join(dir, "d")).length).toBe(2);
      expect(statSync(join(dir, "d")).uid).toBe(65534);
    } finally {
      p.kill("SIGKILL");
      await p.exited;
    }
  });

  test("-6 with an empty host: IPv6 only, an IPv4 connection is refused", async () => {
    const p = Bun.spawn([process.execPath, join(import.meta.dir, "../../src/main.ts"), "smtp-sink", "-6", ":0", "10"], { stdout: "pipe", stderr: "pipe" });
    try {
      const { value } = await p.stdout.getReader().read();
      const m = /^listening on .*:(\d+)\n/.exec(new TextDecoder().decode(value));
      expect(m).not.toBeNull();
      const port = Number(m![1]);
      const attempt = (hostname: string) =>
        new Promise<boolean>((resolve) => {
          Bun.connect({ hostname, port, socket: { open(s) { s.end(); resolve(true); }, data() {}, connectError() { resolve(false); } } }).catch(() => resolve(false));
        });
      expect(await attempt("::1")).toBe(true);
      expect(await attempt("127.0.0.1")).toBe(false);
    } finally {
      p.kill("SIGKILL");
    }
  });

  test("port 0 prints the port; SIGTERM prints the summary and exits 0", async () => {
    const p = Bun.spawn([process.execPath, join(import.meta.dir, "../../src/main.ts"), "smtp-sink", "127.0.0.1:0", "10"], { stdout: "pipe", stderr: "pipe" });
    try {
      const reader = p.stdout.getReader();
      const { value } = await reader.read();
      const line = new TextDecoder().decode(value);
      const m = /^listening on 127\.0\.0\.1:(\d+)\n/.exec(line);
      expect(m).not.toBeNull();
      const r = await runCli("smtp-source", ["-m", "3", `127.0.0.1:${m![1]}`]);
      expect(r.code).toBe(0);
      p.kill("SIGTERM");
      expect(await p.exited).toBe(0);
      expect(await new Response(p.stderr).text()).toMatch(/^smtp-sink: 3 sessions, 3 messages, 3 recipients, \d+ bytes in [0-9.]+ s, [0-9.]+ messages\/s\n$/);
    } finally {
      p.kill("SIGKILL");
    }
  });
});
