// Every `§` citation in src/, test/ and bench/ names a page of docs/ and a section that page has:
// `manager.md §2.9`, `docs/protocol.md §3.3`, lists such as `manager.md §2.2, §2.8` or ranges such
// as `protocol.md §2–§6`. A `§` without a page name before it is refused (say which page), except
// after an RFC number (`RFC 5321 §4.2`). Inside docs/, a bare `§N` means the page itself.
// Every page named at all (`postfix-bench.md`) must exist in docs/.
import { describe, expect, test } from "bun:test";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { basename, join, relative } from "node:path";

const ROOT = join(import.meta.dir, "../..");
const DOCS = join(ROOT, "docs");
const SCANNED = ["src", "test", "bench"];
const TEXT = /\.(ts|js|mjs|cjs|c|h|py|sh|md|txt|toml|json|conf)$/;

const SEC = String.raw`\d+[a-z]?(?:\.\d+)*`;
/** `name.md §N` followed by more `§N` joined with `,` `;` `/` `+` `–` `-` `and` `or` (and brackets). */
const GROUP = new RegExp(
  String.raw`([A-Za-z0-9_-]+\.md)\`?\s*§\s*(${SEC})((?:\s*\(?\s*(?:[,;/+–—-]|\band\b|\bor\b)?\s*\(?\s*§\s*${SEC})*)`,
  "g",
);
const MORE = new RegExp(String.raw`§\s*(${SEC})`, "g");
const RFC = new RegExp(String.raw`RFC\s*\d+\s*§\s*${SEC}`, "g");
const BARE = new RegExp(String.raw`§\s*(${SEC})`, "g");

interface Citation {
  where: string; // file:line
  page: string; // e.g. manager.md
  section: string;
}

function walk(dir: string, out: string[] = []): string[] {
  for (const name of readdirSync(dir)) {
    if (name === "node_modules" || name.startsWith(".")) continue;
    const p = join(dir, name);
    const st = statSync(p);
    if (st.isDirectory()) walk(p, out);
    else if (TEXT.test(name) && st.size < 2_000_000) out.push(p);
  }
  return out;
}

function lineOf(text: string, index: number): number {
  let n = 1;
  for (let i = text.indexOf("\n"); i !== -1 && i < index; i = text.indexOf("\n", i + 1)) n++;
  return n;
}

/** The citations of one file, and the `§` that no page name claims (bare). */
function findCitations(text: string, file: string): { cited: Citation[]; bare: Citation[] } {
  const cited: Citation[] = [];
  const claimed = new Set<number>(); // index of every `§` that belongs to a citation
  for (const m of text.matchAll(GROUP)) {
    const page = m[1];
    const start = m.index!;
    const group = m[0];
    for (const s of group.matchAll(MORE)) {
      claimed.add(start + s.index!);
      cited.push({ where: `${file}:${lineOf(text, start + s.index!)}`, page, section: s[1] });
    }
  }
  for (const m of text.matchAll(RFC)) claimed.add(m.index! + m[0].indexOf("§"));
  const bare: Citation[] = [];
  for (const m of text.matchAll(BARE)) {
    if (claimed.has(m.index!)) continue;
    bare.push({ where: `${file}:${lineOf(text, m.index!)}`, page: "", section: m[1] });
  }
  return { cited, bare };
}

/** Section numbers of a docs page: headings such as `## 2. Title`, `### 2.5.3 Title`, `### 1e. Title`. */
function sectionsOf(page: string): Set<string> | undefined {
  const path = join(DOCS, page);
  if (!existsSync(path)) return undefined;
  const out = new Set<string>();
  for (const line of readFileSync(path, "utf8").split("\n")) {
    const m = new RegExp(String.raw`^#{1,6}\s+(${SEC})(?:[.:)]|\s|$)`).exec(line);
    if (m) out.add(m[1]);
  }
  return out;
}

