// Command-line options of the manager: every option becomes the right override, bad values are
// usage errors, and the real CLI (bun src/main.ts manager ...) loads, shows and rejects configurations.
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { MANAGER_TABLE } from "../../src/cli/options/manager.ts";
import { CliOptionError, parseManagerArgv } from "../../src/manager/config/cli.ts";

const MANAGER_OPTIONS = MANAGER_TABLE.options;
import { VERSION } from "../../src/version.ts";

const ROOT = join(import.meta.dir, "../..");
const FIXTURES = join(import.meta.dir, "../fixtures/config");
const tmpRoot = mkdtempSync(join(tmpdir(), "mk-config-cli-"));
afterAll(() => rmSync(tmpRoot, { recursive: true, force: true }));

/** section.item → value of the overrides argv produces. */
function overridesOf(argv: string[]): Record<string, unknown> {
  return Object.fromEntries(parseManagerArgv(argv).overrides.map((o) => [`${o.section}.${o.item}`, o.value]));
}

function cliError(argv: string[]): string {
  try {
    parseManagerArgv(argv);
  } catch (e) {
    expect(e).toBeInstanceOf(CliOptionError);
    return (e as Error).message;
  }
  throw new Error("expected a CliOptionError");
}

describe("each option sets its item", () => {
  const cases: [string[], Record<string, unknown>][] = [
    [["-s", "inet:10025@[127.0.0.1]"], { "manager.connection_spec": "inet:10025@[127.0.0.1]" }],
    [["--connection-spec=unix:/run/mk.sock"], { "manager.connection_spec": "unix:/run/mk.sock" }],
    [["-sinet:0@[::1]"], { "manager.connection_spec": "inet:0@[::1]" }],
    [["--log-level", "error | statistics"], { "log.level": "error|statistics" }],
    [["--log-path", "-"], { "log.path": "-" }],
    [["-v"], { "log.level": "all" }],
    [["--verbose"], { "log.level": "all" }],
    [["-q"], { "log.level": "none" }],
    [["--quiet"], { "log.level": "none" }],
    [["--syslog"], { "log.use_syslog": true }],
    [["--no-syslog"], { "log.use_syslog": false }],
    [["--syslog-facility", "local4"], { "log.syslog_facility": "local4" }],
    [["--syslog-facility", "auth"], { "log.syslog_facility": "auth" }], // the full syslog set, as the test-client
    [["--daemon"], { "manager.daemon": true }],
    [["--no-daemon"], { "manager.daemon": false }],
    [["-u", "milter"], { "security.effective_user": "milter" }],
    [["--user", "1001"], { "security.effective_user": "1001" }],
    [["--user-id", "1001"], { "security.effective_user": "1001" }],
    [["--user-name", "milter"], { "security.effective_user": "milter" }],
    [["-g", "milter"], { "security.effective_group": "milter" }],
    [["--group", "120"], { "security.effective_group": "120" }],
    [["--group-id", "120"], { "security.effective_group": "120" }],
    [["--group-name", "postfix"], { "security.effective_group": "postfix" }],
    [["--unix-socket-group", "postfix"], { "manager.unix_socket_group": "postfix" }],
    [["--socket-group-name", "postfix"], { "manager.unix_socket_group": "postfix" }],
    [["--unix-socket-mode", "0600"], { "manager.unix_socket_mode": 0o600 }],
    [["--unix-socket-mode", "660"], { "manager.unix_socket_mode": 0o660 }],
    [["--n-workers", "4"], { "manager.n_workers": 4 }],
    [["--event-loop-backend", "libev"], { "manager.event_loop_backend": "libev" }],
    [["--packet-buffer-size", "8192"], { "manager.packet_buffer_size": 8192 }],
    [["--pid-file", "/run/mk.pid"], { "manager.pid_file": "/run/mk.pid" }],
    [["--max-pending-finished-sessions", "16"], { "manager.max_pending_finished_sessions": 16 }],
  ];
  for (const [argv, expected] of cases) {
    test(argv.join(" "), () => expect(overridesOf(argv)).toEqual(expected));
  }

  test("every option of the table is covered above or below", () => {
    const covered = new Set(cases.flatMap(([argv]) => argv.filter((a) => a.startsWith("-")).map((a) => a.replace(/=.*/, "").replace(/^-s.+/, "-s"))));
    for (const extra of ["--config", "--config-dir", "-c", "--show-config", "--check", "--log-format", "--help", "--version", "--help-all", "--help-milter", "--detect", "--import-config"]) covered.add(extra);
    for (const o of MANAGER_OPTIONS) expect(covered.has(`--${o.long}`) || (o.short !== undefined && covered.has(`-${o.short}`))).toBe(true);
  });

  test("source and action options", () => {
    expect(parseManagerArgv(["--config", "a.toml", "--show-config"])).toEqual({ configFile: "a.toml", showConfig: true, detect: false, check: false, help: false, overrides: [] });
    expect(parseManagerArgv(["--check", "--log-format=json"])).toMatchObject({ check: true, overrides: [{ section: "log", item: "format", value: "json" }] });
    expect(parseManagerArgv(["-c", "/etc/x"])).toMatchObject({ configDir: "/etc/x" });
    expect(parseManagerArgv(["--config-dir=/etc/y"])).toMatchObject({ configDir: "/etc/y" });
    expect(parseManagerArgv(["--detect"])).toMatchObject({ detect: true });
    expect(parseManagerArgv(["--import-config=/etc/milter-manager/milter-manager.conf"])).toMatchObject({ importConfig: "/etc/milter-manager/milter-manager.conf" });
    expect(parseManagerArgv(["--help-all"]).help).toBe(true);
    expect(parseManagerArgv(["--help-milter"]).help).toBe(true);
  });

  test("the last option for an item wins, in command-line order", () => {
    expect(overridesOf(["-v", "--log-level", "error"])).toEqual({ "log.level": "error" });
    expect(overridesOf(["--log-level", "error", "-q"])).toEqual({ "log.level": "none" });
    expect(overridesOf(["-vq"])).toEqual({ "log.level": "none" });
    expect(overridesOf(["--daemon", "--no-daemon"])).toEqual({ "manager.daemon": false });
    expect(overridesOf(["--user-name", "a", "-u", "b"])).toEqual({ "security.effective_user": "b" });
    const args = parseManagerArgv(["-s", "inet:1@[127.0.0.1]", "--connection-spec", "inet:2@[127.0.0.1]"]);
    expect(args.overrides).toEqual([{ section: "manager", item: "connection_spec", value: "inet:2@[127.0.0.1]", option: "--connection-spec" }]);
  });
});

