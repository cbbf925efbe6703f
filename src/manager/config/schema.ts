// The manager's configuration: item names, types, defaults and validation.
//
// Item names and defaults are milter-manager's (docs manager.md §1.2), in snake_case and grouped
// by section, so an administrator's knowledge carries over. One zod schema validates every file
// format; `ConfigFileSchema` is what one file may contain (every item optional, unknown keys are
// errors), `ManagerConfig` is the effective configuration after defaults, files and command line.
//
// Sections of milter-manager that are left out on purpose: `package.*` (only served the Ruby
// auto-detection of installed milters), `database.*` (ActiveRecord hooks) and the Ruby hooks
// (`manager.define_connection_checker`, `maintained`, `event_loop_created`, ...).
import { z } from "../conditions/zod.ts";
import { parseSpec } from "../../net/spec.ts";
import { LOG_LEVELS, LogLevelError, parseLogLevel } from "../../runtime/log.ts";
import { FACILITY_NAMES, type FacilityName } from "../../runtime/syslog.ts";
import type { ConditionDefinition } from "../conditions/api.ts";
import type { ConditionSettings } from "../conditions/registry.ts";
import { DNSBL_DEFAULTS, DnsblSchema } from "../conditions/dnsbl.ts";
import { REMOTE_NETWORK_DEFAULTS, RemoteNetworkSchema } from "../conditions/remote-network.ts";
import { RestrictAccountsSchema } from "../conditions/restrict-accounts.ts";
import { S25R_DEFAULTS, S25rSchema } from "../conditions/s25r.ts";
import { count, duplicates, nonEmpty, positiveSeconds, seconds } from "../conditions/settings.ts";
import { STRESS_DEFAULTS, StressSchema } from "../conditions/stress.ts";
import { TRUST_DEFAULTS, TrustSchema } from "../conditions/trust.ts";

// Each condition owns its settings (type, defaults, schema: conditions/*.ts); this module only
// combines them. Re-exported for the callers that know them by this module.
export type { ConditionSettings } from "../conditions/registry.ts";
export { patternRegExp } from "../conditions/pattern.ts";
export { checkCidr } from "../conditions/settings.ts";

// ---------------------------------------------------------------------------------------------
// Value vocabularies

/** Statuses a fallback may take, spelled as milter-manager spells them. */
export const FALLBACK_STATUSES = ["accept", "temporary-failure", "reject", "discard"] as const;
export type FallbackStatus = (typeof FALLBACK_STATUSES)[number];

/** Names allowed in `log.level` (runtime/log.ts); several are joined with `|` (e.g. "error|warning|statistics"). */
export const LOG_LEVEL_NAMES = ["default", "none", "all", ...LOG_LEVELS] as const;
export type LogLevelName = (typeof LOG_LEVEL_NAMES)[number];

/** The full syslog set (runtime/syslog.ts), as the test-client accepts it too. */
export const SYSLOG_FACILITIES = FACILITY_NAMES;
export type SyslogFacility = FacilityName;

/** Accepted for compatibility with milter-manager's option; milterkit has one event loop (Bun's). */
export const EVENT_LOOP_BACKENDS = ["glib", "libev"] as const;
export type EventLoopBackend = (typeof EVENT_LOOP_BACKENDS)[number];

/** Built-in applicable conditions a milter may name in `applicable_conditions` (manager.md §3.3). */
export const BUILTIN_CONDITION_NAMES = [
  "S25R", "Remote Network", "Authenticated", "Unauthenticated", "Trust", "Sendmail Compatible",
  "Stress Notify", "No Stress", "DNSBL Listed", "Not DNSBL Listed",
] as const;

// ---------------------------------------------------------------------------------------------
// Effective configuration types (what the engine reads)

/** `security.*` */
export interface SecurityConfig {
  /** Allow starting child milters with `milters[].command` (only effective when started as root). Default false. */
  privilege_mode: boolean;
  /** User (name or numeric id as text) to switch to after listening; null = `nobody` when root, else stay. Default null. */
  effective_user: string | null;
  /** Group (name or numeric id as text) to switch to after listening; null = do not change the group. Default null. */
  effective_group: string | null;
  /**
   * Refuse configuration files and directories that group or others can write, or that belong to
   * someone other than root or the user the manager runs as (sshd's StrictModes); false = warn only.
   * Default true: a .ts/.js configuration is executed as root.
   */
  strict_modes: boolean;
}