function unresolved(citations: Citation[]): string[] {
  const problems: string[] = [];
  for (const c of citations) {
    const sections = sectionsOf(c.page);
    if (sections === undefined) problems.push(`${c.where}: cites ${c.page} §${c.section}, but docs/${c.page} does not exist`);
    else if (!sections.has(c.section)) problems.push(`${c.where}: cites ${c.page} §${c.section}, but docs/${c.page} has no heading numbered ${c.section}`);
  }
  return problems;
}

describe("§ citations", () => {
  test("the parser: pages, lists, ranges, bare and RFC citations", () => {
    const text = [
      "// one (manager.md §2.2, §2.8) and docs/protocol.md §2–§6, `bun.md` §1e",
      "// bare §2.4 here; RFC 5321 §4.2 is fine; tools.md §1.5.",
      "// manager.md §2.13 \"Basic flow\" (+ §2.5.3)",
    ].join("\n");
    const { cited, bare } = findCitations(text, "x.ts");
    expect(cited.map((c) => `${c.page} ${c.section}`)).toEqual([
      "manager.md 2.2", "manager.md 2.8", "protocol.md 2", "protocol.md 6", "bun.md 1e", "tools.md 1.5", "manager.md 2.13",
    ]);
    expect(bare.map((c) => `${c.where} ${c.section}`)).toEqual(["x.ts:2 2.4", "x.ts:3 2.5.3"]);
  });

  // This file is left out: its examples are there to be wrong.
  const files = SCANNED.flatMap((d) => walk(join(ROOT, d))).filter((f) => f !== import.meta.path);
  const all = files.map((f) => ({ file: relative(ROOT, f), ...findCitations(readFileSync(f, "utf8"), relative(ROOT, f)) }));

  test("every citation in src/, test/ and bench/ names a section docs/ has", () => {
    const cited = all.flatMap((f) => f.cited);
    expect(cited.length).toBeGreaterThan(50);
    const problems = unresolved(cited);
    if (problems.length > 0) throw new Error(`${problems.length} citation(s) do not resolve:\n${problems.join("\n")}`);
  });

  test("no bare § in src/, test/ and bench/: each names its page (manager.md §2.8, not §2.8)", () => {
    const bare = all.flatMap((f) => f.bare);
    if (bare.length > 0) {
      throw new Error(`${bare.length} bare § citation(s); write the page before it (e.g. manager.md §N):\n${bare.map((b) => `${b.where}: §${b.section}`).join("\n")}`);
    }
  });

  test("every page named in src/, test/ and bench/ (`tools.md`, `docs/api/runtime.md`) is in docs/ (or README.md at the top)", () => {
    const problems: string[] = [];
    for (const f of files) {
      const text = readFileSync(f, "utf8");
      for (const m of text.matchAll(/(?<![\w./-])((?:docs\/)?(?:api\/)?[A-Za-z0-9_-]+\.md)\b/g)) {
        const inDocs = existsSync(join(DOCS, m[1].replace(/^docs\//, "")));
        const atRoot = !m[1].includes("/") && existsSync(join(ROOT, m[1])); // README.md
        if (!inDocs && !atRoot) problems.push(`${relative(ROOT, f)}:${lineOf(text, m.index!)}: names ${m[1]}, which is not in docs/`);
      }
    }
    if (problems.length > 0) throw new Error(problems.join("\n"));
  });

  test("the pages of docs/ resolve their own citations (bare § = the same page)", () => {
    const problems: string[] = [];
    for (const name of readdirSync(DOCS).filter((n) => n.endsWith(".md"))) {
      const { cited, bare } = findCitations(readFileSync(join(DOCS, name), "utf8"), `docs/${name}`);
      problems.push(...unresolved(cited), ...unresolved(bare.map((b) => ({ ...b, page: basename(name) }))));
    }
    if (problems.length > 0) throw new Error(problems.join("\n"));
  });
});
