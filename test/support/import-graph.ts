// The relative imports of every .ts file under a folder, read from the text (type-only imports
// included: they tie modules together as much as value imports do), and two checks over them.
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, normalize } from "node:path";

/** file (relative to the root) -> the files it imports (relative to the root). */
export type ImportGraph = Map<string, string[]>;

const SPECIFIER = /(?:\bfrom\s*|\bimport\s*\(\s*|^\s*import\s+)["'](\.{1,2}\/[^"']+)["']/gm;

function stripComments(text: string): string {
  return text.replace(/^\s*\/\*[\s\S]*?\*\//gm, "").replace(/^\s*\/\/.*$/gm, "");
}

export function importGraph(root: string): ImportGraph {
  const graph: ImportGraph = new Map();
  const files = readdirSync(root, { recursive: true, encoding: "utf8" }).filter((f) => f.endsWith(".ts")).sort();
  for (const file of files) {
    const text = stripComments(readFileSync(join(root, file), "utf8"));
    const targets = new Set<string>();
    for (const m of text.matchAll(SPECIFIER)) {
      const target = normalize(join(dirname(file), m[1]));
      if (!target.startsWith("..")) targets.add(target);
    }
    graph.set(file, [...targets].sort());
  }
  return graph;
}

/** Every strongly connected set of more than one file (or a file importing itself), as one path through it. */
export function findCycles(graph: ImportGraph): string[][] {
  // Tarjan's algorithm (recursive: the graph is a few hundred files).
  let next = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const sets: string[][] = [];
  const visit = (v: string): void => {
    index.set(v, next);
    low.set(v, next++);
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) !== index.get(v)) return;
    const set: string[] = [];
    for (let w = stack.pop()!; ; w = stack.pop()!) {
      onStack.delete(w);
      set.push(w);
      if (w === v) break;
    }
    if (set.length > 1 || (graph.get(v) ?? []).includes(v)) sets.push(set.sort());
  };
  for (const v of graph.keys()) if (!index.has(v)) visit(v);
  return sets.map((set) => cyclePath(graph, set));
}

/** A shortest cycle through the first file of `set`, staying inside the set: a, b, …, a. */
function cyclePath(graph: ImportGraph, set: string[]): string[] {
  const inSet = new Set(set);
  const start = set[0];
  const from = new Map<string, string>();
  const queue = [start];
  while (queue.length > 0) {
    const v = queue.shift()!;
    for (const w of graph.get(v) ?? []) {
      if (!inSet.has(w)) continue;
      if (w === start) {
        const path = [v];
        while (path[0] !== start) path.unshift(from.get(path[0])!);
        return [...path, start];
      }
      if (!from.has(w)) {
        from.set(w, v);
        queue.push(w);
      }
    }
  }
  return set;
}

/**
 * The layers of src/, lowest first (docs/architecture.md): a file may import files of its own
 * layer or of lower ones. A folder not listed is its own top layer, so a new folder fails the
 * check until it is placed here.
 */
export const LAYERS: string[][] = [
  ["version.ts"],
  ["milter"],
  // Files made as root in a directory others may write to, handled through their descriptors.
  ["fs"],
  ["net"],
  ["runtime"],
  // The option tables and their scanner: data for every tool's parser, below the tools.
  ["cli/options"],
  ["milter-side", "mta-side", "smtp"],
  // The seams the conditions see of the engine: the hook's types and the log's shape.
  ["manager/stop-hook.ts", "manager/log.ts"],
  // Each condition owns its settings schema; config/ combines them.
  ["manager/conditions"],
  // What is installed on the machine (reads /etc, knows no configuration); config/ makes a layer of it.
  ["manager/detect"],
  ["manager/config"],
  ["manager"],
  // The daemon runs the engine; the engine knows nothing of it.
  ["manager/daemon"],
  ["test-client", "test-server"],
  ["cli"],
  ["main.ts"],
];

function layerOf(file: string): number {
  let best = -1;
  let bestLen = -1;
  LAYERS.forEach((names, i) => {
    for (const n of names) {
      if ((file === n || file.startsWith(`${n}/`)) && n.length > bestLen) {
        best = i;
        bestLen = n.length;
      }
    }
  });
  return best === -1 ? LAYERS.length : best;
}

/** "a.ts -> b.ts" for every import of a file in a higher layer than the importer's. */
export function upwardImports(graph: ImportGraph): string[] {
  const out: string[] = [];
  for (const [file, targets] of graph) {
    for (const t of targets) if (layerOf(t) > layerOf(file)) out.push(`${file} -> ${t}`);
  }
  return out;
}
