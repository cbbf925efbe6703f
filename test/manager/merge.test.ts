// Status priority, evaluation mode and the reply-code rules (manager.md §2.2, §2.8).
import { describe, expect, test } from "bun:test";
import {
  childAnswer,
  isRefusal,
  moreImportant,
  mostImportantFallback,
  realStatus,
  type Status,
  StageReply,
} from "../../src/manager/rules/answers.ts";

describe("priority", () => {
  const order: Status[] = ["discard", "reject", "temporary-failure", "continue", "skip", "accept", "not-change"];
  test("DISCARD > REJECT > TEMPFAIL > CONTINUE > SKIP > ACCEPT > NOT_CHANGE, both argument orders", () => {
    for (let i = 0; i < order.length; i++) {
      for (let j = i; j < order.length; j++) {
        expect(moreImportant(order[i], order[j])).toBe(order[i]);
        expect(moreImportant(order[j], order[i])).toBe(order[i]);
      }
    }
  });

  test("refusals", () => {
    expect(order.filter(isRefusal)).toEqual(["discard", "reject", "temporary-failure"]);
  });

  test("most important fallback", () => {
    expect(mostImportantFallback([])).toBeUndefined();
    expect(mostImportantFallback(["accept", "temporary-failure", "reject"])).toBe("reject");
    expect(mostImportantFallback(["accept", "discard", "reject"])).toBe("discard");
    expect(mostImportantFallback(["accept"])).toBe("accept");
  });
});

describe("childAnswer", () => {
  test("plain decisions", () => {
    expect(childAnswer({ status: "continue" }, false)).toEqual({ status: "continue" });
    expect(childAnswer({ status: "reject" }, false)).toEqual({ status: "reject" });
    expect(childAnswer({ status: "shutdown" }, false)).toEqual({ status: "temporary-failure" });
    expect(childAnswer({ status: "reply-code", replyText: "451 4.7.1 Greylisting" }, false)).toEqual({
      status: "temporary-failure",
      replyCode: "451 4.7.1 Greylisting",
    });
    expect(childAnswer({ status: "reply-code", replyText: "554 5.7.1 no" }, false).status).toBe("reject");
  });

  test("evaluation mode: refusals and reply codes count as accept, the text is not kept", () => {
    for (const status of ["reject", "temporary-failure", "discard", "shutdown"] as const) {
      expect(childAnswer({ status }, true)).toEqual({ status: "accept" });
    }
    expect(childAnswer({ status: "reply-code", replyText: "554 5.7.1 1% 2%% 3%%%" }, true)).toEqual({ status: "accept" });
    expect(childAnswer({ status: "continue" }, true)).toEqual({ status: "continue" });
    expect(realStatus({ status: "reply-code", replyText: "451 4.7.1 x" })).toBe("temporary-failure");
  });
});

describe("StageReply", () => {
  test("reply-code fixture: 5xx stored and compiled reject → forwarded", () => {
    const r = new StageReply();
    r.add(childAnswer({ status: "reply-code", replyText: "554 5.7.1 1%% 2%% 3%%" }, false));
    r.add({ status: "continue" });
    expect(r.final()).toEqual({ status: "reject", replyCode: "554 5.7.1 1%% 2%% 3%%" });
  });

  test("4xx stored but a discard wins → plain discard", () => {
    const r = new StageReply();
    r.add(childAnswer({ status: "reply-code", replyText: "451 4.7.1 later" }, false));
    r.add({ status: "discard" });
    expect(r.final()).toEqual({ status: "discard" });
  });

  test("4xx stored but a plain reject wins → plain reject", () => {
    const r = new StageReply();
    r.add(childAnswer({ status: "reply-code", replyText: "451 4.7.1 later" }, false));
    r.add({ status: "reject" });
    expect(r.final()).toEqual({ status: "reject" });
  });

  test("last reply code wins", () => {
    const r = new StageReply();
    r.add(childAnswer({ status: "reply-code", replyText: "550 5.7.1 first" }, false));
    r.add(childAnswer({ status: "reply-code", replyText: "554 5.7.1 second" }, false));
    expect(r.final()).toEqual({ status: "reject", replyCode: "554 5.7.1 second" });
  });

  test("reply-code-invalid (quirk fixed): class mismatch gives the plain status instead of silence", () => {
    const r = new StageReply();
    r.add(childAnswer({ status: "reply-code", replyText: "554 3.7.1 1%% 2%% 3%%" }, false));
    expect(r.final()).toEqual({ status: "reject" });
    expect(r.invalidReplyCode).toContain("class of extended status code");
  });

  test("reset", () => {
    const r = new StageReply();
    r.add({ status: "reject" });
    r.reset();
    expect(r.final()).toEqual({ status: "not-change" });
  });

  test("evaluation answers never bring their text along", () => {
    const r = new StageReply();
    r.add(childAnswer({ status: "reply-code", replyText: "554 5.7.1 evaluation" }, true));
    r.add({ status: "reject" });
    expect(r.final()).toEqual({ status: "reject" });
  });
});

test("reply codes the MTA would refuse give the plain status", () => {
  for (const text of ["554 5.7.1 50% off", "450-4.7.1 one\n450 4.7.1 two", "550 4.7.1 mismatch", "550-only a continuation"]) {
    const r = new StageReply();
    r.add(childAnswer({ status: "reply-code", replyText: text }, false));
    expect(r.final()).toEqual({ status: text.startsWith("4") ? "temporary-failure" : "reject" });
    expect(r.invalidReplyCode).toBeDefined();
  }
  const ok = new StageReply();
  ok.add(childAnswer({ status: "reply-code", replyText: "450-4.7.1 one\r\n450-4.7.1 two\r\n450 4.7.1 three" }, false));
  expect(ok.final()).toEqual({ status: "temporary-failure", replyCode: "450-4.7.1 one\r\n450-4.7.1 two\r\n450 4.7.1 three" });
});
