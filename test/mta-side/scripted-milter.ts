/**
 * A scripted milter for the MTA-side tests: a real listening socket (TCP on
 * 127.0.0.1 or a unix socket) that decodes every packet with src/milter and
 * answers with raw packets chosen by the test. Defaults: the OPTNEG reply is
 * version 6 with the offered actions and protocol 0; every command that
 * expects a reply (per the negotiated NR_* bits) gets `c`.
 */
import type { Socket } from "bun";
import {
  Negotiated,
  PacketReader,
  decodeCommand,
  encodeReplies,
  type MilterReply,
  type MtaCommand,
  type OptnegCommand,
  type OptnegReply,
} from "../../src/milter/index.ts";

/** What the script answers: typed replies (encoded in one write), raw bytes, nothing, or close the socket. */
export type Answer = MilterReply[] | Uint8Array | "close" | "default" | undefined;

export interface MilterSession {
  readonly index: number;
  readonly commands: MtaCommand[];
  /** Data events as received (to look at packet boundaries). */
  readonly chunks: Buffer[];
  offer?: OptnegCommand;
  reply?: OptnegReply;
  negotiated?: Negotiated;
  socket: Socket<any>;
  /** Write raw bytes now (e.g. a delayed reply). */
  write(bytes: Uint8Array | MilterReply[]): void;
  closed: boolean;
}

export interface ScriptOptions {
  unixPath?: string;
  /** OPTNEG reply; default v6, offered actions, protocol 0. Return raw bytes to send something else. */
  negotiate?: (offer: OptnegCommand, s: MilterSession) => OptnegReply | Uint8Array | "close";
  /** Answer to a command; "default"/undefined = `c` when a reply is due. May be async (delay). */
  onCommand?: (cmd: MtaCommand, s: MilterSession) => Answer | Promise<Answer>;
}

export interface ScriptedMilter {
  spec: string;
  sessions: MilterSession[];
  /** All commands of all sessions (without OPTNEG), in order. */
  all(): MtaCommand[];
  stop(): void;
}

const NEVER_ANSWERED = new Set(["macro", "abort", "quit", "quit_nc"]);

export function startScriptedMilter(opts: ScriptOptions = {}): ScriptedMilter {
  const sessions: MilterSession[] = [];
  type Data = { s: MilterSession; reader: PacketReader; chain: Promise<void> };
  const handlers = {
    open(sock: Socket<Data>) {
      sock.setNoDelay?.(true);
      const s: MilterSession = {
        index: sessions.length,
        commands: [],
        chunks: [],
        socket: sock,
        closed: false,
        write(bytes) {
          if (s.closed) return;
          sock.write(Array.isArray(bytes) ? encodeReplies(bytes, 1 << 30) : bytes);
        },
      };
      sessions.push(s);
      sock.data = { s, reader: new PacketReader({ maxDataSize: 1 << 24 }), chain: Promise.resolve() };
    },
    data(sock: Socket<Data>, chunk: Buffer) {
      const d = sock.data;
      d.s.chunks.push(Buffer.from(chunk));
      const cmds: MtaCommand[] = [];
      d.reader.push(chunk, (code, payload) => cmds.push(decodeCommand(code, payload)));
      for (const cmd of cmds) d.chain = d.chain.then(() => handle(d.s, cmd));
    },
    close(sock: Socket<Data>) {
      if (sock.data) sock.data.s.closed = true;
    },
    error() {},
  };

  async function handle(s: MilterSession, cmd: MtaCommand): Promise<void> {
    if (s.closed) return;
    if (cmd.type === "optneg") {
      s.offer = cmd;
      const r = opts.negotiate ? opts.negotiate(cmd, s) : ({ type: "optneg", version: 6, actions: cmd.actions, protocol: 0 } as OptnegReply);
      if (r === "close") return closeSession(s);
      if (r instanceof Uint8Array) return s.write(r);
      s.reply = r;
      s.negotiated = new Negotiated({ version: r.version, actions: r.actions, protocol: r.protocol & 0x1fffff, skip: (r.protocol & 0x400) !== 0, maxDataSize: 65535 });
      s.write([r]);
      return;
    }
    s.commands.push(cmd);
    let a: Answer = opts.onCommand ? await opts.onCommand(cmd, s) : undefined;
    if (s.closed) return;
    if (a === "close") return closeSession(s);
    if (a === undefined || a === "default") {
      if (NEVER_ANSWERED.has(cmd.type) || (s.negotiated && !s.negotiated.expectsReply(cmd.type))) return;
      a = [{ type: "continue" }];
    }
    s.write(a);
  }

  function closeSession(s: MilterSession): void {
    s.closed = true;
    s.socket.end();
  }

  const listener = opts.unixPath
    ? Bun.listen<Data>({ unix: opts.unixPath, socket: handlers })
    : Bun.listen<Data>({ hostname: "127.0.0.1", port: 0, socket: handlers });
  const spec = opts.unixPath ? `unix:${opts.unixPath}` : `inet:${(listener as { port: number }).port}@[127.0.0.1]`;
  return {
    spec,
    sessions,
    all: () => sessions.flatMap((s) => s.commands),
    stop() {
      listener.stop(true);
    },
  };
}

/** Resolve after `ms` milliseconds. */
export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
