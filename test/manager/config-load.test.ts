// Loading the configuration: every format, conf.d merging, the built-in default, the
// environment variable, every error message, and command-line overrides surviving a reload.
import { afterAll, describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  ConfigError,
  type ConfigSource,
  formatOrigin,
  itemKey,
  loadEffectiveConfig,
  milterKey,
  type Override,
  resolveConfigSource,
} from "../../src/manager/config/load.ts";
import { defaultConfig } from "../../src/manager/config/schema.ts";

const FIXTURES = join(import.meta.dir, "../fixtures/config");
const tmpRoot = mkdtempSync(join(tmpdir(), "mk-config-load-"));
afterAll(() => rmSync(tmpRoot, { recursive: true, force: true }));

let dirCount = 0;
/** A fresh directory holding `files` (relative path → content). */
function dirWith(files: Record<string, string>): string {
  const dir = join(tmpRoot, `d${++dirCount}`);
  mkdirSync(dir, { recursive: true });
  for (const [name, text] of Object.entries(files)) {
    mkdirSync(join(dir, name, ".."), { recursive: true });
    writeFileSync(join(dir, name), text);
  }
  return dir;
}

const file = (path: string): ConfigSource => ({ kind: "file", path });

/** The ConfigError message of loading `source`. */
async function errorOf(source: ConfigSource, overrides: Override[] = []): Promise<string> {
  try {
    await loadEffectiveConfig(source, overrides);
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return (e as Error).message;
  }
  throw new Error("expected a ConfigError");
}

/** Load a single file with the given name and content. */
async function errorOfFile(name: string, text: string): Promise<{ message: string; path: string }> {
  const path = join(dirWith({ [name]: text }), name);
  return { message: await errorOf(file(path)), path };
}

