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
import { isIPv4, isIPv6 } from "node:net";
import { z } from "zod";
import { parseSpec } from "../../net/spec.ts";
import { LOG_LEVELS, LogLevelError, parseLogLevel } from "../../runtime/log.ts";
import { FACILITY_NAMES, type FacilityName } from "../../runtime/syslog.ts";
import { AddressError, parseNetwork } from "../conditions/address.ts";
import type { ConditionDefinition } from "../conditions/api.ts";

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
}

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
}

/**
 * A host pattern (S25R lists) or account pattern: `/regexp/flags` is a regular expression,
 * `.example.com` matches that suffix, anything else matches the whole name (case-insensitively).
 */
export type Pattern = string;

/** `applicable_conditions.s25r`: settings of the S25R condition. */
export interface S25rSettings {
  /** Hosts never treated as end-user hosts (milter-manager's whitelist). Default: the six stock suffixes. */
  allow: Pattern[];
  /** Hosts always treated as end-user hosts (blacklist), checked after `allow`, in addition to the S25R rules. Default []. */
  deny: Pattern[];
  /** Clients that are not IPv4 are treated as allowed. Default true. */
  check_only_ipv4: boolean;
}

/** `applicable_conditions.remote_network`: settings of "Remote Network". */
export interface RemoteNetworkSettings {
  /** Extra addresses/CIDRs counted as local (besides loopback, private and link-local). Default []. */
  local_addresses: string[];
  /** Addresses/CIDRs counted as remote even when local; this list wins over local. Default []. */
  remote_addresses: string[];
}

/** `applicable_conditions.trust`: settings of "Trust". */
export interface TrustSettings {
  /** Envelope-from domains (or patterns) that get macro `trusted_domain=yes`. Default: the stock eight. */
  envelope_from_domains: Pattern[];
}

/** `applicable_conditions.stress`: settings of "Stress Notify" / "No Stress". */
export interface StressSettings {
  /** Concurrent sessions from which the manager counts as stressed; 0 = never; "auto" = detect from the MTA. Default "auto". */
  threshold_n_connections: number | "auto";
}

/** One DNSBL zone. */
export interface DnsblService {
  /** DNS zone, e.g. "zen.spamhaus.org". */
  zone: string;
  /** Answers counted as "listed" (IPv4 CIDR); null = any answer. */
  expected_answer: string | null;
}

/** `applicable_conditions.dnsbl`: settings of "DNSBL Listed" / "Not DNSBL Listed". */
export interface DnsblSettings {
  /** Zones queried in parallel; the first positive answer wins. Default: the stock four. */
  services: DnsblService[];
  /** Name server addresses, optionally with a port ("127.0.0.1:5353", "[::1]:5353"); [] = the system resolver. Default []. */
  name_servers: string[];
  /** Seconds a lookup may take; a slower or failing resolver counts as "not listed". Default 5. */
  timeout: number;
  /** Seconds answers are cached at most (positive answers also follow their DNS TTL); 0 = no cache. Default 300. */
  cache_ttl: number;
}

/** One `restrict_accounts` rule: defines the condition `name` and attaches it to `milters`. */
export interface RestrictAccountsRule {
  /** Condition name (must not clash with a built-in). */
  name: string;
  /** Recipient addresses (without <>) or patterns the milters are applied to. */
  accounts: Pattern[];
  /** Milters the condition is attached to; null = every milter. */
  milters: string[] | null;
}

/** `applicable_conditions`: settings of the built-in conditions. */
export interface ConditionSettings {
  s25r: S25rSettings;
  remote_network: RemoteNetworkSettings;
  trust: TrustSettings;
  stress: StressSettings;
  dnsbl: DnsblSettings;
  /** Default []. */
  restrict_accounts: RestrictAccountsRule[];
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
  security: { privilege_mode: false, effective_user: null, effective_group: null },
  log: { level: "default", path: null, use_syslog: true, syslog_facility: "mail" },
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
  },
  controller: {
    connection_spec: null,
    unix_socket_mode: 0o660,
    unix_socket_group: null,
    remove_unix_socket_on_create: true,
    remove_unix_socket_on_close: true,
  },
  applicable_conditions: {
    s25r: {
      allow: [".google.com", ".obsmtp.com", ".smtp-out.amazonses.com", ".slack.com", ".mg.gitlab.com", ".sendgrid.net"],
      deny: [],
      check_only_ipv4: true,
    },
    remote_network: { local_addresses: [], remote_addresses: [] },
    trust: {
      envelope_from_domains: [
        "gmail.com", "hotmail.com", "msn.com", "yahoo.co.jp", "softbank.ne.jp", "ezweb.ne.jp", "docomo.ne.jp", "clear-code.com",
      ],
    },
    stress: { threshold_n_connections: "auto" },
    dnsbl: {
      services: [
        { zone: "zen.spamhaus.org", expected_answer: "127.0.0.10/31" },
        { zone: "dnsbl.sorbs.net", expected_answer: "127.0.0.10" },
        { zone: "bl.spamcop.net", expected_answer: "127.0.0.2" },
        { zone: "b.barracudacentral.org", expected_answer: "127.0.0.2" },
      ],
      name_servers: [],
      timeout: 5,
      cache_ttl: 300,
    },
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
});