/** `log.*` */
export interface LogConfig {
  /** `|`-separated set of LOG_LEVEL_NAMES, normalised (no spaces). Default "default". */
  level: string;
  /** Log file; null or "-" = standard output. Default null. */
  path: string | null;
  /** Also log to syslog (ident milter-manager). Default true. */
  use_syslog: boolean;
  /** Syslog facility. Default "mail". */
  syslog_facility: SyslogFacility;
  /** Line format of the log file or standard output: "text" (milter-manager's) or "json" (one object per line). Default "text". */
  format: "text" | "json";
}

/** `manager.*` */
export interface ManagerSection {
  /** Where the manager listens for the MTA (validated by net/spec.ts parseSpec; port 0 allowed). Default "inet:10025@[127.0.0.1]". */
  connection_spec: string;
  /** Mode (permission bits, 0..0o777) of a listening unix socket. Default 0o660. */
  unix_socket_mode: number;
  /** Group of a listening unix socket; null = leave it. Default null. */
  unix_socket_group: string | null;
  /** Unlink an existing socket file before binding. Default true. */
  remove_unix_socket_on_create: boolean;
  /** Unlink the socket file on shutdown. Default true. */
  remove_unix_socket_on_close: boolean;
  /** Detach into the background. Default false. */
  daemon: boolean;
  /** File to write the process id to; null = none. Default null. */
  pid_file: string | null;
  /** Run maintenance every N finished sessions; 0 = never. Default 10. */
  maintenance_interval: number;
  /** Seconds to pause accepting when accept() fails or max_connections is reached. Default 5. */
  suspend_time_on_unacceptable: number;
  /** Maximum concurrent MTA sessions; 0 = unlimited. Default 0. */
  max_connections: number;
  /** RLIMIT_NOFILE to set (soft and hard); 0 = leave the system default. Default 0. */
  max_file_descriptors: number;
  /** milter-manager's directory for controller-written settings; kept for compatibility. Default null. */
  custom_configuration_directory: string | null;
  /** Reply to the MTA when the manager itself cannot produce one (no child, internal error). Default "accept". */
  fallback_status: FallbackStatus;
  /** Reply when the connection check finds the SMTP client gone. Default "temporary-failure". */
  fallback_status_at_disconnect: FallbackStatus;
  /** Accepted for compatibility; milterkit always uses Bun's event loop. Default "glib". */
  event_loop_backend: EventLoopBackend;
  /** Pre-forked worker processes sharing the listening socket, 0..1000; 0 = none. Default 0. */
  n_workers: number;
  /** Buffer end-of-message packets to the MTA until this many bytes; 0 = write each step at once. Default 0. */
  packet_buffer_size: number;
  /** Seconds between checks that the SMTP client is still connected; 0 = off. Default 0. */
  connection_check_interval: number;
  /** Body chunk size (1..65535) when re-sending the body to later children and in replace-body. Default 65535. */
  chunk_size: number;
  /** Clean up finished sessions after at most N pending ones; 0 = only when idle. Default 0. */
  max_pending_finished_sessions: number;
  /**
   * Detect the milters installed and enabled on this Debian system (src/manager/detect/) and use
   * them as children under the configured ones: "auto" = only when no configuration file is
   * found; true = always (milter manager's `load_default`); false = never. Default "auto".
   */
  auto_detect: AutoDetect;
  /** Seconds an MTA connection may take to send OPTNEG; 0 = no limit. Default 30 (an MTA negotiates as soon as it connects). */
  negotiation_timeout: number;
  /** Seconds an MTA may take to finish a packet it started; 0 = no limit. Default 30 (an MTA writes a packet in one go). */
  packet_timeout: number;
  /** Seconds an MTA connection may stay silent between commands; 0 = no limit. Default 7210 (libmilter's). */
  idle_timeout: number;
  /**
   * Seconds a child that could not be opened counts as its fallback_status without being tried
   * (then one session tries it); doubles after each failed try. 0 = try it in every session. Default 5.
   */
  milter_retry_interval: number;
  /** Longest such period, in seconds. Default 60: a child that is back is used again within a minute. */
  milter_retry_max_interval: number;
}

