// --show-config: the effective configuration as TOML that loads back to the same configuration.
// Every item is preceded by a comment naming where it was set: `# default`, `# FILE:LINE`
// (or `# FILE` for .ts/.js) or `# command line (--option)`. TOML has no null, so an unset item
// is printed as a comment; leaving it out gives the same (null) value when loaded again.
// The applicable conditions (built-in, restrict_accounts rules, written in a .ts/.js file) are
// listed in comments with their description, stages, settings and users: code is not TOML.
import { VERSION } from "../../version.ts";
import { conditionCatalog, conditionNamesOf, stagesOf } from "../conditions/registry.ts";
import { conditionKey, type ConfigOrigins, formatOrigin, itemKey, type LoadedConfig, milterKey } from "./load.ts";
import { noChildWarning } from "./fail-open.ts";
import { ITEM_SECTIONS, type ManagerConfig, MILTER_ITEMS } from "./schema.ts";

/** A TOML basic string. */
export function tomlString(s: string): string {
  let out = '"';
  for (const ch of s) {
    const c = ch.codePointAt(0)!;
    if (ch === '"') out += '\\"';
    else if (ch === "\\") out += "\\\\";
    else if (ch === "\n") out += "\\n";
    else if (ch === "\t") out += "\\t";
    else if (ch === "\r") out += "\\r";
    else if (c < 0x20 || c === 0x7f) out += `\\u${c.toString(16).padStart(4, "0")}`;
    else out += ch;
  }
  return out + '"';
}

function tomlKey(k: string): string {
  return /^[A-Za-z0-9_-]+$/.test(k) ? k : tomlString(k);
}

/** A TOML value; null inside inline tables is left out by the caller. */
export function tomlValue(v: unknown, key = ""): string {
  if (typeof v === "string") return tomlString(v);
  if (typeof v === "boolean") return String(v);
  if (typeof v === "number") {
    // Permission bits read best in octal, as in chmod.
    if (key === "unix_socket_mode") return `0o${v.toString(8).padStart(3, "0")}`;
    // Timeouts are fractional seconds; milter-manager prints them as 297.0.
    if (key.endsWith("_timeout") && Number.isInteger(v)) return `${v}.0`;
    return String(v);
  }
  if (Array.isArray(v)) {
    const items = v.map((x) => tomlValue(x));
    const one = `[${items.join(", ")}]`;
    return one.length <= 80 && !one.includes("\n") ? one : `[\n${items.map((x) => `  ${x},`).join("\n")}\n]`;
  }
  if (v !== null && typeof v === "object") {
    const parts = Object.entries(v)
      .filter(([, x]) => x !== null && x !== undefined)
      .map(([k, x]) => `${tomlKey(k)} = ${tomlValue(x, k)}`);
    return parts.length === 0 ? "{}" : `{ ${parts.join(", ")} }`;
  }
  throw new TypeError(`cannot write ${String(v)} as TOML`);
}

/** `# origin` then `key = value` (or a commented line when the value is null). */
function item(out: string[], origins: ConfigOrigins, originKey: string, key: string, value: unknown): void {
  out.push(`# ${formatOrigin(origins.get(originKey))}`);
  out.push(value === null || value === undefined ? `# ${tomlKey(key)} is not set` : `${tomlKey(key)} = ${tomlValue(value, key)}`);
}

