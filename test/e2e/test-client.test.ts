/**
 * milter-test-client (the COMPILED binary, started through its symlink) behind a real private Postfix on
 * loopback: one message with SMTP AUTH through smtpd, over a milter connection on inet (127.0.0.1),
 * inet6 (::1) and a Unix socket. Asserts the printed events and the macros Postfix really sends
 * (j, {daemon_name}, i, the connect/helo/mail/rcpt values, {auth_authen}). Needs root and Postfix.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, mkdtempSync, rmSync, symlinkSync } from "node:fs";
import { join } from "node:path";
import {
  e2eSkipReason,
  freePort,
  makeTempDir,
  type PostfixInstance,
  type Sink,
  sendMail,
  startPostfix,
  startPostfixSmtpSink,
} from "./lib/index.ts";
import { Collector, waitListening } from "../test-client/helpers.ts";
import { compileMilterkit } from "../../build.ts";

const skip = e2eSkipReason();
if (skip) console.warn(`SKIP test/e2e/test-client.test.ts: ${skip}`);

let binDir = "";
let sink: Sink | undefined;
let pf: PostfixInstance | undefined;
let delivered = 0;

beforeAll(async () => {
  if (skip) return;
  // Our own binary (same flags as build.ts), so we never race with other tests rebuilding dist/.
  binDir = mkdtempSync("/tmp/mk-e2e-tc-bin-");
  chmodSync(binDir, 0o755);
  compileMilterkit(join(binDir, "milterkit"), { timeoutMs: 60_000 });
  symlinkSync("milterkit", join(binDir, "milter-test-client"));
  sink = await startPostfixSmtpSink({ dumpDir: true });
  pf = await startPostfix({ relayPort: sink.port!, sasl: true, ipv6: true });
}, 120_000);

afterAll(async () => {
  await pf?.stop();
  await sink?.stop();
  if (binDir) rmSync(binDir, { recursive: true, force: true });
});

interface Event {
  event: string;
  line: string;
  macros: Record<string, string>;
}
const EVENT = /^(negotiate|connect|helo|envelope-from|envelope-recipient|data|header|end-of-header|body|end-of-message|abort|unknown|finished)(?::|$)/;

/** The test client's text output as events, each with its `macros:` block. */
function parseEvents(out: string): Event[] {
  const events: Event[] = [];
  let inMacros = false;
  for (const line of out.split("\n")) {
    if (EVENT.test(line)) {
      events.push({ event: EVENT.exec(line)![1], line, macros: {} });
      inMacros = false;
    } else if (line === "macros:") {
      inMacros = true;
    } else if (inMacros && line.startsWith("  ") && events.length) {
      const i = line.indexOf("=");
      events[events.length - 1].macros[line.slice(2, i)] = line.slice(i + 1);
    } else {
      inMacros = false;
    }
  }
  return events;
}

const POSTFIX_NEGOTIATE =
  "negotiate: version=<6>, action=<add-headers|change-body|add-envelope-recipient|delete-envelope-recipient|change-headers|quarantine|change-envelope-from|add-envelope-recipient-with-parameters|set-symbol-list>, step=<no-connect|no-helo|no-envelope-from|no-envelope-recipient|no-body|no-headers|no-end-of-header|no-reply-header|no-unknown|no-data|skip|envelope-recipient-rejected|no-reply-connect|no-reply-helo|no-reply-envelope-from|no-reply-envelope-recipient|no-reply-data|no-reply-unknown|no-reply-end-of-header|no-reply-body|header-value-with-leading-space>";

type Transport = "inet" | "inet6" | "unix";

