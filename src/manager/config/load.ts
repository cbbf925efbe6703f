// Where the configuration comes from and how the layers combine:
//   defaults → main file → conf.d/* in name order → command-line overrides.
// Sections merge item by item; a milter of a name already defined has the items a later file
// sets updated in place (it keeps its position), a new name is appended. Every item remembers
// where it was set last (its Origin), for --show-config and error messages.
import { lstatSync, readdirSync, readFileSync, statSync } from "node:fs";
import { basename, extname, isAbsolute, join, resolve } from "node:path";
import { z } from "../conditions/zod.ts";
import { registerMilterkitModule } from "./define.ts";
// Auto-detection is loaded only when it runs: a resident manager that does not detect keeps none of it.
import type { Detection } from "../detect/index.ts";
import { detectedEntries } from "./detected.ts";
import { type ItemPath, LineMap, parseJsonWithLines, SourceSyntaxError, tomlErrorLine, tomlLines } from "./locate.ts";
import { checkModes } from "./modes.ts";
import {
  BUILTIN_CONDITION_NAMES,
  ConditionSchema,
  type ConfigFileContent,
  ConfigFileSchema,
  defaultConfig,
  defaultMilter,
  ITEM_SECTIONS,
  MILTER_ITEMS,
  type ManagerConfig,
  type MilterConfig,
} from "./schema.ts";

// ---------------------------------------------------------------------------------------------
// Types

/** Where an item's value was set last. */
export type Origin =
  | { kind: "default" }
  | { kind: "file"; file: string; line?: number }
  | { kind: "detected"; file: string; line?: number }
  | { kind: "command-line"; option: string };

/** Item key (see itemKey / milterKey) → Origin. Every item of the effective configuration has one. */
export type ConfigOrigins = Map<string, Origin>;

/** `--config FILE`, or a directory holding milterkit.config.* and conf.d/ (`-c`, env, /etc/milterkit). */
export type ConfigSource =
  | { kind: "file"; path: string }
  | { kind: "dir"; dir: string; explicit: boolean };

/** Sections the command line can override. */
export type OverridableSection = "security" | "log" | "manager";

/** One command-line override: section.item = value, set by `option` (e.g. "--n-workers"). */
export type Override = {
  [S in OverridableSection]: {
    [K in keyof ManagerConfig[S]]: { section: S; item: K; value: ManagerConfig[S][K]; option: string };
  }[keyof ManagerConfig[S]];
}[OverridableSection];

/** The result of loading: the typed configuration plus what the log and --show-config need. */
export interface LoadedConfig {
  config: ManagerConfig;
  origins: ConfigOrigins;
  source: ConfigSource;
  /** Files read, in the order applied. */
  files: string[];
  /** True when no configuration file was found and the built-in default is in use. */
  builtInDefault: boolean;
  /** Things worth one log line each (built-in default in use, ignored files, ...). */
  notes: string[];
  /** What auto-detection found, when it ran (manager.auto_detect). */
  detection?: Detection;
  /** Problems the administrator must hear about, one warning line each (security.strict_modes off). */
  warnings: string[];
}

/** A configuration problem; the message names the file, the item and what is wrong. */
export class ConfigError extends Error {
  constructor(message: string, readonly file?: string) {
    super(message);
    this.name = "ConfigError";
  }
}

export const DEFAULT_CONFIG_DIR = "/etc/milterkit";
export const CONFIG_DIR_ENV = "MILTERKIT_CONFIG_DIR";
/** Main file names, in the order they are looked for; the first that exists is used. */
export const MAIN_FILE_NAMES = ["milterkit.config.ts", "milterkit.config.js", "milterkit.config.json", "milterkit.config.toml"] as const;
export const CONF_D = "conf.d";

type Format = "ts" | "js" | "json" | "toml";
const FORMATS: Record<string, Format> = {
  ".ts": "ts", ".mts": "ts", ".js": "js", ".mjs": "js", ".cjs": "js", ".json": "json", ".toml": "toml",
};

const DEFAULT_ORIGIN: Origin = Object.freeze({ kind: "default" });

/** Origin key of a section item or condition setting: itemKey("manager", "connection_spec"). */
export function itemKey(...path: string[]): string {
  return path.join(".");
}

