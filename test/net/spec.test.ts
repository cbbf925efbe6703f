import { describe as group, expect, test } from "bun:test";
import { describeSpec, formatAddress, formatSpec, parseSpec, SpecError, toBunAddress, type ConnectionSpec } from "../../src/net/spec.ts";

group("parseSpec: valid forms", () => {
  const cases: [string, ConnectionSpec, string][] = [
    ["unix:/run/milter/m.sock", { kind: "unix", path: "/run/milter/m.sock", scheme: "unix" }, "unix:/run/milter/m.sock"],
    ["local:/var/run/m.sock", { kind: "unix", path: "/var/run/m.sock", scheme: "local" }, "unix:/var/run/m.sock"],
    ["unix:relative/m.sock", { kind: "unix", path: "relative/m.sock", scheme: "unix" }, "unix:relative/m.sock"],
    ["inet:10025", { kind: "inet", port: 10025, scheme: "inet" }, "inet:10025"],
    ["inet:10025@localhost", { kind: "inet", port: 10025, host: "localhost", scheme: "inet" }, "inet:10025@localhost"],
    ["inet:10025@127.0.0.1", { kind: "inet", port: 10025, host: "127.0.0.1", scheme: "inet" }, "inet:10025@[127.0.0.1]"],
    ["inet:10025@[127.0.0.1]", { kind: "inet", port: 10025, host: "127.0.0.1", scheme: "inet" }, "inet:10025@[127.0.0.1]"],
    ["inet:65535@[10.1.2.3]", { kind: "inet", port: 65535, host: "10.1.2.3", scheme: "inet" }, "inet:65535@[10.1.2.3]"],
    ["inet6:10025", { kind: "inet6", port: 10025, scheme: "inet6" }, "inet6:10025"],
    ["inet6:10025@localhost", { kind: "inet6", port: 10025, host: "localhost", scheme: "inet6" }, "inet6:10025@localhost"],
    ["inet6:10025@[::1]", { kind: "inet6", port: 10025, host: "::1", scheme: "inet6" }, "inet6:10025@[::1]"],
    ["inet6:10025@::1", { kind: "inet6", port: 10025, host: "::1", scheme: "inet6" }, "inet6:10025@[::1]"],
    ["inet6:1@[2001:db8::1]", { kind: "inet6", port: 1, host: "2001:db8::1", scheme: "inet6" }, "inet6:1@[2001:db8::1]"],
    // Postfix forms
    ["inet:127.0.0.1:10025", { kind: "inet", port: 10025, host: "127.0.0.1", scheme: "inet" }, "inet:10025@[127.0.0.1]"],
    ["inet:localhost:8891", { kind: "inet", port: 8891, host: "localhost", scheme: "inet" }, "inet:8891@localhost"],
    ["inet:[127.0.0.1]:10025", { kind: "inet", port: 10025, host: "127.0.0.1", scheme: "inet" }, "inet:10025@[127.0.0.1]"],
    ["inet:[::1]:10025", { kind: "inet6", port: 10025, host: "::1", scheme: "inet" }, "inet6:10025@[::1]"],
    ["inet:10025@[::1]", { kind: "inet6", port: 10025, host: "::1", scheme: "inet" }, "inet6:10025@[::1]"],
    ["INET:25@mail.example.org", { kind: "inet", port: 25, host: "mail.example.org", scheme: "inet" }, "inet:25@mail.example.org"],
  ];
  for (const [input, spec, canonical] of cases) {
    test(input, () => {
      expect(parseSpec(input)).toEqual(spec);
      expect(formatSpec(parseSpec(input))).toBe(canonical);
      const again = parseSpec(canonical); // the canonical form parses back to the same endpoint
      expect(formatSpec(again)).toBe(canonical);
      expect({ ...again, scheme: undefined }).toEqual({ ...spec, scheme: undefined });
    });
  }

  test("port 0 only when allowed", () => {
    expect(() => parseSpec("inet:0@[127.0.0.1]")).toThrow(SpecError);
    expect(parseSpec("inet:0@[127.0.0.1]", { allowPortZero: true })).toEqual({ kind: "inet", port: 0, host: "127.0.0.1", scheme: "inet" });
  });
});

