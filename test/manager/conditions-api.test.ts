// The condition API: what a stopper receives and can do (macros by either spelling and stage,
// added macros, addresses, the per-transaction and per-session stores, other children), how
// stoppers combine (order, first true wins, throw/reject/timeout = "do not stop"), notifications.
import { describe, expect, test } from "bun:test";
import { type ConditionContext, type ConditionDefinition, defineCondition } from "../../src/manager/conditions/api.ts";
import { createConditions } from "../../src/manager/conditions/registry.ts";
import { SILENT_LOG } from "../../src/manager/log.ts";
import { ConditionSession, configWith, connect, DATA, helo, mail, rcpt } from "./support/condition-session.ts";

/** A session where milter "m" (and "n") run the given conditions. */
function withConditions(m: ConditionDefinition[], n: ConditionDefinition[] = [], edit?: Parameters<typeof configWith>[1]) {
  return new ConditionSession(configWith({ m: m.map((c) => c.name), n: n.map((c) => c.name) }, edit, [...m, ...n]));
}

describe("context", () => {
  test("macros: {name} and name, every stage so far, later stages first; macros() merged", async () => {
    const seen: Record<string, unknown> = {};
    const probe = defineCondition({
      name: "probe",
      envelopeFrom(ctx) {
        seen.j = [ctx.macro("j"), ctx.macro("{j}")];
        seen.daemon = [ctx.macro("daemon_name"), ctx.macro("{daemon_name}")];
        seen.auth = ctx.macro("auth_type");
        seen.x = ctx.macro("x"); // defined at connect and at MAIL: MAIL's wins
        seen.all = Object.fromEntries(ctx.macros());
      },
    });
    const s = withConditions([probe]);
    await s.ask("m", connect("c.example", "192.0.2.1"), { j: "mx.example.com", "{daemon_name}": "smtpd", x: "C" });
    await s.ask("m", helo("c.example"));
    await s.ask("m", mail("<a@example.com>"), { "{auth_type}": "PLAIN", "{x}": "M" });
    expect(seen).toEqual({
      j: ["mx.example.com", "mx.example.com"],
      daemon: ["smtpd", "smtpd"],
      auth: "PLAIN",
      x: "M",
      all: { j: "mx.example.com", daemon_name: "smtpd", x: "M", auth_type: "PLAIN" },
    });
  });

  test("added macros go to the engine and are read back by this milter's later stoppers only, with MTA lifetimes", async () => {
    const reads: string[] = [];
    const adder = defineCondition({
      name: "adder",
      connect: (ctx) => void ctx.addMacro("{tag}", "c"),
      envelopeRecipient(ctx, r) {
        reads.push(`rcpt ${r}: tag=${ctx.macro("tag")} per_rcpt=${ctx.macro("per_rcpt")}`);
        ctx.addMacro("per_rcpt", r);
      },
      data(ctx) {
        reads.push(`data: tag=${ctx.macro("{tag}")} per_rcpt=${ctx.macro("per_rcpt")}`);
      },
    });
    const other = defineCondition({ name: "other", data: (ctx) => void reads.push(`other: tag=${ctx.macro("tag")}`) });
    const s = withConditions([adder], [other]);
    expect((await s.ask("m", connect("c.example", "192.0.2.1"))).added).toEqual({ "{tag}": "c" });
    await s.ask("m", mail("<a@example.com>"));
    expect((await s.ask("m", rcpt("<x@example.com>"))).added).toEqual({ per_rcpt: "<x@example.com>" });
    await s.ask("m", rcpt("<y@example.com>"));
    await s.askAll(["m", "n"], DATA);
    await s.abort();
    await s.ask("m", mail("<b@example.com>"));
    await s.ask("m", rcpt("<z@example.com>"));
    expect(reads).toEqual([
      "rcpt <x@example.com>: tag=c per_rcpt=undefined",
      "rcpt <y@example.com>: tag=c per_rcpt=undefined", // a new RCPT replaces the RCPT stage's values
      "data: tag=c per_rcpt=<y@example.com>",
      "other: tag=undefined",
      "rcpt <z@example.com>: tag=c per_rcpt=undefined", // abort cleared the transaction's, not connect's
    ]);
  });

  test("addresses, host, stores, other children, status, sessions, postfix, authenticated", async () => {
    let snapshot: Record<string, unknown> = {};
    const probe = defineCondition({
      name: "probe",
      envelopeRecipient(ctx, recipient) {
        snapshot = {
          name: ctx.name,
          stage: ctx.stage,
          host: ctx.clientHost,
          client: ctx.clientAddress.spec,
          clientLocal: ctx.clientAddress.local,
          server: ctx.serverAddress.spec,
          fromOther: ctx.transaction.get("from n"),
          sessionValue: ctx.session.get("seen"),
          other: ctx.child("n")?.lastStatus,
          unknownChild: ctx.child("zz"),
          children: ctx.children.map((c) => c.name),
          status: ctx.status,
          sessions: ctx.processingSessions,
          postfix: ctx.postfix,
          authenticated: ctx.authenticated,
          recipient,
        };
      },
    });
    const writer = defineCondition({
      name: "writer",
      connect: (ctx) => void ctx.session.set("seen", ctx.clientAddress.spec),
      envelopeRecipient: (ctx) => void ctx.transaction.set("from n", "hello"),
    });
    const s = withConditions([probe], [writer]);
    s.sessions = 7;
    s.children[1].lastStatus = "continue";
    await s.askAll(["m", "n"], connect("dsl-1-2.example", "IPv6:2001:db8::7", "6", 5555), {
      v: "Postfix 3.7.11", "{daemon_addr}": "192.0.2.25", "{daemon_port}": "25",
    });
    await s.askAll(["m", "n"], mail("<a@example.com>"), { "{auth_authen}": "alice" });
    await s.ask("n", rcpt("<b@example.com>"));
    await s.ask("m", rcpt("<b@example.com>"));
    expect(snapshot).toEqual({
      name: "m",
      stage: "envelope-recipient",
      host: "dsl-1-2.example",
      client: "inet6:5555@[2001:db8::7]",
      clientLocal: false,
      server: "inet:25@[192.0.2.25]",
      fromOther: "hello",
      sessionValue: "inet6:5555@[2001:db8::7]",
      other: "continue",
      unknownChild: undefined,
      children: ["m", "n"],
      status: undefined,
      sessions: 7,
      postfix: true,
      authenticated: true,
      recipient: "<b@example.com>",
    });
  });

  test("each stopper gets the stage's values (the body stopper gets the chunk)", async () => {
    const got: unknown[] = [];
    const all = defineCondition({
      name: "all",
      connect: (_c, host, address) => void got.push(["connect", host, address.family]),
      helo: (_c, fqdn) => void got.push(["helo", fqdn]),
      envelopeFrom: (_c, from, args) => void got.push(["from", from, args]),
      envelopeRecipient: (_c, r, args) => void got.push(["rcpt", r, args]),
      data: (c) => void got.push(["data", c.stage]),
      header: (_c, name, value) => void got.push(["header", name, value]),
      endOfHeader: (c) => void got.push(["eoh", c.stage]),
      body: (_c, chunk) => void got.push(["body", Buffer.from(chunk).toString("latin1")]),
      endOfMessage: (c) => void got.push(["eom", c.stage]),
    });
    const s = withConditions([all]);
    await s.ask("m", connect("c.example", "/run/smtpd", "L", 0));
    await s.ask("m", helo("c.example"));
    await s.ask("m", mail("<a@example.com>", ["SIZE=10"]));
    await s.ask("m", rcpt("<b@example.com>", ["NOTIFY=NEVER"]));
    await s.ask("m", DATA);
    await s.ask("m", { stage: "header", name: "Subject", value: "hi" });
    await s.ask("m", { stage: "end-of-header" });
    await s.ask("m", { stage: "body", chunk: Buffer.from("b\xe9", "latin1") });
    await s.ask("m", { stage: "end-of-message" });
    expect(got).toEqual([
      ["connect", "c.example", "unix"],
      ["helo", "c.example"],
      ["from", "<a@example.com>", ["SIZE=10"]],
      ["rcpt", "<b@example.com>", ["NOTIFY=NEVER"]],
      ["data", "data"],
      ["header", "Subject", "hi"],
      ["eoh", "end-of-header"],
      ["body", "b\xe9"],
      ["eom", "end-of-message"],
    ]);
  });
});

