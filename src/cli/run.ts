// Runs one tool: scans argv with the tool's option table, answers --help and --version, and
// hands the scanned options to the tool. A misspelt or bad option is one line on stderr plus
// where to find help, and exit status 1 (as Postfix's and GLib's tools do).
import { renderHelp, helpWidth } from "./options/help.ts";
import { printErr, printOut, stdoutColumns } from "./print.ts";
import type { ToolOptions } from "./options/format.ts";
import { type Scanned, scan, UsageError } from "./options/scan.ts";
import { VERSION } from "../version.ts";

export { UsageError };

/** What a tool's run() returns: an exit code, or undefined for a server that keeps running. */
export type ToolResult = number | undefined | void;

export interface Tool {
  options: ToolOptions;
  /** --version prints the bare number (milter-test-client, as the original). */
  bareVersion?: boolean;
  /** Called once --help and --version are answered; a UsageError thrown here is reported like a misspelt option. */
  run(args: Scanned): Promise<ToolResult> | ToolResult;
}

/** The options that ask for --help: --help, -?, and GLib's --help-all and --help-milter. */
const HELP = new Set(["help", "help-all", "help-milter"]);

/** `invokedAs` is how the user called the tool (milter-manager, milterkit manager), for the help hint. */
export async function runTool(tool: Tool, argv: string[], invokedAs = tool.options.prog): Promise<ToolResult> {
  const { prog } = tool.options;
  const usageError = (e: UsageError) => {
    printErr(`${prog}: ${e.message}\nTry '${invokedAs} --help' for more information.\n`);
    return 1;
  };
  let args: Scanned;
  try {
    args = scan(tool.options, argv);
  } catch (e) {
    if (e instanceof UsageError) return usageError(e);
    throw e;
  }
  if (args.occurrences.some((o) => HELP.has(o.def.long) && !o.negated)) {
    printOut(renderHelp(tool.options, helpWidth(stdoutColumns())));
    return 0;
  }
  if (args.flag("version")) {
    printOut(tool.bareVersion ? `${VERSION}\n` : `${prog} ${VERSION}\n`);
    return 0;
  }
  try {
    return await tool.run(args);
  } catch (e) {
    if (e instanceof UsageError) return usageError(e);
    throw e;
  }
}
