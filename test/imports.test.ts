// The import graph of src/: no cycle (file level), and no file imports one of a higher layer
// (test/support/import-graph.ts LAYERS, docs/architecture.md). `bun test test/imports.test.ts`
// fails with the cycles and the upward imports it found.
import { describe, expect, test } from "bun:test";
import { findCycles, importGraph, upwardImports } from "./support/import-graph.ts";

const graph = importGraph(`${import.meta.dir}/../src`);

describe("import graph of src/", () => {
  test("reads every source file and its relative imports", () => {
    expect(graph.size).toBeGreaterThan(100);
    expect(graph.get("main.ts")?.length ?? 0).toBeGreaterThan(0);
  });

  test("the checks find a cycle and an upward import when there is one", () => {
    const bad = new Map([
      ["milter/a.ts", ["milter/b.ts"]],
      ["milter/b.ts", ["milter/c.ts", "manager/leader.ts"]],
      ["milter/c.ts", ["milter/a.ts"]],
      ["manager/leader.ts", []],
    ]);
    expect(findCycles(bad)).toEqual([["milter/a.ts", "milter/b.ts", "milter/c.ts", "milter/a.ts"]]);
    expect(upwardImports(bad)).toEqual(["milter/b.ts -> manager/leader.ts"]);
  });

  test("has no import cycle", () => {
    expect(findCycles(graph).map((c) => c.join(" -> "))).toEqual([]);
  });

  test("has no upward import between layers", () => {
    expect(upwardImports(graph)).toEqual([]);
  });
});
