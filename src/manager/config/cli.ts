// Command-line options of `milterkit manager` (milter-manager's, manager.md §1.3) and how they
// become overrides: a separate layer applied after every (re)load, so they survive SIGHUP.
// The options table here is the single source for parsing and for the --help text.
import type { Override } from "./load.ts";
import { EVENT_LOOP_BACKENDS, LogSchema, ManagerSectionSchema, SecuritySchema } from "./schema.ts";

/** A bad option or option value; the CLI prints it with the usage and exits 1. */
export class CliOptionError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "CliOptionError";
  }
}

/** What the command line asks for. */
export interface ManagerArgs {
  /** `--config FILE` */
  configFile?: string;
  /** `-c, --config-dir DIR` */
  configDir?: string;
  /** `--show-config` */
  showConfig: boolean;
  /** `--help-all` / `--help-milter` (plain --help is answered by the tool runner) */
  help: boolean;
  /** Item overrides, at most one per item (the last option given wins). */
  overrides: Override[];
}

interface OptionSpec {
  long: string;
  short?: string;
  /** Placeholder of the value; absent for a flag. */
  value?: string;
  choices?: readonly string[];
  description: string;
  apply: (args: ManagerArgs, value: string, flag: string) => void;
}

function setOverride(args: ManagerArgs, o: Override): void {
  args.overrides = args.overrides.filter((x) => !(x.section === o.section && x.item === o.item));
  args.overrides.push(o);
}

/** Validate `value` with the schema of the item it overrides. */
function checked<T>(schema: { safeParse(v: unknown): { success: true; data: T } | { success: false; error: { issues: { message: string }[] } } }, input: unknown, flag: string, raw: string): T {
  const r = schema.safeParse(input);
  if (!r.success) {
    const message = r.error.issues[0].message;
    throw new CliOptionError(`option '${flag}': ${message}${raw !== "" && message.includes(raw) ? "" : ` (got '${raw}')`}`);
  }
  return r.data;
}

function integer(flag: string, raw: string): number {
  if (!/^[0-9]+$/.test(raw)) throw new CliOptionError(`option '${flag}': expected a non-negative integer (got '${raw}')`);
  return Number(raw);
}

const M = ManagerSectionSchema.shape;
const L = LogSchema.shape;
const S = SecuritySchema.shape;

function userOption(kind: "user" | "group", form: "any" | "id" | "name"): OptionSpec["apply"] {
  return (args, raw, flag) => {
    if (raw === "") throw new CliOptionError(`option '${flag}': must not be empty`);
    if (form === "id" && !/^[0-9]+$/.test(raw)) throw new CliOptionError(`option '${flag}': expected a numeric id (got '${raw}')`);
    const value = checked(kind === "user" ? S.effective_user : S.effective_group, raw, flag, raw);
    setOverride(args, kind === "user"
      ? { section: "security", item: "effective_user", value, option: flag }
      : { section: "security", item: "effective_group", value, option: flag });
  };
}

function socketGroup(args: ManagerArgs, raw: string, flag: string): void {
  setOverride(args, { section: "manager", item: "unix_socket_group", value: checked(M.unix_socket_group, raw, flag, raw), option: flag });
}

function logLevel(level: string): OptionSpec["apply"] {
  return (args, _raw, flag) => setOverride(args, { section: "log", item: "level", value: level, option: flag });
}

