// A `.ts` configuration that imports { defineConfig, z } from "milterkit" must work from the
// COMPILED binary, run in a directory without node_modules. The test compiles its own binary
// (same flags as build.ts) into a temporary directory, so it never races with dist/.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { compileMilterkit } from "../../build.ts";
import { freePorts } from "../e2e/lib/ports.ts";

const tmpRoot = mkdtempSync(join(tmpdir(), "mk-config-compiled-"));
const BIN = join(tmpRoot, "bin/milterkit");
const WORK = join(tmpRoot, "etc");

beforeAll(() => {
  compileMilterkit(BIN, { timeoutMs: 50_000 });
  symlinkSync(BIN, join(tmpRoot, "bin/milter-manager"));
  mkdirSync(join(WORK, "conf.d"), { recursive: true });
}, 60_000);

afterAll(() => rmSync(tmpRoot, { recursive: true, force: true }));

async function run(cmd: string[], argv0?: string) {
  const proc = Bun.spawn({ cmd, argv0, cwd: WORK, env: { PATH: process.env.PATH ?? "/usr/bin:/bin", NO_COLOR: "1" }, stdout: "pipe", stderr: "pipe" });
  const timer = setTimeout(() => proc.kill(), 20_000);
  const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  clearTimeout(timer);
  return { stdout, stderr, code };
}

test("compiled: --config X.ts with `import { defineConfig, z } from \"milterkit\"`", async () => {
  const path = join(WORK, "X.ts");
  writeFileSync(path, [
    `import { defineConfig, z } from "milterkit";`,
    `const port: number = z.coerce.number().int().parse("10027");`,
    `export default defineConfig({`,
    `  manager: { connection_spec: \`inet:\${port}@[127.0.0.1]\`, fallback_status: "reject" },`,
    `  milters: [{ name: "opendkim", connection_spec: "inet:8891@[127.0.0.1]", evaluation_mode: true }],`,
    `});`,
    ``,
  ].join("\n"));
  const r = await run([BIN, "manager", "--config", path, "--show-config"]);
  expect(r.stderr).toBe("");
  expect(r.code).toBe(0);
  expect(r.stdout).toContain(`# ${path}\nconnection_spec = "inet:10027@[127.0.0.1]"\n`);
  expect(r.stdout).toContain(`# ${path}\nfallback_status = "reject"\n`);
  expect(r.stdout).toContain(`# ${path}\nevaluation_mode = true\n`);
});

test("compiled through the milter-manager symlink: -c DIR with a .ts main file and conf.d", async () => {
  writeFileSync(join(WORK, "milterkit.config.ts"),
    `import { defineConfig } from "milterkit";\nexport default defineConfig({ milters: [{ name: "a", connection_spec: "unix:/run/a.sock" }] });\n`);
  writeFileSync(join(WORK, "conf.d/10-a.toml"), `[[milters]]\nname = "a"\nfallback_status = "temporary-failure"\n`);
  const r = await run([join(tmpRoot, "bin/milter-manager"), "-c", WORK, "--show-config"], join(tmpRoot, "bin/milter-manager"));
  expect(r.stderr).toBe("");
  expect(r.code).toBe(0);
  expect(r.stdout).toContain(`# ${join(WORK, "conf.d/10-a.toml")}:3\nfallback_status = "temporary-failure"\n`);
  expect(r.stdout).toContain(`# ${join(WORK, "milterkit.config.ts")}\nconnection_spec = "unix:/run/a.sock"\n`);
});

test("compiled: a type error in the .ts configuration is reported with file and item, exit 1", async () => {
  const path = join(WORK, "bad.ts");
  writeFileSync(path, `import { defineConfig } from "milterkit";\nexport default defineConfig({ manager: { daemon: "yes" as any } });\n`);
  const r = await run([BIN, "manager", "--config", path, "--show-config"]);
  expect(r.code).toBe(1);
  expect(r.stderr).toBe(`milter-manager: ${path}: invalid configuration\n✖ Invalid input: expected boolean, received string\n  → at manager.daemon\n`);
});

// The binary is built with --splitting: what a configuration may not use is loaded on demand from a
// chunk of its own (the controller, auto-detection), and must still be there when asked for.
test("compiled: the controller and auto-detection, loaded on demand, work from the binary", async () => {
  const detect = await run([BIN, "manager", "--detect"]);
  expect(detect.code).toBe(0);
  expect(detect.stdout).toContain("# auto-detection under ");

  const ports = freePorts(2);
  const path = join(WORK, "controller.json");
  writeFileSync(path, JSON.stringify({
    log: { use_syslog: false },
    manager: { connection_spec: `inet:${ports[0]}@[127.0.0.1]` },
    controller: { connection_spec: `inet:${ports[1]}@[127.0.0.1]` },
    milters: [{ name: "a", connection_spec: "inet:9@[127.0.0.1]" }],
  }));
  const proc = Bun.spawn({ cmd: [join(tmpRoot, "bin/milter-manager"), "--config", path, "--no-daemon"], argv0: join(tmpRoot, "bin/milter-manager"), cwd: WORK, env: { PATH: process.env.PATH ?? "/usr/bin:/bin", NO_COLOR: "1" }, stdout: "pipe", stderr: "pipe" });
  try {
    let metrics = "";
    for (let i = 0; i < 100 && !metrics.includes("milterkit_info"); i++) {
      await Bun.sleep(100);
      metrics = await fetch(`http://127.0.0.1:${ports[1]}/metrics`).then((r) => r.text(), () => "");
    }
    expect(metrics).toContain("# TYPE milterkit_info gauge");
  } finally {
    proc.kill("SIGTERM");
    await proc.exited;
  }
}, 30_000);