describe("bad options", () => {
  test("values are checked like the configuration items", () => {
    expect(cliError(["--n-workers", "abc"])).toBe("option '--n-workers': expected a non-negative integer (got 'abc')");
    expect(cliError(["--n-workers", "5000"])).toBe("option '--n-workers': Too big: expected number to be <=1000 (got '5000')");
    expect(cliError(["--packet-buffer-size", "-1"])).toBe("option '--packet-buffer-size': expected a non-negative integer (got '-1')");
    expect(cliError(["--unix-socket-mode", "999"])).toBe(`option '--unix-socket-mode': unix socket mode must be octal, e.g. "0660" or 0o660 (got "999")`);
    expect(cliError(["-s", "inet:70000"])).toBe("option '-s': invalid connection spec <inet:70000>: port 70000 is greater than 65535");
    expect(cliError(["--log-level", "loud"])).toContain(`option '--log-level': unknown log level "loud"`);
    expect(cliError(["--syslog-facility", "mial"])).toContain("option '--syslog-facility': Invalid option: expected one of");
    expect(cliError(["--event-loop-backend", "epoll"])).toContain("option '--event-loop-backend': Invalid option");
    expect(cliError(["--user-id", "root"])).toBe("option '--user-id': expected a numeric id (got 'root')");
    expect(cliError(["--pid-file="])).toBe("option '--pid-file': must not be empty (got '')");
  });

  test("unknown options, missing values, arguments, conflicting sources", () => {
    expect(cliError(["--bogus"])).toBe("unknown option '--bogus'");
    expect(cliError(["-Z"])).toBe("unknown option '-Z'");
    expect(cliError(["--no-verbose"])).toBe("unknown option '--no-verbose'");
    expect(cliError(["--pid-file"])).toBe("option '--pid-file' needs a value");
    expect(cliError(["-s"])).toBe("option '-s' needs a value");
    expect(cliError(["--daemon=yes"])).toBe("option '--daemon' takes no value");
    expect(cliError(["extra"])).toBe("unexpected argument 'extra' (the manager takes options only)");
    expect(cliError(["--config", "a.toml", "-c", "/etc"])).toBe("--config and --config-dir cannot be used together");
  });
});