/** Item order of a milter, as --show-config prints it. */
export const MILTER_ITEMS: readonly (keyof MilterConfig)[] = [
  "name", "description", "connection_spec", "enabled", "fallback_status", "evaluation_mode", "applicable_conditions",
  "command", "command_options", "user_name", "connection_timeout", "writing_timeout", "reading_timeout", "end_of_message_timeout",
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
const nonEmpty = z.string().min(1, { error: "must not be empty" });
const count = z.number().int().nonnegative();
const seconds = z.number().nonnegative().finite();
const positiveSeconds = z.number().positive().finite();

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

function isRegexPattern(p: string): boolean {
  return /^\/.*\/[a-z]*$/s.test(p) && p.length >= 2;
}

/** Compile a Pattern: `/re/flags` → RegExp; otherwise undefined. Throws on a bad regexp. */
export function patternRegExp(p: Pattern): RegExp | undefined {
  if (!isRegexPattern(p)) return undefined;
  const end = p.lastIndexOf("/");
  return new RegExp(p.slice(1, end), p.slice(end + 1));
}

const pattern = z.string().superRefine((p, ctx) => {
  if (p.trim() === "") {
    ctx.addIssue({ code: "custom", message: "pattern must not be empty", input: p });
    return;
  }
  if (!isRegexPattern(p)) return;
  try {
    patternRegExp(p);
  } catch (e) {
    ctx.addIssue({ code: "custom", message: `bad regular expression ${p}: ${(e as Error).message}`, input: p });
  }
});

/** "addr" or "addr/prefix", IPv4 or IPv6 (family 4: IPv4 only), as the conditions will parse it. */
export function checkCidr(text: string, family?: 4): string | undefined {
  const notAddress = `"${text}" is not an ${family === 4 ? "IPv4" : "IP"} address or CIDR`;
  try {
    const net = parseNetwork(text);
    if (family === 4 && net.ip.family !== 4) return notAddress;
  } catch (e) {
    if (!(e instanceof AddressError)) throw e;
    return e.kind === "prefix" ? e.message : notAddress;
  }
  return undefined;
}

function cidr(family?: 4) {
  return z.string().superRefine((t, ctx) => {
    const problem = checkCidr(t, family);
    if (problem) ctx.addIssue({ code: "custom", message: problem, input: t });
  });
}

const dnsName = z.string().regex(/^(?=.{1,253}$)[A-Za-z0-9_]([A-Za-z0-9_-]*[A-Za-z0-9])?(\.[A-Za-z0-9_]([A-Za-z0-9_-]*[A-Za-z0-9])?)*\.?$/, {
  error: "must be a DNS zone name such as zen.spamhaus.org",
});
/** "192.0.2.53", "2001:db8::53", or with a port: "192.0.2.53:5353", "[2001:db8::53]:5353". */
export function isNameServer(text: string): boolean {
  if (isIPv4(text) || isIPv6(text)) return true;
  const m = /^(?:\[([^\]]+)\]|([0-9.]+)):([0-9]{1,5})$/.exec(text);
  if (!m || Number(m[3]) < 1 || Number(m[3]) > 65535) return false;
  return m[1] !== undefined ? isIPv6(m[1]) : isIPv4(m[2]);
}
const nameServer = z.string().refine(isNameServer, {
  error: 'must be an IPv4 or IPv6 address, optionally with a port ("127.0.0.1:5353", "[::1]:5353")',
});

// ---------------------------------------------------------------------------------------------
// Section schemas (every item required: the effective configuration)

export const SecuritySchema = z.strictObject({
  privilege_mode: z.boolean(),
  effective_user: nonEmpty.nullable(),
  effective_group: nonEmpty.nullable(),
});

export const LogSchema = z.strictObject({
  level: logLevel,
  path: nonEmpty.nullable(),
  use_syslog: z.boolean(),
  syslog_facility: z.enum(SYSLOG_FACILITIES),
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
};

export const MilterSchema = z.strictObject({ name: nonEmpty, ...milterItems });

const S25rSchema = z.strictObject({ allow: z.array(pattern), deny: z.array(pattern), check_only_ipv4: z.boolean() });
const RemoteNetworkSchema = z.strictObject({ local_addresses: z.array(cidr()), remote_addresses: z.array(cidr()) });
const TrustSchema = z.strictObject({ envelope_from_domains: z.array(pattern) });
const StressSchema = z.strictObject({
  threshold_n_connections: z.union([z.literal("auto"), count], { error: 'must be "auto" or a non-negative integer' }),
});
const DnsblServiceSchema = z.strictObject({ zone: dnsName, expected_answer: cidr(4).nullable().default(null) });
const DnsblSchema = z.strictObject({
  services: z.array(DnsblServiceSchema),
  name_servers: z.array(nameServer),
  timeout: positiveSeconds,
  cache_ttl: seconds,
});
const RestrictAccountsRuleSchema = z.strictObject({
  name: nonEmpty,
  accounts: z.array(pattern).min(1, { error: "needs at least one account" }),
  milters: z.array(nonEmpty).nullable().default(null),
});

export const ConditionSettingsSchema = z.strictObject({
  s25r: S25rSchema,
  remote_network: RemoteNetworkSchema,
  trust: TrustSchema,
  stress: StressSchema,
  dnsbl: DnsblSchema,
  restrict_accounts: z.array(RestrictAccountsRuleSchema).superRefine((rules, ctx) => duplicates(rules, ctx)),
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

/** Adds an issue at [i, "name"] for every entry whose name already appeared earlier in the list. */
function duplicates(list: { name: string }[], ctx: z.RefinementCtx, what = "name"): void {
  const first = new Map<string, number>();
  list.forEach((entry, i) => {
    const j = first.get(entry.name);
    if (j === undefined) first.set(entry.name, i);
    else ctx.addIssue({ code: "custom", message: `duplicate ${what} "${entry.name}" (first at index ${j})`, path: [i, "name"], input: entry.name });
  });
}

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
      restrict_accounts: ConditionSettingsSchema.shape.restrict_accounts.optional(),
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
