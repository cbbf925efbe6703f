// Command-line options of `milterkit manager` (milter-manager's, manager.md §1.3) and how they
// become overrides: a separate layer applied after every (re)load, so they survive SIGHUP.
// The options themselves are listed in src/cli/options/manager.ts.
import { MANAGER_TABLE } from "../../cli/options/manager.ts";
import { type Scanned, scanOr } from "../../cli/options/scan.ts";
import type { Override } from "./load.ts";
import { LogSchema, ManagerSectionSchema, SecuritySchema } from "./schema.ts";

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
  /** `--import-config=FILE`: convert a milter manager configuration to TOML and exit */
  importConfig?: string;
  /** `--detect`: print the milters auto-detection would use, and from where, and exit */
  detect: boolean;
  /** `--check` */
  check: boolean;
  /** `--help-all` / `--help-milter` (plain --help is answered by the tool runner) */
  help: boolean;
  /** Item overrides, at most one per item (the last option given wins). */
  overrides: Override[];
}

/** What an option does to the parsed arguments; `flag` is its spelling, for messages. */
type Apply = (args: ManagerArgs, value: string, flag: string, negated: boolean) => void;

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

function userOption(kind: "user" | "group", form: "any" | "id" | "name"): Apply {
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

function logLevel(level: string): Apply {
  return (args, _raw, flag) => setOverride(args, { section: "log", item: "level", value: level, option: flag });
}

/** What each option of the manager's table (src/cli/options/manager.ts) does, by its long name. */
const APPLY: Record<string, Apply> = {
  "connection-spec": (a, v, f) => setOverride(a, { section: "manager", item: "connection_spec", value: checked(M.connection_spec, v, f, v), option: f }),
  "log-level": (a, v, f) => setOverride(a, { section: "log", item: "level", value: checked(L.level, v, f, v), option: f }),
  "log-path": (a, v, f) => setOverride(a, { section: "log", item: "path", value: checked(L.path, v, f, v), option: f }),
  "log-format": (a, v, f) => setOverride(a, { section: "log", item: "format", value: checked(L.format, v, f, v), option: f }),
  "verbose": logLevel("all"),
  "quiet": logLevel("none"),
  "syslog": (a, _v, f, negated) => setOverride(a, { section: "log", item: "use_syslog", value: !negated, option: f }),
  "syslog-facility": (a, v, f) => setOverride(a, { section: "log", item: "syslog_facility", value: checked(L.syslog_facility, v, f, v), option: f }),
  "daemon": (a, _v, f, negated) => setOverride(a, { section: "manager", item: "daemon", value: !negated, option: f }),
  "user": userOption("user", "any"),
  "user-id": userOption("user", "id"),
  "user-name": userOption("user", "name"),
  "group": userOption("group", "any"),
  "group-id": userOption("group", "id"),
  "group-name": userOption("group", "name"),
  "unix-socket-group": socketGroup,
  "socket-group-name": socketGroup,
  "unix-socket-mode": (a, v, f) => setOverride(a, { section: "manager", item: "unix_socket_mode", value: checked(M.unix_socket_mode, v, f, v), option: f }),
  "n-workers": (a, v, f) => setOverride(a, { section: "manager", item: "n_workers", value: checked(M.n_workers, integer(f, v), f, v), option: f }),
  "event-loop-backend": (a, v, f) => setOverride(a, { section: "manager", item: "event_loop_backend", value: checked(M.event_loop_backend, v, f, v), option: f }),
  "packet-buffer-size": (a, v, f) => setOverride(a, { section: "manager", item: "packet_buffer_size", value: checked(M.packet_buffer_size, integer(f, v), f, v), option: f }),
  "pid-file": (a, v, f) => setOverride(a, { section: "manager", item: "pid_file", value: checked(M.pid_file, v, f, v), option: f }),
  "max-pending-finished-sessions": (a, v, f) => setOverride(a, { section: "manager", item: "max_pending_finished_sessions", value: checked(M.max_pending_finished_sessions, integer(f, v), f, v), option: f }),
  "config-dir": (a, v) => { a.configDir = v; },
  "config": (a, v) => { a.configFile = v; },
  "show-config": (a) => { a.showConfig = true; },
  "import-config": (a, v) => { a.importConfig = v; },
  "detect": (a) => { a.detect = true; },
  "check": (a) => { a.check = true; },
  "help": (a) => { a.help = true; },
  "help-all": (a) => { a.help = true; },
  "help-milter": (a) => { a.help = true; },
  "version": () => {},
};

/** The scanned command line as the manager's arguments, applied in order (so `-v --log-level error` ends at error). */
export function managerArgs(scanned: Scanned): ManagerArgs {
  const args: ManagerArgs = { showConfig: false, detect: false, check: false, help: false, overrides: [] };
  if (scanned.operands.length > 0) throw new CliOptionError(`unexpected argument '${scanned.operands[0]}' (the manager takes options only)`);
  for (const o of scanned.occurrences) {
    const apply = APPLY[o.def.long];
    if (!apply) throw new Error(`option --${o.def.long} of the manager's table does nothing`);
    apply(args, o.value ?? "", o.flag, o.negated);
  }
  if (args.configFile !== undefined && args.configDir !== undefined) {
    throw new CliOptionError("--config and --config-dir cannot be used together");
  }
  return args;
}

/** Parse the manager's argv strictly (src/cli/options/scan.ts), then apply it. Throws CliOptionError. */
export function parseManagerArgv(argv: readonly string[]): ManagerArgs {
  const scanned = scanOr(MANAGER_TABLE, argv, (m) => new CliOptionError(m));
  return managerArgs(scanned);
}
