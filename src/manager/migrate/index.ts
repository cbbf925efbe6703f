// `milter-manager --import-config=FILE`: milter manager's Ruby configuration → milterkit TOML on
// standard output, each item preceded by `# FILE:LINE` of where it was set; what needs porting
// by hand on standard error with its file and line. Exit 0 when everything converted, 2 when
// something needs a hand, 1 when FILE cannot be read.
import { VERSION } from "../../version.ts";
import { tomlString, tomlValue } from "../config/show.ts";
import { ITEM_SECTIONS, MILTER_ITEMS } from "../config/schema.ts";
import { type Imported, importConfig, type Item, type Where } from "./convert.ts";

export { importConfig } from "./convert.ts";

function where(w: Where): string {
  return `${w.file}:${w.line}`;
}

function origin(item: Item): string {
  return `# ${item.at.map(where).join(", ")}`;
}

/** The TOML text of an import. */
export function formatImport(imp: Imported): string {
  const out: string[] = [
    `# milterkit ${VERSION} configuration imported from milter manager's`,
    ...imp.files.map((f) => `#   ${f}`),
  ];
  if (imp.manual.length > 0) out.push(`# ${imp.manual.length} item(s) could not be converted: see the import's error output`);
  for (const s of ITEM_SECTIONS) {
    const items = imp.sections[s];
    if (items.size === 0) continue;
    out.push("", `[${s}]`);
    for (const [k, item] of items) out.push(origin(item), `${k} = ${tomlValue(item.value, k)}`);
  }
  for (const [cond, settings] of imp.conditions) {
    out.push("", `[applicable_conditions.${cond}]`);
    for (const [k, item] of settings) out.push(origin(item), `${k} = ${tomlValue(item.value, k)}`);
  }
  for (const r of imp.restrict) {
    out.push("", `# ${where(r.at)}`, "[[applicable_conditions.restrict_accounts]]", `name = ${tomlString(r.name)}`, `accounts = ${tomlValue(r.accounts)}`);
    if (r.milters !== null) out.push(`milters = ${tomlValue(r.milters)}`);
  }
  for (const m of imp.milters) {
    out.push("", `# ${where(m.at)}`, "[[milters]]", `name = ${tomlString(m.name)}`);
    for (const k of MILTER_ITEMS) {
      const item = m.items.get(k);
      if (item) out.push(origin(item), `${k} = ${tomlValue(item.value, k)}`);
    }
  }
  return out.join("\n") + "\n";
}

/** What goes to standard error: notes, then each thing to port by hand. */
export function formatReport(imp: Imported): string {
  const out: string[] = [];
  for (const n of imp.notes) out.push(`${where(n.at)}: note: ${n.text.replace(/\n/g, " ")}`);
  for (const m of imp.manual) {
    out.push(`${m.at.file}:${m.at.line}${m.endLine > m.at.line ? `-${m.endLine}` : ""}: not converted: ${m.why}`);
    if (m.text !== "") out.push(...m.text.split("\n").map((l) => `    | ${l}`));
    if (m.skeleton) out.push("    port it by hand in a .ts configuration, starting from:", ...m.skeleton.split("\n").map((l) => `    ${l}`));
  }
  if (imp.manual.length > 0) out.push(`${imp.manual.length} item(s) need porting by hand`);
  return out.length === 0 ? "" : out.join("\n") + "\n";
}

/** The command: returns the exit status. */
export function runImport(file: string, io: { stdout: (t: string) => void; stderr: (t: string) => void }): number {
  let imp: Imported;
  try {
    imp = importConfig(file);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    io.stderr(`milter-manager: cannot read ${file}: ${code === "ENOENT" ? "no such file" : code === "EACCES" ? "permission denied" : code === "EISDIR" ? "is a directory" : (e as Error).message}\n`);
    return 1;
  }
  io.stdout(formatImport(imp));
  const report = formatReport(imp);
  if (report !== "") io.stderr(report);
  return imp.manual.length > 0 ? 2 : 0;
}
