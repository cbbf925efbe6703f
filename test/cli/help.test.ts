// --help made from the option tables: every option listed, names left-aligned, lines wrapped
// to the width; and the daemon options are one table shared by the manager and the test-client.
import { describe, expect, test } from "bun:test";
import { DAEMON_OPTIONS } from "../../src/cli/options/daemon.ts";
import { helpWidth, optionNames, renderHelp, wrap } from "../../src/cli/options/help.ts";
import { OPTION_TABLES } from "../../src/cli/options/index.ts";

describe("--help", () => {
  for (const [tool, t] of Object.entries(OPTION_TABLES)) {
    test(`${tool}: every option listed, at most 80 columns, names from column 3`, () => {
      const text = renderHelp(t, 80);
      const lines = text.split("\n");
      expect(lines[0]).toStartWith(`USAGE ${t.prog} [OPTIONS]`);
      for (const l of lines) expect(l.length).toBeLessThanOrEqual(80);
      for (const d of t.options) {
        const names = optionNames(d, t.negatableFlags);
        // An entry starts at column 3 with its names: "  -s, --connection-spec=<SPEC>".
        expect(lines.some((l) => l.startsWith(`  ${names}`))).toBe(true);
        expect(names.trimStart()).toStartWith(d.short ? `-${d.short}, ` : "--");
      }
      expect(text).toEndWith("\n");
      expect(text).not.toContain("\x1b[");
    });
  }

  test("wrapping keeps words whole and indents continuation lines", () => {
    expect(wrap("aa bb cc dd", 8, 2)).toEqual(["  aa bb", "  cc dd"]);
    expect(wrap("aa bb cc", 8, 4, 0)).toEqual(["aa bb cc"]);
    expect(wrap("", 8, 2)).toEqual(["  "]);
    expect(renderHelp(OPTION_TABLES["smtp-source"], 60).split("\n").every((l) => l.length <= 60)).toBe(true);
  });

  test("the width: 80, or a narrower terminal's", () => {
    expect([helpWidth(undefined), helpWidth(200), helpWidth(60), helpWidth(0)]).toEqual([80, 80, 60, 80]);
  });
});

describe("the daemon options", () => {
  test("the manager and the test-client take the same ones, spelt the same way", () => {
    for (const tool of ["manager", "test-client"]) {
      const byLong = new Map(OPTION_TABLES[tool].options.map((d) => [d.long, d]));
      for (const d of DAEMON_OPTIONS) {
        const mine = byLong.get(d.long);
        expect(mine && { short: mine.short, value: mine.value, aliases: mine.aliases }).toEqual({ short: d.short, value: d.value, aliases: d.aliases });
      }
    }
  });
});
