// milter-test-server: play the MTA against one milter (negotiate, connect … end-of-message
// with macros), apply its replies and modifications, report the outcome; or load-test it.
import { readFileSync } from "node:fs";
import { writeNow } from "../runtime/output.ts";
import { isTerminal } from "../runtime/terminal.ts";
import { TEST_SERVER_TABLE } from "./options/test-server.ts";
import type { Scanned } from "./options/scan.ts";
import { type Tool, UsageError } from "./run.ts";
import { MilterClient, type MilterClientOptions } from "../mta-side/index.ts";
import { formatSpec } from "../net/spec.ts";
import { formatLoadSummary, loadSummaryJson, runLoad } from "../test-server/load.ts";
import { OptionError, parseTestServerArgs, testServerOptions, type TestServerOptions } from "../test-server/options.ts";
import { buildPlan, type SessionPlan } from "../test-server/plan.ts";
import { renderSession, sessionJson } from "../test-server/render.ts";
import { runSession, type SessionResult } from "../test-server/session.ts";
import { makeTracer } from "../test-server/trace.ts";

const PROG = "milter-test-server";

export interface Io {
  out(b: string | Uint8Array): void;
  err(s: string): void;
  readFile(path: string): Uint8Array;
  env: Record<string, string | undefined>;
  isTty: boolean;
}

export const processIo: Io = {
  out: (b) => writeNow(1, b),
  err: (s) => writeNow(2, s),
  readFile(path) {
    try {
      return readFileSync(path === "-" ? 0 : path);
    } catch (e: any) {
      const why = e?.code === "ENOENT" ? "No such file or directory" : e?.code === "EACCES" ? "Permission denied" : e?.message;
      throw new Error(`${path}: ${why}`);
    }
  },
  env: process.env,
  isTty: isTerminal(1),
};

function clientOptions(o: TestServerOptions, io: Io, prefix = ""): MilterClientOptions {
  return {
    spec: o.spec,
    connectionTimeoutMs: o.timeouts.connectionMs,
    writingTimeoutMs: o.timeouts.writingMs,
    readingTimeoutMs: o.timeouts.readingMs,
    endOfMessageTimeoutMs: o.timeouts.endOfMessageMs,
    offer: { version: o.negotiateVersion },
    ...(o.verbose ? { trace: makeTracer((l) => io.err(l), prefix) } : {}),
  };
}

/** A session that never got a milter to talk to: only the error message, as the original. */
function connectionFailed(r: SessionResult): boolean {
  const f = r.failure;
  return !r.connected && f !== undefined && (f.status === "connection-error" || f.timer === "connection");
}

async function runOne(o: TestServerOptions, plan: SessionPlan, io: Io, index: number): Promise<number> {
  const r = await runSession({ plan, client: new MilterClient(clientOptions(o, io, o.threads > 1 ? `[${index}] ` : "")) });
  if (o.json) {
    io.out(JSON.stringify(sessionJson(r, formatSpec(o.spec))) + "\n");
    return r.failure ? 1 : 0;
  }
  if (connectionFailed(r)) {
    io.err(`${r.failure!.detail}\n`);
    return 1;
  }
  if (!r.connected) {
    io.err(`${PROG}: ${r.failure!.stage}: ${r.failure!.status}${r.failure!.timer ? ` (${r.failure!.timer})` : ""}: ${r.failure!.detail}\n`);
    return 1;
  }
  if (r.failure) io.err(`${PROG}: ${r.failure.stage}: ${r.failure.status}${r.failure.timer ? ` (${r.failure.timer})` : ""}: ${r.failure.detail}\n`);
  io.out(renderSession(r, { outputMessage: o.outputMessage, color: o.color }));
  return r.failure ? 1 : 0;
}

/** Run with `argv` (without the program name), or its scan; resolves to the exit status. */
export async function runTestServer(argv: string[] | Scanned, io: Io = processIo): Promise<number> {
  let o: TestServerOptions;
  try {
    const ctx = { readFile: io.readFile, env: io.env, isTty: io.isTty };
    o = Array.isArray(argv) ? parseTestServerArgs(argv, ctx) : testServerOptions(argv, ctx);
  } catch (e) {
    if (e instanceof OptionError) throw new UsageError(e.message);
    throw e;
  }
  const plan = buildPlan(o);
  if (o.sessions !== undefined) {
    const summary = await runLoad({ plan, client: { ...clientOptions(o, io), trace: undefined }, sessions: o.sessions, concurrency: o.concurrency, maxTimeMs: o.maxTimeMs });
    io.out(o.json ? loadSummaryJson(summary) + "\n" : formatLoadSummary(summary));
    return summary.failed > 0 || summary.timeLimitReached ? 1 : 0;
  }
  const n = Math.max(1, o.threads);
  const codes = await Promise.all(Array.from({ length: n }, (_, i) => runOne(o, plan, io, i + 1)));
  return codes.some((c) => c !== 0) ? 1 : 0;
}

const tool: Tool = {
  options: TEST_SERVER_TABLE,
  run: (args) => runTestServer(args),
};

export default tool;
