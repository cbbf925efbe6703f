// Logger.reconfigure (configuration reload: new level, new path) and the human-facing output.
import { expect, test } from "bun:test";
import { mkdtempSync, openSync, closeSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { humanOutput } from "../../src/runtime/human.ts";
import { Logger, parseLogLevel } from "../../src/runtime/log.ts";

const lines = (path: string) => readFileSync(path, "latin1").split("\n").filter(Boolean).map((l) => l.replace(/^\[[^\]]+\]: /, ""));

test("reconfigure: another file, another level; a path that cannot be opened keeps the old destination", async () => {
  const dir = mkdtempSync(join(tmpdir(), "mk-rt-rcf-"));
  try {
    const a = join(dir, "a.log");
    const b = join(dir, "b.log");
    const log = new Logger({ level: parseLogLevel("error"), path: a });
    log.error("one");
    log.info("hidden");
    log.reconfigure({ level: parseLogLevel("error|info"), path: b });
    expect(log.path).toBe(b);
    log.info("two");
    expect(() => log.reconfigure({ level: parseLogLevel("all"), path: join(dir, "no/such/dir/c.log") })).toThrow(/ENOENT/);
    expect(log.path).toBe(b);
    log.debug("not enabled: the level was not changed either");
    log.error("three");
    await log.close();
    expect(lines(a)).toEqual(["[error] one"]);
    expect(lines(b)).toEqual(["[info] two", "[error] three"]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("human output without a terminal: one `<program>: <text>` line each", () => {
  const dir = mkdtempSync(join(tmpdir(), "mk-rt-hum-"));
  try {
    const path = join(dir, "out");
    const fd = openSync(path, "w");
    const h = humanOutput("milter-manager", { fd, fancy: false });
    h.error("cannot listen on inet:10025@[127.0.0.1]: address already in use");
    h.warn("not started as root");
    h.info("listening on unix:/run/milterkit/milterkit.sock");
    closeSync(fd);
    expect(readFileSync(path, "latin1")).toBe(
      "milter-manager: cannot listen on inet:10025@[127.0.0.1]: address already in use\n" +
        "milter-manager: warning: not started as root\n" +
        "milter-manager: listening on unix:/run/milterkit/milterkit.sock\n",
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
