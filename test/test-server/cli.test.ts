import { afterEach, expect, test } from "bun:test";
import {
  SMFIP_NOHELO,
  SMFIP_NR_HDR,
  SMFIP_NR_RCPT,
  SMFIP_SKIP,
  replaceBodyReplies,
  type MilterReply,
  type MtaCommand,
} from "../../src/milter/index.ts";
import { startScriptedMilter, type Answer, type MilterSession, type ScriptedMilter, type ScriptOptions } from "../mta-side/scripted-milter.ts";
import { SMALL_EML, macros, run as runTool, types } from "./helpers.ts";

/** Run, then wait (bounded) until the scripted milter saw every connection close, so its log is complete. */
async function run(...args: Parameters<typeof runTool>) {
  const r = await runTool(...args);
  for (let i = 0; i < 200 && milter && milter.sessions.some((s) => !s.closed); i++) await Bun.sleep(5);
  await Bun.sleep(5);
  return r;
}

let milter: ScriptedMilter | undefined;
afterEach(() => {
  milter?.stop();
  milter = undefined;
});

function start(opts: ScriptOptions = {}): string {
  milter = startScriptedMilter(opts);
  return milter.spec;
}

const eomWith = (replies: MilterReply[], protocol = 0): ScriptOptions => ({
  negotiate: (o) => ({ type: "optneg", version: 6, actions: o.actions, protocol }),
  onCommand: (cmd) => (cmd.type === "eob" ? replies : "default"),
});

test("defaults: what goes on the wire and the two output lines", async () => {
  const spec = start();
  const r = await run(["-s", spec]);
  expect(r.code).toBe(0);
  expect(r.out).toBe("status: pass\nelapsed-time: X seconds\n");
  expect(r.stderr).toBe("");
  const s = milter!.sessions[0];
  expect(s.offer).toEqual({ type: "optneg", version: 6, actions: 0x1ff, protocol: 0x1fffff });
  expect(types(s.commands)).toBe("DC connect DH helo DM mail DR rcpt DT data header header DN eoh body DE eob quit");
  const c = s.commands;
  expect(macros(c, "C")).toEqual({ "{daemon_name}": "milter-test-server", "{if_name}": "localhost", "{if_addr}": "127.0.0.1", j: "mail.example.com" });
  expect(macros(c, "H")).toEqual({ "{tls_version}": "0", "{cipher}": "0", "{cipher_bits}": "0", "{cert_subject}": "cert_subject", "{cert_issuer}": "cert_issuer" });
  expect(macros(c, "M")).toEqual({ "{mail_mailer}": "mail_mailer", "{mail_host}": "mail_host", "{mail_addr}": "mail_addr" });
  expect(macros(c, "R")).toEqual({ "{rcpt_mailer}": "rcpt_mailer", "{rcpt_host}": "rcpt_host", "{rcpt_addr}": "<receiver@example.org>" });
  for (const l of ["T", "N", "E"]) expect(macros(c, l)).toEqual({ i: "i" });
  expect(c.filter((x) => x.type !== "macro")).toEqual([
    { type: "connect", hostname: "mx.example.net", family: "4", port: 50443, address: "192.168.123.123" },
    { type: "helo", hostname: "delian" },
    { type: "mail", address: "<sender@example.com>", args: [] },
    { type: "rcpt", address: "<receiver@example.org>", args: [] },
    { type: "data" },
    { type: "header", name: "From", value: "<sender@example.com>" },
    { type: "header", name: "To", value: "<receiver@example.org>" },
    { type: "eoh" },
    { type: "body", chunk: new Uint8Array(Buffer.from("La de da de da 1.\nLa de da de da 2.\nLa de da de da 3.\nLa de da de da 4.")) },
    { type: "eob" },
    { type: "quit" },
  ]);
});