export const AUTO_DETECT_VALUES = ["auto", true, false] as const;
export type AutoDetect = (typeof AUTO_DETECT_VALUES)[number];

/** `controller.*` (the control socket; disabled while `connection_spec` is null). */
export interface ControllerConfig {
  /** Where the controller listens; null = no controller. Default null. */
  connection_spec: string | null;
  /** Default 0o660. */
  unix_socket_mode: number;
  /** Default null. */
  unix_socket_group: string | null;
  /** Default true. */
  remove_unix_socket_on_create: boolean;
  /** Default true. */
  remove_unix_socket_on_close: boolean;
}

/** One child milter, `[[milters]]`. The array order is the order children are asked. */
export interface MilterConfig {
  /** Unique name (milter-manager's `define_milter(name)`). */
  name: string;
  /** Free text. Default null. */
  description: string | null;
  /** Where the child listens (parseSpec; port 0 not allowed). Required. */
  connection_spec: string;
  /** A disabled milter is never connected to. Default true. */
  enabled: boolean;
  /** Status this child is deemed to have answered when it fails (connect error, I/O error, timeout, EOF). Default "accept". */
  fallback_status: FallbackStatus;
  /** Only log/count this child's results; its reject/tempfail/discard and modifications are not applied. Default false. */
  evaluation_mode: boolean;
  /** Names of applicable conditions (built-in or restrict-accounts rule names). Default []. */
  applicable_conditions: string[];
  /** Program that starts the child when it is unreachable (privilege mode only). Default null. */
  command: string | null;
  /** Arguments for `command`: a shell-style string, or a list (each element one argument). Default null. */
  command_options: string | string[] | null;
  /** User to run `command` as; null = root. Default null. */
  user_name: string | null;
  /** Seconds for the connect to complete. Default 297. */
  connection_timeout: number;
  /** Seconds for a command write to be flushed. Default 7. */
  writing_timeout: number;
  /** Seconds to wait for a reply (except end-of-message). Default 7. */
  reading_timeout: number;
  /** Seconds to wait for the end-of-message reply, reset by each `progress`. Default 297. */
  end_of_message_timeout: number;
  /**
   * Seconds the whole end-of-message exchange may take, however many `progress` packets the child
   * sends. Default 297: below Postfix's milter_content_timeout (300 s), whose clock each forwarded
   * `progress` restarts, so the MTA would otherwise wait as long as the child keeps sending them.
   */
  end_of_message_total_timeout: number;
  /**
   * Most modifications (replace-body excepted) this child may send for one message; beyond it the
   * child counts as failed and gets its fallback_status. Default 10000 (plenty for adding
   * recipients; a child gone wild cannot fill the manager's memory).
   */
  max_modifications: number;
  /**
   * Most bytes of those modifications for one message (they are kept in memory until the message
   * ends; a replaced body goes to a temporary file and does not count). Default 1048576 (1 MiB).
   */
  max_modification_bytes: number;
}


/** The effective configuration. */
export interface ManagerConfig {
  security: SecurityConfig;
  log: LogConfig;
  manager: ManagerSection;
  controller: ControllerConfig;
  applicable_conditions: ConditionSettings;
  /** Applicable conditions written in a `.ts`/`.js` configuration (defineCondition). Default []. */
  conditions: ConditionDefinition[];
  /** Child milters in the order they are asked. */
  milters: MilterConfig[];
}

/** The sections holding plain items (everything but `milters`, `applicable_conditions` and `conditions`). */
export type ItemSection = "security" | "log" | "manager" | "controller";
export const ITEM_SECTIONS: readonly ItemSection[] = ["security", "log", "manager", "controller"];
export type ConditionSettingName = keyof ConditionSettings;

// ---------------------------------------------------------------------------------------------
// Defaults (manager.md §1.2, code values)

export const DEFAULT_CONNECTION_SPEC = "inet:10025@[127.0.0.1]";

