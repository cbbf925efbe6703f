// The smtp-source load engine: N parallel sessions share a pool of M
// messages. Each session speaks SMTP or LMTP the way Postfix's smtp-source
// does (one command, one reply), or with -P sends every group of commands
// RFC 2920 allows in one write. Every session is a small state machine driven
// by replies: a queue of the replies still expected tells which step a reply
// answers, in lock-step and pipelined mode alike.
import { ipFamily } from "../net/ip.ts";
import { type ConnectionEvents, type ConnectOptions, type Endpoint, ReplyTimeout, SmtpConnection } from "./client.ts";
import {
  ContentBuilder, currentDate, defaultBody, fileMessage, generatedBody, headerTemplate, recipients,
} from "./message.ts";
import { ehloOffers, type Reply, ReplySyntaxError, replyText } from "./reply.ts";
import type { SourceOptions } from "./source-options.ts";
import { formatTarget } from "./target.ts";
import { belowFTL } from "./jit.ts";
import { type RunSummary, Samples, summarizeLatency } from "./stats.ts";

export interface SourceIO {
  /** stdout (the -c counter). */
  out(s: string): void;
  /** stderr (verbose dialogue, warnings, fatal errors). */
  err(s: string): void;
  /** Program name prefixed to stderr lines. */
  prog: string;
}

/** The run cannot go on: printed as "fatal: <message>", exit status 1. */
export class FatalError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "FatalError";
  }
}

// The step a reply answers. Numbers, not strings: the reply dispatch is the
// hottest code of a run and a switch on small integers compiles to a jump.
const BANNER = 0, HELO = 1, EHLO = 2, STARTTLS = 3, MAIL = 4, RCPT = 5, DATA = 6, DOT = 7, EMPTYDOT = 8, RSET = 9, QUIT = 10;
type Stage = number;

// What each step is called in messages (Postfix's smtp-source wording), by stage.
const REJECTED = [
  "rejected at server banner", "HELO rejected", "EHLO rejected", "STARTTLS rejected", "sender rejected", "recipient rejected",
  "data rejected", "end of data rejected", "end of data rejected", "RSET rejected", "QUIT rejected",
];
const SENDING = [
  "receiving the server banner", "sending HELO", "sending EHLO", "sending STARTTLS", "sending sender", "sending recipient",
  "sending DATA command", "sending message", "sending message", "sending RSET", "sending QUIT",
];

const latin1 = (s: string) => Buffer.from(s, "latin1");
const QUIT_CMD = latin1("QUIT\r\n");
const RSET_CMD = latin1("RSET\r\n");
const DATA_CMD = latin1("DATA\r\n");
const DOT_CMD = latin1(".\r\n");
const STARTTLS_CMD = latin1("STARTTLS\r\n");
const EMPTY = Buffer.alloc(0);
const is2 = (c: number) => c >= 200 && c < 300;
const is3 = (c: number) => c >= 300 && c < 400;

/** What was written after a message's content in the same write (pipelining). */
type Tail = "none" | "envelope" | "quit";

class Session {
  private conn: SmtpConnection | undefined;
  // The replies still expected, in order: expected[head..tail). Reset to
  // empty by moving the indices, so the array is never shrunk or regrown.
  private readonly expected: Stage[] = [];
  private head = 0;
  private tail = 0;
  private pipelining = false;
  private tlsActive = false;
  /** The last EHLO/LHLO reply offered PIPELINING. */
  private offersPipelining = false;
  private readonly builder: ContentBuilder;
  private readonly headers: (n: number) => string;
  private finished = false;
  // The message in flight.
  private msg = -1;
  private msgCounted = true;
  private started = 0;
  private rcpts: string[] = [];
  private rcptIdx = 0;
  private accepted = 0;
  private mailOk = true;
  private failKey = "";
  private dotLeft = 0;
  private dotBad = "";
  private size = 0;
  // The message whose envelope went out behind the current content (pipelining).
  private next = -1;
  private nextRcpts: string[] = [];
  private nextStarted = 0;
  private after: Tail = "none";
  private readonly events = {
    reply: (r: Reply) => this.onReply(r),
    lost: (e: Error) => this.onLost(e),
  };

