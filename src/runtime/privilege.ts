/**
 * Dropping root after listening: switch to a user (and group) with
 * initgroups + setgid + setuid, in that order (docs/bun.md §3). Only root can
 * do it; asking for it as another user is an error with one clear line.
 *
 * Unlike milter-manager (which keeps root's groups unless a group is named),
 * the target user's primary group and supplementary groups are always taken,
 * so nothing of root's group set survives the drop.
 */
import { readFileSync } from "node:fs";

export class PrivilegeError extends Error {
  override readonly name = "PrivilegeError";
}

export interface UserEntry {
  name: string;
  uid: number;
  gid: number;
}

function getent(db: "passwd" | "group", key: string): string[] | undefined {
  const file = db === "passwd" ? "/etc/passwd" : "/etc/group";
  try {
    for (const line of readFileSync(file, "latin1").split("\n")) {
      const f = line.split(":");
      if (f.length >= 3 && (f[0] === key || (/^\d+$/.test(key) && f[2] === key))) return f;
    }
  } catch {}
  // NSS sources (LDAP, …)
  try {
    const r = Bun.spawnSync(["getent", db, key], { stdout: "pipe", stderr: "ignore" });
    if (r.success) {
      const f = r.stdout.toString("latin1").trim().split("\n")[0].split(":");
      if (f.length >= 3) return f;
    }
  } catch {}
  return undefined;
}

/** A user by name or numeric id (`nobody`, `65534`). Throws PrivilegeError for an unknown user. */
export function lookupUser(user: string | number): UserEntry {
  const key = String(user);
  const f = getent("passwd", key);
  if (!f) {
    if (/^\d+$/.test(key)) return { name: key, uid: Number(key), gid: Number(key) };
    throw new PrivilegeError(`unknown user "${key}"`);
  }
  return { name: f[0], uid: Number(f[2]), gid: Number(f[3]) };
}

/** A group id by name or number. Throws PrivilegeError for an unknown group name. */
export function lookupGroup(group: string | number): number {
  const key = String(group);
  if (/^\d+$/.test(key)) return Number(key);
  const f = getent("group", key);
  if (!f) throw new PrivilegeError(`unknown group "${key}"`);
  return Number(f[2]);
}

export function isRoot(): boolean {
  return typeof process.getuid === "function" && process.getuid() === 0;
}

export interface DropOptions {
  /** Target user (name or uid). */
  user?: string | number;
  /** Target group (name or gid); default the user's primary group. */
  group?: string | number;
}

export interface Dropped {
  user: UserEntry;
  gid: number;
  groups: number[];
}

/**
 * Switch to `user`/`group`. As root: initgroups(user, gid), setgid(gid),
 * setuid(uid), then checks that root cannot be regained. Not root: throws
 * PrivilegeError when a user or group is asked for (a non-root process cannot
 * switch), otherwise does nothing and returns undefined.
 */
export function dropPrivileges(o: DropOptions): Dropped | undefined {
  if (o.user === undefined && o.group === undefined) return undefined;
  if (!isRoot()) {
    const what = [o.user !== undefined ? `user "${o.user}"` : "", o.group !== undefined ? `group "${o.group}"` : ""].filter(Boolean).join(" and ");
    throw new PrivilegeError(`cannot switch to ${what}: only root can change user or group (running as uid ${process.getuid?.()})`);
  }
  const user = lookupUser(o.user ?? 0);
  const gid = o.group !== undefined ? lookupGroup(o.group) : user.gid;
  const proc = process as NodeJS.Process & { initgroups(user: string | number, extraGroup: string | number): void };
  try {
    proc.initgroups(user.name, gid);
    process.setgid!(gid);
    process.setuid!(user.uid);
  } catch (e) {
    throw new PrivilegeError(`cannot switch to user ${user.name} (uid ${user.uid}) and gid ${gid}: ${(e as Error).message}`);
  }
  if (user.uid !== 0) {
    let regained = false;
    try {
      process.setuid!(0);
      regained = true;
    } catch {}
    if (regained) throw new PrivilegeError("privilege drop failed: setuid(0) succeeded afterwards");
  }
  return { user, gid, groups: process.getgroups?.() ?? [] };
}

