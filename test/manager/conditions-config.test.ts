// Conditions in the configuration: a .ts file defining its own (defineCondition, restrictAccounts
// from "milterkit"), merging across files, the checks on names, what other formats may not do,
// and --show-config listing every condition with its description, stages, settings and users.
import { afterAll, describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ConfigError, loadEffectiveConfig } from "../../src/manager/config/load.ts";
import { formatConfigToml } from "../../src/manager/config/show.ts";
import { ConditionSession, connect, mail, rcpt, DATA } from "./support/condition-session.ts";

const FIXTURES = join(import.meta.dir, "../fixtures/config");
const tmpRoot = mkdtempSync(join(tmpdir(), "mk-conditions-config-"));
afterAll(() => rmSync(tmpRoot, { recursive: true, force: true }));

let n = 0;
function dirWith(files: Record<string, string>): string {
  const dir = join(tmpRoot, `d${++n}`);
  for (const [name, text] of Object.entries(files)) {
    mkdirSync(join(dir, name, ".."), { recursive: true });
    writeFileSync(join(dir, name), text);
  }
  return dir;
}

async function loadError(dir: string): Promise<string> {
  try {
    await loadEffectiveConfig({ kind: "dir", dir, explicit: true });
  } catch (e) {
    if (e instanceof ConfigError) return e.message;
    throw e;
  }
  throw new Error("expected a ConfigError");
}

describe("conditions written in a .ts configuration", () => {
  test("are loaded, can be named by milters, and run", async () => {
    const { config } = await loadEffectiveConfig({ kind: "file", path: join(FIXTURES, "conditions.ts") });
    expect(config.conditions.map((c) => c.name)).toEqual(["From partners", "VIP recipients"]);
    const s = new ConditionSession(config);
    await s.askAll(["archiver", "vip-scan"], connect("mx.partner.example", "198.51.100.7"));
    expect(await s.ask("archiver", mail("<a@Partner.example>"))).toEqual({ stop: false, added: { partner: "yes" } });
    expect(await s.ask("archiver", mail("<a@elsewhere.example>"))).toEqual({ stop: true, added: { partner: "no" } });
    await s.ask("vip-scan", mail("<a@elsewhere.example>"));
    expect((await s.ask("vip-scan", rcpt("<boss@vip.example>"))).stop).toBe(false);
    expect((await s.ask("vip-scan", rcpt("<intern@example.com>"))).stop).toBe(true);
    expect((await s.ask("vip-scan", DATA)).stop).toBe(true);
  });

  test("a later file replaces a condition of the same name in place", async () => {
    const dir = dirWith({
      "milterkit.config.ts": `import { defineConfig, defineCondition } from "milterkit";
export default defineConfig({
  conditions: [defineCondition({ name: "A", helo: () => true }), defineCondition({ name: "B", helo: () => false })],
  milters: [{ name: "m", connection_spec: "unix:/m.sock", applicable_conditions: ["A", "B"] }],
});`,
      "conf.d/10-a.ts": `import { defineConfig } from "milterkit";
export default defineConfig({ conditions: [{ name: "A", description: "second", helo: () => false }] });`,
    });
    const loaded = await loadEffectiveConfig({ kind: "dir", dir, explicit: true });
    expect(loaded.config.conditions.map((c) => [c.name, c.description ?? null])).toEqual([["A", "second"], ["B", null]]);
    expect(formatConfigToml(loaded)).toContain(`# - A (${join(dir, "conf.d/10-a.ts")}; runs at helo; used by m)\n#     second\n`);
  });

  test("names must be unique and not those of built-ins or restrict_accounts rules; milters may name them", async () => {
    const clash = await loadError(dirWith({
      "milterkit.config.ts": `export default { conditions: [{ name: "S25R", connect: () => true }, { name: "Sales", helo: () => true }],
  applicable_conditions: { restrict_accounts: [{ name: "Sales", accounts: ["s@example.com"] }] } };`,
    }));
    expect(clash).toContain('✖ condition name "S25R" is the name of a built-in condition');
    expect(clash).toContain('✖ condition name "Sales" is the name of a restrict_accounts rule');
    const dup = await loadError(dirWith({ "milterkit.config.js": `export default { conditions: [{ name: "X" }, { name: "X" }] };` }));
    expect(dup).toContain('duplicate condition name "X" (first at index 0)');
    const unknown = await loadError(dirWith({
      "milterkit.config.ts": `export default { conditions: [{ name: "Mine", helo: () => true }],
  milters: [{ name: "m", connection_spec: "unix:/m.sock", applicable_conditions: ["Mine", "Yours"] }] };`,
    }));
    expect(unknown).toContain('✖ unknown applicable condition "Yours" (known: S25R, ');
    expect(unknown).toContain(", Mine)");
    expect(unknown).not.toContain('"Mine"');
  });

  test("stoppers must be functions; misspelt stoppers are caught with a hint", async () => {
    const json = await loadError(dirWith({ "milterkit.config.json": `{ "conditions": [{ "name": "J", "connect": "return true" }] }` }));
    expect(json).toContain("must be a function");
    expect(json).toContain("conditions[0].connect");
    const typo = await loadError(dirWith({ "milterkit.config.ts": `export default { conditions: [{ name: "T", envelopFrom: () => true }] };` }));
    expect(typo).toContain('did you mean "envelopeFrom"?');
  });
});

