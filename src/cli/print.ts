// Text for the user on stdout/stderr from the command line (help, version, usage errors).
// console.log/console.error write it as it is (one string is not formatted), synchronously, and
// cost nothing to set up; the first use of process.stdout/process.stderr makes Bun build Node's
// stream objects, ~8 ms of CPU, which is most of the start-up of `--version`
// (bench/startup.bench.ts).
import { isTerminal } from "../runtime/terminal.ts";

function print(log: (s: string) => void, stream: () => NodeJS.WriteStream, text: string): void {
  if (text.endsWith("\n")) log(text.slice(0, -1));
  else stream().write(text);
}

/** Write `text` to stdout. */
export const printOut = (text: string): void => print(console.log, () => process.stdout, text);
/** Write `text` to stderr. */
export const printErr = (text: string): void => print(console.error, () => process.stderr, text);

/** The width of the terminal on stdout, or undefined when stdout is not one. */
export function stdoutColumns(): number | undefined {
  return isTerminal(1) ? process.stdout.columns : undefined;
}