const DEFAULTS: ManagerConfig = {
  security: { privilege_mode: false, effective_user: null, effective_group: null, strict_modes: true },
  log: { level: "default", path: null, use_syslog: true, syslog_facility: "mail", format: "text" },
  manager: {
    connection_spec: DEFAULT_CONNECTION_SPEC,
    unix_socket_mode: 0o660,
    unix_socket_group: null,
    remove_unix_socket_on_create: true,
    remove_unix_socket_on_close: true,
    daemon: false,
    pid_file: null,
    maintenance_interval: 10,
    suspend_time_on_unacceptable: 5,
    max_connections: 0,
    max_file_descriptors: 0,
    custom_configuration_directory: null,
    fallback_status: "accept",
    fallback_status_at_disconnect: "temporary-failure",
    event_loop_backend: "glib",
    n_workers: 0,
    packet_buffer_size: 0,
    connection_check_interval: 0,
    chunk_size: 65535,
    max_pending_finished_sessions: 0,
    auto_detect: "auto",
    negotiation_timeout: 30,
    packet_timeout: 30,
    idle_timeout: 7210,
    milter_retry_interval: 5,
    milter_retry_max_interval: 60,
  },
  controller: {
    connection_spec: null,
    unix_socket_mode: 0o660,
    unix_socket_group: null,
    remove_unix_socket_on_create: true,
    remove_unix_socket_on_close: true,
  },
  applicable_conditions: {
    s25r: S25R_DEFAULTS,
    remote_network: REMOTE_NETWORK_DEFAULTS,
    trust: TRUST_DEFAULTS,
    stress: STRESS_DEFAULTS,
    dnsbl: DNSBL_DEFAULTS,
    restrict_accounts: [],
  },
  conditions: [],
  milters: [],
};

/** Defaults of a child milter's items (milter-manager-egg.c: server-context timeouts minus 3 s leeway). */
export const MILTER_DEFAULTS: Readonly<Omit<MilterConfig, "name" | "connection_spec">> = Object.freeze({
  description: null,
  enabled: true,
  fallback_status: "accept",
  evaluation_mode: false,
  applicable_conditions: [],
  command: null,
  command_options: null,
  user_name: null,
  connection_timeout: 297,
  writing_timeout: 7,
  reading_timeout: 7,
  end_of_message_timeout: 297,
  end_of_message_total_timeout: 297,
  max_modifications: 10000,
  max_modification_bytes: 1048576,
});

/** Item order of a milter, as --show-config prints it. */
export const MILTER_ITEMS: readonly (keyof MilterConfig)[] = [
  "name", "description", "connection_spec", "enabled", "fallback_status", "evaluation_mode", "applicable_conditions",
  "command", "command_options", "user_name", "connection_timeout", "writing_timeout", "reading_timeout", "end_of_message_timeout",
  "end_of_message_total_timeout", "max_modifications", "max_modification_bytes",
];

/** A fresh copy of the built-in default configuration (listen on inet:10025@[127.0.0.1], no children). */
export function defaultConfig(): ManagerConfig {
  return structuredClone(DEFAULTS);
}

/** A new milter with every item at its default. */
export function defaultMilter(name: string, connection_spec = ""): MilterConfig {
  return { name, connection_spec, ...structuredClone(MILTER_DEFAULTS) } as MilterConfig;
}

// ---------------------------------------------------------------------------------------------
// Item validators

function specChecker(allowPortZero: boolean) {
  return z.string().superRefine((text, ctx) => {
    try {
      parseSpec(text, { allowPortZero });
    } catch (e) {
      ctx.addIssue({ code: "custom", message: (e as Error).message, input: text });
    }
  });
}
/** A spec we listen on (port 0 = any free port is fine). */
const listenSpec = specChecker(true);
/** A spec we connect to. */
const connectSpec = specChecker(false);

const fallbackStatus = z.enum(FALLBACK_STATUSES);

/** Parse "0660", "660", "0o660" or a number; permission bits only, so a decimal 660 by mistake is caught. */
export function parseSocketMode(value: number | string): number | string {
  let n: number;
  if (typeof value === "number") n = value;
  else {
    const m = /^(?:0o|0)?([0-7]{1,4})$/i.exec(value.trim());
    if (!m) return `unix socket mode must be octal, e.g. "0660" or 0o660 (got "${value}")`;
    n = parseInt(m[1], 8);
  }
  if (!Number.isInteger(n) || n < 0 || n > 0o777) {
    return `unix socket mode must be between 0o000 and 0o777, e.g. "0660" or 0o660 (got ${typeof value === "number" ? `${value} = 0o${value.toString(8)}` : `"${value}"`})`;
  }
  return n;
}

