/**
 * Unix datagram sockets through libc via bun:ffi: Bun has no AF_UNIX datagram sockets
 * (docs/bun.md §5). Used for syslog (/dev/log) and systemd's $NOTIFY_SOCKET. Non-blocking: a
 * full receiver drops the datagram (send returns false) instead of stalling the event loop.
 */

export class DatagramError extends Error {
  override readonly name = "DatagramError";
}

export interface UnixDatagram {
  /** True when the whole datagram was sent. */
  send(datagram: Uint8Array): boolean;
  close(): void;
}

let libcCache: ReturnType<typeof loadLibc> | undefined;

function loadLibc() {
  // Loaded lazily: tools that never send a datagram do not pay for it.
  const { dlopen, FFIType } = require("bun:ffi") as typeof import("bun:ffi");
  return dlopen("libc.so.6", {
    socket: { args: [FFIType.i32, FFIType.i32, FFIType.i32], returns: FFIType.i32 },
    connect: { args: [FFIType.i32, FFIType.ptr, FFIType.u32], returns: FFIType.i32 },
    send: { args: [FFIType.i32, FFIType.ptr, FFIType.u64, FFIType.i32], returns: FFIType.i64 },
    close: { args: [FFIType.i32], returns: FFIType.i32 },
    clock_gettime: { args: [FFIType.i32, FFIType.ptr], returns: FFIType.i32 },
    __errno_location: { args: [], returns: FFIType.ptr },
  });
}

function libc() {
  libcCache ??= loadLibc();
  return libcCache.symbols;
}

const AF_UNIX = 1;
const SOCK_DGRAM = 2;
const SOCK_NONBLOCK = 0o4000;
const SOCK_CLOEXEC = 0o2000000;
const MSG_NOSIGNAL = 0x4000;
const ECONNREFUSED = 111;
const ENOTCONN = 107;
const CLOCK_MONOTONIC = 1;

/**
 * A socket connected to `path`; "@name" is an abstract-namespace address (systemd may hand one
 * out). With `reconnect`, a receiver that went away (ECONNREFUSED) gets one new connect per send.
 * Throws DatagramError when the socket cannot be made or connected.
 */
export function unixDatagram(path: string, o: { reconnect?: boolean } = {}): UnixDatagram {
  const c = libc();
  const { ptr, read } = require("bun:ffi") as typeof import("bun:ffi");
  const errno = () => read.i32(c.__errno_location()!, 0);
  const abstract = path.startsWith("@");
  const name = Buffer.from(abstract ? path.slice(1) : path);
  if (name.length > 107) throw new DatagramError(`socket path too long: ${path}`);
  const addr = new Uint8Array(110);
  new DataView(addr.buffer).setUint16(0, AF_UNIX, true);
  addr.set(name, abstract ? 3 : 2); // abstract: a NUL first, and no NUL at the end
  const addrLen = abstract ? 3 + name.length : 2 + name.length + 1;
  let fd = -1;
  const open = (): void => {
    fd = c.socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) throw new DatagramError(`socket(AF_UNIX, SOCK_DGRAM) failed: errno ${errno()}`);
    if (c.connect(fd, ptr(addr), addrLen) !== 0) {
      const e = errno();
      c.close(fd);
      fd = -1;
      throw new DatagramError(`cannot connect to ${path}: errno ${e}`);
    }
  };
  open();
  return {
    send(datagram) {
      if (fd < 0 || datagram.length === 0) return false;
      let n = Number(c.send(fd, ptr(datagram), datagram.length, MSG_NOSIGNAL));
      if (n < 0) {
        const e = errno();
        if (!o.reconnect || (e !== ECONNREFUSED && e !== ENOTCONN)) return false; // EAGAIN etc.: dropped
        c.close(fd);
        try {
          open();
        } catch {
          return false;
        }
        n = Number(c.send(fd, ptr(datagram), datagram.length, MSG_NOSIGNAL));
      }
      return n === datagram.length;
    },
    close() {
      if (fd >= 0) c.close(fd);
      fd = -1;
    },
  };
}

/** CLOCK_MONOTONIC in microseconds (systemd's MONOTONIC_USEC). */
export function monotonicMicroseconds(): bigint {
  const { ptr } = require("bun:ffi") as typeof import("bun:ffi");
  const ts = new BigInt64Array(2);
  if (libc().clock_gettime(CLOCK_MONOTONIC, ptr(ts)) !== 0) throw new DatagramError("clock_gettime(CLOCK_MONOTONIC) failed");
  return ts[0] * 1_000_000n + ts[1] / 1000n;
}
