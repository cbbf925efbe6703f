import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { formatDump, header, parseDump, unstuff } from "../../src/smtp/dump.ts";

describe("dump files", () => {
  test("unstuff", () => {
    expect(unstuff("..a\r\nb\r\n..\r\n")).toBe(".a\r\nb\r\n.\r\n");
    expect(unstuff("")).toBe("");
  });
  test("format then parse gives back envelope and message", () => {
    const msg = Buffer.from("From: <a@x>\r\nSubject: multi\r\n line\r\n\r\nbody \xe4\r\n\r\n", "latin1");
    const raw = formatDump({ clientAddr: "127.0.0.1", proto: "ESMTP", helo: "client.example", mailArgs: "<a@x> BODY=8BITMIME",
      rcptArgs: ["<b@y>", "<c@y> NOTIFY=NEVER"], hostname: "smtp-sink", id: "0000002a", date: new Date(Date.UTC(2026, 10, 22, 3, 4, 51)) }, msg, "X-Start: 1\n");
    expect(raw.toString("latin1")).toStartWith("X-Start: 1\nX-Client-Addr: 127.0.0.1\nX-Client-Proto: ESMTP\nX-Helo-Args: client.example\n" +
      "X-Mail-Args: <a@x> BODY=8BITMIME\nX-Rcpt-Args: <b@y>\nX-Rcpt-Args: <c@y> NOTIFY=NEVER\n" +
      "Received: from client.example ([127.0.0.1])\n\tby smtp-sink (smtp-sink) with ESMTP id 0000002a;\n\tSun, 22 Nov 2026 03:04:51 +0000 (UTC)\n" +
      "From: <a@x>\n");
    expect(raw.toString("latin1")).toEndWith("body \xe4\n\n\n");
    const r = parseDump(raw, "f");
    expect(r.prefix).toBe("X-Start: 1\n");
    expect(r.clientAddr).toBe("127.0.0.1");
    expect(r.helo).toBe("client.example");
    expect(r.from).toBe("a@x");
    expect(r.recipients).toEqual(["b@y", "c@y"]);
    expect(r.message.equals(msg)).toBe(true);
    expect(header(r, "subject")).toBe("multi line");
    expect(r.body).toBe("body \xe4\r\n\r\n");
  });
  test("reads a dump written by Postfix's smtp-sink", () => {
    const r = parseDump(readFileSync(join(import.meta.dir, "../fixtures/smtp/postfix-sink-dump.txt")));
    expect(r.proto).toBe("SMTP");
    expect(r.from).toBe("foo@vm");
    expect(r.recipients).toEqual(["3foo@vm", "4foo@vm"]);
    expect(header(r, "Subject")).toBe("hello");
    expect(header(r, "Message-Id")).toMatch(/^<[0-9a-f]{4}\.[0-9a-f]{4}\.[0-9a-f]{4}@vm>$/);
    expect(r.body).toBe("1" + "X".repeat(77) + "\r\n" + "X".repeat(20) + "\r\n");
  });
});
