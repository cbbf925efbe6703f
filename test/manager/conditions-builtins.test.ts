// Every built-in condition (except DNSBL: conditions-dnsbl.test.ts) with cases where it stops the
// milter and cases where it lets it apply, driven through the engine's hook (createConditions →
// shouldStop) as the leader calls it.
import { describe, expect, test } from "bun:test";
import { s25rRule } from "../../src/manager/conditions/s25r.ts";
import { postfixThreshold } from "../../src/manager/conditions/stress.ts";
import { envelopeDomain } from "../../src/manager/conditions/trust.ts";
import { ConditionSession, configWith, connect, DATA, mail, rcpt } from "./support/condition-session.ts";

/** Does `condition` stop milter "m" when a client of this host name and address connects? */
async function stopsAtConnect(condition: string, host: string, address: string, edit?: Parameters<typeof configWith>[1]): Promise<boolean> {
  const s = new ConditionSession(configWith({ m: [condition] }, edit));
  return (await s.ask("m", connect(host, address))).stop;
}

describe("S25R", () => {
  // Host names of end-user / dynamic addresses: the milter applies (not stopped).
  const generic: [string, string][] = [
    ["unknown", "no host name"],
    ["[198.51.100.23]", "no reverse DNS"],
    ["p5B3C2D1E.dip0.t-ipconnect.de", "digits separated by letters"],
    ["host-203-0-113-10.example-isp.net", "digits separated by hyphens"],
    ["cpe-98-27-146-10.neo.res.rr.com", "cable modem"],
    ["c-73-15-22-101.hsd1.ca.comcast.net", "cable modem"],
    ["softbank220011022033.bbtec.net", "long digit run"],
    ["KD124211058076.ppp-bb.dion.ne.jp", "long digit run, upper case"],
    ["123456.example.com", "five digits"],
    ["45.67.89.static.example.net", "label starting with a digit followed by more labels"],
    ["user1.23-45.example.jp", "digit-hyphen-digit in the second label"],
    ["ns1.dsl2.example.ne.jp", "first two labels end in digits"],
    ["dhcp0123.example.net", "dhcp prefix"],
    ["adsl12.example.com", "adsl prefix"],
    ["DIALUP7.isp.example", "dialup prefix, upper case"],
    ["ppp9.example.org", "ppp prefix"],
  ];
  // Proper server names (or allow-listed senders): the milter is stopped.
  const servers: [string, string][] = [
    ["mail.example.com", "plain"],
    ["mx1.example.net", "digit only in the first label's end"],
    ["smtp.example.co.jp", "plain, ccTLD"],
    ["mta7.am0.yahoodns.net", "first two labels end in digits, only two labels follow"],
    ["relay.example.ac.jp", "plain"],
    ["mail-ej1-f54.google.com", "allow list (.google.com) although an S25R rule matches"],
    ["o1.ptr1234.sendgrid.net", "allow list (.sendgrid.net)"],
    ["a8-12.smtp-out.amazonses.com", "allow list (.smtp-out.amazonses.com)"],
  ];

  test.each(generic)("generic %s (%s): applies", async (host) => {
    expect(await stopsAtConnect("S25R", host, "198.51.100.23")).toBe(false);
  });
  test.each(servers)("server %s (%s): stopped", async (host) => {
    expect(await stopsAtConnect("S25R", host, "198.51.100.23")).toBe(true);
  });

  test("each rule has a name for the log", () => {
    expect(s25rRule("dhcp0123.example.net")).toBeString();
    expect(s25rRule("mail.example.com")).toBeUndefined();
  });

  test("deny list applies the milter to a proper-looking name; allow list wins over deny list and rules", async () => {
    const edit = (c: Parameters<NonNullable<Parameters<typeof configWith>[1]>>[0]) => {
      c.applicable_conditions.s25r.deny = ["/\\.bad\\.example$/i", "spam.example.org"];
      c.applicable_conditions.s25r.allow.push("host-203-0-113-10.example-isp.net", ".bad.example");
    };
    expect(await stopsAtConnect("S25R", "SPAM.example.org", "198.51.100.23", edit)).toBe(false);
    expect(await stopsAtConnect("S25R", "mx.bad.example", "198.51.100.23", edit)).toBe(true); // allow checked first
    expect(await stopsAtConnect("S25R", "host-203-0-113-10.example-isp.net", "198.51.100.23", edit)).toBe(true);
    expect(await stopsAtConnect("S25R", "host-203-0-113-11.example-isp.net", "198.51.100.23", edit)).toBe(false);
  });

  test("check_only_ipv4: IPv6 clients count as allowed unless it is off; IPv4-mapped clients are IPv4", async () => {
    expect(await stopsAtConnect("S25R", "dhcp0123.example.net", "2001:db8::5")).toBe(true);
    expect(await stopsAtConnect("S25R", "dhcp0123.example.net", "::ffff:198.51.100.5")).toBe(false);
    expect(await stopsAtConnect("S25R", "dhcp0123.example.net", "2001:db8::5", (c) => void (c.applicable_conditions.s25r.check_only_ipv4 = false))).toBe(false);
    expect(await stopsAtConnect("S25R", "dhcp0123.example.net", "/run/smtp.sock", (c) => void (c.applicable_conditions.s25r.check_only_ipv4 = true))).toBe(true);
  });
});