  constructor(private readonly src: SmtpSource, private readonly id: number, private readonly done: () => void) {
    this.builder = src.newBuilder();
    this.headers = src.headerMaker(id);
  }

  // ---- lifecycle ----------------------------------------------------------------

  /** Claim the next message and open a connection for it. */
  start(): void {
    if (this.src.stopped) return this.finish();
    this.msg = this.src.claim();
    if (this.msg < 0) return this.finish();
    this.msgCounted = false;
    this.connect();
  }

  finish(): void {
    if (this.finished) return;
    this.finished = true;
    if (this.conn) this.src.forget(this.conn);
    this.conn = undefined;
    this.done();
  }

  private connect(): void {
    this.started = performance.now();
    this.head = this.tail = 0;
    this.pipelining = false;
    this.offersPipelining = false;
    this.tlsActive = false;
    this.src.openConnection(this.events, this.connected);
  }

  // Bound once: a connect allocates no callback of its own. A bound method,
  // not an arrow, so that it stays below the FTL like the other methods (jit.ts).
  private readonly connected = this.onConnected.bind(this);

  private onConnected(e: Error | undefined, conn: SmtpConnection): void {
    const src = this.src;
    src.connectEnded(e, conn);
    if (src.stopped) {
      conn.abort();
      return this.finish();
    }
    if (e) {
      this.countFailure("connect");
      return src.fatal(e.message);
    }
    this.conn = conn;
    this.expect(BANNER);
  }

  /** Wait -w/-R, then `then()`; a fatal stop ends the session instead. */
  private pause(then: () => void): void {
    const s = this.src.delaySeconds();
    if (s <= 0) return then();
    setTimeout(() => (this.src.stopped ? this.finish() : then()), s * 1000);
  }

  // ---- sending ------------------------------------------------------------------

  private push(stage: Stage): void {
    this.expected[this.tail++] = stage;
  }

  private expect(stage: Stage): void {
    this.push(stage);
    this.conn!.arm();
  }

  private send(buf: Uint8Array, stage: Stage): void {
    if (this.src.verbose) this.src.showSent(buf);
    this.conn!.write(buf);
    this.expect(stage);
  }

  private expectEnvelope(n: number): void {
    this.push(MAIL);
    for (let i = 0; i < n; i++) this.push(RCPT);
    this.push(DATA);
  }

  /** Start the transaction of this.msg on the open connection. */
  private beginMessage(): void {
    this.rcpts = this.src.rcptsFor();
    this.resetMessageState();
    if (this.pipelining) {
      const env = this.src.envelope(this.rcpts);
      if (this.src.verbose) this.src.showSent(env);
      this.conn!.write(env);
      this.expectEnvelope(this.rcpts.length);
      this.conn!.arm();
    } else this.send(this.src.mailCmd, MAIL);
  }

  private resetMessageState(): void {
    this.rcptIdx = 0;
    this.accepted = 0;
    this.mailOk = true;
    this.failKey = "";
  }

  /** Decide what follows the current transaction in the same write (pipelining). */
  private chooseTail(): Uint8Array {
    const o = this.src.o;
    if (o.reuse && !this.src.hasDelays) {
      this.next = this.src.claim();
      if (this.next >= 0) {
        this.nextRcpts = this.src.rcptsFor();
        this.after = "envelope";
        return this.src.envelope(this.nextRcpts);
      }
    }
    this.next = -1;
    if (o.reuse) {
      // With delays the next envelope (or QUIT) waits for the pause.
      this.after = this.src.hasDelays ? "none" : "quit";
      return this.after === "quit" ? QUIT_CMD : EMPTY;
    }
    this.after = "quit";
    return QUIT_CMD;
  }

