// The applicable-condition hook point (stop-hook.ts) as the engine uses it: what a condition
// sees, macros it adds for one child, the per-transaction store, abort/quit notifications.
import { afterEach, describe, expect, test } from "bun:test";
import type { ChildView, Conditions, StopContext } from "../../src/manager/stop-hook.ts";
import { withMacros } from "../../src/manager/stop-hook.ts";
import { chain, eventually, expectStatus, received, SESSION, type Setup, setup } from "./support/harness.ts";

let s: Setup;
afterEach(async () => {
  await s?.close();
});

describe("withMacros", () => {
  test("added macros win over the MTA's, whatever the spelling; long names get braces", () => {
    const m = withMacros(new Map([["{daemon_name}", "mta"], ["j", "mx"]]), new Map([["daemon_name", "ours"], ["trusted_domain", "yes"]]));
    expect([...m]).toEqual([["j", "mx"], ["{daemon_name}", "ours"], ["{trusted_domain}", "yes"]]);
    expect([...withMacros(undefined, new Map([["i", "1"]]))]).toEqual([["i", "1"]]);
  });
});

describe("conditions in a session", () => {
  test("a condition sees the event, the MTA's macros and the other children", async () => {
    const seen: { child: string; stage: string; from?: string; auth?: string; others: string[] }[] = [];
    const conditions: Conditions = {
      shouldStop(child, stage, ctx) {
        seen.push({
          child: child.name,
          stage,
          from: ctx.event.stage === "envelope-from" ? ctx.event.from : undefined,
          auth: ctx.macros.get("auth_type"),
          others: ctx.children.map((c) => c.name),
        });
        return false;
      },
    };
    s = await setup({ engine: { conditions } });
    const mta = await s.mta();
    await chain(mta, "helo");
    expectStatus(await mta.envelopeFrom("<a@example.com>", [], { "{auth_type}": "PLAIN" }), "continue");
    expect(seen.filter((x) => x.stage === "envelope-from")).toEqual([
      { child: "milter@10026", stage: "envelope-from", from: "<a@example.com>", auth: "PLAIN", others: ["milter@10026", "milter@10027"] },
      { child: "milter@10027", stage: "envelope-from", from: "<a@example.com>", auth: "PLAIN", others: ["milter@10026", "milter@10027"] },
    ]);
  });

  test("addMacro: the macro goes to that child only, with that stage's command", async () => {
    const conditions: Conditions = {
      shouldStop(child, stage, ctx) {
        if (child.name === "milter@10026" && stage === "envelope-from") ctx.addMacro("trusted_domain", "yes");
        return false;
      },
    };
    s = await setup({ engine: { conditions } });
    const mta = await s.mta();
    await chain(mta, "helo");
    expectStatus(await mta.envelopeFrom("<a@gmail.com>", [], { "{mail_addr}": "a@gmail.com" }), "continue");
    expect(s.children[0].events("envelope-from")[0].macros).toEqual({ mail_addr: "a@gmail.com", trusted_domain: "yes" });
    expect(s.children[1].events("envelope-from")[0].macros).toEqual({ mail_addr: "a@gmail.com" });
  });

  test("addMacro in the content phase, also when the child is replayed the message at end of message", async () => {
    const conditions: Conditions = {
      shouldStop(child, stage, ctx) {
        if (stage === "header") ctx.addMacro("seen_by", child.name);
        return false;
      },
    };
    s = await setup({ engine: { conditions } });
    const mta = await s.mta();
    await chain(mta, "endOfMessage");
    expect(s.children[0].events("header")[0].macros).toEqual({ i: "QID1", seen_by: "milter@10026" });
    expect(s.children[1].events("header")[0].macros).toEqual({ i: "QID1", seen_by: "milter@10027" });
  });

  test("the per-transaction store is shared by all children's conditions and emptied at MAIL", async () => {
    const conditions: Conditions = {
      shouldStop(child, stage, ctx) {
        if (child.name === "milter@10026" && ctx.event.stage === "envelope-recipient") ctx.transaction.set("last", ctx.event.recipient);
        // 10027 does not want messages that went to stop@ (decided at DATA from what 10026's condition saw)
        return child.name === "milter@10027" && stage === "data" && ctx.transaction.get("last") === "<stop@example.com>";
      },
    };
    s = await setup({ engine: { conditions } });
    const mta = await s.mta();
    await chain(mta, "envelopeFrom");
    expectStatus(await SESSION.envelopeRecipient(mta, "<stop@example.com>"), "continue");
    expectStatus(await SESSION.data(mta), "continue");
    expect(received(s.children, "data")).toEqual([1, 0]);
    await mta.abort();
    // A new transaction: the store is empty again, so 10027 takes part.
    await chain(mta, "data", "envelopeFrom");
    expect(received(s.children, "data")).toEqual([2, 1]);
  });

  test("abort and quit are notified once per child", async () => {
    const notes: string[] = [];
    const conditions: Conditions = {
      shouldStop: () => false,
      notify(child: ChildView, what: string, ctx: Omit<StopContext, "event" | "addMacro">) {
        notes.push(`${child.name} ${what} ${ctx.sessionId > 0}`);
      },
    };
    s = await setup({ engine: { conditions } });
    const mta = await s.mta();
    await chain(mta, "envelopeFrom");
    await mta.abort();
    await eventually(() => notes.length === 2, 3000, "abort notifications");
    expect(notes).toEqual(["milter@10026 abort true", "milter@10027 abort true"]);
    await mta.quit();
    await eventually(() => notes.length === 4, 3000, "quit notifications");
    expect(notes.slice(2)).toEqual(["milter@10026 quit true", "milter@10027 quit true"]);
  });

  test("a notification that throws or rejects does not disturb the session", async () => {
    const conditions: Conditions = {
      shouldStop: () => false,
      notify: async () => {
        throw new Error("broken notification");
      },
    };
    s = await setup({ engine: { conditions } });
    const mta = await s.mta();
    await chain(mta, "envelopeFrom");
    await mta.abort();
    await chain(mta, "endOfMessage", "envelopeFrom");
  });

  test("an async condition that rejects counts as 'do not stop'", async () => {
    s = await setup({ engine: { conditions: { shouldStop: () => Promise.reject(new Error("no")) } } });
    const mta = await s.mta();
    await chain(mta, "endOfMessage");
    expect(received(s.children, "end-of-message")).toEqual([1, 1]);
  });
});