group("parseSpec: errors name the problem and the input", () => {
  const cases: [string, RegExp][] = [
    ["/run/m.sock", /missing scheme/],
    ["XXXX@localhost", /missing scheme/],
    ["tcp:10025", /unknown scheme "tcp"/],
    [":10025", /unknown scheme ""/],
    ["unix:", /empty socket path/],
    ["local:", /empty socket path/],
    [`unix:/${"x".repeat(120)}`, /longer than 107 bytes/],
    ["inet:", /missing port/],
    ["inet:@localhost", /missing port/],
    ["inet:localhost:", /missing port/],
    ["inet:smtp", /port "smtp" is not a number/],
    ["inet:-1", /port "-1" is not a number/],
    ["inet:10025x@[127.0.0.1]", /port "10025x" is not a number/],
    ["inet:0", /port 0 is not allowed/],
    ["inet:65536", /port 65536 is greater than 65535/],
    ["inet:99999@localhost", /greater than 65535/],
    ["inet:10025@[127.0.0.1", /unbalanced brackets/],
    ["inet:10025@127.0.0.1]", /unbalanced brackets/],
    ["inet6:10025@[::1", /unbalanced brackets/],
    ["inet:[::1:10025", /unbalanced brackets/],
    ["inet:::1]:10025", /unbalanced brackets/],
    ["inet:[::1]", /expected :PORT/],
    ["inet:10025@[]", /empty address inside brackets/],
    ["inet:10025@[300.1.1.1]", /"300.1.1.1" is not an IPv4 or IPv6 address/],
    ["inet:10025@[localhost]", /"localhost" is not an IPv4 or IPv6 address/],
    ["inet6:10025@[::g]", /"::g" is not an IPv4 or IPv6 address/],
    ["inet:10025@1.2.3", /"1.2.3" is not a valid IPv4 address/],
    ["inet:10025@bad host", /not a valid host name/],
    ["inet6:10025@[127.0.0.1]", /inet6 spec with an IPv4 address/],
    ["inet6:10025@127.0.0.1", /inet6 spec with an IPv4 address/],
    ["inet:10025@", /empty host after @/],
    ["inet::10025", /empty host before :PORT/],
    ["inet:::1:10025", /IPv6 address must be written in brackets/],
  ];
  for (const [input, problem] of cases) {
    test(JSON.stringify(input), () => {
      let err: unknown;
      try {
        parseSpec(input);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(SpecError);
      const e = err as SpecError;
      expect(e.input).toBe(input);
      expect(e.problem).toMatch(problem);
      expect(e.message).toBe(`invalid connection spec <${input}>: ${e.problem}`);
    });
  }
});

group("helpers", () => {
  test("toBunAddress: any address for listen, loopback for connect", () => {
    expect(toBunAddress(parseSpec("inet:10025"), "listen")).toEqual({ hostname: "0.0.0.0", port: 10025 });
    expect(toBunAddress(parseSpec("inet:10025"), "connect")).toEqual({ hostname: "127.0.0.1", port: 10025 });
    expect(toBunAddress(parseSpec("inet6:10025"), "listen")).toEqual({ hostname: "::", port: 10025 });
    expect(toBunAddress(parseSpec("inet6:10025"), "connect")).toEqual({ hostname: "::1", port: 10025 });
    expect(toBunAddress(parseSpec("inet:10025@[10.0.0.1]"), "listen")).toEqual({ hostname: "10.0.0.1", port: 10025 });
    expect(toBunAddress(parseSpec("local:/x.sock"), "connect")).toEqual({ unix: "/x.sock" });
  });

  test("describeSpec", () => {
    expect(describeSpec(parseSpec("unix:/run/x.sock"))).toBe("unix socket /run/x.sock");
    expect(describeSpec(parseSpec("inet:10025"))).toBe("IPv4 any address port 10025");
    expect(describeSpec(parseSpec("inet6:10025@[::1]"))).toBe("IPv6 ::1 port 10025");
  });

  test("formatAddress", () => {
    expect(formatAddress({ family: "IPv4", address: "192.0.2.1", port: 50443 })).toBe("inet:50443@[192.0.2.1]");
    expect(formatAddress({ family: "IPv6", address: "::1", port: 1 })).toBe("inet6:1@[::1]");
    expect(formatAddress({ family: "unix", path: "/x.sock" })).toBe("unix:/x.sock");
    expect(formatAddress({ family: "unix", path: "" })).toBe("unknown");
    expect(formatAddress(undefined)).toBe("unknown");
  });
});