  private expectTail(): void {
    if (this.after === "envelope") this.expectEnvelope(this.nextRcpts.length);
    else if (this.after === "quit") this.push(QUIT);
  }

  private sendContent(): void {
    const src = this.src;
    const lmtpReplies = src.o.lmtp ? this.accepted : 1;
    let tail: Uint8Array = EMPTY;
    if (this.pipelining) tail = this.chooseTail();
    const content = this.builder.build(this.headers(this.msg), tail.length ? tail : undefined);
    if (src.verbose) {
      src.say(".");
      if (tail.length) src.showSent(tail);
    }
    this.conn!.write(content);
    this.nextStarted = performance.now();
    this.size = content.length - tail.length;
    this.dotLeft = lmtpReplies;
    this.dotBad = "";
    for (let i = 0; i < lmtpReplies; i++) this.push(DOT);
    this.expectTail();
    this.conn!.arm();
  }

  // ---- replies ------------------------------------------------------------------

  private onReply(r: Reply): void {
    const src = this.src;
    if (src.stopped || !this.conn) return;
    if (this.head === this.tail) {
      this.lost(QUIT, new ReplySyntaxError(`unexpected reply: ${replyText(r)}`));
      return;
    }
    const stage = this.expected[this.head++];
    if (this.head === this.tail) {
      this.head = this.tail = 0;
      this.conn.disarm();
    } else this.conn.arm();
    const code = r.code;
    switch (stage) {
      case BANNER:
        if (!is2(code) && !this.rejected(stage, r)) return;
        return this.greet();
      case HELO:
        if (!is2(code) && !this.rejected(stage, r)) return;
        return this.ready();
      case EHLO:
        return this.onEhlo(r);
      case STARTTLS:
        return this.onStarttls(r);
      case MAIL:
        this.mailOk = is2(code);
        if (!this.mailOk) {
          if (!this.rejected(stage, r)) return;
          this.failKey = String(code);
          if (!this.pipelining) return this.abandon();
        } else if (!this.pipelining) return this.send(this.src.rcptLine(this.rcpts[0]), RCPT);
        return;
      case RCPT:
        if (this.mailOk) {
          if (is2(code)) this.accepted++;
          else {
            if (!this.rejected(stage, r)) return;
            this.failKey = String(code);
          }
        }
        if (this.pipelining) return;
        if (++this.rcptIdx < this.rcpts.length) return this.send(this.src.rcptLine(this.rcpts[this.rcptIdx]), RCPT);
        if (this.accepted > 0) return this.send(DATA_CMD, DATA);
        return this.abandon();
      case DATA:
        return this.onData(r);
      case DOT:
        if (!is2(code)) {
          if (!this.rejected(stage, r)) return;
          if (!this.dotBad) this.dotBad = String(code);
        }
        if (--this.dotLeft > 0) return;
        this.finishMessage();
        return this.afterMessage();
      case EMPTYDOT:
        return;
      case RSET:
        if (!is2(code) && !this.rejected(stage, r)) return;
        return this.afterMessage();
      case QUIT:
        if (!is2(code) && !this.rejected(stage, r)) return;
        return this.afterQuit();
    }
  }

  /** Say HELO/EHLO/LHLO after the banner (nothing with -o). */
  private greet(): void {
    const src = this.src;
    if (src.o.old) return this.ready();
    if (src.o.pipelining || src.o.starttls) this.send(src.ehloCmd, EHLO);
    else this.send(src.heloCmd, HELO);
  }

  private onEhlo(r: Reply): void {
    const src = this.src;
    if (!is2(r.code)) {
      // EHLO refused: HELO without extensions (LMTP has nothing else).
      if (!src.o.lmtp) return this.send(src.heloCmd, HELO);
      if (!this.rejected(HELO, r)) return;
      return this.ready();
    }
    this.offersPipelining = ehloOffers(r, "PIPELINING");
    if (src.o.starttls && !this.tlsActive) {
      if (ehloOffers(r, "STARTTLS")) return this.send(STARTTLS_CMD, STARTTLS);
      if (!src.unexpected(`STARTTLS not offered by the server`)) return;
    }
    this.pipelining = src.o.pipelining && this.offersPipelining;
    if (this.pipelining) src.usedPipelining = true;
    this.ready();
  }

