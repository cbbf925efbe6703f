// A framed connection: one Bun socket (accepted or outgoing) with
//  - a bounded write queue (Bun's write() keeps nothing: it returns how many bytes the kernel took),
//  - incoming bytes handed, strictly in order, to a pluggable receiver (a packet reader's push()),
//  - per-operation read/write timeouts made with setTimeout (Bun's socket.timeout() ticks in 4 s steps),
//  - half-close (shutdown) and graceful/abrupt close.
// It knows nothing about milter packets: callers build one Uint8Array per protocol step and send() it,
// which is one socket write (Nagle is off, so a step never waits for a delayed ACK).
import type { Socket, SocketHandler } from "bun";
import { formatAddress, formatSpec, type ConnectionSpec, type SocketAddress } from "./spec.ts";
import { quickAck, quickAckFd } from "./tcp-quickack.ts";

export type ConnectionErrorKind =
  | "read-timeout"  // expectReply() armed and no byte arrived in time
  | "write-timeout" // queued bytes made no progress in time
  | "queue-full"    // send() would exceed maxQueued (thrown, the connection stays usable)
  | "closed"        // send()/shutdown() after the connection stopped being writable
  | "receiver"      // the data handler threw (e.g. a malformed packet)
  | "socket";       // the socket failed or closed with bytes still unsent

export class ConnectionError extends Error {
  constructor(readonly kind: ConnectionErrorKind, readonly peer: string, detail: string, options?: { cause?: unknown }) {
    super(`${peer}: ${detail}`, options);
    this.name = "ConnectionError";
  }
}

export interface ConnectionHandlers {
  /** Bytes in arrival order. Wire a reader here: `data: (c) => reader.push(c)`. Throwing closes the connection. */
  data?(chunk: Uint8Array): void;
  /** The peer half-closed (FIN). We can still send. Without this handler the connection is closed gracefully. */
  end?(): void;
  /** Called once, after every received byte was delivered; `error` is set when the connection ended abnormally. */
  close?(error: ConnectionError | undefined): void;
}

export interface ConnectionOptions {
  /** send() returns false and reading from the peer pauses while more than this many bytes are queued. Default 1 MiB. */
  highWaterMark?: number;
  /** send() throws "queue-full" rather than queue beyond this. Default 64 MiB. */
  maxQueued?: number;
  /** Fail with "write-timeout" when queued bytes make no progress for this long. 0 = never (default). */
  writeTimeoutMs?: number;
  handlers?: ConnectionHandlers;
  /** TCP: see FramedConnection.setQuickAck. Default "every-read". */
  quickAck?: "every-read" | "on-request";
}

const COALESCE_LIMIT = 256 * 1024; // queued small batches are merged into one write up to this size

type State = "open" | "shutdown" | "closing" | "closed";

export class FramedConnection {
  readonly highWaterMark: number;
  readonly maxQueued: number;
  bytesRead = 0;
  bytesSent = 0;
  /** Resolves (never rejects) once close was reported, with the error if any. */
  readonly closed: Promise<ConnectionError | undefined>;

  private handlers: ConnectionHandlers;
  private state: State = "open";
  private queue: Uint8Array[] = [];
  private queuedBytes = 0;
  private flushWaiters: { resolve: () => void; reject: (e: ConnectionError) => void }[] = [];
  private pendingShutdown = false;
  private pendingEnd = false;
  private writeTimeoutMs: number;
  private writeTimer: Timer | undefined;
  private readTimer: Timer | undefined;
  private readTimeoutMs = 0;
  private closeTimer: Timer | undefined;
  private userPaused = false;
  private queuePaused = false;
  private socketPaused = false;
  private incoming: Uint8Array[] = [];
  private delivering = false;
  private endPending = false;
  private closePending = false;
  private closeError: ConnectionError | undefined;
  private resolveClosed!: (e: ConnectionError | undefined) => void;
  /** TCP: the descriptor whose TCP_QUICKACK is re-armed (tcp-quickack.ts); -1 = none (unix, or unavailable). */
  private readonly quickAckFd: number = -1;
  private quickAckEveryRead = true;

