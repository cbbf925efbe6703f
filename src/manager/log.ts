// The manager's log seam. The engine only needs `enabled(level)` and `write(level, text)`; the
// real log is src/runtime/log.ts's Logger (milter-manager's levels and `[<ISO time>]: …` lines,
// statistics lines such as `[session][end][end-of-message][pass][0.0068](1)`, log file or
// standard output, syslog), which has exactly that shape.
import { type LogFields, Logger, type LogLevel as RuntimeLogLevel, parseLogLevel } from "../runtime/log.ts";
import { workerIndex } from "../runtime/workers.ts";
import { resolve } from "node:path";

export type LogLevel = Exclude<RuntimeLogLevel, "profile">;

export interface ManagerLog {
  enabled(level: LogLevel): boolean;
  /** One line; callers check enabled() first when building the text is not free. `fields`: the line's facts for the JSON format. */
  write(level: LogLevel, text: string, fields?: LogFields): void;
}

/** The `log.*` items createLog reads (config/schema.ts LogConfig). */
export interface LogSettings {
  level: string;
  path: string | null;
  use_syslog: boolean;
  syslog_facility: string;
  /** Line format; default text. */
  format?: "text" | "json";
}

/** The Logger settings `log.*` asks for: a relative log.path is taken from the current directory, "-" is stdout. */
export function loggerOptions(config: LogSettings) {
  return {
    level: parseLogLevel(config.level),
    path: config.path && config.path !== "-" ? resolve(config.path) : undefined,
    format: config.format,
    syslog: config.use_syslog ? { ident: "milter-manager", facility: config.syslog_facility } : undefined,
  };
}

/** The log `log.*` asks for (throws the file system's error for an unusable log.path). */
export function createLog(config: LogSettings): Logger {
  return new Logger({ ...loggerOptions(config), worker: workerIndex() });
}

/** A log that drops everything (tests, tools). */
export const SILENT_LOG: ManagerLog = { enabled: () => false, write() {} };
