/**
 * Test helpers for the milter side: a scripted MTA over a real socket that
 * sends packets encoded with src/milter and reads the milter's replies, and a
 * serveMilter wrapper that records errors and session ends.
 */
import {
  decodeReply,
  encodeCommands,
  encodePacket,
  type MilterReply,
  type MtaCommand,
  PacketReader,
} from "../../src/milter/index.ts";
import {
  type HandlerFactory,
  type MilterServer,
  type MilterSessionError,
  type ServeOptions,
  type SessionContext,
  type SessionEnd,
  serveMilter,
} from "../../src/milter-side/index.ts";
import { connect } from "../../src/net/connect.ts";
import type { FramedConnection } from "../../src/net/connection.ts";
import type { ConnectionSpec } from "../../src/net/spec.ts";

/** Fails instead of hanging. */
export async function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: Timer | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, rej) => (timer = setTimeout(() => rej(new Error(`${what}: nothing after ${ms} ms`)), ms))),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

export function deferred<T = void>(): { promise: Promise<T>; resolve: (v: T) => void; reject: (e: unknown) => void } {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((a, b) => {
    resolve = a;
    reject = b;
  });
  return { promise, resolve, reject };
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** The MTA end of a milter connection. */
export class ScriptedMta {
  readonly replies: MilterReply[] = [];
  /** Sizes of the data events as received (loopback delivers one small write as one event). */
  readonly chunks: number[] = [];
  readonly closed: Promise<void>;
  private readonly reader = new PacketReader({ maxDataSize: 1 << 24 });
  private taken = 0;
  private waiters: (() => void)[] = [];
  private isClosed = false;

  private constructor(readonly conn: FramedConnection) {
    let done!: () => void;
    this.closed = new Promise((r) => (done = r));
    conn.setHandlers({
      data: (chunk) => {
        this.chunks.push(chunk.length);
        this.reader.push(chunk, (code, payload) => this.replies.push(decodeReply(code, payload)));
        this.wake();
      },
      end: () => void conn.close(),
      close: () => {
        this.isClosed = true;
        done();
        this.wake();
      },
    });
  }

  static async connect(spec: ConnectionSpec): Promise<ScriptedMta> {
    return new ScriptedMta(await connect(spec, { timeoutMs: 5000 }));
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  /** Send commands as one write. */
  send(...cmds: MtaCommand[]): void {
    this.conn.send(encodeCommands(cmds, 1 << 24));
  }

  sendRaw(bytes: Uint8Array): void {
    this.conn.send(bytes);
  }

  /** The next reply not yet taken. */
  async next(ms = 5000): Promise<MilterReply> {
    const end = Date.now() + ms;
    while (this.taken >= this.replies.length) {
      if (this.isClosed) throw new Error(`connection closed; replies so far: ${this.replies.map((r) => r.type).join(",")}`);
      const left = end - Date.now();
      if (left <= 0) throw new Error(`no reply within ${ms} ms; replies so far: ${this.replies.map((r) => r.type).join(",")}`);
      await within(new Promise<void>((r) => this.waiters.push(r)), left, "reply").catch(() => undefined);
    }
    return this.replies[this.taken++];
  }

  /** Types of the next n replies. */
  async nextTypes(n: number, ms = 5000): Promise<string[]> {
    const out: string[] = [];
    for (let i = 0; i < n; i++) out.push((await this.next(ms)).type);
    return out;
  }

  /** Replies not taken yet. */
  rest(): MilterReply[] {
    return this.replies.slice(this.taken);
  }

  async waitClosed(ms = 5000): Promise<void> {
    await within(this.closed, ms, "server closing the connection");
  }

  /** Send QUIT, close our side, wait until both ends are closed. */
  async quit(): Promise<void> {
    this.send({ type: "quit" });
    await this.conn.close();
    await this.waitClosed();
  }
}

export { encodePacket };

/** Full Postfix-like offer (T01): v6, all actions, all protocol bits. */
export const FULL_OFFER: MtaCommand = { type: "optneg", version: 6, actions: 0x1ff, protocol: 0x1fffff };

export interface Recorded {
  server: MilterServer;
  errors: MilterSessionError[];
  ends: { ctx: SessionContext; end: SessionEnd }[];
  endedOnce: Promise<void>;
  connect(): Promise<ScriptedMta>;
  /** Wait until no session runs any more (every handler call settled). */
  idle(ms?: number): Promise<void>;
  close(): Promise<void>;
}

/** serveMilter on 127.0.0.1:0 (or `spec`) recording errors and session ends. */
export async function serve(factory: HandlerFactory, options: ServeOptions = {}, spec: string | ConnectionSpec = "inet:0@[127.0.0.1]"): Promise<Recorded> {
  const errors: MilterSessionError[] = [];
  const ends: { ctx: SessionContext; end: SessionEnd }[] = [];
  let first!: () => void;
  const endedOnce = new Promise<void>((r) => (first = r));
  const server = await serveMilter(spec, factory, {
    ...options,
    onError(e, ctx) {
      errors.push(e);
      options.onError?.(e, ctx);
    },
    onSessionEnd(ctx, end) {
      ends.push({ ctx, end });
      options.onSessionEnd?.(ctx, end);
      first();
    },
  });
  return {
    server,
    errors,
    ends,
    endedOnce,
    connect: () => ScriptedMta.connect(server.spec),
    idle: (ms = 5000) =>
      within(
        (async () => {
          while (server.sessions > 0) await sleep(5);
        })(),
        ms,
        "sessions ending",
      ),
    close: () => server.close(),
  };
}