/** Origin key of a milter (no item: where it was first defined) or of one of its items. */
export function milterKey(name: string, item?: keyof MilterConfig): string {
  return `milters[${JSON.stringify(name)}]${item === undefined ? "" : `.${item}`}`;
}

/** Origin key of a condition written in the configuration (`conditions[...]`). */
export function conditionKey(name: string): string {
  return `conditions[${JSON.stringify(name)}]`;
}

/** `default`, `/etc/milterkit/milterkit.config.toml:12`, `command line (--pid-file)`. */
export function formatOrigin(o: Origin | undefined): string {
  if (!o || o.kind === "default") return "default";
  if (o.kind === "command-line") return `command line (${o.option})`;
  if (o.kind === "detected") return `detected from ${o.line === undefined ? o.file : `${o.file}:${o.line}`}`;
  return o.line === undefined ? o.file : `${o.file}:${o.line}`;
}

// ---------------------------------------------------------------------------------------------
// Source

/**
 * `--config FILE` wins; else `-c DIR`; else $MILTERKIT_CONFIG_DIR; else /etc/milterkit.
 * Relative paths are made absolute now, so a reload after daemonizing (cwd /) finds the same files.
 */
export function resolveConfigSource(opts: {
  configFile?: string;
  configDir?: string;
  env?: Record<string, string | undefined>;
  cwd?: string;
}): ConfigSource {
  const cwd = opts.cwd ?? process.cwd();
  const abs = (p: string) => (isAbsolute(p) ? p : resolve(cwd, p));
  if (opts.configFile !== undefined) return { kind: "file", path: abs(opts.configFile) };
  if (opts.configDir !== undefined) return { kind: "dir", dir: abs(opts.configDir), explicit: true };
  const env = (opts.env ?? process.env)[CONFIG_DIR_ENV];
  return { kind: "dir", dir: env ? abs(env) : DEFAULT_CONFIG_DIR, explicit: false };
}

function exists(path: string): boolean {
  try {
    lstatSync(path);
    return true;
  } catch {
    return false;
  }
}

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

/** The files a source stands for, in the order they are applied. */
export function configFiles(source: ConfigSource): { files: string[]; notes: string[] } {
  if (source.kind === "file") return { files: [source.path], notes: [] };
  const notes: string[] = [];
  const { dir } = source;
  if (!exists(dir)) {
    if (source.explicit) throw new ConfigError(`configuration directory ${dir} does not exist`);
    return { files: [], notes };
  }
  if (!isDirectory(dir)) throw new ConfigError(`configuration directory ${dir} is not a directory`);
  const files: string[] = [];
  const mains = MAIN_FILE_NAMES.filter((n) => exists(join(dir, n)));
  if (mains.length > 0) {
    files.push(join(dir, mains[0]));
    for (const other of mains.slice(1)) notes.push(`ignored ${join(dir, other)}: ${mains[0]} is used`);
  }
  const confD = join(dir, CONF_D);
  if (mains.length === 0 && !isDirectory(confD) && exists(join(dir, "milter-manager.conf"))) {
    // milter manager's directory: running on the built-in default would filter nothing.
    const conf = join(dir, "milter-manager.conf");
    throw new ConfigError(
      `${dir} holds milter manager's ${conf} and no milterkit configuration; convert it with: ` +
        `milter-manager --import-config=${conf} > ${join(dir, MAIN_FILE_NAMES[3])}`,
    );
  }
  if (isDirectory(confD)) {
    const names = readdirSync(confD).filter((n) => !n.startsWith(".")).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    for (const name of names) {
      const path = join(confD, name);
      if (isDirectory(path)) notes.push(`ignored ${path}: a directory`);
      else if (!FORMATS[extname(name)]) notes.push(`ignored ${path}: not a .ts, .js, .json or .toml file`);
      else files.push(path);
    }
  }
  return { files, notes };
}

// ---------------------------------------------------------------------------------------------
// Reading one file

export interface Layer {
  file: string;
  content: ConfigFileContent;
  lines?: LineMap;
  /** Where an item came from, when not `file` at a line of `lines` (detected milters). */
  originOf?: (path: ItemPath) => Origin | undefined;
}

let importSequence = 0;

