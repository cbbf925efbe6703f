// The one format every tool's options are written in. A table is plain data: the scanner
// (scan.ts), --help (help.ts) and, later, man pages and shell completion are made from it.

/** How an option takes its value: never, always (`--opt V`, `--opt=V`, `-oV`, `-o V`), or only as `--opt=V`. */
export type ValueRule = "none" | "required" | "optional";

export interface OptionDef {
  /** The option's key in the scan result and its main spelling `--long`. */
  long: string;
  /** The one-letter spelling `-c`. */
  short?: string;
  /** Other spellings: one character is a short name (`-x`), anything longer a long one (`--name`). */
  aliases?: readonly string[];
  /** Default "none": a flag. */
  value?: ValueRule;
  /** Placeholder of the value in --help: SPEC, N, FILE. */
  valueName?: string;
  /** The values the tool accepts, for --help and completion (the tool checks them). */
  choices?: readonly string[];
  /**
   * How the tool reads a repeated option (Scanned.last, .all, .count; the scanner takes any option
   * more than once): "last" (default) the last occurrence counts; "list" every value in order; "count" -vv is 2.
   */
  repeat?: "last" | "list" | "count";
  /** `--no-LONG` turns the flag off; false: not even with the table's negatableFlags. */
  negatable?: boolean;
  /** The value in force when the option is absent, for --help and man pages. */
  default?: string | number | boolean;
  /** The configuration item the option overrides (the manager's), shown in --help as [item]. */
  item?: string;
  /** Id of the --help section the option is listed under. */
  section: string;
  description: string;
  /** What a shell completes the value with. */
  complete?: "file" | "directory" | "user" | "group";
}

export interface Section {
  id: string;
  title: string;
}

export interface Operand {
  name: string;
  description: string;
  optional?: boolean;
}

export interface ToolOptions {
  /** The tool's name in `milterkit TOOL` and in the registry. */
  tool: string;
  /** The program name it reports and is linked as: milter-manager, smtp-source. */
  prog: string;
  /** One line for listings. */
  summary: string;
  /** Paragraphs shown by --help after the usage line. */
  description: readonly string[];
  sections: readonly Section[];
  options: readonly OptionDef[];
  operands?: readonly Operand[];
  /** Every flag also takes `--no-LONG` (GLib style), without listing it in --help. */
  negatableFlags?: boolean;
}

/** One accepted spelling (`--name`, `-c`, `--no-name`) and what it stands for. */
export interface Spelling {
  def: OptionDef;
  /** `--no-LONG`: the flag turned off. */
  negated: boolean;
  /** How this spelling takes a value (a negation takes none). */
  value: ValueRule;
}

/** Every spelling a table accepts, keyed with its dashes: the scanner's and the completion's view. */
export function spellings(t: Pick<ToolOptions, "options" | "negatableFlags">): Map<string, Spelling> {
  const out = new Map<string, Spelling>();
  const add = (key: string, s: Spelling) => {
    if (out.has(key)) throw new Error(`option table: '${key}' is spelled twice`);
    out.set(key, s);
  };
  for (const def of t.options) {
    const value = def.value ?? "none";
    const names = [def.long, ...(def.short ? [def.short] : []), ...(def.aliases ?? [])];
    for (const n of names) add(n.length === 1 ? `-${n}` : `--${n}`, { def, negated: false, value });
  }
  // Negations last: an option really named no-x wins over the negation of x.
  for (const def of t.options) {
    if ((def.value ?? "none") !== "none" || def.negatable === false || !(def.negatable || t.negatableFlags)) continue;
    for (const n of [def.long, ...(def.aliases ?? [])]) {
      if (n.length > 1 && !out.has(`--no-${n}`)) out.set(`--no-${n}`, { def, negated: true, value: "none" });
    }
  }
  return out;
}

/** The section helpOptions() puts its options in. */
export const HELP_SECTION = { id: "help", title: "Help" } as const;

/** The help options of every tool: --help and -? (and -h, unless the tool's -h is another option), --version. */
export function helpOptions(o: { h: boolean }): OptionDef[] {
  return [
    { long: "help", short: "?", aliases: o.h ? ["h"] : [], negatable: false, section: "help", description: "Show this help and exit" },
    { long: "version", negatable: false, section: "help", description: "Print the version and exit" },
  ];
}
