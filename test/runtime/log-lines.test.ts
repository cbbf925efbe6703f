// Log entries are single UTF-8 lines in every sink (file, standard output, syslog), wire bytes
// are escaped not re-encoded, JSON lines parse one by one, journal priorities, worker tags and the
// repeated-warning limit.
import { describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { Logger, parseLogLevel } from "../../src/runtime/log.ts";
import { oneLine, wireText } from "../../src/runtime/log-text.ts";
import { headerAddLine } from "../../src/runtime/statistics.ts";

const ROOT = resolve(import.meta.dir, "../..");
const NAME = "prüfung–α";
const RELOAD = "reload failed, keeping the old configuration: ✖ milters[0].connection_spec → invalid\n  at line 3";
// A DKIM-Signature as a child adds it: folded over 9 lines with tabs.
const DKIM = [
  "v=1; a=rsa-sha256; c=relaxed/relaxed; d=example.org;",
  "\ts=mail; t=1700000000; bh=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=;",
  "\th=From:To:Subject:Date:Message-ID;",
  "\tb=AAAAB3NzaC1yc2EAAAADAQABAAABAQC7",
  "\t BBBB3NzaC1yc2EAAAADAQABAAABAQC7",
  "\t CCCC3NzaC1yc2EAAAADAQABAAABAQC7",
  "\t DDDD3NzaC1yc2EAAAADAQABAAABAQC7",
  "\t EEEE3NzaC1yc2EAAAADAQABAAABAQC7",
  "\t FFFF==",
].join("\r\n");

function tmp() {
  const path = mkdtempSync(join(tmpdir(), "mk-lines-"));
  return { path, remove: () => rmSync(path, { recursive: true, force: true }) };
}
const until = async (f: () => boolean, ms = 3000) => {
  const end = Date.now() + ms;
  while (!f()) {
    if (Date.now() > end) throw new Error("condition not met in time");
    await Bun.sleep(10);
  }
};

/** Run a few log calls in a fresh process whose stdout we read (as bytes, decoded as UTF-8). */
async function stdoutOf(code: string, env: Record<string, string> = {}): Promise<string> {
  const script = `import { Logger, parseLogLevel } from ${JSON.stringify(join(ROOT, "src/runtime/log.ts"))};\n${code}`;
  const p = Bun.spawn(["bun", "-e", script], { stdout: "pipe", stderr: "pipe", env: { ...process.env, ...env } });
  const timer = setTimeout(() => p.kill(), 10_000);
  const out = await new Response(p.stdout).arrayBuffer();
  await p.exited;
  clearTimeout(timer);
  return Buffer.from(out).toString("utf8");
}

describe("one line, UTF-8", () => {
  test("oneLine escapes line breaks and controls; wireText shows UTF-8 bytes as text and others as \\xNN", () => {
    expect(oneLine("a\r\n\tb\x16c\x7f")).toBe("a\\r\\n\\tb\\x16c\\x7f");
    expect(oneLine("plain ✖ → α")).toBe("plain ✖ → α");
    expect(wireText(Buffer.from("Grüße ✓", "utf8").toString("latin1"))).toBe("Grüße ✓");
    expect(wireText("caf\xe9")).toBe("caf\\xe9");
    expect(wireText("ascii")).toBe("ascii");
  });

  test("file: a UTF-8 milter name and a reload error come out intact, each entry one line; a 9-line header add is one line", async () => {
    const d = tmp();
    try {
      const path = join(d.path, "m.log");
      const log = new Logger({ path, level: parseLogLevel("all") });
      log.message(`milter ${NAME} is up`);
      log.error(RELOAD);
      log.statistics(headerAddLine(7, "DKIM-Signature", DKIM, NAME));
      await log.close();
      const text = readFileSync(path, "utf8");
      const lines = text.trimEnd().split("\n");
      expect(lines.length).toBe(3);
      expect(lines[0]).toEndWith(`[message] milter ${NAME} is up`);
      expect(lines[1]).toEndWith("[error] reload failed, keeping the old configuration: ✖ milters[0].connection_spec → invalid\\n  at line 3");
      expect(lines[2]).toMatch(/^\[[^\]]+\]: \[milter\]\[header\]\[add\]\(7\): <DKIM-Signature>=<v=1; .*\\r\\n\\ts=mail; .*\\r\\n\\t FFFF==>: prüfung–α$/);
    } finally {
      d.remove();
    }
  });

  test("stdout: the same text intact; under the journal each line starts with its priority", async () => {
    const code = `const log = new Logger({ level: parseLogLevel("all") });
log.message(${JSON.stringify(`milter ${NAME} is up`)}); log.error(${JSON.stringify(RELOAD)}); log.debug("trace"); await log.close();`;
    const plain = (await stdoutOf(code)).trimEnd().split("\n");
    expect(plain.length).toBe(3);
    expect(plain[0]).toMatch(new RegExp(`^\\[[^\\]]+\\]: \\[message\\] milter ${NAME} is up$`));
    expect(plain[1]).toContain("✖ milters[0].connection_spec → invalid\\n  at line 3");
    // JOURNAL_STREAM naming our stdout (the child computes its own dev:inode, as systemd sets it).
    const journal = `import { fstatSync } from "node:fs"; const st = fstatSync(1, { bigint: true }); process.env.JOURNAL_STREAM = st.dev + ":" + st.ino;\n${code}`;
    const j = (await stdoutOf(journal)).trimEnd().split("\n");
    expect(j.map((l) => l.slice(0, 3))).toEqual(["<5>", "<3>", "<7>"]);
    // A JOURNAL_STREAM naming another file is not us.
    const other = (await stdoutOf(code, { JOURNAL_STREAM: "1:2" })).trimEnd().split("\n");
    expect(other[0].startsWith("[")).toBe(true);
  });

  test("syslog: the same text intact, one datagram each", async () => {
    const d = tmp();
    const sock = join(d.path, "log");
    const rx = Bun.spawn(["python3", join(import.meta.dir, "../fixtures/test-client/syslog_receiver.py"), sock], { stdout: "pipe" });
    try {
      const chunks: Buffer[] = [];
      void (async () => {
        for await (const c of rx.stdout) chunks.push(Buffer.from(c));
      })();
      const got = () => Buffer.concat(chunks).toString("utf8");
      await until(() => got().includes("ready"));
      const log = new Logger({ path: join(d.path, "f.log"), level: parseLogLevel("all"), syslog: { ident: "mk-lines", facility: "mail", path: sock } });
      expect(log.syslogTransport).toBe("ffi");
      log.message(`milter ${NAME} is up`);
      log.error(RELOAD);
      log.statistics(headerAddLine(7, "DKIM-Signature", DKIM, NAME));
      await until(() => got().split("\n").filter((l) => l.includes("mk-lines[")).length >= 3);
      const lines = got().split("\n").filter((l) => l.includes("mk-lines["));
      expect(lines[0]).toEndWith(`: [message] milter ${NAME} is up`);
      expect(lines[1]).toEndWith("[error] reload failed, keeping the old configuration: ✖ milters[0].connection_spec → invalid\\n  at line 3");
      // The receiver would show a raw LF as `\n` too: the datagram itself has none (escaped as `\\n` then).
      expect(lines[2]).toContain("[statistics] [milter][header][add](7): <DKIM-Signature>=<v=1; a=rsa-sha256; c=relaxed/relaxed; d=example.org;\\r\\n\\ts=mail;");
      expect(lines[2]).toEndWith(": prüfung–α");
      await log.close();
    } finally {
      rx.kill();
      await rx.exited;
      d.remove();
    }
  });
});