function readText(file: string): string {
  try {
    return readFileSync(file, "utf8");
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why =
      code === "ENOENT" ? "no such file" :
      code === "EISDIR" ? "is a directory" :
      code === "EACCES" || code === "EPERM" ? "permission denied" :
      (e as Error).message;
    throw new ConfigError(`${file}: cannot read configuration: ${why}`, file);
  }
}

/** Bun reports a failed transpile as an AggregateError of BuildMessages with positions. */
function describeImportError(e: unknown): string {
  const err = e as { errors?: unknown[]; message?: string; name?: string };
  if (Array.isArray(err?.errors) && err.errors.length > 0) {
    return err.errors
      .map((m) => {
        const msg = m as { message?: string; position?: { line?: number; column?: number } };
        const pos = msg.position?.line ? `line ${msg.position.line}, column ${msg.position.column ?? 0}: ` : "";
        return `${pos}${msg.message ?? String(m)}`;
      })
      .join("; ");
  }
  if (e instanceof Error) return e.name && e.name !== "Error" ? `${e.name}: ${e.message}` : e.message;
  return String(err?.message ?? e);
}

async function readRaw(file: string, format: Format): Promise<{ raw: unknown; lines?: LineMap }> {
  const text = readText(file);
  if (format === "json") {
    try {
      const { value, lines } = parseJsonWithLines(text);
      return { raw: value, lines };
    } catch (e) {
      if (e instanceof SourceSyntaxError) throw new ConfigError(`${file}:${e.line}:${e.column}: JSON syntax error: ${e.problem}`, file);
      throw e;
    }
  }
  if (format === "toml") {
    try {
      return { raw: Bun.TOML.parse(text), lines: tomlLines(text) };
    } catch (e) {
      const line = tomlErrorLine(text, (t) => Bun.TOML.parse(t));
      const msg = (e as Error).message.replace(/^TOML Parse error: /, "");
      throw new ConfigError(`${file}${line ? `:${line}` : ""}: TOML syntax error: ${msg}`, file);
    }
  }
  registerMilterkitModule();
  let mod: { default?: unknown };
  try {
    // A new query string per load: a reload must not get the module cached by the previous one.
    mod = await import(`${file}?load=${++importSequence}`);
  } catch (e) {
    throw new ConfigError(`${file}: cannot load configuration: ${describeImportError(e)}`, file);
  }
  let value = mod.default;
  if (typeof value === "function") {
    try {
      value = await (value as () => unknown)();
    } catch (e) {
      throw new ConfigError(`${file}: the exported configuration function failed: ${describeImportError(e)}`, file);
    }
  }
  if (value === undefined) {
    throw new ConfigError(`${file}: no default export (write: export default defineConfig({ ... }))`, file);
  }
  return { raw: value };
}

/** Issue path → "milters[1].fallback_status". */
function dotPath(path: ItemPath): string {
  return path.map((p, n) => (typeof p === "number" ? `[${p}]` : n === 0 ? p : `.${p}`)).join("");
}

/** Every item and section name, for "did you mean" hints on unknown keys; made on the first misspelt key. */
let knownNames: string[] | undefined;
function knownNamesList(): string[] {
  if (knownNames) return knownNames;
  const names = new Set<string>([
    "milters", "applicable_conditions", "conditions", "name", "zone", "accounts", ...MILTER_ITEMS,
    ...Object.keys(ConditionSchema.shape),
  ]);
  const walk = (o: object) => {
    for (const [k, v] of Object.entries(o)) {
      names.add(k);
      if (v !== null && typeof v === "object" && !Array.isArray(v)) walk(v);
    }
  };
  walk(defaultConfig());
  return (knownNames = [...names]);
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) cur[j] = Math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = cur;
  }
  return prev[b.length];
}

/** The known name closest to a misspelt key, if it is close enough to be the likely intent. */
export function suggestName(key: string): string | undefined {
  let best: string | undefined;
  let bestDistance = Math.max(2, Math.floor(key.length / 4)) + 1;
  for (const n of knownNamesList()) {
    const d = editDistance(key.toLowerCase().replace(/-/g, "_"), n);
    if (d < bestDistance) { best = n; bestDistance = d; }
  }
  return best;
}

