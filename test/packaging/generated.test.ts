// Man pages and shell completion are made from the option tables and the configuration schema:
// every option spelling of every tool is on its page and in both completions, every item of the
// configuration on milterkit.config(5). A new option or item without them fails here.
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { OPTION_TABLES, spellings } from "../../src/cli/options/index.ts";
import { INSTALL_LINKS_TABLE } from "../../src/cli/options/install-links.ts";
import { defaultConfig, ITEM_SECTIONS, MILTER_ITEMS } from "../../src/manager/config/schema.ts";
import { bashCompletion, COMMANDS, offered, zshCompletion } from "../../packaging/completion.ts";
import { allPages, configItems, configPage, INSTALLED_NAMES, milterkitPage, plainText, toolPage } from "../../packaging/man.ts";

const work = mkdtempSync(join(tmpdir(), "mk-generated-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** The option names of a page: the heads of its `.TP` entries under OPTIONS, split at commas. */
function pageSpellings(roff: string, section = "OPTIONS"): Set<string> {
  const lines = roff.split("\n");
  const start = lines.indexOf(`.SH ${section}`);
  const end = lines.findIndex((l, i) => i > start && l.startsWith(".SH "));
  const out = new Set<string>();
  for (let i = start; i < (end < 0 ? lines.length : end); i++) {
    if (lines[i] !== ".TP") continue;
    for (const name of plainText(lines[i + 1]).split(", ")) out.add(name.replace(/\[?=.*$/, ""));
  }
  return out;
}

describe("man pages", () => {
  for (const tool of Object.keys(OPTION_TABLES)) {
    test(`${INSTALLED_NAMES[tool]}: every option of the table, each spelling`, () => {
      const t = OPTION_TABLES[tool];
      const page = toolPage(tool);
      // Spelt on the page: all but the --no-NAME forms a negatableFlags table accepts for every flag (one sentence says so).
      const expected = [...spellings(t)].filter(([, s]) => !s.negated || s.def.negatable === true).map(([k]) => k);
      expect([...pageSpellings(page.text)].sort()).toEqual(expected.sort());
      if (t.negatableFlags) expect(plainText(page.text)).toContain("--no-NAME");
      for (const d of t.options) expect(plainText(page.text)).toContain(d.description.split(" ").slice(0, 4).join(" "));
    });
  }

  test("milterkit(1): every tool, install-links and its options", () => {
    const page = milterkitPage();
    const text = plainText(page.text);
    for (const [tool, name] of Object.entries(INSTALLED_NAMES)) expect(text).toContain(`${tool} (${name})`);
    expect([...pageSpellings(page.text, "INSTALL-LINKS")].sort()).toEqual([...spellings(INSTALL_LINKS_TABLE).keys()].sort());
  });

  test("milterkit.config(5): every item of every section, with its default", () => {
    const text = plainText(configPage().text);
    const config = defaultConfig();
    for (const section of ITEM_SECTIONS) {
      expect(text).toContain(`\n.SH [${section.toUpperCase()}]\n`);
      for (const [item, value] of Object.entries(config[section])) {
        const shown = item.endsWith("unix_socket_mode") ? "0o660" : JSON.stringify(value);
        expect(text).toContain(`.TP\n${item} (`);
        expect(text).toMatch(new RegExp(`\\.TP\\n${item} \\([^)]*; default ${shown.replace(/[[\]().*+?^$|\\]/g, "\\$&")}\\)`));
      }
    }
    for (const item of MILTER_ITEMS) expect(text).toContain(`.TP\n${item} (`);
    for (const cond of Object.keys(config.applicable_conditions)) expect(text).toContain(`[APPLICABLE_CONDITIONS.${cond.toUpperCase()}]`);
    // Every item has words of its own, not just its name.
    for (const it of configItems()) expect(it.description).not.toBe("");
  });

  test("pages: no source file references, nothing unescaped that roff would take as a request", () => {
    for (const p of allPages()) {
      for (const line of p.text.split("\n")) if (line.startsWith(".") || line.startsWith("'")) expect(line).toMatch(/^\.(TH|SH|SS|TP|PP|br|nf|fi|\\")( |$)/);
      expect(plainText(p.text)).not.toMatch(/\bsrc\/|\.ts:\d|§/);
    }
  });
});

describe("completion", () => {
  const bashFile = join(work, "milterkit.bash");
  writeFileSync(bashFile, bashCompletion());
  const bash = (words: string[]) => {
    const script = `source ${bashFile}; COMP_WORDS=(${words.map((w) => `'${w}'`).join(" ")}); COMP_CWORD=${words.length - 1}; _milterkit; printf '%s\\n' "\${COMPREPLY[@]}"`;
    const p = Bun.spawnSync(["bash", "--norc", "--noprofile", "-c", script], { stdout: "pipe", stderr: "pipe" });
    expect(p.stderr.toString()).toBe("");
    return p.stdout.toString().split("\n").filter(Boolean);
  };

  test("bash: every option of every tool, by its installed name and as milterkit TOOL", () => {
    for (const [tool, name] of Object.entries(INSTALLED_NAMES)) {
      const expected = offered(OPTION_TABLES[tool]).sort();
      expect(bash([name, "-"]).sort()).toEqual(expected);
      expect(bash(["milterkit", tool, "-"]).sort()).toEqual(expected);
    }
    expect(bash(["milterkit", "install-links", "-"]).sort()).toEqual([...spellings(INSTALL_LINKS_TABLE).keys()].sort());
    expect(bash(["milterkit", ""])).toEqual([...Object.keys(OPTION_TABLES), "install-links", "--help", "--version"]);
  });

  test("bash: values from choices, --opt=value and -o value, files for file options", () => {
    expect(bash(["milter-manager", "--event-loop-backend", "g"])).toEqual(["glib"]);
    expect(bash(["milter-manager", "--event-loop-backend", "=", "li"])).toEqual(["libev"]);
    expect(bash(["milter-manager", "--event-loop-backend", "="])).toEqual(["glib", "libev"]);
    expect(bash(["milter-manager", "-c", `${work}/`])).toEqual([]); // directories only: none in there
    expect(bash(["milter-manager", "--config", `${work}/milterkit.`])).toEqual([bashFile]);
    expect(bash(["milter-manager", "--connection-spec", "-"])).toEqual([]); // a value, not an option
  });

  test("bash: complete names every command the package installs", () => {
    expect(bashCompletion()).toContain(`\ncomplete -F _milterkit ${COMMANDS.join(" ")}\n`);
  });

  test("zsh: every option of every tool in its _arguments, and the file parses", () => {
    const text = zshCompletion();
    expect(text.split("\n")[0]).toBe(`#compdef ${COMMANDS.join(" ")}`);
    for (const [tool, t] of [...Object.entries(OPTION_TABLES), ["install-links", INSTALL_LINKS_TABLE] as const]) {
      const fn = `_milterkit_${tool.replace(/-/g, "_")}() {`;
      const body = text.slice(text.indexOf(fn), text.indexOf("\n}\n", text.indexOf(fn)));
      // Each spec: '[*][(exclusion list)]SPELLING[+|=|=-][description]...'
      const specd = new Set([...body.matchAll(/^ {4}'\*?(?:\([^)]*\))?(-[^[+=']*)/gm)].map((m) => m[1]));
      expect([...specd].sort()).toEqual(offered(t).sort());
    }
    const zsh = Bun.which("zsh");
    if (zsh) {
      const file = join(work, "_milterkit");
      writeFileSync(file, text);
      const p = Bun.spawnSync([zsh, "-n", file], { stderr: "pipe" });
      expect(p.stderr.toString()).toBe("");
      expect(p.exitCode).toBe(0);
    }
  });
});