describe("Remote Network", () => {
  test.each([
    ["192.0.2.1", false],
    ["203.0.113.77", false],
    ["2001:db8::1", false],
    ["IPv6:2001:db8::1", false],
    ["::ffff:203.0.113.1", false],
    ["127.0.0.1", true],
    ["10.0.0.1", true],
    ["172.20.1.1", true],
    ["192.168.10.1", true],
    ["169.254.1.1", true],
    ["::1", true],
    ["fe80::1", true],
    ["fd12:3456::1", true],
    ["::ffff:10.0.0.1", true],
  ] as [string, boolean][])("client %s: stopped=%p", async (address, stopped) => {
    expect(await stopsAtConnect("Remote Network", "host.example", address)).toBe(stopped);
  });

  test("UNIX-socket and unknown-family clients are never remote", async () => {
    const s = new ConditionSession(configWith({ m: ["Remote Network"] }));
    expect((await s.ask("m", connect("localhost", "/run/smtp.sock", "L", 0))).stop).toBe(true);
    expect((await s.ask("m", { stage: "connect", command: { type: "connect", hostname: "unknown", family: "U" } })).stop).toBe(true);
  });

  test("local_addresses add local networks (IPv4 and IPv6); remote_addresses win over local", async () => {
    const edit = (c: Parameters<NonNullable<Parameters<typeof configWith>[1]>>[0]) => {
      c.applicable_conditions.remote_network.local_addresses = ["192.0.2.0/24", "2001:db8:1::/48"];
      c.applicable_conditions.remote_network.remote_addresses = ["10.1.0.0/16", "192.0.2.128/25", "fd00:1::/32"];
    };
    expect(await stopsAtConnect("Remote Network", "h", "192.0.2.5", edit)).toBe(true);
    expect(await stopsAtConnect("Remote Network", "h", "::ffff:192.0.2.5", edit)).toBe(true);
    expect(await stopsAtConnect("Remote Network", "h", "192.0.2.200", edit)).toBe(false);
    expect(await stopsAtConnect("Remote Network", "h", "2001:db8:1::5", edit)).toBe(true);
    expect(await stopsAtConnect("Remote Network", "h", "2001:db8:2::5", edit)).toBe(false);
    expect(await stopsAtConnect("Remote Network", "h", "10.1.2.3", edit)).toBe(false);
    expect(await stopsAtConnect("Remote Network", "h", "::ffff:10.1.2.3", edit)).toBe(false);
    expect(await stopsAtConnect("Remote Network", "h", "10.2.0.1", edit)).toBe(true);
    expect(await stopsAtConnect("Remote Network", "h", "fd00:1::9", edit)).toBe(false);
  });
});

describe("Authenticated / Unauthenticated", () => {
  async function atMail(condition: string, macros?: Record<string, string>): Promise<boolean> {
    const s = new ConditionSession(configWith({ m: [condition] }));
    await s.ask("m", connect("client.example", "192.0.2.1"));
    return (await s.ask("m", mail("<a@example.com>"), macros)).stop;
  }
  test("authenticated sender: Authenticated applies, Unauthenticated stops", async () => {
    const cases: Record<string, string>[] = [{ "{auth_type}": "PLAIN", "{auth_authen}": "alice" }, { auth_authen: "alice" }, { "{auth_type}": "LOGIN" }];
    for (const macros of cases) {
      expect(await atMail("Authenticated", macros)).toBe(false);
      expect(await atMail("Unauthenticated", macros)).toBe(true);
    }
  });
  test("unauthenticated sender (no macro, or empty values): Authenticated stops, Unauthenticated applies", async () => {
    const cases: (Record<string, string> | undefined)[] = [undefined, { i: "4ABC" }, { "{auth_type}": "", "{auth_authen}": "" }];
    for (const macros of cases) {
      expect(await atMail("Authenticated", macros)).toBe(true);
      expect(await atMail("Unauthenticated", macros)).toBe(false);
    }
  });
  test("the next transaction is decided on its own macros", async () => {
    const s = new ConditionSession(configWith({ m: ["Unauthenticated"] }));
    await s.ask("m", connect("client.example", "192.0.2.1"));
    expect((await s.ask("m", mail("<a@example.com>"), { "{auth_type}": "PLAIN" })).stop).toBe(true);
    await s.abort();
    expect((await s.ask("m", mail("<b@example.com>"), { i: "X" })).stop).toBe(false);
  });
});

