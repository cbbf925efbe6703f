import { afterAll, describe, expect, test } from "bun:test";
import { existsSync, linkSync, readFileSync, renameSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { connect } from "../../src/net/connect.ts";
import type { FramedConnection } from "../../src/net/connection.ts";
import { listen, ListenError, type Listener } from "../../src/net/listener.ts";
import { formatSpec, parseSpec, type ConnectionSpec } from "../../src/net/spec.ts";
import { tcp4, tcp6, tempDir, unixIn, within } from "./helpers.ts";

const tmp = tempDir();
afterAll(() => tmp.remove());

/** Echo server: every accepted connection sends back what it receives. */
function echo(): { connection(c: FramedConnection): void } {
  return { connection: (c) => c.setHandlers({ data: (chunk) => void c.send(chunk) }) };
}

/** Connect, send `text`, wait for the echo. */
async function roundTrip(spec: ConnectionSpec, text: string): Promise<string> {
  const conn = await connect(spec, { timeoutMs: 5000 });
  try {
    let got = "";
    const done = new Promise<void>((resolve) =>
      conn.setHandlers({
        data(chunk) {
          got += Buffer.from(chunk).toString("latin1");
          if (got.length >= text.length) resolve();
        },
      }),
    );
    conn.send(Buffer.from(text, "latin1"));
    await within(done, 5000, "echo");
    return got;
  } finally {
    conn.destroy();
  }
}

async function listenError(p: Promise<unknown>): Promise<ListenError> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(ListenError);
    return e as ListenError;
  }
  throw new Error("listen succeeded but should have failed");
}

/** A socket file that nobody listens on, as left behind by a killed daemon. */
async function staleSocket(path: string): Promise<void> {
  const l = await listen({ kind: "unix", path, scheme: "unix" }, echo());
  linkSync(path, `${path}.tmp`);
  await l.close(); // unlinks `path`; the hard link keeps the socket inode
  renameSync(`${path}.tmp`, path);
}

describe("TCP", () => {
  test("127.0.0.1 with port 0: real port, bound spec, echo, addresses", async () => {
    let accepted: FramedConnection | undefined;
    const l = await listen(tcp4, { connection: (c) => { accepted = c; echo().connection(c); } });
    try {
      expect(l.port).toBeGreaterThan(0);
      expect(l.spec).toEqual({ ...tcp4, port: l.port! });
      expect(formatSpec(l.spec)).toBe(`inet:${l.port}@[127.0.0.1]`);
      expect(await roundTrip(l.spec, "hello\x00\xff")).toBe("hello\x00\xff");
      expect(accepted!.local).toEqual({ family: "IPv4", address: "127.0.0.1", port: l.port! });
      expect(accepted!.remote).toMatchObject({ family: "IPv4", address: "127.0.0.1" });
    } finally {
      await l.close({ waitMs: 0 });
    }
  });

  test("::1", async () => {
    const l = await listen(tcp6, echo());
    try {
      expect(formatSpec(l.spec)).toBe(`inet6:${l.port}@[::1]`);
      expect(await roundTrip(l.spec, "six")).toBe("six");
    } finally {
      await l.close({ waitMs: 0 });
    }
  });

  test("port in use gives a typed EADDRINUSE with a one-line message", async () => {
    const first = await listen(tcp4, echo());
    try {
      const e = await listenError(listen(first.spec, echo()));
      expect(e.code).toBe("EADDRINUSE");
      expect(e.message).toBe(`cannot listen on inet:${first.port}@[127.0.0.1]: address already in use`);
      expect(await roundTrip(first.spec, "still here")).toBe("still here");
    } finally {
      await first.close({ waitMs: 0 });
    }
  });

  test("inet:PORT@localhost resolves to IPv4", async () => {
    const l = await listen(parseSpec("inet:0@localhost", { allowPortZero: true }), echo());
    try {
      expect(await roundTrip({ kind: "inet", port: l.port!, host: "127.0.0.1", scheme: "inet" }, "name")).toBe("name");
    } finally {
      await l.close({ waitMs: 0 });
    }
  });

  test("close({waitMs}) waits for open connections, then destroys them", async () => {
    const l = await listen(tcp4, echo());
    const c = await connect(l.spec, { timeoutMs: 5000 });
    c.setHandlers({});
    await within((async () => { while (l.connections.size === 0) await Bun.sleep(5); })(), 5000, "accept");
    await l.close({ waitMs: 100 });
    const err = await within(c.closed, 5000, "client close"); // destroyed = reset
    expect(err?.kind).toBe("socket");
    expect(err?.message).toContain("ECONNRESET");
    expect(l.connections.size).toBe(0);
    const e = await connect(l.spec, { timeoutMs: 2000 }).catch((e) => e);
    expect(e.kind).toBe("refused");
  });
});

