// smtp-source: Postfix-compatible SMTP/LMTP load generator (same letters,
// defaults, dialogue and stdout), plus pipelining, STARTTLS and a summary.
import { SMTP_SOURCE_TABLE } from "./options/smtp-source.ts";
import type { Scanned } from "./options/scan.ts";
import type { Tool } from "./run.ts";
import { printTo } from "./print.ts";
import { isTerminal } from "../runtime/terminal.ts";
import { OptionError } from "../smtp/values.ts";
import { Progress } from "../smtp/progress.ts";
import { SmtpSource } from "../smtp/source.ts";
import { sourceOptions } from "../smtp/source-options.ts";
import { formatSummary, summaryJson } from "../smtp/stats.ts";

const PROG = "smtp-source";

/** Run smtp-source with its scanned command line; resolves to the exit status. */
export async function runSmtpSource(args: Scanned): Promise<number> {
  const err = (s: string) => printTo(2, s);
  let o;
  try {
    o = sourceOptions(args);
  } catch (e) {
    if (e instanceof OptionError) {
      err(`${PROG}: fatal: ${e.message}\n`);
      return 1;
    }
    throw e;
  }
  let file: Uint8Array | undefined;
  if (o.file !== undefined) {
    try {
      file = (require("node:fs") as typeof import("node:fs")).readFileSync(o.file); // node:fs costs start-up: only with -F
    } catch (e: any) {
      const why = e?.code === "ENOENT" ? "No such file or directory" : e?.code === "EACCES" ? "Permission denied" : e?.message;
      err(`${PROG}: fatal: open ${o.file}: ${why}\n`);
      return 1;
    }
  }
  const source = new SmtpSource(o, { out: (s) => printTo(1, s), err, prog: PROG }, file);
  const showProgress = o.progress ?? (isTerminal(2) && o.verbose === 0 && !o.counter);
  const progress = showProgress ? new Progress(() => source.progress(), 2, printTo) : undefined;
  progress?.start();
  const summary = await source.run();
  progress?.stop();
  // An unreachable target is one line; a run that talked to the server is summarised.
  if (summary.connections > 0 || !summary.fatal) {
    if (o.json) printTo(1, summaryJson(summary) + "\n");
    else if (o.summary) err(formatSummary(summary, PROG));
  }
  return summary.fatal ? 1 : 0;
}

const tool: Tool = {
  options: SMTP_SOURCE_TABLE,
  run: (args) => runSmtpSource(args),
};

export default tool;