  /** Use listen() or connect(); this wraps a socket whose `data` is set to this object. */
  constructor(private readonly socket: Socket<any>, spec: ConnectionSpec, side: "accepted" | "outgoing", opts: ConnectionOptions = {}) {
    this.highWaterMark = opts.highWaterMark ?? 1024 * 1024;
    this.maxQueued = Math.max(opts.maxQueued ?? 64 * 1024 * 1024, this.highWaterMark);
    this.writeTimeoutMs = opts.writeTimeoutMs ?? 0;
    this.handlers = { ...opts.handlers };
    this.quickAckEveryRead = opts.quickAck !== "on-request";
    this.closed = new Promise((r) => (this.resolveClosed = r));
    this.spec = spec;
    this.side = side;
    if (spec.kind !== "unix") {
      socket.setNoDelay(true);
      this.quickAckFd = quickAckFd(socket);
      if (side === "accepted") this.names(); // an accepted peer's address is known only from its socket
    }
    this.updateSocketPause();
  }

  // An outgoing connection's addresses are read when first asked for: each of Bun's address getters
  // is a getsockname or getpeername call, and a manager opens one per child per session that rarely
  // needs them. (Once the socket is closed they are gone: then the peer is named by its spec.)
  private readonly spec: ConnectionSpec;
  private readonly side: "accepted" | "outgoing";
  private addresses: { remote: SocketAddress | undefined; local: SocketAddress | undefined; peer: string } | undefined;

  get remote(): SocketAddress | undefined {
    return this.names().remote;
  }

  get local(): SocketAddress | undefined {
    return this.names().local;
  }

  /** Printable peer name for messages: `inet:41234@[127.0.0.1]`, `unix:/run/x.sock`. */
  get peer(): string {
    return this.names().peer;
  }

  private names(): { remote: SocketAddress | undefined; local: SocketAddress | undefined; peer: string } {
    if (this.addresses) return this.addresses;
    const { spec, side, socket } = this;
    if (spec.kind === "unix") {
      // Bun gives no addresses for unix sockets; the listening path is the only name either end has.
      this.addresses = {
        local: { family: "unix", path: side === "accepted" ? spec.path : "" },
        remote: { family: "unix", path: side === "outgoing" ? spec.path : "" },
        peer: side === "outgoing" ? formatSpec(spec) : `client of unix:${spec.path}`,
      };
    } else {
      const remote = tcpAddress(socket.remoteFamily, socket.remoteAddress, socket.remotePort);
      const local = tcpAddress(socket.localFamily, socket.localAddress, socket.localPort);
      this.addresses = { remote, local, peer: remote ? formatAddress(remote) : formatSpec(spec) };
    }
    return this.addresses;
  }

  /** Set or replace handlers. Data received before a data handler exists is kept (reading paused) and delivered now. */
  setHandlers(handlers: ConnectionHandlers): void {
    Object.assign(this.handlers, handlers);
    this.updateSocketPause();
    this.deliver();
  }

  /** Bytes waiting in our queue (not yet accepted by the kernel). */
  get queued(): number {
    return this.queuedBytes;
  }

  /** True while send() is allowed. */
  get writable(): boolean {
    return this.state === "open";
  }

  get isClosed(): boolean {
    return this.state === "closed";
  }