describe("formats", () => {
  test("JSON: the example from the issue", async () => {
    const { config, origins } = await loadEffectiveConfig(file(join(FIXTURES, "basic.json")));
    expect(config.manager.connection_spec).toBe("inet:10025@[127.0.0.1]");
    expect(config.manager.fallback_status).toBe("accept");
    expect(config.milters.map((m) => m.name)).toEqual(["spamassassin", "opendkim"]);
    expect(config.milters[0]).toMatchObject({ connection_spec: "unix:/run/spamass.sock", fallback_status: "temporary-failure", evaluation_mode: false });
    expect(config.milters[1]).toMatchObject({ connection_spec: "inet:8891@[127.0.0.1]", evaluation_mode: true, fallback_status: "accept", reading_timeout: 7 });
    expect(origins.get(itemKey("manager", "fallback_status"))).toEqual({ kind: "file", file: join(FIXTURES, "basic.json"), line: 1 });
    expect(origins.get(milterKey("opendkim", "fallback_status"))).toEqual({ kind: "default" });
  });

  test("TOML: every section", async () => {
    const { config, origins } = await loadEffectiveConfig(file(join(FIXTURES, "full.toml")));
    expect(config.security).toEqual({ privilege_mode: true, effective_user: "milter", effective_group: "milter", strict_modes: true });
    expect(config.log).toEqual({ level: "error|warning|statistics", path: "/var/log/milterkit.log", use_syslog: false, syslog_facility: "local3", format: "text" });
    expect(config.manager).toMatchObject({ unix_socket_mode: 0o600, n_workers: 4, chunk_size: 32768, fallback_status_at_disconnect: "reject" });
    expect(config.controller).toMatchObject({ connection_spec: "unix:/run/milterkit/controller.sock", unix_socket_mode: 0o640 });
    expect(config.applicable_conditions.dnsbl.services).toEqual([
      { zone: "zen.spamhaus.org", expected_answer: "127.0.0.2/31" },
      { zone: "dnsbl.example.net", expected_answer: null },
    ]);
    expect(config.applicable_conditions.restrict_accounts).toEqual([
      { name: "Only sales", accounts: ["sales@example.com", "/^info@/i"], milters: ["clamav"] },
    ]);
    expect(config.milters[0]).toMatchObject({ name: "clamav", command_options: ["start", "--quiet"], connection_timeout: 10.5 });
    expect(config.milters[1]).toMatchObject({ name: "spamass", enabled: false, command_options: "-f -p 11120" });
    expect(origins.get(itemKey("manager", "connection_spec"))).toEqual({ kind: "file", file: join(FIXTURES, "full.toml"), line: 15 });
    expect(origins.get(milterKey("spamass", "command_options"))).toEqual({ kind: "file", file: join(FIXTURES, "full.toml"), line: 85 });
    expect(origins.get(itemKey("applicable_conditions", "dnsbl", "name_servers"))).toMatchObject({ line: 64 });
  });

  test("TypeScript through defineConfig from the virtual module \"milterkit\"", async () => {
    const { config, origins } = await loadEffectiveConfig(file(join(FIXTURES, "config.ts")));
    expect(config.manager).toMatchObject({ connection_spec: "inet:10025@[127.0.0.1]", fallback_status: "temporary-failure", n_workers: 2 });
    expect(config.log.level).toBe("all");
    expect(config.milters.map((m) => [m.name, m.evaluation_mode])).toEqual([["spamassassin", false], ["opendkim", true]]);
    expect(origins.get(itemKey("manager", "n_workers"))).toEqual({ kind: "file", file: join(FIXTURES, "config.ts"), line: undefined });
  });

  test("TypeScript outside the repository (no node_modules, no tsconfig) also sees \"milterkit\"", async () => {
    const dir = dirWith({
      "milterkit.config.ts": `import { defineConfig, z } from "milterkit";\n` +
        `const port: number = z.coerce.number().parse("10031");\n` +
        `export default defineConfig({ manager: { connection_spec: \`inet:\${port}@[127.0.0.1]\` } });\n`,
    });
    const { config, files } = await loadEffectiveConfig({ kind: "dir", dir, explicit: true });
    expect(files).toEqual([join(dir, "milterkit.config.ts")]);
    expect(config.manager.connection_spec).toBe("inet:10031@[127.0.0.1]");
  });

  test("JavaScript", async () => {
    const { config } = await loadEffectiveConfig(file(join(FIXTURES, "config.js")));
    expect(config.manager).toMatchObject({ connection_spec: "inet:10026@[127.0.0.1]", max_connections: 50 });
    expect(config.milters[0]).toMatchObject({ name: "opendkim", reading_timeout: 15 });
  });

  test("a default export may be a (async) function returning the configuration", async () => {
    const dir = dirWith({ "c.js": `export default async () => ({ manager: { n_workers: 7 } });\n` });
    const { config } = await loadEffectiveConfig(file(join(dir, "c.js")));
    expect(config.manager.n_workers).toBe(7);
  });

  test("an empty TOML file is the defaults", async () => {
    const dir = dirWith({ "empty.toml": "# nothing yet\n" });
    const { config, builtInDefault } = await loadEffectiveConfig(file(join(dir, "empty.toml")));
    expect(config).toEqual(defaultConfig());
    expect(builtInDefault).toBe(false);
  });
});

