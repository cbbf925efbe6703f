// smtp-sink: SMTP/LMTP test server compatible with Postfix's smtp-sink.
import { SMTP_SINK_TABLE } from "./options/smtp-sink.ts";
import type { Scanned } from "./options/scan.ts";
import type { Tool } from "./run.ts";
import { runService, StartError } from "../runtime/lifecycle.ts";
import { writeNow } from "../runtime/output.ts";
import { OptionError } from "../smtp/values.ts";
import { SinkError, SmtpSink } from "../smtp/sink.ts";
import { sinkOptions } from "../smtp/sink-options.ts";

const PROG = "smtp-sink";

/** Start the sink; resolves to an exit status on a start-up error, else undefined (it keeps running). */
export async function runSmtpSink(args: Scanned): Promise<number | undefined> {
  const err = (s: string) => writeNow(2, s);
  let o;
  try {
    o = sinkOptions(args);
  } catch (e) {
    if (e instanceof OptionError) {
      err(`${PROG}: fatal: ${e.message}\n`);
      return 1;
    }
    throw e;
  }
  const sink = new SmtpSink(o, { out: (s) => writeNow(1, s), err, prog: PROG });
  // The service lifecycle (runtime/lifecycle.ts): listen, the unix socket handed to -u's user, the
  // privilege drop, then SIGTERM/SIGINT (or -M/-n) stop it with the summary and exit 0.
  let where: { port?: number; path?: string; hostname?: string } = {};
  const r = await runService({
    prog: PROG,
    identity: { user: o.user },
    graceMs: 0,
    printFailure: (msg) => err(`${PROG}: fatal: ${msg}\n`),
    async listen() {
      try {
        where = await sink.start();
      } catch (e) {
        if (e instanceof SinkError) throw new StartError(e.message);
        throw e;
      }
      return { socketPath: where.path, close: async () => sink.stop() };
    },
    stopped() {
      if (o.counters) writeNow(1, "\n");
      if (o.summary) err(sink.summary());
    },
  });
  if (typeof r === "number") return r;
  sink.onExit = r.stop;
  // A port chosen by the system must be told; a fixed one is known.
  if (o.listen.kind === "inet" && o.listen.port === 0) writeNow(1, `listening on ${where.hostname}:${where.port}\n`);
  else if (o.verbose) err(`${PROG}: listening on ${o.listen.kind === "unix" ? `unix:${where.path}` : `${where.hostname}:${where.port}`}\n`);
  return undefined;
}

const tool: Tool = {
  options: SMTP_SINK_TABLE,
  run: (args) => runSmtpSink(args),
};

export default tool;
