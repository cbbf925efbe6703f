// milter-manager's options: the shared daemon options, each overriding a configuration item,
// then the manager's own (configuration source, --show-config).
import { DAEMON_OPTIONS, DAEMON_SECTIONS } from "./daemon.ts";
import { HELP_SECTION, helpOptions, type OptionDef, type ToolOptions } from "./format.ts";

/** The configuration item each daemon option overrides. */
const ITEMS: Record<string, string> = {
  "connection-spec": "manager.connection_spec",
  "unix-socket-group": "manager.unix_socket_group",
  "socket-group-name": "manager.unix_socket_group",
  "unix-socket-mode": "manager.unix_socket_mode",
  "n-workers": "manager.n_workers",
  "event-loop-backend": "manager.event_loop_backend",
  "packet-buffer-size": "manager.packet_buffer_size",
  "max-pending-finished-sessions": "manager.max_pending_finished_sessions",
  "log-level": "log.level",
  "log-path": "log.path",
  "verbose": "log.level = all",
  "quiet": "log.level = none",
  "syslog": "log.use_syslog",
  "syslog-facility": "log.syslog_facility",
  "daemon": "manager.daemon",
  "user": "security.effective_user",
  "user-id": "security.effective_user",
  "user-name": "security.effective_user",
  "group": "security.effective_group",
  "group-id": "security.effective_group",
  "group-name": "security.effective_group",
  "pid-file": "manager.pid_file",
};

/** Descriptions that say more for the manager than the shared ones. */
const MANAGER_WORDING: Record<string, Partial<OptionDef>> = {
  "packet-buffer-size": { description: "Buffer end-of-message packets up to SIZE bytes; 0 = off" },
  "max-pending-finished-sessions": { description: "Clean up finished sessions after N pending; 0 = when idle" },
};

export const MANAGER_TABLE: ToolOptions = {
  tool: "manager",
  prog: "milter-manager",
  summary: "milter that fans each SMTP session out to child milters and merges their answers",
  description: [
    "Milter manager: passes each SMTP session to the configured child milters and merges their answers.",
    "Options override items of the configuration (shown in [brackets]) and stay in force across reloads.",
  ],
  sections: [
    { id: "config", title: "Configuration" },
    ...DAEMON_SECTIONS,
    HELP_SECTION,
  ],
  options: [
    {
      long: "config-dir", short: "c", value: "required", valueName: "DIRECTORY", section: "config", complete: "directory",
      description: "Read DIRECTORY/milterkit.config.{ts,js,json,toml}, then conf.d/*; default $MILTERKIT_CONFIG_DIR or /etc/milterkit",
    },
    { long: "config", value: "required", valueName: "FILE", section: "config", complete: "file", description: "Read only this configuration file (.ts, .js, .json or .toml)" },
    { long: "show-config", section: "config", description: "Print the effective configuration as TOML, with where each item was set, and exit" },
    {
      long: "import-config", value: "required", valueName: "FILE", section: "config", complete: "file",
      description: "Convert milter manager's Ruby configuration FILE (milter-manager.conf) to milterkit's TOML on standard output and exit; exit 2 when some of it must be ported by hand",
    },
    { long: "detect", section: "config", description: "Print the installed milters auto-detection finds, with the file and line each came from, and exit [manager.auto_detect]" },
    {
      long: "check", section: "config",
      description: "Connect and negotiate with every child, print one line per child and exit (1 when one is unreachable or the configuration is broken)",
    },
    ...DAEMON_OPTIONS.map((d) => ({ ...d, ...MANAGER_WORDING[d.long], item: ITEMS[d.long] })),
    {
      long: "log-format", value: "required", valueName: "FORMAT", choices: ["text", "json"], default: "text", section: "log", item: "log.format",
      description: "Log line format: text, or json (one object per line)",
    },
    ...helpOptions({ h: true }),
    { long: "help-all", section: "help", description: "Same as --help" },
    { long: "help-milter", section: "help", description: "Same as --help" },
  ],
};
