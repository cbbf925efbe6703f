// --show-config: TOML with a provenance comment before every item, and loading that output
// back gives the same effective configuration.
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseManagerArgv } from "../../src/manager/config/cli.ts";
import { type ConfigSource, type LoadedConfig, loadEffectiveConfig } from "../../src/manager/config/load.ts";
import { defaultConfig } from "../../src/manager/config/schema.ts";
import { formatConfigToml, tomlString } from "../../src/manager/config/show.ts";

const FIXTURES = join(import.meta.dir, "../fixtures/config");
const tmpRoot = mkdtempSync(join(tmpdir(), "mk-config-show-"));
afterAll(() => rmSync(tmpRoot, { recursive: true, force: true }));
let n = 0;

/** Print, write the text to a new .toml file, load it again. */
async function roundTrip(loaded: LoadedConfig): Promise<{ text: string; again: LoadedConfig }> {
  const text = formatConfigToml(loaded);
  const path = join(tmpRoot, `shown-${++n}.toml`);
  writeFileSync(path, text);
  return { text, again: await loadEffectiveConfig({ kind: "file", path }) };
}

/** The comment line right before the line `key = ...` (the first such line after `after`). */
function originBefore(text: string, key: string, after = ""): string {
  const lines = text.split("\n");
  const start = after ? lines.indexOf(after) : 0;
  expect(start).toBeGreaterThanOrEqual(0);
  const i = lines.findIndex((l, k) => k > start && (l.startsWith(`${key} = `) || l === `# ${key} is not set`));
  expect(i).toBeGreaterThan(0);
  return lines[i - 1];
}

const sources: [string, ConfigSource][] = [
  ["TOML with every section", { kind: "file", path: join(FIXTURES, "full.toml") }],
  ["the JSON example", { kind: "file", path: join(FIXTURES, "basic.json") }],
  ["TypeScript", { kind: "file", path: join(FIXTURES, "config.ts") }],
  ["JavaScript", { kind: "file", path: join(FIXTURES, "config.js") }],
  ["a directory with conf.d", { kind: "dir", dir: join(FIXTURES, "dir"), explicit: true }],
  ["the built-in default", { kind: "dir", dir: join(tmpRoot, "none"), explicit: false }],
];

describe("round trip: shown TOML loads back to the same configuration", () => {
  for (const [name, source] of sources) {
    test(name, async () => {
      const loaded = await loadEffectiveConfig(source);
      const { again } = await roundTrip(loaded);
      expect(again.config).toEqual(loaded.config);
    });
  }

  test("with command-line overrides", async () => {
    const args = parseManagerArgv([
      "-s", "unix:/run/mk.sock", "--unix-socket-mode", "0600", "--pid-file", "/run/mk.pid", "-q", "--no-syslog",
      "--user", "milter", "--group-id", "120", "--n-workers", "2", "--daemon",
    ]);
    const loaded = await loadEffectiveConfig({ kind: "file", path: join(FIXTURES, "basic.json") }, args.overrides);
    const { text, again } = await roundTrip(loaded);
    expect(again.config).toEqual(loaded.config);
    expect(originBefore(text, "connection_spec")).toBe("# command line (-s)");
    expect(originBefore(text, "unix_socket_mode")).toBe("# command line (--unix-socket-mode)");
    expect(text).toContain("unix_socket_mode = 0o600\n");
    expect(originBefore(text, "level")).toBe("# command line (-q)");
    expect(originBefore(text, "effective_group")).toBe("# command line (--group-id)");
  });

  test("strings with quotes, backslashes, control characters and non-ASCII survive", async () => {
    const path = join(tmpRoot, "strings.json");
    const description = `say "hi" \\ back\nslash\ttab \u0001 \u007f é 日本 🎉`;
    writeFileSync(path, JSON.stringify({ milters: [{ name: "odd name ]]", description, connection_spec: "unix:/tmp/a b.sock", command_options: ["-x", "it's"] }] }));
    const loaded = await loadEffectiveConfig({ kind: "file", path });
    const { again } = await roundTrip(loaded);
    expect(again.config.milters[0].description).toBe(description);
    expect(again.config).toEqual(loaded.config);
    expect(tomlString("a\u0001")).toBe('"a\\u0001"');
  });
});

