// `milterkit manager --config FILE --no-daemon` (from src/main.ts) for the end-to-end tests: a
// JSON configuration with these children, on a unix socket of group postfix and mode 0660 (so
// Postfix's smtpd may connect) or on a loopback TCP port, started and awaited until it listens.
import * as fs from "node:fs";
import * as path from "node:path";
import { makeTempDir } from "./dirs.ts";
import { freePort, waitForPort, waitForUnix } from "./ports.ts";
import { cleanEnv, removeDir, spawnTracked, type Spawned, stopPid, tailFile } from "./proc.ts";

const ROOT = path.join(import.meta.dir, "../../..");
const MAIN = path.join(ROOT, "src/main.ts");

export interface ManagerProcess {
  /** The manager's connection spec (unix:/path or inet:PORT@[127.0.0.1]): a Sendmail X= line, milter-test-server -s. */
  spec: string;
  /** The same in smtpd_milters form. */
  postfixSpec: string;
  /** The unix socket's path, or the TCP port. */
  socket?: string;
  port?: number;
  proc: Spawned;
  log(): string;
  stop(): Promise<void>;
}

export interface ManagerProcessOptions {
  /** The children, in order, as configuration items (name, connection_spec, ...). */
  milters: Record<string, unknown>[];
  transport?: "unix" | "inet";
  /** unix: this path (its directory must exist and be searchable). */
  socket?: string;
  logLevel?: string;
  /** More top-level configuration sections. */
  extra?: Record<string, unknown>;
  waitMs?: number;
}

export async function startManagerProcess(o: ManagerProcessOptions): Promise<ManagerProcess> {
  const base = makeTempDir("mk-e2e-manager-");
  const unix = (o.transport ?? "unix") === "unix";
  const socket = unix ? (o.socket ?? path.join(base, "manager.sock")) : undefined;
  const port = unix ? undefined : await freePort();
  const spec = unix ? `unix:${socket}` : `inet:${port}@[127.0.0.1]`;
  const config = path.join(base, "milterkit.json");
  fs.writeFileSync(
    config,
    JSON.stringify({
      security: { privilege_mode: false },
      log: { level: o.logLevel ?? "all", use_syslog: false },
      // smtpd runs as postfix: it may connect to a 0660 socket of group postfix
      manager: { connection_spec: spec, ...(unix ? { unix_socket_group: "postfix", unix_socket_mode: 0o660 } : {}) },
      milters: o.milters,
      ...o.extra,
    }),
  );
  const proc = spawnTracked([process.execPath, MAIN, "manager", "--config", config, "--no-daemon"], {
    logFile: path.join(base, "manager.log"),
    cwd: ROOT,
    env: cleanEnv({ NO_COLOR: "1" }),
    what: "milterkit manager",
  });
  const wait = { pid: proc.pid, logFile: proc.logFile, what: "milterkit manager" };
  try {
    if (unix) await waitForUnix(socket!, o.waitMs ?? 20_000, wait);
    else await waitForPort("127.0.0.1", port!, o.waitMs ?? 20_000, wait);
  } catch (e) {
    await stopPid(proc.pid, { graceMs: 1000 });
    removeDir(base);
    throw e;
  }
  return {
    spec,
    postfixSpec: unix ? spec : `inet:127.0.0.1:${port}`,
    socket,
    port,
    proc,
    log: () => tailFile(proc.logFile, 1 << 20),
    async stop() {
      await stopPid(proc.pid, { graceMs: 5000 });
      if (socket) fs.rmSync(socket, { force: true });
      removeDir(base);
    },
  };
}
