// The multicall binary: tool from argv[0] or the first argument, strict options.
import { beforeAll, describe, expect, test } from "bun:test";
import { existsSync, lstatSync, mkdtempSync, readlinkSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { ToolOptions } from "../../src/cli/options/format.ts";
import { scan, UsageError } from "../../src/cli/options/scan.ts";
import { toolFromName } from "../../src/cli/tools.ts";
import { createLinks } from "../../src/cli/install-links.ts";

const ROOT = join(import.meta.dir, "../..");
const BIN = join(ROOT, "dist/milterkit");
const LINKS = ["milter-manager", "milter-test-client", "milter-test-server", "milterkit-smtp-source", "milterkit-smtp-sink"];
const POSTFIX_LINKS = ["milter-manager", "milter-test-client", "milter-test-server", "smtp-source", "smtp-sink"];

function run(argv: string[], argv0?: string) {
  const p = Bun.spawnSync({ cmd: [BIN, ...argv], argv0, stdout: "pipe", stderr: "pipe", env: { ...process.env, NO_COLOR: "1" } });
  return { code: p.exitCode, out: p.stdout.toString(), err: p.stderr.toString() };
}

describe("tool names", () => {
  test("symlink names, milterkit-<tool> names and unknown names", () => {
    expect(toolFromName("milter-manager")).toBe("manager");
    expect(toolFromName("milter-test-client")).toBe("test-client");
    expect(toolFromName("milter-test-server")).toBe("test-server");
    expect(toolFromName("smtp-source")).toBe("smtp-source");
    expect(toolFromName("smtp-sink")).toBe("smtp-sink");
    expect(toolFromName("milterkit-manager")).toBe("manager");
    expect(toolFromName("milterkit-smtp-sink")).toBe("smtp-sink");
    expect(toolFromName("milterkit-smtp-source")).toBe("smtp-source"); // the .deb's and install-links' names
    expect(toolFromName("milterkit-milter-test-server")).toBe("test-server");
    expect(toolFromName("milterkit")).toBeUndefined();
    expect(toolFromName("bun")).toBeUndefined();
  });
});

describe("strict options", () => {
  const table: Pick<ToolOptions, "options"> = {
    options: [
      { long: "connection-spec", short: "s", value: "required", section: "x", description: "" },
      { long: "verbose", short: "v", repeat: "count", section: "x", description: "" },
      { long: "daemon", negatable: true, section: "x", description: "" },
      { long: "color", value: "optional", section: "x", description: "" },
      { long: "to", short: "t", value: "required", repeat: "list", section: "x", description: "" },
    ],
  };
  test("accepts defined long, short, grouped, attached, negated and positional forms", () => {
    expect(() => scan(table, ["--connection-spec", "inet:1", "-v", "--no-daemon", "host"])).not.toThrow();
    expect(() => scan(table, ["--connection-spec=inet:1", "-vs", "x", "-sinet:2", "--color", "--color=no"])).not.toThrow();
    expect(scan(table, ["--", "--bogus"]).operands).toEqual(["--bogus"]);
    const s = scan(table, ["-vvs", "a", "host", "--daemon", "--no-daemon", "--color", "-v"]);
    expect([s.count("verbose"), s.last("connection-spec"), s.flag("daemon"), s.operands]).toEqual([3, "a", false, ["host"]]);
    expect(s.of("color")[0].value).toBeUndefined();
  });
  test("rejects unknown options, missing values, values on flags and negated values", () => {
    expect(() => scan(table, ["--bogus"])).toThrow(new UsageError("unknown option '--bogus'"));
    expect(() => scan(table, ["-Z"])).toThrow(new UsageError("unknown option '-Z'"));
    expect(() => scan(table, ["-vZ"])).toThrow(new UsageError("unknown option '-Z'"));
    expect(() => scan(table, ["-s"])).toThrow(new UsageError("option '-s' needs a value"));
    expect(() => scan(table, ["--connection-spec"])).toThrow(new UsageError("option '--connection-spec' needs a value"));
    expect(() => scan(table, ["--daemon=yes"])).toThrow(new UsageError("option '--daemon' takes no value"));
    expect(() => scan(table, ["--no-daemon=yes"])).toThrow(new UsageError("option '--no-daemon' takes no value"));
    expect(() => scan(table, ["--no-verbose"])).toThrow(new UsageError("unknown option '--no-verbose'"));
  });
  test("a repeatable option keeps every value in order", () => {
    expect(scan(table, ["-t", "a", "--to=b", "--to", "c", "-td", "--", "-t", "e"]).all("to")).toEqual(["a", "b", "c", "d"]);
  });
});

describe("install-links", () => {
  test("creates one symlink per tool, refreshes them, and never replaces a regular file", () => {
    const dir = mkdtempSync(join(tmpdir(), "mk-links-"));
    try {
      expect(createLinks(dir, "/opt/milterkit").length).toBe(5);
      for (const l of LINKS) expect(readlinkSync(join(dir, l))).toBe("/opt/milterkit");
      createLinks(dir, "/usr/local/bin/milterkit");
      for (const l of LINKS) expect(readlinkSync(join(dir, l))).toBe("/usr/local/bin/milterkit");
      // Postfix's smtp-source and smtp-sink are never shadowed unless asked for.
      expect(existsSync(join(dir, "smtp-source")) || existsSync(join(dir, "smtp-sink"))).toBe(false);
      createLinks(dir, "/opt/milterkit", { postfixNames: true });
      for (const l of POSTFIX_LINKS) expect(readlinkSync(join(dir, l))).toBe("/opt/milterkit");
      rmSync(join(dir, "smtp-sink"));
      writeFileSync(join(dir, "smtp-sink"), "not a link");
      expect(() => createLinks(dir, "/x", { postfixNames: true })).toThrow(/is not a symlink/);
      expect(lstatSync(join(dir, "smtp-sink")).isFile()).toBe(true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("compiled binary", () => {
  beforeAll(() => {
    if (!existsSync(BIN)) {
      const b = Bun.spawnSync({ cmd: [process.execPath, "run", "build"], cwd: ROOT, stdout: "ignore", stderr: "inherit" });
      if (b.exitCode !== 0) throw new Error("bun run build failed");
    }
  });

  test("dist has the binary and the five tool symlinks", () => {
    for (const l of POSTFIX_LINKS) expect(readlinkSync(join(ROOT, "dist", l))).toBe("milterkit");
  });

  test("--help lists every tool, --version prints the version", () => {
    const h = run(["--help"]);
    expect(h.code).toBe(0);
    for (const t of ["manager", "test-client", "test-server", "smtp-source", "smtp-sink", "install-links"]) expect(h.out).toContain(t);
    const v = run(["--version"]);
    expect(v.code).toBe(0);
    expect(v.out).toMatch(/^milterkit \d+\.\d+\.\d+\n$/);
  });

  test("each tool answers --version and --help by subcommand and through argv[0]", () => {
    for (const [tool, link] of [["manager", "milter-manager"], ["test-client", "milter-test-client"], ["test-server", "milter-test-server"], ["smtp-source", "smtp-source"], ["smtp-sink", "smtp-sink"]]) {
      const v = run([tool, "--version"]);
      expect(v.code).toBe(0);
      // milter-test-client prints the bare number like the original; the others prefix their name.
      expect(v.out).toMatch(tool === "test-client" ? /^\d+\.\d+\.\d+\n$/ : new RegExp(`^${link} \\d+\\.\\d+\\.\\d+\\n$`));
      const h = run(["--help"], link);
      expect(h.code).toBe(0);
      expect(h.out).toContain(`USAGE ${link}`);
    }
  });

  test("the symlinks dispatch on their own name", () => {
    const p = Bun.spawnSync({ cmd: [join(ROOT, "dist/smtp-source"), "--help"], stdout: "pipe", env: { ...process.env, NO_COLOR: "1" } });
    expect(p.exitCode).toBe(0);
    expect(p.stdout.toString()).toContain("USAGE smtp-source");
  });

  test("an unknown tool prints one line plus usage, a wrong option one line plus where help is; exit 1", () => {
    const t = run(["bogus"]);
    expect(t.code).toBe(1);
    expect(t.err.split("\n")[0]).toBe("milterkit: unknown tool 'bogus'");
    expect(t.err).toContain("USAGE milterkit");
    const o = run(["test-client", "--bogus-option"]);
    expect(o.code).toBe(1);
    expect(o.err).toBe("milter-test-client: unknown option '--bogus-option'\nTry 'milterkit test-client --help' for more information.\n");
    const l = run(["-s"], "smtp-sink");
    expect(l.code).toBe(1);
    expect(l.err).toBe("smtp-sink: option '-s' needs a value\nTry 'smtp-sink --help' for more information.\n");
  });

  test("install-links from the compiled binary", () => {
    const dir = mkdtempSync(join(tmpdir(), "mk-links-"));
    try {
      const r = run(["install-links", dir]);
      expect(r.code).toBe(0);
      for (const l of LINKS) expect(readlinkSync(join(dir, l))).toBe(BIN);
      expect(existsSync(join(dir, "smtp-source"))).toBe(false);
      expect(run(["install-links", "--postfix-names", dir]).code).toBe(0);
      expect(readlinkSync(join(dir, "smtp-source"))).toBe(BIN);
      expect(run(["install-links"]).code).toBe(1);
      expect(run(["install-links", "--bogus", dir]).err).toStartWith("milterkit install-links: unknown option '--bogus'\n");
      expect(run(["install-links", "--help"]).out).toContain("--postfix-names");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
