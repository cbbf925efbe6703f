// The rule book, parts shared by every stage (src/manager/rules/failures.ts, answers.ts): failures
// become fallbacks, and a compiled answer becomes the MTA's decision packet. No sockets.
import { describe, expect, test } from "bun:test";
import type { FallbackStatus } from "../../src/manager/config/schema.ts";
import { type FinalReply, fromMtaReply, statisticsStatus, type Status, toMtaReply } from "../../src/manager/rules/answers.ts";
import { failedStep, failureText, fatalFallback } from "../../src/manager/rules/failures.ts";
import type { DecisionReply } from "../../src/milter/index.ts";

describe("failures", () => {
  test.each(["accept", "temporary-failure", "reject", "discard"] as FallbackStatus[])("a failed step counts as the fallback %s", (f) => {
    expect(failedStep(f)).toEqual({ status: f });
  });

  test.each([
    [{ status: "timeout", timer: "reading", stage: "envelope-from", detail: "no reply in 10 s" }, "timeout (reading timeout) at envelope-from: no reply in 10 s"],
    [{ status: "closed", stage: "body", detail: "peer closed" }, "closed at body: peer closed"],
  ])("failure text %#", (f, text) => {
    expect(failureText(f)).toBe(text);
  });

  // Fallbacks of the children that could not be opened -> the answer of every command of the session.
  test.each([
    [[], undefined],
    [["accept"], undefined],
    [["accept", "accept"], undefined],
    [["accept", "temporary-failure"], "temporary-failure"],
    [["temporary-failure", "reject", "accept"], "reject"],
    [["reject", "discard"], "discard"],
  ] as [FallbackStatus[], FallbackStatus | undefined][])("children left out with %j: every command gets %p", (failed, fatal) => {
    expect(fatalFallback(failed)).toBe(fatal as FallbackStatus);
  });
});

describe("the MTA's decision packet", () => {
  test.each([
    [{ status: "not-change" }, { type: "continue" }],
    [{ status: "continue" }, { type: "continue" }],
    [{ status: "skip" }, { type: "continue" }],
    [{ status: "accept" }, { type: "accept" }],
    [{ status: "reject" }, { type: "reject" }],
    [{ status: "temporary-failure" }, { type: "tempfail" }],
    [{ status: "discard" }, { type: "discard" }],
    [{ status: "reject", replyCode: "550 5.7.1 no" }, { type: "replycode", text: "550 5.7.1 no" }],
    [{ status: "temporary-failure", replyCode: "451 4.7.1 later" }, { type: "replycode", text: "451 4.7.1 later" }],
  ] as [FinalReply, DecisionReply][])("%j -> %j", (reply, packet) => {
    expect(toMtaReply(reply)).toEqual(packet);
  });

  test.each([
    [{ type: "continue" }, { status: "continue" }],
    [{ type: "accept" }, { status: "accept" }],
    [{ type: "reject" }, { status: "reject" }],
    [{ type: "tempfail" }, { status: "temporary-failure" }],
    [{ type: "discard" }, { status: "discard" }],
    [{ type: "replycode", text: "451 later" }, { status: "temporary-failure", replyCode: "451 later" }],
    [{ type: "replycode", text: "550 no" }, { status: "reject", replyCode: "550 no" }],
  ] as [DecisionReply, FinalReply][])("back from %j -> %j", (packet, reply) => {
    expect(fromMtaReply(packet)).toEqual(reply);
  });

  test.each([
    ["not-change", "pass"],
    ["continue", "pass"],
    ["skip", "pass"],
    ["accept", "accept"],
    ["reject", "reject"],
    ["temporary-failure", "temporary-failure"],
    ["discard", "discard"],
  ] as [Status, string][])("statistics line status for %s: %s", (s, shown) => {
    expect(statisticsStatus(s)).toBe(shown);
  });
});