  /**
   * Send one protocol step as ONE socket write. The buffer must not be modified afterwards (it may be queued).
   * Returns false when more than highWaterMark bytes are queued: await flushed() before sending more.
   * A caller that does so never has more than highWaterMark + its largest batch queued; one that
   * ignores it is stopped at maxQueued. While above highWaterMark we also stop reading from the peer.
   * Throws ConnectionError "closed" when not writable, "queue-full" when the bound would be exceeded.
   */
  send(batch: Uint8Array): boolean {
    if (this.state !== "open") throw new ConnectionError("closed", this.peer, `cannot send: connection is ${this.state}`);
    if (batch.length === 0) return this.queuedBytes <= this.highWaterMark;
    if (this.queue.length === 0) {
      const n = this.socket.write(batch);
      if (n < 0) throw new ConnectionError("closed", this.peer, "cannot send: socket is closed");
      this.bytesSent += n;
      if (n === batch.length) return true;
      batch = batch.subarray(n);
    } else if (this.queuedBytes + batch.length > this.maxQueued) {
      throw new ConnectionError("queue-full", this.peer, `write queue full (${this.queuedBytes} bytes queued, ${batch.length} more, limit ${this.maxQueued})`);
    }
    this.queue.push(batch);
    this.queuedBytes += batch.length;
    if (!this.writeTimer) this.armWriteTimer();
    if (this.queuedBytes > this.highWaterMark && !this.queuePaused) {
      this.queuePaused = true; // stop reading: the peer's requests are what make our replies
      this.updateSocketPause();
    }
    return this.queuedBytes <= this.highWaterMark;
  }

  /** Resolves when the write queue is empty; rejects with the ConnectionError if the connection failed before that. */
  flushed(): Promise<void> {
    if (this.state === "closed" && this.closeError) return Promise.reject(this.closeError);
    if (this.queue.length === 0) return Promise.resolve();
    return new Promise((resolve, reject) => this.flushWaiters.push({ resolve, reject }));
  }

  /** Change the write timeout (e.g. command vs content timeout). 0 = off. */
  setWriteTimeout(ms: number): void {
    this.writeTimeoutMs = ms;
    clearTimeout(this.writeTimer);
    this.writeTimer = undefined;
    if (this.queue.length > 0) this.armWriteTimer();
  }

  /**
   * Start a read timeout: fail with "read-timeout" unless data arrives within timeoutMs. Every chunk
   * that arrives restarts it (a per-read timeout, as Postfix and Sendmail apply theirs); replyReceived() stops it.
   */
  expectReply(timeoutMs: number): void {
    this.readTimeoutMs = timeoutMs;
    this.armReadTimer();
  }

  replyReceived(): void {
    this.readTimeoutMs = 0;
    clearTimeout(this.readTimer);
    this.readTimer = undefined;
  }

  /**
   * TCP: when to acknowledge what we read at once (TCP_QUICKACK) rather than after Linux's ~40 ms
   * delayed-ACK timer, which a peer with Nagle on waits for before its next small write.
   * "every-read" (default) costs one pure ACK packet per read; "on-request": only when
   * acknowledge() is called, for a protocol that knows when no reply of ours (which carries the
   * ACK) follows the bytes just read.
   */
  setQuickAck(mode: "every-read" | "on-request"): void {
    this.quickAckEveryRead = mode === "every-read";
  }

  /** TCP: acknowledge the bytes read so far now (and the next segment too). No-op on unix sockets. */
  acknowledge(): void {
    if (this.quickAckFd >= 0) quickAck(this.quickAckFd);
  }

  /** Stop delivering data (and reading from the socket) until resumeReading(): for a consumer that works asynchronously. */
  pauseReading(): void {
    this.userPaused = true;
    this.updateSocketPause();
  }

  resumeReading(): void {
    this.userPaused = false;
    this.updateSocketPause();
    this.deliver();
  }

  /** Half-close: send FIN once the queue is flushed; we can still receive. */
  shutdown(): void {
    if (this.state !== "open") return;
    this.state = "shutdown";
    if (this.queue.length === 0) this.socket.shutdown();
    else this.pendingShutdown = true;
  }

