// What the user the manager switches to will not be able to do: found from the
// files' modes and owners before the switch, one line each with the fix.
import { afterAll, describe, expect, test } from "bun:test";
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { accessProblems, groupsOf } from "../../src/runtime/access.ts";

const dir = mkdtempSync(join(tmpdir(), "mk-access-"));
chmodSync(dir, 0o755);
afterAll(() => rmSync(dir, { recursive: true, force: true }));
// Someone who owns none of these files and is in none of their groups.
const nobody = { name: "mk-test-nobody", uid: 65534, gid: 65534 };
const noGroups = new Set([65534]);

function file(name: string, mode: number): string {
  const p = join(dir, name);
  writeFileSync(p, "x");
  chmodSync(p, mode);
  return p;
}

describe("accessProblems", () => {
  test("a root-only (0600) configuration file: a reload will fail, said with the fix; 0644 is fine", () => {
    const secret = file("secret.toml", 0o600);
    const open = file("open.toml", 0o644);
    const problems = accessProblems(nobody, { read: [secret, open] }, noGroups);
    expect(problems).toHaveLength(1);
    expect(problems[0]).toStartWith(`mk-test-nobody (uid 65534) will not be able to read ${secret} (mode 0600,`);
    expect(problems[0]).toContain("a reload (SIGHUP) will fail; fix: chgrp 65534");
  });

  test("group read counts when the user is in the file's group (/etc/group membership)", () => {
    const groupFile = join(dir, "group");
    writeFileSync(groupFile, `staff:x:${process.getgid!()}:someone,mk-test-nobody\nother:x:4242:someone\n`);
    const groups = groupsOf("mk-test-nobody", 65534, groupFile);
    expect([...groups].sort()).toEqual([65534, process.getgid!()].sort());
    const shared = file("shared.toml", 0o640);
    expect(accessProblems(nobody, { read: [shared] }, groups)).toEqual([]);
    expect(accessProblems(nobody, { read: [shared] }, noGroups)).toHaveLength(1);
  });

  test("a pid file or socket in a directory the user cannot write is left behind at stop", () => {
    const run = join(dir, "run");
    mkdirSync(run, { mode: 0o755 });
    chmodSync(run, 0o755);
    const pid = join(run, "milterkit.pid");
    writeFileSync(pid, "1\n");
    const problems = accessProblems(nobody, { remove: [pid] }, noGroups);
    expect(problems).toHaveLength(1);
    expect(problems[0]).toContain(`will not be able to remove ${pid} at stop`);
    expect(problems[0]).toContain("fix: put it in a directory of its own");
    // A directory it may write (and not sticky): fine.
    chmodSync(run, 0o777);
    expect(accessProblems(nobody, { remove: [pid] }, noGroups)).toEqual([]);
    // Sticky and neither the directory nor the file is its own: not removable.
    chmodSync(run, 0o1777);
    expect(accessProblems(nobody, { remove: [pid] }, noGroups)[0]).toContain("(sticky, and the file is not its own)");
  });

  test("a log file the user cannot write cannot be reopened after rotation; a directory it cannot enter blocks all", () => {
    const log = file("manager.log", 0o644);
    expect(accessProblems(nobody, { reopen: [log] }, noGroups)[0]).toContain("will not be able to reopen the log");
    const closed = join(dir, "closed");
    mkdirSync(closed, { mode: 0o700 });
    chmodSync(closed, 0o700);
    const inside = join(closed, "conf.toml");
    writeFileSync(inside, "x");
    chmodSync(inside, 0o644);
    expect(accessProblems(nobody, { read: [inside] }, noGroups)[0]).toContain(`cannot enter ${closed} (mode 0700`);
  });

  test("root (uid 0) can do everything: nothing to say", () => {
    expect(accessProblems({ name: "root", uid: 0, gid: 0 }, { read: [file("r.toml", 0o600)] })).toEqual([]);
  });
});