  private onStarttls(r: Reply): void {
    const src = this.src;
    if (r.code !== 220) {
      if (!this.rejected(STARTTLS, r)) return;
      this.pipelining = src.o.pipelining && this.offersPipelining;
      return this.ready();
    }
    const t = src.o.target;
    const name = t.kind === "inet" && !ipFamily(t.host) ? t.host : undefined;
    this.conn!.arm();
    this.conn!.startTls(name, (e) => {
      if (e) return this.lost(STARTTLS, e);
      this.tlsActive = true;
      if (src.o.verbose > 1) src.say("STARTTLS: TLS session established");
      this.send(src.ehloCmd, EHLO);
    });
  }

  /** The session is ready for a transaction. */
  private ready(): void {
    this.beginMessage();
  }

  private onData(r: Reply): void {
    const code = r.code;
    if (!this.pipelining) {
      if (is3(code)) return this.sendContent();
      if (!this.rejected(DATA, r)) return;
      this.failKey = String(code);
      return this.abandon();
    }
    if (this.mailOk && this.accepted > 0 && is3(code)) return this.sendContent();
    if (this.mailOk && this.accepted > 0) {
      if (!this.rejected(DATA, r)) return;
      this.failKey = String(code);
    } else if (is3(code)) {
      // 354 although no recipient was accepted: end the empty message.
      this.send(DOT_CMD, EMPTYDOT);
    }
    this.abandon();
  }

  /** A transaction that cannot go on (-A): count it failed, RSET. */
  private abandon(): void {
    this.countFailure(this.failKey || "rejected");
    if (!this.pipelining) return this.send(RSET_CMD, RSET);
    const tail = this.chooseTail();
    this.nextStarted = performance.now();
    const buf = tail.length ? Buffer.concat([RSET_CMD, tail]) : RSET_CMD;
    if (this.src.verbose) this.src.showSent(buf);
    this.conn!.write(buf);
    this.expect(RSET);
    this.expectTail();
  }

  private countFailure(key: string): void {
    if (this.msgCounted) return;
    this.msgCounted = true;
    this.src.countFailure(key);
  }

  private finishMessage(): void {
    const src = this.src;
    if (this.dotBad) this.countFailure(this.dotBad);
    else if (!this.msgCounted) {
      this.msgCounted = true;
      src.countSent(performance.now() - this.started, this.size, this.accepted);
    }
    src.tick();
  }

  /** The transaction is over (sent, or abandoned and reset): go on with the next message or QUIT. */
  private afterMessage(): void {
    const src = this.src;
    if (this.pipelining) {
      if (this.after === "envelope") {
        // Its envelope is already out, its replies are next in the queue.
        this.msg = this.next;
        this.msgCounted = false;
        this.rcpts = this.nextRcpts;
        this.started = this.nextStarted;
        this.next = -1;
        this.after = "none";
        this.resetMessageState();
        return;
      }
      if (this.after === "quit") return; // the QUIT reply is next
    }
    if (!src.o.reuse) return this.send(QUIT_CMD, QUIT);
    if (src.hasDelays) return this.pause(() => this.nextOnConnection());
    this.nextOnConnection();
  }

  /** -d: the next message over this connection (or QUIT when the pool is empty). */
  private nextOnConnection(): void {
    if (!this.conn || this.conn.isClosed) return this.start();
    this.msg = this.src.claim();
    if (this.msg < 0) return this.send(QUIT_CMD, QUIT);
    this.msgCounted = false;
    this.started = performance.now();
    this.beginMessage();
  }

  private afterQuit(): void {
    const src = this.src;
    if (this.conn) {
      src.forget(this.conn);
      this.conn.close();
      this.conn = undefined;
    }
    if (src.o.reuse || !src.hasDelays) return this.start(); // with -d the pool was empty when QUIT was sent: finishes
    this.pause(() => this.start());
  }

