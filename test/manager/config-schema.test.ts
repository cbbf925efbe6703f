// The configuration schema: defaults exactly as milter-manager's (manager.md §1.2) and item validation.
import { describe, expect, test } from "bun:test";
import {
  BUILTIN_CONDITION_NAMES,
  checkCidr,
  ConfigFileSchema,
  ConfigSchema,
  defaultConfig,
  defaultMilter,
  logLevelSet,
  MILTER_DEFAULTS,
  normalizeLogLevel,
  parseSocketMode,
  patternRegExp,
} from "../../src/manager/config/schema.ts";

describe("defaults", () => {
  test("every section item has milter-manager's default", () => {
    const c = defaultConfig();
    expect(c.security).toEqual({ privilege_mode: false, effective_user: null, effective_group: null, strict_modes: true });
    expect(c.log).toEqual({ level: "default", path: null, use_syslog: true, syslog_facility: "mail", format: "text" });
    expect(c.manager).toEqual({
      connection_spec: "inet:10025@[127.0.0.1]",
      unix_socket_mode: 0o660,
      unix_socket_group: null,
      remove_unix_socket_on_create: true,
      remove_unix_socket_on_close: true,
      daemon: false,
      pid_file: null,
      maintenance_interval: 10,
      suspend_time_on_unacceptable: 5,
      max_connections: 0,
      max_file_descriptors: 0,
      custom_configuration_directory: null,
      fallback_status: "accept",
      fallback_status_at_disconnect: "temporary-failure",
      event_loop_backend: "glib",
      n_workers: 0,
      packet_buffer_size: 0,
      connection_check_interval: 0,
      chunk_size: 65535,
      max_pending_finished_sessions: 0,
      auto_detect: "auto",
      negotiation_timeout: 30,
      packet_timeout: 30,
      idle_timeout: 7210,
      milter_retry_interval: 5,
      milter_retry_max_interval: 60,
    });
    expect(c.controller).toEqual({
      connection_spec: null,
      unix_socket_mode: 0o660,
      unix_socket_group: null,
      remove_unix_socket_on_create: true,
      remove_unix_socket_on_close: true,
    });
    expect(c.milters).toEqual([]);
  });

  test("a milter starts with 297/7/7/297/297 s timeouts, enabled, fallback accept", () => {
    expect(defaultMilter("x", "unix:/x.sock")).toEqual({
      name: "x",
      description: null,
      connection_spec: "unix:/x.sock",
      enabled: true,
      fallback_status: "accept",
      evaluation_mode: false,
      applicable_conditions: [],
      command: null,
      command_options: null,
      user_name: null,
      connection_timeout: 297,
      writing_timeout: 7,
      reading_timeout: 7,
      end_of_message_timeout: 297,
      end_of_message_total_timeout: 297,
      max_modifications: 10000,
      max_modification_bytes: 1048576,
    });
    expect(Object.isFrozen(MILTER_DEFAULTS)).toBe(true);
  });

  test("built-in condition settings have the stock lists", () => {
    const a = defaultConfig().applicable_conditions;
    expect(a.s25r.allow).toEqual([".google.com", ".obsmtp.com", ".smtp-out.amazonses.com", ".slack.com", ".mg.gitlab.com", ".sendgrid.net"]);
    expect(a.s25r.check_only_ipv4).toBe(true);
    expect(a.trust.envelope_from_domains).toContain("clear-code.com");
    expect(a.trust.envelope_from_domains).toHaveLength(8);
    expect(a.dnsbl.services.map((s) => s.zone)).toEqual(["zen.spamhaus.org", "dnsbl.sorbs.net", "bl.spamcop.net", "b.barracudacentral.org"]);
    expect(a.stress.threshold_n_connections).toBe("auto");
    expect(BUILTIN_CONDITION_NAMES).toContain("Remote Network");
  });

  test("defaultConfig returns independent copies", () => {
    const a = defaultConfig();
    a.applicable_conditions.s25r.allow.push(".x");
    a.manager.n_workers = 3;
    expect(defaultConfig().applicable_conditions.s25r.allow).toHaveLength(6);
    expect(defaultConfig().manager.n_workers).toBe(0);
  });

  test("the default configuration passes the full schema", () => {
    expect(ConfigSchema.safeParse(defaultConfig()).success).toBe(true);
  });
});

