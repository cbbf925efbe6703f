// What Bun does not offer for listening sockets, through libc (bun:ffi):
//  - a unix stream socket bound and listening, made by us and handed to Bun.listen({ fd }), so
//    that Bun's stop() does not unlink the path (it does for Bun.listen({ unix })) — we remove the
//    file ourselves, and only while it is still ours;
//  - a duplicate of a listening descriptor: it keeps the socket (and its queue of connections not
//    yet accepted) alive while Bun's listener is stopped, so accepting can pause and resume;
//  - the number of descriptors in use against RLIMIT_NOFILE.
import { readdirSync, readFileSync } from "node:fs";
import { AF_UNIX, address, errno, libc, unixAddress } from "./libc.ts";

const SOCK_STREAM = 1;
const SOCK_NONBLOCK = 0o4000;
const SOCK_CLOEXEC = 0o2000000;
const F_DUPFD_CLOEXEC = 1030;
const BACKLOG = 511;

const ERRNO: Record<number, string> = {
  1: "EPERM", 2: "ENOENT", 13: "EACCES", 20: "ENOTDIR", 22: "EINVAL", 23: "ENFILE", 24: "EMFILE", 30: "EROFS", 36: "ENAMETOOLONG", 98: "EADDRINUSE",
};

/** A failed system call: `code` is the errno name (EADDRINUSE, EACCES, ...). */
export class SyscallError extends Error {
  constructor(readonly code: string, readonly syscall: string) {
    super(`${syscall}: ${code}`);
    this.name = "SyscallError";
  }
}

function failed(syscall: string): SyscallError {
  const n = errno();
  return new SyscallError(ERRNO[n] ?? `errno ${n}`, syscall);
}

/** socket + bind + listen on a unix path; the file appears with mode 0777 & ~umask. Returns the descriptor. */
export function listenUnix(path: string): number {
  const c = libc();
  const sa = unixAddress(path);
  if (!sa) throw new SyscallError("ENAMETOOLONG", "bind");
  const fd = c.socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) throw failed("socket");
  if (c.bind(fd, address(sa.addr), sa.len) !== 0) {
    const e = failed("bind");
    c.close(fd);
    throw e;
  }
  if (c.listen(fd, BACKLOG) !== 0) {
    const e = failed("listen");
    c.close(fd);
    throw e;
  }
  return fd;
}

/** A new descriptor for the same socket (close-on-exec). */
export function duplicate(fd: number): number {
  const n = libc().fcntl(fd, F_DUPFD_CLOEXEC, 0);
  if (n < 0) throw failed("fcntl(F_DUPFD_CLOEXEC)");
  return n;
}

export function closeDescriptor(fd: number): void {
  libc().close(fd);
}

export interface FileLimit {
  soft: number;
  hard: number;
}

/** The open-file limit, from /proc/self/limits (no FFI needed to read it). "unlimited" = Infinity. */
export function fileDescriptorLimit(pid: number | "self" = "self"): FileLimit {
  const text = readFileSync(`/proc/${pid}/limits`, "latin1");
  const line = text.split("\n").find((l) => l.startsWith("Max open files"));
  if (!line) throw new Error(`no "Max open files" line in /proc/${pid}/limits`);
  const [soft, hard] = line.slice("Max open files".length).trim().split(/\s+/);
  const n = (v: string) => (v === "unlimited" ? Infinity : Number(v));
  return { soft: n(soft), hard: n(hard) };
}

let lastLimit = Infinity;

/** Descriptors free under the soft RLIMIT_NOFILE; Infinity without a limit; 0 when none is left to look. */
export function freeDescriptors(): number {
  let soft: number;
  try {
    soft = fileDescriptorLimit().soft;
    lastLimit = soft;
  } catch (e) {
    if (isOutOfDescriptors(e)) return 0; // reading /proc/self/limits needs a descriptor too
    soft = lastLimit;
  }
  if (!Number.isFinite(soft)) return Infinity;
  try {
    return soft - (readdirSync("/proc/self/fd").length - 1); // minus the listing's own descriptor
  } catch (e) {
    return isOutOfDescriptors(e) ? 0 : Infinity; // no /proc: nothing to go by
  }
}

/** The soft RLIMIT_NOFILE when last read by freeDescriptors(). */
export function descriptorLimit(): number {
  return lastLimit;
}

function isOutOfDescriptors(e: unknown): boolean {
  const code = (e as { code?: string }).code;
  return code === "EMFILE" || code === "ENFILE";
}
