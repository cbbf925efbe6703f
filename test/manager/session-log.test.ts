// What a session through the manager tells the log: the summary lines (client address, queue id,
// sender, recipients, each child's answers per stage, the MTA's answer), the debug trace of every
// command and reply, and what it counts in the monitor (metrics).
import { afterEach, describe, expect, test } from "bun:test";
import { Accept, Reject } from "../../src/milter-side/index.ts";
import { Monitor } from "../../src/manager/monitor.ts";
import { parseLogLevel } from "../../src/runtime/log.ts";
import type { ManagerLog } from "../../src/manager/log.ts";
import { packetsText } from "../../src/manager/session-log.ts";
import { chain, eventually, SESSION, type Setup, setup, unreachableMilter } from "./support/harness.ts";

let s: Setup;
afterEach(async () => {
  await s?.close();
});

/** A log keeping its lines and JSON fields, at the given level. */
function capture(level = "default"): ManagerLog & { lines: string[]; fields: Record<string, unknown>[] } {
  const mask = parseLogLevel(level);
  const bits: Record<string, number> = { critical: 1, error: 2, warning: 4, message: 8, info: 16, debug: 32, statistics: 64 };
  const lines: string[] = [];
  const fields: Record<string, unknown>[] = [];
  return {
    lines,
    fields,
    enabled: (l) => (mask & bits[l]) !== 0,
    write(l, text, f) {
      if ((mask & bits[l]) === 0) return;
      lines.push(`[${l}] ${text}`);
      if (f) fields.push(typeof f === "function" ? f() : f);
    },
  };
}

async function oneMessage(s: Setup, rcpts = ["<kou+receiver@example.com>"]) {
  const mta = await s.mta();
  await chain(mta, "envelopeFrom");
  for (const r of rcpts) await SESSION.envelopeRecipient(mta, r);
  for (const step of ["data", "header", "endOfHeader", "body", "endOfMessage"] as const) await SESSION[step](mta);
  await mta.quit();
}

