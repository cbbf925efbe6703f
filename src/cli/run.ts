// Runs one tool's citty command strictly: citty accepts unknown flags and
// missing values silently, an administrator's typo must not go unnoticed.
import { type ArgsDef, type CommandDef, parseArgs, renderUsage } from "citty";
import { isatty } from "node:tty";
import { VERSION } from "../version.ts";

/** What a tool's run() returns: an exit code, or undefined for a server that keeps running. */
export type ToolResult = number | undefined | void;

export class UsageError extends Error {}

interface OptionInfo { name: string; type: "boolean" | "string" | "enum"; options?: string[]; optionalValue?: boolean }

function kebab(s: string): string {
  return s.replace(/([a-z0-9])([A-Z])/g, "$1-$2").toLowerCase();
}

/** Map every accepted spelling (--long, -s) to the option it names. */
function optionTable(def: ArgsDef): { long: Map<string, OptionInfo>; short: Map<string, OptionInfo> } {
  const long = new Map<string, OptionInfo>();
  const short = new Map<string, OptionInfo>();
  for (const [name, d] of Object.entries(def)) {
    if (d.type === "positional") continue;
    // optionalValue: `--opt` alone or `--opt=VALUE`, never the next argument (GLib's optional arguments).
    const info: OptionInfo = { name, type: (d.type ?? "string") as OptionInfo["type"], options: (d as any).options, optionalValue: (d as any).optionalValue };
    long.set(name, info);
    long.set(kebab(name), info);
    const aliases = (d as any).alias === undefined ? [] : ([] as string[]).concat((d as any).alias);
    for (const a of aliases) (a.length === 1 ? short : long).set(a, info);
  }
  return { long, short };
}

/** Throws UsageError naming the first unknown option or missing value. */
export function checkArgv(def: ArgsDef, argv: string[]): void {
  const { long, short } = optionTable(def);
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === "--") break;
    if (arg.startsWith("--")) {
      const eq = arg.indexOf("=");
      const name = eq < 0 ? arg.slice(2) : arg.slice(2, eq);
      let info = long.get(name);
      if (!info && name.startsWith("no-")) {
        const neg = long.get(name.slice(3));
        if (neg?.type === "boolean" && eq < 0) continue;
      }
      if (!info) throw new UsageError(`unknown option '--${name}'`);
      if (info.type === "boolean") {
        if (eq >= 0) throw new UsageError(`option '--${name}' takes no value`);
        continue;
      }
      let value: string | undefined;
      if (eq >= 0) value = arg.slice(eq + 1);
      else if (info.optionalValue) continue;
      else if (i + 1 < argv.length) value = argv[++i];
      if (value === undefined) throw new UsageError(`option '--${name}' needs a value`);
      checkEnum(info, `--${name}`, value);
    } else if (arg.startsWith("-") && arg.length > 1) {
      for (let j = 1; j < arg.length; j++) {
        const c = arg[j];
        const info = short.get(c);
        if (!info) throw new UsageError(`unknown option '-${c}'`);
        if (info.type === "boolean") continue;
        let value: string | undefined = arg.slice(j + 1);
        if (value === "") value = i + 1 < argv.length ? argv[++i] : undefined;
        if (value === undefined) throw new UsageError(`option '-${c}' needs a value`);
        checkEnum(info, `-${c}`, value);
        break;
      }
    }
  }
}

function checkEnum(info: OptionInfo, flag: string, value: string): void {
  if (info.type === "enum" && info.options && !info.options.includes(value)) {
    throw new UsageError(`option '${flag}' must be one of ${info.options.join(", ")} (got '${value}')`);
  }
}

/** Every value given for a repeatable string option, in order (citty keeps only the last). */
export function allValues(argv: string[], long: string, short?: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--") break;
    if (a === `--${long}`) { if (i + 1 < argv.length) out.push(argv[++i]); }
    else if (a.startsWith(`--${long}=`)) out.push(a.slice(long.length + 3));
    else if (short && a === `-${short}`) { if (i + 1 < argv.length) out.push(argv[++i]); }
    else if (short && a.startsWith(`-${short}`) && a.length > 2 && !a.startsWith("--")) out.push(a.slice(2));
  }
  return out;
}

/** citty's usage text, without colours unless the stream is a terminal. */
async function usage(cmd: CommandDef<any>, fd = 1): Promise<string> {
  const text = await renderUsage(cmd);
  return isatty(fd) && !process.env.NO_COLOR ? text : text.replace(/\x1b\[[0-9;]*m/g, "");
}

/**
 * Parse argv for `cmd` and run it. --help and --version are answered here;
 * a usage error prints one line plus the usage on stderr and yields exit 1.
 */
export async function runTool(cmd: CommandDef<any>, argv: string[]): Promise<ToolResult> {
  const def = (typeof cmd.args === "function" ? await (cmd.args as any)() : await cmd.args) ?? {};
  const meta = (typeof cmd.meta === "function" ? await (cmd.meta as any)() : await cmd.meta) ?? {};
  const beforeDashes = argv.indexOf("--") < 0 ? argv : argv.slice(0, argv.indexOf("--"));
  // `-?` is help too: tools whose `-h` is an option (milter-test-server's --header) need it.
  if (beforeDashes.includes("--help") || beforeDashes.includes("-?") || (!("h" in def) && !hasShort(def, "h") && beforeDashes.includes("-h"))) {
    process.stdout.write((await usage(cmd)) + "\n");
    return 0;
  }
  if (beforeDashes.includes("--version") && !("version" in def)) {
    process.stdout.write(`${meta.name ?? "milterkit"} ${VERSION}\n`);
    return 0;
  }
  try {
    checkArgv(def, argv);
    const args = parseArgs(argv, def);
    return await cmd.run?.({ rawArgs: argv, args, cmd } as any);
  } catch (e) {
    if (e instanceof UsageError || (e as any)?.name === "CLIError") {
      process.stderr.write(`${meta.name ?? "milterkit"}: ${(e as Error).message}\n\n${await usage(cmd, 2)}\n`);
      return 1;
    }
    throw e;
  }
}

function hasShort(def: ArgsDef, c: string): boolean {
  return Object.values(def).some((d) => ([] as string[]).concat((d as any).alias ?? []).includes(c));
}
