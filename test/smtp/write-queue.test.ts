// The ordered write helpers of the SMTP tools, against a socket that takes a
// set number of bytes per write (as the kernel does when its buffer fills).
import { expect, test } from "bun:test";
import { flushQueue, writeOrQueue } from "../../src/smtp/write-queue.ts";

/** Takes at most `room` bytes per write; -1 once closed. */
class Taker {
  got: number[] = [];
  constructor(public room: number, public closed = false) {}
  write(b: Uint8Array): number {
    if (this.closed) return -1;
    const n = Math.min(this.room, b.length);
    this.got.push(...b.subarray(0, n));
    return n;
  }
}

const bytes = (from: number, n: number) => Uint8Array.from({ length: n }, (_, i) => from + i);

test("a write the kernel takes whole queues nothing", () => {
  const s = new Taker(100);
  const q: Uint8Array[] = [];
  writeOrQueue(s, q, bytes(0, 10));
  expect(q).toEqual([]);
  expect(s.got).toEqual([...bytes(0, 10)]);
});

test("the rest of a partial write, and every later write, wait in order; flushing sends them in order", () => {
  const s = new Taker(4);
  const q: Uint8Array[] = [];
  writeOrQueue(s, q, bytes(0, 10)); // 4 taken, 6 queued
  writeOrQueue(s, q, bytes(10, 5)); // queue not empty: not written, queued behind
  expect(s.got).toEqual([0, 1, 2, 3]);
  expect(q.map((b) => [...b])).toEqual([[4, 5, 6, 7, 8, 9], [10, 11, 12, 13, 14]]);
  expect(flushQueue(s, q)).toBe(false); // 4 more taken, the kernel is full again
  expect(q.map((b) => [...b])).toEqual([[8, 9], [10, 11, 12, 13, 14]]);
  s.room = 1000;
  expect(flushQueue(s, q)).toBe(true);
  expect(q).toEqual([]);
  expect(s.got).toEqual([...bytes(0, 15)]);
});

test("a write of nothing taken queues the whole buffer", () => {
  const s = new Taker(0);
  const q: Uint8Array[] = [];
  writeOrQueue(s, q, bytes(0, 3));
  expect(q.map((b) => [...b])).toEqual([[0, 1, 2]]);
});

test("a closed socket: nothing is queued, and a flush stops without emptying the queue", () => {
  const s = new Taker(10, true);
  const q: Uint8Array[] = [];
  writeOrQueue(s, q, bytes(0, 3));
  expect(q).toEqual([]);
  q.push(bytes(0, 3));
  expect(flushQueue(s, q)).toBe(false);
  expect(q.length).toBe(1);
});
