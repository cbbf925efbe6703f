// DNSBL Listed / Not DNSBL Listed against a DNS server of the test's own on 127.0.0.1 (UDP):
// listed and not listed clients, expected answers, several zones, IPv6 and IPv4-mapped clients,
// failing, silent and absent name servers (never "listed"), the cache and shared lookups.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { ManagerConfig } from "../../src/manager/config/schema.ts";
import { CachingResolver } from "../../src/manager/conditions/dns.ts";
import { dnsblQueryName } from "../../src/manager/conditions/dnsbl.ts";
import { ConditionSession, configWith, connect } from "./support/condition-session.ts";
import { startDnsServer, type TestDnsServer } from "./support/dns-server.ts";

let dns: TestDnsServer;

beforeAll(async () => {
  dns = await startDnsServer({
    "99.2.0.192.bl.test": ["127.0.0.2"],
    "98.2.0.192.bl.test": ["127.0.0.11"],
    "97.2.0.192.bl.test": ["127.0.0.4", "127.0.0.10"],
    "99.2.0.192.other.test": ["127.0.0.3"],
    "1.113.0.203.bl.test": ["127.0.0.2"], // listed only here; silent in slow.test
    "1.113.0.203.slow.test": "silent",
    "2.113.0.203.bl.test": "servfail",
    "3.113.0.203.slow.test": "silent",
    "50.2.0.192.cache.test": ["127.0.0.2"],
    "51.2.0.192.ttl0.test": { addresses: ["127.0.0.2"], ttl: 0 },
  });
});
afterAll(() => dns.close());

type Services = ManagerConfig["applicable_conditions"]["dnsbl"]["services"];

function session(services: Services, opts: { servers?: string[]; timeout?: number; cacheTtl?: number } = {}) {
  return new ConditionSession(
    configWith({ listed: ["DNSBL Listed"], clean: ["Not DNSBL Listed"] }, (c) => {
      c.applicable_conditions.dnsbl = {
        services,
        name_servers: opts.servers ?? [dns.address],
        timeout: opts.timeout ?? 2,
        cache_ttl: opts.cacheTtl ?? 300,
      };
    }),
  );
}

/** Connect a client; whether each of the two milters is stopped. */
async function verdict(s: ConditionSession, address: string) {
  const [listed, clean] = await s.askAll(["listed", "clean"], connect("client.example", address));
  return { listedStopped: listed.stop, cleanStopped: clean.stop };
}
const LISTED = { listedStopped: false, cleanStopped: true };
const NOT_LISTED = { listedStopped: true, cleanStopped: false };

