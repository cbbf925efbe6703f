// What Bun does not offer for listening sockets, through libc (bun:ffi):
//  - a unix stream socket bound and listening, made by us and handed to Bun.listen({ fd }), so
//    that Bun's stop() does not unlink the path (it does for Bun.listen({ unix })) — we remove the
//    file ourselves, and only while it is still ours;
//  - a duplicate of a listening descriptor: it keeps the socket (and its queue of connections not
//    yet accepted) alive while Bun's listener is stopped, so accepting can pause and resume;
//  - the number of descriptors in use against RLIMIT_NOFILE.
import { readdirSync, readFileSync } from "node:fs";

const AF_UNIX = 1;
const SOCK_STREAM = 1;
const SOCK_NONBLOCK = 0o4000;
const SOCK_CLOEXEC = 0o2000000;
const F_DUPFD_CLOEXEC = 1030;
/** sizeof(struct sockaddr_un): 2 bytes of family and 108 of path. */
const SUN_LEN = 110;
const BACKLOG = 511;

const ERRNO: Record<number, string> = {
  1: "EPERM", 2: "ENOENT", 13: "EACCES", 20: "ENOTDIR", 22: "EINVAL", 23: "ENFILE", 24: "EMFILE", 30: "EROFS", 36: "ENAMETOOLONG", 98: "EADDRINUSE",
};

interface Libc {
  socket(domain: number, type: number, protocol: number): number;
  bind(fd: number, addr: Uint8Array, len: number): number;
  listen(fd: number, backlog: number): number;
  fcntl(fd: number, cmd: number, arg: number): number;
  close(fd: number): number;
  errno(): number;
}
let libc: Libc | undefined;

function loadLibc(): Libc {
  if (libc) return libc;
  const { dlopen, FFIType, ptr, read } = require("bun:ffi") as typeof import("bun:ffi");
  const lib = dlopen("libc.so.6", {
    socket: { args: [FFIType.i32, FFIType.i32, FFIType.i32], returns: FFIType.i32 },
    bind: { args: [FFIType.i32, FFIType.ptr, FFIType.u32], returns: FFIType.i32 },
    listen: { args: [FFIType.i32, FFIType.i32], returns: FFIType.i32 },
    fcntl: { args: [FFIType.i32, FFIType.i32, FFIType.i32], returns: FFIType.i32 },
    close: { args: [FFIType.i32], returns: FFIType.i32 },
    __errno_location: { args: [], returns: FFIType.ptr },
  });
  libc = {
    socket: (d, t, p) => lib.symbols.socket(d, t, p),
    bind: (fd, addr, len) => lib.symbols.bind(fd, ptr(addr), len),
    listen: (fd, b) => lib.symbols.listen(fd, b),
    fcntl: (fd, cmd, arg) => lib.symbols.fcntl(fd, cmd, arg),
    close: (fd) => lib.symbols.close(fd),
    errno: () => read.i32(lib.symbols.__errno_location()!, 0),
  };
  return libc;
}

/** A failed system call: `code` is the errno name (EADDRINUSE, EACCES, ...). */
export class SyscallError extends Error {
  constructor(readonly code: string, readonly syscall: string) {
    super(`${syscall}: ${code}`);
    this.name = "SyscallError";
  }
}

function failed(c: Libc, syscall: string): SyscallError {
  const n = c.errno();
  return new SyscallError(ERRNO[n] ?? `errno ${n}`, syscall);
}

/** socket + bind + listen on a unix path; the file appears with mode 0777 & ~umask. Returns the descriptor. */
export function listenUnix(path: string): number {
  const c = loadLibc();
  const name = Buffer.from(path, "utf8");
  if (name.length >= SUN_LEN - 2) throw new SyscallError("ENAMETOOLONG", "bind");
  const addr = new Uint8Array(SUN_LEN);
  new DataView(addr.buffer).setUint16(0, AF_UNIX, true);
  addr.set(name, 2);
  const fd = c.socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) throw failed(c, "socket");
  if (c.bind(fd, addr, 2 + name.length + 1) !== 0) {
    const e = failed(c, "bind");
    c.close(fd);
    throw e;
  }
  if (c.listen(fd, BACKLOG) !== 0) {
    const e = failed(c, "listen");
    c.close(fd);
    throw e;
  }
  return fd;
}

/** A new descriptor for the same socket (close-on-exec). */
export function duplicate(fd: number): number {
  const c = loadLibc();
  const n = c.fcntl(fd, F_DUPFD_CLOEXEC, 0);
  if (n < 0) throw failed(c, "fcntl(F_DUPFD_CLOEXEC)");
  return n;
}

export function closeDescriptor(fd: number): void {
  loadLibc().close(fd);
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
