// milter-test-server: play the MTA against one milter (negotiate, connect … end-of-message
// with macros), apply its replies and modifications, report the outcome; or load-test it.
import { defineCommand } from "citty";
import { readFileSync, writeSync } from "node:fs";
import { isatty } from "node:tty";
import { VERSION } from "../version.ts";
import { UsageError } from "./run.ts";
import { MilterClient, type MilterClientOptions } from "../mta-side/index.ts";
import { formatSpec } from "../net/spec.ts";
import { formatLoadSummary, loadSummaryJson, runLoad } from "../test-server/load.ts";
import { MACRO_STAGES, OptionError, parseTestServerArgs, type TestServerOptions } from "../test-server/options.ts";
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

function safeWrite(fd: number, b: string | Uint8Array): void {
  try {
    if (typeof b === "string") writeSync(fd, b);
    else writeSync(fd, b);
  } catch {
    // A closed stdout/stderr must not crash a run.
  }
}

export const processIo: Io = {
  out: (b) => safeWrite(1, b),
  err: (s) => safeWrite(2, s),
  readFile(path) {
    try {
      return readFileSync(path === "-" ? 0 : path);
    } catch (e: any) {
      const why = e?.code === "ENOENT" ? "No such file or directory" : e?.code === "EACCES" ? "Permission denied" : e?.message;
      throw new Error(`${path}: ${why}`);
    }
  },
  env: process.env,
  isTty: isatty(1),
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

/** Run with `argv` (without the program name); resolves to the exit status. */
export async function runTestServer(argv: string[], io: Io = processIo): Promise<number> {
  let o: TestServerOptions;
  try {
    o = parseTestServerArgs(argv, { readFile: io.readFile, env: io.env, isTty: io.isTty });
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

const macro = (stage: string) => ({
  type: "string" as const,
  valueHint: "NAME:VALUE",
  description: `add or override a ${stage} macro (repeatable)`,
});

export default defineCommand({
  meta: {
    name: PROG,
    version: VERSION,
    description:
      "MTA side: negotiate with one milter, send connect … end-of-message with macros, apply its replies and\n" +
      "  modifications and print `status:` and `elapsed-time:` (and with --output-message the resulting message).\n" +
      "  A `stage:` line says which stage and reply produced a status other than pass. Help is -?/--help\n" +
      "  (-h is --header). Load mode: --sessions N [--concurrency C] [--max-time S] prints messages/s and latency\n" +
      "  percentiles. Exit status 0 when every message got a decision (a reject too), 1 on option, connection or\n" +
      "  session errors (timeout, protocol error, closed).",
  },
  args: {
    name: { type: "string", valueHint: "NAME", description: "server name; default {daemon_name} (default milter-test-server)" },
    "connection-spec": { type: "string", alias: "s", valueHint: "SPEC", description: "milter to connect to (default inet:10025@[127.0.0.1] or $MILTER_DEFAULT_CONNECTION_SPEC; /path = unix:/path)" },
    "negotiate-version": { type: "string", valueHint: "VERSION", description: "protocol version offered (default 6)" },
    "connect-host": { type: "string", valueHint: "HOST", description: "host name in the connect command (default mx.example.net)" },
    "connect-address": { type: "string", valueHint: "SPEC", description: "client address in the connect command (default inet:50443@[192.168.123.123])" },
    "helo-fqdn": { type: "string", valueHint: "FQDN", description: "HELO argument (default delian)" },
    "envelope-from": { type: "string", alias: ["f", "from"], valueHint: "FROM", description: "sender, wrapped in <> (default sender@example.com)" },
    "envelope-recipient": { type: "string", alias: ["r", "recipient"], valueHint: "RCPT", description: "add a recipient (repeatable; default receiver@example.org)" },
    header: { type: "string", alias: "h", valueHint: "NAME:VALUE", description: "add a header (repeatable); From:/To: are added when missing" },
    body: { type: "string", alias: "b", valueHint: "CHUNK", description: "one BODY packet, sent as given (repeatable)" },
    unknown: { type: "string", valueHint: "COMMAND", description: "send COMMAND as an unknown SMTP command after the recipients" },
    "authenticated-name": { type: "string", valueHint: "NAME", description: "{auth_authen} at MAIL" },
    "authenticated-type": { type: "string", valueHint: "TYPE", description: "{auth_type} at MAIL" },
    "authenticated-author": { type: "string", valueHint: "AUTHOR", description: "{auth_author} at MAIL" },
    "mail-file": { type: "string", alias: "m", valueHint: "PATH", description: "message file (- = stdin); From:/To: give the envelope where -f/-r do not" },
    "output-message": { type: "boolean", description: "print the resulting envelope, headers and body" },
    color: { type: "string", optionalValue: true, valueHint: "yes|true|no|false|auto", description: "colour +/- lines (bare --color = yes; default auto)" } as any,
    "connection-timeout": { type: "string", valueHint: "SECONDS", description: "connect timeout (default 300)" },
    "reading-timeout": { type: "string", valueHint: "SECONDS", description: "reply timeout, restarted by each byte (default 10)" },
    "writing-timeout": { type: "string", valueHint: "SECONDS", description: "write timeout (default 10)" },
    "end-of-message-timeout": { type: "string", valueHint: "SECONDS", description: "end-of-message reply timeout, restarted by progress (default 300)" },
    "all-timeouts": { type: "string", valueHint: "SECONDS", description: "set all four timeouts" },
    threads: { type: "string", alias: "t", valueHint: "N", description: "run N identical sessions at the same time, each printing its result" },
    verbose: { type: "boolean", alias: "v", description: "trace every packet (decoded and hex) on stderr" },
    "n-messages": { type: "string", valueHint: "N", description: "messages per connection, ABORT between them (default 1)" },
    json: { type: "boolean", description: "print the result (or the load summary) as JSON" },
    sessions: { type: "string", valueHint: "N", description: "load mode: run N complete sessions" },
    concurrency: { type: "string", valueHint: "C", description: "load mode: sessions in flight (default 1)" },
    "max-time": { type: "string", valueHint: "SECONDS", description: "load mode: stop after this long (default 60)" },
    ...Object.fromEntries(MACRO_STAGES.map((s) => [`${s}-macro`, macro(s)])),
  },
  run({ rawArgs }) {
    return runTestServer(rawArgs);
  },
});
