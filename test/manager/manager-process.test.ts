// `milterkit manager --config FILE --no-daemon -s inet:PORT@127.0.0.1` as a real process, driven
// by a test MTA, with scripted children (one on a unix socket) — and a 50 MB message through two
// children with the manager's peak RSS checked.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readdirSync, readlinkSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { eom } from "../../src/milter-side/index.ts";
import { mtaFor, startManagerProcess } from "./support/manager-process.ts";
import { type ScriptedMilter, startScriptedMilter } from "./support/scripted-milter.ts";
import { chain, expectStatus, SESSION } from "./support/harness.ts";

const dir = mkdtempSync(join(tmpdir(), "mk-manager-proc-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const startManager = (config: object) => startManagerProcess(config, { dir });

describe("milterkit manager as a process", () => {
  let spamassassin: ScriptedMilter;
  let opendkim: ScriptedMilter;
  beforeAll(async () => {
    spamassassin = await startScriptedMilter(
      { endOfMessage: eom([{ type: "addheader", name: "X-Spam-Status", value: "No, score=0.1" }]) },
      `unix:${join(dir, "spamass.sock")}`,
    );
    opendkim = await startScriptedMilter({ endOfMessage: eom([{ type: "insheader", index: 0, name: "DKIM-Signature", value: "v=1; a=rsa-sha256" }]) });
  });
  afterAll(async () => {
    await spamassassin?.close();
    await opendkim?.close();
  });

  test("--config FILE --no-daemon -s inet:PORT@127.0.0.1 with the JSON example of issue 6", async () => {
    // test/fixtures/config/basic.json with local children instead of /run/spamass.sock and port 8891
    const example = JSON.parse(readFileSync(join(import.meta.dir, "../fixtures/config/basic.json"), "latin1"));
    example.milters[0].connection_spec = spamassassin.spec;
    example.milters[1].connection_spec = opendkim.spec;
    expect(example.milters[0].fallback_status).toBe("temporary-failure");
    expect(example.milters[1].evaluation_mode).toBe(true);
    example.log = { use_syslog: false }; // keep test sessions out of the machine's syslog
    const m = await startManager(example);
    try {
      const mta = await mtaFor(m.port);
      await chain(mta, "body");
      const o = await SESSION.endOfMessage(mta);
      expectStatus(o, "continue");
      // opendkim runs in evaluation mode: its signature is not applied.
      expect(o.ok && o.modifications).toEqual([{ type: "add-header", name: "X-Spam-Status", value: "No, score=0.1" }]);
      expect(opendkim.events("header").map((h) => h.name)).toEqual(["From", "X-Spam-Status"]);
      await mta.quit();
      const deadline = Date.now() + 5000;
      while (!m.output().includes("[sessions][finished] 1(+1)") && Date.now() < deadline) await Bun.sleep(20);
      expect(m.output()).toContain("[session][end][end-of-message][pass]");
      expect(m.output()).toContain("[sessions][finished] 1(+1) 0");
      // A child that is gone → its fallback (temporary-failure for spamassassin).
      await spamassassin.close();
      const mta2 = await mtaFor(m.port);
      expectStatus(await SESSION.connect(mta2), "temporary-failure");
      mta2.close();
    } finally {
      expect(await m.stop()).toBe(0);
    }
    expect(m.output()).toContain("SIGTERM: stopping");
  });
});

describe("memory", () => {
  test("a 50 MB message through two children: the manager's peak RSS stays under 100 MB, no spill file left", async () => {
    const first = await startScriptedMilter({ recordBody: false });
    const second = await startScriptedMilter({ recordBody: false });
    const m = await startManager({
      log: { level: "error", use_syslog: false },
      milters: [
        { name: "first", connection_spec: first.spec, reading_timeout: 30, end_of_message_timeout: 120 },
        { name: "second", connection_spec: second.spec, reading_timeout: 30, end_of_message_timeout: 120 },
      ],
    });
    try {
      const mta = await mtaFor(m.port);
      await chain(mta, "endOfHeader");
      const chunk = Buffer.alloc(65535, "0123456789abcdef\r\n");
      const total = 50 * 1024 * 1024;
      let sent = 0;
      while (sent < total) {
        const piece = chunk.subarray(0, Math.min(chunk.length, total - sent));
        expectStatus(await mta.body(piece), "continue");
        sent += piece.length;
      }
      expectStatus(await SESSION.endOfMessage(mta), "continue");
      expect(first.bodyBytes).toBe(total);
      expect(second.bodyBytes).toBe(total);
      expect(m.peakKb()).toBeLessThan(100 * 1024);
      // The spill file was closed at the end of the message.
      const fds = readdirSync(`/proc/${m.proc.pid}/fd`).map((fd) => {
        try {
          return readlinkSync(`/proc/${m.proc.pid}/fd/${fd}`);
        } catch {
          return "";
        }
      });
      expect(fds.filter((l) => l.includes("milterkit-body"))).toEqual([]);
      await mta.quit();
    } finally {
      await m.stop();
      await first.close();
      await second.close();
    }
  }, 60_000);
});
