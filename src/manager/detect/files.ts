// Readers for the files milters are configured with on Debian, each value with the line it came
// from: shell variable files (/etc/default/*, init scripts), systemd units (with drop-ins), and
// "Key value" / "Key = value" configuration files (opendkim.conf, clamav-milter.conf, ...).
// Every reader is given the path on the real system and the detection root it lives under, so
// tests point the root at a fixture tree. None of them throws: a file that cannot be read is
// simply not there.
import { lstatSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";

/** A value and where it was written: `file` is the path under the root, `line` 1-based. */
export interface Found {
  value: string;
  file: string;
  line: number;
}

/** A file system view rooted at `root` ("/" on a real system, a fixture tree in tests). */
export class Root {
  constructor(readonly dir: string) {}

  /** The path of a system path under this root. */
  path(systemPath: string): string {
    return this.dir === "/" ? systemPath : join(this.dir, systemPath);
  }

  read(systemPath: string): string | undefined {
    try {
      const st = statSync(this.path(systemPath));
      // A configuration file is small; a huge or special file is not read.
      if (!st.isFile() || st.size > 1 << 20) return undefined;
      return readFileSync(this.path(systemPath), "latin1");
    } catch {
      return undefined;
    }
  }

  /** True when the path exists (a dangling link counts: systemd's wants links are looked at, not followed). */
  exists(systemPath: string): boolean {
    try {
      lstatSync(this.path(systemPath));
      return true;
    } catch {
      return false;
    }
  }

  list(systemDir: string): string[] {
    try {
      return readdirSync(this.path(systemDir)).sort();
    } catch {
      return [];
    }
  }
}

/** Split text into lines, joining those ending with a backslash (shell and systemd continuation). */
function logicalLines(text: string): { text: string; line: number }[] {
  const out: { text: string; line: number }[] = [];
  const raw = text.split("\n");
  for (let i = 0; i < raw.length; i++) {
    const line = i + 1;
    let s = raw[i].replace(/\r$/, "");
    while (s.endsWith("\\") && i + 1 < raw.length) s = s.slice(0, -1) + " " + raw[++i].replace(/\r$/, "");
    out.push({ text: s, line });
  }
  return out;
}

/**
 * Words of a shell-like value: quotes removed, `$VAR` and `${VAR}` expanded from `vars`
 * (unknown variables expand to nothing, as in the shell).
 */
export function shellWords(text: string, vars: ReadonlyMap<string, Found> = new Map()): string[] {
  const words: string[] = [];
  let cur = "";
  let inWord = false;
  let quote = "";
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quote === "'") {
      if (c === "'") quote = "";
      else cur += c;
      continue;
    }
    if (c === "\\" && i + 1 < text.length) { cur += text[++i]; inWord = true; continue; }
    if (c === '"') { quote = quote === '"' ? "" : '"'; inWord = true; continue; }
    if (c === "'" && quote === "") { quote = "'"; inWord = true; continue; }
    if (c === "$") {
      const m = /^\$(?:\{([A-Za-z_][A-Za-z0-9_]*)(?::?-([^}]*))?\}|([A-Za-z_][A-Za-z0-9_]*))/.exec(text.slice(i));
      if (m) {
        const name = m[1] ?? m[3];
        const v = vars.get(name)?.value;
        cur += v !== undefined && v !== "" ? v : (m[2] ?? "");
        i += m[0].length - 1;
        inWord = true;
        continue;
      }
    }
    if (quote === "" && (c === " " || c === "\t")) {
      if (inWord) words.push(cur);
      cur = "";
      inWord = false;
      continue;
    }
    if (quote === "" && c === "#" && !inWord) break;
    cur += c;
    inWord = true;
  }
  if (inWord) words.push(cur);
  return words;
}

/**
 * Variable assignments of a shell file (`NAME=value`, `export NAME=value`) at the start of a
 * line, in order, later ones winning; values are expanded with the variables known so far
 * (`initial` first). Assignments inside `if` blocks are taken too unless `topLevelOnly`.
 */
