// Stopping a child at every stage (manager.md §2.9) with conditions written through the API, over
// real sockets: the manager engine with two scripted child milters and a test MTA in front.
// Also: macros a condition adds reach only its child, the per-transaction store through the
// engine (Restrict Accounts, #39/#42), abort notifications, and the DATA stop of one child
// leaving the other's answer intact (#54).
import { afterEach, describe, expect, test } from "bun:test";
import { defineCondition, type ConditionDefinition } from "../../src/manager/conditions/api.ts";
import { createConditions } from "../../src/manager/conditions/registry.ts";
import type { ManagerConfig } from "../../src/manager/config/schema.ts";
import { SILENT_LOG } from "../../src/manager/log.ts";
import { Reject } from "../../src/milter-side/index.ts";
import type { Script } from "./support/scripted-milter.ts";
import { chain, eventually, expectStatus, marks, NAMES, received, SESSION, type Setup, setup } from "./support/harness.ts";
import { configWith } from "./support/condition-session.ts";

const [FIRST, SECOND] = NAMES;
let s: Setup;
afterEach(async () => {
  await s?.close();
});

/** Engine with two scripted children, both naming every condition given (the conditions decide by ctx.name). */
async function start(conditions: ConditionDefinition[], opts: { scripts?: Script[]; edit?: (c: ManagerConfig) => void } = {}) {
  const names = conditions.map((c) => c.name);
  const config = configWith({ [FIRST]: names, [SECOND]: names }, opts.edit, conditions);
  const hook = createConditions(config, { log: SILENT_LOG, sessions: () => 1 });
  s = await setup({ scripts: opts.scripts, engine: { conditions: hook } });
  return s;
}

const onlyFirst = (ctx: { name: string }) => ctx.name === FIRST;

describe("stopping one child at each stage", () => {
  test("connect: the child is out for the whole session; the other sees everything", async () => {
    await start([defineCondition({ name: "c", connect: onlyFirst })]);
    const mta = await s.mta();
    await chain(mta, "endOfMessage");
    expect(received(s.children, "connect")).toEqual([0, 1]);
    expect(received(s.children, "helo")).toEqual([0, 1]);
    expect(received(s.children, "end-of-message")).toEqual([0, 1]);
    await eventually(() => s.children[0].count("quit") === 1, 3000, "first child quit");
  });

  test("helo: the child saw connect, then is out for the session", async () => {
    await start([defineCondition({ name: "h", helo: onlyFirst })]);
    const mta = await s.mta();
    await chain(mta, "endOfMessage");
    expect(received(s.children, "connect")).toEqual([1, 1]);
    expect(received(s.children, "helo")).toEqual([0, 1]);
    expect(received(s.children, "envelope-from")).toEqual([0, 1]);
  });

  test("envelope-from: the child misses this message only", async () => {
    await start([defineCondition({ name: "f", envelopeFrom: (ctx, from) => onlyFirst(ctx) && from.includes("skip") })]);
    const mta = await s.mta();
    await chain(mta, "helo");
    expectStatus(await SESSION.envelopeFrom(mta, "<skip@example.com>"), "continue");
    await chain(mta, "endOfMessage", "envelopeRecipient");
    expect(received(s.children, "envelope-recipient")).toEqual([0, 1]);
    expect(received(s.children, "end-of-message")).toEqual([0, 1]);
    await chain(mta, "endOfMessage", "envelopeFrom"); // the next message: both again
    expect(received(s.children, "end-of-message")).toEqual([1, 2]);
  });

  test("envelope-recipient: the child does not see that recipient but stays in the message", async () => {
    await start([defineCondition({ name: "r", envelopeRecipient: (ctx, r) => onlyFirst(ctx) && r.includes("hidden") })]);
    const mta = await s.mta();
    await chain(mta, "envelopeRecipient");
    expectStatus(await SESSION.envelopeRecipient(mta, "<hidden@example.com>"), "continue");
    await chain(mta, "endOfMessage", "data");
    expect(s.children[0].events("envelope-recipient").map((e) => e.address)).toEqual(["<kou+receiver@example.com>"]);
    expect(received(s.children, "envelope-recipient")).toEqual([1, 2]);
    expect(received(s.children, "data")).toEqual([1, 1]);
    expect(received(s.children, "end-of-message")).toEqual([1, 1]);
  });

  test("data: the child is aborted and the other child's answer stands (milter-manager #54 fixed)", async () => {
    await start([defineCondition({ name: "d", data: onlyFirst })], { scripts: [{}, { data: Reject }] });
    const mta = await s.mta();
    await chain(mta, "envelopeRecipient");
    expectStatus(await SESSION.data(mta), "reject");
    expect(received(s.children, "data")).toEqual([0, 1]);
    await eventually(() => s.children[0].count("abort") >= 1, 3000, "first child aborted");
  });

  test("data: with the other child continuing, the message goes on without the stopped one", async () => {
    await start([defineCondition({ name: "d", data: onlyFirst })]);
    const mta = await s.mta();
    await chain(mta, "endOfMessage");
    expect(received(s.children, "data")).toEqual([0, 1]);
    expect(received(s.children, "header")).toEqual([0, 1]);
    expect(received(s.children, "end-of-message")).toEqual([0, 1]);
    await eventually(() => s.children[0].count("abort") === 1, 3000, "first child aborted");
  });

  const content: [string, keyof ConditionDefinition, string][] = [
    ["header", "header", "header"],
    ["end-of-header", "endOfHeader", "end-of-header"],
    ["body", "body", "body"],
    ["end-of-message", "endOfMessage", "end-of-message"],
  ];
  for (const [stage, key, event] of content) {
    test(`${stage}: the child is aborted; the other gets the whole message`, async () => {
      await start([defineCondition({ name: "x", [key]: onlyFirst } as ConditionDefinition)]);
      const mta = await s.mta();
      await chain(mta, "endOfMessage");
      expect(received(s.children, event)[0]).toBe(0);
      expect(received(s.children, "end-of-message")).toEqual([0, 1]);
      expect(s.children[1].bodyChunks()).toEqual(["Hi,"]);
      await eventually(() => s.children[0].count("abort") === 1, 3000, "first child aborted");
    });
  }

  test("every child stopped: the MTA gets accept", async () => {
    await start([defineCondition({ name: "all", envelopeFrom: () => true })]);
    const mta = await s.mta();
    await chain(mta, "helo");
    expectStatus(await SESSION.envelopeFrom(mta), "accept");
    expect(received(s.children, "envelope-from")).toEqual([0, 0]);
  });
});