describe("item values", () => {
  test("unix socket mode: octal text or number, permission bits only", () => {
    expect(parseSocketMode("0660")).toBe(0o660);
    expect(parseSocketMode("660")).toBe(0o660);
    expect(parseSocketMode("0o600")).toBe(0o600);
    expect(parseSocketMode(0o644)).toBe(0o644);
    expect(parseSocketMode(660)).toContain("0o1224"); // decimal 660 by mistake
    expect(parseSocketMode("0999")).toContain('must be octal');
    expect(parseSocketMode("07777")).toContain("between 0o000 and 0o777");
  });

  test("log level: names joined with |, spaces removed", () => {
    expect(normalizeLogLevel("error | warning|statistics")).toBe("error|warning|statistics");
    expect(normalizeLogLevel("all")).toBe("all");
    expect(normalizeLogLevel("error|loud")).toEqual({ error: expect.stringContaining('unknown log level "loud"') });
    expect([...logLevelSet("error|debug")]).toEqual(["error", "debug"]);
  });

  test("CIDR and address checks", () => {
    expect(checkCidr("192.0.2.0/24")).toBeUndefined();
    expect(checkCidr("2001:db8::/32")).toBeUndefined();
    expect(checkCidr("10.1.2.3")).toBeUndefined();
    expect(checkCidr("10.1.2.3/33")).toContain("prefix length must be 0..32");
    expect(checkCidr("::1/129")).toContain("0..128");
    expect(checkCidr("example.com")).toContain("not an IP address");
    expect(checkCidr("::1", 4)).toContain("not an IPv4 address");
  });

  test("patterns: /regexp/flags, suffix or name", () => {
    expect(patternRegExp("/^mx[0-9]+$/i")?.test("MX12")).toBe(true);
    expect(patternRegExp(".example.com")).toBeUndefined();
    expect(() => patternRegExp("/(/")).toThrow();
    const r = ConfigFileSchema.safeParse({ applicable_conditions: { s25r: { allow: ["/(/"] } } });
    expect(r.success).toBe(false);
    expect(r.error!.issues[0].message).toContain("bad regular expression /(/");
  });

  test("nested settings are strict and fill their own defaults", () => {
    const bad = ConfigFileSchema.safeParse({ applicable_conditions: { s25r: { alow: [] } } });
    expect(bad.success).toBe(false);
    expect(bad.error!.issues[0]).toMatchObject({ code: "unrecognized_keys", path: ["applicable_conditions", "s25r"] });
    const ok = ConfigFileSchema.parse({
      applicable_conditions: {
        dnsbl: { services: [{ zone: "dnsbl.example.org" }] },
        restrict_accounts: [{ name: "Sales", accounts: ["sales@example.com"] }],
      },
    });
    expect(ok.applicable_conditions!.dnsbl!.services).toEqual([{ zone: "dnsbl.example.org", expected_answer: null }]);
    expect(ok.applicable_conditions!.restrict_accounts).toEqual([{ name: "Sales", accounts: ["sales@example.com"], milters: null }]);
  });

  test("ranges: n_workers 0..1000, chunk_size 1..65535, positive timeouts, threshold auto or count", () => {
    const issue = (input: unknown) => {
      const r = ConfigFileSchema.safeParse(input);
      return r.success ? undefined : r.error.issues[0];
    };
    expect(issue({ manager: { n_workers: 1001 } })?.path).toEqual(["manager", "n_workers"]);
    expect(issue({ manager: { n_workers: 1000 } })).toBeUndefined();
    expect(issue({ manager: { chunk_size: 65536 } })?.path).toEqual(["manager", "chunk_size"]);
    expect(issue({ manager: { chunk_size: 0 } })?.path).toEqual(["manager", "chunk_size"]);
    expect(issue({ manager: { max_connections: -1 } })?.path).toEqual(["manager", "max_connections"]);
    expect(issue({ milters: [{ name: "a", reading_timeout: 0 }] })?.path).toEqual(["milters", 0, "reading_timeout"]);
    expect(issue({ milters: [{ name: "a", reading_timeout: 0.5 }] })).toBeUndefined();
    expect(issue({ applicable_conditions: { stress: { threshold_n_connections: "auto" } } })).toBeUndefined();
    expect(issue({ applicable_conditions: { stress: { threshold_n_connections: "many" } } })?.message).toContain('"auto" or a non-negative integer');
    expect(issue({ milters: [{ name: "" }] })?.message).toBe("must not be empty");
    expect(issue({ milters: [{ name: "a", command_options: 3 }] })?.message).toBe("must be a string or a list of strings");
  });

  test("listening specs may use port 0, child specs may not", () => {
    expect(ConfigFileSchema.safeParse({ manager: { connection_spec: "inet:0@[127.0.0.1]" } }).success).toBe(true);
    const r = ConfigFileSchema.safeParse({ milters: [{ name: "a", connection_spec: "inet:0@[127.0.0.1]" }] });
    expect(r.success).toBe(false);
    expect(r.error!.issues[0].message).toContain("port 0 is not allowed");
    expect(ConfigFileSchema.safeParse({ milters: [{ name: "a", connection_spec: "inet:127.0.0.1:8891" }] }).success).toBe(true);
  });
});
