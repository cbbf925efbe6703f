// Addresses and networks for the conditions: IPv4/IPv6 parsing (with MTA spellings), CIDR
// matching including IPv4-mapped IPv6 addresses, "local", socket addresses from connect and macros.
import { describe, expect, test } from "bun:test";
import {
  AddressError,
  asIPv4,
  clientAddressOf,
  formatIp,
  inNetwork,
  LOCAL_NETWORKS,
  parseIp,
  parseNetwork,
  serverAddressFrom,
} from "../../src/manager/conditions/address.ts";

const ip = (t: string) => {
  const a = parseIp(t);
  if (!a) throw new Error(`test address ${t} does not parse`);
  return a;
};

describe("parseIp", () => {
  test("IPv4 and IPv6, as MTAs write them", () => {
    expect(ip("192.0.2.1")).toEqual({ family: 4, bytes: Uint8Array.from([192, 0, 2, 1]) });
    expect(formatIp(ip("IPv6:2001:DB8::1"))).toBe("2001:db8::1");
    expect(formatIp(ip("[2001:db8::1]"))).toBe("2001:db8::1");
    expect(formatIp(ip("fe80::1%eth0"))).toBe("fe80::1");
    expect(formatIp(ip("::"))).toBe("::");
    expect(formatIp(ip("::1"))).toBe("::1");
    expect(formatIp(ip("2001:db8:0:0:1:0:0:1"))).toBe("2001:db8::1:0:0:1");
    expect(formatIp(ip("1:0:0:2:0:0:0:3"))).toBe("1:0:0:2::3");
    expect(formatIp(ip("1:2:3:4:5:6:7:8"))).toBe("1:2:3:4:5:6:7:8");
  });

  test("an embedded IPv4 tail and IPv4-mapped addresses", () => {
    const mapped = ip("::ffff:192.0.2.1");
    expect(mapped.family).toBe(6);
    expect(Array.from(mapped.bytes.slice(10))).toEqual([0xff, 0xff, 192, 0, 2, 1]);
    expect(asIPv4(mapped)).toEqual({ family: 4, bytes: Uint8Array.from([192, 0, 2, 1]) });
    expect(asIPv4(ip("::ffff:c000:0201"))!.bytes).toEqual(Uint8Array.from([192, 0, 2, 1]));
    expect(asIPv4(ip("2001:db8::c000:201"))).toBeUndefined();
    expect(asIPv4(ip("::192.0.2.1"))).toBeUndefined(); // IPv4-compatible (deprecated) is not mapped
  });

  test("non-addresses", () => {
    for (const t of ["", "mail.example.com", "256.1.1.1", "1.2.3", "2001:db8::1::2", "unknown", "[unknown]"]) expect(parseIp(t)).toBeUndefined();
  });
});

