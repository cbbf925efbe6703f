/**
 * Invisible in the chain, on a real Sendmail 8.17 (Debian's packages unpacked into the cache dir,
 * not installed; see lib/sendmail.ts): the same messages and chains as the Postfix suite, each
 * sent (a) to a Sendmail daemon port whose InputMailFilters lists the children directly and
 * (b) to a port whose only milter is `milterkit manager` with the same children in the same
 * order. Compared after masking (lib/transparency.ts): the smtp-sink dump, or for a quarantined
 * message the queue's control file (sender, recipients, quarantine reason, headers) and body.
 */
import { afterAll, beforeAll, describe, test } from "bun:test";
import * as fs from "node:fs";
import * as path from "node:path";
import { dumpFiles, e2eSkipReason, freePorts, makeDir, makeTempDir, type Peer, pollUntil, sendMail, type Sink, startPostfixSmtpSink } from "./lib/index.ts";
import { queuedMessage, type SendmailInstance, sendmailSkipReason, startSendmail } from "./lib/sendmail.ts";
import {
  CHAINS,
  type ChildName,
  compareChain,
  type Delivery,
  maskDelivery,
  startTransparencyChildren,
  type TestMessage,
} from "./lib/transparency.ts";

const skip = e2eSkipReason() ?? sendmailSkipReason();
if (skip) console.warn(`SKIP test/e2e/transparency-sendmail.test.ts: ${skip}`);


describe.skipIf(!!skip)("transparency on Sendmail: children directly vs through the manager", () => {
  let sink: Sink;
  let sm: SendmailInstance;
  let peers = new Map<ChildName, Peer>();
  const ports: { direct: number; manager: number; socket: string }[] = [];

  beforeAll(async () => {
    sink = await startPostfixSmtpSink({ dumpDir: true });
    peers = await startTransparencyChildren();
    const sockDir = makeDir(makeTempDir("mk-tr-smsock-"), 0o755);
    const free = await freePorts(CHAINS.length * 2);
    const daemons: { port: number; filters: string[] }[] = [];
    const filters = [...peers].map(([name, p]) => ({ name: name.replace(/[^A-Za-z0-9]/g, ""), spec: p.spec.replace(/^inet:(\d+)@\[?([^\]]+)\]?$/, "inet:$1@$2") }));
    CHAINS.forEach((chain, i) => {
      const s = { direct: free[2 * i], manager: free[2 * i + 1], socket: path.join(sockDir, `manager-${i}.sock`) };
      ports.push(s);
      filters.push({ name: `manager${i}`, spec: `unix:${s.socket}` });
      daemons.push({ port: s.direct, filters: chain.map((c) => c.replace(/[^A-Za-z0-9]/g, "")) });
      daemons.push({ port: s.manager, filters: [`manager${i}`] });
    });
    sm = await startSendmail({ relayPort: sink.port!, filters, daemons });
  }, 240_000);

  afterAll(async () => {
    await sm?.stop();
    await Promise.all([...peers.values()].map((p) => p.stop()));
    await sink?.stop();
  }, 60_000);

  const queued = () => fs.readdirSync(sm.queueDir).filter((f) => /^[hq]f/.test(f));

  async function deliver(port: number, msg: TestMessage): Promise<Delivery> {
    const before = new Set(dumpFiles(sink.dumpDir!));
    const r = await sendMail({ port, from: msg.from, rcpts: msg.rcpts, data: msg.data, timeoutMs: 90_000 });
    const reply = r.final ? `${r.final.code} ${r.final.text}`.replace(/\b[0-9A-Za-z]{14} Message accepted/, "<ID> Message accepted") : `failed: ${JSON.stringify(r.failure)}`;
    if (!r.accepted) return { reply, where: "delivered", text: "" };
    let found: { where: "delivered" | "held"; file: string } | undefined;
    const ok = await pollUntil(() => {
      const dump = dumpFiles(sink.dumpDir!).find((f) => !before.has(f));
      const q = queued();
      if (dump && q.length === 0) found = { where: "delivered", file: dump };
      const held = q.find((f) => f.startsWith("hf"));
      if (held) found = { where: "held", file: held };
      return found !== undefined;
    }, 60_000, 20);
    if (!ok || !found) throw new Error(`message ${msg.name} on port ${port}: neither delivered nor held (queue: ${queued().join(" ")})\n${sm.log()}`);
    let text: string;
    if (found.where === "held") {
      const id = found.file.slice(2);
      text = queuedMessage(sm.queueDir, id);
      for (const f of fs.readdirSync(sm.queueDir)) if (f.slice(2) === id) fs.rmSync(path.join(sm.queueDir, f));
    } else {
      text = fs.readFileSync(found.file, "latin1");
      fs.rmSync(found.file);
    }
    return { reply, where: found.where, text: maskDelivery(text) };
  }

  CHAINS.forEach((chain, i) => {
    test(`${chain.join(" -> ")}: same deliveries directly and through the manager`, async () => {
      const s = ports[i];
      await compareChain({ chain, peers, socket: s.socket, deliver: (which, msg) => deliver(s[which], msg), dumpPrefix: "sm-" });
    }, 180_000);
  });
});
