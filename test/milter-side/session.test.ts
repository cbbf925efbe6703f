// Milter-side sessions driven over real sockets with raw packets encoded by src/milter.
import { afterEach, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  type MtaCommand,
  SMFIF_ADDHDRS,
  SMFIF_CHGBODY,
  SMFIP_NOCONNECT,
  SMFIP_NOHELO,
  SMFIP_NR_CONN,
  SMFIP_NR_HDR,
  SMFIP_SKIP,
  encodeCommands,
  encodePacket,
} from "../../src/milter/index.ts";
import { Accept, Close, Continue, eom, type MilterHandler, Reject, replyCode, Skip, Tempfail } from "../../src/milter-side/index.ts";
import { deferred, FULL_OFFER, type Recorded, ScriptedMta, serve, sleep, within } from "./helpers.ts";

const opened: Recorded[] = [];
async function start(...a: Parameters<typeof serve>): Promise<Recorded> {
  const r = await serve(...a);
  opened.push(r);
  return r;
}
afterEach(async () => {
  for (const r of opened.splice(0)) await r.close();
});

const macro = (command: string, pairs: Record<string, string>): MtaCommand => ({ type: "macro", command, macros: new Map(Object.entries(pairs)) });
const CONNECT: MtaCommand = { type: "connect", hostname: "mx.example.net", family: "4", port: 50443, address: "192.0.2.10" };
const HELO: MtaCommand = { type: "helo", hostname: "client.example.net" };
const MAIL: MtaCommand = { type: "mail", address: "<alice@example.com>", args: ["SIZE=100"] };
const RCPT = (a: string): MtaCommand => ({ type: "rcpt", address: `<${a}>`, args: [] });
const HEADER = (name: string, value: string): MtaCommand => ({ type: "header", name, value });
const BODY = (s: string): MtaCommand => ({ type: "body", chunk: Buffer.from(s, "latin1") });

describe("negotiation", () => {
  test("default request: offered actions, NO_* for missing methods, SKIP only with a body method", async () => {
    const r = await start(() => ({ endOfMessage: () => Continue }));
    const mta = await r.connect();
    mta.send(FULL_OFFER);
    const o = await mta.next();
    expect(o).toEqual({ type: "optneg", version: 6, actions: 0xff, protocol: 0x01 | 0x02 | 0x04 | 0x08 | 0x10 | 0x20 | 0x40 | 0x100 | 0x200 });
    await mta.quit();
    await r.idle();
  });

  test("handler request; version capped at the MTA's; NR bits only if offered", async () => {
    const r = await start(() => ({
      negotiate: (offer) => ({ actions: SMFIF_ADDHDRS, protocol: SMFIP_NR_HDR | SMFIP_NR_CONN | SMFIP_SKIP, version: 6 }),
    }));
    const mta = await r.connect();
    mta.send({ type: "optneg", version: 2, actions: 0x1ff, protocol: 0x7f });
    expect(await mta.next()).toEqual({ type: "optneg", version: 2, actions: SMFIF_ADDHDRS, protocol: 0 });
    // NR_CONN was not granted (v2 offer): the connect must be answered
    mta.send(CONNECT);
    expect((await mta.next()).type).toBe("continue");
    await mta.quit();
    await r.idle();
  });

  test("an offer the handler cannot meet ends the session with a negotiation error", async () => {
    const r = await start(() => ({ negotiate: () => ({ actions: SMFIF_CHGBODY, protocol: 0 }) }));
    const mta = await r.connect();
    mta.send({ type: "optneg", version: 6, actions: SMFIF_ADDHDRS, protocol: 0x1fffff });
    await mta.waitClosed();
    await within(r.endedOnce, 2000, "session end");
    expect(mta.replies).toEqual([]);
    expect(r.errors.map((e) => e.kind)).toEqual(["negotiation"]);
    expect(r.ends[0].end.reason).toBe("error");
  });

  test("negotiate may return close: connection closed without an O reply", async () => {
    const r = await start(() => ({ negotiate: async () => Close }));
    const mta = await r.connect();
    mta.send(FULL_OFFER);
    await mta.waitClosed();
    await within(r.endedOnce, 2000, "session end");
    expect(mta.replies).toEqual([]);
    expect(r.ends[0].end).toEqual({ reason: "closed" });
  });

  test("a command before OPTNEG is a protocol error", async () => {
    const r = await start(() => ({}));
    const mta = await r.connect();
    mta.send(CONNECT);
    await mta.waitClosed();
    await within(r.endedOnce, 2000, "session end");
    expect(r.errors[0].kind).toBe("protocol");
    expect(r.errors[0].message).toContain("expected SMFIC_OPTNEG");
  });
});