  /** Graceful close: flush the queue (at most flushTimeoutMs, then destroy), then close both directions. */
  close(flushTimeoutMs = 30_000): Promise<ConnectionError | undefined> {
    if (this.state === "open" || this.state === "shutdown") {
      this.state = "closing";
      if (this.queue.length === 0) this.socket.end();
      else {
        this.pendingEnd = true;
        this.closeTimer = setTimeout(
          () => this.destroy(new ConnectionError("write-timeout", this.peer, `close: ${this.queuedBytes} bytes not flushed within ${flushTimeoutMs} ms`)),
          flushTimeoutMs,
        );
      }
    }
    return this.closed;
  }

  /** Abort at once (RST), dropping queued bytes. */
  destroy(error?: ConnectionError): void {
    if (this.state === "closed") return;
    if (error && !this.closeError) this.closeError = error;
    this.dropQueue();
    this.state = "closing";
    this.socket.terminate();
  }

  // ---- socket events (see socketHandlers) ----

  onSocketData(chunk: Uint8Array): void {
    if (this.quickAckEveryRead && this.quickAckFd >= 0) quickAck(this.quickAckFd); // Linux left quick-ACK mode with this read
    this.bytesRead += chunk.length;
    if (this.readTimer) this.armReadTimer();
    this.incoming.push(chunk);
    this.deliver();
    if (!this.handlers.data && !this.socketPaused) this.updateSocketPause(); // nobody takes it yet: stop reading
  }

  onSocketDrain(): void {
    this.flushQueue();
  }

  onSocketEnd(): void {
    this.endPending = true;
    this.deliver();
  }

  onSocketClose(error?: Error): void {
    if (this.state === "closed") return;
    if (error && !this.closeError) this.closeError = new ConnectionError("socket", this.peer, error.message, { cause: error });
    if (this.queuedBytes > 0 && !this.closeError) {
      this.closeError = new ConnectionError("socket", this.peer, `connection closed with ${this.queuedBytes} bytes not sent`);
    }
    this.state = "closed";
    this.dropQueue();
    this.replyReceived();
    clearTimeout(this.closeTimer);
    this.endPending = false;
    this.closePending = true;
    this.deliver();
  }

  // ---- internals ----

  private flushQueue(): void {
    const q = this.queue;
    let progressed = false;
    while (q.length > 0) {
      let count = 1;
      let size = q[0].length;
      while (count < q.length && size + q[count].length <= COALESCE_LIMIT) size += q[count++].length;
      const buf = count === 1 ? q[0] : concat(q, count, size);
      const n = this.socket.write(buf);
      if (n < 0) return; // closed: the close event follows
      if (n > 0) progressed = true;
      this.bytesSent += n;
      this.queuedBytes -= n;
      if (n < size) {
        q.splice(0, count, buf.subarray(n));
        break;
      }
      q.splice(0, count);
    }
    if (q.length > 0) {
      if (progressed) this.armWriteTimer();
      return;
    }
    clearTimeout(this.writeTimer);
    this.writeTimer = undefined;
    if (this.queuePaused) {
      this.queuePaused = false;
      this.updateSocketPause();
    }
    const waiters = this.flushWaiters;
    this.flushWaiters = [];
    for (const w of waiters) w.resolve();
    if (this.pendingShutdown) {
      this.pendingShutdown = false;
      if (this.state === "shutdown") this.socket.shutdown();
    }
    if (this.pendingEnd) {
      this.pendingEnd = false;
      clearTimeout(this.closeTimer);
      this.socket.end();
    }
  }

  private dropQueue(): void {
    this.queue = [];
    this.queuedBytes = 0;
    this.queuePaused = false;
    clearTimeout(this.writeTimer);
    this.writeTimer = undefined;
    const waiters = this.flushWaiters;
    if (waiters.length === 0) return; // the usual case: no Error (and its stack trace) for nobody
    this.flushWaiters = [];
    const err = this.closeError ?? new ConnectionError("closed", this.peer, "connection closed before the queue was flushed");
    for (const w of waiters) w.reject(err);
  }

