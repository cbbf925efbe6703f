// `milterkit install-links [--postfix-names] DIR`: one symlink per tool name, pointing at this executable.
import { existsSync, lstatSync, mkdirSync, readlinkSync, symlinkSync, unlinkSync } from "node:fs";
import { join, resolve } from "node:path";
import { renderHelp } from "./options/help.ts";
import { INSTALL_LINKS_TABLE } from "./options/install-links.ts";
import { scan, UsageError } from "./options/scan.ts";
import { TOOLS, type ToolName } from "./tools.ts";

/** Tools that carry a name of Postfix's: linked as milterkit-<name> unless `postfixNames`. */
const POSTFIX_NAMED: readonly ToolName[] = ["smtp-source", "smtp-sink"];

/** The link names: milter-manager, ..., and milterkit-smtp-source/-sink (smtp-source/-sink with `postfixNames`). */
export function linkNames(opts: { postfixNames?: boolean } = {}): string[] {
  return (Object.keys(TOOLS) as ToolName[]).map((tool) => linkName(tool, opts));
}

/** The name one tool is installed under: milter-manager, ..., milterkit-smtp-source. */
export function linkName(tool: ToolName, opts: { postfixNames?: boolean } = {}): string {
  const link = TOOLS[tool].link;
  return POSTFIX_NAMED.includes(tool) && !opts.postfixNames ? `milterkit-${link}` : link;
}

/** Create (or refresh) DIR/<tool link> -> target. A non-link file in the way is never replaced. */
export function createLinks(dir: string, target: string, opts: { postfixNames?: boolean } = {}): string[] {
  mkdirSync(dir, { recursive: true });
  const made: string[] = [];
  for (const name of linkNames(opts)) {
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
  const usage = (text: string) => {
    process.stderr.write(`milterkit install-links: ${text}\nTry 'milterkit install-links --help' for more information.\n`);
    return 1;
  };
  let args;
  try {
    args = scan(INSTALL_LINKS_TABLE, argv);
  } catch (e) {
    if (e instanceof UsageError) return usage(e.message);
    throw e;
  }
  if (args.flag("help")) {
    process.stdout.write(renderHelp(INSTALL_LINKS_TABLE));
    return 0;
  }
  if (args.operands.length !== 1) return usage("expects exactly one directory");
  // process.execPath is the compiled binary itself (symlinks resolved); under `bun src/main.ts` it is bun, which cannot dispatch.
  if (!process.execPath.endsWith("milterkit") && basenameIsBun(process.execPath)) {
    process.stderr.write("milterkit install-links: run this from the compiled milterkit binary (bun run build)\n");
    return 1;
  }
  try {
    const made = createLinks(resolve(args.operands[0]), process.execPath, { postfixNames: args.flag("postfix-names") === true });
    for (const p of made) process.stdout.write(`${p} -> ${process.execPath}\n`);
    return 0;
  } catch (e) {
    process.stderr.write(`milterkit install-links: ${(e as Error).message}\n`);
    return 1;
  }
}

function basenameIsBun(p: string): boolean {
  return /(^|\/)bun(\.exe)?$/.test(p);
}