describe("ordering", () => {
  test("async handlers run one at a time, in order, even when the MTA pipelines every command", async () => {
    const log: string[] = [];
    let inFlight = 0;
    let maxInFlight = 0;
    const step = (name: string, result: unknown = undefined) => async () => {
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      log.push(`start ${name}`);
      await sleep(Math.floor(Math.random() * 5));
      log.push(`end ${name}`);
      inFlight--;
      return result as undefined;
    };
    const r = await start(() => ({
      connect: step("connect"),
      helo: step("helo"),
      envelopeFrom: step("mail"),
      envelopeRecipient: step("rcpt", Reject),
      data: step("data"),
      header: step("header"),
      endOfHeader: step("eoh"),
      body: step("body"),
      endOfMessage: step("eom", Accept),
      abort: step("abort"),
      quit: step("quit"),
      macro: step("macro"),
    }));
    const mta = await r.connect();
    mta.send(FULL_OFFER, macro("C", { j: "mx" }), CONNECT, HELO, MAIL, RCPT("bob@example.org"), RCPT("carol@example.org"), { type: "data" },
      HEADER("From", "a"), HEADER("To", "b"), { type: "eoh" }, BODY("x"), BODY("y"), { type: "eob" }, { type: "abort" }, { type: "quit" });
    await mta.waitClosed();
    expect(mta.replies.map((x) => x.type)).toEqual([
      "optneg", "continue", "continue", "continue", "reject", "reject", "continue", "continue", "continue", "continue", "continue", "continue", "accept",
    ]);
    expect(maxInFlight).toBe(1);
    const starts = log.filter((l) => l.startsWith("start")).map((l) => l.slice(6));
    expect(starts).toEqual(["macro", "connect", "helo", "mail", "rcpt", "rcpt", "data", "header", "header", "eoh", "body", "body", "eom", "abort", "quit"]);
    for (let i = 0; i < log.length; i += 2) expect(log[i + 1]).toBe(log[i].replace("start", "end"));
  });

  test("the next command is not handled before the reply to the current one was sent", async () => {
    const gate = deferred<void>();
    const seen: string[] = [];
    const r = await start(() => ({
      helo: async () => {
        seen.push("helo");
        await gate.promise;
        return Continue;
      },
      envelopeFrom: () => {
        seen.push("mail");
      },
    }));
    const mta = await r.connect();
    mta.send(FULL_OFFER, CONNECT, HELO, MAIL);
    expect(await mta.nextTypes(2)).toEqual(["optneg", "continue"]);
    await sleep(50);
    expect(seen).toEqual(["helo"]);
    expect(mta.rest()).toEqual([]);
    gate.resolve();
    expect(await mta.nextTypes(2)).toEqual(["continue", "continue"]);
    expect(seen).toEqual(["helo", "mail"]);
    await mta.quit();
    await r.idle();
  });

  test("MAIL, HELO and CONNECT inside a transaction abort it first (implicit abort), and are answered", async () => {
    const events: string[] = [];
    const r = await start(() => ({
      connect: () => void events.push("connect"),
      helo: () => void events.push("helo"),
      envelopeFrom: () => void events.push("mail"),
      envelopeRecipient: () => void events.push("rcpt"),
      abort: (_ctx, info) => void events.push(`abort implicit=${info.implicit} tx=${info.inTransaction}`),
    }));
    const mta = await r.connect();
    mta.send(FULL_OFFER, CONNECT, HELO, MAIL, RCPT("a@b"), MAIL, HELO, MAIL, CONNECT, { type: "abort" });
    expect(await mta.nextTypes(9)).toEqual(["optneg", ...Array(8).fill("continue")]);
    await mta.quit();
    await r.idle();
    expect(events).toEqual([
      "connect", "helo", "mail", "rcpt",
      "abort implicit=true tx=true", "mail",
      "abort implicit=true tx=true", "helo",
      "mail", "abort implicit=true tx=true", "connect",
      "abort implicit=false tx=false",
    ]);
  });

  test("a rejected MAIL ends the transaction: the next MAIL is no implicit abort", async () => {
    const events: string[] = [];
    let n = 0;
    const r = await start(() => ({
      envelopeFrom: () => (n++ === 0 ? Reject : Continue),
      abort: (_c, info) => void events.push(`abort implicit=${info.implicit}`),
    }));
    const mta = await r.connect();
    mta.send(FULL_OFFER, CONNECT, MAIL, MAIL);
    expect(await mta.nextTypes(4)).toEqual(["optneg", "continue", "reject", "continue"]);
    await mta.quit();
    await r.idle();
    expect(events).toEqual(["abort implicit=true"]); // only the QUIT inside the second transaction
  });
});

