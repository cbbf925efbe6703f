// One SMTP/LMTP client connection: connect with a time limit (and retries on
// a reset), turn received bytes into replies, write with backpressure,
// STARTTLS. Event-driven (no promise per reply): the dialogue is driven by
// the owner's `reply`/`lost` callbacks (source.ts).
import type { Socket, SocketHandler } from "bun";
import { type Reply, ReplyParser, ReplySyntaxError } from "./reply.ts";
import { flushQueue, writeOrQueue } from "./write-queue.ts";
import { belowFTL } from "./jit.ts";

/** The connection ended before the reply we waited for. */
export class ConnectionLost extends Error {
  constructor(message = "lost connection") {
    super(message);
    this.name = "ConnectionLost";
  }
}

export class ReplyTimeout extends Error {
  constructor(seconds: number) {
    super(`timeout after ${seconds}s`);
    this.name = "ReplyTimeout";
  }
}

export class ConnectError extends Error {
  constructor(public readonly code: string, message: string) {
    super(message);
    this.name = "ConnectError";
  }
}

/** A resolved target: an IP literal or a unix path, ready for Bun.connect. */
export type Endpoint = { kind: "inet"; address: string; port: number } | { kind: "unix"; path: string };

export interface ConnectOptions {
  timeoutMs: number;
  /** Attempts when the server refuses (RST); -C of smtp-source. */
  attempts: number;
}

export interface ConnectionEvents {
  reply(r: Reply): void;
  /** The connection closed or failed while we did not close it ourselves. */
  lost(e: Error): void;
}

const ERRNO_TEXT: Record<string, string> = {
  ECONNREFUSED: "Connection refused",
  ENOENT: "No such file or directory",
  EACCES: "Permission denied",
  ETIMEDOUT: "Connection timed out",
  EHOSTUNREACH: "No route to host",
  ENETUNREACH: "Network is unreachable",
  ECONNRESET: "Connection reset by peer",
  EADDRNOTAVAIL: "Cannot assign requested address",
  EAFNOSUPPORT: "Address family not supported by protocol",
};

function connectError(e: any): ConnectError {
  const code = String(e?.code ?? e?.errno ?? "ERROR");
  return new ConnectError(code, `connect: ${ERRNO_TEXT[code] ?? e?.message ?? code}`);
}

// One handler object for every plain client socket. `open` and
// `connectError` end the connect, so a connect needs no promise reaction or
// closure of its own (with connectError given, Bun does not report the
// rejected promise).
const handlers: SocketHandler<SmtpConnection> = {
  binaryType: "buffer",
  open(s) {
    if (!s.data.upgraded) s.data.onOpen(s);
  },
  connectError(s, e) {
    s.data.onConnectError(e);
  },
  data(s, d) {
    if (!s.data.upgraded) s.data.onData(d as unknown as Buffer); // else: ciphertext after STARTTLS
  },
  drain(s) {
    if (!s.data.upgraded) s.data.onDrain();
  },
  close(s) {
    if (!s.data.upgraded) s.data.onClose();
  },
  end(s) {
    if (!s.data.upgraded) s.data.onClose();
  },
  error(s, e) {
    if (!s.data.upgraded) s.data.onClose(e);
  },
};

// Handlers of the TLS socket after STARTTLS.
const tlsHandlers: SocketHandler<SmtpConnection> = {
  binaryType: "buffer",
  data(s, d) { s.data.onData(d as unknown as Buffer); },
  drain(s) { s.data.onDrain(); },
  close(s) { s.data.onClose(); },
  end(s) { s.data.onClose(); },
  error(s, e) { s.data.onClose(e); },
  handshake(s, ok, err) { s.data.onHandshake(ok, err); },
};

export class SmtpConnection {
  sock!: Socket<SmtpConnection>;
  upgraded = false;
  /**
   * The wait for a reply (or the connect) is bounded by sweeps, not by a clock
   * read per step: arm() starts or restarts the wait, the owner's sweeper
   * calls checkDeadline() every `sweepMs`, and a wait that has seen enough
   * sweeps without a reply has lasted at least `timeoutMs`.
   */
  private waiting = false;
  private sweeps = 0;
  private readonly parser = new ReplyParser();
  /** Where parsed replies go: the owner's `reply`, or with onReplyLine a wrapper that shows each line first. */
  private onParsed: (r: Reply) => void;
  private closed = false;
  private queue: Uint8Array[] = [];
  private tlsDone: ((e?: Error) => void) | undefined;
  private connecting: ((e: ConnectError | undefined, c: SmtpConnection) => void) | undefined;
  /** Call `show` for every reply line received (verbose mode). */
  set onReplyLine(show: (line: string) => void) {
    const reply = this.events.reply;
    this.onParsed = (r) => {
      for (const l of r.lines) show(l);
      reply(r);
    };
  }

  private endpoint!: Endpoint;
  private attemptsLeft = 0;

  private constructor(readonly events: ConnectionEvents, readonly timeoutMs: number) {
    this.onParsed = events.reply; // no closure of its own per connection
  }

