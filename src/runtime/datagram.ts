/**
 * Unix datagram sockets through libc via bun:ffi: Bun has no AF_UNIX datagram sockets
 * (docs/bun.md §5). Used for syslog (/dev/log) and systemd's $NOTIFY_SOCKET. Non-blocking: a
 * full receiver drops the datagram (send returns false) instead of stalling the event loop.
 */

import { AF_UNIX, address, errno, libc, unixAddress } from "../net/libc.ts";

export class DatagramError extends Error {
  override readonly name = "DatagramError";
}

export interface UnixDatagram {
  /** True when the whole datagram was sent. */
  send(datagram: Uint8Array): boolean;
  close(): void;
}

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
  const abstract = path.startsWith("@");
  const sa = unixAddress(abstract ? path.slice(1) : path, abstract);
  if (!sa) throw new DatagramError(`socket path too long: ${path}`);
  let fd = -1;
  const open = (): void => {
    fd = c.socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) throw new DatagramError(`socket(AF_UNIX, SOCK_DGRAM) failed: errno ${errno()}`);
    if (c.connect(fd, address(sa.addr), sa.len) !== 0) {
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
      let n = Number(c.send(fd, address(datagram), datagram.length, MSG_NOSIGNAL));
      if (n < 0) {
        const e = errno();
        if (!o.reconnect || (e !== ECONNREFUSED && e !== ENOTCONN)) return false; // EAGAIN etc.: dropped
        c.close(fd);
        try {
          open();
        } catch {
          return false;
        }
        n = Number(c.send(fd, address(datagram), datagram.length, MSG_NOSIGNAL));
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
  const ts = new BigInt64Array(2);
  if (libc().clock_gettime(CLOCK_MONOTONIC, address(ts)) !== 0) throw new DatagramError("clock_gettime(CLOCK_MONOTONIC) failed");
  return ts[0] * 1_000_000n + ts[1] / 1000n;
}