describe("macros", () => {
  test("per-stage values with libmilter's lifetime rules, and macro notifications", async () => {
    const snaps: Record<string, unknown> = {};
    const notes: string[] = [];
    const snap = (name: string) => (_cmd: unknown, ctx: { macros: { visible(): Map<string, string> } }) => {
      snaps[name] = Object.fromEntries(ctx.macros.visible());
    };
    const r = await start(() => ({
      macro: (stage, m) => void notes.push(`${stage}:${[...m.keys()].join(",")}`),
      connect: snap("connect"),
      envelopeFrom: snap("mail"),
      envelopeRecipient: (cmd, ctx) => {
        snaps[`rcpt ${cmd.address}`] = Object.fromEntries(ctx.macros.visible());
        snaps[`rcpt ${cmd.address} {rcpt_addr}`] = ctx.macro("{rcpt_addr}");
      },
      endOfMessage: (_cmd, ctx) => {
        snaps.eom = Object.fromEntries(ctx.macros.visible());
        snaps.eomStage = Object.fromEntries(ctx.macros.stage("E") ?? []);
      },
      abort: (ctx) => void (snaps.abort = Object.fromEntries(ctx.macros.visible())),
    }));
    const mta = await r.connect();
    mta.send(
      FULL_OFFER,
      macro("C", { j: "mx.example", "{daemon_name}": "mx" }), CONNECT,
      macro("H", {}), HELO,
      macro("M", { "{mail_addr}": "alice@example.com" }), MAIL,
      macro("R", { "{rcpt_addr}": "bob" }), RCPT("bob"),
      macro("R", { "{rcpt_addr}": "carol", i: "Q1" }), RCPT("carol"),
      macro("E", { i: "Q1" }), { type: "eob" },
      { type: "abort" },
    );
    expect(await mta.nextTypes(7)).toEqual(["optneg", ...Array(6).fill("continue")]);
    await mta.quit();
    await r.idle();
    expect(snaps.connect).toEqual({ j: "mx.example", daemon_name: "mx" });
    expect(snaps.mail).toEqual({ j: "mx.example", daemon_name: "mx", mail_addr: "alice@example.com" });
    expect(snaps["rcpt <bob>"]).toEqual({ j: "mx.example", daemon_name: "mx", mail_addr: "alice@example.com", rcpt_addr: "bob" });
    expect(snaps["rcpt <carol> {rcpt_addr}"]).toBe("carol");
    expect(snaps.eomStage).toEqual({ i: "Q1" });
    // A drops MAIL…EOM values; connect macros stay
    expect(snaps.abort).toEqual({ j: "mx.example", daemon_name: "mx" });
    expect(notes).toEqual(["C:j,{daemon_name}", "H:", "M:{mail_addr}", "R:{rcpt_addr}", "R:{rcpt_addr},i", "E:i"]);
  });
});

