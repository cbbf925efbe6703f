import { describe, expect, test } from "bun:test";
import {
  ContentBuilder, currentDate, defaultBody, END_OF_DATA, fileMessage, generatedBody, generatedHeaders, recipients, rfc5322Date,
} from "../../src/smtp/message.ts";

const lines = (b: Buffer) => b.toString("latin1").split("\r\n");

describe("generated body (-l)", () => {
  // Line lengths as observed from Postfix 3.7.11's smtp-source.
  test.each([
    [1, [1]], [78, [78]], [79, [79]], [80, [80]], [81, [78, 1]], [82, [78, 2]], [159, [78, 79]], [160, [78, 80]],
    [161, [78, 78, 1]], [1024, [78, 78, 78, 78, 78, 78, 78, 78, 78, 78, 78, 78, 64]],
  ] as [number, number[]][])("-l %d", (len, want) => {
    const b = generatedBody(len);
    const ls = lines(b);
    expect(ls.pop()).toBe("");
    expect(ls.map((l) => l.length)).toEqual(want);
    ls.forEach((l, i) => {
      if (i < ls.length - 1) expect(l).toBe(String((i + 1) % 10) + "X".repeat(77));
      else expect(l).toBe("X".repeat(l.length));
    });
  });
  test("bad lengths", () => {
    expect(() => generatedBody(0)).toThrow("bad message length: 0");
    expect(() => generatedBody(1.5)).toThrow(RangeError);
  });
  test("default body: Postfix's four lines", () => {
    expect(defaultBody().toString("latin1")).toBe("La de da de da 1.\r\nLa de da de da 2.\r\nLa de da de da 3.\r\nLa de da de da 4.\r\n");
  });
});

describe("-F file", () => {
  test("CRLF per line, dot-stuffing, an empty line after the file", () => {
    expect(fileMessage(Buffer.from("Subject: t\n.dot line\nbody\n")).toString("latin1"))
      .toBe("Subject: t\r\n..dot line\r\nbody\r\n\r\n");
    expect(fileMessage(Buffer.from("Subject: t\r\n.x\r\nnoeol")).toString("latin1"))
      .toBe("Subject: t\r\n..x\r\nnoeol\r\n\r\n");
  });
  test("8-bit bytes stay bytes", () => {
    const b = fileMessage(Buffer.from([0x41, 0xe4, 0xff, 0x0a]));
    expect([...b]).toEqual([0x41, 0xe4, 0xff, 13, 10, 13, 10]);
  });
});

describe("headers and recipients", () => {
  test("header block as Postfix's smtp-source writes it", () => {
    const h = generatedHeaders({ from: "a@example.test", to: "b@example.test", myhostname: "client.example", pid: 0x223d, session: 3, message: 0, date: "Sun, 22 Nov 2026 03:04:51 +0000 (UTC)" });
    expect(h).toBe("From: <a@example.test>\r\nTo: <b@example.test>\r\nDate: Sun, 22 Nov 2026 03:04:51 +0000 (UTC)\r\n" +
      "Message-Id: <223d.0003.0000@client.example>\r\n\r\n");
    const s = generatedHeaders({ from: "a", to: "b", myhostname: "h", subject: "Hi there", pid: 1, session: 0, message: 17, date: "D" });
    expect(s).toContain("Message-Id: <0001.0000.0011@h>\r\nSubject: Hi there\r\n\r\n");
  });
  test("date format", () => {
    expect(rfc5322Date(new Date(Date.UTC(2026, 10, 22, 3, 4, 51)))).toBe("Sun, 22 Nov 2026 03:04:51 +0000 (UTC)");
    expect(currentDate(Date.UTC(2024, 0, 1, 0, 0, 0))).toBe("Mon, 1 Jan 2024 00:00:00 +0000 (UTC)");
  });
  test("recipient numbering without -N: count down, last one bare", () => {
    expect(recipients("x@y.test", 1, false, () => 0)).toEqual(["x@y.test"]);
    expect(recipients("x@y.test", 3, false, () => 0)).toEqual(["3x@y.test", "2x@y.test", "x@y.test"]);
  });
  test("with -N: a counter that never repeats", () => {
    let n = 0;
    const next = () => ++n;
    expect(recipients("x@y.test", 2, true, next)).toEqual(["1x@y.test", "2x@y.test"]);
    expect(recipients("x@y.test", 2, true, next)).toEqual(["3x@y.test", "4x@y.test"]);
  });
});

describe("ContentBuilder", () => {
  test("headers + body + end of data + tail, body not copied per message", () => {
    const body = generatedBody(100);
    const b = new ContentBuilder(body, 64, 32);
    const one = Buffer.from(b.build("H: 1\r\n\r\n"));
    expect(one.toString("latin1")).toBe("H: 1\r\n\r\n" + body.toString("latin1") + ".\r\n");
    const two = Buffer.from(b.build("Header: 22\r\n\r\n", Buffer.from("QUIT\r\n")));
    expect(two.toString("latin1")).toBe("Header: 22\r\n\r\n" + body.toString("latin1") + END_OF_DATA.toString() + "QUIT\r\n");
  });
  test("too big for the room: still correct (copied)", () => {
    const b = new ContentBuilder(Buffer.from("x\r\n"), 4, 2);
    expect(Buffer.from(b.build("Long-Header: v\r\n\r\n", Buffer.from("MAIL FROM:<>\r\n"))).toString())
      .toBe("Long-Header: v\r\n\r\nx\r\n.\r\nMAIL FROM:<>\r\n");
  });
});
