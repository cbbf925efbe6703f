// milter-test-server through the real entry point (src/main.ts → runTool), and one smoke test of
// the compiled binary built into a private directory (bun run build would delete dist/, which
// other tests use).
import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startScriptedMilter, type ScriptedMilter } from "../mta-side/scripted-milter.ts";
import { SMALL_EML } from "./helpers.ts";
import { compileMilterkit } from "../../build.ts";

const ROOT = join(import.meta.dir, "../..");
let milter: ScriptedMilter;
beforeAll(() => {
  milter = startScriptedMilter({ onCommand: (cmd) => (cmd.type === "eob" ? [{ type: "addheader", name: "X-Scripted", value: "yes" }, { type: "continue" }] : "default") });
});
afterAll(() => milter.stop());

async function cli(argv: string[], exe = [process.execPath, join(ROOT, "src/main.ts"), "test-server"]): Promise<{ code: number; stdout: string; stderr: string }> {
  const p = Bun.spawn([...exe, ...argv], { stdout: "pipe", stderr: "pipe", env: { ...process.env, NO_COLOR: "1" } });
  const timer = setTimeout(() => p.kill(), 30_000);
  const [stdout, stderr, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  clearTimeout(timer);
  return { code, stdout, stderr };
}

test("-? and --help print the usage (-h is --header)", async () => {
  for (const flag of ["-?", "--help"]) {
    const r = await cli([flag]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("milter-test-server");
    expect(r.stdout).toContain("--header");
    expect(r.stdout).toContain("--n-messages");
  }
  const h = await cli(["-s", milter.spec, "-h", "X-Via-Short:1", "--output-message"]);
  expect(h.code).toBe(0);
  expect(h.stdout).toContain("  X-Via-Short: 1\n");
});

test("bad options: one line plus usage on stderr, exit 1", async () => {
  const r = await cli(["--bogus"]);
  expect(r.code).toBe(1);
  expect(r.stderr.split("\n")[0]).toBe("milter-test-server: unknown option '--bogus'");
  const h = await cli(["-s", milter.spec, "--header", "nocolon"]);
  expect(h.code).toBe(1);
  expect(h.stderr.split("\n")[0]).toBe("milter-test-server: --header: expected NAME:VALUE, got 'nocolon'");
});

test("--color without a value is accepted and does not eat the next option", async () => {
  const r = await cli(["-s", milter.spec, "--color", "--output-message"]);
  expect(r.code).toBe(0);
  expect(r.stdout).toContain("\x1b[32m+ X-Scripted: yes\x1b[0m\n");
});

test("--version", async () => {
  const r = await cli(["--version"]);
  expect(r.code).toBe(0);
  expect(r.stdout).toMatch(/^milter-test-server \d+\.\d+\.\d+\n$/);
});

test("compiled binary through the milter-test-server symlink", async () => {
  const dir = mkdtempSync(join(tmpdir(), "mk-ts-bin-"));
  try {
    const bin = join(dir, "milterkit");
    compileMilterkit(bin);
    symlinkSync("milterkit", join(dir, "milter-test-server"));
    const r = await cli(["-s", milter.spec, "-m", SMALL_EML, "--output-message"], [join(dir, "milter-test-server")]);
    expect(r.code).toBe(0);
    expect(r.stdout.replace(/elapsed-time: \S+/, "elapsed-time: X")).toBe(
      "status: pass\nelapsed-time: X seconds\n\n" +
        "Envelope:------------------------------\n  MAIL FROM:<alice@example.com>\n  RCPT TO:<bob@example.org>\n" +
        "Header:--------------------------------\n  From: alice@example.com\n  To: bob@example.org\n  Subject: milterkit test\n" +
        "  Message-ID: <test-1@example.com>\n  Date: Mon, 01 Jan 2024 00:00:00 +0000\n+ X-Scripted: yes\n" +
        "Body:----------------------------------\nHello,\r\nthis is a small fixed test body.\r\nBye.\r\n\n",
    );
    const load = await cli(["-s", milter.spec, "--sessions", "20", "--concurrency", "4"], [join(dir, "milter-test-server")]);
    expect(load.code).toBe(0);
    expect(load.stdout).toContain("sessions: 20 completed, 0 failed of 20");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}, 120_000);