describe("Trust", () => {
  test("envelopeDomain", () => {
    expect(envelopeDomain("<User@Gmail.COM>")).toBe("gmail.com");
    expect(envelopeDomain("user@example.org")).toBe("example.org");
    expect(envelopeDomain("<>")).toBeUndefined();
    expect(envelopeDomain("<postmaster>")).toBeUndefined();
  });
  test("a trusted sender domain adds trusted_domain=yes; never stops", async () => {
    const s = new ConditionSession(configWith({ m: ["Trust"] }, (c) => c.applicable_conditions.trust.envelope_from_domains.push("/\\.example\\.org$/")));
    await s.ask("m", connect("client.example", "192.0.2.1"));
    expect(await s.ask("m", mail("<someone@GMAIL.com>"))).toEqual({ stop: false, added: { trusted_domain: "yes" } });
    expect(await s.ask("m", mail("<x@mail.example.org>"))).toEqual({ stop: false, added: { trusted_domain: "yes" } });
    expect(await s.ask("m", mail("<x@example.com>"))).toEqual({ stop: false, added: {} });
    expect(await s.ask("m", mail("<x@gmail.com.evil.example>"))).toEqual({ stop: false, added: {} });
    expect(await s.ask("m", mail("<>"))).toEqual({ stop: false, added: {} });
  });
});

describe("Sendmail Compatible", () => {
  const postfixConnect = { v: "Postfix 3.7.11", j: "mx.example.com", "{daemon_addr}": "127.0.0.1", "{daemon_port}": "25" };
  test("with Postfix: if_addr and if_name at connect (daemon_port already sent), i at MAIL", async () => {
    const s = new ConditionSession(configWith({ m: ["Sendmail Compatible"] }));
    const c = await s.ask("m", connect("client.example", "192.0.2.1"), postfixConnect);
    expect(c.stop).toBe(false);
    expect(c.added.if_addr).toBe("127.0.0.1");
    expect(c.added.daemon_port).toBeUndefined();
    expect(typeof c.added.if_name).toBe("string"); // 127.0.0.1 always has a name (hosts file)
    expect(await s.ask("m", mail("<a@example.com>"))).toEqual({ stop: false, added: { i: "dummy-id" } });
    expect(await s.ask("m", mail("<a@example.com>"), { i: "4XyZ" })).toEqual({ stop: false, added: {} });
  });
  test("daemon_port is added when Postfix does not send it; nothing when the MTA is not Postfix", async () => {
    const s = new ConditionSession(configWith({ m: ["Sendmail Compatible"] }));
    const c = await s.ask("m", connect("client.example", "192.0.2.1"), { v: "Postfix 3.9", "{daemon_addr}": "127.0.0.1", "{if_name}": "mx", "{daemon_port}": "" });
    expect(c.added).toEqual({ if_addr: "127.0.0.1" }); // {daemon_port} sent (even empty), {if_name} sent
    const t = new ConditionSession(configWith({ m: ["Sendmail Compatible"] }));
    const d = await t.ask("m", connect("client.example", "192.0.2.1"), { v: "Postfix 3.9", daemon_addr: "::1", if_name: "localhost" });
    expect(d.added).toEqual({ if_addr: "::1" });
    const u = new ConditionSession(configWith({ m: ["Sendmail Compatible"] }));
    expect((await u.ask("m", connect("client.example", "192.0.2.1"), { v: "8.17.1", "{daemon_addr}": "127.0.0.1" })).added).toEqual({});
    expect((await u.ask("m", mail("<a@example.com>"))).added).toEqual({});
  });
});

