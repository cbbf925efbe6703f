// Started as root and switching to nobody, the manager says at start what nobody will not be able
// to do later: here, read its configuration again at reload (a 0700 directory).
import { describe, expect, test } from "bun:test";
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { MAIN, startManagerProcess } from "./support/manager-process.ts";

const root = process.getuid?.() === 0;

describe("checks before the privilege drop", () => {
  test.skipIf(!root)("a configuration nobody cannot read again: one warning at start, with the fix", async () => {
    const dir = mkdtempSync(join(tmpdir(), "mk-priv-"));
    chmodSync(dir, 0o700);
    try {
      const m = await startManagerProcess({ log: { level: "warning", use_syslog: false }, milters: [] }, { dir, args: ["-u", "nobody"] });
      try {
        const lines = m.output().split("\n").filter((l) => l.includes("will not be able to read"));
        expect(lines).toHaveLength(1);
        expect(lines[0]).toMatch(/nobody \(uid \d+\) will not be able to read .*config-.*\.json: it cannot enter .*mk-priv-\w+ \(mode 0700, owner uid 0 gid 0\); fix: /);
      } finally {
        await m.stop();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);

  test.skipIf(!root)("--show-config reports it too, as a warning comment", () => {
    const dir = mkdtempSync(join(tmpdir(), "mk-priv-"));
    chmodSync(dir, 0o700);
    try {
      const file = join(dir, "milterkit.json");
      writeFileSync(file, JSON.stringify({ milters: [] }), { mode: 0o644 });
      const r = Bun.spawnSync([process.execPath, MAIN, "manager", "--config", file, "--show-config", "--user-name", "nobody"], { env: { ...process.env, NO_COLOR: "1" } });
      const out = r.stdout.toString();
      expect(r.exitCode).toBe(0);
      expect(out).toMatch(new RegExp(`^# warning: nobody \\(uid \\d+\\) will not be able to read ${file.replace(/[.]/g, "\\.")}: it cannot enter `, "m"));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 30_000);
});
