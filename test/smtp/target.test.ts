import { describe, expect, test } from "bun:test";
import { AddressError, formatTarget, parseListen, parseTarget } from "../../src/smtp/target.ts";

describe("parseTarget (smtp-source)", () => {
  test("host, host:port, inet: prefix, default port 25", () => {
    expect(parseTarget("mail.example")).toEqual({ kind: "inet", host: "mail.example", port: 25 });
    expect(parseTarget("127.0.0.1:2525")).toEqual({ kind: "inet", host: "127.0.0.1", port: 2525 });
    expect(parseTarget("inet:127.0.0.1:26")).toEqual({ kind: "inet", host: "127.0.0.1", port: 26 });
    expect(parseTarget("localhost:smtp")).toEqual({ kind: "inet", host: "localhost", port: 25 });
    expect(parseTarget("localhost:lmtp")).toEqual({ kind: "inet", host: "localhost", port: 24 });
  });
  test("IPv6 in brackets, with and without port", () => {
    expect(parseTarget("[::1]:10025")).toEqual({ kind: "inet", host: "::1", port: 10025 });
    expect(parseTarget("[::1]")).toEqual({ kind: "inet", host: "::1", port: 25 });
    expect(parseTarget("inet:[2001:db8::1]:587")).toEqual({ kind: "inet", host: "2001:db8::1", port: 587 });
  });
  test("unix:pathname", () => {
    expect(parseTarget("unix:/run/x.sock")).toEqual({ kind: "unix", path: "/run/x.sock" });
  });
  test("errors name the input", () => {
    expect(() => parseTarget("unix:")).toThrow(AddressError);
    expect(() => parseTarget("host:99999")).toThrow("host:99999: bad port number: 99999");
    expect(() => parseTarget("host:nosuchservice")).toThrow("unknown service name: nosuchservice");
    expect(() => parseTarget(":25")).toThrow("missing host name");
    expect(() => parseTarget("[::1")).toThrow("missing ']'");
    expect(() => parseTarget("[::1]x")).toThrow("unexpected text after ']'");
  });
  test("formatTarget round trip", () => {
    for (const s of ["127.0.0.1:25", "[::1]:26", "unix:/tmp/s"]) expect(formatTarget(parseTarget(s))).toBe(s);
  });
});

describe("parseListen (smtp-sink)", () => {
  test("[inet:][host]:port and unix:", () => {
    expect(parseListen("127.0.0.1:10026")).toEqual({ kind: "inet", host: "127.0.0.1", port: 10026 });
    expect(parseListen(":10026")).toEqual({ kind: "inet", host: "", port: 10026 });
    expect(parseListen("inet:[::1]:0")).toEqual({ kind: "inet", host: "::1", port: 0 });
    expect(parseListen("unix:/tmp/sink.sock")).toEqual({ kind: "unix", path: "/tmp/sink.sock" });
  });
  test("a port is required", () => {
    expect(() => parseListen("127.0.0.1")).toThrow("missing port");
    expect(() => parseListen("127.0.0.1:")).toThrow("missing port");
  });
});
