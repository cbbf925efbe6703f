// Auto-detection on a fixture tree shaped like a Debian system (test/fixtures/detect/debian):
// every candidate, where its socket is read from, the conditions it gets, and how the
// detected milters combine with the configuration files.
import { describe, expect, test } from "bun:test";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { detectMilters, formatDetection } from "../../src/manager/detect/index.ts";
import { FILTER_CONDITIONS, GREYLIST_CONDITIONS } from "../../src/manager/detect/milters.ts";
import { loadEffectiveConfig } from "../../src/manager/config/load.ts";
import { formatConfigToml } from "../../src/manager/config/show.ts";

const ROOT = join(import.meta.dir, "..", "fixtures", "detect", "debian");

describe("detection on a Debian-shaped tree", () => {
  const d = detectMilters(ROOT);
  const by = new Map(d.detected.map((m) => [m.name, m]));

  test("each enabled milter with its socket, from the file and line that set it", () => {
    const seen = d.detected.map((m) => [m.name, m.connection_spec, `${m.specFrom.file}:${m.specFrom.line}`]);
    expect(seen).toEqual([
      ["milter-greylist", "unix:/var/run/milter-greylist/milter-greylist.sock", "/etc/milter-greylist/greylist.conf:3"],
      ["pyspf-milter", "inet:8893@localhost", "/etc/pyspf-milter/pyspf-milter.conf:3"],
      ["clamav-milter", "unix:/var/run/clamav/clamav-milter.ctl", "/etc/clamav/clamav-milter.conf:2"],
      ["opendkim", "local:/run/opendkim/opendkim.sock", "/etc/opendkim.conf:6"],
      // a systemd drop-in's ExecStart wins over the unit and over opendmarc.conf
      ["opendmarc", "inet:8895@[127.0.0.1]", "/etc/systemd/system/opendmarc.service.d/override.conf:4"],
      // Postfix installed: the init script's Postfix branch; /etc/default sets no SOCKET
      ["spamass-milter", "unix:/var/spool/postfix/spamass/spamass.sock", "/etc/init.d/spamass-milter:10"],
      ["amavisd-milter", "inet:7777@[127.0.0.1]", "/etc/default/amavisd-milter:2"],
      // rspamd's proxy worker in milter mode; local.d overrides the bind socket, * means loopback
      ["rspamd", "inet:11332@[127.0.0.1]", "/etc/rspamd/local.d/worker-proxy.inc:2"],
    ]);
  });

  test("milter manager's Debian default conditions", () => {
    expect(by.get("milter-greylist")!.applicable_conditions).toEqual(GREYLIST_CONDITIONS);
    expect(GREYLIST_CONDITIONS).toEqual(["Sendmail Compatible", "Stress Notify", "Trust", "Remote Network", "S25R", "Unauthenticated"]);
    for (const n of ["pyspf-milter", "spamass-milter", "rspamd"]) expect(by.get(n)!.applicable_conditions).toEqual(FILTER_CONDITIONS);
    expect(FILTER_CONDITIONS).toEqual(["Remote Network", "Unauthenticated", "No Stress"]);
    for (const n of ["clamav-milter", "opendkim", "opendmarc", "amavisd-milter"]) expect(by.get(n)!.applicable_conditions).toEqual([]);
  });

  test("not enabled, or removed but not purged: skipped with the reason", () => {
    expect(d.skipped).toEqual([
      { name: "spfmilter", why: "/etc/init.d/spfmilter is not enabled (no S link in /etc/rc[2-5].d)" },
      { name: "amavisd-new-milter", why: "/usr/sbin/amavisd-new-milter is not installed" },
    ]);
  });

  test("milter-greylist: the largest tarpit is added to the reading and writing timeouts", () => {
    expect(by.get("milter-greylist")!.extraTimeout).toMatchObject({ seconds: 60, file: "/etc/milter-greylist/greylist.conf", line: 6 });
  });

  test("--detect's text names each milter, its socket and where it came from", () => {
    const text = formatDetection(d);
    expect(text).toContain("opendkim: local:/run/opendkim/opendkim.sock\n  socket from      /etc/opendkim.conf:6\n");
    expect(text).toContain("#   spfmilter: /etc/init.d/spfmilter is not enabled");
  });

  test("a masked unit is not enabled, whatever its init script's rc links say", () => {
    expect(detectMilters(join(ROOT, "..", "masked"))).toMatchObject({ detected: [], skipped: [{ name: "opendkim", why: "opendkim.service is masked" }] });
  });

  test("an empty tree detects nothing", () => {
    expect(detectMilters(join(ROOT, "..", "empty"))).toMatchObject({ detected: [], skipped: [] });
  });
});

