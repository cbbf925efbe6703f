// Writing to a Bun socket in order. Bun's write() keeps nothing: it returns
// how many bytes the kernel took, so the rest waits in our queue for `drain`.
// Shared by the smtp-source client and smtp-sink.

export interface Writable {
  write(data: Uint8Array): number;
}

/** Write `buf` now when nothing waits before it; queue what the kernel did not take. */
export function writeOrQueue(sock: Writable, queue: Uint8Array[], buf: Uint8Array): void {
  if (queue.length === 0) {
    const n = sock.write(buf);
    if (n === buf.length || n < 0) return; // n < 0: closed, the close event reports it
    buf = buf.subarray(n > 0 ? n : 0);
  }
  queue.push(buf);
}

/** Write the queue in order until the kernel stops taking bytes; true when it is empty. */
export function flushQueue(sock: Writable, queue: Uint8Array[]): boolean {
  while (queue.length) {
    const b = queue[0];
    const n = sock.write(b);
    if (n < 0) return false;
    if (n < b.length) {
      queue[0] = b.subarray(n);
      return false;
    }
    queue.shift();
  }
  return true;
}
