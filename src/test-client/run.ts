/**
 * Running milter-test-client through the service lifecycle (runtime/lifecycle.ts): optional
 * detach (--daemon), logging, optional worker processes (--n-workers), listen, unix socket
 * ownership, pid file, privilege drop (root → nobody unless -u says otherwise), readiness,
 * signals (SIGHUP and SIGUSR1 reopen the log, in the workers too). Start-up failures are one line
 * on stderr (and to a waiting daemon parent) and exit status 1; once listening the process runs
 * until SIGTERM/SIGINT.
 */
import { formatSpec } from "../net/spec.ts";
import { type MilterServer, type MilterSessionError, serveMilter } from "../milter-side/index.ts";
import { runService } from "../runtime/lifecycle.ts";
import { Logger } from "../runtime/log.ts";
import { FdWriter } from "../runtime/output.ts";
import { dropPrivileges, isRoot } from "../runtime/privilege.ts";
import { createTestClient } from "./client.ts";
import { jsonLine } from "./format.ts";
import type { TestClientConfig } from "./options.ts";

export const PROG = "milter-test-client";
/** How long sessions in flight may take to finish after SIGTERM/SIGINT. */
const STOP_GRACE_MS = 2000;

/** Run the tool; resolves to an exit status on a start-up failure, or undefined once it serves. */
export async function runTestClient(c: TestClientConfig): Promise<number | undefined> {
  const out = new FdWriter(1, undefined, c.json ? "utf8" : "latin1");
  let server: MilterServer | undefined;
  const r = await runService({
    prog: PROG,
    daemon: c.daemon,
    openLog: () =>
      new Logger({
        level: c.logLevel,
        path: c.logPath,
        // --json: standard output carries only the JSON events; log lines without a file go to stderr.
        stdout: c.json ? new FdWriter(2, undefined, "utf8") : out,
        syslog: c.syslog ? { ident: PROG, facility: c.syslogFacility } : undefined,
      }),
    logPath: c.logPath,
    identity: { user: c.user, group: c.group },
    rootBecomes: "nobody", // as the original does
    spec: c.spec,
    workers: { n: c.nWorkers, option: "--n-workers" },
    pidFile: c.pidFile,
    graceMs: STOP_GRACE_MS,
    hardExitMs: 10_000,
    lineLevel: "info",
    printFailure: (msg) => {
      try {
        process.stderr.write(`${PROG}: ${msg}\n`);
      } catch {}
    },
    prepare() {
      // Not root: a user or group cannot be switched to; say so before listening.
      if (!isRoot() && (c.user !== undefined || c.group !== undefined)) dropPrivileges({ user: c.user, group: c.group });
    },
    async listen({ spec, reusePort }, ctx) {
      const logger = ctx.log;
      const client = createTestClient(
        { report: c.report, json: c.json, out, logger, memoryProfile: c.memoryProfile ? { detail: process.env.MILTER_MEMORY_PROFILE === "yes" } : undefined },
        () => server?.sessions ?? 0,
      );
      const alsoLog = !c.report || logger.path !== undefined || c.syslog;
      const onError = (e: MilterSessionError) => {
        if (c.report) out.write(c.json ? jsonLine("error", e.sessionId, { kind: e.kind, message: e.message }) : `ERROR: ${e.message}\n`);
        if (alsoLog) logger.error(`[session ${e.sessionId}] [${e.kind}] ${e.message}`);
      };
      server = await serveMilter(spec!, client.factory, {
        onSessionEnd: client.onSessionEnd,
        onError,
        listen: { mode: c.unixSocketMode, group: c.unixSocketGroup, reusePort },
      });
      return { socketPath: server.spec.kind === "unix" ? server.spec.path : undefined, close: (o: { waitMs: number }) => server!.close(o) };
    },
    readyLine: (_ctx, worker) => `listening on ${formatSpec(server!.spec)}${worker}`,
    reload: (ctx) => ctx.reopenLog(), // SIGHUP: the original reopens the log as for SIGUSR1
    stopped: () => out.drain(),
  });
  return typeof r === "number" ? r : undefined;
}
