// A `.ts` configuration defining its own condition (`defineCondition` from "milterkit") run by the
// COMPILED binary, in a directory without node_modules: --show-config lists the condition, and a
// session driven through the manager shows its effect (the child it names misses the mail the
// condition stops, and gets the macro it adds). The binary is built into a temporary directory with
// build.ts's flags, so it never races with dist/.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { MilterClient, type StepOutcome } from "../../src/mta-side/index.ts";
import { ScriptedMilter } from "./support/scripted-milter.ts";
import { compileMilterkit } from "../../build.ts";
import { freePort } from "../e2e/lib/ports.ts";

const tmpRoot = mkdtempSync(join(tmpdir(), "mk-conditions-compiled-"));
const BIN = join(tmpRoot, "bin/milterkit");
const WORK = join(tmpRoot, "etc");
const children: ScriptedMilter[] = [];
let manager: ReturnType<typeof Bun.spawn> | undefined;

beforeAll(async () => {
  compileMilterkit(BIN, { timeoutMs: 50_000 });
  mkdirSync(WORK, { recursive: true });
  children.push(await new ScriptedMilter().start(), await new ScriptedMilter().start());
}, 60_000);

afterAll(async () => {
  if (manager) {
    manager.kill("SIGKILL");
    await manager.exited;
  }
  await Promise.all(children.map((c) => c.close()));
  rmSync(tmpRoot, { recursive: true, force: true });
});

function writeConfig(port: number): string {
  const path = join(WORK, "partners.ts");
  writeFileSync(path, [
    `import { defineCondition, defineConfig } from "milterkit";`,
    ``,
    `const partnersOnly = defineCondition({`,
    `  name: "Partners only",`,
    `  description: "Apply the milter only to mail from partner.example",`,
    `  settings: { domain: "partner.example" },`,
    `  envelopeFrom(ctx, from: string) {`,
    `    const partner = from.toLowerCase().endsWith("@partner.example>");`,
    `    if (partner) ctx.addMacro("partner", "yes");`,
    `    return !partner;`,
    `  },`,
    `});`,
    ``,
    `export default defineConfig({`,
    `  manager: { connection_spec: "inet:${port}@[127.0.0.1]" },`,
    `  log: { level: "none", use_syslog: false },`,
    `  conditions: [partnersOnly],`,
    `  milters: [`,
    `    { name: "everyone", connection_spec: "${children[0].spec}" },`,
    `    { name: "partners", connection_spec: "${children[1].spec}", applicable_conditions: ["Partners only"] },`,
    `  ],`,
    `});`,
    ``,
  ].join("\n"));
  return path;
}

async function run(cmd: string[]) {
  const proc = Bun.spawn({ cmd, cwd: WORK, env: { PATH: process.env.PATH ?? "/usr/bin:/bin", NO_COLOR: "1" }, stdout: "pipe", stderr: "pipe" });
  const timer = setTimeout(() => proc.kill(), 20_000);
  const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  clearTimeout(timer);
  return { stdout, stderr, code };
}

function ok(o: StepOutcome, status = "continue"): void {
  if (!o.ok) throw new Error(`step failed: ${o.status} ${o.detail}`);
  expect(o.status).toBe(status as never);
}

test("compiled: --show-config lists the condition of the .ts configuration", async () => {
  const path = writeConfig(freePort());
  const r = await run([BIN, "manager", "--config", path, "--show-config"]);
  expect(r.stderr).toBe("");
  expect(r.code).toBe(0);
  expect(r.stdout).toContain(
    `# - Partners only (${path}; runs at envelope-from; used by partners)\n` +
      "#     Apply the milter only to mail from partner.example\n" +
      '#     settings: { domain = "partner.example" }\n',
  );
  expect(r.stdout).toContain('applicable_conditions = ["Partners only"]\n');
}, 30_000);

test("compiled: the condition decides per message which child sees it, and its macro reaches that child", async () => {
  const port = freePort();
  const path = writeConfig(port);
  manager = Bun.spawn({ cmd: [BIN, "manager", "--config", path, "--no-daemon"], cwd: WORK, stdout: "ignore", stderr: "pipe" });
  const open = () => new MilterClient({ spec: `inet:${port}@[127.0.0.1]`, connectionTimeoutMs: 5000, readingTimeoutMs: 15_000, endOfMessageTimeoutMs: 15_000 });
  // The manager needs a moment to start: retry the connection with a new client (bounded).
  let mta = open();
  const until = Date.now() + 15_000;
  for (;;) {
    const neg = await mta.open();
    if (neg.ok) break;
    if (Date.now() > until) throw new Error(`manager did not come up: ${neg.detail}; stderr: ${await new Response(manager.stderr as ReadableStream).text()}`);
    await Bun.sleep(50);
    mta = open();
  }
  const [everyone, partners] = children;
  ok(await mta.connect("client.example", { family: "4", address: "192.0.2.1", port: 4000 }));
  ok(await mta.helo("client.example"));
  for (const from of ["<alice@partner.example>", "<bob@elsewhere.example>"]) {
    ok(await mta.envelopeFrom(from, []));
    ok(await mta.envelopeRecipient("<rcpt@example.com>", []));
    ok(await mta.data());
    ok(await mta.header("Subject", `from ${from}`));
    ok(await mta.endOfHeader());
    ok(await mta.body(Buffer.from("hello\r\n", "latin1")));
    const eom = await mta.endOfMessage();
    ok(eom);
  }
  mta.close();
  expect(everyone.events("envelope-from").map((e) => e.address)).toEqual(["<alice@partner.example>", "<bob@elsewhere.example>"]);
  expect(partners.events("envelope-from").map((e) => [e.address, e.macros])).toEqual([["<alice@partner.example>", { partner: "yes" }]]);
  expect(everyone.events("end-of-message")).toHaveLength(2);
  expect(partners.events("end-of-message")).toHaveLength(1);
}, 30_000);
