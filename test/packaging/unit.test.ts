// The systemd unit and the default configuration the package ships, without installing them
// (test/packaging/deb.test.ts runs them installed, as root): the hardening settings the unit
// promises, and a configuration that loads and makes the manager become milterkit.
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";

const ROOT = join(import.meta.dir, "../..");
const unit = readFileSync(join(ROOT, "packaging/milterkit-manager.service"), "utf8");
const setting = (key: string) => [...unit.matchAll(new RegExp(`^${key}=(.*)$`, "gm"))].map((m) => m[1]);

describe("packaging/milterkit-manager.service", () => {
  test("Type=notify in the foreground; reload checks the configuration, then SIGHUP", () => {
    expect(setting("Type")).toEqual(["notify"]);
    expect(setting("ExecStart")).toEqual(["/usr/sbin/milter-manager --no-daemon $OPTION_ARGS"]);
    const reload = setting("ExecReload");
    expect(reload).toHaveLength(2);
    expect(reload[0]).toContain("--show-config >/dev/null");
    expect(reload[1]).toBe("/bin/kill -HUP $MAINPID");
    expect(setting("RuntimeDirectory")).toEqual(["milterkit"]);
  });

  test("hardened, and MemoryDenyWriteExecute left to the JIT", () => {
    for (const [k, v] of Object.entries({
      NoNewPrivileges: "yes", ProtectSystem: "strict", ProtectHome: "yes", PrivateTmp: "yes", PrivateDevices: "yes",
      LockPersonality: "yes", RestrictAddressFamilies: "AF_UNIX AF_INET AF_INET6",
      CapabilityBoundingSet: "CAP_NET_BIND_SERVICE CAP_CHOWN CAP_SETUID CAP_SETGID CAP_KILL",
    })) expect(setting(k)).toEqual([v]);
    expect(setting("ReadWritePaths")).toEqual(["-/var/log/milterkit -/var/spool/postfix/milterkit"]);
    expect(setting("SystemCallFilter")).toEqual(["@system-service"]);
    expect(setting("MemoryDenyWriteExecute")).toEqual([]);
  });

  test.skipIf(!Bun.which("systemd-analyze"))("systemd-analyze security rates it 2.5 or better", () => {
    const p = Bun.spawnSync(["systemd-analyze", "security", "--offline=true", join(ROOT, "packaging/milterkit-manager.service")], { stdout: "pipe", stderr: "pipe" });
    const m = /Overall exposure level for .*: ([\d.]+)/.exec(p.stdout.toString());
    expect(m).not.toBeNull();
    expect(Number(m![1])).toBeLessThanOrEqual(2.5);
  });
});

test("the shipped configuration loads; the manager becomes milterkit", () => {
  const p = Bun.spawnSync([process.execPath, join(ROOT, "src/main.ts"), "manager", "--config", join(ROOT, "packaging/milterkit.config.toml"), "--show-config"], { stdout: "pipe", stderr: "pipe" });
  expect(p.stderr.toString()).toBe("");
  expect(p.exitCode).toBe(0);
  const out = p.stdout.toString();
  expect(out).toContain('effective_user = "milterkit"');
  expect(out).toContain('effective_group = "milterkit"');
  expect(out).toContain('connection_spec = "inet:10025@[127.0.0.1]"');
  expect(out).toMatch(/use_syslog = false/);
});
