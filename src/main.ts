#!/usr/bin/env bun
// Entry point of the multicall binary: the tool comes from argv[0] (a symlink
// such as milter-manager) or from the first argument (milterkit manager ...).
import { basename } from "node:path";
import { helpWidth, wrap } from "./cli/options/help.ts";
import { printErr, printOut, stdoutColumns } from "./cli/print.ts";
import { runTool, type ToolResult } from "./cli/run.ts";
import { TOOLS, type ToolName, toolFromName } from "./cli/tools.ts";
import { VERSION } from "./version.ts";

/** The tool list needs every option table (their summaries): loaded only here, not at start. */
async function mainUsage(): Promise<string> {
  const { OPTION_TABLES } = await import("./cli/options/index.ts");
  const width = helpWidth(stdoutColumns());
  const entry = (name: string, text: string) => {
    const lines = wrap(text, width, 20);
    lines[0] = `  ${name}`.padEnd(20) + lines[0].trimStart();
    return lines;
  };
  const lines = [
    ...wrap(`milterkit ${VERSION}: milter toolkit (milter manager, test client and server, smtp-source, smtp-sink)`, width, 0),
    "",
    "USAGE milterkit TOOL [OPTIONS]   or through a symlink named after the tool",
    "",
    "TOOLS",
    ...Object.entries(TOOLS).flatMap(([t, d]) => entry(t, `(${d.link}) ${OPTION_TABLES[t].summary}`)),
    ...entry("install-links", "install-links [--postfix-names] DIR: create the tool symlinks in DIR (milterkit-smtp-source/-sink unless --postfix-names)"),
    "",
    "Use milterkit TOOL --help for the options of a tool.",
  ];
  return lines.join("\n");
}

async function installLinks(argv: string[]): Promise<number> {
  const { installLinks } = await import("./cli/install-links.ts");
  return installLinks(argv);
}

export async function main(argv0: string, argv: string[]): Promise<ToolResult> {
  const byName = toolFromName(basename(argv0));
  if (byName) return runTool(await TOOLS[byName].load(), argv, basename(argv0));
  const [first, ...rest] = argv;
  if (first === undefined || first === "--help" || first === "-h" || first === "help") {
    printOut(await mainUsage() + "\n");
    return first === undefined ? 1 : 0;
  }
  if (first === "--version" || first === "-v") {
    printOut(`milterkit ${VERSION}\n`);
    return 0;
  }
  const tool = first === "install-links" || first in TOOLS ? first : toolFromName(first);
  if (!tool) {
    printErr(`milterkit: unknown tool '${first}'\n\n${await mainUsage()}\n`);
    return 1;
  }
  return dispatch(tool, first, rest);
}

/**
 * citty picks the sub-command; each tool then scans its own arguments with its option table
 * (src/cli/options/). citty drops a sub-command's return value, so the exit code travels
 * through `result`. citty is loaded here, not at start: its node:util costs a resident manager
 * started through its link (the systemd unit) ~1 MB (bench/idle-memory.bench.ts).
 */
async function dispatch(tool: string, invokedAs: string, rest: string[]): Promise<ToolResult> {
  const { defineCommand, runCommand } = await import("citty");
  let result: ToolResult;
  const sub = (run: (argv: string[]) => Promise<ToolResult>) =>
    defineCommand({ run: async ({ rawArgs }) => { result = await run(rawArgs); } });
  const subCommands: Record<string, ReturnType<typeof sub>> = {
    "install-links": sub(installLinks),
  };
  for (const name of Object.keys(TOOLS) as ToolName[]) {
    subCommands[name] = sub(async (argv) => runTool(await TOOLS[name].load(), argv, `milterkit ${invokedAs}`));
  }
  await runCommand(defineCommand({ meta: { name: "milterkit", version: VERSION }, subCommands }), { rawArgs: [tool, ...rest] });
  return result;
}

if (import.meta.main) {
  // The manager's root helper that starts child milters (src/manager/launcher.ts), whatever argv says.
  const code = process.env.MILTERKIT_LAUNCHER === "1"
    ? await (await import("./manager/daemon/launcher.ts")).runLauncherProcess()
    : await main(process.argv0, process.argv.slice(2));
  if (typeof code === "number") process.exit(code);
}
