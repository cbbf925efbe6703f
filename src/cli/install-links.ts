// `milterkit install-links DIR`: one symlink per tool name, pointing at this executable.
import { existsSync, lstatSync, mkdirSync, readlinkSync, symlinkSync, unlinkSync } from "node:fs";
import { join, resolve } from "node:path";
import { TOOLS } from "./tools.ts";

export function linkNames(): string[] {
  return Object.values(TOOLS).map((t) => t.link);
}

/** Create (or refresh) DIR/<tool link> -> target. A non-link file in the way is never replaced. */
export function createLinks(dir: string, target: string): string[] {
  mkdirSync(dir, { recursive: true });
  const made: string[] = [];
  for (const name of linkNames()) {
    const path = join(dir, name);
    if (existsSync(path) || isLink(path)) {
      if (!isLink(path)) throw new Error(`${path} exists and is not a symlink; not replacing it`);
      if (readlinkSync(path) === target) { made.push(path); continue; }
      unlinkSync(path);
    }
    symlinkSync(target, path);
    made.push(path);
  }
  return made;
}

function isLink(path: string): boolean {
  try { return lstatSync(path).isSymbolicLink(); } catch { return false; }
}

export async function installLinks(argv: string[]): Promise<number> {
  if (argv.includes("--help") || argv.includes("-h")) {
    process.stdout.write("USAGE milterkit install-links DIR\n\nCreates the symlinks " + linkNames().join(", ") + " in DIR, pointing at this executable.\n");
    return 0;
  }
  const unknown = argv.find((a) => a.startsWith("-"));
  if (unknown || argv.length !== 1) {
    process.stderr.write(`milterkit install-links: ${unknown ? `unknown option '${unknown}'` : "expects exactly one directory"}\n\nUSAGE milterkit install-links DIR\n`);
    return 1;
  }
  // process.execPath is the compiled binary itself (symlinks resolved); under `bun src/main.ts` it is bun, which cannot dispatch.
  if (!process.execPath.endsWith("milterkit") && basenameIsBun(process.execPath)) {
    process.stderr.write("milterkit install-links: run this from the compiled milterkit binary (bun run build)\n");
    return 1;
  }
  try {
    for (const p of createLinks(resolve(argv[0]), process.execPath)) process.stdout.write(`${p} -> ${process.execPath}\n`);
    return 0;
  } catch (e) {
    process.stderr.write(`milterkit install-links: ${(e as Error).message}\n`);
    return 1;
  }
}

function basenameIsBun(p: string): boolean {
  return /(^|\/)bun(\.exe)?$/.test(p);
}