describe("configuration directory", () => {
  test("main file then conf.d/* in name order; same-name milters update in place, new ones append", async () => {
    const dir = join(FIXTURES, "dir");
    const { config, origins, files, notes } = await loadEffectiveConfig({ kind: "dir", dir, explicit: true });
    expect(files).toEqual([
      join(dir, "milterkit.config.toml"),
      join(dir, "conf.d/10-spamassassin.json"),
      join(dir, "conf.d/20-clamav.toml"),
    ]);
    expect(notes).toEqual([`ignored ${join(dir, "conf.d/README")}: not a .ts, .js, .json or .toml file`]);
    expect(config.manager).toMatchObject({ connection_spec: "inet:10030@[127.0.0.1]", fallback_status: "temporary-failure", max_connections: 100 });
    expect(config.milters.map((m) => m.name)).toEqual(["spamassassin", "opendkim", "clamav"]);
    // conf.d changed only `enabled`; fallback_status from the main file stays (unlike milter-manager's re-definition).
    expect(config.milters[0]).toMatchObject({ enabled: false, fallback_status: "reject", connection_spec: "unix:/run/spamass.sock" });
    expect(config.milters[1]).toMatchObject({ evaluation_mode: true, connection_spec: "inet:8891@[127.0.0.1]" });
    expect(formatOrigin(origins.get(milterKey("spamassassin", "enabled")))).toBe(`${join(dir, "conf.d/10-spamassassin.json")}:5`);
    expect(formatOrigin(origins.get(milterKey("spamassassin", "fallback_status")))).toBe(`${join(dir, "milterkit.config.toml")}:8`);
    expect(formatOrigin(origins.get(milterKey("clamav")))).toBe(`${join(dir, "conf.d/20-clamav.toml")}:4`);
    expect(formatOrigin(origins.get(itemKey("manager", "max_connections")))).toBe(`${join(dir, "conf.d/20-clamav.toml")}:2`);
  });

  test("the first main file of .ts, .js, .json, .toml wins; the others are noted", async () => {
    const dir = dirWith({
      "milterkit.config.toml": `[manager]\nn_workers = 1\n`,
      "milterkit.config.json": `{"manager": {"n_workers": 2}}`,
      "milterkit.config.js": `export default { manager: { n_workers: 3 } };\n`,
    });
    const { config, notes } = await loadEffectiveConfig({ kind: "dir", dir, explicit: true });
    expect(config.manager.n_workers).toBe(3);
    expect(notes).toEqual([
      `ignored ${join(dir, "milterkit.config.json")}: milterkit.config.js is used`,
      `ignored ${join(dir, "milterkit.config.toml")}: milterkit.config.js is used`,
    ]);
  });

  test("conf.d alone (no main file) is enough; hidden files are skipped", async () => {
    const dir = dirWith({
      "conf.d/b.json": `{"milters": [{"name": "b", "connection_spec": "unix:/b"}]}`,
      "conf.d/a.toml": `[[milters]]\nname = "a"\nconnection_spec = "unix:/a"\n`,
      "conf.d/.a.toml.swp": "garbage",
    });
    const { config, builtInDefault, notes } = await loadEffectiveConfig({ kind: "dir", dir, explicit: true });
    expect(config.milters.map((m) => m.name)).toEqual(["a", "b"]);
    expect(builtInDefault).toBe(false);
    expect(notes).toEqual([]);
  });

  test("no file at all: the built-in default, and a note saying so", async () => {
    const dir = dirWith({});
    const loaded = await loadEffectiveConfig({ kind: "dir", dir, explicit: false });
    expect(loaded.builtInDefault).toBe(true);
    expect(loaded.files).toEqual([]);
    expect(loaded.config).toEqual(defaultConfig());
    expect(loaded.config.manager.connection_spec).toBe("inet:10025@[127.0.0.1]");
    expect(loaded.config.milters).toEqual([]);
    expect(loaded.notes).toEqual([
      `no configuration file in ${dir}: using the built-in default (listen on inet:10025@[127.0.0.1], ` +
        `no child milters, every session answered with manager.fallback_status "accept")`,
      // The built-in default detects installed milters; test/preload.ts points detection at an empty tree.
      `auto-detection under ${process.env.MILTERKIT_DETECT_ROOT}: no milter found`,
    ]);
  });

  test("the default directory may be missing altogether", async () => {
    const loaded = await loadEffectiveConfig({ kind: "dir", dir: join(tmpRoot, "absent"), explicit: false });
    expect(loaded.builtInDefault).toBe(true);
    expect(loaded.notes[0]).toContain(`(${join(tmpRoot, "absent")} does not exist): using the built-in default`);
  });

  test("source: --config, then -c, then $MILTERKIT_CONFIG_DIR, then /etc/milterkit; relative paths made absolute", () => {
    const env = { MILTERKIT_CONFIG_DIR: "/srv/mk" };
    expect(resolveConfigSource({ configFile: "x.toml", cwd: "/home/a", env })).toEqual({ kind: "file", path: "/home/a/x.toml" });
    expect(resolveConfigSource({ configDir: "conf", cwd: "/home/a", env })).toEqual({ kind: "dir", dir: "/home/a/conf", explicit: true });
    expect(resolveConfigSource({ env })).toEqual({ kind: "dir", dir: "/srv/mk", explicit: false });
    expect(resolveConfigSource({ env: {} })).toEqual({ kind: "dir", dir: "/etc/milterkit", explicit: false });
  });

  test("$MILTERKIT_CONFIG_DIR is where the configuration is read from", async () => {
    const dir = dirWith({ "milterkit.config.json": `{"manager": {"pid_file": "/run/env.pid"}}` });
    const source = resolveConfigSource({ env: { MILTERKIT_CONFIG_DIR: dir } });
    const { config, files } = await loadEffectiveConfig(source);
    expect(files).toEqual([join(dir, "milterkit.config.json")]);
    expect(config.manager.pid_file).toBe("/run/env.pid");
  });
});