describe("through the engine", () => {
  test("macros a condition adds go to its child only, with that stage's command", async () => {
    await start([
      defineCondition({
        name: "tagger",
        connect: (ctx) => void (onlyFirst(ctx) && ctx.addMacro("tag", "first")),
        envelopeRecipient: (ctx, r) => void (onlyFirst(ctx) && ctx.addMacro("{rcpt_note}", r)),
      }),
    ]);
    const mta = await s.mta();
    await chain(mta, "envelopeRecipient");
    const [a, b] = s.children;
    expect(a.events("connect")[0].macros).toEqual({ daemon_name: "Postfix", j: "postfix", tag: "first" });
    expect(b.events("connect")[0].macros).toEqual({ daemon_name: "Postfix", j: "postfix" });
    expect(a.events("envelope-recipient")[0].macros).toEqual({ rcpt_note: "<kou+receiver@example.com>" });
    expect(b.events("envelope-recipient")[0].macros).toBeUndefined();
  });

  test("Restrict Accounts: one recipient outside the list hides it and takes the child out at DATA, in either order", async () => {
    for (const order of [["<sales@example.com>", "<bob@example.com>"], ["<bob@example.com>", "<sales@example.com>"]]) {
      await start([], {
        edit: (c) => {
          c.applicable_conditions.restrict_accounts = [{ name: "Sales", accounts: ["sales@example.com"], milters: [FIRST] }];
        },
      });
      const mta = await s.mta();
      await chain(mta, "envelopeFrom");
      for (const r of order) expectStatus(await SESSION.envelopeRecipient(mta, r), "continue");
      await chain(mta, "endOfMessage", "data");
      expect(received(s.children, "envelope-recipient")).toEqual([1, 2]);
      expect(received(s.children, "data")).toEqual([0, 1]);
      expect(received(s.children, "end-of-message")).toEqual([0, 1]);
      await s.close();
    }
  });

  test("the transaction store is shared between the children's conditions and emptied by a new MAIL", async () => {
    const seen: unknown[] = [];
    await start([
      defineCondition({
        name: "share",
        envelopeFrom: (ctx) => void (ctx.name === SECOND && seen.push(`mail: ${ctx.transaction.get("first saw")}`)),
        envelopeRecipient: (ctx, r) => void (onlyFirst(ctx) && ctx.transaction.set("first saw", r)),
        data: (ctx) => void (ctx.name === SECOND && seen.push(`data: ${ctx.transaction.get("first saw")}`)),
      }),
    ]);
    const mta = await s.mta();
    await chain(mta, "endOfMessage");
    await chain(mta, "envelopeFrom", "envelopeFrom");
    expect(seen).toEqual(["mail: undefined", "data: <kou+receiver@example.com>", "mail: undefined"]);
  });

  test("abort reaches the conditions of every child", async () => {
    const heard: string[] = [];
    await start([defineCondition({ name: "ears", abort: (ctx) => void heard.push(ctx.name) })]);
    const mta = await s.mta();
    await chain(mta, "envelopeRecipient");
    const m = marks(s.children);
    await mta.abort();
    await eventually(() => received(s.children, "abort", m).every((n) => n === 1), 3000, "children aborted");
    expect(heard.sort()).toEqual([FIRST, SECOND]);
  });
});
