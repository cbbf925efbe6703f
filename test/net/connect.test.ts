import { afterAll, expect, test } from "bun:test";
import { join } from "node:path";
import { connect, ConnectError } from "../../src/net/connect.ts";
import type { FramedConnection } from "../../src/net/connection.ts";
import { listen } from "../../src/net/listener.ts";
import type { ConnectionSpec } from "../../src/net/spec.ts";
import { tcp4, tempDir, within } from "./helpers.ts";

const tmp = tempDir();
afterAll(() => tmp.remove());

async function connectError(spec: ConnectionSpec, timeoutMs: number): Promise<ConnectError> {
  const r = await within(connect(spec, { timeoutMs }).then((c) => c, (e) => e), timeoutMs + 5000, "connect");
  if (!(r instanceof ConnectError)) {
    (r as FramedConnection).destroy?.();
    throw new Error(`expected a ConnectError, got ${r}`);
  }
  return r;
}

test("nobody listening on the port: refused", async () => {
  const l = await listen(tcp4, { connection: () => {} });
  const spec = l.spec;
  await l.close();
  const e = await connectError(spec, 5000);
  expect(e.kind).toBe("refused");
  expect(e.code).toBe("ECONNREFUSED");
  expect(e.message).toBe(`cannot connect to inet:${(spec as { port: number }).port}@[127.0.0.1]: connection refused`);
});

test("missing unix socket file: not-found", async () => {
  const path = join(tmp.path, "absent.sock");
  const e = await connectError({ kind: "unix", path, scheme: "unix" }, 5000);
  expect(e.kind).toBe("not-found");
  expect(e.message).toBe(`cannot connect to unix:${path}: no such socket file`);
});

test("peer whose accept queue is full: the timeout fires", async () => {
  // A listener with backlog 0 that never accepts: once its queue holds one connection the kernel
  // drops further SYNs, so Bun.connect alone would wait for minutes.
  const py = Bun.spawn(
    ["/usr/bin/python3", "-c", "import socket,time\ns=socket.socket()\ns.bind(('127.0.0.1',0))\ns.listen(0)\nprint(s.getsockname()[1],flush=True)\ntime.sleep(60)"],
    { stdout: "pipe", stderr: "inherit" },
  );
  const opened: FramedConnection[] = [];
  try {
    const first = await within(new Response(py.stdout).body!.getReader().read(), 10_000, "python helper");
    const spec: ConnectionSpec = { kind: "inet", port: Number(Buffer.from(first.value!).toString("latin1").trim()), host: "127.0.0.1", scheme: "inet" };
    let timedOut: ConnectError | undefined;
    for (let i = 0; i < 8 && !timedOut; i++) {
      const r = await within(connect(spec, { timeoutMs: 200 }).then((c) => c, (e) => e), 5000, "connect");
      if (r instanceof ConnectError) {
        expect(r.kind).toBe("timeout");
        timedOut = r;
      } else opened.push(r);
    }
    expect(timedOut).toBeDefined();
    expect(timedOut!.message).toBe(`cannot connect to inet:${(spec as { port: number }).port}@[127.0.0.1]: timed out after 200 ms`);
  } finally {
    for (const c of opened) c.destroy();
    py.kill(); // the SYNs still in flight now meet a closed port and fail fast
    await py.exited;
  }
});

test("a 1 ms timeout against a live server: connected or a typed timeout, never a hang", async () => {
  const l = await listen(tcp4, { connection: () => {} });
  try {
    for (let i = 0; i < 20; i++) {
      const r = await within(connect(l.spec, { timeoutMs: 1 }).then((c) => c, (e) => e), 5000, "connect");
      if (r instanceof ConnectError) expect(r.kind).toBe("timeout");
      else {
        expect(r.writable).toBe(true);
        r.destroy();
      }
    }
  } finally {
    await l.close({ waitMs: 0 });
  }
});

test("host name resolved in the spec's family", async () => {
  let accepted = 0;
  const l = await listen(tcp4, { connection: () => void accepted++ });
  try {
    const c = await connect({ kind: "inet", port: l.port!, host: "localhost", scheme: "inet" }, { timeoutMs: 5000 });
    expect(c.remote).toEqual({ family: "IPv4", address: "127.0.0.1", port: l.port! });
    expect(c.peer).toBe(`inet:${l.port}@[127.0.0.1]`);
    c.destroy();
  } finally {
    await l.close({ waitMs: 0 });
  }
});