describe("DNSBL settings", () => {
  test("name_servers may carry a port; timeout and cache_ttl are checked", async () => {
    const dir = dirWith({
      "milterkit.config.toml": `[applicable_conditions.dnsbl]\nname_servers = ["127.0.0.1:5353", "[::1]:53", "192.0.2.53", "2001:db8::53"]\ntimeout = 0.5\ncache_ttl = 0\n`,
    });
    const { config } = await loadEffectiveConfig({ kind: "dir", dir, explicit: true });
    expect(config.applicable_conditions.dnsbl).toMatchObject({ name_servers: ["127.0.0.1:5353", "[::1]:53", "192.0.2.53", "2001:db8::53"], timeout: 0.5, cache_ttl: 0 });
    for (const bad of ['"127.0.0.1:0"', '"ns.example:53"', '"[127.0.0.1]:53"', '"127.0.0.1:70000"']) {
      const message = await loadError(dirWith({ "milterkit.config.toml": `[applicable_conditions.dnsbl]\nname_servers = [${bad}]\n` }));
      expect([bad, message]).toEqual([bad, expect.stringContaining("optionally with a port")]);
    }
    expect(await loadError(dirWith({ "milterkit.config.toml": `[applicable_conditions.dnsbl]\ntimeout = 0\n` }))).toContain("applicable_conditions.dnsbl.timeout");
  });
});

describe("--show-config", () => {
  test("lists every condition: built-ins with their settings section, rules, the configuration's own", async () => {
    const path = join(FIXTURES, "conditions.ts");
    const text = formatConfigToml(await loadEffectiveConfig({ kind: "file", path }));
    expect(text).toContain(
      "# - S25R (built-in; runs at connect; used by no milter)\n" +
        "#     Apply the milter only to clients whose host name looks like an end-user/dynamic host (S25R rules or deny list), not on the allow list\n" +
        "#     settings: [applicable_conditions.s25r]\n",
    );
    expect(text).toContain("# - Remote Network (built-in; runs at connect; used by archiver)\n");
    expect(text).toContain("# - Authenticated (built-in; runs at envelope-from; used by no milter)\n");
    expect(text).toContain("# - DNSBL Listed (built-in; runs at connect; used by no milter)\n");
    expect(text).toContain(
      `# - From partners (${path}; runs at envelope-from; used by archiver)\n` +
        "#     Apply the milter only to mail whose envelope sender is at a partner domain\n" +
        '#     settings: { partners = ["partner.example", "supplier.example"] }\n',
    );
    expect(text).toContain(`# - VIP recipients (${path}; runs at envelope-recipient, data; used by vip-scan)\n`);
    for (const name of ["Unauthenticated", "Trust", "Sendmail Compatible", "Stress Notify", "No Stress", "Not DNSBL Listed"]) {
      expect(text).toContain(`# - ${name} (built-in;`);
    }
    expect(text).toContain("# default\ntimeout = 5\n"); // new dnsbl items are shown
    expect(text).toContain("# default\ncache_ttl = 300\n");
  });

  test("restrict_accounts rules show their accounts and milters", async () => {
    const dir = dirWith({
      "milterkit.config.toml": `[[applicable_conditions.restrict_accounts]]\nname = "Sales"\naccounts = ["sales@example.com"]\n\n[[milters]]\nname = "a"\nconnection_spec = "unix:/a.sock"\n`,
    });
    const text = formatConfigToml(await loadEffectiveConfig({ kind: "dir", dir, explicit: true }));
    expect(text).toContain(
      `# - Sales (restrict_accounts rule, ${join(dir, "milterkit.config.toml")}; runs at envelope-recipient, data; used by a)\n` +
        "#     Apply the milter only to messages whose recipients are all in the account list\n" +
        '#     settings: accounts = ["sales@example.com"], milters = every milter\n',
    );
  });
});
