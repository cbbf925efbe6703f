// The one argv scanner of every tool, driven by its option table (format.ts). It knows the
// spellings of both families the tools copy: Postfix's getopt (grouped flags -cdv, values
// attached or separate: -s50, -s 50, options after operands) and GLib's long options
// (--opt VALUE, --opt=VALUE, --opt[=VALUE] for an optional value, --no-opt, -? for help).
// `--` ends the options. It only checks spelling; each tool checks its values.
import { type OptionDef, spellings, type ToolOptions } from "./format.ts";

/** A misspelt command line: unknown option, missing value, value on a flag. One line. */
export class UsageError extends Error {
  override readonly name = "UsageError";
}

/** scan(), with a usage error turned into the caller's own error type (the parsers callable outside the CLI). */
export function scanOr(table: ToolOptions, argv: readonly string[], toError: (message: string) => Error): Scanned {
  try {
    return scan(table, argv);
  } catch (e) {
    throw e instanceof UsageError ? toError(e.message) : e;
  }
}

export interface Occurrence {
  def: OptionDef;
  /** The value given (undefined for a flag, or an optional value left out). */
  value?: string;
  /** `--no-LONG`. */
  negated: boolean;
  /** How it was spelt, for messages: `--pid-file`, `-s`. */
  flag: string;
}

/** What argv said, in order. */
export class Scanned {
  constructor(readonly occurrences: readonly Occurrence[], readonly operands: readonly string[]) {}

  /** The occurrences of one option (by its long name), in order. */
  of(long: string): Occurrence[] {
    return this.occurrences.filter((o) => o.def.long === long);
  }

  /** A flag's state: true, false (`--no-LONG` last), undefined when not given. */
  flag(long: string): boolean | undefined {
    const l = this.of(long).at(-1);
    return l === undefined ? undefined : !l.negated;
  }

  /** How often a flag was given (-vv = 2); `--no-LONG` starts the count again at 0. */
  count(long: string): number {
    let n = 0;
    for (const o of this.of(long)) n = o.negated ? 0 : n + 1;
    return n;
  }

  /** The last value given (a repeated option overrides, as with getopt). */
  last(long: string): string | undefined {
    return this.all(long).at(-1);
  }

  /** Every value given, in order. */
  all(long: string): string[] {
    return this.of(long).flatMap((o) => (o.value === undefined ? [] : [o.value]));
  }
}

const cache = new WeakMap<object, ReturnType<typeof spellings>>();

/** Scan argv (without the program name) against a tool's table. Throws UsageError. */
export function scan(t: Pick<ToolOptions, "options" | "negatableFlags">, argv: readonly string[]): Scanned {
  let known = cache.get(t);
  if (!known) cache.set(t, (known = spellings(t)));
  const occurrences: Occurrence[] = [];
  const operands: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === "--") {
      operands.push(...argv.slice(i + 1));
      break;
    }
    if (arg.startsWith("--")) {
      const eq = arg.indexOf("=");
      const flag = eq < 0 ? arg : arg.slice(0, eq);
      const s = known.get(flag);
      if (!s) throw new UsageError(`unknown option '${flag}'`);
      const base = { def: s.def, negated: s.negated, flag };
      if (s.value === "none") {
        if (eq >= 0) throw new UsageError(`option '${flag}' takes no value`);
        occurrences.push(base);
      } else if (eq >= 0) occurrences.push({ ...base, value: arg.slice(eq + 1) });
      else if (s.value === "optional") occurrences.push(base);
      else if (i + 1 < argv.length) occurrences.push({ ...base, value: argv[++i] });
      else throw new UsageError(`option '${flag}' needs a value`);
      continue;
    }
    if (arg.startsWith("-") && arg.length > 1) {
      for (let j = 1; j < arg.length; j++) {
        const flag = `-${arg[j]}`;
        const s = known.get(flag);
        if (!s) throw new UsageError(`unknown option '${flag}'`);
        const base = { def: s.def, negated: false, flag };
        if (s.value === "none") {
          occurrences.push(base);
          continue;
        }
        // The rest of the group is the value: -s50; else the next argument: -s 50.
        const rest = arg.slice(j + 1);
        if (rest !== "") occurrences.push({ ...base, value: rest });
        else if (s.value === "optional") occurrences.push(base);
        else if (i + 1 < argv.length) occurrences.push({ ...base, value: argv[++i] });
        else throw new UsageError(`option '${flag}' needs a value`);
        break;
      }
      continue;
    }
    operands.push(arg);
  }
  return new Scanned(occurrences, operands);
}
