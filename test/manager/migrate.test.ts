// --import-config: milter manager's Ruby configuration to milterkit TOML. The fixtures are
// written in the shapes of milter manager's documented examples and shipped files (stock/), a
// site's own file (admin/), and Ruby that cannot be converted (ruby/).
import { describe, expect, test } from "bun:test";
import { chmodSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadEffectiveConfig } from "../../src/manager/config/load.ts";
import { formatConfigToml } from "../../src/manager/config/show.ts";
import { runImport } from "../../src/manager/migrate/index.ts";
import { parseRuby } from "../../src/manager/migrate/ruby.ts";

const FIX = join(import.meta.dir, "..", "fixtures", "migrate");
const DETECT_ROOT = join(import.meta.dir, "..", "fixtures", "detect", "debian");
const tmp = mkdtempSync(join(tmpdir(), "milterkit-import-"));

function run(file: string) {
  let stdout = "";
  let stderr = "";
  const code = runImport(file, { stdout: (t) => (stdout += t), stderr: (t) => (stderr += t) });
  return { code, stdout, stderr };
}

/** Import, write the TOML, load it, print it with --show-config and load that again. */
async function roundTrip(file: string, name: string) {
  const r = run(file);
  const toml = join(tmp, `${name}.toml`);
  writeFileSync(toml, r.stdout);
  const loaded = await loadEffectiveConfig({ kind: "file", path: toml }, [], { detectRoot: DETECT_ROOT });
  const shown = join(tmp, `${name}-shown.toml`);
  writeFileSync(shown, formatConfigToml(loaded));
  const again = await loadEffectiveConfig({ kind: "file", path: shown }, [], { detectRoot: DETECT_ROOT });
  expect(again.config).toEqual(loaded.config);
  return { r, loaded };
}

describe("a site's own file", () => {
  const file = join(FIX, "admin", "milter-manager.conf");

  test("every declarative shape converts: exit 0, each item preceded by its FILE:LINE", () => {
    const { code, stdout, stderr } = run(file);
    expect(code).toBe(0);
    expect(stdout).toContain(`# ${file}:11\nconnection_spec = "inet:10025@[127.0.0.1]"\n`);
    expect(stdout).toContain(`# ${file}:27\nunix_socket_mode = 0o600\n`); // Ruby's 0600 is octal
    expect(stdout).toContain(`# ${file}:54\n[[milters]]\nname = "opendkim"\n`);
    expect(stdout).toContain(`# ${join(FIX, "admin", "milter-manager.local.conf")}:3\nreading_timeout = 30.0\n`);
    expect(stdout).not.toContain("old-filter"); // remove_milter
    expect(stderr).toContain(`${file}:4: note: load("applicable-conditions/*.conf"): milter manager's built-in conditions are built into milterkit`);
    expect(stderr).not.toContain("not converted");
  });

  test("round trip: the TOML loads, and its --show-config loads to the same configuration", async () => {
    const { loaded } = await roundTrip(file, "admin");
    const c = loaded.config;
    expect(c.security).toEqual({ privilege_mode: false, effective_user: "milter-manager", effective_group: "milter-manager", strict_modes: true });
    expect(c.manager).toMatchObject({ max_connections: 200, n_workers: 2, event_loop_backend: "libev", pid_file: "/run/milter-manager/milter-manager.pid" });
    expect(c.controller).toMatchObject({ connection_spec: "unix:/run/milter-manager/controller.sock", unix_socket_mode: 0o600 });
    expect(c.log).toEqual({ level: "error|warning|statistics", path: "/var/log/milter-manager/milter-manager.log", use_syslog: false, syslog_facility: "mail", format: "text" });
    const ac = c.applicable_conditions;
    expect(ac.s25r.allow.slice(-2)).toEqual(["/\\.mx\\.partner\\.example$/i", ".relay.example.org"]);
    expect(ac.s25r.allow).toHaveLength(8); // the stock list stays, as add_whitelist adds to it
    expect(ac.s25r).toMatchObject({ deny: ["/^dynamic-/"], check_only_ipv4: false });
    expect(ac.remote_network).toEqual({ local_addresses: ["192.0.2.0/24", "2001:db8::/32"], remote_addresses: ["192.0.2.99"] });
    expect(ac.trust.envelope_from_domains.slice(-2)).toEqual(["example.net", "/\\.example\\.com$/"]);
    expect(ac.stress.threshold_n_connections).toBe(150);
    expect(ac.dnsbl.services.at(-1)).toEqual({ zone: "bl.example.org", expected_answer: "127.0.0.2" });
    expect(ac.dnsbl.name_servers).toEqual(["127.0.0.1", "[::1]:5353"]);
    expect(ac.restrict_accounts).toEqual([{ name: "Lists only", accounts: ["postmaster@example.net", "/@lists\\.example\\.net$/"], milters: ["greylist"] }]);
    // The local file defined "spamassassin" first; the main file's define_milter moved it after opendkim.
    expect(c.milters.map((m) => m.name)).toEqual(["opendkim", "spamassassin", "greylist"]);
    expect(c.milters[1]).toEqual({
      name: "spamassassin", description: "SpamAssassin via spamass-milter", connection_spec: "inet:11120@[127.0.0.1]", enabled: true,
      fallback_status: "temporary-failure", evaluation_mode: false, applicable_conditions: ["Remote Network", "Unauthenticated", "No Stress"],
      command: "/usr/sbin/spamass-milter", command_options: ["-p", "inet:11120@127.0.0.1", "-m"], user_name: "spamass-milter",
      connection_timeout: 297, writing_timeout: 7, reading_timeout: 30, end_of_message_timeout: 600, end_of_message_total_timeout: 297, max_modifications: 10000, max_modification_bytes: 1048576,
    });
    expect(c.milters[2]).toMatchObject({ evaluation_mode: true, command_options: "-D -f /etc/milter-greylist/greylist.conf" });
  });
});