  // ---- failures -----------------------------------------------------------------

  /**
   * An unexpected reply: fatal (the message counts as failed), or with -A a
   * warning. Returns true when the dialogue goes on.
   */
  private rejected(stage: Stage, r: Reply): boolean {
    if (!this.src.o.keepGoing && stage !== QUIT) this.countFailure(String(r.code));
    const what = stage === HELO && this.src.o.lmtp ? "LHLO rejected" : REJECTED[stage];
    return this.src.unexpected(`${what}: ${replyText(r)}`);
  }

  private onLost(e: Error): void {
    const stage = this.head < this.tail ? this.expected[this.head] : undefined;
    if (stage === undefined) {
      // Closed while idle (pausing between messages): the pause reconnects.
      if (this.conn) this.src.forget(this.conn);
      this.conn = undefined;
      if (this.src.verbose) this.src.say(`connection closed by the server between messages`);
      return;
    }
    this.lost(stage, e);
  }

  /** The connection broke (or a reply was overdue): count, report, go on with -A. */
  private lost(stage: Stage, e: Error): void {
    const src = this.src;
    if (this.conn) src.forget(this.conn);
    this.conn?.abort();
    this.conn = undefined;
    if (src.stopped) return this.finish();
    const key = e instanceof ReplyTimeout ? "timeout" : e instanceof ReplySyntaxError ? "protocol" : "connection";
    const text = e instanceof ReplyTimeout ? `timeout while ${SENDING[stage]}`
      : e instanceof ReplySyntaxError ? `${e.message} while ${SENDING[stage]}`
      : `lost connection while ${SENDING[stage]}`;
    this.countFailure(key);
    if (this.next >= 0) {
      src.release(this.next);
      this.next = -1;
    }
    this.after = "none";
    if (!src.unexpected(text)) return;
    this.pause(() => this.start());
  }

  abort(): void {
    this.conn?.abort();
    this.conn = undefined;
    this.finish();
  }
}

export class SmtpSource {
  private endpoint!: Endpoint;
  private nextMessage = 0;
  private returned: number[] = [];
  private rcptCounter = 0;
  private readonly live = new Set<SmtpConnection>();
  private readonly sessions: Session[] = [];
  stopped = false;
  private fatalText: string | undefined;
  private readonly body: Buffer;
  private readonly generated: boolean;
  private readonly fixedEnvelope: Buffer | undefined;
  private readonly fixedRcptLines = new Map<string, Buffer>();
  private readonly fixedRcpts: string[] | undefined;
  readonly mailCmd: Buffer;
  readonly heloCmd: Buffer;
  readonly ehloCmd: Buffer;
  readonly verbose: boolean;
  readonly hasDelays: boolean;
  private readonly connectOptions: ConnectOptions;
  private t0 = 0;
  private count = 0;
  readonly samples: Samples;
  sent = 0;
  failed = 0;
  connections = 0;
  rcptsAccepted = 0;
  bytes = 0;
  readonly failures: Record<string, number> = {};
  usedPipelining = false;

  constructor(readonly o: SourceOptions, private readonly io: SourceIO, fileData?: Uint8Array) {
    this.samples = new Samples(o.messages);
    this.verbose = o.verbose > 0;
    this.hasDelays = !!(o.fixedDelay || o.randomDelay);
    this.connectOptions = { timeoutMs: o.timeout * 1000, attempts: o.connectAttempts };
    if (o.file !== undefined) {
      if (!fileData) throw new FatalError(`open ${o.file}: no data`);
      this.body = fileMessage(fileData);
      this.generated = false;
    } else {
      this.body = o.length === undefined ? defaultBody() : generatedBody(o.length);
      this.generated = !o.old;
    }
    this.mailCmd = latin1(`MAIL FROM:<${o.from}>\r\n`);
    this.heloCmd = latin1(`${o.lmtp ? "LHLO" : "HELO"} ${o.myhostname}\r\n`);
    this.ehloCmd = latin1(`${o.lmtp ? "LHLO" : "EHLO"} ${o.myhostname}\r\n`);
    if (!o.numbered) {
      const rcpts = recipients(o.to, o.recipients, false, () => 0);
      this.fixedRcpts = rcpts;
      this.fixedEnvelope = this.buildEnvelope(rcpts);
      for (const r of rcpts) this.fixedRcptLines.set(r, latin1(`RCPT TO:<${r}>\r\n`));
    }
  }