async function oneMessage(transport: Transport): Promise<void> {
  const p = pf!;
  let spec: string;
  let postfixSpec: string;
  const extra: string[] = [];
  let sockDir: string | undefined;
  if (transport === "unix") {
    sockDir = makeTempDir("mk-e2e-tc-sock-");
    spec = `unix:${sockDir}/test-client.sock`;
    postfixSpec = spec;
    extra.push("--unix-socket-group=postfix"); // smtpd runs as postfix
  } else if (transport === "inet6") {
    const port = await freePort("::1");
    spec = `inet6:${port}@[::1]`;
    postfixSpec = `inet:[::1]:${port}`;
  } else {
    const port = await freePort();
    spec = `inet:${port}@[127.0.0.1]`;
    postfixSpec = `inet:127.0.0.1:${port}`;
  }
  const proc = Bun.spawn({ cmd: [join(binDir, "milter-test-client"), "-s", spec, ...extra], cwd: "/", stdout: "pipe", stderr: "pipe" });
  const out = new Collector(proc.stdout);
  const err = new Collector(proc.stderr);
  try {
    await waitListening(spec, proc, err);
    await p.setMainCf({ smtpd_milters: postfixSpec });
    const subject = `milterkit e2e ${transport}`;
    const smtpHost = transport === "inet6" ? "::1" : "127.0.0.1";
    const r = await sendMail({
      host: smtpHost,
      port: transport === "inet6" ? p.smtpPort6 : p.smtpPort,
      from: "sender@example.com",
      rcpts: ["rcpt@example.net"],
      auth: { user: p.saslUser!, password: p.saslPassword! },
      data: `From: Sender <sender@example.com>\r\nTo: rcpt@example.net\r\nSubject: ${subject}\r\nMessage-ID: <e2e-${transport}@example.com>\r\nDate: Sun, 22 Nov 2026 00:00:00 +0000\r\n\r\nline one\r\n.dot line\r\n`,
    });
    expect(r.accepted).toBe(true);
    await out.waitFor(/^finished$/m, 20_000);
    const events = parseEvents(out.text);
    const names = events.map((e) => e.event);
    const eom = names.indexOf("end-of-message");
    expect(names.slice(0, 6)).toEqual(["negotiate", "connect", "helo", "envelope-from", "envelope-recipient", "data"]);
    expect(names.slice(6, eom)).toEqual(["header", "header", "header", "header", "header", "end-of-header", "body"]);
    const after = names.slice(eom + 1);
    expect(after[after.length - 1]).toBe("finished");
    expect(after.slice(0, -1).length).toBeGreaterThanOrEqual(1); // Postfix sends A after the message (and before QUIT)
    expect(new Set(after.slice(0, -1))).toEqual(new Set(["abort"]));

    const [neg, conn, helo, mail, rcpt, data] = events;
    expect(neg.line).toBe(POSTFIX_NEGOTIATE);
    const addr = transport === "inet6" ? String.raw`inet6:\d+@\[::1\]` : String.raw`inet:\d+@\[127\.0\.0\.1\]`;
    expect(conn.line).toMatch(new RegExp(`^connect: host=<[^>]+>, address=<${addr}>$`));
    expect(conn.macros.j).toBe(p.myhostname);
    expect(conn.macros.daemon_name).toBe(p.myhostname);
    expect(conn.macros.daemon_addr).toBe(smtpHost);
    expect(conn.macros.v).toMatch(/^Postfix \d+\.\d+/);
    expect(conn.macros._).toContain(`[${smtpHost}]`);
    expect(helo.line).toBe("helo: <client.milterkit.test>");
    expect(mail.line).toBe("envelope-from: <<sender@example.com>>");
    // {mail_host}/{rcpt_host} are the next hop (relayhost = the sink), {…_mailer} the transport
    const nextHop = `[127.0.0.1]:${sink!.port}`;
    expect(mail.macros).toMatchObject({ auth_type: "PLAIN", auth_authen: p.saslUser!, mail_addr: "sender@example.com", mail_host: nextHop, mail_mailer: "smtp" });
    expect(mail.macros.i).toBeUndefined(); // no queue id before the first accepted recipient
    expect(rcpt.line).toBe("envelope-recipient: <<rcpt@example.net>>");
    expect(rcpt.macros).toMatchObject({ rcpt_addr: "rcpt@example.net", rcpt_host: nextHop, rcpt_mailer: "smtp" });
    const qid = data.macros.i;
    expect(qid).toMatch(/^[0-9A-F]{6,}$/);
    for (const e of events.slice(5, eom + 1)) expect(e.macros.i).toBe(qid); // D T, D L per header, D N, D B, D E
    expect(events.filter((e) => e.event === "header").map((e) => e.line)).toEqual([
      "header: <From: Sender <sender@example.com>>",
      "header: <To: rcpt@example.net>",
      `header: <Subject: ${subject}>`,
      `header: <Message-ID: <e2e-${transport}@example.com>>`,
      "header: <Date: Sun, 22 Nov 2026 00:00:00 +0000>",
    ]);
    expect(out.text).toContain("body: <line one\r\n.dot line\r\n>\n"); // dot-unstuffed, CRLF kept
    await p.waitForLog(new RegExp(`${qid}: client=.*sasl_username=${p.saslUser}`));
    const msgs = await sink!.waitForMessages(++delivered, 20_000);
    expect(msgs.some((m) => m.raw.includes(`Subject: ${subject}`))).toBe(true);
    expect(out.text).toMatch(/^\[\d{4}-\d\d-\d\dT[\d:.]+Z\]: \[sessions\]\[finished\] 1\(\+1\) 0$/m);
    expect(err.text).toBe("");
  } finally {
    await p.setMainCf({ smtpd_milters: "" });
    proc.kill("SIGTERM");
    await proc.exited;
    if (sockDir) rmSync(sockDir, { recursive: true, force: true });
  }
}

describe.skipIf(!!skip)("milter-test-client behind Postfix", () => {
  test("inet 127.0.0.1", () => oneMessage("inet"), 90_000);
  test("inet6 ::1", () => oneMessage("inet6"), 90_000);
  test("unix socket", () => oneMessage("unix"), 90_000);
});
