/**
 * End to end: a private Postfix hands its mail to `milterkit manager` (started as a process from
 * src/main.ts), which has two real libmilter children: "always" adds X-Child-Always to every
 * message; "unauthenticated" adds X-Child-Unauthenticated and names the built-in "Unauthenticated"
 * condition. One message is sent after SMTP AUTH, one without: at the sink, the authenticated one
 * must carry only the first header, the other one both. Needs root and Postfix; skipped otherwise.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import * as fs from "node:fs";
import * as path from "node:path";
import {
  cleanEnv,
  e2eSkipReason,
  freePort,
  headerValues,
  makeTempDir,
  type Peer,
  type PostfixInstance,
  removeDir,
  sendMail,
  type Sink,
  type Spawned,
  spawnTracked,
  startLibmilter,
  startPostfix,
  startPostfixSmtpSink,
  stopPid,
  tailFile,
  transcript,
  waitForPort,
} from "./lib/index.ts";

const skip = e2eSkipReason();
if (skip) console.warn(`SKIP test/e2e/manager-conditions.test.ts: ${skip}`);

const ROOT = path.join(import.meta.dir, "../..");

describe.skipIf(!!skip)("manager with an Unauthenticated condition behind a real Postfix", () => {
  let sink: Sink;
  let always: Peer;
  let unauth: Peer;
  let manager: Spawned;
  let pf: PostfixInstance;
  let base: string;

  beforeAll(async () => {
    sink = await startPostfixSmtpSink({ dumpDir: true });
    always = await startLibmilter({ headerName: "X-Child-Always", header: "yes" });
    unauth = await startLibmilter({ headerName: "X-Child-Unauthenticated", header: "yes" });
    base = makeTempDir("mk-manager-conditions-");
    const port = await freePort();
    const config = path.join(base, "milterkit.config.toml");
    fs.writeFileSync(
      config,
      [
        "[manager]",
        `connection_spec = "inet:${port}@[127.0.0.1]"`,
        "[log]",
        `level = "all"`,
        "use_syslog = false",
        "",
        "[[milters]]",
        `name = "always"`,
        `connection_spec = "${always.spec}"`,
        "",
        "[[milters]]",
        `name = "unauthenticated"`,
        `connection_spec = "${unauth.spec}"`,
        `applicable_conditions = ["Unauthenticated"]`,
        "",
      ].join("\n"),
    );
    manager = spawnTracked([process.execPath, path.join(ROOT, "src/main.ts"), "manager", "--config", config, "--no-daemon"], {
      logFile: path.join(base, "manager.log"),
      cwd: ROOT,
      env: cleanEnv(),
      what: "milterkit manager",
    });
    await waitForPort("127.0.0.1", port, 15_000, { pid: manager.pid, logFile: manager.logFile, what: "milterkit manager" });
    pf = await startPostfix({ relayPort: sink.port!, milters: `inet:127.0.0.1:${port}`, sasl: true });
  }, 120_000);

  afterAll(async () => {
    await pf?.stop();
    if (manager) await stopPid(manager.pid);
    await Promise.all([always?.stop(), unauth?.stop(), sink?.stop()]);
    if (base) removeDir(base);
  }, 60_000);

  test("the Unauthenticated child sees only the mail of the client that did not authenticate", async () => {
    const message = (subject: string) => `From: sender@client.test\r\nTo: rcpt@example.test\r\nSubject: ${subject}\r\n\r\nHello.\r\n`;
    const withAuth = await sendMail({
      port: pf.smtpPort,
      from: "authed@client.test",
      rcpts: ["rcpt@example.test"],
      data: message("with AUTH"),
      auth: { user: pf.saslUser!, password: pf.saslPassword! },
    });
    expect(withAuth.accepted, transcript(withAuth.steps)).toBe(true);
    const without = await sendMail({ port: pf.smtpPort, from: "anon@client.test", rcpts: ["rcpt@example.test"], data: message("without AUTH") });
    expect(without.accepted, transcript(without.steps)).toBe(true);

    const messages = await sink.waitForMessages(2, 30_000);
    const bySubject = new Map(messages.map((m) => [headerValues(m, "Subject")[0], m]));
    const authed = bySubject.get("with AUTH");
    const anonymous = bySubject.get("without AUTH");
    const diagnostics = `manager log:\n${tailFile(manager.logFile)}\nmaillog:\n${pf.maillog().slice(-4000)}`;
    expect(authed, diagnostics).toBeDefined();
    expect(anonymous, diagnostics).toBeDefined();
    expect(headerValues(authed!, "X-Child-Always"), diagnostics).toEqual(["yes"]);
    expect(headerValues(authed!, "X-Child-Unauthenticated"), diagnostics).toEqual([]);
    expect(headerValues(anonymous!, "X-Child-Always"), diagnostics).toEqual(["yes"]);
    expect(headerValues(anonymous!, "X-Child-Unauthenticated"), diagnostics).toEqual(["yes"]);
  }, 90_000);
});