  // ---- helpers for the sessions ---------------------------------------------------

  newBuilder(): ContentBuilder {
    const envelopeRoom = this.fixedEnvelope?.length ?? 64 + this.o.recipients * (this.o.to.length + 40);
    return new ContentBuilder(this.body, 1024, envelopeRoom + 64);
  }

  private buildEnvelope(rcpts: string[]): Buffer {
    let s = `MAIL FROM:<${this.o.from}>\r\n`;
    for (const r of rcpts) s += `RCPT TO:<${r}>\r\n`;
    return latin1(s + "DATA\r\n");
  }

  envelope(rcpts: string[]): Buffer {
    return this.fixedEnvelope ?? this.buildEnvelope(rcpts);
  }

  rcptLine(rcpt: string): Buffer {
    return this.fixedRcptLines.get(rcpt) ?? latin1(`RCPT TO:<${rcpt}>\r\n`);
  }

  rcptsFor(): string[] {
    if (this.fixedRcpts) return this.fixedRcpts; // never changed by a session
    return recipients(this.o.to, this.o.recipients, this.o.numbered, () => ++this.rcptCounter);
  }

  /** The header block of a session's messages ("" with -o or -F), given the message number. */
  headerMaker(sess: number): (n: number) => string {
    if (!this.generated) return () => "";
    const o = this.o;
    const t = headerTemplate({ from: o.from, to: o.to, myhostname: o.myhostname, subject: o.subject, pid: process.pid, session: sess });
    return (n) => t(currentDate(), n);
  }

  claim(): number {
    if (this.stopped) return -1;
    if (this.returned.length) return this.returned.pop()!;
    return this.nextMessage < this.o.messages ? this.nextMessage++ : -1;
  }

  release(n: number): void {
    if (n >= 0) this.returned.push(n);
  }

  delaySeconds(): number {
    let s = 0;
    if (this.o.fixedDelay) s += this.o.fixedDelay;
    if (this.o.randomDelay) s += Math.random() * this.o.randomDelay;
    return s;
  }

  /** Open a connection for a session; `done` gets it, or the error as Postfix words it. */
  openConnection(events: ConnectionEvents, done: (e: Error | undefined, c: SmtpConnection) => void): void {
    this.live.add(SmtpConnection.open(this.endpoint, this.connectOptions, events, done)); // the sweeper bounds the connect, too
  }

  /** Bookkeeping of a connect that ended, before the session hears of it. */
  connectEnded(e: Error | undefined, c: SmtpConnection): void {
    if (e) {
      this.live.delete(c);
      return;
    }
    this.connections++;
    if (this.verbose) c.onReplyLine = (l) => this.say(`<<< ${l}`);
    if (this.o.verbose > 1) this.say(`connected to ${formatTarget(this.o.target)}`);
  }

  forget(conn: SmtpConnection): void {
    this.live.delete(conn);
  }

  say(line: string): void {
    this.io.err(`${this.io.prog}: ${line}\n`);
  }

