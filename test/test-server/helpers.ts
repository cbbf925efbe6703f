/** Running milter-test-server in-process with captured output. */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { runTestServer, type Io } from "../../src/cli/test-server.ts";
import type { MtaCommand } from "../../src/milter/index.ts";

export const SMALL_EML = join(import.meta.dir, "../fixtures/test-server/small.eml");

export interface Run {
  code: number;
  stdout: string;
  stderr: string;
  /** stdout with the elapsed time replaced by X. */
  out: string;
}

export async function run(argv: string[], opts: { isTty?: boolean; env?: Record<string, string> } = {}): Promise<Run> {
  const out: Buffer[] = [];
  let stderr = "";
  const io: Io = {
    out: (b) => out.push(typeof b === "string" ? Buffer.from(b, "utf8") : Buffer.from(b)),
    err: (s) => (stderr += s),
    readFile: (p) => readFileSync(p),
    env: opts.env ?? {},
    isTty: opts.isTty ?? false,
  };
  const code = await runTestServer(argv, io);
  const stdout = Buffer.concat(out).toString("latin1");
  return { code, stdout, stderr, out: stdout.replace(/^elapsed-time: [0-9.e+-]+ seconds$/m, "elapsed-time: X seconds") };
}

/** Commands as short text: `DC connect helo …`. */
export function types(cmds: MtaCommand[]): string {
  return cmds.map((c) => (c.type === "macro" ? `D${c.command}` : c.type)).join(" ");
}

export function macros(cmds: MtaCommand[], letter: string): Record<string, string> | undefined {
  const d = cmds.find((c) => c.type === "macro" && c.command === letter);
  return d && d.type === "macro" ? Object.fromEntries(d.macros) : undefined;
}