/** One block per zod issue, like z.prettifyError, plus the line when known; sorted by line. */
export function formatIssues(file: string, issues: readonly z.core.$ZodIssue[], lines?: LineMap): string {
  const blocks = issues.map((issue) => {
    const path = issue.path as ItemPath;
    const at = issue.code === "unrecognized_keys" ? [...path, issue.keys[0]] : path;
    const line = lines?.lookup(at);
    let text = z.prettifyError(new z.ZodError([issue]));
    if (issue.code === "unrecognized_keys") {
      const hint = issue.keys.map((k) => [k, suggestName(k)]).filter(([, s]) => s !== undefined);
      const words = issue.keys.length === 1 ? hint.map(([, s]) => `"${s}"`) : hint.map(([k, s]) => `"${s}" for "${k}"`);
      if (hint.length > 0) text = text.replace(/\n|$/, ` (did you mean ${words.join(", ")}?)$&`);
    }
    if (line !== undefined) text += path.length > 0 ? `, line ${line}` : `\n  → at line ${line}`;
    return { text, line: line ?? Number.MAX_SAFE_INTEGER };
  });
  blocks.sort((x, y) => x.line - y.line);
  return `${file}: invalid configuration\n${blocks.map((b) => b.text).join("\n")}`;
}

/** Read, parse and validate one configuration file. */
export async function readConfigFile(file: string): Promise<Layer> {
  const format = FORMATS[extname(file)];
  if (!format) {
    readText(file); // a missing file is reported as such first
    if (basename(file) === "milter-manager.conf" || extname(file) === ".conf") {
      throw new ConfigError(`${file}: this looks like a milter manager configuration (Ruby); convert it with: milter-manager --import-config=${file} > milterkit.config.toml`, file);
    }
    throw new ConfigError(`${file}: unsupported configuration file type "${extname(file) || basename(file)}" (expected .ts, .js, .json or .toml)`, file);
  }
  const { raw, lines } = await readRaw(file, format);
  const result = ConfigFileSchema.safeParse(raw);
  if (!result.success) throw new ConfigError(formatIssues(file, result.error.issues, lines), file);
  return { file, content: result.data, lines };
}

// ---------------------------------------------------------------------------------------------
// Merging

function defaultOrigins(config: ManagerConfig): ConfigOrigins {
  const origins: ConfigOrigins = new Map();
  for (const s of ITEM_SECTIONS) for (const k of Object.keys(config[s])) origins.set(itemKey(s, k), DEFAULT_ORIGIN);
  for (const [c, settings] of Object.entries(config.applicable_conditions)) {
    if (Array.isArray(settings)) origins.set(itemKey("applicable_conditions", c), DEFAULT_ORIGIN);
    else for (const k of Object.keys(settings)) origins.set(itemKey("applicable_conditions", c, k), DEFAULT_ORIGIN);
  }
  return origins;
}

function applyLayer(config: ManagerConfig, origins: ConfigOrigins, layer: Layer): void {
  const { content, file, lines } = layer;
  const at = (path: ItemPath): Origin => layer.originOf?.(path) ?? { kind: "file", file, line: lines?.lookup(path) };
  const set = (target: object, key: string, value: unknown) => {
    (target as Record<string, unknown>)[key] = structuredClone(value);
  };

  for (const s of ITEM_SECTIONS) {
    for (const [k, v] of Object.entries(content[s] ?? {})) {
      if (v === undefined) continue;
      set(config[s], k, v);
      origins.set(itemKey(s, k), at([s, k]));
    }
  }
  for (const [c, settings] of Object.entries(content.applicable_conditions ?? {})) {
    if (settings === undefined) continue;
    const section = config.applicable_conditions as unknown as Record<string, object>;
    if (Array.isArray(settings)) {
      set(section, c, settings);
      origins.set(itemKey("applicable_conditions", c), at(["applicable_conditions", c]));
      continue;
    }
    for (const [k, v] of Object.entries(settings)) {
      if (v === undefined) continue;
      set(section[c], k, v);
      origins.set(itemKey("applicable_conditions", c, k), at(["applicable_conditions", c, k]));
    }
  }
  // Conditions hold functions: kept as they are (not cloned); a later file's condition of the same
  // name replaces the earlier one in place, a new name is appended.
  (content.conditions ?? []).forEach((c, i) => {
    const j = config.conditions.findIndex((x) => x.name === c.name);
    if (j >= 0) config.conditions[j] = c;
    else config.conditions.push(c);
    origins.set(conditionKey(c.name), at(["conditions", i]));
  });
  (content.milters ?? []).forEach((m, i) => {
    let target = config.milters.find((x) => x.name === m.name);
    if (!target) {
      target = defaultMilter(m.name);
      config.milters.push(target);
      origins.set(milterKey(m.name), at(["milters", i]));
      for (const item of MILTER_ITEMS) origins.set(milterKey(m.name, item), item === "name" ? at(["milters", i, "name"]) : DEFAULT_ORIGIN);
    }
    for (const [k, v] of Object.entries(m)) {
      if (k === "name" || v === undefined) continue;
      set(target, k, v);
      origins.set(milterKey(m.name, k as keyof MilterConfig), at(["milters", i, k]));
    }
  });
}