describe("JSON lines", () => {
  test("one object per line that parses alone; fields are members; the text keeps its line breaks", async () => {
    const d = tmp();
    try {
      const path = join(d.path, "j.log");
      const log = new Logger({ path, level: parseLogLevel("all"), format: "json", worker: 2 });
      log.write("message", `QID1: from=<a@example.org> milter ${NAME}`, { queue_id: "QID1", nrcpt: 2 });
      log.error(RELOAD);
      log.statistics("[sessions][finished] 1(+1) 0");
      await log.close();
      const lines = readFileSync(path, "utf8").trimEnd().split("\n");
      expect(lines.length).toBe(3);
      const objs = lines.map((l) => JSON.parse(l));
      expect(objs[0]).toMatchObject({ level: "message", queue_id: "QID1", nrcpt: 2, worker: 2, pid: process.pid });
      expect(objs[0].message).toContain(NAME);
      expect(objs[1].message).toBe(RELOAD);
      expect(objs[2]).toMatchObject({ level: "statistics", message: "[sessions][finished] 1(+1) 0" });
      for (const o of objs) expect(o.time).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/);
    } finally {
      d.remove();
    }
  });
});

describe("workers and repeats", () => {
  test("a worker's lines name the worker and pid, its statistics lines stay as milter-manager writes them", async () => {
    const d = tmp();
    try {
      const path = join(d.path, "w.log");
      const log = new Logger({ path, level: parseLogLevel("all"), worker: 3 });
      log.warning("something");
      log.statistics("[sessions][finished] 1(+1) 0");
      await log.close();
      const lines = readFileSync(path, "utf8").trimEnd().split("\n");
      expect(lines[0]).toEndWith(`[warning] [worker 3][pid ${process.pid}] something`);
      expect(lines[1]).toMatch(/^\[[^\]]+\]: \[sessions\]\[finished\] 1\(\+1\) 0$/);
    } finally {
      d.remove();
    }
  });

  test("a session's identical warning (tag aside) is written once per window, then once with the count; the daemon's own warnings are not held back", async () => {
    const d = tmp();
    try {
      const path = join(d.path, "r.log");
      const log = new Logger({ path, level: parseLogLevel("all"), repeatWindowMs: 300 });
      for (let i = 1; i <= 100; i++) log.warning(`[${i}] milter dead (inet:1@[127.0.0.1]) is not available, counted as accept: connection refused`);
      log.warning("[101] another warning");
      log.warning("no child milter: the daemon's own warning is never held back");
      log.warning("no child milter: the daemon's own warning is never held back");
      log.info("[102] info is never limited");
      log.info("[103] info is never limited");
      log.flush();
      let lines = readFileSync(path, "utf8").trimEnd().split("\n");
      expect(lines.length).toBe(6);
      expect(lines[0]).toEndWith("[warning] [1] milter dead (inet:1@[127.0.0.1]) is not available, counted as accept: connection refused");
      await until(() => readFileSync(path, "utf8").includes("repeated"), 3000);
      log.flush();
      lines = readFileSync(path, "utf8").trimEnd().split("\n");
      expect(lines.length).toBe(7);
      expect(lines[6]).toEndWith("[warning] [1] milter dead (inet:1@[127.0.0.1]) is not available, counted as accept: connection refused (repeated 99 times in 0.3 s)");
      // A new window: the next one is written again.
      log.warning("[104] milter dead (inet:1@[127.0.0.1]) is not available, counted as accept: connection refused");
      await log.close();
      expect(readFileSync(path, "utf8").trimEnd().split("\n").length).toBe(8);
    } finally {
      d.remove();
    }
  });
});