describe("no-reply steps", () => {
  test("NR_CONN and NR_HDR: handlers run, nothing is answered, results are ignored", async () => {
    const calls: string[] = [];
    const r = await start(() => ({
      negotiate: () => ({ actions: 0, protocol: SMFIP_NR_CONN | SMFIP_NR_HDR }),
      connect: () => {
        calls.push("connect");
        return Reject;
      },
      header: async (cmd) => {
        calls.push(`header ${cmd.name}`);
        return Tempfail;
      },
    }));
    const mta = await r.connect();
    mta.send(FULL_OFFER, CONNECT, HELO, MAIL, RCPT("a"), HEADER("A", "1"), HEADER("B", "2"), { type: "eoh" });
    // optneg + helo + mail + rcpt + eoh: exactly 5 replies, the 2nd is HELO's
    expect(await mta.nextTypes(5)).toEqual(["optneg", "continue", "continue", "continue", "continue"]);
    await mta.quit();
    await r.idle();
    expect(mta.rest()).toEqual([]);
    expect(calls).toEqual(["connect", "header A", "header B"]);
  });

  test("D, A, Q and K are never answered", async () => {
    const r = await start(() => ({ abort: () => undefined, newConnection: () => undefined }));
    const mta = await r.connect();
    mta.send(FULL_OFFER, macro("C", { j: "x" }), { type: "abort" }, { type: "quit_nc" }, { type: "abort" }, HELO);
    expect(await mta.nextTypes(2)).toEqual(["optneg", "continue"]);
    await mta.quit();
    await r.idle();
    expect(mta.rest()).toEqual([]);
  });
});

describe("skip", () => {
  test("skip negotiated: 's' is sent for a body chunk and later chunks are answered without the handler", async () => {
    const chunks: string[] = [];
    const r = await start(() => ({
      body: (cmd) => {
        chunks.push(Buffer.from(cmd.chunk).toString("latin1"));
        return Skip;
      },
    }));
    const mta = await r.connect();
    mta.send(FULL_OFFER, CONNECT, MAIL, RCPT("a"), { type: "eoh" }, BODY("one"), BODY("two"), { type: "eob" },
      MAIL, RCPT("a"), BODY("three"), { type: "eob" });
    const o = await mta.next();
    expect(o.type === "optneg" && (o.protocol & SMFIP_SKIP) !== 0).toBe(true);
    expect(await mta.nextTypes(11)).toEqual(["continue", "continue", "continue", "continue", "skip", "continue", "continue", "continue", "continue", "skip", "continue"]);
    expect(chunks).toEqual(["one", "three"]);
    await mta.quit();
    await r.idle();
  });

  test("skip not offered by the MTA, or returned outside a body chunk: sent as continue", async () => {
    const r = await start(() => ({
      envelopeFrom: () => Skip,
      body: () => Skip,
      endOfMessage: () => Skip,
    }));
    const mta = await r.connect();
    mta.send({ type: "optneg", version: 6, actions: 0x1ff, protocol: 0x1fffff & ~SMFIP_SKIP }, CONNECT, MAIL, RCPT("a"), BODY("x"), { type: "eob" });
    expect(await mta.nextTypes(6)).toEqual(["optneg", "continue", "continue", "continue", "continue", "continue"]);
    await mta.quit();
    await r.idle();
  });
});

