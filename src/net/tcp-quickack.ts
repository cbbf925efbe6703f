/**
 * TCP_QUICKACK on the TCP sockets we read from. A peer that answers with two
 * small writes and Nagle on (libmilter's `h` then `c`, Postfix's macros then command) holds the
 * second until we acknowledge the first, and Linux delays that ACK by ~40 ms when we have nothing
 * to send. Linux also leaves quick-ACK mode by itself, so it is set again after a read: one
 * setsockopt through bun:ffi. When an ACK is pending it goes out at once as a packet of its own,
 * so the milter protocol layers ask only where no reply of ours (which carries the ACK) follows
 * (FramedConnection.setQuickAck("on-request") + acknowledge()).
 *
 * Bun's Socket has an `fd` getter (not in bun-types) on accepted and outgoing sockets alike.
 */

import { address, libc } from "./libc.ts";

const IPPROTO_TCP = 6;
const TCP_QUICKACK = 12;

type SetSockOpt = (fd: number, level: number, name: number, value: number, size: number) => number;

let setsockopt: SetSockOpt | null | undefined; // undefined: not tried yet; null: unavailable
let one: Int32Array | undefined;
let onePtr = 0;
let unavailable: string | undefined;
let reporter: ((why: string) => void) | undefined;

function fail(why: string): -1 {
  if (unavailable === undefined) {
    unavailable = why;
    reporter?.(why);
  }
  return -1;
}

function load(): SetSockOpt | null {
  try {
    one = new Int32Array([1]); // kept referenced: its address is passed on every call
    onePtr = address(one);
    return libc().setsockopt as unknown as SetSockOpt;
  } catch (e) {
    fail(`bun:ffi setsockopt unavailable: ${(e as Error)?.message ?? e}`);
    return null;
  }
}

let checked = false;

/**
 * The descriptor of a connected TCP socket for quickAck(), or -1 when it cannot be had (then
 * quickAckUnavailable() says why). The first one is tried once (a new connection starts in
 * quick-ACK mode anyway: Linux leaves it after the first segments).
 */
export function quickAckFd(socket: unknown): number {
  if (setsockopt === undefined) setsockopt = load();
  if (!setsockopt) return fail(unavailable ?? "bun:ffi setsockopt unavailable");
  const fd = (socket as { fd?: unknown }).fd;
  if (typeof fd !== "number" || fd < 0) return fail("this Bun's Socket has no file descriptor");
  if (!checked) {
    if (setsockopt(fd, IPPROTO_TCP, TCP_QUICKACK, onePtr, 4) !== 0) return fail("setsockopt(TCP_QUICKACK) failed");
    checked = true;
  }
  return fd;
}

/** Re-arm quick-ACK mode after a read on a descriptor from quickAckFd(). */
export function quickAck(fd: number): void {
  setsockopt!(fd, IPPROTO_TCP, TCP_QUICKACK, onePtr, 4);
}

/** Why some TCP socket runs without TCP_QUICKACK (peers writing twice with Nagle on then wait ~40 ms), or undefined. */
export function quickAckUnavailable(): string | undefined {
  return unavailable;
}

/** Call `report` once, the first time a TCP socket cannot get TCP_QUICKACK (so a service can say so once). */
export function onQuickAckUnavailable(report: (why: string) => void): void {
  reporter = report;
  if (unavailable !== undefined) report(unavailable);
}
