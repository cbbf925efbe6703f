// The import graph of src/: no cycle (file level), and no folder imports one of a higher layer
// (docs/architecture.md). `bun test/imports.test.ts` is not needed: `bun test test/imports.test.ts`
// fails with the cycles and the upward imports it found.
import { describe, expect, test } from "bun:test";
import { findCycles, importGraph, upwardImports } from "./support/import-graph.ts";

const graph = importGraph(`${import.meta.dir}/../src`);

describe("import graph of src/", () => {
  test("reads every source file and its relative imports", () => {
    expect(graph.size).toBeGreaterThan(100);
    expect(graph.get("main.ts")?.length ?? 0).toBeGreaterThan(0);
  });

  test("has no import cycle", () => {
    expect(findCycles(graph).map((c) => c.join(" -> "))).toEqual([]);
  });

  test("has no upward import between layers", () => {
    expect(upwardImports(graph)).toEqual([]);
  });
});