describe("end of message", () => {
  test("modifications and the decision go out in one write, un-negotiated ones are dropped and reported", async () => {
    const r = await start(() => ({
      negotiate: () => ({ actions: SMFIF_ADDHDRS | SMFIF_CHGBODY, protocol: 0 }),
      endOfMessage: () =>
        eom([
          { type: "addheader", name: "X-A", value: "1" },
          { type: "addrcpt", address: "<not@negotiated>" },
          { type: "replbody", chunk: Buffer.alloc(70000, 0x61) },
          { type: "insheader", index: 0, name: "X-Top", value: "t" },
        ], replyCode(550, "5.7.1", "no 100% way")),
    }));
    const mta = await r.connect();
    mta.send(FULL_OFFER, CONNECT, MAIL, RCPT("a"));
    expect(await mta.nextTypes(4)).toEqual(["optneg", "continue", "continue", "continue"]);
    const before = mta.chunks.length;
    mta.send({ type: "eob" });
    const got = await mta.nextTypes(5);
    expect(got).toEqual(["addheader", "replbody", "replbody", "insheader", "replycode"]);
    expect(mta.chunks.length - before).toBeLessThanOrEqual(2); // ~70 kB in one write may arrive in 2 reads, never 5
    const rc = mta.replies[mta.replies.length - 1];
    expect(rc).toEqual({ type: "replycode", text: "550 5.7.1 no 100%% way" });
    const body = mta.replies.filter((x) => x.type === "replbody") as { chunk: Uint8Array }[];
    expect(body.map((b) => b.chunk.length)).toEqual([65535, 70000 - 65535]);
    expect(r.errors.map((e) => e.kind)).toEqual(["handler"]);
    expect(r.errors[0].message).toContain("addrcpt");
    await mta.quit();
    await r.idle();
  });

  test("E with data is a last body chunk, then end of message", async () => {
    const seen: string[] = [];
    const r = await start(() => ({
      body: (cmd, _ctx, info) => void seen.push(`body ${Buffer.from(cmd.chunk).toString("latin1")} eom=${info.fromEndOfMessage}`),
      endOfMessage: (cmd) => void seen.push(`eom ${cmd.chunk ? Buffer.from(cmd.chunk).toString("latin1") : "-"}`),
    }));
    const mta = await r.connect();
    mta.send(FULL_OFFER, CONNECT, MAIL, RCPT("a"), BODY("first"), { type: "eob", chunk: Buffer.from("last") });
    expect(await mta.nextTypes(6)).toEqual(["optneg", "continue", "continue", "continue", "continue", "continue"]);
    await mta.quit();
    await r.idle();
    expect(seen).toEqual(["body first eom=false", "body last eom=true", "eom last"]);
  });

  test("progress() during end of message sends 'p' at once; outside it sends nothing", async () => {
    const release = deferred<void>();
    const outside: boolean[] = [];
    const r = await start(() => ({
      envelopeFrom: (_c, ctx) => void outside.push(ctx.progress()),
      endOfMessage: async (_c, ctx) => {
        expect(ctx.progress()).toBe(true);
        expect(ctx.progress()).toBe(true);
        await release.promise;
        return eom([{ type: "addheader", name: "X-Late", value: "yes" }], Continue);
      },
    }));
    const mta = await r.connect();
    mta.send(FULL_OFFER, CONNECT, MAIL, RCPT("a"), { type: "eob" });
    expect(await mta.nextTypes(6)).toEqual(["optneg", "continue", "continue", "continue", "progress", "progress"]);
    release.resolve();
    expect(await mta.nextTypes(2)).toEqual(["addheader", "continue"]);
    expect(outside).toEqual([false]);
    await mta.quit();
    await r.idle();
  });
});

describe("K (QUIT_NC) reuse", () => {
  test("a new SMTP session on the same connection: macros cleared, options kept, K accepted in any state", async () => {
    const seen: string[] = [];
    const r = await start(() => ({
      connect: (cmd, ctx) => void seen.push(`connect ${cmd.hostname} smtp=${ctx.smtpSession} macros=${[...ctx.macros.visible().keys()].join(",")}`),
      helo: (cmd, ctx) => void seen.push(`helo ${cmd.hostname} j=${ctx.macro("j") ?? "-"}`),
      newConnection: (ctx) => void seen.push(`K tx=${ctx.inTransaction}`),
      abort: (_c, i) => void seen.push(`abort implicit=${i.implicit}`),
      endOfMessage: () => Accept,
    }));
    const mta = await r.connect();
    mta.send(FULL_OFFER, macro("C", { j: "one" }), CONNECT, HELO, MAIL, RCPT("a"), { type: "eob" }, { type: "quit_nc" },
      macro("C", { k: "two" }), { ...CONNECT, hostname: "second" } as MtaCommand, HELO, MAIL, { type: "quit_nc" }, CONNECT);
    expect(await mta.nextTypes(10)).toEqual(["optneg", "continue", "continue", "continue", "continue", "accept", "continue", "continue", "continue", "continue"]);
    await mta.quit();
    await r.idle();
    expect(seen).toEqual([
      "connect mx.example.net smtp=1 macros=j",
      "helo client.example.net j=one",
      "K tx=false",
      "connect second smtp=2 macros=k",
      "helo client.example.net j=-",
      "abort implicit=true",
      "K tx=false",
      "connect mx.example.net smtp=3 macros=",
    ]);
  });
});

