/**
 * Logging with milter-manager's levels: a level is a `|`-separated set of
 * items (critical, error, warning, message, info, debug, statistics, profile,
 * plus default = critical|error|warning|message|statistics, all, none).
 * Lines go to stdout (`-` or no path) or a file (reopened on SIGUSR1 by the
 * caller via reopen()), and optionally to syslog.
 *
 * Line format: `[<ISO-8601 UTC time with µs>]: [<level>] message`; statistics
 * lines carry no level tag, as milter-manager prints them:
 *   [2026-11-22T02:21:37.582603Z]: [sessions][finished] 1(+1) 0
 * In syslog the statistics lines are tagged `[statistics]` (what
 * milter-manager-log-analyzer looks for).
 *
 * Every entry is one line of UTF-8 in every sink (log-text.ts escapes line
 * breaks and control characters). `format: "json"` writes one object per
 * line instead. On standard output read by the journal (JOURNAL_STREAM names
 * our stdout) each line starts with its `<N>` syslog priority. In a worker
 * process every line but the statistics lines (kept byte for byte) names the
 * worker and its pid. An identical warning or error of a session (the
 * session tag aside) repeated within the window (60 s) is written once, then once more with the count.
 */
import { fstatSync } from "node:fs";
import { oneLine } from "./log-text.ts";
import { closeFd, FdWriter, logFileWriters, openAppend } from "./output.ts";
import { SEVERITY, type Severity, Syslog } from "./syslog.ts";

export const LOG_LEVELS = ["critical", "error", "warning", "message", "info", "debug", "statistics", "profile"] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

const BIT: Record<LogLevel, number> = {
  critical: 1, error: 2, warning: 4, message: 8, info: 16, debug: 32, statistics: 64, profile: 128,
};
export const LEVEL_ALL = 255;
export const LEVEL_DEFAULT = BIT.critical | BIT.error | BIT.warning | BIT.message | BIT.statistics;
export const LEVEL_NONE = 0;

const SYSLOG_SEVERITY: Record<LogLevel, Severity> = {
  critical: "crit", error: "err", warning: "warning", message: "notice", info: "info", debug: "debug", statistics: "info", profile: "debug",
};

export class LogLevelError extends Error {
  override readonly name = "LogLevelError";
}

/** Parse `default|debug`, `all`, `none`, `error|warning` into a level mask; LogLevelError names the bad item. */
export function parseLogLevel(text: string): number {
  let mask = 0;
  const items = text.split("|").map((s) => s.trim().toLowerCase());
  if (items.every((s) => s === "")) throw new LogLevelError(`empty log level "${text}"`);
  for (const item of items) {
    if (item === "") continue;
    if (item === "all") mask |= LEVEL_ALL;
    else if (item === "default") mask |= LEVEL_DEFAULT;
    else if (item === "none") mask |= LEVEL_NONE;
    else if (item in BIT) mask |= BIT[item as LogLevel];
    else throw new LogLevelError(`unknown log level "${item}" in "${text}" (expected ${["default", "all", "none", ...LOG_LEVELS].join(", ")} joined with |)`);
  }
  return mask;
}

/** Items of a level mask, for messages (`critical|error|…`, `none`, `all`). */
export function formatLogLevel(mask: number): string {
  if (mask === LEVEL_ALL) return "all";
  if (mask === 0) return "none";
  return LOG_LEVELS.filter((l) => mask & BIT[l]).join("|");
}

/** `2026-11-22T02:21:37.582603Z`: UTC with microseconds (performance clock for the sub-ms digits). */
export function isoTimeMicro(epochMs = performance.timeOrigin + performance.now()): string {
  const whole = Math.floor(epochMs);
  const micro = Math.floor((epochMs - whole) * 1000);
  const second = Math.floor(whole / 1000);
  if (second !== isoSecond) {
    // The date and time up to the second change once a second: made then, not for every line.
    isoSecond = second;
    isoPrefix = new Date(second * 1000).toISOString().slice(0, 20); // ...T02:21:37.
  }
  return `${isoPrefix}${pad3(whole - second * 1000)}${pad3(micro)}Z`;
}

let isoSecond = NaN;
let isoPrefix = "";

function pad3(n: number): string {
  return n < 10 ? `00${n}` : n < 100 ? `0${n}` : `${n}`;
}

/** milter-manager's statistics lines (`[sessions][finished] <total>(+<n>) <processing>` and the others). */
export { sessionsFinishedLine } from "./statistics.ts";

export const LOG_FORMATS = ["text", "json"] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];

/**
 * Structured details of an entry (the JSON format writes them as members; the text line already
 * says them). A function is called only when they are written.
 */
export type LogFields = Record<string, unknown> | (() => Record<string, unknown>);