/** The TOML text printed by --show-config. */
export function formatConfigToml(loaded: Pick<LoadedConfig, "config" | "origins" | "files" | "notes" | "builtInDefault"> & Partial<Pick<LoadedConfig, "warnings">>): string {
  const { config, origins } = loaded;
  const out: string[] = [`# milterkit ${VERSION} manager: effective configuration`];
  if (loaded.builtInDefault) {
    out.push("# no configuration file: built-in default");
  } else {
    out.push("# loaded from:");
    for (const f of loaded.files) out.push(`#   ${f}`);
  }
  for (const n of loaded.notes) out.push(`# note: ${n.replace(/\n/g, " ")}`);
  const unfiltered = noChildWarning(config);
  if (unfiltered) out.push(`# warning: ${unfiltered}`);
  for (const w of loaded.warnings ?? []) out.push(`# warning: ${w.replace(/\n/g, " ")}`);

  for (const s of ITEM_SECTIONS) {
    out.push("", `[${s}]`);
    for (const [k, v] of Object.entries(config[s])) item(out, origins, itemKey(s, k), k, v);
  }

  const conditions = config.applicable_conditions as unknown as Record<string, unknown>;
  out.push("", "[applicable_conditions]");
  for (const [c, v] of Object.entries(conditions)) {
    if (Array.isArray(v)) item(out, origins, itemKey("applicable_conditions", c), c, v);
  }
  for (const [c, v] of Object.entries(conditions)) {
    if (Array.isArray(v)) continue;
    out.push("", `[applicable_conditions.${tomlKey(c)}]`);
    for (const [k, x] of Object.entries(v as object)) item(out, origins, itemKey("applicable_conditions", c, k), k, x);
  }

  out.push("", ...conditionLines(config, origins));

  for (const m of config.milters) {
    out.push("", `# ${formatOrigin(origins.get(milterKey(m.name)))}`, "[[milters]]");
    for (const k of MILTER_ITEMS) item(out, origins, milterKey(m.name, k), k, m[k]);
  }
  return out.join("\n") + "\n";
}


/** Settings as one line of TOML, or as JSON when they hold something TOML cannot write. */
function settingsText(v: unknown): string {
  try {
    return tomlValue(v).replace(/\n\s*/g, " ");
  } catch {
    try {
      return JSON.stringify(v, (_k, x) => (typeof x === "function" ? "(function)" : x instanceof RegExp ? String(x) : x));
    } catch {
      return "(not printable)";
    }
  }
}

/** The `# applicable conditions` comment block. */
function conditionLines(config: ManagerConfig, origins: ConfigOrigins): string[] {
  const users = new Map<string, string[]>();
  for (const m of config.milters) {
    for (const n of conditionNamesOf(m, config)) users.set(n, [...(users.get(n) ?? []), m.name]);
  }
  const out = ["# applicable conditions (a milter names them in applicable_conditions):"];
  for (const { condition: c, source } of conditionCatalog(config)) {
    const from =
      source.kind === "built-in" ? "built-in" :
      source.kind === "restrict_accounts" ? `restrict_accounts rule, ${formatOrigin(origins.get(itemKey("applicable_conditions", "restrict_accounts")))}` :
      formatOrigin(origins.get(conditionKey(c.name)));
    const stages = stagesOf(c);
    const stops = stages.filter((s) => s !== "abort" && s !== "quit");
    const hears = stages.filter((s) => s === "abort" || s === "quit");
    const parts = [from, stops.length > 0 ? `runs at ${stops.join(", ")}` : "no stopper"];
    if (hears.length > 0) parts.push(`notified of ${hears.join(", ")}`);
    parts.push(`used by ${users.get(c.name)?.join(", ") ?? "no milter"}`);
    out.push(`# - ${c.name} (${parts.join("; ")})`);
    if (c.description) out.push(`#     ${c.description.replace(/\n/g, " ")}`);
    if (source.kind === "built-in" && source.settings) out.push(`#     settings: [${source.settings}]`);
    if (source.kind === "restrict_accounts") {
      const rule = config.applicable_conditions.restrict_accounts.find((r) => r.name === c.name)!;
      out.push(`#     settings: accounts = ${settingsText(rule.accounts)}, milters = ${rule.milters === null ? "every milter" : settingsText(rule.milters)}`);
    } else if (c.settings !== undefined) out.push(`#     settings: ${settingsText(c.settings)}`);
  }
  return out;
}