/** Every option, in --help order: milter-manager's common options, then the application's. */
export const MANAGER_OPTIONS: readonly OptionSpec[] = [
  {
    long: "connection-spec", short: "s", value: "SPEC",
    description: "Listen for the MTA on SPEC: unix:PATH, inet:PORT@[ADDR], inet6:..., inet:HOST:PORT [manager.connection_spec]",
    apply: (a, v, f) => setOverride(a, { section: "manager", item: "connection_spec", value: checked(M.connection_spec, v, f, v), option: f }),
  },
  {
    long: "log-level", value: "LEVEL",
    description: "default, none, all, critical, error, warning, message, info, debug, statistics, profile; join with | [log.level]",
    apply: (a, v, f) => setOverride(a, { section: "log", item: "level", value: checked(L.level, v, f, v), option: f }),
  },
  {
    long: "log-path", value: "PATH",
    description: "Write the log to PATH; - = standard output [log.path]",
    apply: (a, v, f) => setOverride(a, { section: "log", item: "path", value: checked(L.path, v, f, v), option: f }),
  },
  { long: "verbose", short: "v", description: "Log everything [log.level = all]", apply: logLevel("all") },
  { long: "quiet", short: "q", description: "Log nothing [log.level = none]", apply: logLevel("none") },
  {
    long: "syslog", description: "Also log to syslog [log.use_syslog = true]",
    apply: (a, _v, f) => setOverride(a, { section: "log", item: "use_syslog", value: true, option: f }),
  },
  {
    long: "no-syslog", description: "Do not log to syslog (milterkit's addition) [log.use_syslog = false]",
    apply: (a, _v, f) => setOverride(a, { section: "log", item: "use_syslog", value: false, option: f }),
  },
  {
    long: "syslog-facility", value: "FACILITY",
    description: "Syslog facility: mail, daemon, local0..local7, user, ... [log.syslog_facility]",
    apply: (a, v, f) => setOverride(a, { section: "log", item: "syslog_facility", value: checked(L.syslog_facility, v, f, v), option: f }),
  },
  {
    long: "daemon", description: "Detach into the background [manager.daemon = true]",
    apply: (a, _v, f) => setOverride(a, { section: "manager", item: "daemon", value: true, option: f }),
  },
  {
    long: "no-daemon", description: "Stay in the foreground [manager.daemon = false]",
    apply: (a, _v, f) => setOverride(a, { section: "manager", item: "daemon", value: false, option: f }),
  },
  { long: "user", short: "u", value: "UID_OR_NAME", description: "User to switch to after listening, when started as root [security.effective_user]", apply: userOption("user", "any") },
  { long: "user-id", value: "UID", description: "Same as --user, numeric id only", apply: userOption("user", "id") },
  { long: "user-name", value: "NAME", description: "Same as --user", apply: userOption("user", "name") },
  { long: "group", short: "g", value: "GID_OR_NAME", description: "Group to switch to after listening, when started as root [security.effective_group]", apply: userOption("group", "any") },
  { long: "group-id", value: "GID", description: "Same as --group, numeric id only", apply: userOption("group", "id") },
  { long: "group-name", value: "NAME", description: "Same as --group", apply: userOption("group", "name") },
  { long: "unix-socket-group", value: "GROUP", description: "Group of the listening unix socket [manager.unix_socket_group]", apply: socketGroup },
  { long: "socket-group-name", value: "GROUP", description: "Deprecated spelling of --unix-socket-group", apply: socketGroup },
  {
    long: "unix-socket-mode", value: "MODE",
    description: "Octal mode of the listening unix socket, default 0660 [manager.unix_socket_mode]",
    apply: (a, v, f) => setOverride(a, { section: "manager", item: "unix_socket_mode", value: checked(M.unix_socket_mode, v, f, v), option: f }),
  },
  {
    long: "n-workers", value: "N",
    description: "Worker processes sharing the socket, 0..1000, default 0 [manager.n_workers]",
    apply: (a, v, f) => setOverride(a, { section: "manager", item: "n_workers", value: checked(M.n_workers, integer(f, v), f, v), option: f }),
  },
  {
    long: "event-loop-backend", value: "BACKEND", choices: EVENT_LOOP_BACKENDS,
    description: "glib or libev; accepted for compatibility only [manager.event_loop_backend]",
    apply: (a, v, f) => setOverride(a, { section: "manager", item: "event_loop_backend", value: checked(M.event_loop_backend, v, f, v), option: f }),
  },
  {
    long: "packet-buffer-size", value: "SIZE",
    description: "Buffer end-of-message packets up to SIZE bytes; 0 = off [manager.packet_buffer_size]",
    apply: (a, v, f) => setOverride(a, { section: "manager", item: "packet_buffer_size", value: checked(M.packet_buffer_size, integer(f, v), f, v), option: f }),
  },
  {
    long: "pid-file", value: "FILE",
    description: "Write the process id to FILE [manager.pid_file]",
    apply: (a, v, f) => setOverride(a, { section: "manager", item: "pid_file", value: checked(M.pid_file, v, f, v), option: f }),
  },
  {
    long: "max-pending-finished-sessions", value: "N",
    description: "Clean up finished sessions after N pending; 0 = when idle [manager.max_pending_finished_sessions]",
    apply: (a, v, f) => setOverride(a, { section: "manager", item: "max_pending_finished_sessions", value: checked(M.max_pending_finished_sessions, integer(f, v), f, v), option: f }),
  },
  {
    long: "config-dir", short: "c", value: "DIRECTORY",
    description: "Read DIRECTORY/milterkit.config.{ts,js,json,toml}, then conf.d/*; default $MILTERKIT_CONFIG_DIR or /etc/milterkit",
    apply: (a, v) => { a.configDir = v; },
  },
  {
    long: "config", value: "FILE",
    description: "Read only this configuration file (.ts, .js, .json or .toml)",
    apply: (a, v) => { a.configFile = v; },
  },
  {
    long: "show-config", description: "Print the effective configuration as TOML, with where each item was set, and exit",
    apply: (a) => { a.showConfig = true; },
  },
  { long: "help-all", description: "Same as --help", apply: (a) => { a.help = true; } },
  { long: "help-milter", description: "Same as --help", apply: (a) => { a.help = true; } },
];