/** True when fd 1 is the stream systemd's journal reads (JOURNAL_STREAM is `<dev>:<inode>` of it). */
export function stdoutIsJournal(env = process.env.JOURNAL_STREAM): boolean {
  if (!env) return false;
  const [dev, ino] = env.split(":");
  try {
    const st = fstatSync(1, { bigint: true });
    return String(st.dev) === dev && String(st.ino) === ino;
  } catch {
    return false;
  }
}

export interface LoggerOptions {
  /** Level mask (parseLogLevel); default LEVEL_DEFAULT. */
  level?: number;
  /** text (default) or json: one object per line. */
  format?: LogFormat;
  /** Worker number of this process (its lines name it and the pid). */
  worker?: number;
  /** `<N>` priority prefixes on standard output; default: when stdout is the journal. */
  journal?: boolean;
  /** Window of the repeated-warning limit, ms (default 60 000); 0 = no limit. */
  repeatWindowMs?: number;
  /** Log file; `-` or undefined = stdout. */
  path?: string;
  /** Also send to syslog with this identity/facility. */
  syslog?: { ident: string; facility?: string | number; path?: string };
  /** Writer to use for stdout (share the tool's stdout writer so lines stay in order). */
  stdout?: FdWriter;
}

/** The session tag that starts what a session logs. */
const SESSION_TAG = /^\[\d+\] /;

interface Repeat {
  count: number;
  timer: Timer;
}

export class Logger {
  level: number;
  format: LogFormat;
  private readonly worker: number | undefined;
  private readonly journal: boolean;
  private readonly repeatWindowMs: number;
  private readonly repeats = new Map<string, Repeat>();
  private _path: string | undefined;
  private out: FdWriter;
  private readonly stdout: FdWriter | undefined;
  private fileFd: number | undefined;
  private syslog: Syslog | undefined;
  private syslogKey = "";

  /** Opens the log file (append) and syslog; throws the fs error for an unusable path. */
  constructor(o: LoggerOptions = {}) {
    this.level = o.level ?? LEVEL_DEFAULT;
    this.format = o.format ?? "text";
    this.worker = o.worker;
    this.journal = o.journal ?? stdoutIsJournal();
    this.repeatWindowMs = o.repeatWindowMs ?? 60_000;
    this._path = o.path === "-" ? undefined : o.path;
    this.stdout = o.stdout;
    if (this._path !== undefined) {
      this.fileFd = openAppend(this._path);
      this.out = new FdWriter(this.fileFd, undefined, "utf8");
    } else {
      this.out = o.stdout ?? new FdWriter(1, undefined, "utf8");
    }
    this.openSyslog(o.syslog);
  }

  /** The log file; undefined = standard output. */
  get path(): string | undefined {
    return this._path;
  }

  private openSyslog(o: LoggerOptions["syslog"]): void {
    this.syslogKey = o ? `${o.ident}\0${o.facility ?? ""}\0${o.path ?? ""}` : "";
    if (!o) return;
    this.syslog = new Syslog(o);
    if (!this.syslog.available) {
      this.write("warning", `syslog unavailable (${this.syslog.failure}); logging to ${this._path ?? "stdout"} only`);
    }
  }

  /**
   * Apply a new level, path and syslog setting (configuration reload). The
   * new log file is opened first: if that fails the old destination stays,
   * the failure is logged there and thrown.
   */
  reconfigure(o: LoggerOptions): void {
    const path = o.path === "-" ? undefined : o.path;
    if (path !== this._path) {
      const fd = path !== undefined ? openAppend(path) : undefined;
      this.out.flush();
      const oldFd = this.fileFd;
      const oldOut = this.out;
      this.fileFd = fd;
      this._path = path;
      if (fd !== undefined) {
        if (oldFd !== undefined) oldOut.fd = fd; // keep the writer (and what it still queues)
        else this.out = new FdWriter(fd, undefined, "utf8");
      } else {
        this.out = this.stdout ?? new FdWriter(1, undefined, "utf8");
      }
      if (oldFd !== undefined) {
        if (fd === undefined) void oldOut.drain().then(() => closeFd(oldFd));
        else closeFd(oldFd);
      }
    }
    const key = o.syslog ? `${o.syslog.ident}\0${o.syslog.facility ?? ""}\0${o.syslog.path ?? ""}` : "";
    if (key !== this.syslogKey) {
      this.syslog?.close();
      this.syslog = undefined;
      this.openSyslog(o.syslog);
    }
    if (o.level !== undefined) this.level = o.level;
    if (o.format !== undefined) this.format = o.format;
  }

  enabled(level: LogLevel): boolean {
    return (this.level & BIT[level]) !== 0;
  }