describe("errors and the end of a session", () => {
  test("abrupt disconnect inside a transaction: implicit abort, close(disconnected), error reported", async () => {
    const seen: string[] = [];
    const r = await start(() => ({
      abort: (_c, i) => void seen.push(`abort implicit=${i.implicit}`),
      close: (_c, end) => void seen.push(`close ${end.reason}`),
    }));
    const mta = await r.connect();
    mta.send(FULL_OFFER, CONNECT, MAIL);
    expect(await mta.nextTypes(3)).toEqual(["optneg", "continue", "continue"]);
    mta.conn.destroy();
    await within(r.endedOnce, 3000, "session end");
    expect(seen).toEqual(["abort implicit=true", "close disconnected"]);
    expect(r.errors.map((e) => e.kind)).toEqual(["disconnected"]);
    expect(r.server.sessions).toBe(0);
  });

  test("disconnect while a handler is pending: ctx.signal fires at once; close() waits for the handler", async () => {
    const release = deferred<void>();
    const aborted = deferred<unknown>();
    const seen: string[] = [];
    const r = await start(() => ({
      envelopeFrom: async (_c, ctx) => {
        ctx.signal.addEventListener("abort", () => aborted.resolve(ctx.signal.reason));
        await release.promise;
        seen.push("mail handler done");
        return Continue;
      },
      abort: () => void seen.push("abort"),
      close: (_c, end) => void seen.push(`close ${end.reason}`),
    }));
    const mta = await r.connect();
    mta.send(FULL_OFFER, CONNECT, MAIL);
    expect(await mta.nextTypes(2)).toEqual(["optneg", "continue"]);
    await sleep(20);
    mta.conn.destroy();
    const reason = await within(aborted.promise, 3000, "signal");
    expect((reason as Error).name).toBe("MilterSessionError");
    expect(seen).toEqual([]);
    release.resolve();
    await within(r.endedOnce, 3000, "session end");
    expect(seen).toEqual(["mail handler done", "abort", "close disconnected"]);
  });

  test("malformed packet: protocol error, connection closed, the server keeps serving", async () => {
    const r = await start(() => ({}));
    const bad = await r.connect();
    bad.send(FULL_OFFER);
    await bad.next();
    bad.sendRaw(Buffer.from("0000000943686f737400" + "5a" + "0000", "hex")); // C with family 'Z'
    await bad.waitClosed();
    await within(r.endedOnce, 2000, "session end");
    expect(r.errors[0].kind).toBe("protocol");
    expect(r.errors[0].message).toContain("family");
    const good = await r.connect();
    good.send(FULL_OFFER, CONNECT);
    expect(await good.nextTypes(2)).toEqual(["optneg", "continue"]);
    await good.quit();
  });

  test("oversize packet: 65535 data bytes pass, 65536 end the session", async () => {
    const r = await start(() => ({}));
    const mta = await r.connect();
    mta.send(FULL_OFFER, CONNECT, MAIL, RCPT("a"));
    expect(await mta.nextTypes(4)).toEqual(["optneg", "continue", "continue", "continue"]);
    mta.sendRaw(encodePacket(0x42, Buffer.alloc(65535, 0x61)));
    expect((await mta.next()).type).toBe("continue");
    mta.sendRaw(encodePacket(0x42, Buffer.alloc(65536, 0x61)));
    await mta.waitClosed();
    await within(r.endedOnce, 2000, "session end");
    expect(r.errors.map((e) => e.kind)).toEqual(["protocol"]);
    expect(r.errors[0].message).toContain("exceeds the maximum data size 65535");
  });

  test("unknown command byte and zero-length packet are protocol errors", async () => {
    const r = await start(() => ({}));
    const a = await r.connect();
    a.send(FULL_OFFER);
    await a.next();
    a.sendRaw(Buffer.from("000000015a", "hex"));
    await a.waitClosed();
    const b = await r.connect();
    b.sendRaw(Buffer.from("00000000", "hex"));
    await b.waitClosed();
    await within((async () => { while (r.ends.length < 2) await sleep(10); })(), 2000, "ends");
    expect(r.errors.map((e) => e.kind)).toEqual(["protocol", "protocol"]);
    expect(r.errors.map((e) => e.message).join("|")).toMatch(/unknown command 'Z'.*\|.*length word 0/);
  });

  test("idle timeout ends a silent session", async () => {
    const closed: string[] = [];
    const r = await start(() => ({ close: (_c, end) => void closed.push(end.reason) }), { idleTimeoutMs: 150 });
    const mta = await r.connect();
    mta.send(FULL_OFFER, CONNECT);
    expect(await mta.nextTypes(2)).toEqual(["optneg", "continue"]);
    await mta.waitClosed(5000);
    await within(r.endedOnce, 2000, "session end");
    expect(closed).toEqual(["timeout"]);
    expect(r.errors[0].kind).toBe("timeout");
  });

  test("negotiation and packet deadlines: bytes trickled in do not extend them", async () => {
    const r = await start(() => ({}), { idleTimeoutMs: 60_000, negotiationTimeoutMs: 300, packetTimeoutMs: 300 });
    // Never negotiates.
    const silent = await r.connect();
    // Negotiates, then sends a HELO packet one byte every 50 ms (it would take 1 s).
    const trickle = await r.connect();
    trickle.send(FULL_OFFER);
    expect(await trickle.nextTypes(1)).toEqual(["optneg"]);
    const helo = encodeCommands([HELO]);
    const started = Date.now();
    let i = 0;
    const drip = setInterval(() => {
      if (i >= helo.length || !trickle.conn.writable) return;
      try {
        trickle.sendRaw(helo.subarray(i, ++i));
      } catch {
        // closed by the manager between the check and the write: what this test waits for
      }
    }, 50);
    try {
      await silent.waitClosed(5000);
      await trickle.waitClosed(5000);
    } finally {
      clearInterval(drip);
    }
    expect(Date.now() - started).toBeLessThan(3000); // 10× the deadlines; the idle time alone would be 60 s
    const texts = r.errors.map((e) => e.message);
    expect(texts).toContain("the MTA did not negotiate within 300 ms");
    expect(texts.some((t) => t.startsWith("the MTA did not finish a started packet within 300 ms"))).toBe(true);
  });

  test("a handler that throws or returns garbage: tempfail, reported, the session goes on", async () => {
    const r = await start(() => ({
      helo: () => {
        throw new Error("boom");
      },
      envelopeFrom: async () => {
        throw new Error("async boom");
      },
      envelopeRecipient: () => ({ type: "nonsense" }) as never,
      data: () => ({ type: "replycode", text: "250 ok" }),
    }));
    const mta = await r.connect();
    mta.send(FULL_OFFER, CONNECT, HELO, MAIL, RCPT("a"), { type: "data" });
    expect(await mta.nextTypes(6)).toEqual(["optneg", "continue", "tempfail", "tempfail", "tempfail", "tempfail"]);
    await mta.quit();
    await r.idle();
    expect(r.errors.map((e) => e.kind)).toEqual(["handler", "handler", "handler", "handler"]);
    expect(r.errors[0].message).toContain("boom");
  });

  test("a handler that never settles is given up after handlerTimeoutMs", async () => {
    const r = await start(() => ({ helo: () => new Promise(() => {}) }), { handlerTimeoutMs: 100 });
    const mta = await r.connect();
    mta.send(FULL_OFFER, CONNECT, HELO, MAIL);
    expect(await mta.nextTypes(4)).toEqual(["optneg", "continue", "tempfail", "continue"]);
    await mta.quit();
    await r.idle();
    expect(r.errors.map((e) => e.kind)).toEqual(["timeout"]);
  });

  test("a step may close the connection without answering", async () => {
    const r = await start(() => ({ helo: async () => Close }));
    const mta = await r.connect();
    mta.send(FULL_OFFER, CONNECT, HELO, MAIL);
    await mta.waitClosed();
    expect(mta.replies.map((x) => x.type)).toEqual(["optneg", "continue"]);
    await within(r.endedOnce, 2000, "session end");
    expect(r.ends[0].end.reason).toBe("closed");
  });

  test("QUIT ends the session normally; close() runs once with reason quit", async () => {
    const seen: string[] = [];
    const r = await start(() => ({ quit: () => void seen.push("quit"), close: (_c, e) => void seen.push(`close ${e.reason}`) }));
    const mta = await r.connect();
    mta.send(FULL_OFFER);
    await mta.next();
    await mta.quit();
    await r.idle();
    await within(r.endedOnce, 2000, "session end");
    expect(seen).toEqual(["quit", "close quit"]);
    expect(r.errors).toEqual([]);
  });

  test("a bad reply text is reported and sent as a plain r or t", async () => {
    const r = await start(() => ({
      envelopeFrom: () => ({ type: "replycode", text: "550 4.7.1 mismatch" }),
      envelopeRecipient: () => ({ type: "replycode", text: "451 50% off" }),
    }));
    const mta = await r.connect();
    mta.send(FULL_OFFER, CONNECT, MAIL, RCPT("x"));
    expect(await mta.nextTypes(4)).toEqual(["optneg", "continue", "reject", "tempfail"]);
    await mta.quit();
    await r.idle();
    expect(r.errors.length).toBe(2);
  });

  test("NO_* events the MTA sends anyway are answered continue", async () => {
    const r = await start(() => ({ negotiate: () => ({ actions: 0, protocol: SMFIP_NOCONNECT | SMFIP_NOHELO }) }));
    const mta = await r.connect();
    mta.send(FULL_OFFER, CONNECT, HELO);
    expect(await mta.nextTypes(3)).toEqual(["optneg", "continue", "continue"]);
    await mta.quit();
    await r.idle();
  });
});

