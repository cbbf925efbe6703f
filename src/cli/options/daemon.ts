// The options every milter daemon of the toolkit takes (milter-manager's common options, which
// milter-test-client shares): one table for the manager and the test-client. Each tool adds
// its own options and decides what a value means.
import { LOG_LEVELS } from "../../runtime/log.ts";
import { FACILITY_NAMES } from "../../runtime/syslog.ts";
import type { OptionDef, Section } from "./format.ts";

export const DAEMON_SECTIONS: readonly Section[] = [
  { id: "listen", title: "Listening" },
  { id: "log", title: "Logging" },
  { id: "process", title: "Process" },
];

export const DAEMON_OPTIONS: readonly OptionDef[] = [
  {
    long: "connection-spec", short: "s", value: "required", valueName: "SPEC", section: "listen",
    description: "Listen for the MTA on SPEC: unix:PATH, local:PATH, inet:PORT[@HOST], inet6:PORT[@HOST] (HOST may be [ADDRESS])",
  },
  { long: "unix-socket-group", value: "required", valueName: "GROUP", section: "listen", complete: "group", description: "Group of the listening unix socket" },
  { long: "socket-group-name", value: "required", valueName: "GROUP", section: "listen", complete: "group", description: "Deprecated spelling of --unix-socket-group" },
  { long: "unix-socket-mode", value: "required", valueName: "MODE", default: "0660", section: "listen", description: "Octal mode of the listening unix socket" },
  {
    long: "n-workers", value: "required", valueName: "N", default: 0, section: "listen",
    description: "Worker processes sharing the TCP port (SO_REUSEPORT), 0..1000; a unix socket is served by one process",
  },
  {
    long: "event-loop-backend", value: "required", valueName: "BACKEND", choices: ["glib", "libev"], section: "listen",
    description: "glib or libev: accepted for compatibility; Bun's own event loop serves both",
  },
  {
    long: "packet-buffer-size", value: "required", valueName: "SIZE", default: 0, section: "listen",
    description: "Accepted for compatibility: replies are written one protocol step per write",
  },
  {
    long: "max-pending-finished-sessions", value: "required", valueName: "N", default: 0, section: "listen",
    description: "Accepted for compatibility: finished sessions are freed at once",
  },
  {
    long: "log-level", value: "required", valueName: "LEVEL", section: "log",
    choices: ["default", "none", "all", ...LOG_LEVELS],
    description: "Items joined with |: default, none, all, critical, error, warning, message, info, debug, statistics, profile",
  },
  { long: "log-path", value: "required", valueName: "PATH", section: "log", complete: "file", description: "Write the log to PATH; - is standard output (SIGHUP and SIGUSR1 reopen it)" },
  { long: "verbose", short: "v", section: "log", description: "Log everything (--log-level=all)" },
  { long: "quiet", short: "q", section: "log", description: "Log nothing (--log-level=none)" },
  { long: "syslog", negatable: true, section: "log", description: "Also log to syslog (/dev/log)" },
  {
    long: "syslog-facility", value: "required", valueName: "FACILITY", default: "mail", section: "log",
    choices: FACILITY_NAMES,
    description: "Syslog facility: mail, daemon, user, local0..local7, ...",
  },
  { long: "daemon", negatable: true, section: "process", description: "Run in the background (--no-daemon: stay in the foreground)" },
  { long: "user", short: "u", value: "required", valueName: "USER", section: "process", complete: "user", description: "Switch to USER (name or uid) after listening; started as root only" },
  { long: "user-id", value: "required", valueName: "UID", section: "process", description: "Same as --user, numeric uid only" },
  { long: "user-name", value: "required", valueName: "NAME", section: "process", complete: "user", description: "Same as --user, user name only" },
  { long: "group", short: "g", value: "required", valueName: "GROUP", section: "process", complete: "group", description: "Switch to GROUP (name or gid) after listening; started as root only" },
  { long: "group-id", value: "required", valueName: "GID", section: "process", description: "Same as --group, numeric gid only" },
  { long: "group-name", value: "required", valueName: "NAME", section: "process", complete: "group", description: "Same as --group, group name only" },
  { long: "pid-file", value: "required", valueName: "FILE", section: "process", complete: "file", description: "Write the process id to FILE" },
];