describe("combining stoppers", () => {
  test("in the milter's order; the first true stops and ends the round; synchronous stoppers answer synchronously", async () => {
    const calls: string[] = [];
    const a = defineCondition({ name: "a", helo: () => void calls.push("a") });
    const b = defineCondition({ name: "b", helo: () => (calls.push("b"), true) });
    const c = defineCondition({ name: "c", helo: () => (calls.push("c"), false) });
    const config = configWith({ m: ["a", "b", "c"], n: ["c", "a"] }, undefined, [a, b, c]);
    const hook = createConditions(config, { log: SILENT_LOG, sessions: () => 1 })!;
    const ctx = {
      sessionId: 1, event: { stage: "helo" as const, fqdn: "x" }, macros: new (await import("../../src/milter/index.ts")).MacroContext(),
      children: [], transaction: new Map(), session: new Map(), addMacro() {},
    };
    expect(hook.shouldStop({ name: "m", alive: true, processing: false, lastStatus: undefined }, "helo", ctx)).toBe(true);
    expect(calls).toEqual(["a", "b"]);
    expect(hook.shouldStop({ name: "n", alive: true, processing: false, lastStatus: undefined }, "helo", ctx)).toBe(false);
    expect(calls).toEqual(["a", "b", "c", "a"]);
    expect(hook.shouldStop({ name: "unlisted", alive: true, processing: false, lastStatus: undefined }, "helo", ctx)).toBe(false);
  });

  test("async stoppers are awaited in order", async () => {
    const slowNo = defineCondition({ name: "slow no", helo: async () => { await Bun.sleep(5); return false; } });
    const slowYes = defineCondition({ name: "slow yes", helo: async () => { await Bun.sleep(5); return true; } });
    expect((await withConditions([slowNo, slowYes]).ask("m", helo("x"))).stop).toBe(true);
    expect((await withConditions([slowNo]).ask("m", helo("x"))).stop).toBe(false);
  });

  test("a stopper that throws, rejects or never answers counts as 'do not stop', is logged, and the next one still runs", async () => {
    const throws = defineCondition({ name: "throws", envelopeFrom: () => { throw new Error("boom"); } });
    const rejects = defineCondition({ name: "rejects", envelopeFrom: () => Promise.reject(new Error("nope")) });
    const hangs = defineCondition({ name: "hangs", envelopeFrom: () => new Promise<boolean>(() => {}) });
    const stops = defineCondition({ name: "stops", envelopeFrom: () => true });
    const s = withConditions([throws, rejects, hangs], [throws, rejects, hangs, stops], (c) => {
      for (const m of c.milters) m.reading_timeout = 0.05;
    });
    const [m, n] = await s.askAll(["m", "n"], mail("<a@example.com>"));
    expect(m.stop).toBe(false);
    expect(n.stop).toBe(true);
    const warnings = s.log.lines.filter((l) => l.startsWith("[warning]"));
    expect(warnings.some((l) => l.includes("[condition][throws] milter m at envelope-from: failed") && l.includes("boom"))).toBe(true);
    expect(warnings.some((l) => l.includes("[condition][rejects] milter m") && l.includes("nope"))).toBe(true);
    expect(warnings.some((l) => l.includes("[condition][hangs] milter m") && l.includes("reading_timeout"))).toBe(true);
    expect(warnings.filter((l) => l.includes("milter n")).length).toBe(3);
  });

  test("a non-boolean truthy answer does not stop (only true does)", async () => {
    const odd = { name: "odd", helo: () => "yes" as unknown as boolean };
    expect((await withConditions([odd]).ask("m", helo("x"))).stop).toBe(false);
  });
});