  showSent(buf: Uint8Array): void {
    for (const l of Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength).toString("latin1").split("\r\n")) {
      if (l) this.say(l);
    }
  }

  /** An unexpected event: with -A a warning (true: go on), else fatal (false). */
  unexpected(text: string): boolean {
    if (this.o.keepGoing) {
      this.say(`warning: ${text}`);
      return true;
    }
    this.fatal(text);
    return false;
  }

  fatal(text: string): void {
    if (this.stopped) return;
    this.stopped = true;
    this.fatalText = text;
    this.say(`fatal: ${text}`);
    for (const c of this.live) c.abort();
    this.live.clear();
    for (const s of this.sessions) s.abort();
  }

  countFailure(key: string): void {
    this.failed++;
    this.failures[key] = (this.failures[key] ?? 0) + 1;
  }

  countSent(latencyMs: number, size: number, rcpts: number): void {
    this.sent++;
    this.bytes += size;
    this.rcptsAccepted += rcpts;
    this.samples.add(latencyMs);
  }

  tick(): void {
    if (this.o.counter) this.io.out(`${++this.count}\r`);
  }

  // ---- the run ----------------------------------------------------------------------

  private async resolve(): Promise<Endpoint> {
    const t = this.o.target;
    if (t.kind === "unix") return { kind: "unix", path: t.path };
    const fam = ipFamily(t.host);
    if (fam) {
      if (this.o.family && fam !== this.o.family) {
        throw new FatalError(`${formatTarget(t)}: Address family for hostname not supported`);
      }
      return { kind: "inet", address: t.host, port: t.port };
    }
    try {
      // Loaded here, not at start: a target is most often an address literal.
      const { lookup } = await import("node:dns/promises");
      const a = await lookup(t.host, { family: this.o.family });
      return { kind: "inet", address: a.address, port: t.port };
    } catch (e: any) {
      const why = e?.code === "ENOTFOUND" ? "Name or service not known"
        : e?.code === "EAI_AGAIN" ? "Temporary failure in name resolution" : e?.message ?? String(e);
      throw new FatalError(`${formatTarget(t)}: ${why}`);
    }
  }

  async run(): Promise<RunSummary> {
    const o = this.o;
    try {
      this.endpoint = await this.resolve();
    } catch (e) {
      if (!(e instanceof FatalError)) throw e;
      this.fatal(e.message);
      return this.summary(0);
    }
    this.t0 = performance.now();
    const n = Math.min(o.sessions, o.messages);
    // One sweeper for every reply deadline (no timer per reply).
    const sweepMs = Math.max(20, Math.min(1000, (o.timeout * 1000) / 4));
    const sweeper = setInterval(() => {
      for (const c of this.live) c.checkDeadline(sweepMs);
    }, sweepMs);
    await new Promise<void>((resolve) => {
      let left = n;
      const done = () => {
        if (--left === 0) resolve();
      };
      for (let i = 0; i < n; i++) this.sessions.push(new Session(this, i, done));
      for (const s of this.sessions) s.start();
    });
    clearInterval(sweeper);
    for (const c of this.live) c.abort();
    if (o.counter) this.io.out("\n");
    return this.summary((performance.now() - this.t0) / 1000);
  }

  get fatalError(): string | undefined {
    return this.fatalText;
  }

  progress() {
    return { done: this.sent, failed: this.failed, total: this.o.messages, elapsedSeconds: this.t0 ? (performance.now() - this.t0) / 1000 : 0 };
  }

  summary(elapsed: number): RunSummary {
    const o = this.o;
    return {
      target: formatTarget(o.target),
      protocol: o.lmtp ? "LMTP" : "SMTP",
      pipelining: this.usedPipelining,
      sessions: Math.min(o.sessions, o.messages),
      connections: this.connections,
      messagesRequested: o.messages,
      sent: this.sent,
      failed: this.failed,
      failures: this.failures,
      recipients: this.rcptsAccepted,
      bytes: this.bytes,
      elapsedSeconds: Math.round(elapsed * 1e6) / 1e6,
      messagesPerSecond: elapsed > 0 ? Math.round((this.sent / elapsed) * 10) / 10 : 0,
      latencyMs: summarizeLatency(this.samples),
      ...(this.fatalText ? { fatal: this.fatalText } : {}),
    };
  }
}

belowFTL(Session, SmtpSource, ContentBuilder, Samples, { currentDate, ehloOffers });
