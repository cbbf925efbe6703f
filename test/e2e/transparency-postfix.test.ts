/**
 * Invisible in the chain, on a real Postfix: every message is sent twice through one private
 * Postfix instance, (a) on an smtpd service whose smtpd_milters lists the children directly and
 * (b) on an smtpd service whose only milter is `milterkit manager`, configured with the same
 * children in the same order. The delivered messages (smtp-sink dumps: envelope sender with its
 * ESMTP arguments, recipients, headers, body) and, for a quarantined message, the hold queue file
 * (postcat: envelope records and content) must be identical once what legitimately differs is
 * masked (queue ids, dates, DKIM t= and b=; see lib/transparency.ts).
 *
 * Children: mod-milter (test/fixtures/milters/mod-milter.c, libmilter, one modification kind per
 * process), the pymilter sample (adds a header) and opendkim (signs; inserts its header at index 0).
 * Each child alone, then chains of two and three in several orders. All sockets are unix sockets
 * (no Nagle stalls), each chain has its own pair of smtpd services (master.cf -o smtpd_milters),
 * so the whole matrix runs on one Postfix instance without a reload.
 */
import { afterAll, beforeAll, describe, test } from "bun:test";
import * as fs from "node:fs";
import * as path from "node:path";
import {
  dumpFiles,
  e2eSkipReason,
  freePorts,
  makeDir,
  makeTempDir,
  type Peer,
  pollUntil,
  type PostfixInstance,
  run,
  sendMail,
  type Sink,
  startPostfix,
  startPostfixSmtpSink,
} from "./lib/index.ts";
import {
  CHAINS,
  type ChildName,
  compareChain,
  type Delivery,
  maskDelivery,
  startTransparencyChildren,
  type TestMessage,
} from "./lib/transparency.ts";

const skip = e2eSkipReason();
if (skip) console.warn(`SKIP test/e2e/transparency-postfix.test.ts: ${skip}`);

const POSTFIX_CHAINS = CHAINS;


describe.skipIf(!!skip)("transparency on Postfix: children directly vs through the manager", () => {
  let sink: Sink;
  let pf: PostfixInstance;
  const peers = new Map<ChildName, Peer>();
  const services: { direct: number; manager: number; socket: string }[] = [];
  let sockDir: string;

  beforeAll(async () => {
    sink = await startPostfixSmtpSink({ dumpDir: true });
    for (const [name, peer] of await startTransparencyChildren()) peers.set(name, peer);
    sockDir = makeTempDir("mk-tr-sock-");
    makeDir(sockDir, 0o755);
    const ports = await freePorts(POSTFIX_CHAINS.length * 2);
    const extra: { port: number; options: Record<string, string> }[] = [];
    POSTFIX_CHAINS.forEach((chain, i) => {
      const s = { direct: ports[2 * i], manager: ports[2 * i + 1], socket: path.join(sockDir, `manager-${i}.sock`) };
      services.push(s);
      extra.push({ port: s.direct, options: { smtpd_milters: chain.map((c) => peers.get(c)!.postfixSpec).join(",") } });
      extra.push({ port: s.manager, options: { smtpd_milters: `unix:${s.socket}` } });
    });
    pf = await startPostfix({ relayPort: sink.port!, extraSmtpd: extra, mainCf: { max_idle: "5s" } });
  }, 180_000);

  afterAll(async () => {
    await pf?.stop();
    await Promise.all([...peers.values()].map((p) => p.stop()));
    await sink?.stop();
  }, 60_000);

  const holdFiles = () => {
    const dir = path.join(pf.queueDir, "hold");
    try {
      return fs.readdirSync(dir).map((f) => path.join(dir, f));
    } catch {
      return [];
    }
  };

  /** Send one message on `port`; wait until it is delivered to the sink or held; return it masked, and remove it. */
  async function deliver(port: number, msg: TestMessage): Promise<Delivery> {
    const before = new Set(dumpFiles(sink.dumpDir!));
    const r = await sendMail({ port, from: msg.from, rcpts: msg.rcpts, data: msg.data, timeoutMs: 60_000 });
    const reply = r.final ? `${r.final.code} ${r.final.text}`.replace(/queued as [0-9A-Za-z]+/, "queued as <ID>") : `failed: ${JSON.stringify(r.failure)}`;
    if (!r.accepted) return { reply, where: "delivered", text: "" };
    let found: { where: "delivered" | "held"; file: string } | undefined;
    const ok = await pollUntil(() => {
      const dump = dumpFiles(sink.dumpDir!).find((f) => !before.has(f));
      if (dump) found = { where: "delivered", file: dump };
      const held = holdFiles()[0];
      if (held) found = { where: "held", file: held };
      return found !== undefined && pf.queueCount() === (found.where === "held" ? 1 : 0);
    }, 60_000, 20);
    if (!ok || !found) throw new Error(`message ${msg.name} on port ${port}: neither delivered nor held\n${pf.maillog().slice(-3000)}`);
    let text: string;
    if (found.where === "held") {
      text = (await run(["/usr/sbin/postcat", "-c", pf.configDir, found.file], { timeoutMs: 15_000 })).stdout;
      await run(["/usr/sbin/postsuper", "-c", pf.configDir, "-d", path.basename(found.file), "hold"], { timeoutMs: 15_000 });
      await pf.waitQueueEmpty(15_000);
    } else {
      text = fs.readFileSync(found.file, "latin1");
      fs.rmSync(found.file);
    }
    return { reply, where: found.where, text: maskDelivery(text) };
  }

  POSTFIX_CHAINS.forEach((chain, i) => {
    test(`${chain.join(" -> ")}: same deliveries directly and through the manager`, async () => {
      const s = services[i];
      await compareChain({ chain, peers, socket: s.socket, deliver: (which, msg) => deliver(s[which], msg), dumpPrefix: "" });
    }, 120_000);
  });
});
