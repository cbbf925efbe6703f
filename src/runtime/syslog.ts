/**
 * Syslog without dependencies: RFC 3164 datagrams to the local syslog socket
 * (/dev/log) through libc via bun:ffi (datagram.ts). Non-blocking: a full receiver drops the message (counted)
 * instead of stalling the event loop. Fallback when FFI is unavailable: one
 * long-lived `logger` child; when that fails too, messages go nowhere and
 * `available` is false (the caller logs to stderr instead).
 */
import { existsSync } from "node:fs";
import { unixDatagram } from "./datagram.ts";

/** Every syslog facility name, in the order of their numbers (syslog.h); the one list the tools accept. */
export const FACILITY_NAMES = [
  "kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron", "authpriv", "ftp",
  "local0", "local1", "local2", "local3", "local4", "local5", "local6", "local7",
] as const;
export type FacilityName = (typeof FACILITY_NAMES)[number];

/** Facility names → numbers (syslog.h): 0..11, then local0..local7 are 16..23. */
export const FACILITIES: Readonly<Record<string, number>> = Object.fromEntries(FACILITY_NAMES.map((n, i) => [n, i < 12 ? i : i + 4]));

/** Severities (syslog.h). */
export const SEVERITY = { emerg: 0, alert: 1, crit: 2, err: 3, warning: 4, notice: 5, info: 6, debug: 7 } as const;
export type Severity = keyof typeof SEVERITY;

export class SyslogError extends Error {
  override readonly name = "SyslogError";
}

export function parseFacility(name: string): number {
  const f = FACILITIES[name.toLowerCase()];
  if (f === undefined) throw new SyslogError(`unknown syslog facility "${name}" (expected one of ${Object.keys(FACILITIES).join(", ")})`);
  return f;
}

const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/** `<PRI>Mmm dd hh:mm:ss ident[pid]: message` (RFC 3164, local time). */
export function formatRfc3164(facility: number, severity: number, ident: string, message: string, date = new Date(), pid = process.pid): string {
  const p2 = (n: number) => String(n).padStart(2, "0");
  const stamp = `${MONTHS[date.getMonth()]} ${String(date.getDate()).padStart(2, " ")} ${p2(date.getHours())}:${p2(date.getMinutes())}:${p2(date.getSeconds())}`;
  return `<${facility * 8 + severity}>${stamp} ${ident}[${pid}]: ${message}`;
}

interface Transport {
  send(datagram: Buffer): boolean;
  close(): void;
}

/** libc datagrams (datagram.ts); a receiver that went away (syslogd restarted) gets one reconnect. */
function ffiTransport(path: string): Transport {
  try {
    return unixDatagram(path, { reconnect: true });
  } catch (e) {
    throw new SyslogError((e as Error).message);
  }
}

/** util-linux `logger` as one child reading `<PRI>message` lines. */
function loggerTransport(path: string, ident: string): Transport {
  const child = Bun.spawn(["logger", "--socket", path, "--rfc3164", "-t", ident, `--id=${process.pid}`, "--prio-prefix"], {
    stdin: "pipe",
    stdout: "ignore",
    stderr: "ignore",
  });
  child.unref();
  return {
    send(datagram) {
      // The datagram is "<PRI>stamp ident[pid]: msg"; logger adds its own stamp and tag.
      const text = datagram.toString("utf8");
      const m = /^<(\d+)>\w{3} [ \d]\d \d\d:\d\d:\d\d [^:]*: (.*)$/s.exec(text);
      try {
        child.stdin.write(m ? `<${m[1]}>${m[2].replace(/\n/g, " ")}\n` : `${text.replace(/\n/g, " ")}\n`);
        return true;
      } catch {
        return false;
      }
    },
    close() {
      try {
        child.stdin.end();
      } catch {}
    },
  };
}

export interface SyslogOptions {
  ident: string;
  /** Facility name or number (default mail). */
  facility?: string | number;
  /** Socket path (default $MILTERKIT_SYSLOG_SOCKET or /dev/log). */
  path?: string;
}

export class Syslog {
  readonly ident: string;
  readonly facility: number;
  readonly path: string;
  /** "ffi", "logger", or undefined when no transport could be opened. */
  readonly transport: "ffi" | "logger" | undefined;
  /** Messages that could not be sent (receiver full or gone). */
  dropped = 0;
  /** Why the transport could not be opened (when `transport` is undefined). */
  readonly failure: string | undefined;
  private t: Transport | undefined;

  constructor(o: SyslogOptions) {
    this.ident = o.ident;
    this.facility = typeof o.facility === "number" ? o.facility : parseFacility(o.facility ?? "mail");
    this.path = o.path ?? process.env.MILTERKIT_SYSLOG_SOCKET ?? "/dev/log";
    let failure: string | undefined;
    try {
      this.t = ffiTransport(this.path);
      this.transport = "ffi";
    } catch (e) {
      failure = (e as Error).message;
      if (existsSync(this.path)) {
        try {
          this.t = loggerTransport(this.path, this.ident);
          this.transport = "logger";
          failure = undefined;
        } catch (e2) {
          failure = `${failure}; logger: ${(e2 as Error).message}`;
        }
      }
    }
    this.failure = failure;
  }

  get available(): boolean {
    return this.t !== undefined;
  }

  log(severity: Severity | number, message: string): boolean {
    if (!this.t) return false;
    const sev = typeof severity === "number" ? severity : SEVERITY[severity];
    const ok = this.t.send(Buffer.from(formatRfc3164(this.facility, sev, this.ident, message), "utf8"));
    if (!ok) this.dropped++;
    return ok;
  }

  close(): void {
    this.t?.close();
    this.t = undefined;
  }
}
