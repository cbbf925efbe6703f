// src/cli/tools.ts names each tool's program without loading its option table (start-up cost):
// the names must stay those of the tables.
import { expect, test } from "bun:test";
import { OPTION_TABLES } from "../../src/cli/options/index.ts";
import { TOOLS, toolFromName } from "../../src/cli/tools.ts";

test("every tool's link is its option table's program name, and names the tool", () => {
  expect(Object.keys(TOOLS).sort()).toEqual(Object.keys(OPTION_TABLES).sort());
  for (const [tool, t] of Object.entries(TOOLS)) {
    expect(t.link).toBe(OPTION_TABLES[tool].prog);
    expect(toolFromName(t.link)).toBe(tool as keyof typeof TOOLS);
    expect(toolFromName(`milterkit-${tool}`)).toBe(tool as keyof typeof TOOLS);
  }
});