test("the driver command of tools.md §1.5: output line for line", async () => {
  const spec = start();
  const r = await run([
    "-s", spec, "--connect-host=mx.example.net", "--connect-address=inet:50443@192.0.2.10", "--helo-fqdn=client.example.net",
    "-f", "alice@example.com", "-r", "bob@example.org", "-r", "carol@example.org",
    "-h", "From:alice@example.com", "-h", "To:bob@example.org", "-h", "Subject:milterkit test",
    "-b", "Hello,", "-b", "this is a small fixed test body.", "--output-message",
  ]);
  expect(r.code).toBe(0);
  expect(r.out).toBe(
    `status: pass
elapsed-time: X seconds

Envelope:------------------------------
  MAIL FROM:<alice@example.com>
  RCPT TO:<bob@example.org>
  RCPT TO:<carol@example.org>
Header:--------------------------------
  From: alice@example.com
  To: bob@example.org
  Subject: milterkit test
Body:----------------------------------
Hello,this is a small fixed test body.
`,
  );
  const c = milter!.sessions[0].commands;
  expect(c.find((x) => x.type === "connect")).toEqual({ type: "connect", hostname: "mx.example.net", family: "4", port: 50443, address: "192.0.2.10" });
  expect(c.filter((x) => x.type === "body").map((x) => Buffer.from((x as { chunk: Uint8Array }).chunk).toString())).toEqual(["Hello,", "this is a small fixed test body."]);
});

test("-m small.eml --output-message: output line for line", async () => {
  const spec = start();
  const r = await run(["-s", spec, "-m", SMALL_EML, "--output-message"]);
  expect(r.out).toBe(
    "status: pass\nelapsed-time: X seconds\n\n" +
      "Envelope:------------------------------\n  MAIL FROM:<alice@example.com>\n  RCPT TO:<bob@example.org>\n" +
      "Header:--------------------------------\n  From: alice@example.com\n  To: bob@example.org\n  Subject: milterkit test\n" +
      "  Message-ID: <test-1@example.com>\n  Date: Mon, 01 Jan 2024 00:00:00 +0000\n" +
      "Body:----------------------------------\nHello,\r\nthis is a small fixed test body.\r\nBye.\r\n\n",
  );
  const bodies = milter!.sessions[0].commands.filter((x) => x.type === "body");
  expect(bodies.length).toBe(1);
});

test("every other option reaches the wire", async () => {
  const spec = start();
  const r = await run([
    "-s", spec, "--name", "srv", "--negotiate-version", "6", "--connect-host", "c.example", "--connect-address", "inet6:2525@[2001:db8::5]",
    "--helo-fqdn", "h.example", "--from", "<f@example.com>", "--recipient", "r@example.com", "--unknown", "XFOO bar",
    "--authenticated-name", "user", "--authenticated-type", "PLAIN", "--authenticated-author", "auth",
    "--connect-macro", "j:mx", "--helo-macro", "{cipher}:AES", "--envelope-from-macro", "x:1", "--envelope-recipient-macro", "y:2",
    "--data-macro", "i:Q1", "--end-of-header-macro", "i:Q2", "--end-of-message-macro", "i:Q3",
    "--connection-timeout", "5", "--reading-timeout", "5", "--writing-timeout", "5", "--end-of-message-timeout", "5",
  ]);
  expect(r.code).toBe(0);
  const c = milter!.sessions[0].commands;
  expect(types(c)).toBe("DC connect DH helo DM mail DR rcpt unknown DT data header header DN eoh body DE eob quit");
  expect(c.find((x) => x.type === "connect")).toEqual({ type: "connect", hostname: "c.example", family: "6", port: 2525, address: "2001:db8::5" });
  expect(c.find((x) => x.type === "helo")).toEqual({ type: "helo", hostname: "h.example" });
  expect(c.find((x) => x.type === "unknown")).toEqual({ type: "unknown", commandLine: "XFOO bar" });
  expect(macros(c, "C")).toMatchObject({ "{daemon_name}": "srv", j: "mx" });
  expect(macros(c, "H")).toMatchObject({ "{cipher}": "AES" });
  expect(macros(c, "M")).toMatchObject({ "{auth_authen}": "user", "{auth_type}": "PLAIN", "{auth_author}": "auth", x: "1" });
  expect(macros(c, "R")).toMatchObject({ "{rcpt_addr}": "<r@example.com>", y: "2" });
  expect([macros(c, "T"), macros(c, "N"), macros(c, "E")]).toEqual([{ i: "Q1" }, { i: "Q2" }, { i: "Q3" }]);
});