describe("unix sockets", () => {
  test("listen, echo, default mode 0660, removed on close", async () => {
    const spec = unixIn(tmp.path, "a.sock");
    const l = await listen(spec, echo());
    try {
      const st = statSync(spec.path);
      expect(st.isSocket()).toBe(true);
      expect(st.mode & 0o777).toBe(0o660);
      expect(l.port).toBeUndefined();
      expect(l.spec).toEqual(spec);
      expect(await roundTrip(spec, "unix")).toBe("unix");
    } finally {
      await l.close({ waitMs: 0 });
    }
    expect(existsSync(spec.path)).toBe(false);
  });

  test("custom mode", async () => {
    const spec = unixIn(tmp.path, "mode.sock");
    const l = await listen(spec, echo(), { mode: 0o600 });
    expect(statSync(spec.path).mode & 0o777).toBe(0o600);
    await l.close();
  });

  test.if(process.getuid?.() === 0)("group change to mail (as root)", async () => {
    const spec = unixIn(tmp.path, "group.sock");
    const mailGid = Number(readFileSync("/etc/group", "latin1").split("\n").find((l) => l.startsWith("mail:"))!.split(":")[2]);
    const l = await listen(spec, echo(), { group: "mail" });
    expect(statSync(spec.path).gid).toBe(mailGid);
    await l.close();
    const l2 = await listen(spec, echo(), { group: mailGid });
    expect(statSync(spec.path).gid).toBe(mailGid);
    await l2.close();
  });

  test("unknown group is a typed error and leaves no socket behind", async () => {
    const spec = unixIn(tmp.path, "nogroup.sock");
    const e = await listenError(listen(spec, echo(), { group: "no-such-group-mk" }));
    expect(e.code).toBe("EINVAL");
    expect(e.message).toBe(`cannot listen on unix:${spec.path}: unknown group "no-such-group-mk"`);
    expect(existsSync(spec.path)).toBe(false);
  });

  test("missing parent directory is created", async () => {
    const spec = unixIn(join(tmp.path, "run", "milterkit"), "m.sock");
    const l = await listen(spec, echo());
    expect(statSync(join(tmp.path, "run", "milterkit")).isDirectory()).toBe(true);
    expect(await roundTrip(spec, "dir")).toBe("dir");
    await l.close();
  });

  test("removeOnClose false keeps the file", async () => {
    const spec = unixIn(tmp.path, "keep.sock");
    const l = await listen(spec, echo(), { removeOnClose: false });
    await l.close();
    expect(statSync(spec.path).isSocket()).toBe(true);
    // and it is stale now, so the next listen reclaims it
    const l2 = await listen(spec, echo());
    expect(await roundTrip(spec, "again")).toBe("again");
    await l2.close();
  });

  test("stale socket file is reclaimed", async () => {
    const spec = unixIn(tmp.path, "stale.sock");
    await staleSocket(spec.path);
    expect(statSync(spec.path).isSocket()).toBe(true);
    expect((await connect(spec, { timeoutMs: 2000 }).catch((e) => e)).kind).toBe("refused");
    const l = await listen(spec, echo());
    expect(await roundTrip(spec, "reclaimed")).toBe("reclaimed");
    await l.close();
  });

  test("stale socket with removeOnCreate false is refused and left alone", async () => {
    const spec = unixIn(tmp.path, "stale2.sock");
    await staleSocket(spec.path);
    const ino = statSync(spec.path).ino;
    const e = await listenError(listen(spec, echo(), { removeOnCreate: false }));
    expect(e.code).toBe("EADDRINUSE");
    expect(statSync(spec.path).ino).toBe(ino);
  });

  test("live socket gives EADDRINUSE and keeps working", async () => {
    const spec = unixIn(tmp.path, "live.sock");
    const first = await listen(spec, echo());
    try {
      const e = await listenError(listen(spec, echo()));
      expect(e.code).toBe("EADDRINUSE");
      expect(e.message).toStartWith(`cannot listen on unix:${spec.path}: address already in use`);
      expect(await roundTrip(spec, "alive")).toBe("alive");
    } finally {
      await first.close({ waitMs: 0 });
    }
  });

  test("live socket with a full accept queue is not mistaken for a stale one", async () => {
    // Bun reports ECONNREFUSED when the accept queue of a unix socket is full; the kernel's
    // listening-socket table must still keep us from deleting it.
    const path = join(tmp.path, "full.sock");
    const py = Bun.spawn(
      ["/usr/bin/python3", "-c", `import socket,sys,time\ns=socket.socket(socket.AF_UNIX)\ns.bind(sys.argv[1])\ns.listen(0)\nc=socket.socket(socket.AF_UNIX)\nc.connect(sys.argv[1])\nprint("ready",flush=True)\ntime.sleep(30)`, path],
      { stdout: "pipe", stderr: "inherit" },
    );
    try {
      const line = await within(new Response(py.stdout).body!.getReader().read(), 10_000, "python helper");
      expect(Buffer.from(line.value!).toString("latin1")).toStartWith("ready");
      const e = await listenError(listen({ kind: "unix", path, scheme: "unix" }, echo()));
      expect(e.code).toBe("EADDRINUSE");
      expect(statSync(path).isSocket()).toBe(true);
    } finally {
      py.kill();
      await py.exited;
    }
  });

  test("a regular file is never deleted", async () => {
    const path = join(tmp.path, "not-a-socket");
    writeFileSync(path, "precious");
    const e = await listenError(listen({ kind: "unix", path, scheme: "unix" }, echo()));
    expect(e.code).toBe("ENOTSOCK");
    expect(e.message).toBe(`cannot listen on unix:${path}: ${path} exists and is not a socket; refusing to remove it`);
    expect(readFileSync(path, "latin1")).toBe("precious");
  });

  test("accepted unix connection knows the listening path", async () => {
    const spec = unixIn(tmp.path, "addr.sock");
    let accepted: FramedConnection | undefined;
    const l = await listen(spec, { connection: (c) => { accepted = c; echo().connection(c); } });
    expect(await roundTrip(spec, "x")).toBe("x");
    expect(accepted!.local).toEqual({ family: "unix", path: spec.path });
    expect(accepted!.remote).toEqual({ family: "unix", path: "" });
    await l.close({ waitMs: 0 });
  });
});
