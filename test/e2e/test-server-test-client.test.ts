// milter-test-server against our own milter-test-client (a separate process, --json event log):
// every event arrives as it was sent — envelope, macros, headers with 8-bit bytes, body chunks
// (a body over 64 KiB split into 65535-byte packets), unknown command, several messages with
// ABORT between them — and load mode completes against it.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { writeFileSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { run } from "../test-server/helpers.ts";
import { freePort, waitForPort } from "./lib/ports.ts";
import { stopPid } from "./lib/proc.ts";

const ROOT = join(import.meta.dir, "../..");
let port: number;
let proc: ReturnType<typeof Bun.spawn>;
let log = "";
let dir: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "mk-ts-tc-"));
  port = await freePort();
  // Started as root it would switch to nobody; -u root keeps it simple (it only listens on loopback).
  const asRoot = process.getuid?.() === 0 ? ["-u", "root"] : [];
  proc = Bun.spawn([process.execPath, join(ROOT, "src/main.ts"), "test-client", "-s", `inet:${port}@[127.0.0.1]`, "--json", ...asRoot], {
    stdout: "pipe",
    stderr: "pipe",
  });
  void (async () => {
    const reader = proc.stdout as ReadableStream<Uint8Array>;
    // Streaming decode: a pipe read can end inside a UTF-8 sequence (8-bit body bytes are
    // two-byte characters in the JSON); decoding each read alone would turn both halves into U+FFFD.
    const utf8 = new TextDecoder("utf-8");
    for await (const chunk of reader) log += utf8.decode(chunk, { stream: true });
  })();
  await waitForPort("127.0.0.1", port, 15_000, { pid: proc.pid, what: "milter-test-client" });
}, 30_000);

afterAll(async () => {
  await stopPid(proc.pid, { graceMs: 1000 });
  rmSync(dir, { recursive: true, force: true });
});


type Event = Record<string, any> & { event: string; session: number };

/** Events of the sessions that finished since `from` (bounded wait for the "finished" events). */
async function eventsSince(from: number, sessions = 1): Promise<Event[]> {
  for (let i = 0; i < 400; i++) {
    const evs = parse(log.slice(from));
    if (evs.filter((e) => e.event === "finished").length >= sessions) return evs;
    await Bun.sleep(10);
  }
  throw new Error(`test-client did not report ${sessions} finished session(s); log:\n${log.slice(from)}`);
}

function parse(text: string): Event[] {
  return text.split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l));
}

const strip = (e: Event) => {
  const { session, pid, ...rest } = e;
  return rest;
};

test("every event arrives as sent", async () => {
  // 1400 lines of 98 8-bit bytes + CRLF: a mail file's body is cut at line ends (65500-byte chunks).
  const lines: Buffer[] = [];
  for (let l = 0; l < 1400; l++) {
    const line = Buffer.alloc(100);
    for (let i = 0; i < 98; i++) line[i] = 0x80 + ((l + i) % 128);
    line[98] = 0x0d;
    line[99] = 0x0a;
    lines.push(line);
  }
  const body = Buffer.concat(lines);
  const big = "y".repeat(70_000); // one -b chunk larger than 64 KiB: split by the MTA side
  const eml = join(dir, "m.eml");
  writeFileSync(eml, Buffer.concat([Buffer.from("From: Alice <alice@example.com>\r\nTo: bob@example.org\r\nSubject: caf\xe9 test\r\nX-Folded: one\r\n\ttwo\r\n\r\n", "latin1"), body]));
  const from = log.length;
  const r = await run([
    "-s", `inet:${port}@[127.0.0.1]`, "-m", eml, "-r", "carol@example.org", "--connect-host", "client.example",
    "--connect-address", "inet6:4321@[2001:db8::7]", "--helo-fqdn", "helo.example", "--unknown", "XFOO",
    "--connect-macro", "j:mx.example", "--envelope-from-macro", "{auth_type}:PLAIN", "--end-of-message-macro", "i:QID", "-b", big,
  ]);
  expect(r.code).toBe(0);
  const ev = (await eventsSince(from)).map(strip);
  expect(ev.map((e) => e.event)).toEqual([
    "negotiate", "connect", "helo", "envelope-from", "envelope-recipient", "envelope-recipient", "unknown", "data",
    "header", "header", "header", "header", "end-of-header", "body", "body", "body", "body", "body", "end-of-message", "quit", "finished",
  ]);
  expect(ev[0]).toMatchObject({ version: 6, actions: 0x1ff, protocol: 0x1fffff });
  expect(ev[1]).toMatchObject({
    host: "client.example", family: "6", port: 4321, address: "2001:db8::7",
    macros: { daemon_name: "milter-test-server", if_name: "localhost", if_addr: "127.0.0.1", j: "mx.example" },
  });
  expect(ev[2]).toMatchObject({ fqdn: "helo.example" });
  expect(ev[3]).toMatchObject({ address: "<alice@example.com>", args: [], macros: { mail_mailer: "mail_mailer", auth_type: "PLAIN" } });
  expect(ev[4]).toMatchObject({ address: "<bob@example.org>", macros: { rcpt_addr: "<bob@example.org>" } });
  expect(ev[5]).toMatchObject({ address: "<carol@example.org>", macros: { rcpt_addr: "<carol@example.org>" } });
  expect(ev[6]).toMatchObject({ command: "XFOO" });
  expect(ev.filter((e) => e.event === "header").map((e) => [e.name, e.value])).toEqual([
    ["From", "Alice <alice@example.com>"],
    ["To", "bob@example.org"],
    ["Subject", "caf\u00e9 test"],
    ["X-Folded", "one\n\ttwo"],
  ]);
  const chunks = ev.filter((e) => e.event === "body");
  expect(chunks.map((e) => e.size)).toEqual([65500, 65500, 9000, 65535, 4465]);
  expect(Buffer.from(chunks.map((e) => e.chunk).join(""), "latin1")).toEqual(Buffer.concat([body, Buffer.from(big)]));
  expect(ev[18]).toMatchObject({ event: "end-of-message", macros: { i: "QID" } });
});

test("several messages per connection: abort between them, every message complete", async () => {
  const from = log.length;
  const r = await run(["-s", `inet:${port}@[127.0.0.1]`, "--n-messages", "3", "-b", "x"]);
  expect(r.code).toBe(0);
  const names = (await eventsSince(from)).map((e) => e.event);
  const msg = ["envelope-from", "envelope-recipient", "data", "header", "header", "end-of-header", "body", "end-of-message"];
  expect(names).toEqual(["negotiate", "connect", "helo", ...msg, "abort", ...msg, "abort", ...msg, "quit", "finished"]);
});

test("load mode completes against the test-client", async () => {
  const from = log.length;
  const r = await run(["-s", `inet:${port}@[127.0.0.1]`, "--sessions", "100", "--concurrency", "10"]);
  expect(r.code).toBe(0);
  expect(r.stdout).toContain("sessions: 100 completed, 0 failed of 100");
  const evs = await eventsSince(from, 100);
  expect(evs.filter((e) => e.event === "end-of-message").length).toBe(100);
});
