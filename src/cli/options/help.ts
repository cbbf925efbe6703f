// --help from a tool's table: usage line, description, then the options per section, names
// left-aligned and every line wrapped to the width (80 columns, or a narrower terminal).
import type { OptionDef, ToolOptions } from "./format.ts";

/** Column where option descriptions start; longer names put the description on the next line. */
const DESCRIPTION_COLUMN = 30;

/** Words of `text` wrapped to `width`, every line after `indent` spaces (the first too unless `first` is given). */
export function wrap(text: string, width: number, indent: number, first = indent): string[] {
  const lines: string[] = [];
  let line = " ".repeat(first);
  let empty = true;
  for (const word of text.split(/\s+/).filter(Boolean)) {
    if (!empty && line.length + 1 + word.length > width) {
      lines.push(line);
      line = " ".repeat(indent);
      empty = true;
    }
    line += (empty ? "" : " ") + word;
    empty = false;
  }
  if (!empty || lines.length === 0) lines.push(line);
  return lines;
}

/** `-s, --connection-spec=SPEC`, long-only names indented to line up with the long ones. */
export function optionNames(def: OptionDef, negatableFlags = false): string {
  const value = def.value ?? "none";
  const v = def.valueName ?? "VALUE";
  const suffix = value === "required" ? `=<${v}>` : value === "optional" ? `[=<${v}>]` : "";
  const longs = [def.long, ...(def.aliases ?? []).filter((a) => a.length > 1)];
  const shorts = [...(def.short ? [def.short] : []), ...(def.aliases ?? []).filter((a) => a.length === 1)];
  const negations = def.negatable && !negatableFlags && value === "none" ? longs.map((l) => `--no-${l}`) : [];
  const long = [...longs.map((l) => `--${l}`), ...negations].join(", ") + suffix;
  return shorts.length > 0 ? `${shorts.map((s) => `-${s}`).join(", ")}, ${long}` : `    ${long}`;
}

export function usageLine(t: ToolOptions): string {
  const operands = (t.operands ?? []).map((o) => (o.optional ? `[${o.name}]` : o.name)).join(" ");
  return `USAGE ${t.prog} [OPTIONS]${operands ? ` ${operands}` : ""}`;
}

/** The whole --help text, ending with a newline. */
export function renderHelp(t: ToolOptions, width = 80): string {
  const out: string[] = [usageLine(t), ""];
  for (const p of t.description) out.push(...wrap(p, width, 0), "");
  if (t.operands?.length) {
    out.push("OPERANDS");
    for (const o of t.operands) out.push(...entry(o.name, o.description, width));
    out.push("");
  }
  for (const section of t.sections) {
    const defs = t.options.filter((d) => d.section === section.id);
    if (defs.length === 0) continue;
    out.push(section.title.toUpperCase());
    for (const d of defs) {
      const dflt = d.default === undefined || d.default === false || d.description.includes("default") ? "" : ` (default ${d.default === true ? "on" : d.default})`;
      const item = d.item ? ` [${d.item}]` : "";
      out.push(...entry(optionNames(d, t.negatableFlags), d.description + dflt + item, width));
    }
    out.push("");
  }
  return out.join("\n");
}

function entry(names: string, description: string, width: number): string[] {
  const head = `  ${names}`;
  if (head.length + 2 <= DESCRIPTION_COLUMN) {
    const body = wrap(description, width, DESCRIPTION_COLUMN);
    body[0] = head.padEnd(DESCRIPTION_COLUMN) + body[0].trimStart();
    return body;
  }
  return [head, ...wrap(description, width, DESCRIPTION_COLUMN)];
}

/** The width --help is wrapped to: 80 columns, or the terminal's when it is narrower. */
export function helpWidth(columns: number | undefined): number {
  return columns && columns >= 40 ? Math.min(columns, 80) : 80;
}