describe("error messages name the file, the item and the problem", () => {
  test("unknown key, with a suggestion", async () => {
    const { message, path } = await errorOfFile("c.toml", `[manager]\nconection_spec = "inet:1"\n`);
    expect(message).toBe(`${path}: invalid configuration\n✖ Unrecognized key: "conection_spec" (did you mean "connection_spec"?)\n  → at manager, line 2`);
  });

  test("unknown section", async () => {
    const { message, path } = await errorOfFile("c.json", `{\n  "manger": {}\n}\n`);
    expect(message).toBe(`${path}: invalid configuration\n✖ Unrecognized key: "manger" (did you mean "manager"?)\n  → at line 2`);
  });

  test("bad type", async () => {
    const { message, path } = await errorOfFile("c.json", `{\n  "manager": {\n    "daemon": "yes"\n  }\n}\n`);
    expect(message).toBe(`${path}: invalid configuration\n✖ Invalid input: expected boolean, received string\n  → at manager.daemon, line 3`);
  });

  test("bad status", async () => {
    const { message, path } = await errorOfFile("c.toml", `[[milters]]\nname = "a"\nconnection_spec = "unix:/a"\nfallback_status = "tempfail"\n`);
    expect(message).toBe(
      `${path}: invalid configuration\n✖ Invalid option: expected one of "accept"|"temporary-failure"|"reject"|"discard"\n  → at milters[0].fallback_status, line 4`,
    );
  });

  test("bad connection spec (manager and milter)", async () => {
    const { message, path } = await errorOfFile("c.toml", `[manager]\nconnection_spec = "inet:99999@[127.0.0.1]"\n\n[[milters]]\nname = "a"\nconnection_spec = "tcp:25"\n`);
    expect(message).toBe(
      `${path}: invalid configuration\n` +
        `✖ invalid connection spec <inet:99999@[127.0.0.1]>: port 99999 is greater than 65535\n  → at manager.connection_spec, line 2\n` +
        `✖ invalid connection spec <tcp:25>: unknown scheme "tcp" (expected unix:, local:, inet: or inet6:)\n  → at milters[0].connection_spec, line 6`,
    );
  });

  test("several problems are all reported, in line order", async () => {
    const { message } = await errorOfFile("c.toml", `[manager]\nn_workers = -1\nchunk_size = 70000\nfallback_status = "ok"\n`);
    const lines = [...message.matchAll(/line (\d+)/g)].map((m) => Number(m[1]));
    expect(lines).toEqual([2, 3, 4]);
  });

  test("duplicate milter names in one file", async () => {
    const { message, path } = await errorOfFile(
      "c.json",
      `{"milters": [\n  {"name": "a", "connection_spec": "unix:/a"},\n  {"name": "a", "connection_spec": "unix:/b"}\n]}\n`,
    );
    expect(message).toBe(`${path}: invalid configuration\n✖ duplicate milter name "a" (first at index 0)\n  → at milters[1].name, line 3`);
  });

  test("a milter without connection_spec", async () => {
    const { message, path } = await errorOfFile("c.toml", `[[milters]]\nname = "lonely"\nenabled = false\n`);
    expect(message).toBe(`invalid configuration\n✖ milter "lonely" has no connection_spec\n  → at milters["lonely"], ${path}:1`);
  });

  test("an unknown applicable condition name", async () => {
    const { message, path } = await errorOfFile("c.toml", `[[milters]]\nname = "a"\nconnection_spec = "unix:/a"\napplicable_conditions = ["S25R", "Remote Networks"]\n`);
    expect(message).toContain(`✖ unknown applicable condition "Remote Networks" (known: S25R, Remote Network,`);
    expect(message).toContain(`→ at milters["a"].applicable_conditions, ${path}:4`);
  });

  test("restrict_accounts rules define condition names and must name existing milters", async () => {
    const ok = dirWith({
      "c.toml": `[[applicable_conditions.restrict_accounts]]\nname = "Sales only"\naccounts = ["sales@example.com"]\nmilters = ["a"]\n\n` +
        `[[milters]]\nname = "a"\nconnection_spec = "unix:/a"\napplicable_conditions = ["Sales only"]\n`,
    });
    expect((await loadEffectiveConfig(file(join(ok, "c.toml")))).config.milters[0].applicable_conditions).toEqual(["Sales only"]);
    const { message } = await errorOfFile("c.toml", `[[applicable_conditions.restrict_accounts]]\nname = "S25R"\naccounts = ["x"]\nmilters = ["zz"]\n`);
    expect(message).toContain(`✖ restrict_accounts rule name "S25R" is the name of a built-in condition`);
    expect(message).toContain(`✖ restrict_accounts rule "S25R" names unknown milter "zz"`);
  });

  test("JSON syntax error with line and column", async () => {
    const { message, path } = await errorOfFile("c.json", `{\n  "manager": {\n    "daemon": true,\n  }\n}\n`);
    expect(message).toBe(`${path}:4:3: JSON syntax error: expected a key in double quotes, found "}"`);
  });

  test("JSON duplicate key is an error", async () => {
    const { message, path } = await errorOfFile("c.json", `{"log": {"level": "all"},\n "log": {}}`);
    expect(message).toBe(`${path}:2:2: JSON syntax error: duplicate key "log"`);
  });

  test("TOML syntax error with the line", async () => {
    const { message, path } = await errorOfFile("c.toml", `[manager]\ndaemon = true\n\nfallback_status = accept\n`);
    expect(message).toStartWith(`${path}:4: TOML syntax error: `);
  });

  test("TypeScript syntax error with line and column", async () => {
    const { message, path } = await errorOfFile("c.ts", `export default {\n  manager: { daemon: true ,, },\n};\n`);
    expect(message).toStartWith(`${path}: cannot load configuration: line 2, column `);
  });

  test("a TypeScript configuration that throws", async () => {
    const { message, path } = await errorOfFile("c.ts", `throw new RangeError("no port left");\n`);
    expect(message).toBe(`${path}: cannot load configuration: RangeError: no port left`);
  });

  test("a TypeScript configuration with a bad item", async () => {
    const { message, path } = await errorOfFile("c.ts", `export default { manager: { n_workers: "four" } };\n`);
    expect(message).toBe(`${path}: invalid configuration\n✖ Invalid input: expected number, received string\n  → at manager.n_workers`);
  });

  test("a module without default export", async () => {
    const { message, path } = await errorOfFile("c.js", `export const manager = {};\n`);
    expect(message).toBe(`${path}: no default export (write: export default defineConfig({ ... }))`);
  });

  test("missing --config file", async () => {
    const path = join(tmpRoot, "nope.toml");
    expect(await errorOf(file(path))).toBe(`${path}: cannot read configuration: no such file`);
  });

  test("unreadable file: a directory given as file, a dangling link in conf.d", async () => {
    const dir = dirWith({ "x.toml/inside": "" });
    expect(await errorOf(file(join(dir, "x.toml")))).toBe(`${join(dir, "x.toml")}: cannot read configuration: is a directory`);
    const d2 = dirWith({ "conf.d/10-ok.toml": "" });
    symlinkSync(join(d2, "gone.toml"), join(d2, "conf.d/20-dangling.toml"));
    expect(await errorOf({ kind: "dir", dir: d2, explicit: true })).toBe(`${join(d2, "conf.d/20-dangling.toml")}: cannot read configuration: no such file`);
  });

  test("unsupported file type", async () => {
    const { message, path } = await errorOfFile("c.yaml", "manager: {}\n");
    expect(message).toBe(`${path}: unsupported configuration file type ".yaml" (expected .ts, .js, .json or .toml)`);
  });

  test("missing -c directory", async () => {
    const dir = join(tmpRoot, "no-such-dir");
    expect(await errorOf({ kind: "dir", dir, explicit: true })).toBe(`configuration directory ${dir} does not exist`);
  });

  test("the first bad file of a directory stops the load and is named", async () => {
    const dir = dirWith({ "milterkit.config.toml": `[manager]\nn_workers = 1\n`, "conf.d/50-bad.json": `{"log": {"level": "loud"}}` });
    expect(await errorOf({ kind: "dir", dir, explicit: true })).toBe(
      `${join(dir, "conf.d/50-bad.json")}: invalid configuration\n✖ unknown log level "loud" in "loud" (expected default, all, none, critical, error, warning, message, info, debug, statistics, profile joined with |)\n  → at log.level, line 1`,
    );
  });
});