describe("detection as a configuration layer", () => {
  const tmp = mkdtempSync(join(tmpdir(), "milterkit-detect-"));

  test("built-in default: detected milters, --show-config says where each came from", async () => {
    const loaded = await loadEffectiveConfig({ kind: "dir", dir: join(tmp, "none"), explicit: false }, [], { detectRoot: ROOT });
    expect(loaded.config.milters.map((m) => m.name)).toEqual(["milter-greylist", "pyspf-milter", "clamav-milter", "opendkim", "opendmarc", "spamass-milter", "amavisd-milter", "rspamd"]);
    const greylist = loaded.config.milters[0];
    expect(greylist.reading_timeout).toBe(67);
    expect(greylist.writing_timeout).toBe(67);
    const text = formatConfigToml(loaded);
    expect(text).toContain("# detected from /etc/opendkim.conf:6\n[[milters]]\n");
    expect(text).toContain('# detected from /etc/opendkim.conf:6\nconnection_spec = "local:/run/opendkim/opendkim.sock"\n');
    expect(text).toContain("# detected from milter manager's Debian defaults\napplicable_conditions = [");
    expect(text).not.toContain("# warning:");
  });

  test("a configuration file turns detection off by default, on with manager.auto_detect = true", async () => {
    const file = join(tmp, "off.toml");
    writeFileSync(file, `[[milters]]\nname = "mine"\nconnection_spec = "unix:/run/mine.sock"\n`);
    const off = await loadEffectiveConfig({ kind: "file", path: file }, [], { detectRoot: ROOT });
    expect(off.config.milters.map((m) => m.name)).toEqual(["mine"]);
    expect(off.detection).toBeUndefined();

    const on = join(tmp, "on.toml");
    writeFileSync(on, `[manager]\nauto_detect = true\n\n[[milters]]\nname = "opendkim"\nconnection_spec = "unix:/var/spool/postfix/opendkim/opendkim.sock"\n\n[[milters]]\nname = "clamav-milter"\nenabled = false\n`);
    const loaded = await loadEffectiveConfig({ kind: "file", path: on }, [], { detectRoot: ROOT });
    const dkim = loaded.config.milters.find((m) => m.name === "opendkim")!;
    expect(dkim.connection_spec).toBe("unix:/var/spool/postfix/opendkim/opendkim.sock"); // the file overrides the detected socket
    expect(dkim.description).toBe("DKIM milter (fixture)"); // and keeps what it does not set
    expect(loaded.config.milters.find((m) => m.name === "clamav-milter")!.enabled).toBe(false);
    expect(loaded.config.milters.map((m) => m.name).indexOf("opendkim")).toBe(3); // detected position kept
  });

  test("manager.auto_detect = false: nothing detected even with no milter configured", async () => {
    const file = join(tmp, "never.toml");
    writeFileSync(file, `[manager]\nauto_detect = false\n`);
    const loaded = await loadEffectiveConfig({ kind: "file", path: file }, [], { detectRoot: ROOT });
    expect(loaded.config.milters).toEqual([]);
    expect(formatConfigToml(loaded)).toContain('# warning: no child milter is configured or detected: every message gets manager.fallback_status "accept" (delivered unfiltered)\n');
  });
});

describe("readers", () => {
  test("shell words: quotes, $VAR, ${VAR}, ${VAR:-default}, comments", async () => {
    const { shellWords, flagValue } = await import("../../src/manager/detect/files.ts");
    const vars = new Map([["RUNDIR", { value: "/run/x", file: "f", line: 1 }]]);
    expect(shellWords(`-p "local:$RUNDIR/x.sock" -u 'a b' \${NONE:-dflt} # comment`, vars)).toEqual(["-p", "local:/run/x/x.sock", "-u", "a b", "dflt"]);
    expect(flagValue(["-x", "/etc/o.conf", "-pinet:1@[127.0.0.1]"], "-p")).toBe("inet:1@[127.0.0.1]");
    expect(flagValue(["-x", "/etc/o.conf"], "-x")).toBe("/etc/o.conf");
  });

  test("sockets as milters write them, as connection specs", async () => {
    const { normalizeSpec } = await import("../../src/manager/detect/milters.ts");
    expect(normalizeSpec("/run/a.sock")).toBe("unix:/run/a.sock");
    expect(normalizeSpec("local:local:/run/a.sock")).toBe("local:/run/a.sock");
    expect(normalizeSpec("unix:unix:/run/a.sock")).toBe("unix:/run/a.sock");
    expect(normalizeSpec("localhost:11332")).toBe("inet:11332@localhost");
    expect(normalizeSpec("*:11332")).toBe("inet:11332@[127.0.0.1]");
    expect(normalizeSpec("[::1]:11332")).toBe("inet6:11332@[::1]");
    expect(normalizeSpec("inet:8891@[127.0.0.1]")).toBe("inet:8891@[127.0.0.1]");
  });
});

test("with milter manager's configuration on the machine, the built-in default says how to import it", async () => {
  const dir = mkdtempSync(join(tmpdir(), "milterkit-detect-mm-"));
  const loaded = await loadEffectiveConfig({ kind: "dir", dir, explicit: false }, [], { detectRoot: join(ROOT, "..", "masked") });
  expect(loaded.notes).toContain(
    `milter manager's /etc/milter-manager/milter-manager.conf is not read; convert it with: milter-manager --import-config=/etc/milter-manager/milter-manager.conf > ${join(dir, "milterkit.config.toml")}`,
  );
});