describe("networks", () => {
  test("IPv4 CIDR", () => {
    const n = parseNetwork("192.0.2.0/24");
    expect(inNetwork(ip("192.0.2.255"), n)).toBe(true);
    expect(inNetwork(ip("192.0.3.0"), n)).toBe(false);
    expect(inNetwork(ip("10.1.2.3"), parseNetwork("10.0.0.0/8"))).toBe(true);
    expect(inNetwork(ip("172.31.255.255"), parseNetwork("172.16.0.0/12"))).toBe(true);
    expect(inNetwork(ip("172.32.0.0"), parseNetwork("172.16.0.0/12"))).toBe(false);
    expect(inNetwork(ip("203.0.113.9"), parseNetwork("0.0.0.0/0"))).toBe(true);
    expect(inNetwork(ip("203.0.113.9"), parseNetwork("203.0.113.9"))).toBe(true);
    expect(inNetwork(ip("203.0.113.8"), parseNetwork("203.0.113.9"))).toBe(false);
  });

  test("IPv6 CIDR, and IPv4 networks match IPv4-mapped addresses only", () => {
    const n = parseNetwork("2001:db8::/32");
    expect(inNetwork(ip("2001:db8:ffff::1"), n)).toBe(true);
    expect(inNetwork(ip("2001:db9::1"), n)).toBe(false);
    expect(inNetwork(ip("::ffff:10.0.0.1"), parseNetwork("10.0.0.0/8"))).toBe(true);
    expect(inNetwork(ip("2001:db8::10.0.0.1"), parseNetwork("10.0.0.0/8"))).toBe(false);
    expect(inNetwork(ip("10.0.0.1"), parseNetwork("::/0"))).toBe(false); // an IPv4 address is not in an IPv6 network
    expect(inNetwork(ip("fe80::abcd"), parseNetwork("fe80::/10"))).toBe(true);
    expect(inNetwork(ip("fec0::1"), parseNetwork("fe80::/10"))).toBe(false);
  });

  test("bad networks are errors naming the input", () => {
    expect(() => parseNetwork("192.0.2.0/33")).toThrow(AddressError);
    expect(() => parseNetwork("192.0.2.0/33")).toThrow('"192.0.2.0/33": prefix length must be 0..32');
    expect(() => parseNetwork("2001:db8::/129")).toThrow("0..128");
    expect(() => parseNetwork("10.0.0.0/")).toThrow();
    expect(() => parseNetwork("10.0.0.0/x")).toThrow();
    expect(() => parseNetwork("example.com/8")).toThrow("not an IPv4 or IPv6 address");
  });

  test("local networks: loopback, private, link-local, unique-local", () => {
    for (const t of ["127.0.0.1", "10.9.8.7", "172.16.0.1", "192.168.1.1", "169.254.3.4", "::1", "fe80::1", "fd00::5", "::ffff:192.168.0.1", "::ffff:127.0.0.1"]) {
      expect([t, LOCAL_NETWORKS.has(ip(t))]).toEqual([t, true]);
    }
    for (const t of ["192.0.2.1", "8.8.8.8", "172.32.0.1", "2001:db8::1", "::ffff:8.8.8.8", "::"]) {
      expect([t, LOCAL_NETWORKS.has(ip(t))]).toEqual([t, false]);
    }
  });
});

describe("socket addresses", () => {
  test("client address from the connect command", () => {
    expect(clientAddressOf({ type: "connect", hostname: "mx.example.com", family: "4", port: 40000, address: "192.0.2.7" })).toMatchObject({
      family: "ipv4", address: "192.0.2.7", port: 40000, local: false, spec: "inet:40000@[192.0.2.7]",
    });
    expect(clientAddressOf({ type: "connect", hostname: "x", family: "6", port: 25, address: "IPv6:::1" })).toMatchObject({
      family: "ipv6", address: "::1", local: true, spec: "inet6:25@[::1]",
    });
    expect(clientAddressOf({ type: "connect", hostname: "localhost", family: "L", port: 0, address: "/run/smtp.sock" })).toEqual({
      family: "unix", path: "/run/smtp.sock", local: true, spec: "unix:/run/smtp.sock",
    });
    expect(clientAddressOf({ type: "connect", hostname: "unknown", family: "U" })).toMatchObject({ family: "unknown", local: false });
    expect(clientAddressOf({ type: "connect", hostname: "x", family: "4", port: 1, address: "garbage" }).family).toBe("unknown");
  });

  test("server address from {daemon_addr}/{if_addr} and {daemon_port}", () => {
    const m = (o: Record<string, string>) => (n: string) => o[n];
    expect(serverAddressFrom(m({ daemon_addr: "192.0.2.25", daemon_port: "25" }))).toMatchObject({ family: "ipv4", address: "192.0.2.25", port: 25 });
    expect(serverAddressFrom(m({ if_addr: "2001:db8::25" }))).toMatchObject({ family: "ipv6", port: 0 });
    expect(serverAddressFrom(m({})).family).toBe("unknown");
  });
});
