// Every tool accepts the same option spellings, with the same value rules, as before the option
// tables were unified: test/fixtures/cli/accepted-options.json was recorded from the old binary
// by test/fixtures/cli/probe-options.ts. The rules here come from running the scanner on each
// spelling, the same two forms the probe tried (alone, and with =V).
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { OPTION_TABLES, spellings, type ToolOptions } from "../../src/cli/options/index.ts";
import { scan, UsageError } from "../../src/cli/options/scan.ts";
import { parseManagerArgv } from "../../src/manager/config/cli.ts";
import { parseSinkArgs } from "../../src/smtp/sink-options.ts";
import { parseSourceArgs } from "../../src/smtp/source-options.ts";
import { testClientConfig } from "../../src/test-client/options.ts";
import { parseTestServerArgs } from "../../src/test-server/options.ts";

interface Recorded { options: Record<string, string>; extraOperands: Record<string, string> }
const BEFORE: Record<string, Recorded> = JSON.parse(readFileSync(join(import.meta.dir, "../fixtures/cli/accepted-options.json"), "utf8"));

function outcome(t: ToolOptions, argv: string[]): string {
  try {
    scan(t, argv);
    return "ok";
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    if (/unknown option/.test(e.message)) return "unknown";
    if (/needs a value/.test(e.message)) return "needs-value";
    if (/takes no value/.test(e.message)) return "no-value";
    return e.message;
  }
}

/** The value rule of one spelling as the scanner treats it (the probe's classification). */
function rule(t: ToolOptions, spelling: string): string | undefined {
  const alone = outcome(t, [spelling]);
  if (alone === "unknown") return undefined;
  if (spelling.length === 2) return alone === "needs-value" ? "required" : alone === "ok" ? "none" : `?${alone}`;
  const withValue = outcome(t, [`${spelling}=V`]);
  if (alone === "needs-value" && withValue === "ok") return "required";
  if (alone === "ok" && (withValue === "no-value" || withValue === "unknown")) return "none";
  if (alone === "ok" && withValue === "ok") return "optional";
  return `?${alone}/${withValue}`;
}

/** What a tool's own checks say to operands (the probe's base arguments, then the extras). */
const OPERANDS: Record<string, (extra: string[]) => void> = {
  "manager": (x) => parseManagerArgv(x),
  "test-client": (x) => testClientConfig(scan(OPTION_TABLES["test-client"], x), {}),
  "test-server": (x) => parseTestServerArgs(x, { readFile: () => new Uint8Array() }),
  "smtp-source": (x) => parseSourceArgs(["unix:/nonexistent/probe.sock", ...x], "probe.example"),
  "smtp-sink": (x) => parseSinkArgs(["unix:", ...x]),
};

function operandOutcome(tool: string, n: number): string {
  try {
    OPERANDS[tool](Array.from({ length: n }, () => "extra"));
    return "ok";
  } catch (e) {
    const m = (e as Error).message;
    return /unexpected argument/.test(m) ? "unexpected" : /usage: /.test(m) ? "usage" : "ok";
  }
}

describe("option spellings and value rules match the recording from before the tables", () => {
  test("the same tools", () => expect(Object.keys(OPTION_TABLES).sort()).toEqual(Object.keys(BEFORE).sort()));

  for (const [tool, t] of Object.entries(OPTION_TABLES)) {
    test(tool, () => {
      const now: Record<string, string> = {};
      // Every spelling of the table, plus every one recorded (so a dropped one shows as missing).
      const candidates = new Set([...spellings(t).keys(), ...Object.keys(BEFORE[tool].options)]);
      for (const c of candidates) {
        const r = rule(t, c);
        if (r !== undefined) now[c] = r;
      }
      expect(now).toEqual(BEFORE[tool].options);
      // The table's own view agrees with the scanner's.
      for (const [spelling, s] of spellings(t)) expect(`${spelling} ${s.value}`).toBe(`${spelling} ${now[spelling]}`);
    });

    test(`${tool}: extra operands`, () => {
      expect({ 1: operandOutcome(tool, 1), 2: operandOutcome(tool, 2) }).toEqual(BEFORE[tool].extraOperands as any);
    });
  }
});