describe("DNSBL", () => {
  test("query name: reversed octets + zone", () => {
    expect(dnsblQueryName(Uint8Array.from([192, 0, 2, 99]), "zen.spamhaus.org.")).toBe("99.2.0.192.zen.spamhaus.org");
  });

  test("a listed client: DNSBL Listed applies, Not DNSBL Listed stops", async () => {
    expect(await verdict(session([{ zone: "bl.test", expected_answer: null }]), "192.0.2.99")).toEqual(LISTED);
    expect(dns.queries).toContain("99.2.0.192.bl.test 1");
  });

  test("a client the zone does not know (NXDOMAIN): not listed", async () => {
    expect(await verdict(session([{ zone: "bl.test", expected_answer: null }]), "192.0.2.1")).toEqual(NOT_LISTED);
  });

  test("expected_answer: only answers inside it count", async () => {
    const services = [{ zone: "bl.test", expected_answer: "127.0.0.10/31" }];
    expect(await verdict(session(services), "192.0.2.99")).toEqual(NOT_LISTED); // 127.0.0.2
    expect(await verdict(session(services), "192.0.2.98")).toEqual(LISTED); // 127.0.0.11
    expect(await verdict(session(services), "192.0.2.97")).toEqual(LISTED); // one of two answers inside
    expect(await verdict(session([{ zone: "bl.test", expected_answer: "127.0.0.2" }]), "192.0.2.99")).toEqual(LISTED);
  });

  test("several zones: listed in any one is listed, even when another zone never answers", async () => {
    const services = [
      { zone: "slow.test", expected_answer: null },
      { zone: "bl.test", expected_answer: null },
    ];
    expect(await verdict(session(services, { timeout: 30 }), "203.0.113.1")).toEqual(LISTED);
    expect(await verdict(session([{ zone: "nothing.test", expected_answer: null }, { zone: "other.test", expected_answer: null }]), "192.0.2.99")).toEqual(LISTED);
  });

  test("IPv6 clients are never listed (no query); IPv4-mapped clients are looked up as IPv4", async () => {
    const before = dns.queries.length;
    expect(await verdict(session([{ zone: "bl.test", expected_answer: null }]), "2001:db8::99")).toEqual(NOT_LISTED);
    expect(dns.queries.length).toBe(before);
    expect(await verdict(session([{ zone: "bl.test", expected_answer: null }]), "::ffff:192.0.2.99")).toEqual(LISTED);
  });

  test("a failing resolver never decides against mail: SERVFAIL, silence, nobody listening = not listed, logged", async () => {
    const s = session([{ zone: "bl.test", expected_answer: null }]);
    expect(await verdict(s, "203.0.113.2")).toEqual(NOT_LISTED); // SERVFAIL
    expect(s.log.lines.some((l) => l.includes("[warning]") && l.includes("counted as not listed") && l.includes("2.113.0.203.bl.test"))).toBe(true);
    expect(await verdict(session([{ zone: "slow.test", expected_answer: null }], { timeout: 0.3 }), "203.0.113.3")).toEqual(NOT_LISTED);
    const closed = await startDnsServer();
    closed.close(); // its port is free now: queries there get no answer
    expect(await verdict(session([{ zone: "bl.test", expected_answer: null }], { servers: [closed.address], timeout: 0.3 }), "192.0.2.99")).toEqual(NOT_LISTED);
  });

  test("answers are cached; parallel lookups of one name share a query; an answer with TTL 0 is not kept", async () => {
    const count = (name: string) => dns.queries.filter((q) => q.startsWith(name)).length;
    const services = [{ zone: "cache.test", expected_answer: null }];
    expect(await verdict(session(services), "192.0.2.50")).toEqual(LISTED); // two milters, one query
    expect(count("50.2.0.192.cache.test")).toBe(1);
    expect(await verdict(session(services), "192.0.2.50")).toEqual(LISTED); // another session: from the cache
    expect(count("50.2.0.192.cache.test")).toBe(1);
    const ttl0 = [{ zone: "ttl0.test", expected_answer: null }];
    expect(await verdict(session(ttl0), "192.0.2.51")).toEqual(LISTED);
    expect(await verdict(session(ttl0), "192.0.2.51")).toEqual(LISTED);
    expect(count("51.2.0.192.ttl0.test")).toBe(2);
  });
});

describe("CachingResolver", () => {
  test("answers, NXDOMAIN as no values, failures as errors (not cached)", async () => {
    const r = new CachingResolver({ servers: [dns.address], timeoutMs: 300, cacheTtlMs: 60_000 });
    expect(await r.resolve4("99.2.0.192.bl.test")).toEqual({ ok: true, values: ["127.0.0.2"] });
    expect(await r.resolve4("nowhere.test")).toEqual({ ok: true, values: [] });
    expect((await r.resolve4("3.113.0.203.slow.test")).ok).toBe(false); // silent: ends at our timeout
    dns.zone.set("5.113.0.203.bl.test", "servfail");
    expect(await r.resolve4("5.113.0.203.bl.test")).toMatchObject({ ok: false, error: expect.stringContaining("SERVFAIL") });
    dns.zone.set("5.113.0.203.bl.test", ["127.0.0.9"]); // the failure was not cached: the next lookup asks again
    expect(await r.resolve4("5.113.0.203.bl.test")).toEqual({ ok: true, values: ["127.0.0.9"] });
  });

  test("the cache keeps at most maxEntries names", async () => {
    const r = new CachingResolver({ servers: [dns.address], timeoutMs: 1000, cacheTtlMs: 60_000, maxEntries: 2 });
    for (const n of ["a.test", "b.test", "c.test"]) await r.resolve4(n);
    const before = dns.queries.length;
    await r.resolve4("c.test"); // kept
    expect(dns.queries.length).toBe(before);
    await r.resolve4("a.test"); // dropped first
    expect(dns.queries.length).toBe(before + 1);
  });
});
