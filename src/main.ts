#!/usr/bin/env bun
// Entry point of the multicall binary: the tool comes from argv[0] (a symlink
// such as milter-manager) or from the first argument (milterkit manager ...).
import { basename } from "node:path";
import { runTool, type ToolResult } from "./cli/run.ts";
import { TOOLS, type ToolName, toolFromName } from "./cli/tools.ts";
import { VERSION } from "./version.ts";

function mainUsage(): string {
  const width = Math.max(...Object.keys(TOOLS).map((t) => t.length), "install-links".length);
  const lines = [
    `milterkit ${VERSION}: milter toolkit (milter manager, test client and server, smtp-source, smtp-sink)`,
    "",
    "USAGE milterkit <tool> [OPTIONS]   or through a symlink named after the tool",
    "",
    "TOOLS",
    ...Object.entries(TOOLS).map(([t, d]) => `  ${t.padEnd(width)}  (${d.link}) ${d.summary}`),
    `  ${"install-links".padEnd(width)}  install-links DIR: create the tool symlinks in DIR`,
    "",
    "Use milterkit <tool> --help for the options of a tool.",
  ];
  return lines.join("\n");
}

async function installLinks(argv: string[]): Promise<number> {
  const { installLinks } = await import("./cli/install-links.ts");
  return installLinks(argv);
}

export async function main(argv0: string, argv: string[]): Promise<ToolResult> {
  const byName = toolFromName(basename(argv0));
  if (byName) return runTool(await TOOLS[byName].load(), argv);
  const [first, ...rest] = argv;
  if (first === undefined || first === "--help" || first === "-h" || first === "help") {
    process.stdout.write(mainUsage() + "\n");
    return first === undefined ? 1 : 0;
  }
  if (first === "--version" || first === "-v") {
    process.stdout.write(`milterkit ${VERSION}\n`);
    return 0;
  }
  if (first === "install-links") return installLinks(rest);
  const tool = (first in TOOLS ? first : toolFromName(first)) as ToolName | undefined;
  if (!tool) {
    process.stderr.write(`milterkit: unknown tool '${first}'\n\n${mainUsage()}\n`);
    return 1;
  }
  return runTool(await TOOLS[tool].load(), rest);
}

if (import.meta.main) {
  // The manager's root helper that starts child milters (src/manager/launcher.ts), whatever argv says.
  const code = process.env.MILTERKIT_LAUNCHER === "1"
    ? await (await import("./manager/launcher.ts")).runLauncherProcess()
    : await main(process.argv0, process.argv.slice(2));
  if (typeof code === "number") process.exit(code);
}
