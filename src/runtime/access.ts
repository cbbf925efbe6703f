// What the user we switch to will not be able to do. Asked as root just before
// the privilege drop, from the files' mode bits and owners (access() would answer for root): once
// the manager is that user, a reload that cannot read a root-only configuration file, a stop that
// cannot remove the socket or pid file, or a SIGUSR1 that cannot reopen the log fails with a bare
// "permission denied". Said at start, once, with the fix.
import { lstatSync, readFileSync, type Stats, statSync } from "node:fs";
import { dirname, resolve } from "node:path";

export interface Target {
  /** The user's name (for its supplementary groups in /etc/group and the messages). */
  name: string;
  uid: number;
  gid: number;
}

export interface Needs {
  /** Files read again at reload (the configuration). */
  read?: string[];
  /** Files removed at stop (the unix socket, the pid file). */
  remove?: string[];
  /** Files reopened for appending (the log file, at SIGUSR1). */
  reopen?: string[];
}

const R = 4;
const W = 2;
const X = 1;
const S_ISVTX = 0o1000;

/** The supplementary groups /etc/group gives `name` (initgroups does the same at the drop). */
export function groupsOf(name: string, gid: number, groupFile = "/etc/group"): Set<number> {
  const out = new Set([gid]);
  let text = "";
  try {
    text = readFileSync(groupFile, "latin1");
  } catch {
    return out;
  }
  for (const line of text.split("\n")) {
    const [, , id, members] = line.split(":");
    if (members !== undefined && members.split(",").includes(name)) out.add(Number(id));
  }
  return out;
}

function allows(st: Stats, who: Target, groups: Set<number>, bits: number): boolean {
  if (who.uid === 0) return true;
  const shift = st.uid === who.uid ? 6 : groups.has(st.gid) ? 3 : 0;
  return ((st.mode >> shift) & bits) === bits;
}

function describe(path: string, st: Stats): string {
  return `${path} (mode ${(st.mode & 0o7777).toString(8).padStart(4, "0")}, owner uid ${st.uid} gid ${st.gid})`;
}

/** The first directory above `path` the user cannot search, or undefined. */
function blockedDirectory(path: string, who: Target, groups: Set<number>): string | undefined {
  const dirs: string[] = [];
  for (let d = dirname(path); ; d = dirname(d)) {
    dirs.unshift(d);
    if (d === dirname(d)) break;
  }
  for (const d of dirs) {
    let st: Stats;
    try {
      st = statSync(d);
    } catch {
      return undefined; // missing: the caller's own problem, not a permission one
    }
    if (!allows(st, who, groups, X)) return describe(d, st);
  }
  return undefined;
}

/** One line per thing `who` will not be able to do, naming the file, why, and the fix. */
export function accessProblems(who: Target, needs: Needs, groups = groupsOf(who.name, who.gid)): string[] {
  if (who.uid === 0) return [];
  const as = `${who.name} (uid ${who.uid})`;
  const out: string[] = [];
  const blocked = (path: string, what: string): boolean => {
    const dir = blockedDirectory(path, who, groups);
    if (dir) out.push(`${as} will not be able to ${what} ${path}: it cannot enter ${dir}; fix: chmod o+x or chgrp ${who.gid} and chmod g+x that directory`);
    return dir !== undefined;
  };
  for (const p of (needs.read ?? []).map((f) => resolve(f))) {
    if (blocked(p, "read")) continue;
    let st: Stats;
    try {
      st = statSync(p);
    } catch {
      continue;
    }
    if (!allows(st, who, groups, R)) {
      out.push(`${as} will not be able to read ${describe(p, st)}: a reload (SIGHUP) will fail; fix: chgrp ${who.gid} ${p} && chmod g+r ${p}`);
    }
  }
  for (const p of (needs.remove ?? []).map((f) => resolve(f))) {
    if (blocked(p, "remove")) continue;
    const dir = dirname(p);
    let ds: Stats;
    let fs: Stats | undefined;
    try {
      ds = statSync(dir);
      fs = lstatSync(p);
    } catch {
      continue;
    }
    const sticky = (ds.mode & S_ISVTX) !== 0 && ds.uid !== who.uid && fs.uid !== who.uid;
    if (!allows(ds, who, groups, W | X) || sticky) {
      out.push(
        `${as} will not be able to remove ${p} at stop: its directory ${describe(dir, ds)} does not let it${sticky ? " (sticky, and the file is not its own)" : ""}; ` +
          `it is left behind; fix: put it in a directory of its own that ${who.name} may write (e.g. /run/milterkit/), or remove it after the stop`,
      );
    }
  }
  for (const p of (needs.reopen ?? []).map((f) => resolve(f))) {
    if (blocked(p, "reopen")) continue;
    let st: Stats | undefined;
    try {
      st = statSync(p);
    } catch {
      st = undefined;
    }
    if (st && !allows(st, who, groups, W)) {
      out.push(`${as} will not be able to reopen the log ${describe(p, st)} (SIGUSR1, after rotation): fix: chown ${who.uid} ${p}, or let logrotate create it for ${who.name}`);
    } else if (!st) {
      try {
        const ds = statSync(dirname(p));
        if (!allows(ds, who, groups, W | X)) out.push(`${as} will not be able to create the log ${p} again after rotation: its directory ${describe(dirname(p), ds)} does not let it; fix: let logrotate create it for ${who.name}`);
      } catch {
        // no directory: the start fails on its own
      }
    }
  }
  return out;
}