/** Checks that need the merged result: required items and cross references. */
function checkMerged(config: ManagerConfig, origins: ConfigOrigins, detecting: boolean): void {
  const problems: string[] = [];
  const where = (key: string) => formatOrigin(origins.get(key));
  const rules = config.applicable_conditions.restrict_accounts;
  const known = new Set<string>([...BUILTIN_CONDITION_NAMES, ...rules.map((r) => r.name), ...config.conditions.map((c) => c.name)]);
  const milterNames = new Set(config.milters.map((m) => m.name));

  for (const m of config.milters) {
    // With auto-detection, a disabled entry without a socket switches off a detected milter of that name.
    if (m.connection_spec === "" && !(m.enabled === false && detecting)) {
      problems.push(`✖ milter "${m.name}" has no connection_spec\n  → at milters["${m.name}"], ${where(milterKey(m.name))}`);
    }
    for (const c of m.applicable_conditions) {
      if (!known.has(c)) {
        problems.push(
          `✖ unknown applicable condition "${c}" (known: ${[...known].join(", ")})\n` +
            `  → at milters["${m.name}"].applicable_conditions, ${where(milterKey(m.name, "applicable_conditions"))}`,
        );
      }
    }
  }
  const rulesAt = where(itemKey("applicable_conditions", "restrict_accounts"));
  for (const r of rules) {
    if ((BUILTIN_CONDITION_NAMES as readonly string[]).includes(r.name)) {
      problems.push(`✖ restrict_accounts rule name "${r.name}" is the name of a built-in condition\n  → at applicable_conditions.restrict_accounts, ${rulesAt}`);
    }
    for (const name of r.milters ?? []) {
      if (!milterNames.has(name)) {
        problems.push(`✖ restrict_accounts rule "${r.name}" names unknown milter "${name}"\n  → at applicable_conditions.restrict_accounts, ${rulesAt}`);
      }
    }
  }
  const ruleNames = new Set(rules.map((r) => r.name));
  for (const c of config.conditions) {
    const clash = (BUILTIN_CONDITION_NAMES as readonly string[]).includes(c.name)
      ? "a built-in condition"
      : ruleNames.has(c.name) ? "a restrict_accounts rule" : undefined;
    if (clash) problems.push(`✖ condition name "${c.name}" is the name of ${clash}\n  → at conditions, ${where(conditionKey(c.name))}`);
  }
  if (problems.length > 0) throw new ConfigError(`invalid configuration\n${problems.join("\n")}`);
}

/** Apply command-line overrides; they are a layer of their own, re-applied after every load. */
export function applyOverrides(config: ManagerConfig, origins: ConfigOrigins, overrides: readonly Override[]): void {
  for (const o of overrides) {
    (config[o.section] as unknown as Record<string, unknown>)[o.item] = structuredClone(o.value);
    origins.set(itemKey(o.section, o.item), { kind: "command-line", option: o.option });
  }
}

/** Merge already-read layers over the defaults (exported for tests and tools). */
export function mergeLayers(layers: readonly Layer[]): { config: ManagerConfig; origins: ConfigOrigins } {
  const config = defaultConfig();
  const origins = defaultOrigins(config);
  for (const layer of layers) applyLayer(config, origins, layer);
  return { config, origins };
}