const BY_LONG = new Map(MANAGER_OPTIONS.map((o) => [o.long, o]));
const BY_SHORT = new Map(MANAGER_OPTIONS.filter((o) => o.short).map((o) => [o.short!, o]));

/**
 * Parse the manager's argv strictly, in order (so `-v --log-level error` ends at error).
 * `--opt value`, `--opt=value`, `-s value`, `-svalue` and grouped flags `-vq` are accepted.
 */
export function parseManagerArgv(argv: readonly string[]): ManagerArgs {
  const args: ManagerArgs = { showConfig: false, help: false, overrides: [] };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg.startsWith("--") && arg.length > 2) {
      const eq = arg.indexOf("=");
      const name = eq < 0 ? arg.slice(2) : arg.slice(2, eq);
      const opt = BY_LONG.get(name);
      if (!opt) throw new CliOptionError(`unknown option '--${name}'`);
      const flag = `--${name}`;
      if (!opt.value) {
        if (eq >= 0) throw new CliOptionError(`option '${flag}' takes no value`);
        opt.apply(args, "", flag);
        continue;
      }
      const value = eq >= 0 ? arg.slice(eq + 1) : argv[++i];
      if (value === undefined) throw new CliOptionError(`option '${flag}' needs a value`);
      opt.apply(args, value, flag);
    } else if (arg.startsWith("-") && arg.length > 1 && arg !== "--") {
      for (let j = 1; j < arg.length; j++) {
        const opt = BY_SHORT.get(arg[j]);
        if (!opt) throw new CliOptionError(`unknown option '-${arg[j]}'`);
        const flag = `-${arg[j]}`;
        if (!opt.value) { opt.apply(args, "", flag); continue; }
        const rest = arg.slice(j + 1);
        const value = rest !== "" ? rest : argv[++i];
        if (value === undefined) throw new CliOptionError(`option '${flag}' needs a value`);
        opt.apply(args, value, flag);
        break;
      }
    } else {
      throw new CliOptionError(`unexpected argument '${arg}' (the manager takes options only)`);
    }
  }
  if (args.configFile !== undefined && args.configDir !== undefined) {
    throw new CliOptionError("--config and --config-dir cannot be used together");
  }
  return args;
}

/** citty argument definitions generated from MANAGER_OPTIONS (for the runner's checks and --help). */
export function managerCittyArgs(): Record<string, { type: "string" | "boolean" | "enum"; alias?: string; valueHint?: string; description: string; options?: string[] }> {
  const out: ReturnType<typeof managerCittyArgs> = {};
  for (const o of MANAGER_OPTIONS) {
    out[o.long] = {
      type: o.value ? (o.choices ? "enum" : "string") : "boolean",
      description: o.description,
      ...(o.short ? { alias: o.short } : {}),
      ...(o.value ? { valueHint: o.value } : {}),
      ...(o.choices ? { options: [...o.choices] } : {}),
    };
  }
  return out;
}
