/**
 * Messages for the person at the terminal (start-up results, refusals), as
 * opposed to the log: consola on stderr, with its fancy reporter on a
 * terminal and one plain `<program>: <message>` line otherwise (scripts,
 * systemd's journal and tests read those). consola is loaded on first use:
 * it costs start-up time (docs/bun.md §4) that a daemon's hot path should not pay.
 */
import { writeNow } from "./output.ts";
import { isTerminal } from "./terminal.ts";

export type HumanLevel = "error" | "warn" | "info" | "success";

export interface HumanOutput {
  error(text: string): void;
  warn(text: string): void;
  info(text: string): void;
  success(text: string): void;
}

function plainLine(program: string, level: HumanLevel, text: string): string {
  const tag = level === "warn" ? "warning: " : "";
  return `${program}: ${tag}${text}\n`;
}

/** Human-facing output for `program` (e.g. `milter-manager`). `fd` defaults to stderr. */
export function humanOutput(program: string, o: { fd?: number; fancy?: boolean } = {}): HumanOutput {
  const fd = o.fd ?? 2;
  const fancy = o.fancy ?? (isTerminal(fd) && !process.env.NO_COLOR);
  const plain = (level: HumanLevel) => (text: string) => writeNow(fd, plainLine(program, level, text));
  if (!fancy) return { error: plain("error"), warn: plain("warn"), info: plain("info"), success: plain("success") };
  const { createConsola } = require("consola") as { createConsola: (o: Record<string, unknown>) => import("consola").ConsolaInstance };
  const stream = fd === 1 ? process.stdout : process.stderr;
  const c = createConsola({ fancy: true, level: 3, stdout: stream, stderr: stream }).withTag(program);
  return {
    error: (t) => c.error(t),
    warn: (t) => c.warn(t),
    info: (t) => c.info(t),
    success: (t) => c.success(t),
  };
}
