import { expect, test } from "bun:test";
import { decisionStatus, isContinue, parseReplyCode, toModification } from "../../src/mta-side/index.ts";

test("parseReplyCode: single line with and without enhanced code", () => {
  expect(parseReplyCode("554 5.7.1 Message rejected")).toEqual({
    code: 554, extended: "5.7.1", message: "Message rejected", text: "554 5.7.1 Message rejected", status: "reject",
  });
  expect(parseReplyCode("451 try later")).toEqual({ code: 451, message: "try later", text: "451 try later", status: "temporary-failure" });
  expect(parseReplyCode("421")).toEqual({ code: 421, message: "", text: "421", status: "temporary-failure" });
  // An enhanced code of another class is just text.
  expect(parseReplyCode("550 4.7.1 x")).toMatchObject({ code: 550, message: "4.7.1 x" });
  expect((parseReplyCode("550 4.7.1 x") as { extended?: string }).extended).toBeUndefined();
});

test("parseReplyCode: multi-line, percent kept as sent", () => {
  expect(parseReplyCode("450-4.7.1 line one\r\n450-4.7.1 line two\r\n450 4.7.1 100%% three")).toMatchObject({
    code: 450, extended: "4.7.1", message: "line one\nline two\n100%% three",
  });
});

test("parseReplyCode: refuses what MTAs refuse", () => {
  for (const bad of ["", "250 ok", "5x0 no", "55 short", "hello", "6000 x"]) {
    expect(typeof parseReplyCode(bad)).toBe("string");
  }
});

test("decision statuses use milter-manager's names", () => {
  expect(decisionStatus("tempfail")).toBe("temporary-failure");
  expect(decisionStatus("replycode")).toBe("reply-code");
  expect(decisionStatus("progress")).toBeUndefined();
  expect(decisionStatus("addheader")).toBeUndefined();
  expect(isContinue({ ok: true, status: "continue", stage: "helo", via: "not-sent" })).toBe(true);
  expect(isContinue({ ok: false, status: "closed", stage: "helo", detail: "" })).toBe(false);
});

test("toModification: change-header with an empty value is a delete", () => {
  expect(toModification({ type: "chgheader", index: 3, name: "X", value: "" })).toEqual({ type: "delete-header", index: 3, name: "X" });
  expect(toModification({ type: "chgheader", index: 0, name: "X", value: " " })).toEqual({ type: "change-header", index: 0, name: "X", value: " " });
});