describe("server", () => {
  test("hundreds of concurrent sessions, each answered in order", async () => {
    const r = await start(() => ({
      envelopeRecipient: async (cmd) => (cmd.address === "<reject@x>" ? Reject : Continue),
      endOfMessage: (_c, ctx) => eom([{ type: "addheader", name: "X-Session", value: String(ctx.id) }]),
    }));
    const N = 300;
    const mtas = await Promise.all(Array.from({ length: N }, () => r.connect()));
    await within((async () => { while (r.server.sessions < N) await sleep(5); })(), 5000, "all sessions accepted");
    for (const m of mtas) m.send(FULL_OFFER, CONNECT, HELO, MAIL, RCPT("ok@x"), RCPT("reject@x"), HEADER("S", "v"), { type: "eoh" }, BODY("hi"), { type: "eob" });
    const results = await Promise.all(mtas.map((m) => m.nextTypes(11, 20000)));
    for (const t of results) {
      expect(t).toEqual(["optneg", "continue", "continue", "continue", "continue", "reject", "continue", "continue", "continue", "addheader", "continue"]);
    }
    const ids = new Set(mtas.map((m) => (m.replies[9] as { value: string }).value));
    expect(ids.size).toBe(N);
    await Promise.all(mtas.map((m) => m.quit()));
    await within((async () => { while (r.server.sessions > 0) await sleep(5); })(), 5000, "all sessions ended");
    expect(r.server.finishedSessions).toBe(N);
    expect(r.errors).toEqual([]);
  }, 30_000);

  test("unix socket", async () => {
    const dir = mkdtempSync(join(tmpdir(), "mk-ms-"));
    try {
      const r = await start(() => ({}), {}, `unix:${join(dir, "m.sock")}`);
      expect(r.server.port).toBeUndefined();
      const mta = await r.connect();
      mta.send(FULL_OFFER, { type: "connect", hostname: "localhost", family: "L", port: 0, address: "/run/x" } as MtaCommand);
      expect(await mta.nextTypes(2)).toEqual(["optneg", "continue"]);
      await mta.quit();
    await r.idle();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("close() ends running sessions", async () => {
    const r = await serve(() => ({ close: () => undefined }));
    const mta = await r.connect();
    mta.send(FULL_OFFER);
    await mta.next();
    await r.server.close({ waitMs: 50 });
    await mta.waitClosed();
    expect(r.ends.map((e) => e.end.reason)).toEqual(["closed"]);
  });
});