const socketMode = z
  .union([z.number(), z.string()], { error: 'unix socket mode must be octal, e.g. "0660" or 0o660' })
  .transform((v, ctx) => {
    const r = parseSocketMode(v);
    if (typeof r === "string") {
      ctx.addIssue({ code: "custom", message: r, input: v });
      return z.NEVER;
    }
    return r;
  });

/** Normalise "error | Warning" to "error|warning", checked by the one log level parser (runtime/log.ts); errors name the bad part. */
export function normalizeLogLevel(text: string): string | { error: string } {
  try {
    parseLogLevel(text);
  } catch (e) {
    if (e instanceof LogLevelError) return { error: e.message };
    throw e;
  }
  return text.split("|").map((p) => p.trim().toLowerCase()).filter((p) => p !== "").join("|");
}

const logLevel = z.string().transform((v, ctx) => {
  const r = normalizeLogLevel(v);
  if (typeof r !== "string") {
    ctx.addIssue({ code: "custom", message: r.error, input: v });
    return z.NEVER;
  }
  return r;
});

/** The set of levels a `log.level` string names. */
export function logLevelSet(level: string): Set<LogLevelName> {
  return new Set(level.split("|") as LogLevelName[]);
}

// ---------------------------------------------------------------------------------------------
// Section schemas (every item required: the effective configuration)

export const SecuritySchema = z.strictObject({
  privilege_mode: z.boolean(),
  effective_user: nonEmpty.nullable(),
  effective_group: nonEmpty.nullable(),
  strict_modes: z.boolean(),
});

export const LogSchema = z.strictObject({
  level: logLevel,
  path: nonEmpty.nullable(),
  use_syslog: z.boolean(),
  syslog_facility: z.enum(SYSLOG_FACILITIES),
  format: z.enum(["text", "json"]),
});

export const ManagerSectionSchema = z.strictObject({
  connection_spec: listenSpec,
  unix_socket_mode: socketMode,
  unix_socket_group: nonEmpty.nullable(),
  remove_unix_socket_on_create: z.boolean(),
  remove_unix_socket_on_close: z.boolean(),
  daemon: z.boolean(),
  pid_file: nonEmpty.nullable(),
  maintenance_interval: count,
  suspend_time_on_unacceptable: seconds,
  max_connections: count,
  max_file_descriptors: count,
  custom_configuration_directory: nonEmpty.nullable(),
  fallback_status: fallbackStatus,
  fallback_status_at_disconnect: fallbackStatus,
  event_loop_backend: z.enum(EVENT_LOOP_BACKENDS),
  n_workers: count.max(1000),
  packet_buffer_size: count,
  connection_check_interval: seconds,
  chunk_size: z.number().int().min(1).max(65535),
  max_pending_finished_sessions: count,
  auto_detect: z.union([z.literal("auto"), z.boolean()], { error: 'must be "auto", true or false' }),
  negotiation_timeout: seconds,
  packet_timeout: seconds,
  idle_timeout: seconds,
  milter_retry_interval: seconds,
  milter_retry_max_interval: seconds,
});

export const ControllerSchema = z.strictObject({
  connection_spec: listenSpec.nullable(),
  unix_socket_mode: socketMode,
  unix_socket_group: nonEmpty.nullable(),
  remove_unix_socket_on_create: z.boolean(),
  remove_unix_socket_on_close: z.boolean(),
});

const milterItems = {
  description: z.string().nullable(),
  connection_spec: connectSpec,
  enabled: z.boolean(),
  fallback_status: fallbackStatus,
  evaluation_mode: z.boolean(),
  applicable_conditions: z.array(nonEmpty),
  command: nonEmpty.nullable(),
  command_options: z.union([z.string(), z.array(z.string())], { error: "must be a string or a list of strings" }).nullable(),
  user_name: nonEmpty.nullable(),
  connection_timeout: positiveSeconds,
  writing_timeout: positiveSeconds,
  reading_timeout: positiveSeconds,
  end_of_message_timeout: positiveSeconds,
  end_of_message_total_timeout: positiveSeconds,
  max_modifications: z.number().int().positive(),
  max_modification_bytes: z.number().int().positive(),
};