describe("Stress Notify / No Stress", () => {
  async function atConnect(threshold: number | "auto", sessions: number, v = "Postfix 3.7", detect = async () => 3) {
    const s = new ConditionSession(
      configWith({ notify: ["Stress Notify"], quiet: ["No Stress"] }, (c) => void (c.applicable_conditions.stress.threshold_n_connections = threshold)),
      { detectPostfixThreshold: detect },
    );
    s.sessions = sessions;
    const [n, q] = await s.askAll(["notify", "quiet"], connect("client.example", "192.0.2.1"), { v });
    return { notify: n, noStress: q };
  }
  test("below the threshold: no macro, No Stress applies", async () => {
    expect(await atConnect(10, 9)).toEqual({ notify: { stop: false, added: {} }, noStress: { stop: false, added: {} } });
  });
  test("at or above the threshold: stress=yes, No Stress stops", async () => {
    for (const n of [10, 11]) {
      expect(await atConnect(10, n)).toEqual({ notify: { stop: false, added: { stress: "yes" } }, noStress: { stop: true, added: {} } });
    }
  });
  test("threshold 0: never stressed", async () => {
    expect((await atConnect(0, 1000)).noStress.stop).toBe(false);
  });
  test("auto: detected for Postfix, never stressed with another MTA", async () => {
    expect((await atConnect("auto", 3)).noStress.stop).toBe(true);
    expect((await atConnect("auto", 2)).noStress.stop).toBe(false);
    expect((await atConnect("auto", 3, "8.17.1")).noStress.stop).toBe(false);
  });
  test("auto for Postfix: 75 % of the smtp service's maxproc, or of default_process_limit", () => {
    expect(postfixThreshold("100\n", "smtp      inet  n       -       y       -       -       smtpd\n")).toBe(75);
    expect(postfixThreshold("100\n", "smtp      inet  n       -       y       -       20      smtpd")).toBe(15);
    expect(postfixThreshold("100", "smtp inet n - y - 0 smtpd")).toBe(0); // 0 = unlimited: never stressed
    expect(postfixThreshold("", "")).toBe(0); // postconf failed
  });
});

describe("Restrict Accounts (restrict_accounts rules)", () => {
  const rules = (c: Parameters<NonNullable<Parameters<typeof configWith>[1]>>[0]) => {
    c.applicable_conditions.restrict_accounts = [{ name: "Sales only", accounts: ["sales@example.com", "/^info@/i"], milters: ["a"] }];
  };
  async function transaction(recipients: string[]) {
    const s = new ConditionSession(configWith({ a: [], b: [] }, rules));
    await s.askAll(["a", "b"], connect("client.example", "192.0.2.1"));
    await s.askAll(["a", "b"], mail("<x@example.net>"));
    const perRcpt: boolean[] = [];
    for (const r of recipients) {
      const [a, b] = await s.askAll(["a", "b"], rcpt(r));
      expect(b.stop).toBe(false); // the rule is not attached to b
      perRcpt.push(a.stop);
    }
    const [a, b] = await s.askAll(["a", "b"], DATA);
    expect(b.stop).toBe(false);
    return { perRcpt, data: a.stop, s };
  }
  test("all recipients allowed: the milter sees them and the message", async () => {
    expect(await transaction(["<sales@example.com>", "<INFO@example.org>"])).toMatchObject({ perRcpt: [false, false], data: false });
  });
  test("one recipient not allowed: hidden from the milter, which leaves the message at DATA — in any order (#39, #42)", async () => {
    expect(await transaction(["<sales@example.com>", "<bob@example.com>"])).toMatchObject({ perRcpt: [false, true], data: true });
    expect(await transaction(["<bob@example.com>", "<sales@example.com>"])).toMatchObject({ perRcpt: [true, false], data: true });
  });
  test("a new transaction starts clean", async () => {
    const { s } = await transaction(["<bob@example.com>"]);
    await s.askAll(["a", "b"], mail("<y@example.net>"));
    expect((await s.ask("a", rcpt("<sales@example.com>"))).stop).toBe(false);
    expect((await s.ask("a", DATA)).stop).toBe(false);
  });
  test("a rule without milters applies to every milter", async () => {
    const s = new ConditionSession(configWith({ a: [], b: [] }, (c) => {
      c.applicable_conditions.restrict_accounts = [{ name: "R", accounts: ["ok@example.com"], milters: null }];
    }));
    await s.askAll(["a", "b"], mail("<x@example.net>"));
    expect((await s.askAll(["a", "b"], rcpt("<no@example.com>"))).map((x) => x.stop)).toEqual([true, true]);
    expect((await s.askAll(["a", "b"], DATA)).map((x) => x.stop)).toEqual([true, true]);
  });
});