describe("the milter-manager command", () => {
  async function run(argv: string[], env: Record<string, string> = {}) {
    const proc = Bun.spawn({
      cmd: [process.execPath, join(ROOT, "src/main.ts"), "manager", ...argv],
      cwd: tmpRoot,
      env: { ...process.env, NO_COLOR: "1", MILTERKIT_CONFIG_DIR: join(tmpRoot, "no-config"), ...env },
      stdout: "pipe",
      stderr: "pipe",
    });
    const timer = setTimeout(() => proc.kill(), 20_000);
    const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
    clearTimeout(timer);
    return { stdout, stderr, code };
  }

  test("--show-config prints TOML and exits 0; command-line items say so", async () => {
    const r = await run(["--config", join(FIXTURES, "basic.json"), "--show-config", "--n-workers", "3"]);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe("");
    const parsed = Bun.TOML.parse(r.stdout) as { manager: { n_workers: number }; milters: { name: string }[] };
    expect(parsed.manager.n_workers).toBe(3);
    expect(parsed.milters.map((m) => m.name)).toEqual(["spamassassin", "opendkim"]);
    expect(r.stdout).toContain("# command line (--n-workers)\nn_workers = 3\n");
  });

  test("a relative --config path is read from the working directory", async () => {
    writeFileSync(join(tmpRoot, "rel.toml"), `[manager]\nmax_connections = 9\n`);
    const r = await run(["--config", "rel.toml", "--show-config"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`# ${join(tmpRoot, "rel.toml")}:2\nmax_connections = 9\n`);
  });

  test("a bad configuration: the message on stderr, exit 1", async () => {
    const path = join(tmpRoot, "bad.toml");
    writeFileSync(path, `[manager]\nfallback_status = "maybe"\n`);
    const r = await run(["--config", path, "--show-config"]);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe("");
    expect(r.stderr).toBe(
      `milter-manager: ${path}: invalid configuration\n✖ Invalid option: expected one of "accept"|"temporary-failure"|"reject"|"discard"\n  → at manager.fallback_status, line 2\n`,
    );
  });

  test("a missing --config file: exit 1", async () => {
    const r = await run(["--config", join(tmpRoot, "absent.toml"), "--show-config"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(`milter-manager: ${join(tmpRoot, "absent.toml")}: cannot read configuration: no such file\n`);
  });

  test("$MILTERKIT_CONFIG_DIR is used when no option names a source", async () => {
    const r = await run(["--show-config"], { MILTERKIT_CONFIG_DIR: join(FIXTURES, "dir") });
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`#   ${join(FIXTURES, "dir")}/milterkit.config.toml\n`);
    expect(r.stdout).toContain('name = "clamav"');
  });

  test("no configuration anywhere: the built-in default, said in the output", async () => {
    const r = await run(["--show-config"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("# no configuration file: built-in default\n");
    expect(r.stdout).toContain(`# note: no configuration file (${join(tmpRoot, "no-config")} does not exist): using the built-in default`);
    expect(r.stdout).toContain('# default\nconnection_spec = "inet:10025@[127.0.0.1]"\n');
    expect(r.stdout).not.toContain("[[milters]]");
  });

  test("a bad option value: one line plus where help is, exit 1", async () => {
    const r = await run(["--n-workers", "many", "--show-config"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe("milter-manager: option '--n-workers': expected a non-negative integer (got 'many')\nTry 'milterkit manager --help' for more information.\n");
  });

  test("an unknown option: exit 1", async () => {
    const r = await run(["--bogus"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toStartWith("milter-manager: unknown option '--bogus'\n");
  });

  test("--version", async () => {
    const r = await run(["--version"]);
    expect(r).toEqual({ code: 0, stdout: `milter-manager ${VERSION}\n`, stderr: "" });
  });

  test("--help and --help-all list every option", async () => {
    for (const flag of ["--help", "--help-all"]) {
      const r = await run([flag]);
      expect(r.code).toBe(0);
      for (const o of MANAGER_OPTIONS) expect(r.stdout).toContain(`--${o.long}`);
      expect(r.stdout).toContain("-s, --connection-spec=<SPEC>");
      expect(r.stdout).toContain("-c, --config-dir=<DIRECTORY>");
    }
  });
});