describe("summary lines", () => {
  test("one line per message with queue id, client address, helo, sender, recipients count, per-child answers and the reply; one per session", async () => {
    const log = capture();
    s = await setup({ scripts: [{ endOfMessage: Accept }, { endOfMessage: Accept }], engine: { log } });
    await oneMessage(s, ["<a@example.com>", "<b@example.com>"]);
    await eventually(() => log.lines.some((l) => l.includes("session: ")), 3000, "session line");
    const message = log.lines.filter((l) => l.includes("QID1:"));
    expect(message.length).toBe(1);
    const m = message[0];
    expect(m).toMatch(/^\[message\] \[\d+\] QID1: client=mx\.local\.net\[192\.168\.1\.29\]:2929 helo=<delian> from=<kou\+sender@example\.com> nrcpt=2 milters: /);
    expect(m).toMatch(/milter@10026: envelope-from=continue\/[\d.]+ms envelope-recipient=continue×2\/[\d.]+ms data=continue\/[\d.]+ms header=continue\/[\d.]+ms end-of-header=continue\/[\d.]+ms body=continue\/[\d.]+ms end-of-message=accept\/[\d.]+ms;/);
    expect(m).toMatch(/milter@10027: .* end-of-message=accept\/[\d.]+ms; reply=accept at end-of-message elapsed=\d+\.\d{3}s$/);
    expect(m).not.toContain(" to=");
    const session = log.lines.find((l) => l.includes("session: "))!;
    expect(session).toMatch(/^\[message\] \[\d+\] session: client=mx\.local\.net\[192\.168\.1\.29\]:2929 helo=<delian> messages=1 milters: milter@10026: connect=continue\/[\d.]+ms helo=continue\/[\d.]+ms; milter@10027: connect=continue\/[\d.]+ms helo=continue\/[\d.]+ms; reply=accept at end-of-message end=quit elapsed=/);
    // The same facts as JSON members.
    expect(log.fields[0]).toMatchObject({ queue_id: "QID1", client: "mx.local.net[192.168.1.29]:2929", from: "<kou+sender@example.com>", nrcpt: 2, reply: "accept" });
    expect((log.fields[0].milters as Record<string, Record<string, { status: string }>>)["milter@10027"]["end-of-message"].status).toBe("accept");
  });

  test("recipients are listed at info; a refused recipient is not counted; a refused message says where", async () => {
    const log = capture("default|info");
    s = await setup({ scripts: [{ envelopeRecipient: (c) => (c.address.includes("bad") ? Reject : undefined) ?? { type: "continue" } }, { endOfMessage: Reject }], engine: { log } });
    await oneMessage(s, ["<good@example.com>", "<bad@example.com>"]);
    await eventually(() => log.lines.some((l) => l.includes("session: ")), 3000, "session line");
    const m = log.lines.find((l) => l.includes("QID1:"))!;
    expect(m).toContain("nrcpt=1 to=<good@example.com> milters: ");
    expect(m).toMatch(/milter@10026: envelope-from=continue\/[\d.]+ms envelope-recipient=reject×2/);
    expect(m).toMatch(/reply=reject at end-of-message/);
  });

  test("an evaluation-mode child is marked; its real answer is shown, the MTA's reply is what counted", async () => {
    const log = capture();
    s = await setup({ scripts: [{ endOfMessage: Reject }, { endOfMessage: Accept }], milters: [{ evaluation_mode: true }], engine: { log } });
    await oneMessage(s);
    await eventually(() => log.lines.some((l) => l.includes("session: ")), 3000, "session line");
    const m = log.lines.find((l) => l.includes("QID1:"))!;
    expect(m).toMatch(/milter@10026\(evaluation\): .*end-of-message=reject\/[\d.]+ms; milter@10027: .*end-of-message=accept\/[\d.]+ms; reply=accept at end-of-message/);
  });

  test("an unreachable child: its failure and state in the monitor, down logged once", async () => {
    const log = capture("default|info");
    const dead = await unreachableMilter("dead");
    const monitor = new Monitor({ version: "t", configSource: "test", milters: [] });
    s = await setup({ extra: [dead], engine: { log, events: monitor } });
    for (let i = 0; i < 3; i++) await oneMessage(s);
    await eventually(() => log.lines.filter((l) => l.includes("session: ")).length === 3, 3000, "three sessions");
    expect(monitor.sessions.get("pass")).toBe(3);
    expect(monitor.messages.get("pass")).toBe(3);
    // The first session finds it unreachable; the next two count it as down without trying (rules/availability.ts).
    expect(monitor.failures.get("dead\0connection-error")).toBe(1);
    expect(monitor.failures.get("dead\0down")).toBe(2);
    expect(monitor.children.get("dead")!.failures).toBe(3);
    expect(monitor.children.get("dead")!.up).toBe(false);
    expect(monitor.children.get("milter@10026")!.up).toBe(true);
    expect(monitor.answers.get("milter@10026\0end-of-message\0continue")).toBe(3);
    // Down is one warning (the leader's); the session that found it says nothing more about it,
    // the next two say at info that it was not tried; the monitor only counts.
    const about = log.lines.filter((l) => l.includes("milter dead"));
    expect(about.length).toBe(3);
    expect(about[0]).toMatch(/^\[warning\] \[\d+\] milter dead \(.*\) is down, counted as/);
    expect(about.slice(1).every((l) => /^\[info\] \[\d+\] .* is not available, counted as .*: down: not tried again yet/.test(l))).toBe(true);
    expect(monitor.stateChanges.get("dead\0down")).toBe(1);
    expect(log.lines.some((l) => l.includes("milter@10026 is"))).toBe(false);
  });
});

describe("debug trace", () => {
  test("every command sent to every child and every reply, with stage and time", async () => {
    const log = capture("all");
    s = await setup({ engine: { log } });
    const mta = await s.mta();
    await chain(mta, "endOfMessage");
    await mta.quit();
    await eventually(() => log.lines.some((l) => l.includes("session: ")), 3000, "session line");
    const trace = log.lines.filter((l) => l.startsWith("[debug]"));
    for (const child of ["milter@10026", "milter@10027"]) {
      for (const stage of ["connect", "helo", "envelope-from", "envelope-recipient", "data", "header", "end-of-header", "body", "end-of-message"]) {
        expect(trace.some((l) => l.includes(`→ ${child} ${stage}: `))).toBe(true);
        expect(trace.some((l) => new RegExp(`← ${child} ${stage}: continue [\\d.]+ ms$`).test(l))).toBe(true);
      }
    }
    // The connect command as sent: macros then the command, bytes escaped.
    expect(trace.find((l) => l.includes("→ milter@10026 connect: "))).toContain("C'mx.local.net\\x004\\x0bq192.168.1.29\\x00'");
  });

  test("packetsText escapes payloads and cuts long ones", () => {
    const p = (code: string, payload: Buffer) => Buffer.concat([Buffer.from([0, 0, 0, payload.length + 1]), Buffer.from(code), payload]);
    expect(packetsText(Buffer.concat([p("L", Buffer.from("Subject\0Gr\xc3\xbc\xc3\x9fe\r\n\0", "latin1"))]))).toBe("L'Subject\\x00Grüße\\r\\n\\x00'");
    expect(packetsText(p("B", Buffer.alloc(50, 0x61)), 10)).toBe("B'aaaaaaaaaa…(50 bytes)'");
  });
});