test("--negotiate-version 2 is offered; a v2 milter gets no DATA and no UNKNOWN", async () => {
  const spec = start({ negotiate: (o) => ({ type: "optneg", version: 2, actions: 0x0f, protocol: 0 }) });
  const r = await run(["-s", spec, "--negotiate-version", "2", "--unknown", "XFOO"]);
  expect(r.code).toBe(0);
  expect(milter!.sessions[0].offer!.version).toBe(2);
  expect(types(milter!.sessions[0].commands)).toBe("DC connect DH helo DM mail DR rcpt header header DN eoh body DE eob quit");
});

test("every modification type in the output message", async () => {
  const spec = start(eomWith([
    { type: "addheader", name: "X-Added", value: "added" },
    { type: "insheader", index: 0, name: "X-Top", value: "top" },
    { type: "chgheader", index: 1, name: "Subject", value: "changed" },
    { type: "chgheader", index: 1, name: "Message-ID", value: "" },
    { type: "chgfrom", address: "<bounce@example.com>", args: "SIZE=10" },
    { type: "addrcpt", address: "<extra@example.org>" },
    { type: "addrcpt_par", address: "<extra2@example.org>", args: "NOTIFY=NEVER" },
    { type: "delrcpt", address: "<bob@example.org>" },
    { type: "replbody", chunk: Buffer.from("new body\r\n") },
    { type: "quarantine", reason: "looks odd" },
    { type: "continue" },
  ]));
  const r = await run(["-s", spec, "-m", SMALL_EML, "--output-message"]);
  expect(r.code).toBe(0);
  expect(r.out).toBe(
    [
      "status: pass",
      "elapsed-time: X seconds",
      "Quarantine reason: <looks odd>",
      "",
      "Envelope:------------------------------",
      "- MAIL FROM:<alice@example.com>",
      "+ MAIL FROM:<bounce@example.com> SIZE=10",
      "- RCPT TO:<bob@example.org>",
      "+ RCPT TO:<extra@example.org>",
      "+ RCPT TO:<extra2@example.org> NOTIFY=NEVER",
      "Header:--------------------------------",
      "+ X-Top: top",
      "  From: alice@example.com",
      "  To: bob@example.org",
      "+ Subject: changed",
      "- Subject: milterkit test",
      "- Message-ID: <test-1@example.com>",
      "  Date: Mon, 01 Jan 2024 00:00:00 +0000",
      "+ X-Added: added",
      "Body:----------------------------------",
      "new body\r",
      "",
      "",
    ].join("\n"),
  );
});

test("JSON: every modification, envelope and headers after the changes", async () => {
  const spec = start(eomWith([
    { type: "chgfrom", address: "<plain@example.com>" },
    { type: "addrcpt_par", address: "<p@example.org>" },
    { type: "chgheader", index: 1, name: "To", value: "x@example.org" },
    { type: "accept" },
  ]));
  const r = await run(["-s", spec, "-m", SMALL_EML, "--json"]);
  expect(r.code).toBe(0);
  const j = JSON.parse(r.stdout);
  expect(j).toMatchObject({ status: "accept", stage: "end-of-message", error: null, negotiated: { version: 6 } });
  expect(j.messages[0].modifications).toEqual([
    { type: "change-envelope-from", address: "<plain@example.com>" },
    { type: "add-envelope-recipient", address: "<p@example.org>", withParameters: true },
    { type: "change-header", index: 1, name: "To", value: "x@example.org" },
  ]);
  expect(j.messages[0].result).toMatchObject({
    from: "<plain@example.com>",
    recipients: [{ address: "<bob@example.org>" }, { address: "<p@example.org>" }],
    body: "Hello,\r\nthis is a small fixed test body.\r\nBye.\r\n",
  });
  expect(j.messages[0].result.headers[1]).toEqual({ name: "To", value: "x@example.org", raw: " x@example.org" });
});

