// milter-test-server against real, independently written milters started on 127.0.0.1 / a unix
// socket: the libmilter C sample (adds a header, or rejects), the pymilter sample and opendkim in
// signing mode. The DKIM signature in the output is verified with dkimpy against the generated key.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { run, SMALL_EML } from "../test-server/helpers.ts";
import { join } from "node:path";
import { e2eSkipReason, startLibmilter, startOpendkim, startPymilter, verifyDkim, type Peer } from "./lib/index.ts";

const skip = e2eSkipReason();


const ELAPSED = /^elapsed-time: [0-9.e+-]+ seconds$/m;
const UNCHANGED =
  "Envelope:------------------------------\n  MAIL FROM:<alice@example.com>\n  RCPT TO:<bob@example.org>\n" +
  "Header:--------------------------------\n  From: alice@example.com\n  To: bob@example.org\n  Subject: milterkit test\n" +
  "  Message-ID: <test-1@example.com>\n  Date: Mon, 01 Jan 2024 00:00:00 +0000\n";
const BODY = "Body:----------------------------------\nHello,\r\nthis is a small fixed test body.\r\nBye.\r\n\n";

describe.skipIf(!!skip)("milter-test-server against real milters", () => {
  const peers: Peer[] = [];
  let libmilter: Peer;
  let libmilterUnix: Peer;
  let rejecting: Peer;
  let pymilter: Peer;
  let opendkim: Peer;

  beforeAll(async () => {
    [libmilter, libmilterUnix, rejecting, pymilter, opendkim] = await Promise.all([
      startLibmilter(),
      startLibmilter({ unix: true, header: "libmilter-unix" }),
      startLibmilter({ reject: "554 5.7.1 go away" }),
      startPymilter(),
      startOpendkim({ domain: "bench.test", selector: "bench" }),
    ]);
    peers.push(libmilter, libmilterUnix, rejecting, pymilter, opendkim);
  }, 120_000);

  afterAll(async () => {
    await Promise.all(peers.map((p) => p.stop()));
  });

  test("libmilter C milter: its header is added (+ line), status pass", async () => {
    const r = await run(["-s", libmilter.spec, "-m", SMALL_EML, "--output-message"]);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe("");
    expect(r.stdout).toMatch(ELAPSED);
    expect(r.stdout.replace(ELAPSED, "elapsed-time: X seconds")).toBe(
      `status: pass\nelapsed-time: X seconds\n\n${UNCHANGED}+ X-Bench-Milter: libmilter\n${BODY}`,
    );
  });

  test("libmilter C milter over a unix socket", async () => {
    const r = await run(["-s", libmilterUnix.spec, "-m", SMALL_EML, "--output-message"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("+ X-Bench-Milter: libmilter-unix\n");
  });

  test("libmilter C milter configured to reject: status, reply code and stage", async () => {
    const r = await run(["-s", rejecting.spec, "-m", SMALL_EML]);
    expect(r.code).toBe(0); // a reject still exits 0, as the original
    expect(r.stdout.replace(ELAPSED, "elapsed-time: X seconds")).toBe(
      "status: reject [554]<5.7.1>(go away)\nelapsed-time: X seconds\nstage: end-of-message (reply-code 554 5.7.1 go away)\n",
    );
  });

  test("libmilter: the NO_* steps it asked for (it registered only end-of-message) are honoured", async () => {
    const r = await run(["-s", libmilter.spec, "-m", SMALL_EML, "--json", "--unknown", "XFOO", "-b", "more"]);
    expect(r.code).toBe(0);
    const j = JSON.parse(r.stdout);
    // The sample registers only end-of-message: libmilter asks to skip the other events.
    expect(j.negotiated.protocol).toContain("no-connect");
    expect(j.negotiated.protocol).toContain("no-body");
    expect(j.messages[0].modifications).toEqual([{ type: "add-header", name: "X-Bench-Milter", value: "libmilter" }]);
  });

  test("several messages on one libmilter connection (ABORT between them)", async () => {
    const r = await run(["-s", libmilter.spec, "-m", SMALL_EML, "--n-messages", "3", "--json"]);
    expect(r.code).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j.messages.map((m: { status: string }) => m.status)).toEqual(["pass", "pass", "pass"]);
    for (const m of j.messages) expect(m.modifications).toEqual([{ type: "add-header", name: "X-Bench-Milter", value: "libmilter" }]);
  });

  test("pymilter milter: its header is added", async () => {
    const r = await run(["-s", pymilter.spec, "-m", SMALL_EML, "--output-message"]);
    expect(r.code).toBe(0);
    expect(r.stdout.replace(ELAPSED, "elapsed-time: X seconds")).toBe(
      `status: pass\nelapsed-time: X seconds\n\n${UNCHANGED}+ X-Bench-Milter: pymilter\n${BODY}`,
    );
  });

  test("opendkim signing: a DKIM-Signature is inserted and verifies", async () => {
    // opendkim signs for clients in InternalHosts (127.0.0.0/8).
    const argv = ["-s", opendkim.spec, "-m", SMALL_EML, "--connect-address", "inet:50443@[127.0.0.1]"];
    const text = await run([...argv, "--output-message"]);
    expect(text.code).toBe(0);
    expect(text.stdout).toContain("\nHeader:--------------------------------\n+ DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/simple; d=bench.test; s=bench;\n");
    expect(text.stdout).toContain(UNCHANGED.split("Header:--------------------------------\n")[1]);

    const r = await run([...argv, "--json"]);
    const j = JSON.parse(r.stdout);
    expect(j.negotiated.protocol).toContain("header-value-with-leading-space");
    const m = j.messages[0].result;
    expect(m.headers[0].name).toBe("DKIM-Signature");
    // The message as the signer saw it: `Name:` + raw value (leading space kept), folds as CRLF.
    const raw = m.headers.map((h: { name: string; raw: string }) => `${h.name}:${h.raw.replace(/\n/g, "\r\n")}\r\n`).join("") + "\r\n" + m.body;
    expect(await verifyDkim(raw, opendkim.keyTxtPath!)).toBe(true);
    // A tampered body must not verify (the check is real).
    expect(await verifyDkim(raw.replace("Bye.", "Bye!"), opendkim.keyTxtPath!)).toBe(false);
  });

  test("load mode against the libmilter C milter", async () => {
    const r = await run(["-s", libmilter.spec, "-m", SMALL_EML, "--sessions", "300", "--concurrency", "10", "--json"]);
    expect(r.code).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j).toMatchObject({ completed: 300, failed: 0, messages: 300, statuses: { pass: 300 }, errors: {} });
    expect(j.latencyMs.count).toBe(300);
  });
});