describe("the shipped shape: built-in conditions, load_default, a local file", () => {
  const file = join(FIX, "stock", "milter-manager.conf");

  test("load_default becomes manager.auto_detect = true; the local file's items follow", () => {
    const { code, stdout } = run(file);
    expect(code).toBe(0);
    expect(stdout).toContain(`# ${file}:6\nauto_detect = true\n`);
    expect(stdout).toContain('[[milters]]\nname = "clamav-milter"\n');
  });

  test("round trip with detection: the local file refines the detected milters", async () => {
    const { loaded } = await roundTrip(file, "stock");
    const c = loaded.config;
    expect(c.manager).toMatchObject({ auto_detect: true, fallback_status: "temporary-failure", unix_socket_group: "postfix" });
    expect(c.milters.find((m) => m.name === "clamav-milter")!.enabled).toBe(false);
    const spamass = c.milters.find((m) => m.name === "spamass-milter")!;
    expect(spamass).toMatchObject({ connection_spec: "unix:/var/spool/postfix/spamass/spamass.sock", applicable_conditions: ["Remote Network", "Unauthenticated"], evaluation_mode: true });
  });
});

describe("Ruby that needs a hand", () => {
  const file = join(FIX, "ruby", "milter-manager.conf");

  test("listed on stderr with file:line, a defineCondition skeleton for conditions, exit 2", () => {
    const { code, stdout, stderr } = run(file);
    expect(code).toBe(2);
    expect(stderr).toContain(`${file}:6: not converted: database.*`);
    expect(stderr).toContain(`${file}:9-17: not converted: applicable condition "Internal Relay" is written in Ruby`);
    expect(stderr).toContain('const condition = defineCondition({\n      name: "Internal Relay",\n      description: "Skip milters for our own relays",\n      connect(ctx, host, address) {');
    expect(stderr).toContain("      envelopeFrom(ctx, from) {\n");
    expect(stderr).toContain(`${file}:22-24: not converted: Ruby code inside define_milter (milter "clamav")`);
    expect(stderr).toContain(`${file}:27-31: not converted: Ruby code (not a declarative setting)`);
    expect(stderr).toContain(`${file}:33: not converted: manager.use_netstat_connection_checker: no milterkit equivalent`);
    expect(stderr).toContain("6 item(s) need porting by hand\n");
    // What did convert is still printed.
    expect(stdout).toContain('[[milters]]\nname = "clamav"\n');
    expect(stdout).toContain("# 6 item(s) could not be converted");
  });

  test("an unreadable file: exit 1", () => {
    expect(run(join(tmp, "missing.conf"))).toMatchObject({ code: 1, stdout: "", stderr: `milter-manager: cannot read ${join(tmp, "missing.conf")}: no such file\n` });
    if (process.getuid?.() !== 0) {
      const locked = join(tmp, "locked.conf");
      writeFileSync(locked, "manager.daemon = true\n");
      chmodSync(locked, 0);
      expect(run(locked).code).toBe(1);
    }
  });
});