test("a replacement body larger than 64 KiB (several b packets)", async () => {
  const big = Buffer.alloc(150_000);
  for (let i = 0; i < big.length; i++) big[i] = 0x41 + (i % 26);
  const spec = start(eomWith([...replaceBodyReplies(big), { type: "continue" }]));
  const r = await run(["-s", spec, "--output-message", "-b", "x"]);
  expect(r.code).toBe(0);
  const body = r.stdout.slice(r.stdout.indexOf("Body:----------------------------------\n") + 40);
  expect(body).toBe(big.toString("latin1") + "\n");
});

test("reply codes: multi-line text, stage line, exit 0", async () => {
  const text = "550-5.7.1 first line\r\n550-5.7.1 second 50%% line\r\n550 5.7.1 last";
  const spec = start({ onCommand: (cmd) => (cmd.type === "eob" ? [{ type: "replycode", text }] : "default") });
  const r = await run(["-s", spec]);
  expect(r.code).toBe(0);
  expect(r.out).toBe(
    "status: reject [550]<5.7.1>(first line\nsecond 50%% line\nlast)\nelapsed-time: X seconds\n" +
      "stage: end-of-message (reply-code 550-5.7.1 first line / 550-5.7.1 second 50%% line / 550 5.7.1 last)\n",
  );
  expect(types(milter!.sessions[0].commands).endsWith("eob abort quit")).toBe(true);
});

test("RCPT: a rejected recipient is dropped and the message goes on; the reply code still shows", async () => {
  const spec = start({ onCommand: (cmd) => (cmd.type === "rcpt" && cmd.address === "<bad@example.org>" ? [{ type: "replycode", text: "550 5.1.1 no such user" }] : "default") });
  const r = await run(["-s", spec, "-r", "bad@example.org", "-r", "good@example.org", "--output-message"]);
  expect(r.code).toBe(0);
  expect(r.out).toContain("status: pass [550]<5.1.1>(no such user)\n");
  expect(r.out).toContain("- RCPT TO:<bad@example.org>\n+ RCPT TO:<good@example.org>\n- RCPT TO:<good@example.org>\n".slice(0, 0)); // positional diff below
  expect(r.out).toContain("Envelope:------------------------------\n  MAIL FROM:<sender@example.com>\n- RCPT TO:<bad@example.org>\n+ RCPT TO:<good@example.org>\n- RCPT TO:<good@example.org>\n");
  expect(types(milter!.sessions[0].commands)).toContain("rcpt DR rcpt DT data");
});

test("RCPT: every recipient rejected ends the message (abort, quit)", async () => {
  const spec = start({ onCommand: (cmd) => (cmd.type === "rcpt" ? [{ type: "tempfail" }] : "default") });
  const r = await run(["-s", spec, "-r", "a@example.org", "-r", "b@example.org"]);
  expect(r.code).toBe(0);
  expect(r.out).toBe("status: temporary-failure\nelapsed-time: X seconds\nstage: envelope-recipient (temporary-failure)\n");
  expect(types(milter!.sessions[0].commands)).toBe("DC connect DH helo DM mail DR rcpt DR rcpt abort quit");
});

test("decisions at connect and HELO end the session; discard at MAIL ends the message", async () => {
  let spec = start({ onCommand: (cmd) => (cmd.type === "connect" ? [{ type: "reject" }] : "default") });
  let r = await run(["-s", spec]);
  expect(r.out).toBe("status: reject\nelapsed-time: X seconds\nstage: connect (reject)\n");
  expect(types(milter!.sessions[0].commands)).toBe("DC connect abort quit");
  milter!.stop();
  spec = start({ onCommand: (cmd) => (cmd.type === "helo" ? [{ type: "accept" }] : "default") });
  r = await run(["-s", spec]);
  expect(r.out).toBe("status: accept\nelapsed-time: X seconds\nstage: helo (accept)\n");
  milter!.stop();
  spec = start({ onCommand: (cmd) => (cmd.type === "mail" ? [{ type: "discard" }] : "default") });
  r = await run(["-s", spec]);
  expect(r.out).toBe("status: discard\nelapsed-time: X seconds\nstage: envelope-from (discard)\n");
  expect(types(milter!.sessions[0].commands)).toBe("DC connect DH helo DM mail abort quit");
});