  /** Which syslog transport is in use, if any. */
  get syslogTransport(): "ffi" | "logger" | undefined {
    return this.syslog?.transport;
  }

  critical(msg: string): void { this.write("critical", msg); }
  error(msg: string): void { this.write("error", msg); }
  warning(msg: string): void { this.write("warning", msg); }
  message(msg: string): void { this.write("message", msg); }
  info(msg: string): void { this.write("info", msg); }
  debug(msg: string): void { this.write("debug", msg); }
  statistics(msg: string): void { this.write("statistics", msg); }
  profile(msg: string): void { this.write("profile", msg); }

  /** Write one entry (if its level is on); `fields` are extra members of the JSON object. */
  write(level: LogLevel, msg: string, fields?: LogFields): void {
    if ((this.level & BIT[level]) === 0) return;
    if (this.repeatWindowMs > 0 && (level === "warning" || level === "error" || level === "critical") && SESSION_TAG.test(msg) && this.repeated(level, msg)) return;
    this.emit(level, msg, fields);
  }

  private emit(level: LogLevel, msg: string, fields?: LogFields): void {
    const time = isoTimeMicro();
    const text = oneLine(msg);
    let line: string;
    if (this.format === "json") {
      const o: Record<string, unknown> = { time, level, message: msg };
      if (this.worker !== undefined) Object.assign(o, { worker: this.worker, pid: process.pid });
      const extra = typeof fields === "function" ? fields() : fields;
      line = `${JSON.stringify(extra ? { ...extra, ...o } : o)}\n`;
    } else {
      const who = this.worker !== undefined && level !== "statistics" ? `[worker ${this.worker}][pid ${process.pid}] ` : "";
      line = `[${time}]: ${level === "statistics" ? "" : `[${level}] `}${who}${text}\n`;
    }
    if (this.journal && this._path === undefined) line = `<${SEVERITY[SYSLOG_SEVERITY[level]]}>${line}`;
    // A shared latin1 writer (a tool's stdout) gets the UTF-8 bytes one char each.
    this.out.write(this.out.encoding === "latin1" && /[^\x00-\x7f]/.test(line) ? Buffer.from(line, "utf8").toString("latin1") : line);
    this.syslog?.log(SYSLOG_SEVERITY[level], `[${level}] ${text}`);
  }

  /**
   * The rate limit, for what sessions say (entries starting with a session tag `[12] `): the first
   * of identical entries (the tag aside) is written; the next ones within the window are counted
   * and summed up in one line when it closes. The daemon's own warnings (start, reload) are rare
   * and each one is news: they are never held back.
   */
  private repeated(level: LogLevel, msg: string): boolean {
    const key = `${level}\0${msg.replace(/^\[\d+\] /, "")}`;
    const r = this.repeats.get(key);
    if (r) {
      r.count++;
      return true;
    }
    const timer = setTimeout(() => {
      const done = this.repeats.get(key);
      this.repeats.delete(key);
      if (done && done.count > 0) this.emit(level, `${msg} (repeated ${done.count} times in ${this.repeatWindowMs / 1000} s)`);
    }, this.repeatWindowMs);
    timer.unref?.();
    this.repeats.set(key, { count: 0, timer });
    return false;
  }

  /** Reopen the log file (log rotation, SIGUSR1). Keeps the old fd if the new open fails and says so. */
  reopen(): void {
    if (this._path === undefined || this.fileFd === undefined) return;
    let fd: number;
    try {
      fd = openAppend(this._path);
    } catch (e) {
      this.error(`cannot reopen log file ${this._path}: ${(e as Error).message}; still writing to the file opened before`);
      return;
    }
    this.out.flush();
    const old = this.fileFd;
    this.fileFd = fd;
    this.out.fd = fd;
    closeFd(old);
  }

  /**
   * Who else can write the open log file (logFileWriters), as a warning line; undefined when no one
   * or on standard output. `owner`: the user we switch to, who may own it too.
   */
  fileWriters(owner?: number): string | undefined {
    if (this.fileFd === undefined || this._path === undefined) return undefined;
    const owners = [...new Set([0, process.geteuid?.() ?? 0, ...(owner !== undefined ? [owner] : [])])];
    return logFileWriters(fstatSync(this.fileFd), this._path, owners);
  }

  async close(): Promise<void> {
    for (const [key, r] of this.repeats) {
      clearTimeout(r.timer);
      const [level, msg] = key.split("\0") as [LogLevel, string];
      if (r.count > 0) this.emit(level, `${msg} (repeated ${r.count} times)`);
    }
    this.repeats.clear();
    await this.out.drain();
    if (this.fileFd !== undefined) closeFd(this.fileFd);
    this.fileFd = undefined;
    this.syslog?.close();
  }

  flush(): void {
    this.out.flush();
  }
}
