// Postfix-style option scanning: grouped short flags (-cdLNov), attached or
// separate values (-s50, -s 50), long names (--sessions 50, --sessions=50),
// options after operands, "--" ends options. Flags are counted (-vvv = 3).

export interface OptDef {
  /** Key in the result. */
  key: string;
  short?: string;
  long?: string;
  takesValue: boolean;
}

export class OptionError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "OptionError";
  }
}

export interface Scanned {
  /** Occurrences of each flag. */
  flags: Map<string, number>;
  /** Every value of each option, in order. */
  values: Map<string, string[]>;
  operands: string[];
}

export function getopt(argv: string[], defs: OptDef[]): Scanned {
  const byShort = new Map<string, OptDef>();
  const byLong = new Map<string, OptDef>();
  for (const d of defs) {
    if (d.short) byShort.set(d.short, d);
    if (d.long) byLong.set(d.long, d);
  }
  const flags = new Map<string, number>();
  const values = new Map<string, string[]>();
  const operands: string[] = [];
  const flag = (d: OptDef) => flags.set(d.key, (flags.get(d.key) ?? 0) + 1);
  const value = (d: OptDef, v: string) => {
    const list = values.get(d.key);
    if (list) list.push(v);
    else values.set(d.key, [v]);
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === "--") {
      operands.push(...argv.slice(i + 1));
      break;
    }
    if (arg.startsWith("--")) {
      const eq = arg.indexOf("=");
      const name = eq < 0 ? arg.slice(2) : arg.slice(2, eq);
      let d = byLong.get(name);
      if (!d && name.startsWith("no-") && eq < 0) {
        const pos = byLong.get(name.slice(3));
        if (pos && !pos.takesValue) {
          flags.set(pos.key, 0);
          values.set(`no-${pos.key}`, ["1"]);
          continue;
        }
      }
      if (!d) throw new OptionError(`unknown option '--${name}'`);
      if (!d.takesValue) {
        if (eq >= 0) throw new OptionError(`option '--${name}' takes no value`);
        flag(d);
        continue;
      }
      if (eq >= 0) value(d, arg.slice(eq + 1));
      else if (i + 1 < argv.length) value(d, argv[++i]);
      else throw new OptionError(`option '--${name}' needs a value`);
      continue;
    }
    if (arg.startsWith("-") && arg.length > 1) {
      for (let j = 1; j < arg.length; j++) {
        const d = byShort.get(arg[j]);
        if (!d) throw new OptionError(`unknown option '-${arg[j]}'`);
        if (!d.takesValue) {
          flag(d);
          continue;
        }
        if (j + 1 < arg.length) value(d, arg.slice(j + 1));
        else if (i + 1 < argv.length) value(d, argv[++i]);
        else throw new OptionError(`option '-${arg[j]}' needs a value`);
        break;
      }
      continue;
    }
    operands.push(arg);
  }
  return { flags, values, operands };
}

/** The last value of an option (a repeated option overrides, as with getopt). */
export function last(s: Scanned, key: string): string | undefined {
  const v = s.values.get(key);
  return v === undefined ? undefined : v[v.length - 1];
}

/** Was `--no-<long>` given for this flag? */
export function negated(s: Scanned, key: string): boolean {
  return s.values.has(`no-${key}`);
}

/** A positive integer (Postfix's counts), or undefined when `text` is not one. */
export function positiveInt(text: string, min = 1, max = Number.MAX_SAFE_INTEGER): number | undefined {
  if (!/^[0-9]+$/.test(text)) return undefined;
  const n = Number(text);
  return n >= min && n <= max ? n : undefined;
}

/** A time interval in seconds: "5", "1.5", "250ms", "2s", "1m", "1h"; undefined unless > 0. */
export function interval(text: string): number | undefined {
  const m = /^([0-9]+(?:\.[0-9]+)?)(ms|s|m|h)?$/.exec(text);
  if (!m) return undefined;
  const scale = m[2] === "ms" ? 0.001 : m[2] === "m" ? 60 : m[2] === "h" ? 3600 : 1;
  const n = Number(m[1]) * scale;
  return n > 0 && Number.isFinite(n) ? n : undefined;
}