test("skip during the body jumps to end-of-message", async () => {
  const spec = start({
    negotiate: (o) => ({ type: "optneg", version: 6, actions: o.actions, protocol: SMFIP_SKIP }),
    onCommand: (cmd) => (cmd.type === "body" ? [{ type: "skip" }] : "default"),
  });
  const r = await run(["-s", spec, "-b", "one", "-b", "two", "-b", "three"]);
  expect(r.out).toBe("status: pass\nelapsed-time: X seconds\n");
  expect(types(milter!.sessions[0].commands)).toBe("DC connect DH helo DM mail DR rcpt DT data header header DN eoh body DE eob quit");
});

test("NO_* and NR_* steps, symbol lists with values for requested macros", async () => {
  const spec = start({
    negotiate: (o) => ({
      type: "optneg", version: 6, actions: o.actions, protocol: SMFIP_NOHELO | SMFIP_NR_RCPT | SMFIP_NR_HDR,
      macroLists: [{ stage: 0, macros: "j {client_addr}" }, { stage: 2, macros: "{mail_addr}" }],
    }),
  });
  const r = await run(["-s", spec]);
  expect(r.code).toBe(0);
  const c = milter!.sessions[0].commands;
  expect(types(c)).toBe("DC connect DH DM mail DR rcpt DT data header header DN eoh body DE eob quit");
  expect(macros(c, "C")).toEqual({ j: "mail.example.com", "{client_addr}": "{client_addr}" });
  expect(macros(c, "M")).toEqual({ "{mail_addr}": "mail_addr" });
});

test("progress keeps end-of-message alive beyond --end-of-message-timeout", async () => {
  const spec = start({
    onCommand: async (cmd, s) => {
      if (cmd.type !== "eob") return "default";
      for (let i = 0; i < 5; i++) {
        await Bun.sleep(100);
        s.write([{ type: "progress" }]);
      }
      return [{ type: "addheader", name: "X-Slow", value: "1" }, { type: "continue" }];
    },
  });
  const r = await run(["-s", spec, "--end-of-message-timeout", "0.25", "--json"]);
  expect(r.code).toBe(0);
  const j = JSON.parse(r.stdout);
  expect(j.status).toBe("pass");
  expect(j.messages[0].progress).toBe(5);
});

test("--reading-timeout fires: error status, stage line, exit 1", async () => {
  const spec = start({ onCommand: (cmd) => (cmd.type === "helo" ? new Promise<Answer>(() => {}) : "default") });
  const r = await run(["-s", spec, "--reading-timeout", "0.2"]);
  expect(r.code).toBe(1);
  expect(r.out).toBe("status: error\nelapsed-time: X seconds\nstage: helo (timeout/reading: " + spec + ": no reply to helo within 0.2 s)\n");
  expect(r.stderr).toBe(`milter-test-server: helo: timeout (reading): ${spec}: no reply to helo within 0.2 s\n`);
});

test("--end-of-message-timeout fires at end-of-message only", async () => {
  const spec = start({ onCommand: (cmd) => (cmd.type === "eob" ? new Promise<Answer>(() => {}) : "default") });
  const r = await run(["-s", spec, "--reading-timeout", "0.05", "--end-of-message-timeout", "0.3"]);
  expect(r.code).toBe(1);
  expect(r.out).toContain("stage: end-of-message (timeout/end-of-message:");
});

test("--all-timeouts applies to the reading timeout", async () => {
  const spec = start({ onCommand: (cmd) => (cmd.type === "mail" ? new Promise<Answer>(() => {}) : "default") });
  const r = await run(["-s", spec, "--all-timeouts", "0.1"]);
  expect(r.code).toBe(1);
  expect(r.out).toContain("stage: envelope-from (timeout/reading:");
});

