/**
 * milter-test-client's options (docs/tools.md §1.1) turned into a checked
 * configuration; every problem is one OptionError line naming the option.
 */
import type { Scanned } from "../cli/options/scan.ts";
import { type LogLevel, LEVEL_ALL, LEVEL_DEFAULT, LEVEL_NONE, LogLevelError, parseLogLevel } from "../runtime/log.ts";
import { parseFacility, SyslogError } from "../runtime/syslog.ts";
import { MAX_WORKERS } from "../runtime/workers.ts";
import { type ConnectionSpec, parseSpec, SpecError } from "../net/spec.ts";

export class OptionError extends Error {
  override readonly name = "OptionError";
}

export const DEFAULT_SPEC = "inet:10025@[127.0.0.1]";

export interface TestClientConfig {
  spec: ConnectionSpec;
  specText: string;
  logLevel: number;
  logPath: string | undefined;
  syslog: boolean;
  syslogFacility: string;
  daemon: boolean;
  user: string | undefined;
  group: string | undefined;
  unixSocketGroup: string | undefined;
  unixSocketMode: number;
  nWorkers: number;
  eventLoopBackend: "glib" | "libev";
  packetBufferSize: number;
  pidFile: string | undefined;
  maxPendingFinishedSessions: number;
  report: boolean;
  json: boolean;
  memoryProfile: boolean;
}

function str(a: Scanned, k: string): string | undefined {
  return a.last(k);
}

function int(a: Scanned, k: string, min: number, max: number, dflt: number): number {
  const v = str(a, k);
  if (v === undefined) return dflt;
  if (!/^\d+$/.test(v.trim()) || Number(v) < min || Number(v) > max) {
    throw new OptionError(`--${k}: "${v}" is not an integer between ${min} and ${max}`);
  }
  return Number(v);
}

/** The scanned options (src/cli/options/test-client.ts) checked; `env` supplies MILTER_DEFAULT_CONNECTION_SPEC and MILTER_LOG_LEVEL. */
export function testClientConfig(a: Scanned, env: Record<string, string | undefined> = process.env): TestClientConfig {
  const specText = str(a, "connection-spec") ?? env.MILTER_DEFAULT_CONNECTION_SPEC ?? DEFAULT_SPEC;
  let spec: ConnectionSpec;
  try {
    spec = parseSpec(specText, { allowPortZero: true });
  } catch (e) {
    if (e instanceof SpecError) throw new OptionError(e.message);
    throw e;
  }

  let logLevel = LEVEL_DEFAULT;
  const levelText = str(a, "log-level") ?? env.MILTER_LOG_LEVEL;
  if (levelText !== undefined) {
    try {
      logLevel = parseLogLevel(levelText);
    } catch (e) {
      if (e instanceof LogLevelError) throw new OptionError(`--log-level: ${e.message}`);
      throw e;
    }
  }
  if (a.flag("verbose")) logLevel = LEVEL_ALL;
  if (a.flag("quiet")) logLevel = LEVEL_NONE;

  const facility = str(a, "syslog-facility") ?? "mail";
  try {
    parseFacility(facility);
  } catch (e) {
    if (e instanceof SyslogError) throw new OptionError(`--syslog-facility: ${e.message}`);
    throw e;
  }

  const user = pickIdentity(a, "user", "user-id", "user-name");
  const group = pickIdentity(a, "group", "group-id", "group-name");

  const modeText = str(a, "unix-socket-mode");
  let unixSocketMode = 0o660;
  if (modeText !== undefined) {
    if (!/^0?[0-7]{3}$/.test(modeText)) throw new OptionError(`--unix-socket-mode: "${modeText}" is not an octal mode such as 0660`);
    unixSocketMode = parseInt(modeText, 8);
  }

  const backend = str(a, "event-loop-backend") ?? "glib";
  if (backend !== "glib" && backend !== "libev") throw new OptionError(`--event-loop-backend: "${backend}" is not glib or libev`);

  const pidFile = str(a, "pid-file");
  if (pidFile === "") throw new OptionError("--pid-file: empty path");
  const logPath = str(a, "log-path");
  if (logPath === "") throw new OptionError("--log-path: empty path (use - for standard output)");

  return {
    spec,
    specText,
    logLevel,
    logPath: logPath === "-" ? undefined : logPath,
    syslog: a.flag("syslog") === true,
    syslogFacility: facility,
    daemon: a.flag("daemon") === true,
    user,
    group,
    unixSocketGroup: str(a, "unix-socket-group") ?? str(a, "socket-group-name"),
    unixSocketMode,
    nWorkers: int(a, "n-workers", 0, MAX_WORKERS, 0),
    eventLoopBackend: backend,
    packetBufferSize: int(a, "packet-buffer-size", 0, 2 ** 31 - 1, 0),
    pidFile,
    maxPendingFinishedSessions: int(a, "max-pending-finished-sessions", 0, 2 ** 31 - 1, 0),
    report: a.flag("report-request") !== false,
    json: a.flag("json") === true,
    memoryProfile: a.flag("report-memory-profile") === true,
  };
}

/** `--user-name` (a name), else `--user-id` (digits only), else `--user` (name or id). */
function pickIdentity(a: Scanned, both: string, idKey: string, nameKey: string): string | undefined {
  const id = str(a, idKey);
  if (id !== undefined && !/^\d+$/.test(id)) throw new OptionError(`--${idKey}: "${id}" is not a number`);
  const name = str(a, nameKey);
  if (name !== undefined && (name === "" || /^\d+$/.test(name))) throw new OptionError(`--${nameKey}: "${name}" is not a name`);
  const any = str(a, both);
  if (any === "") throw new OptionError(`--${both}: empty value`);
  return name ?? id ?? any;
}

export type { LogLevel };
