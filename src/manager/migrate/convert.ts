// milter manager configuration (Ruby DSL, read by ruby.ts) → milterkit configuration items, each
// with the file and line it came from. What has no declarative equivalent is collected as a
// `Manual` entry (file, line, why, the Ruby text and, for a condition, a defineCondition skeleton).
import { readFileSync } from "node:fs";
import { dirname, isAbsolute, join, resolve } from "node:path";
import type { z } from "zod";
import {
  BUILTIN_CONDITION_NAMES, ConditionSettingsSchema, ControllerSchema, defaultConfig, ITEM_SECTIONS, type ItemSection, LogSchema, ManagerSectionSchema, MILTER_ITEMS,
  MilterSchema, SecuritySchema,
} from "../config/schema.ts";
import { parseRuby, type Statement, type Value } from "./ruby.ts";

export interface Where {
  file: string;
  line: number;
}

/** An item of the result and every line that contributed to it. */
export interface Item {
  value: unknown;
  at: Where[];
}

export interface ImportedMilter {
  name: string;
  at: Where;
  items: Map<string, Item>;
}

export interface RestrictRule {
  at: Where;
  name: string;
  accounts: string[];
  milters: string[] | null;
}

/** Something a person has to port; `skeleton` is TypeScript to start from. */
export interface Manual {
  at: Where;
  endLine: number;
  why: string;
  text: string;
  skeleton?: string;
}

export interface Imported {
  sections: Record<ItemSection, Map<string, Item>>;
  /** applicable_conditions.<condition>.<setting> */
  conditions: Map<string, Map<string, Item>>;
  restrict: RestrictRule[];
  milters: ImportedMilter[];
  manual: Manual[];
  /** Dropped on purpose, with the reason (not needed in milterkit). */
  notes: { at: Where; text: string }[];
  files: string[];
}

const SECTION_ITEMS: Record<ItemSection, Set<string>> = Object.fromEntries(
  ITEM_SECTIONS.map((s) => [s, new Set(Object.keys(defaultConfig()[s]))]),
) as Record<ItemSection, Set<string>>;

/** Ruby stopper hooks → the defineCondition stage and its parameters. */
const STOPPERS: Record<string, { stage: string; params: string }> = {
  define_connect_stopper: { stage: "connect", params: "ctx, host, address" },
  define_helo_stopper: { stage: "helo", params: "ctx, fqdn" },
  define_envelope_from_stopper: { stage: "envelopeFrom", params: "ctx, from" },
  define_envelope_recipient_stopper: { stage: "envelopeRecipient", params: "ctx, recipient" },
  define_data_stopper: { stage: "data", params: "ctx" },
  define_header_stopper: { stage: "header", params: "ctx, name, value" },
  define_end_of_header_stopper: { stage: "endOfHeader", params: "ctx" },
  define_body_stopper: { stage: "body", params: "ctx, chunk" },
  define_end_of_message_stopper: { stage: "endOfMessage", params: "ctx" },
};

class CannotConvert extends Error {}

const SECTION_SCHEMAS = { security: SecuritySchema, log: LogSchema, manager: ManagerSectionSchema, controller: ControllerSchema } as const;

/** The schema of `applicable_conditions.<cond>.<key>`. */
function settingSchema(cond: string, key: string): z.ZodType | undefined {
  const c = (ConditionSettingsSchema.shape as Record<string, unknown>)[cond] as { shape?: Record<string, z.ZodType> } | undefined;
  return c?.shape?.[key];
}

/** The value if milterkit accepts it for that item (nil passes: it means "not set"). */
function checked(schema: z.ZodType | undefined, value: unknown, what: string): unknown {
  if (value === null || schema === undefined) return value;
  const r = schema.safeParse(value);
  if (!r.success) throw new CannotConvert(`${what}: ${r.error.issues[0].message}`);
  return r.data;
}

