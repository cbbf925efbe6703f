// Preloaded into a process by bench/manager-alloc.bench.ts: on SIGWINCH (which no tool of ours
// handles) append the JavaScriptCore heap's object counts per type to $MK_HEAP_STATS_OUT as one
// JSON line. The counts include objects not yet collected, so between two GCs the difference of
// two samples is what was allocated.
import { heapStats } from "bun:jsc";
import { appendFileSync } from "node:fs";

const out = process.env.MK_HEAP_STATS_OUT;
if (out) {
  process.on("SIGWINCH", () => {
    const s = heapStats();
    appendFileSync(out, JSON.stringify({ heapSize: s.heapSize, counts: s.objectTypeCounts }) + "\n");
  });
}
