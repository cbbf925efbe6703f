// Text for the user on stdout/stderr from a tool (help, version, usage errors, smtp-source's
// dialogue and summary). A line goes through console.log/console.error: they write one string as
// it is (no formatting), synchronously, in order with direct writes, and cost nothing to set up;
// the first use of process.stdout/process.stderr makes Bun build Node's stream objects (~8 ms of
// CPU) and node:fs costs ~1 ms to load, more than `--version` itself (bench/startup.bench.ts).
// Text that does not end a line (a progress redraw, smtp-source's -c counter) is written with
// node:fs, loaded then.
import { isTerminal } from "../runtime/terminal.ts";

let fs: typeof import("node:fs") | undefined;

/** Write `text` to fd 1 or 2 now. A failed write (closed descriptor, full non-blocking pipe) is dropped. */
export function printTo(fd: 1 | 2, text: string): void {
  if (text.endsWith("\n")) (fd === 1 ? console.log : console.error)(text.slice(0, -1));
  else {
    try {
      (fs ??= require("node:fs") as typeof import("node:fs")).writeSync(fd, text);
    } catch {}
  }
}

/** Write `text` to stdout. */
export const printOut = (text: string): void => printTo(1, text);
/** Write `text` to stderr. */
export const printErr = (text: string): void => printTo(2, text);

/** The width of the terminal on stdout, or undefined when stdout is not one. */
export function stdoutColumns(): number | undefined {
  return isTerminal(1) ? process.stdout.columns : undefined;
}