describe("notifications and set-up", () => {
  test("abort and quit reach the conditions of every milter that listens; they cannot add macros", async () => {
    const heard: string[] = [];
    const listener = defineCondition({
      name: "listener",
      abort: (ctx) => void heard.push(`abort ${ctx.name} ${ctx.stage}`),
      quit: (ctx) => {
        heard.push(`quit ${ctx.name}`);
        ctx.addMacro("x", "y");
      },
    });
    const s = withConditions([listener], [listener]);
    await s.abort();
    await s.quit();
    expect(heard).toEqual(["abort m abort", "abort n abort", "quit m", "quit n"]);
    expect(s.log.lines.filter((l) => l.includes("macro x not added")).length).toBe(2);
  });

  test("no hook at all when no milter names a condition; disabled milters are left out", () => {
    expect(createConditions(configWith({ a: [], b: [] }), { log: SILENT_LOG, sessions: () => 0 })).toBeUndefined();
    const c = configWith({ a: ["S25R"], b: [] }, (cfg) => void (cfg.milters[0].enabled = false));
    expect(createConditions(c, { log: SILENT_LOG, sessions: () => 0 })).toBeUndefined();
    expect(createConditions(configWith({ a: [], b: ["Trust"] }), { log: SILENT_LOG, sessions: () => 0 })!.milters).toEqual(["b"]);
  });

  test("an unknown condition name is an error naming it", () => {
    expect(() => createConditions(configWith({ a: ["Nope"] }), { log: SILENT_LOG, sessions: () => 0 })).toThrow('milter "a": unknown applicable condition "Nope"');
  });

  test("defineCondition returns the condition as given", () => {
    const c = { name: "x", helo: (_ctx: ConditionContext) => true };
    expect(defineCondition(c)).toBe(c);
  });
});
