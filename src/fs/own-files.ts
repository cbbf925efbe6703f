// Files we create as root in a directory someone else may write to (the socket, the pid file):
// never act on them by name after the fact. A name can be swapped for a symlink or a hard link
// between two calls, and chown/chmod/unlink by name would then hit another file. So we open the
// name without following a symlink (O_PATH|O_NOFOLLOW), check what we got (type, owner, one
// link, and the identity recorded when we made it), and change it through that descriptor.
import { chmodSync, chownSync, closeSync, fstatSync, lstatSync, openSync, type Stats, renameSync, unlinkSync, writeSync } from "node:fs";

const O_PATH = 0o10000000;
const O_NOFOLLOW = 0o400000;
const O_CLOEXEC = 0o2000000;

/** Device and inode: which file a name pointed to when we made it. */
export interface FileIdentity {
  dev: number;
  ino: number;
}

export class OwnFileError extends Error {
  override readonly name = "OwnFileError";
}

export interface AdjustOptions {
  /** What the file must be. */
  kind: "socket" | "file" | "directory";
  /** It must be this file (from an earlier adjust()). */
  identity?: FileIdentity;
  /** New owner; -1 or undefined keeps it. */
  uid?: number;
  gid?: number;
  /** New permission bits. */
  mode?: number;
}

/**
 * Check that `path` is still the file we made — of `kind`, owned by our effective user, with one
 * link, not a symlink (and `identity`, if given) — then set owner and mode through a descriptor of
 * exactly that file. Returns its identity. Throws OwnFileError when the name points elsewhere.
 */
export function adjustOwnFile(path: string, o: AdjustOptions): FileIdentity {
  let fd: number;
  try {
    fd = openSync(path, O_PATH | O_NOFOLLOW | O_CLOEXEC);
  } catch (e) {
    throw new OwnFileError(`cannot open ${path}: ${(e as Error).message}`);
  }
  try {
    const st = fstatSync(fd);
    const problem = notOurs(st, o.kind, o.identity);
    if (problem) throw new OwnFileError(`${path} ${problem}; not touching it`);
    // /proc/self/fd/N names the very inode the descriptor holds, whatever happens to `path` now.
    const via = `/proc/self/fd/${fd}`;
    if (o.mode !== undefined) chmodSync(via, o.mode);
    if ((o.uid ?? -1) !== -1 || (o.gid ?? -1) !== -1) chownSync(via, o.uid ?? -1, o.gid ?? -1);
    return { dev: st.dev, ino: st.ino };
  } finally {
    closeSync(fd);
  }
}

function notOurs(st: Stats, kind: AdjustOptions["kind"], identity: FileIdentity | undefined): string | undefined {
  if (st.isSymbolicLink()) return "is a symbolic link";
  const is = kind === "socket" ? st.isSocket() : kind === "file" ? st.isFile() : st.isDirectory();
  if (!is) return `is not a ${kind === "file" ? "regular file" : kind}`;
  if (identity && (st.dev !== identity.dev || st.ino !== identity.ino)) return "was replaced by another file";
  const euid = process.geteuid?.() ?? st.uid;
  if (st.uid !== euid) return `belongs to uid ${st.uid}, not to us (uid ${euid})`;
  if (kind !== "directory" && st.nlink !== 1) return `has ${st.nlink} links`;
  return undefined;
}

/** Is `path` (not following a symlink) still the file `identity`? */
export function stillOurs(path: string, identity: FileIdentity): boolean {
  try {
    const st = lstatSync(path);
    return st.dev === identity.dev && st.ino === identity.ino;
  } catch {
    return false;
  }
}

/** Remove `path` only while it is still the file `identity`. True if removed. */
export function removeIfOurs(path: string, identity: FileIdentity): boolean {
  if (!stillOurs(path, identity)) return false;
  try {
    unlinkSync(path);
    return true;
  } catch {
    return false;
  }
}

/**
 * Write a small file without following whatever sits at `path`: a new file (O_EXCL) next to it,
 * then renamed over the name (a rename replaces a symlink, it does not write through it).
 */
export function writeFileNoFollow(path: string, data: string, mode: number): FileIdentity {
  const tmp = `${path}.${process.pid}.tmp`;
  let fd: number;
  try {
    fd = openSync(tmp, "wx", mode);
  } catch (e) {
    if ((e as { code?: string }).code !== "EEXIST") throw e;
    unlinkSync(tmp); // our own leftover (same pid) or a planted name: either way not followed
    fd = openSync(tmp, "wx", mode);
  }
  let identity: FileIdentity;
  try {
    writeSync(fd, data);
    const st = fstatSync(fd);
    identity = { dev: st.dev, ino: st.ino };
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
  return identity;
}