/**
 * Load the configuration from `source` and apply the command-line `overrides` on top.
 * Call it again (same arguments) to reload: the overrides survive every reload.
 * Throws ConfigError with a message fit for the administrator.
 */
export async function loadEffectiveConfig(
  source: ConfigSource,
  overrides: readonly Override[] = [],
  opts: { detectRoot?: string } = {},
): Promise<LoadedConfig> {
  const { files, notes } = configFiles(source);
  // Before anything is read (a .ts file is executed): who could have written it.
  const modes = checkModes(files, source.kind === "dir" ? [source.dir, join(source.dir, CONF_D)] : []);
  const layers: (Layer | undefined)[] = [];
  for (const file of files) layers.push(modes.unsafe.has(file) ? undefined : await readConfigFile(file));
  const warnings: string[] = [];
  if (modes.problems.length > 0) {
    // Only files that pass the check can turn the check off: a writable file cannot vouch for itself.
    const strict = mergeLayers(layers.filter((l): l is Layer => l !== undefined)).config.security.strict_modes;
    if (strict) {
      const more = modes.problems.length > 1 ? ` (and ${modes.problems.length - 1} more)` : "";
      throw new ConfigError(`refusing the configuration: ${modes.problems[0]}${more}; security.strict_modes = false (in a file that passes this check) only warns`);
    }
    for (const p of modes.problems) warnings.push(`${p} (used anyway: security.strict_modes is false)`);
    for (let i = 0; i < files.length; i++) layers[i] ??= await readConfigFile(files[i]);
  }
  let { config, origins } = mergeLayers(layers as Layer[]);
  applyOverrides(config, origins, overrides);
  const builtInDefault = files.length === 0;
  let detection: Detection | undefined;
  const auto = config.manager.auto_detect;
  const detect = () => import("../detect/index.ts");
  if (auto === true || (auto === "auto" && builtInDefault)) {
    const { detectMilters, detectRoot } = await detect();
    detection = detectMilters(opts.detectRoot ?? detectRoot());
    // Detected milters go under the files: a file's milter of the same name overrides them item by item.
    ({ config, origins } = mergeLayers([detectedLayer(detection), ...(layers as Layer[])]));
    applyOverrides(config, origins, overrides);
    notes.push(detectionNote(detection));
  }
  checkMerged(config, origins, detection !== undefined);
  if (builtInDefault && source.kind === "dir") {
    const where = exists(source.dir) ? `in ${source.dir}` : `(${source.dir} does not exist)`;
    const children = config.milters.length === 0
      ? `no child milters, every session answered with manager.fallback_status "${config.manager.fallback_status}"`
      : `the detected child milters`;
    notes.unshift(`no configuration file ${where}: using the built-in default (listen on ${config.manager.connection_spec}, ${children})`);
    // A milter manager installation next to us: say how to bring its configuration over.
    const root = opts.detectRoot ?? (await detect()).detectRoot();
    const mm = "/etc/milter-manager/milter-manager.conf";
    if (exists(root === "/" ? mm : join(root, mm))) {
      notes.push(`milter manager's ${mm} is not read; convert it with: milter-manager --import-config=${mm} > ${join(source.dir, MAIN_FILE_NAMES[3])}`);
    }
  }
  return { config, origins, source, files, builtInDefault, notes, detection, warnings };
}

/** The detected milters as a layer of their own, each item's origin the file and line it was read from. */
export function detectedLayer(d: Detection): Layer {
  const entries = detectedEntries(d);
  return {
    file: "(auto-detection)",
    content: { milters: entries.map((e) => e.milter) },
    originOf: (path) => {
      if (path[0] !== "milters" || typeof path[1] !== "number") return undefined;
      const o = entries[path[1]]?.origins.get((path[2] ?? "") as never);
      return o ? { kind: "detected", file: o.file, line: o.line } : undefined;
    },
  };
}

function detectionNote(d: Detection): string {
  const found = d.detected.map((m) => `${m.name} (${m.connection_spec})`);
  const skipped = d.skipped.map((s) => `${s.name}: ${s.why}`);
  return `auto-detection${d.root === "/" ? "" : ` under ${d.root}`}: ${found.length === 0 ? "no milter found" : `found ${found.join(", ")}`}` +
    (skipped.length > 0 ? `; not used: ${skipped.join("; ")}` : "");
}
