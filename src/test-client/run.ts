/**
 * Running milter-test-client: optional detach (--daemon), logging, optional
 * worker processes (--n-workers), listen, unix socket ownership, pid file,
 * privilege drop (root → nobody unless -u says otherwise), readiness, signals.
 * Start-up failures are one line on stderr (and to a waiting daemon parent)
 * and exit status 1; once listening the process runs until SIGTERM/SIGINT.
 */
import { ListenError } from "../net/listener.ts";
import { formatSpec, parseSpec } from "../net/spec.ts";
import { type MilterServer, type MilterSessionError, serveMilter } from "../milter-side/index.ts";
import { detach, isDaemonChild, notifyFailure, notifyReady, PidFileError, removePidFile, writePidFile } from "../runtime/daemon.ts";
import { Logger } from "../runtime/log.ts";
import { FdWriter } from "../runtime/output.ts";
import { chownTo, dropPrivileges, isRoot, PrivilegeError } from "../runtime/privilege.ts";
import { probeAddress, WORKER_SPEC_ENV, WorkerPool, workerIndex, workersSupported } from "../runtime/workers.ts";
import { createTestClient } from "./client.ts";
import { jsonLine } from "./format.ts";
import type { TestClientConfig } from "./options.ts";

export const PROG = "milter-test-client";

class StartError extends Error {}

function fail(msg: string): number {
  try {
    process.stderr.write(`${PROG}: ${msg}\n`);
  } catch {}
  notifyFailure(msg);
  return 1;
}

/** Run the tool; resolves to an exit status on a start-up failure, or undefined once it serves. */
export async function runTestClient(c: TestClientConfig): Promise<number | undefined> {
  const worker = workerIndex();
  if (c.daemon && !isDaemonChild() && worker === undefined) {
    const r = await detach();
    return r.ok ? 0 : fail(r.message);
  }
  const out = new FdWriter(1, undefined, c.json ? "utf8" : "latin1");
  let logger: Logger;
  try {
    logger = new Logger({
      level: c.logLevel,
      path: c.logPath,
      stdout: out,
      syslog: c.syslog ? { ident: PROG, facility: c.syslogFacility } : undefined,
    });
  } catch (e) {
    return fail(`cannot open log file ${c.logPath}: ${(e as Error).message}`);
  }
  // Root switches to nobody after listening unless told otherwise (as the original does).
  const identity = { user: c.user ?? (isRoot() ? "nobody" : undefined), group: c.group };
  try {
    if (!isRoot() && (c.user !== undefined || c.group !== undefined)) dropPrivileges(identity); // throws the clear error early
    if (c.nWorkers > 0 && worker === undefined) {
      if (workersSupported(c.spec)) return await supervise(c, logger);
      logger.warning(`--n-workers=${c.nWorkers} is ignored for ${formatSpec(c.spec)}: a unix socket cannot be shared by several processes; serving in one process`);
    }
    const spec = worker !== undefined && process.env[WORKER_SPEC_ENV] ? parseSpec(process.env[WORKER_SPEC_ENV]!, { allowPortZero: true }) : c.spec;
    let server!: MilterServer;
    const client = createTestClient(
      { report: c.report, json: c.json, out, logger, memoryProfile: c.memoryProfile ? { detail: process.env.MILTER_MEMORY_PROFILE === "yes" } : undefined },
      () => server?.sessions ?? 0,
    );
    const alsoLog = !c.report || logger.path !== undefined || c.syslog;
    const onError = (e: MilterSessionError) => {
      if (c.report) out.write(c.json ? jsonLine("error", e.sessionId, { kind: e.kind, message: e.message }) : `ERROR: ${e.message}\n`);
      if (alsoLog) logger.error(`[session ${e.sessionId}] [${e.kind}] ${e.message}`);
    };
    try {
      server = await serveMilter(spec, client.factory, {
        onSessionEnd: client.onSessionEnd,
        onError,
        listen: { mode: c.unixSocketMode, group: c.unixSocketGroup, reusePort: worker !== undefined },
      });
    } catch (e) {
      if (e instanceof ListenError) throw new StartError(e.message);
      throw e;
    }
    // Handlers first: whoever reads the pid file may signal at once, and must get a clean stop.
    installSignals(logger, async () => {
      await server.close({ waitMs: 2000 });
      if (c.pidFile && worker === undefined) removePidFile(c.pidFile);
      await out.drain();
      await logger.close();
    });
    if (server.spec.kind === "unix") chownTo(server.spec.path, identity);
    if (c.pidFile && worker === undefined) writePidFile(c.pidFile);
    dropPrivileges(identity);
    logger.info(`listening on ${formatSpec(server.spec)}${worker !== undefined ? ` (worker ${worker})` : ""}`);
    notifyReady();
    return undefined;
  } catch (e) {
    if (e instanceof StartError || e instanceof PrivilegeError || e instanceof PidFileError) {
      await logger.close();
      return fail(e.message);
    }
    throw e;
  }
}

/** --n-workers on TCP: check the address, start the workers, supervise them. */
async function supervise(c: TestClientConfig, logger: Logger): Promise<number | undefined> {
  let bound;
  try {
    bound = await probeAddress(c.spec);
  } catch (e) {
    if (e instanceof ListenError) throw new StartError(e.message);
    throw e;
  }
  const pool = new WorkerPool({ n: c.nWorkers, spec: bound, log: (level, msg) => logger.write(level, msg) });
  try {
    await pool.start();
  } catch (e) {
    throw new StartError((e as Error).message);
  }
  installSignals(logger, async () => {
    await pool.stop();
    if (c.pidFile) removePidFile(c.pidFile);
    await logger.close();
  });
  if (c.pidFile) writePidFile(c.pidFile);
  logger.info(`${c.nWorkers} workers listening on ${formatSpec(bound)}: pids ${pool.pids.join(" ")}`);
  notifyReady();
  return undefined;
}

function installSignals(logger: Logger, shutdown: () => Promise<void>): void {
  let stopping = false;
  const stop = (sig: string) => {
    if (stopping) process.exit(1); // a second signal: leave now
    stopping = true;
    logger.info(`${sig}: shutting down`);
    const hard = setTimeout(() => process.exit(1), 10_000);
    void shutdown().finally(() => {
      clearTimeout(hard);
      process.exit(0);
    });
  };
  process.on("SIGTERM", () => stop("SIGTERM"));
  process.on("SIGINT", () => stop("SIGINT"));
  process.on("SIGUSR1", () => logger.reopen());
  process.on("SIGHUP", () => logger.reopen());
}