describe("the DSL reader", () => {
  test("literals: strings, octal, symbols, %w, hashes, labels; interpolation is not a literal", () => {
    const s = parseRuby(`a.b = 'x\\'y'\nc.d = 0o17\nf(:sym, %w[p q], {"k" => 1}, opt: true)\ng.h = "#{x}"\n`);
    expect(s[0]).toMatchObject({ kind: "assign", value: { kind: "string", value: "x'y" } });
    expect(s[1]).toMatchObject({ kind: "assign", value: { kind: "number", value: 15 } });
    expect(s[2]).toMatchObject({
      kind: "call", target: ["f"],
      args: [{ kind: "symbol", value: "sym" }, { kind: "array", items: [{ value: "p" }, { value: "q" }] }, { kind: "hash", entries: [{ key: "k" }] }],
      options: [{ key: "opt", value: { kind: "bool", value: true } }],
    });
    expect(s[3]).toMatchObject({ kind: "other", line: 4 });
    expect(parseRuby("s25r.add_whitelist /\\.example\\z/i\nx = a / b\n")[0]).toMatchObject({ kind: "call", args: [{ kind: "regexp", source: "\\.example\\z", flags: "i" }] });
  });
});

describe("a milter manager configuration where milterkit's is expected", () => {
  test("a directory holding only milter-manager.conf is an error naming the import command", async () => {
    const dir = mkdtempSync(join(tmp, "etc-"));
    writeFileSync(join(dir, "milter-manager.conf"), 'load_default\n');
    const e = await loadEffectiveConfig({ kind: "dir", dir, explicit: true }).catch((x) => x);
    expect((e as Error).message).toBe(
      `${dir} holds milter manager's ${join(dir, "milter-manager.conf")} and no milterkit configuration; convert it with: ` +
        `milter-manager --import-config=${join(dir, "milter-manager.conf")} > ${join(dir, "milterkit.config.toml")}`,
    );
  });

  test("--config milter-manager.conf names the import command", async () => {
    const file = join(tmp, "milter-manager.conf");
    writeFileSync(file, 'load_default\n');
    const e = await loadEffectiveConfig({ kind: "file", path: file }).catch((x) => x);
    expect((e as Error).message).toContain(`convert it with: milter-manager --import-config=${file}`);
  });
});

describe("the command line", () => {
  const MAIN = join(import.meta.dir, "../../src/main.ts");
  const cli = (args: string[]) => {
    const r = Bun.spawnSync([process.execPath, MAIN, "manager", ...args], { stdout: "pipe", stderr: "pipe", timeout: 20_000 });
    return { code: r.exitCode, stdout: r.stdout.toString(), stderr: r.stderr.toString() };
  };

  test("--import-config exit codes: 0 converted, 2 needs a hand, 1 unreadable", () => {
    expect(cli([`--import-config=${join(FIX, "admin", "milter-manager.conf")}`]).code).toBe(0);
    const ruby = cli(["--import-config", join(FIX, "ruby", "milter-manager.conf")]);
    expect(ruby.code).toBe(2);
    expect(ruby.stderr).toContain(`${join(FIX, "ruby", "milter-manager.conf")}:9-17: not converted`);
    expect(cli([`--import-config=${join(tmp, "nope.conf")}`]).code).toBe(1);
  });

  test("-c on milter manager's directory: exit 1 naming the import command", () => {
    const d = mkdtempSync(join(tmp, "mm-"));
    writeFileSync(join(d, "milter-manager.conf"), "load_default\n");
    const r = cli(["-c", d, "--show-config"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`milter-manager --import-config=${join(d, "milter-manager.conf")}`);
  });

  test("--detect on a fixture tree", () => {
    const r = Bun.spawnSync([process.execPath, MAIN, "manager", "--detect"], { stdout: "pipe", env: { ...process.env, MILTERKIT_DETECT_ROOT: DETECT_ROOT }, timeout: 20_000 });
    expect(r.exitCode).toBe(0);
    expect(r.stdout.toString()).toContain("opendkim: local:/run/opendkim/opendkim.sock\n  socket from      /etc/opendkim.conf:6\n");
  });
});

describe("values milterkit refuses", () => {
  test("are listed with milterkit's reason and left out of the TOML", () => {
    const file = join(tmp, "bad-values.conf");
    writeFileSync(file, [
      'manager.fallback_status = "tempfail"',
      'remote_network.add_local_address("not-an-address")',
      'define_milter("a") do |m|',
      '  m.connection_spec = "bogus"',
      '  m.reading_timeout = 10',
      "end",
      "",
    ].join("\n"));
    const r = run(file);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`${file}:1: not converted: manager.fallback_status: Invalid option`);
    expect(r.stderr).toContain(`${file}:2: not converted: remote_network local_addresses: "not-an-address" is not an IP address or CIDR`);
    expect(r.stderr).toContain(`${file}:4: not converted: milter.connection_spec: invalid connection spec <bogus>`);
    expect(r.stdout).not.toContain("tempfail");
    expect(r.stdout).not.toContain("remote_network");
    expect(r.stdout).toContain(`# ${file}:5\nreading_timeout = 10.0\n`);
  });
});