test("a protocol error is reported with its stage", async () => {
  const spec = start({ onCommand: (cmd) => (cmd.type === "data" ? [{ type: "addheader", name: "X", value: "y" }] : "default") });
  const r = await run(["-s", spec]);
  expect(r.code).toBe(1);
  expect(r.out).toContain("status: error\n");
  expect(r.out).toContain("stage: data (protocol-error: ");
  expect(r.stderr).toContain("a modification outside end-of-message");
});

test("connection refused: only the error message, exit 1", async () => {
  const spec = start();
  milter!.stop();
  milter = undefined;
  const r = await run(["-s", spec, "--connection-timeout", "5"]);
  expect(r.code).toBe(1);
  expect(r.stdout).toBe("");
  expect(r.stderr).toBe(`cannot connect to ${spec}: connection refused\n`);
});

test("--n-messages: several messages on one connection, ABORT between them", async () => {
  let n = 0;
  const spec = start({ onCommand: (cmd) => (cmd.type === "eob" && ++n === 2 ? [{ type: "replycode", text: "451 4.3.0 later" }] : "default") });
  const r = await run(["-s", spec, "--n-messages", "3"]);
  expect(r.code).toBe(0);
  expect(r.out).toBe(
    "message: 1/3\nstatus: pass\nmessage: 2/3\nstatus: temporary-failure [451]<4.3.0>(later)\nstage: end-of-message (reply-code 451 4.3.0 later)\n" +
      "message: 3/3\nstatus: pass\nelapsed-time: X seconds\n",
  );
  const msg = "DM mail DR rcpt DT data header header DN eoh body DE eob";
  expect(types(milter!.sessions[0].commands)).toBe(`DC connect DH helo ${msg} abort ${msg} abort ${msg} quit`);
  expect(milter!.sessions.length).toBe(1);
});

test("--threads: N sessions at the same time, one report each", async () => {
  const spec = start();
  const r = await run(["-s", spec, "-t", "3"]);
  expect(r.code).toBe(0);
  expect(r.stdout.match(/^status: pass$/gm)?.length).toBe(3);
  expect(r.stdout.match(/^elapsed-time: /gm)?.length).toBe(3);
  expect(milter!.sessions.length).toBe(3);
});

test("--verbose: every packet decoded and in hex on stderr", async () => {
  const spec = start(eomWith([{ type: "addheader", name: "X-A", value: "1" }, { type: "continue" }]));
  const r = await run(["-s", spec, "-v"]);
  expect(r.code).toBe(0);
  expect(r.stderr).toContain("> SMFIC_OPTNEG ('O') version=6 actions=0x1ff protocol=0x1fffff\n  0000000d4f00000006000001ff001fffff\n");
  expect(r.stderr).toContain('> SMFIC_MACRO (\'D\') C {daemon_name}="milter-test-server"');
  expect(r.stderr).toContain('< SMFIR_ADDHEADER (\'h\') "X-A": "1"\n  0000000768582d41003100\n');
  expect(r.stderr).toContain("> SMFIC_QUIT ('Q')\n  0000000151\n");
});

test("--color: + and - lines coloured", async () => {
  const spec = start(eomWith([{ type: "addheader", name: "X-A", value: "1" }, { type: "continue" }]));
  const r = await run(["-s", spec, "--output-message", "--color"]);
  expect(r.stdout).toContain("\x1b[32m+ X-A: 1\x1b[0m\n");
  const plain = await run(["-s", spec, "--output-message", "--color=no"], { isTty: true });
  expect(plain.stdout).toContain("\n+ X-A: 1\n");
});

test("MILTER_DEFAULT_CONNECTION_SPEC is the default spec", async () => {
  const spec = start();
  const r = await run([], { env: { MILTER_DEFAULT_CONNECTION_SPEC: spec } });
  expect(r.code).toBe(0);
  expect(milter!.sessions.length).toBe(1);
});

test("a milter that closes during negotiation: error, exit 1", async () => {
  const spec = start({ negotiate: () => "close" });
  const r = await run(["-s", spec]);
  expect(r.code).toBe(1);
  expect(r.stdout).toBe("");
  expect(r.stderr).toContain("milter-test-server: negotiate: closed:");
});