describe("reload", () => {
  const overrides: Override[] = [
    { section: "manager", item: "connection_spec", value: "inet:10099@[127.0.0.1]", option: "-s" },
    { section: "log", item: "level", value: "all", option: "-v" },
    { section: "manager", item: "n_workers", value: 3, option: "--n-workers" },
  ];

  test("a changed TOML file is read again and the command-line overrides stay on top", async () => {
    const dir = dirWith({
      "milterkit.config.toml": `[manager]\nconnection_spec = "inet:10001@[127.0.0.1]"\nn_workers = 1\nmax_connections = 10\n`,
    });
    const source: ConfigSource = { kind: "dir", dir, explicit: true };
    const first = await loadEffectiveConfig(source, overrides);
    expect(first.config.manager).toMatchObject({ connection_spec: "inet:10099@[127.0.0.1]", n_workers: 3, max_connections: 10 });
    writeFileSync(join(dir, "milterkit.config.toml"), `[manager]\nconnection_spec = "inet:10002@[127.0.0.1]"\nn_workers = 2\nmax_connections = 20\n\n[log]\nlevel = "error"\n`);
    const second = await loadEffectiveConfig(source, overrides);
    expect(second.config.manager).toMatchObject({ connection_spec: "inet:10099@[127.0.0.1]", n_workers: 3, max_connections: 20 });
    expect(second.config.log.level).toBe("all");
    expect(second.origins.get(itemKey("manager", "n_workers"))).toEqual({ kind: "command-line", option: "--n-workers" });
    expect(second.origins.get(itemKey("manager", "max_connections"))).toMatchObject({ kind: "file", line: 4 });
  });

  test("a changed TypeScript file is imported again (no stale module cache)", async () => {
    const dir = dirWith({ "milterkit.config.ts": `export default { manager: { max_connections: 10 }, milters: [] };\n` });
    const source: ConfigSource = { kind: "dir", dir, explicit: true };
    expect((await loadEffectiveConfig(source, overrides)).config.manager.max_connections).toBe(10);
    writeFileSync(join(dir, "milterkit.config.ts"), `export default { manager: { max_connections: 20 }, milters: [{ name: "new", connection_spec: "unix:/n" }] };\n`);
    const again = await loadEffectiveConfig(source, overrides);
    expect(again.config.manager).toMatchObject({ max_connections: 20, n_workers: 3 });
    expect(again.config.milters.map((m) => m.name)).toEqual(["new"]);
  });

  test("a milter removed from the file is gone after the reload; a broken file leaves the error to the caller", async () => {
    const dir = dirWith({ "milterkit.config.json": `{"milters": [{"name": "a", "connection_spec": "unix:/a"}, {"name": "b", "connection_spec": "unix:/b"}]}` });
    const source: ConfigSource = { kind: "dir", dir, explicit: true };
    expect((await loadEffectiveConfig(source)).config.milters).toHaveLength(2);
    writeFileSync(join(dir, "milterkit.config.json"), `{"milters": [{"name": "b", "connection_spec": "unix:/b"}]}`);
    expect((await loadEffectiveConfig(source)).config.milters.map((m) => m.name)).toEqual(["b"]);
    writeFileSync(join(dir, "milterkit.config.json"), `{"milters": [`);
    expect(await errorOf(source)).toContain("JSON syntax error");
  });

  test("overrides are values, not references: loading does not change them", async () => {
    const before = JSON.stringify(overrides);
    const a = await loadEffectiveConfig({ kind: "dir", dir: dirWith({}), explicit: false }, overrides);
    a.config.manager.n_workers = 99;
    expect(JSON.stringify(overrides)).toBe(before);
  });
});
