/**
 * Macros: name spelling (`j` ≡ `{j}`), symbol lists, filtering a macro set by
 * a requested list, and MacroContext — which values are visible at a given
 * point of a session, following libmilter's lifetime rule.
 */
import type { Macros, MtaCommand } from "./commands.ts";
import { commandLetter } from "./constants.ts";

export type { Macros } from "./commands.ts";

/**
 * Canonical key of a macro name: braces removed. `{j}` and `j` are the same
 * macro (libmilter's lookup treats them so); `{daemon_name}` → `daemon_name`.
 * milter-manager prints macros under this key.
 */
export function macroKey(name: string): string {
  return name.length >= 2 && name.charCodeAt(0) === 0x7b && name.charCodeAt(name.length - 1) === 0x7d
    ? name.slice(1, -1)
    : name;
}

/**
 * Spelling to put on the wire for a configured name: names given with braces
 * and single characters are kept as they are (`{daemon_name}`, `j`, `{j}`);
 * a longer bare name gets braces (`daemon_name` → `{daemon_name}`).
 */
export function macroWireName(name: string): string {
  if (name.length <= 1 || macroKey(name) !== name) return name;
  return `{${name}}`;
}

/** Look a macro up by any spelling: exact name first, then the other form (`j` ↔ `{j}`). */
export function getMacro(macros: Macros, name: string): string | undefined {
  const exact = macros.get(name);
  if (exact !== undefined) return exact;
  const key = macroKey(name);
  return key === name ? macros.get(`{${name}}`) : macros.get(key);
}

/** Split a symbol list (`{client_addr} j`, `i,{auth_type}`) at spaces and commas; empty items dropped. */
export function parseSymbolList(text: string): string[] {
  return text.split(/[\s,]+/).filter((s) => s !== "");
}

/** Join names into a symbol list as sent in an OPTNEG reply (space-separated). */
export function formatSymbolList(names: readonly string[]): string {
  return names.join(" ");
}

/**
 * The macros of `macros` that a symbol list asks for, in list order, under the
 * names as the list spells them; names without a value are left out (MTAs send
 * only macros that have a value). Each macro is sent once.
 */
export function filterMacros(macros: Macros, symbols: readonly string[]): Map<string, string> {
  const out = new Map<string, string>();
  const seen = new Set<string>();
  for (const name of symbols) {
    const key = macroKey(name);
    if (seen.has(key)) continue;
    seen.add(key);
    const value = getMacro(macros, name);
    if (value !== undefined) out.set(name, value);
  }
  return out;
}

/** Build a Macros map from a plain object (`{ j: "mx", "{daemon_name}": "mx" }`). */
export function macrosFrom(record: Readonly<Record<string, string>>): Map<string, string> {
  return new Map(Object.entries(record));
}

/**
 * Message stages in protocol order. A command clears the macros of every
 * stage after its own (libmilter keeps C H M R T N E; L and B are the
 * per-header and per-chunk lists Postfix sends, placed where they occur).
 */
const STAGE_ORDER = ["C", "H", "M", "R", "T", "L", "N", "B", "E"] as const;
/** Stages cleared by `A` (abort): MAIL … EOM. */
const TRANSACTION_STAGES = ["M", "R", "T", "L", "N", "B", "E"] as const;
/** Lookup order: the unknown-command stage, then the latest stage first. */
const LOOKUP_ORDER = ["U", "E", "B", "N", "L", "T", "R", "M", "H", "C"] as const;
const KNOWN_STAGES = new Set<string>(LOOKUP_ORDER);

/**
 * Which macro values are visible during a session, by libmilter's rule:
 * - a `D` for stage X replaces X's values;
 * - each command clears the stages after it (`C` clears H…E, `M` clears R…E, …);
 * - `A` clears MAIL…EOM (connect and HELO values stay);
 * - `K`, `Q` and `O` clear everything; `U` values live until the next `D U`, `C` or `K`.
 * Stage keys are command letters (`"C"`, `"H"`, …, as in MacroCommand.command).
 */
export class MacroContext {
  private readonly stages = new Map<string, Macros>();

  /** Record a `D` packet. Returns false (and stores nothing) for a stage letter that has no slot. */
  define(command: string, macros: Macros): boolean {
    if (!KNOWN_STAGES.has(command)) return false;
    this.stages.set(command, macros);
    return true;
  }

  /** A command arrived: drop the values it invalidates. */
  enter(command: string): void {
    switch (command) {
      case "A":
        for (const s of TRANSACTION_STAGES) this.stages.delete(s);
        return;
      case "K":
      case "Q":
      case "O":
        this.stages.clear();
        return;
      case "D":
        return;
      default: {
        const i = (STAGE_ORDER as readonly string[]).indexOf(command);
        if (i < 0) return;
        for (let j = i + 1; j < STAGE_ORDER.length; j++) this.stages.delete(STAGE_ORDER[j]);
        if (command === "C") this.stages.delete("U");
      }
    }
  }

  /** Apply a decoded command: `macro` defines, anything else enters. */
  apply(cmd: MtaCommand): void {
    if (cmd.type === "macro") this.define(cmd.command, cmd.macros);
    else this.enter(commandLetter(cmd.type));
  }

  /** Values defined for exactly one stage (e.g. `"C"`), if any. */
  stage(command: string): Macros | undefined {
    return this.stages.get(command);
  }

  /** A visible macro by any spelling; later stages win (see LOOKUP order in the class doc). */
  get(name: string): string | undefined {
    for (const s of LOOKUP_ORDER) {
      const m = this.stages.get(s);
      if (m === undefined) continue;
      const v = getMacro(m, name);
      if (v !== undefined) return v;
    }
    return undefined;
  }

  /** Every visible macro under its canonical key (braces removed); later stages override earlier ones. */
  visible(): Map<string, string> {
    const out = new Map<string, string>();
    for (let i = LOOKUP_ORDER.length - 1; i >= 0; i--) {
      const m = this.stages.get(LOOKUP_ORDER[i]);
      if (m) for (const [k, v] of m) out.set(macroKey(k), v);
    }
    return out;
  }

  /** Forget everything. */
  clear(): void {
    this.stages.clear();
  }
}