/** A Ruby literal as plain data (regexps as milterkit patterns "/source/flags"). */
function plain(v: Value): unknown {
  switch (v.kind) {
    case "string": return v.value;
    case "number": return v.value;
    case "bool": return v.value;
    case "nil": return null;
    case "symbol": return v.value;
    case "regexp": return pattern(v);
    case "array": return v.items.map(plain);
    case "hash": return Object.fromEntries(v.entries.map((e) => [e.key, plain(e.value)]));
  }
}

/** A Ruby regexp as a milterkit pattern: \A and \z become ^ and $, the m flag (dot matches newline) becomes s. */
export function pattern(v: Value & { kind: "regexp" }): string {
  if (v.flags.includes("x")) throw new CannotConvert("a regexp with the x (extended) flag");
  const source = v.source.replace(/\\A/g, "^").replace(/\\[zZ]/g, "$").replace(/\(\?([imx]+)\)/g, () => {
    throw new CannotConvert("a regexp with inline (?flags)");
  });
  const flags = [...new Set([...v.flags].map((f) => (f === "m" ? "s" : f)).filter((f) => f === "i" || f === "s"))].join("");
  try {
    new RegExp(source, flags);
  } catch {
    throw new CannotConvert(`regexp /${v.source}/ is not valid in JavaScript`);
  }
  return `/${source}/${flags}`;
}

function str(v: Value | undefined, what: string): string {
  if (v && (v.kind === "string" || v.kind === "symbol")) return v.value;
  throw new CannotConvert(`${what} must be a string`);
}

