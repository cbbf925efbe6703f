// docs/architecture.md names every file under src/ (one line each, as `src/path/file.ts`), and
// names no file that is gone. A failure says which line to add or remove.
import { expect, test } from "bun:test";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative } from "node:path";

const ROOT = join(import.meta.dir, "../..");
const PAGE = "docs/architecture.md";

function walk(dir: string, out: string[] = []): string[] {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) walk(p, out);
    else out.push(relative(ROOT, p));
  }
  return out;
}

const files = walk(join(ROOT, "src")).sort();
const listed = new Set([...readFileSync(join(ROOT, PAGE), "utf8").matchAll(/`(src\/[^`\s]+\.[A-Za-z0-9.]+)`/g)].map((m) => m[1]));

test(`every file under src/ is named in ${PAGE}`, () => {
  expect(files.length).toBeGreaterThan(0);
  const missing = files.filter((f) => !listed.has(f));
  if (missing.length > 0) {
    throw new Error(
      `${missing.length} file(s) under src/ are not named in ${PAGE}; add one line each under "## Layout", in its folder's list:\n` +
        missing.map((f) => `- \`${f}\`: <what it does, in one line>`).join("\n"),
    );
  }
});

test(`${PAGE} names no file that does not exist`, () => {
  const present = new Set(files);
  const stale = [...listed].filter((f) => !present.has(f)).sort();
  if (stale.length > 0) {
    throw new Error(`${PAGE} names ${stale.length} file(s) that do not exist (moved or deleted); fix or remove these lines:\n${stale.join("\n")}`);
  }
});