  /**
   * Connect (retrying up to `attempts` times while refused) and call `done`
   * once, with the connection or the error. No promise chain or timer of its
   * own per connection: the wait armed here bounds the connect too, checked
   * by the owner's sweeper (checkDeadline) like every reply.
   */
  static open(ep: Endpoint, o: ConnectOptions, events: ConnectionEvents, done: (e: ConnectError | undefined, c: SmtpConnection) => void): SmtpConnection {
    const c = new SmtpConnection(events, o.timeoutMs);
    c.connecting = done;
    c.arm();
    c.endpoint = ep;
    c.attemptsLeft = Math.max(1, o.attempts);
    c.attempt();
    return c;
  }

  private attempt(): void {
    const ep = this.endpoint;
    this.attemptsLeft--;
    const opts: any = ep.kind === "unix"
      ? { unix: ep.path, data: this, socket: handlers }
      : { hostname: ep.address, port: ep.port, data: this, socket: handlers };
    Bun.connect<SmtpConnection>(opts);
  }

  onOpen(sock: Socket<SmtpConnection>): void {
    if (!this.connecting) {
      if (sock !== this.sock) sock.terminate(); // timed out (or aborted) meanwhile
      return;
    }
    this.sock = sock; // Bun sets TCP_NODELAY itself
    this.endConnect(undefined);
  }

  onConnectError(e: unknown): void {
    if (!this.connecting) return;
    const err = connectError(e);
    if (err.code === "ECONNREFUSED" && this.attemptsLeft > 0) return this.attempt();
    this.fail(err);
  }

  private endConnect(e: ConnectError | undefined): void {
    const done = this.connecting!;
    this.connecting = undefined;
    this.waiting = false;
    done(e, this);
  }

  onData(d: Buffer): void {
    if (this.closed) return;
    try {
      this.parser.push(d, this.onParsed);
    } catch (e) {
      this.fail(e instanceof ReplySyntaxError ? e : new ConnectionLost(String(e)));
    }
  }

  onDrain(): void {
    flushQueue(this.sock, this.queue);
  }

  onClose(e?: Error): void {
    if (this.closed || this.connecting) return; // while connecting, connectError (or the deadline) ends it
    this.fail(e ? new ConnectionLost(`lost connection (${e.message})`) : new ConnectionLost());
  }

  /** End the connection because of `e` and tell the owner (the connect callback while connecting). */
  fail(e: Error): void {
    if (this.closed) return;
    this.closed = true;
    if (this.connecting) return this.endConnect(e instanceof ConnectError ? e : connectError(e));
    this.waiting = false;
    try { this.sock?.terminate(); } catch {}
    const t = this.tlsDone;
    this.tlsDone = undefined;
    if (t) t(e);
    else this.events.lost(e);
  }

  /** Start (or restart, on progress) the wait for a reply. */
  arm(): void {
    this.waiting = true;
    this.sweeps = 0;
  }

  /** Nothing is awaited any more. */
  disarm(): void {
    this.waiting = false;
  }

  /**
   * Called by the owner's sweeper every `sweepMs`: fail the connection when
   * the connect or a reply is overdue. The wait began after the first of the
   * `sweeps` counted, so it has lasted more than (sweeps - 1) * sweepMs; it
   * fails once that is at least timeoutMs, and at most 2 sweeps later.
   */
  checkDeadline(sweepMs: number): void {
    if (!this.waiting || (++this.sweeps - 1) * sweepMs < this.timeoutMs) return;
    this.fail(this.connecting ? new ConnectError("ETIMEDOUT", "connect: Connection timed out") : new ReplyTimeout(this.timeoutMs / 1000));
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** Write one protocol step; the buffer must not change until the reply to it arrives. */
  write(buf: Uint8Array): void {
    if (!this.closed) writeOrQueue(this.sock, this.queue, buf);
  }

  /** Switch to TLS (after the server's 220 to STARTTLS); `done` gets an error if the handshake fails. */
  startTls(serverName: string | undefined, done: (e?: Error) => void): void {
    this.tlsDone = done;
    this.upgraded = true;
    try {
      const [, tls] = (this.sock as any).upgradeTLS({
        data: this,
        tls: { rejectUnauthorized: false, ...(serverName ? { serverName } : {}) },
        socket: tlsHandlers,
      });
      this.sock = tls;
    } catch (e) {
      this.fail(new ConnectionLost(`TLS: ${(e as Error).message}`));
    }
  }

  onHandshake(ok: boolean, err: Error | null): void {
    const done = this.tlsDone;
    this.tlsDone = undefined;
    if (!done) return;
    // No certificate check (a load tool against test servers): a verification error is no failure.
    const certOnly = !!err && /CERT|SIGNATURE|ISSUER|SELF_SIGNED|ALTNAME/i.test(String((err as any).code ?? ""));
    if (ok || certOnly) done();
    else {
      this.closed = true;
      try { this.sock.terminate(); } catch {}
      done(new ConnectionLost(`TLS handshake failed: ${err?.message ?? "unknown error"}`));
    }
  }

  /** Close both directions; no `lost` event follows. */
  close(): void {
    this.closed = true;
    this.waiting = false;
    try { this.sock?.end(); } catch {}
  }

  /** Close abruptly (fatal stop); no `lost` event follows (nor the connect callback). */
  abort(): void {
    this.connecting = undefined;
    this.closed = true;
    this.waiting = false;
    try { this.sock?.terminate(); } catch {}
  }
}

belowFTL(SmtpConnection, ReplyParser, handlers, tlsHandlers, { writeOrQueue, flushQueue });
