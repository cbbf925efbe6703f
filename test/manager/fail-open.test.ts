// Never fail open silently: a manager with no child milter warns at start and at every reload
// that every message gets manager.fallback_status.
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { noChildWarning } from "../../src/manager/config/fail-open.ts";
import { defaultConfig, defaultMilter } from "../../src/manager/config/schema.ts";
import { startManagerProcess } from "./support/manager-process.ts";

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
    const m = await startManagerProcess({ log: { use_syslog: false } }, { dir, args: process.getuid?.() === 0 ? ["-u", "root"] : [] });
    const warning = 'no child milter is configured or detected: every message gets manager.fallback_status "accept" (delivered unfiltered)';
    const count = () => m.output().split(warning).length - 1;
    try {
      for (let i = 0; i < 500 && count() < 1; i++) await Bun.sleep(20); // up to 10 s: a loaded machine starts bun slowly
      expect(count()).toBe(1);
      expect(m.output()).toMatch(/warning.*no child milter is configured/);
      m.proc.kill("SIGHUP");
      for (let i = 0; i < 500 && count() < 2; i++) await Bun.sleep(20);
      expect(count()).toBe(2);
    } finally {
      await m.stop();
    }
  }, 30_000);
});
