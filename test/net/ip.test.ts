// ipFamily (src/net/ip.ts) answers as node:net's isIP.
import { expect, test } from "bun:test";
import { isIP } from "node:net";
import { ipFamily } from "../../src/net/ip.ts";

const CASES = [
  "127.0.0.1", "0.0.0.0", "255.255.255.255", "256.1.1.1", "1.2.3", "1.2.3.4.5", "01.2.3.4", "1.2.3.04", "1..2.3",
  "0x7f.0.0.1", "127.1", " 1.2.3.4", "1.2.3.4 ", "1.2.3.4\n", "", "localhost", "mail.example.com", "a:b",
  "::", "::1", "1::", "fe80::1", "2001:db8::8a2e:370:7334", "2001:0db8:0000:0000:0000:ff00:0042:8329",
  "1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7:8:9", "1:2:3:4:5:6:7", "1::2::3", ":::", "1:::2", "12345::", "g::1",
  "::ffff:1.2.3.4", "::ffff:256.2.3.4", "::1.2.3.4", "1:2:3:4:5:6:1.2.3.4", "1:2:3:4:5:6:7:1.2.3.4",
  "fe80::1%eth0", "fe80::1%", "fe80::1%eth0%1", "fe80::1%1", "1.2.3.4%eth0", "[::1]", "::1]/x[", "::1/64",
  "FE80::ABCD", ":1", "1:", "::1.2.3", "1.2.3.4::", "::0.0.0.0",
];

test("ipFamily agrees with node:net isIP", () => {
  for (const c of CASES) expect([c, ipFamily(c)]).toEqual([c, isIP(c) as 0 | 4 | 6]);
});