  /** Hand buffered chunks to the data handler in order; then report end and close, never before the data. */
  private deliver(): void {
    if (this.delivering) return; // a handler called back into us; the outer loop continues
    this.delivering = true;
    try {
      while (this.incoming.length > 0 && this.handlers.data && !this.userPaused) {
        const chunk = this.incoming.shift()!;
        try {
          this.handlers.data(chunk);
        } catch (e) {
          this.incoming = [];
          this.destroy(new ConnectionError("receiver", this.peer, `data handler failed: ${(e as Error)?.message ?? e}`, { cause: e }));
        }
      }
      if (this.userPaused) return; // end and close wait for resumeReading(), like data
      if (this.incoming.length > 0) {
        if (this.state !== "closed") return; // no data handler yet
        this.incoming = []; // closed and no data handler was ever set: nobody to give it to
      }
      if (this.endPending) {
        this.endPending = false;
        try {
          if (this.handlers.end) this.handlers.end();
          else void this.close();
        } catch (e) {
          this.destroy(new ConnectionError("receiver", this.peer, `end handler failed: ${(e as Error)?.message ?? e}`, { cause: e }));
        }
      }
      if (this.closePending) {
        this.closePending = false;
        this.incoming = [];
        this.resolveClosed(this.closeError);
        this.handlers.close?.(this.closeError);
      }
    } finally {
      this.delivering = false;
    }
  }

  private updateSocketPause(): void {
    if (this.state === "closed") return;
    // Without a data handler we pause only once data waits for one: an accepted connection gets
    // its handler in the same tick, and pausing then resuming it would cost two epoll_ctl calls.
    const pause = this.userPaused || this.queuePaused || (!this.handlers.data && this.incoming.length > 0);
    if (pause === this.socketPaused) return;
    this.socketPaused = pause;
    if (pause) this.socket.pause();
    else this.socket.resume();
  }

  private armWriteTimer(): void {
    clearTimeout(this.writeTimer);
    this.writeTimer = undefined;
    if (this.writeTimeoutMs <= 0) return;
    const ms = this.writeTimeoutMs;
    this.writeTimer = setTimeout(() => {
      this.destroy(new ConnectionError("write-timeout", this.peer, `${this.queuedBytes} queued bytes made no progress for ${ms} ms`));
    }, ms);
  }

  private armReadTimer(): void {
    clearTimeout(this.readTimer);
    const ms = this.readTimeoutMs;
    this.readTimer = setTimeout(() => {
      this.readTimer = undefined;
      this.destroy(new ConnectionError("read-timeout", this.peer, `no data within ${ms} ms`));
    }, ms);
  }
}

function concat(q: Uint8Array[], count: number, size: number): Uint8Array {
  const out = new Uint8Array(size);
  let off = 0;
  for (let i = 0; i < count; i++) {
    out.set(q[i], off);
    off += q[i].length;
  }
  return out;
}

function tcpAddress(family: string | undefined, address: string | undefined, port: number | undefined): SocketAddress | undefined {
  if (!address || port === undefined) return undefined;
  // A dual-stack `::` listener sees IPv4 clients as ::ffff:a.b.c.d; report them as IPv4.
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped) return { family: "IPv4", address: mapped[1], port };
  return { family: family === "IPv6" || address.includes(":") ? "IPv6" : "IPv4", address, port };
}

/** Event wiring shared by listen() and connect(); `open` differs and is added by them. */
export const connectionSocketHandlers: Omit<SocketHandler<FramedConnection | undefined>, "open"> = {
  data(s, chunk) {
    s.data?.onSocketData(chunk);
  },
  drain(s) {
    s.data?.onSocketDrain();
  },
  end(s) {
    s.data?.onSocketEnd();
  },
  close(s, error) {
    s.data?.onSocketClose(error);
  },
  error(s, error) {
    // Only reached when one of our handlers threw: treat as a failed socket.
    s.data?.destroy(new ConnectionError("socket", s.data.peer, error.message, { cause: error }));
  },
};
