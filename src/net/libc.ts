// The libc calls Bun does not offer (bun:ffi), opened once for every user: unix sockets made by us
// (net/descriptors.ts), TCP_QUICKACK (net/tcp-quickack.ts), unix datagrams (runtime/datagram.ts),
// the open-file limit (runtime/limits.ts). Loaded on first use: a tool that needs none of them
// never opens it.
import type { Pointer } from "bun:ffi";

function open() {
  const { dlopen, FFIType } = require("bun:ffi") as typeof import("bun:ffi");
  const { i32, u32, u64, i64, ptr } = FFIType;
  return dlopen("libc.so.6", {
    socket: { args: [i32, i32, i32], returns: i32 },
    bind: { args: [i32, ptr, u32], returns: i32 },
    listen: { args: [i32, i32], returns: i32 },
    connect: { args: [i32, ptr, u32], returns: i32 },
    send: { args: [i32, ptr, u64, i32], returns: i64 },
    setsockopt: { args: [i32, i32, i32, ptr, u32], returns: i32 },
    fcntl: { args: [i32, i32, i32], returns: i32 },
    close: { args: [i32], returns: i32 },
    getrlimit: { args: [i32, ptr], returns: i32 },
    setrlimit: { args: [i32, ptr], returns: i32 },
    clock_gettime: { args: [i32, ptr], returns: i32 },
    __errno_location: { args: [], returns: ptr },
  }).symbols;
}

let symbols: ReturnType<typeof open> | undefined;

/** The libc functions; throws when bun:ffi or libc.so.6 cannot be loaded. */
export function libc(): ReturnType<typeof open> {
  return (symbols ??= open());
}

/** errno of the last failed call on this thread. */
export function errno(): number {
  const { read } = require("bun:ffi") as typeof import("bun:ffi");
  return read.i32(libc().__errno_location() as Pointer, 0);
}

/** The address of a byte array, for a pointer argument. */
export function address(bytes: Parameters<typeof import("bun:ffi").ptr>[0]): Pointer {
  const { ptr } = require("bun:ffi") as typeof import("bun:ffi");
  return ptr(bytes);
}

export const AF_UNIX = 1;

/**
 * A struct sockaddr_un for `path` and the length to pass with it; `abstract`: an abstract-namespace
 * name (a NUL first, none at the end). Undefined when the name does not fit its 108 bytes.
 */
export function unixAddress(path: string, abstract = false): { addr: Uint8Array; len: number } | undefined {
  const name = Buffer.from(path, "utf8");
  if (name.length > 107) return undefined;
  const addr = new Uint8Array(110);
  new DataView(addr.buffer).setUint16(0, AF_UNIX, true);
  addr.set(name, abstract ? 3 : 2);
  return { addr, len: abstract ? 3 + name.length : 2 + name.length + 1 };
}
