// smtp-sink: SMTP/LMTP test server compatible with Postfix's smtp-sink.
import { SMTP_SINK_TABLE } from "./options/smtp-sink.ts";
import type { Scanned } from "./options/scan.ts";
import type { Tool } from "./run.ts";
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
  let where;
  try {
    where = await sink.start();
  } catch (e) {
    if (e instanceof SinkError) {
      err(`${PROG}: fatal: ${e.message}\n`);
      return 1;
    }
    throw e;
  }
  // A port chosen by the system must be told; a fixed one is known.
  if (o.listen.kind === "inet" && o.listen.port === 0) writeNow(1, `listening on ${where.hostname}:${where.port}\n`);
  else if (o.verbose) err(`${PROG}: listening on ${o.listen.kind === "unix" ? `unix:${where.path}` : `${where.hostname}:${where.port}`}\n`);
  let stopping = false;
  const stop = () => {
    if (stopping) return;
    stopping = true;
    sink.stop();
    if (o.counters) writeNow(1, "\n");
    if (o.summary) err(sink.summary());
    process.exit(0);
  };
  sink.onExit = stop;
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
  return undefined;
}

const tool: Tool = {
  options: SMTP_SINK_TABLE,
  run: (args) => runSmtpSink(args),
};

export default tool;