/** Convert the file `path` and what it loads. Unreadable main file: throws the fs error. */
export function importConfig(path: string): Imported {
  const out: Imported = {
    sections: { security: new Map(), log: new Map(), manager: new Map(), controller: new Map() },
    conditions: new Map(),
    restrict: [],
    milters: [],
    manual: [],
    notes: [],
    files: [],
  };
  const defaults = defaultConfig().applicable_conditions as unknown as Record<string, Record<string, unknown>>;

  const setItem = (map: Map<string, Item>, key: string, value: unknown, at: Where) => {
    if (value === null) map.delete(key);
    else map.set(key, { value, at: [at] });
  };
  /** Append to a condition list setting, starting from its default. */
  const appendSetting = (cond: string, key: string, values: unknown[], at: Where) => {
    const m = out.conditions.get(cond) ?? new Map<string, Item>();
    const cur = m.get(key) ?? { value: structuredClone(defaults[cond][key]) as unknown[], at: [] };
    const next = checked(settingSchema(cond, key), [...(cur.value as unknown[]), ...values], `${cond} ${key}`);
    m.set(key, { value: next, at: [...cur.at, at] });
    out.conditions.set(cond, m);
  };
  const setSetting = (cond: string, key: string, value: unknown, at: Where) => {
    const v = checked(settingSchema(cond, key), value, `${cond} ${key}`);
    const m = out.conditions.get(cond) ?? new Map<string, Item>();
    out.conditions.set(cond, m);
    m.set(key, { value: v, at: [at] });
  };
  const manual = (s: Statement, at: Where, why: string, skeleton?: string) =>
    out.manual.push({ at, endLine: s.endLine, why, text: s.text, skeleton });

  const loadFile = (file: string, required: boolean) => {
    let text: string;
    try {
      text = readFileSync(file, "utf8");
    } catch (e) {
      if (out.files.length === 0) throw e;
      if (required) out.manual.push({ at: { file: out.files.at(-1)!, line: 0 }, endLine: 0, why: `cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, text: "" });
      return;
    }
    out.files.push(file);
    for (const s of parseRuby(text)) topLevel(s, file);
  };

  const expand = (from: string, spec: string): string[] => {
    const base = isAbsolute(spec) ? spec : join(dirname(from), spec);
    if (!/[*?[{]/.test(spec)) return [resolve(base)];
    const glob = new Bun.Glob(isAbsolute(spec) ? spec.slice(1) : spec);
    const cwd = isAbsolute(spec) ? "/" : dirname(from);
    try {
      return [...glob.scanSync({ cwd, onlyFiles: true })].sort().map((f) => resolve(cwd, f));
    } catch {
      return [];
    }
  };

  const topLevel = (s: Statement, file: string) => {
    const at = { file, line: s.line };
    try {
      if (s.kind === "other") return manual(s, at, "Ruby code (not a declarative setting)", rubySkeleton(s.text));
      const [head, ...rest] = s.target;
      if (s.kind === "assign") {
        if (rest.length === 1 && (ITEM_SECTIONS as readonly string[]).includes(head)) {
          const section = head as ItemSection;
          if (!SECTION_ITEMS[section].has(rest[0])) throw new CannotConvert(`${head}.${rest[0]} has no milterkit equivalent`);
          return setItem(out.sections[section], rest[0], checked(SECTION_SCHEMAS[section].shape[rest[0] as never], plain(s.value), `${head}.${rest[0]}`), at);
        }
        if (head === "package" && rest.length === 1) {
          return void out.notes.push({ at, text: `${s.text}: not needed (milterkit's auto-detection reads Debian's files directly)` });
        }
        if (head === "database") throw new CannotConvert("database.* (ActiveRecord for Ruby conditions) has no milterkit equivalent; a condition in a .ts configuration can open its own database");
        if (rest.length === 1 && ["s25r", "stress", "dnsbl"].includes(head)) return conditionAssign(head, rest[0], s.value, at);
        throw new CannotConvert("assignment to a Ruby variable or an unknown item");
      }
      // calls
      const name = s.target.join(".");
      if (name === "load" || name === "load_if_exist") {
        const spec = str(s.args[0], name);
        if (/(^|\/)applicable-conditions\//.test(spec)) {
          return void out.notes.push({ at, text: `${s.text}: milter manager's built-in conditions are built into milterkit` });
        }
        const files = expand(file, spec);
        if (files.length === 0 && name === "load") throw new CannotConvert(`nothing matches ${spec}`);
        for (const f of files) loadFile(f, name === "load");
        return;
      }
      if (name === "load_default") {
        setItem(out.sections.manager, "auto_detect", true, at);
        return;
      }
      if (name === "define_milter") return defineMilter(s, file);
      if (name === "remove_milter") {
        const n = str(s.args[0], "the milter name");
        const i = out.milters.findIndex((m) => m.name === n);
        if (i >= 0) return void out.milters.splice(i, 1);
        // Not defined here: an auto-detected one; a disabled entry switches it off.
        const m: ImportedMilter = { name: n, at, items: new Map([["enabled", { value: false, at: [at] }]]) };
        out.milters.push(m);
        return;
      }
      if (name === "define_applicable_condition") return defineCondition(s, file);
      if (name === "restrict_accounts_by_list") return restrictByList(s, at);
      if (head === "s25r" || head === "remote_network" || head === "trust" || head === "dnsbl" || head === "stress") return conditionCall(s, at);
      if (head === "manager" && (rest[0] === "report_memory_statistics")) {
        return void out.notes.push({ at, text: `${s.text}: not needed (milterkit has no Ruby/GLib memory statistics)` });
      }
      if (head === "database") throw new CannotConvert("database.* (ActiveRecord for Ruby conditions) has no milterkit equivalent");
      throw new CannotConvert(`${name}: no milterkit equivalent`);
    } catch (e) {
      if (!(e instanceof CannotConvert)) throw e;
      manual(s, at, e.message, s.kind === "call" && s.block ? rubySkeleton(s.text) : undefined);
    }
  };

  const defineMilter = (s: Statement & { kind: "call" }, file: string) => {
    const name = str(s.args[0], "the milter name");
    const at = { file, line: s.line };
    // Re-defining a milter moves it to the end of the list, as milter manager does.
    const i = out.milters.findIndex((m) => m.name === name);
    const m: ImportedMilter = i >= 0 ? out.milters.splice(i, 1)[0] : { name, at, items: new Map() };
    const kept = i >= 0 ? ["fallback_status", "evaluation_mode"].filter((k) => m.items.has(k)) : [];
    if (kept.length > 0) {
      out.notes.push({ at, text: `define_milter("${name}") again: milter manager resets ${kept.join(" and ")} here unless set again; the import keeps the earlier value` });
    }
    out.milters.push(m);
    const param = s.block?.params[0];
    for (const b of s.block?.body ?? []) {
      const bat = { file, line: b.line };
      try {
        if (b.kind === "other" || b.target[0] !== param || b.target.length !== 2) throw new CannotConvert("Ruby code inside define_milter");
        const item = b.target[1];
        if (b.kind === "assign") {
          if (item === "applicable_conditions") {
            setItem(m.items, item, plain(b.value), bat);
          } else if ((MILTER_ITEMS as readonly string[]).includes(item) && item !== "name") {
            setItem(m.items, item, checked(MilterSchema.shape[item as keyof typeof MilterSchema.shape], plain(b.value), `milter.${item}`), bat);
          } else throw new CannotConvert(`milter.${item} has no milterkit equivalent`);
        } else if (item === "add_applicable_condition" || item === "<<") {
          const cur = m.items.get("applicable_conditions") ?? { value: [], at: [] };
          cur.value = [...(cur.value as string[]), str(b.args[0], "the condition name")];
          cur.at.push(bat);
          m.items.set("applicable_conditions", cur);
        } else throw new CannotConvert(`milter.${item}: no milterkit equivalent`);
      } catch (e) {
        if (!(e instanceof CannotConvert)) throw e;
        manual(b, bat, `${e.message} (milter "${name}")`);
      }
    }
  };

  const defineCondition = (s: Statement & { kind: "call" }, file: string) => {
    const name = str(s.args[0], "the condition name");
    const at = { file, line: s.line };
    if ((BUILTIN_CONDITION_NAMES as readonly string[]).includes(name)) {
      return void out.notes.push({ at, text: `define_applicable_condition("${name}"): built into milterkit` });
    }
    const param = s.block?.params[0];
    let description: string | undefined;
    const stages: { stage: string; params: string; ruby: string }[] = [];
    for (const b of s.block?.body ?? []) {
      if (b.kind === "assign" && b.target[0] === param && b.target[1] === "description" && b.value.kind === "string") description = b.value.value;
      else if (b.kind === "call" && b.target[0] === param && STOPPERS[b.target[1]]) stages.push({ ...STOPPERS[b.target[1]], ruby: b.text });
      else stages.push({ stage: "", params: "", ruby: b.text });
    }
    manual(s, at, `applicable condition "${name}" is written in Ruby`, conditionSkeleton(name, description, stages));
  };

  const restrictByList = (s: Statement & { kind: "call" }, at: Where) => {
    const accounts = s.args.map((a) => {
      if (a.kind === "regexp") return pattern(a);
      return str(a, "an account");
    });
    if (accounts.length === 0) throw new CannotConvert("restrict_accounts_by_list without accounts");
    const opt = (k: string) => s.options.find((o) => o.key === k)?.value;
    const cn = opt("condition_name");
    const ms = opt("milters");
    const rule: RestrictRule = {
      at,
      name: cn ? str(cn, "condition_name") : `Restrict Accounts by List: [${accounts.join(", ")}]`,
      accounts,
      // milter manager attaches the rule to every milter defined at that point when none is named.
      milters: ms ? (plain(ms) as unknown[]).map((x) => String(x)) : out.milters.map((m) => m.name),
    };
    if (s.options.some((o) => o.key !== "condition_name" && o.key !== "milters")) throw new CannotConvert("restrict_accounts_by_list with an unknown option");
    out.restrict.push(rule);
  };

  const conditionAssign = (head: string, item: string, v: Value, at: Where) => {
    if (head === "s25r" && item === "check_only_ipv4" && v.kind === "bool") return setSetting("s25r", "check_only_ipv4", v.value, at);
    if (head === "stress" && item === "threshold_n_connections" && v.kind === "number") return setSetting("stress", "threshold_n_connections", v.value, at);
    if (head === "dnsbl" && item === "name_server") return setSetting("dnsbl", "name_servers", [str(v, "dnsbl.name_server")], at);
    if (head === "dnsbl" && item === "name_servers" && v.kind === "array") return setSetting("dnsbl", "name_servers", v.items.map((x) => str(x, "a name server")), at);
    throw new CannotConvert(`${head}.${item} = ...: no milterkit equivalent for this value`);
  };

  const conditionCall = (s: Statement & { kind: "call" }, at: Where) => {
    const [head, method] = s.target;
    if (s.block || s.target.length !== 2) throw new CannotConvert(`${head}.${method} with a Ruby block`);
    const entry = (v: Value) => (v.kind === "regexp" ? pattern(v) : str(v, "an entry"));
    switch (`${head}.${method}`) {
      case "s25r.add_whitelist": return appendSetting("s25r", "allow", s.args.map(entry), at);
      case "s25r.add_blacklist": return appendSetting("s25r", "deny", s.args.map(entry), at);
      case "remote_network.add_local_address": return appendSetting("remote_network", "local_addresses", s.args.map((a) => str(a, "an address")), at);
      case "remote_network.add_remote_address": return appendSetting("remote_network", "remote_addresses", s.args.map((a) => str(a, "an address")), at);
      case "trust.add_envelope_from_domain": return appendSetting("trust", "envelope_from_domains", s.args.map(entry), at);
      case "trust.clear": return setSetting("trust", "envelope_from_domains", [], at);
      case "trust.load_envelope_from_domains": return trustFile(str(s.args[0], "the file name"), at);
      case "dnsbl.add_service": {
        const zone = str(s.args[0], "the zone");
        const answer = s.args[1] && s.args[1].kind !== "nil" ? str(s.args[1], "the expected answer") : null;
        return appendSetting("dnsbl", "services", [answer === null ? { zone } : { zone, expected_answer: answer }], at);
      }
    }
    throw new CannotConvert(`${head}.${method}: no milterkit equivalent`);
  };

  /** trust.load_envelope_from_domains(path): one domain per line, `#` comments, /regexp/ lines case-insensitive. */
  const trustFile = (path: string, at: Where) => {
    const full = isAbsolute(path) ? path : join(dirname(at.file), path);
    let text: string;
    try {
      text = readFileSync(full, "utf8");
    } catch (e) {
      throw new CannotConvert(`cannot read ${full}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
    const entries = text.split("\n").map((l) => l.replace(/#.*$/, "").trim()).filter((l) => l !== "")
      .map((l) => (/^\/.*\/$/.test(l) ? `${l}i` : l));
    appendSetting("trust", "envelope_from_domains", entries, at);
  };

  loadFile(resolve(path), true);
  return out;
}

/** A TypeScript skeleton for a Ruby applicable condition, the Ruby kept as comments. */
function conditionSkeleton(name: string, description: string | undefined, stages: { stage: string; params: string; ruby: string }[]): string {
  const lines = [
    `import { defineConfig, defineCondition } from "milterkit";`,
    `// Port of the Ruby condition "${name}"; a stopper returns true to stop the milter at that stage.`,
    `const condition = defineCondition({`,
    `  name: ${JSON.stringify(name)},`,
  ];
  if (description !== undefined) lines.push(`  description: ${JSON.stringify(description)},`);
  for (const s of stages) {
    const ruby = s.ruby.split("\n").map((l) => `    // ${l}`);
    if (s.stage === "") {
      lines.push(`  // not a stopper:`, ...ruby.map((l) => l.slice(2)));
      continue;
    }
    lines.push(`  ${s.stage}(${s.params}) {`, ...ruby, `    return false;`, `  },`);
  }
  lines.push(`});`, `export default defineConfig({ conditions: [condition] });`);
  return lines.join("\n");
}

function rubySkeleton(text: string): string | undefined {
  // Only conditions get a skeleton of their own; other Ruby gets a pointer to where logic goes.
  if (!/\b(if|unless|case|each|while)\b/.test(text)) return undefined;
  return [
    `// Logic in milterkit goes into a .ts configuration (conf.d/*.ts), e.g. a condition:`,
    `import { defineConfig, defineCondition } from "milterkit";`,
    `export default defineConfig({ conditions: [defineCondition({ name: "...", connect(ctx, host, address) { return false; } })] });`,
  ].join("\n");
}
