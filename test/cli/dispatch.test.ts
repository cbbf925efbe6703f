// The multicall binary: tool from argv[0] or the first argument, strict options.
import { beforeAll, describe, expect, test } from "bun:test";
import { existsSync, lstatSync, mkdtempSync, readlinkSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { checkArgv, UsageError, allValues } from "../../src/cli/run.ts";
import { toolFromName } from "../../src/cli/tools.ts";
import { createLinks } from "../../src/cli/install-links.ts";

const ROOT = join(import.meta.dir, "../..");
const BIN = join(ROOT, "dist/milterkit");
const LINKS = ["milter-manager", "milter-test-client", "milter-test-server", "smtp-source", "smtp-sink"];

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
    expect(toolFromName("milterkit-milter-test-server")).toBe("test-server");
    expect(toolFromName("milterkit")).toBeUndefined();
    expect(toolFromName("bun")).toBeUndefined();
  });
});

describe("strict options", () => {
  const def = {
    "connection-spec": { type: "string", alias: ["s"] },
    verbose: { type: "boolean", alias: ["v"] },
    daemon: { type: "boolean" },
    level: { type: "enum", options: ["a", "b"] },
    target: { type: "positional" },
  } as const;
  test("accepts defined long, short, grouped, attached, negated and positional forms", () => {
    expect(() => checkArgv(def as any, ["--connection-spec", "inet:1", "-v", "--no-daemon", "host"])).not.toThrow();
    expect(() => checkArgv(def as any, ["--connection-spec=inet:1", "-vs", "x", "-sinet:2", "--level=b"])).not.toThrow();
    expect(() => checkArgv(def as any, ["--", "--bogus"])).not.toThrow();
  });
  test("rejects unknown options, missing values, values on booleans and bad enum values", () => {
    expect(() => checkArgv(def as any, ["--bogus"])).toThrow(new UsageError("unknown option '--bogus'"));
    expect(() => checkArgv(def as any, ["-Z"])).toThrow(new UsageError("unknown option '-Z'"));
    expect(() => checkArgv(def as any, ["-s"])).toThrow(new UsageError("option '-s' needs a value"));
    expect(() => checkArgv(def as any, ["--connection-spec"])).toThrow(new UsageError("option '--connection-spec' needs a value"));
    expect(() => checkArgv(def as any, ["--daemon=yes"])).toThrow(new UsageError("option '--daemon' takes no value"));
    expect(() => checkArgv(def as any, ["--level", "c"])).toThrow(UsageError);
  });
  test("allValues collects a repeatable option in order", () => {
    expect(allValues(["-t", "a", "--to=b", "--to", "c", "-td", "--", "-t", "e"], "to", "t")).toEqual(["a", "b", "c", "d"]);
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
      rmSync(join(dir, "smtp-sink"));
      writeFileSync(join(dir, "smtp-sink"), "not a link");
      expect(() => createLinks(dir, "/x")).toThrow(/is not a symlink/);
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
    for (const l of LINKS) expect(readlinkSync(join(ROOT, "dist", l))).toBe("milterkit");
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

  test("an unknown tool or option prints one line plus usage and exits 1", () => {
    const t = run(["bogus"]);
    expect(t.code).toBe(1);
    expect(t.err.split("\n")[0]).toBe("milterkit: unknown tool 'bogus'");
    expect(t.err).toContain("USAGE milterkit");
    const o = run(["test-client", "--bogus-option"]);
    expect(o.code).toBe(1);
    expect(o.err.split("\n")[0]).toBe("milter-test-client: unknown option '--bogus-option'");
    expect(o.err).toContain("USAGE milter-test-client");
  });

  test("install-links from the compiled binary", () => {
    const dir = mkdtempSync(join(tmpdir(), "mk-links-"));
    try {
      const r = run(["install-links", dir]);
      expect(r.code).toBe(0);
      for (const l of LINKS) expect(readlinkSync(join(dir, l))).toBe(BIN);
      expect(run(["install-links"]).code).toBe(1);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
