// Unix datagrams through libc (src/runtime/datagram.ts), received by python3 as a real peer: a
// path and an abstract-namespace address ("@name", as systemd may hand out in $NOTIFY_SOCKET).
import { expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { monotonicMicroseconds, unixDatagram } from "../../src/runtime/datagram.ts";

async function receiveOne(address: string, send: () => void): Promise<string> {
  const script = [
    "import socket, sys",
    "s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)",
    "a = sys.argv[1]",
    "s.bind('\\0' + a[1:] if a.startswith('@') else a)",
    "s.settimeout(10)",
    "print('bound', flush=True)",
    "print(s.recv(4096).decode(), end='', flush=True)",
  ].join("\n");
  const proc = Bun.spawn(["python3", "-c", script, address], { stdout: "pipe", stderr: "inherit" });
  const reader = proc.stdout.getReader();
  let out = "";
  while (!out.startsWith("bound\n")) {
    const r = await reader.read();
    if (r.done) throw new Error(`receiver gone: ${out}`);
    out += Buffer.from(r.value).toString();
  }
  send();
  for (;;) {
    const r = await reader.read();
    if (r.done) break;
    out += Buffer.from(r.value).toString();
  }
  await proc.exited;
  return out.slice("bound\n".length);
}

test("a datagram reaches a socket path and an abstract address", async () => {
  const dir = mkdtempSync(join(tmpdir(), "mk-dgram-"));
  try {
    const path = join(dir, "s");
    expect(await receiveOne(path, () => expect(unixDatagram(path).send(Buffer.from("READY=1\nSTATUS=x"))).toBe(true))).toBe("READY=1\nSTATUS=x");
    const abstract = `@mk-dgram-${process.pid}`;
    expect(await receiveOne(abstract, () => expect(unixDatagram(abstract).send(Buffer.from("STOPPING=1"))).toBe(true))).toBe("STOPPING=1");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("no receiver: a clear error; the monotonic clock moves forward", () => {
  expect(() => unixDatagram("/nonexistent-mk/notify")).toThrow(/cannot connect to \/nonexistent-mk\/notify/);
  const a = monotonicMicroseconds();
  const b = monotonicMicroseconds();
  expect(b).toBeGreaterThanOrEqual(a);
  expect(a).toBeGreaterThan(0n);
});