export const MilterSchema = z.strictObject({ name: nonEmpty, ...milterItems });


export const ConditionSettingsSchema = z.strictObject({
  s25r: S25rSchema,
  remote_network: RemoteNetworkSchema,
  trust: TrustSchema,
  stress: StressSchema,
  dnsbl: DnsblSchema,
  restrict_accounts: RestrictAccountsSchema,
});

// A condition written in TypeScript: its stoppers are functions, checked as such (their types come
// from conditions/api.ts; `defineCondition` gives them to the editor).
function hook<F>() {
  return z.custom<F>((v) => typeof v === "function", { error: "must be a function" }).optional();
}
type Hook<K extends keyof ConditionDefinition> = NonNullable<ConditionDefinition[K]>;

export const ConditionSchema = z.strictObject({
  name: nonEmpty,
  description: z.string().nullable().optional(),
  settings: z.record(z.string(), z.unknown()).optional(),
  connect: hook<Hook<"connect">>(),
  helo: hook<Hook<"helo">>(),
  envelopeFrom: hook<Hook<"envelopeFrom">>(),
  envelopeRecipient: hook<Hook<"envelopeRecipient">>(),
  data: hook<Hook<"data">>(),
  header: hook<Hook<"header">>(),
  endOfHeader: hook<Hook<"endOfHeader">>(),
  body: hook<Hook<"body">>(),
  endOfMessage: hook<Hook<"endOfMessage">>(),
  abort: hook<Hook<"abort">>(),
  quit: hook<Hook<"quit">>(),
});
const ConditionsSchema = z.array(ConditionSchema).superRefine((c, ctx) => duplicates(c, ctx, "condition name"));


/** The effective configuration, every item present. */
export const ConfigSchema = z.strictObject({
  security: SecuritySchema,
  log: LogSchema,
  manager: ManagerSectionSchema,
  controller: ControllerSchema,
  applicable_conditions: ConditionSettingsSchema,
  conditions: ConditionsSchema,
  milters: z.array(MilterSchema).superRefine((m, ctx) => duplicates(m, ctx, "milter name")),
});

// ---------------------------------------------------------------------------------------------
// What one configuration file may contain: every item optional, milters identified by name.

/** A milter entry in one file: `name` is required, other items update (or start from) the defaults. */
export const MilterFileSchema = z.strictObject({ name: nonEmpty, ...milterItems }).partial().required({ name: true });

export const ConfigFileSchema = z.strictObject({
  security: SecuritySchema.partial().optional(),
  log: LogSchema.partial().optional(),
  manager: ManagerSectionSchema.partial().optional(),
  controller: ControllerSchema.partial().optional(),
  applicable_conditions: z
    .strictObject({
      s25r: S25rSchema.partial().optional(),
      remote_network: RemoteNetworkSchema.partial().optional(),
      trust: TrustSchema.partial().optional(),
      stress: StressSchema.partial().optional(),
      dnsbl: DnsblSchema.partial().optional(),
      restrict_accounts: RestrictAccountsSchema.optional(),
    })
    .optional(),
  conditions: ConditionsSchema.optional(),
  milters: z.array(MilterFileSchema).superRefine((m, ctx) => duplicates(m, ctx, "milter name")).optional(),
});

/** What a configuration file (or `defineConfig`) accepts. */
export type ConfigInput = z.input<typeof ConfigFileSchema>;
/** One file's content after validation. */
export type ConfigFileContent = z.output<typeof ConfigFileSchema>;
export type MilterInput = z.input<typeof MilterFileSchema>;

// Compile-time proof that the schemas produce exactly the documented interfaces.
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const _sameConfig: Same<z.output<typeof ConfigSchema>, ManagerConfig> = true;
const _sameCondition: Same<z.output<typeof ConditionSchema>, ConditionDefinition> = true;
void _sameConfig;
void _sameCondition;