describe("provenance comments", () => {
  test("TOML items name file and line; unset items are comments", async () => {
    const path = join(FIXTURES, "full.toml");
    const text = formatConfigToml(await loadEffectiveConfig({ kind: "file", path }));
    expect(originBefore(text, "connection_spec", "[manager]")).toBe(`# ${path}:15`);
    expect(originBefore(text, "privilege_mode")).toBe(`# ${path}:4`);
    expect(originBefore(text, "custom_configuration_directory")).toBe("# default");
    expect(text).toContain("# default\n# custom_configuration_directory is not set\n");
    expect(originBefore(text, "allow", "[applicable_conditions.s25r]")).toBe(`# ${path}:45`);
    expect(text).toContain(`# ${path}:66\n[[milters]]\n# ${path}:67\nname = "clamav"\n`);
    expect(originBefore(text, "connection_timeout", "[[milters]]")).toBe(`# ${path}:75`);
    expect(text).toContain("connection_timeout = 10.5\n");
  });

  test("JSON lines, and conf.d files each name themselves", async () => {
    const dir = join(FIXTURES, "dir");
    const text = formatConfigToml(await loadEffectiveConfig({ kind: "dir", dir, explicit: true }));
    expect(text).toStartWith(
      `# milterkit ${(await import("../../src/version.ts")).VERSION} manager: effective configuration\n# loaded from:\n` +
        `#   ${dir}/milterkit.config.toml\n#   ${dir}/conf.d/10-spamassassin.json\n#   ${dir}/conf.d/20-clamav.toml\n`,
    );
    expect(originBefore(text, "enabled", "[[milters]]")).toBe(`# ${dir}/conf.d/10-spamassassin.json:5`);
    expect(originBefore(text, "fallback_status", "[[milters]]")).toBe(`# ${dir}/milterkit.config.toml:8`);
    expect(originBefore(text, "max_connections")).toBe(`# ${dir}/conf.d/20-clamav.toml:2`);
  });

  test("TypeScript items name the file (no line)", async () => {
    const path = join(FIXTURES, "config.ts");
    const text = formatConfigToml(await loadEffectiveConfig({ kind: "file", path }));
    expect(originBefore(text, "n_workers")).toBe(`# ${path}`);
    expect(originBefore(text, "max_connections")).toBe("# default");
  });

  test("milter-manager's layout: timeouts as 297.0, modes in octal, sections in order", () => {
    const text = formatConfigToml({ config: defaultConfig(), origins: new Map(), files: [], notes: [], builtInDefault: true });
    const headers = text.split("\n").filter((l) => l.startsWith("["));
    expect(headers).toEqual([
      "[security]", "[log]", "[manager]", "[controller]", "[applicable_conditions]",
      "[applicable_conditions.s25r]", "[applicable_conditions.remote_network]", "[applicable_conditions.trust]",
      "[applicable_conditions.stress]", "[applicable_conditions.dnsbl]",
    ]);
    expect(text).toContain("# default\nunix_socket_mode = 0o660\n");
    expect(text).toContain("# no configuration file: built-in default\n");
  });

  test("every item is preceded by exactly one origin comment", async () => {
    const text = formatConfigToml(await loadEffectiveConfig({ kind: "file", path: join(FIXTURES, "full.toml") }));
    const lines = text.split("\n");
    lines.forEach((l, i) => {
      if (/^[a-z_0-9]+ = /.test(l) || / is not set$/.test(l)) expect(lines[i - 1]).toMatch(/^# (default|\/.+|command line .+)$/);
    });
    // and every key = value line starts a value, continuation lines belong to multi-line arrays
    expect(Bun.TOML.parse(text)).toBeObject();
  });
});
