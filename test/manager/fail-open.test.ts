// Never fail open silently: a manager with no child milter warns at start and at every reload
// that every message gets manager.fallback_status.
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { noChildWarning } from "../../src/manager/config/fail-open.ts";
import { defaultConfig, defaultMilter } from "../../src/manager/config/schema.ts";
import { freePort } from "../e2e/lib/ports.ts";

const MAIN = join(import.meta.dir, "../../src/main.ts");
const dir = mkdtempSync(join(tmpdir(), "mk-fail-open-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("the warning", () => {
  test("no milter, every milter disabled, or one enabled", () => {
    const c = defaultConfig();
    expect(noChildWarning(c)).toBe('no child milter is configured or detected: every message gets manager.fallback_status "accept" (delivered unfiltered)');
    c.milters.push({ ...defaultMilter("a", "unix:/a"), enabled: false });
    c.manager.fallback_status = "temporary-failure";
    expect(noChildWarning(c)).toBe('every child milter is disabled: every message gets manager.fallback_status "temporary-failure"');
    c.milters.push(defaultMilter("b", "unix:/b"));
    expect(noChildWarning(c)).toBeUndefined();
  });
});

describe("the manager process", () => {
  test("warns at start and again on SIGHUP", async () => {
    const file = join(dir, "empty.toml");
    writeFileSync(file, "[log]\nuse_syslog = false\n");
    const port = freePort();
    const proc = Bun.spawn([process.execPath, MAIN, "manager", "--config", file, "--no-daemon", "-s", `inet:${port}@127.0.0.1`, ...(process.getuid?.() === 0 ? ["-u", "root"] : [])], {
      stdout: "pipe",
      stderr: "pipe",
      env: { ...process.env, NO_COLOR: "1" },
    });
    let out = "";
    void (async () => {
      for await (const chunk of proc.stdout as ReadableStream<Uint8Array>) out += Buffer.from(chunk).toString("utf8");
    })();
    void (async () => {
      for await (const chunk of proc.stderr as ReadableStream<Uint8Array>) out += Buffer.from(chunk).toString("utf8");
    })();
    const warning = 'no child milter is configured or detected: every message gets manager.fallback_status "accept" (delivered unfiltered)';
    const count = () => out.split(warning).length - 1;
    try {
      for (let i = 0; i < 500 && count() < 1; i++) await Bun.sleep(20); // up to 10 s: a loaded machine starts bun slowly
      expect(count()).toBe(1);
      expect(out).toMatch(/warning.*no child milter is configured/);
      proc.kill("SIGHUP");
      for (let i = 0; i < 500 && count() < 2; i++) await Bun.sleep(20);
      expect(count()).toBe(2);
    } finally {
      proc.kill("SIGTERM");
      const timer = setTimeout(() => proc.kill("SIGKILL"), 10_000);
      await proc.exited;
      clearTimeout(timer);
    }
  }, 30_000);
});
