// The statistics lines, in the exact form milter-manager writes them (tools.md §3.3, manager.md §4.4).
import { describe, expect, test } from "bun:test";
import {
  formatElapsed,
  headerAddLine,
  milterEndLine,
  sessionDisconnectedLine,
  sessionEndLine,
  sessionsFinishedLine,
  statisticsStatus,
} from "../../src/runtime/statistics.ts";

describe("statistics lines", () => {
  test("the lines of the original's run-time output", () => {
    expect(sessionEndLine(1, "end-of-message", "pass", 6.848)).toBe("[session][end][end-of-message][pass][0.006848](1)");
    expect(sessionsFinishedLine(2, 1, 0)).toBe("[sessions][finished] 2(+1) 0");
    expect(milterEndLine(4, "spamassassin", "envelope-recipient", "reject", 10.275)).toBe(
      "[milter][end][envelope-recipient][reject][0.010275](4): spamassassin",
    );
    expect(sessionDisconnectedLine(7, 512)).toBe("[session][disconnected][0.512000](7)");
    expect(headerAddLine(3, "X-Spam-Flag", "YES", "spamassassin")).toBe("[milter][header][add](3): <X-Spam-Flag>=<YES>: spamassassin");
  });

  test("status words the log analyzer counts", () => {
    for (const s of ["continue", "not-change", "skip", "default", undefined]) expect(statisticsStatus(s)).toBe("pass");
    for (const s of ["accept", "reject", "discard", "temporary-failure", "quarantine", "abort", "stop", "error"]) expect(statisticsStatus(s)).toBe(s as never);
    expect(statisticsStatus("tempfail")).toBe("temporary-failure");
    expect(statisticsStatus("451 4.7.1 later")).toBe("temporary-failure");
    expect(statisticsStatus("550 5.7.1 no")).toBe("reject");
    expect(statisticsStatus("something-else")).toBe("error");
    expect(sessionEndLine(9, "connect", "continue", 1)).toBe("[session][end][connect][pass][0.001000](9)");
  });

  test("elapsed seconds with six decimals, never negative", () => {
    expect(formatElapsed(0)).toBe("0.000000");
    expect(formatElapsed(1234.5678)).toBe("1.234568");
    expect(formatElapsed(-3)).toBe("0.000000");
  });
});
