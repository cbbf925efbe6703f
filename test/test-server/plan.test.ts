import { expect, test } from "bun:test";
import { Negotiated, decodeCommands } from "../../src/milter/index.ts";
import { parseTestServerArgs } from "../../src/test-server/options.ts";
import { buildPlan, clientAddressOf, prepareSession } from "../../src/test-server/plan.ts";

const parse = (...argv: string[]) => parseTestServerArgs(argv, { readFile: () => new Uint8Array(0), env: {} });

test("default macros per stage, as the original sends them", () => {
  const p = buildPlan(parse("-r", "bob@example.org", "-r", "carol@example.org"));
  expect(p.macros).toEqual({
    connect: [["{daemon_name}", "milter-test-server"], ["{if_name}", "localhost"], ["{if_addr}", "127.0.0.1"], ["j", "mail.example.com"]],
    helo: [["{tls_version}", "0"], ["{cipher}", "0"], ["{cipher_bits}", "0"], ["{cert_subject}", "cert_subject"], ["{cert_issuer}", "cert_issuer"]],
    mail: [["{mail_mailer}", "mail_mailer"], ["{mail_host}", "mail_host"], ["{mail_addr}", "mail_addr"]],
    rcpt: [
      [["{rcpt_mailer}", "rcpt_mailer"], ["{rcpt_host}", "rcpt_host"], ["{rcpt_addr}", "<bob@example.org>"]],
      [["{rcpt_mailer}", "rcpt_mailer"], ["{rcpt_host}", "rcpt_host"], ["{rcpt_addr}", "<carol@example.org>"]],
    ],
    data: [["i", "i"]],
    eoh: [["i", "i"]],
    eom: [["i", "i"]],
  });
});

test("--name, auth macros and overrides in any spelling", () => {
  const p = buildPlan(parse(
    "--name", "srv", "--authenticated-name", "u", "--authenticated-type", "PLAIN", "--authenticated-author", "a",
    "--connect-macro", "daemon_name:other", "--connect-macro", "{j}:mx", "--connect-macro", "{new}:n",
    "--envelope-recipient-macro", "rcpt_addr:fixed", "--end-of-message-macro", "i:Q1",
  ));
  expect(p.macros.connect).toEqual([["{daemon_name}", "other"], ["{if_name}", "localhost"], ["{if_addr}", "127.0.0.1"], ["j", "mx"], ["{new}", "n"]]);
  expect(p.macros.mail.slice(3)).toEqual([["{auth_authen}", "u"], ["{auth_type}", "PLAIN"], ["{auth_author}", "a"]]);
  expect(p.macros.rcpt[0][2]).toEqual(["{rcpt_addr}", "fixed"]);
  expect(p.macros.eom).toEqual([["i", "Q1"]]);
});

test("connect address families", () => {
  expect(clientAddressOf({ kind: "inet", port: 25, host: "192.0.2.1", scheme: "inet" })).toEqual({ family: "4", address: "192.0.2.1", port: 25 });
  expect(clientAddressOf({ kind: "inet6", port: 25, host: "2001:db8::1", scheme: "inet6" })).toEqual({ family: "6", address: "2001:db8::1", port: 25 });
  expect(clientAddressOf({ kind: "unix", path: "/s", scheme: "unix" })).toEqual({ family: "L", address: "/s", port: 0 });
});

test("prepared session: requested macros without a value get their own name; header leading space per negotiation", () => {
  const plan = buildPlan(parse("-h", "Subject:hi"));
  const n = new Negotiated({
    version: 6, actions: 0x1ff, protocol: 0x100000 /* HDR_LEADSPC */, skip: false, maxDataSize: 65535,
    macroLists: new Map([[0, ["j", "{client_addr}"]], [5, []]]),
  });
  const p = prepareSession(plan, n);
  expect(decodeCommands(p.connect.bytes!)[0]).toEqual({ type: "macro", command: "C", macros: new Map([["j", "mail.example.com"], ["{client_addr}", "{client_addr}"]]) });
  expect(decodeCommands(p.eom.bytes!)).toEqual([{ type: "eob" }]); // EOM listed without names: no D
  expect(decodeCommands(p.headers[0].bytes!)).toEqual([{ type: "header", name: "Subject", value: " hi" }]);
  const plain = prepareSession(plan, new Negotiated({ version: 6, actions: 0x1ff, protocol: 0, skip: false, maxDataSize: 65535 }));
  expect(decodeCommands(plain.headers[0].bytes!)).toEqual([{ type: "header", name: "Subject", value: "hi" }]);
});
