// security.strict_modes: configuration that someone other than root (or the user
// the manager runs as) could have written is refused before it is read — a .ts file is not
// executed — with one line naming the file and its mode or owner; strict_modes = false, set in a
// file that passes the check, turns the refusal into warnings.
import { afterAll, describe, expect, test } from "bun:test";
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ConfigError, loadEffectiveConfig } from "../../src/manager/config/load.ts";

const isRoot = process.getuid?.() === 0;
const root = mkdtempSync(join(tmpdir(), "mk-config-modes-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let n = 0;

/** A fresh configuration directory (mode 0755) with a main file. */
function confDir(main: { name: string; text: string; mode?: number }): string {
  const dir = join(root, `c${++n}`);
  mkdirSync(dir, { mode: 0o755 });
  chmodSync(dir, 0o755);
  writeFileSync(join(dir, main.name), main.text);
  chmodSync(join(dir, main.name), main.mode ?? 0o644);
  return dir;
}

/** A .ts configuration that leaves a marker file behind when it is executed. */
function markingTs(marker: string): string {
  return `import { writeFileSync } from "node:fs";\nwriteFileSync(${JSON.stringify(marker)}, "executed");\nexport default {};\n`;
}

async function refusal(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    if (e instanceof ConfigError) return e.message;
    throw e;
  }
  throw new Error("expected a ConfigError");
}

describe("strict_modes (default true)", () => {
  test("a world-writable .ts configuration is refused and not executed", async () => {
    const marker = join(root, "marker1");
    const dir = confDir({ name: "milterkit.config.ts", text: markingTs(marker), mode: 0o666 });
    const text = await refusal(loadEffectiveConfig({ kind: "dir", dir, explicit: true }));
    expect(text).toContain(`file ${join(dir, "milterkit.config.ts")} can be written by everyone (mode 0666); chmod go-w`);
    expect(existsSync(marker)).toBe(false);
  });

  test("a group-writable JSON file is refused; --config FILE too", async () => {
    const dir = confDir({ name: "milterkit.config.json", text: "{}", mode: 0o664 });
    const path = join(dir, "milterkit.config.json");
    expect(await refusal(loadEffectiveConfig({ kind: "file", path }))).toContain(`file ${path} can be written by its group (mode 0664)`);
  });

  test.skipIf(!isRoot)("a .ts file of another user dropped into a world-writable conf.d is refused and not executed", async () => {
    const marker = join(root, "marker2");
    const dir = confDir({ name: "milterkit.config.json", text: "{}" });
    const confD = join(dir, "conf.d");
    mkdirSync(confD);
    chmodSync(confD, 0o777);
    const foreign = join(confD, "50-evil.ts");
    writeFileSync(foreign, markingTs(marker));
    chownSync(foreign, 65534, 65534);
    const text = await refusal(loadEffectiveConfig({ kind: "dir", dir, explicit: true }));
    expect(text).toContain(`directory ${confD} can be written by everyone (mode 0777)`);
    expect(text).toContain("(and 1 more)");
    expect(existsSync(marker)).toBe(false);
    // The directory fixed, the foreign file is still refused by its owner.
    chmodSync(confD, 0o755);
    expect(await refusal(loadEffectiveConfig({ kind: "dir", dir, explicit: true }))).toContain(`file ${foreign} belongs to uid 65534`);
    expect(existsSync(marker)).toBe(false);
  });

  test("a .ts file linked from a safe conf.d into a group-writable directory is refused and not executed", async () => {
    const marker = join(root, "marker3");
    const dir = confDir({ name: "milterkit.config.json", text: "{}" });
    const confD = join(dir, "conf.d");
    mkdirSync(confD, { mode: 0o755 });
    chmodSync(confD, 0o755);
    const elsewhere = join(root, `shared${n}`);
    mkdirSync(elsewhere);
    chmodSync(elsewhere, 0o775);
    const target = join(elsewhere, "50-linked.ts");
    writeFileSync(target, markingTs(marker));
    chmodSync(target, 0o644);
    symlinkSync(target, join(confD, "50-linked.ts"));
    const text = await refusal(loadEffectiveConfig({ kind: "dir", dir, explicit: true }));
    expect(text).toContain(`directory ${elsewhere} can be written by its group (mode 0775)`);
    expect(existsSync(marker)).toBe(false);
  });

  test("a sticky world-writable directory (such as /tmp) holding a root-owned file is fine", async () => {
    const dir = join(root, `sticky${++n}`);
    mkdirSync(dir);
    chmodSync(dir, 0o1777);
    const path = join(dir, "m.json");
    writeFileSync(path, "{}");
    chmodSync(path, 0o644);
    const loaded = await loadEffectiveConfig({ kind: "file", path });
    expect(loaded.warnings).toEqual([]);
  });
});

describe("strict_modes = false", () => {
  test("set in a file that passes the check: the problems become warnings and everything is read", async () => {
    const marker = join(root, "marker3");
    const dir = confDir({ name: "milterkit.config.json", text: JSON.stringify({ security: { strict_modes: false } }) });
    const confD = join(dir, "conf.d");
    mkdirSync(confD, { mode: 0o755 });
    writeFileSync(join(confD, "10-x.ts"), markingTs(marker));
    chmodSync(join(confD, "10-x.ts"), 0o666);
    const loaded = await loadEffectiveConfig({ kind: "dir", dir, explicit: true });
    expect(loaded.warnings).toEqual([`file ${join(confD, "10-x.ts")} can be written by everyone (mode 0666); chmod go-w ${join(confD, "10-x.ts")} (used anyway: security.strict_modes is false)`]);
    expect(existsSync(marker)).toBe(true);
  });

  test("set only in the writable file itself: still refused (a file cannot vouch for itself)", async () => {
    const dir = confDir({ name: "milterkit.config.json", text: JSON.stringify({ security: { strict_modes: false } }), mode: 0o666 });
    expect(await refusal(loadEffectiveConfig({ kind: "dir", dir, explicit: true }))).toContain("can be written by everyone");
  });
});

test("the manager refuses to start: exit 1, one line naming the file and its mode", async () => {
  const dir = confDir({ name: "milterkit.config.json", text: "{}", mode: 0o666 });
  const proc = Bun.spawn([process.execPath, join(import.meta.dir, "../../src/main.ts"), "manager", "-c", dir, "--no-daemon", "-s", "inet:0@127.0.0.1"], {
    stdout: "pipe",
    stderr: "pipe",
    env: { ...process.env, NO_COLOR: "1" },
  });
  const killer = setTimeout(() => proc.kill("SIGKILL"), 20_000);
  const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  clearTimeout(killer);
  expect(code).toBe(1);
  const lines = (out + err).trim().split("\n");
  expect(lines.length).toBe(1);
  expect(lines[0]).toContain(`refusing the configuration: file ${join(dir, "milterkit.config.json")} can be written by everyone (mode 0666)`);
}, 30_000);