export function shellVariables(
  root: Root,
  systemPath: string,
  initial: ReadonlyMap<string, Found> = new Map(),
  opts: { topLevelOnly?: boolean } = {},
): Map<string, Found> {
  const vars = new Map(initial);
  const text = root.read(systemPath);
  if (text === undefined) return vars;
  let depth = 0;
  for (const { text: l, line } of logicalLines(text)) {
    const s = l.trim();
    if (/^(if|case|while|for)\b/.test(s) || /\{\s*$/.test(s)) depth++;
    if (/^(fi|esac|done)\b/.test(s) || /^\}/.test(s)) depth = Math.max(0, depth - 1);
    if (opts.topLevelOnly && depth > 0) continue;
    const m = /^(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(s);
    if (!m) continue;
    const words = shellWords(m[2], vars);
    vars.set(m[1], { value: words.join(" "), file: systemPath, line });
  }
  return vars;
}

/** The value after a flag (`-p SPEC`, `-pSPEC`) in a word list. */
export function flagValue(words: readonly string[], flag: string): string | undefined {
  for (let i = 0; i < words.length; i++) {
    if (words[i] === flag && i + 1 < words.length) return words[i + 1];
    if (words[i].startsWith(flag) && words[i].length > flag.length && !words[i].startsWith("--")) return words[i].slice(flag.length);
  }
  return undefined;
}

/** A systemd unit: entries per section (repeated keys kept in order), from the unit and its drop-ins. */
export interface Unit {
  /** Path of the unit file. */
  file: string;
  entries: { section: string; key: string; found: Found }[];
}

export const UNIT_DIRS = ["/etc/systemd/system", "/run/systemd/system", "/lib/systemd/system", "/usr/lib/systemd/system"];

function parseUnitText(text: string, file: string, into: Unit["entries"]): void {
  let section = "";
  for (const { text: l, line } of logicalLines(text)) {
    const s = l.trim();
    if (s === "" || s.startsWith("#") || s.startsWith(";")) continue;
    const h = /^\[(.+)\]$/.exec(s);
    if (h) { section = h[1]; continue; }
    const eq = s.indexOf("=");
    if (eq < 0) continue;
    into.push({ section, key: s.slice(0, eq).trim(), found: { value: s.slice(eq + 1).trim(), file, line } });
  }
}

/**
 * The unit `name` as systemd would assemble it: the first unit file found in UNIT_DIRS, then the
 * `*.conf` drop-ins of `<name>.d/` (an empty assignment resets a list, as systemd does for ExecStart).
 * "masked" when the first one found is a link to /dev/null (or empty); undefined when there is none.
 */
export function readUnit(root: Root, name: string): Unit | "masked" | undefined {
  for (const dir of UNIT_DIRS) {
    const path = `${dir}/${name}`;
    if (!root.exists(path)) continue;
    const text = root.read(path);
    if (text === undefined || text.trim() === "") return "masked"; // a link to /dev/null, or unreadable
    const unit: Unit = { file: path, entries: [] };
    parseUnitText(text, path, unit.entries);
    for (const d of UNIT_DIRS) {
      const dropDir = `${d}/${name}.d`;
      for (const f of root.list(dropDir).filter((n) => n.endsWith(".conf"))) {
        const t = root.read(`${dropDir}/${f}`);
        if (t !== undefined) parseUnitText(t, `${dropDir}/${f}`, unit.entries);
      }
    }
    return unit;
  }
  return undefined;
}

/** Values of `section.key`, with empty assignments resetting the list. */
export function unitValues(unit: Unit, section: string, key: string): Found[] {
  const out: Found[] = [];
  for (const e of unit.entries) {
    if (e.section !== section || e.key !== key) continue;
    if (e.found.value === "") out.length = 0;
    else out.push(e.found);
  }
  return out;
}

/**
 * "Key value" or "Key = value" configuration file (opendkim.conf, clamav-milter.conf, pyspf-milter.conf):
 * the last setting of `key` (keys compared case-insensitively), `#` comments ignored.
 */
export function configValue(root: Root, systemPath: string, key: string): Found | undefined {
  const text = root.read(systemPath);
  if (text === undefined) return undefined;
  let found: Found | undefined;
  for (const { text: l, line } of logicalLines(text)) {
    const m = /^\s*([A-Za-z_][A-Za-z0-9_.-]*)\s*(?:=\s*|\s+)(.*?)\s*$/.exec(l);
    if (!m || m[1].toLowerCase() !== key.toLowerCase()) continue;
    let v = m[2].replace(/\s+#.*$/, "");
    if (/^".*"$/.test(v)) v = v.slice(1, -1);
    found = { value: v, file: systemPath, line };
  }
  return found;
}
