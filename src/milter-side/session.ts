/**
 * One milter session: the MTA's connection, read as packets, turned into
 * handler calls, answered with one socket write per protocol step.
 *
 * Ordering: Bun does not await async socket handlers, so decoded commands go
 * into a queue that is worked off strictly one at a time; a command's handler
 * call must have settled and its reply must have been written before the next
 * command is looked at. Reading goes on meanwhile (so EOF is noticed at once
 * and ctx.signal fires), and pauses only if the MTA runs far ahead.
 *
 * Protocol rules kept here (docs/protocol.md §2–§6): OPTNEG first; D/A/Q/K
 * and commands under a negotiated SMFIP_NR_* bit are never answered; `s` only
 * when negotiated and only for a body chunk; modifications only at end of
 * message and only if their action was negotiated; a MAIL, HELO, CONNECT, K,
 * QUIT or EOF inside a transaction first aborts it (libmilter's restart rule,
 * but every command is answered instead of dropped); K is accepted anywhere;
 * data inside `E` is a last body chunk; malformed or oversize packets end the
 * session with a `protocol` error.
 */
import {
  type DecisionReply,
  decodeCommand,
  encodeReply,
  isDecision,
  isModification,
  MacroContext,
  type MilterReply,
  MilterProtocolError,
  type MilterRequest,
  type MtaCommand,
  type MtaCommandType,
  type Negotiated,
  NegotiationError,
  negotiateAsMilter,
  type OptnegCommand,
  PacketReader,
  parseReplyText,
  SMFIR_REPLBODY,
  type StageName,
  stageName,
} from "../milter/index.ts";
import type { ConnectionError, FramedConnection } from "../net/connection.ts";
import type { SocketAddress } from "../net/spec.ts";
import { defaultRequest } from "./negotiate.ts";
import { Continue, Reject, Tempfail } from "./replies.ts";
import {
  type AbortInfo,
  type Awaitable,
  type BodyInfo,
  type EomResult,
  type HandlerFactory,
  type MilterHandler,
  MilterSessionError,
  type MilterSessionErrorKind,
  type SessionContext,
  type SessionEnd,
  type SessionOptions,
  type StepResult,
} from "./types.ts";

export const DEFAULT_IDLE_TIMEOUT_MS = 7_210_000;
/** An MTA sends OPTNEG as soon as it connected; one that has not after this long is not going to. */
export const DEFAULT_NEGOTIATION_TIMEOUT_MS = 30_000;
/** An MTA writes a packet in one go; the rest of a started packet that is this late is not coming. */
export const DEFAULT_PACKET_TIMEOUT_MS = 30_000;
/** How long a handler call may still run after the MTA went away before the session is closed regardless. */
const GONE_GRACE_MS = 30_000;
/** Pause reading when this many decoded commands wait (an MTA that does not wait for our replies). */
const QUEUE_HIGH = 256;
const QUEUE_LOW = 16;

type Item =
  | { kind: "cmd"; cmd: MtaCommand }
  | { kind: "fail"; error: MilterSessionError }
  | { kind: "eof"; error: ConnectionError | undefined }
  | { kind: "end"; end: SessionEnd };

/** Packets of the decisions without data, encoded once. */
const PACKET = {
  continue: encodeReply({ type: "continue" }),
  accept: encodeReply({ type: "accept" }),
  reject: encodeReply({ type: "reject" }),
  tempfail: encodeReply({ type: "tempfail" }),
  discard: encodeReply({ type: "discard" }),
  skip: encodeReply({ type: "skip" }),
  shutdown: encodeReply({ type: "shutdown" }),
  progress: encodeReply({ type: "progress" }),
} as const;

let lastSessionId = 0;

type Done<T> = (value: T | undefined, failed: boolean) => void | Promise<void>;

function isThenable<T>(v: Awaitable<T>): v is PromiseLike<T> {
  return v !== null && typeof v === "object" && typeof (v as PromiseLike<T>).then === "function";
}

/** Run `next` after `first` (which may be a promise), keeping the sync path sync. */
function then(first: void | Promise<void>, next: () => void | Promise<void>): void | Promise<void> {
  return first ? first.then(next) : next();
}

function defaultOnError(error: MilterSessionError): void {
  process.stderr.write(`milterkit: session ${error.sessionId} (${error.peer}): ${error.message}\n`);
}

/** Resolved SessionOptions. */
interface Settings {
  idleTimeoutMs: number;
  negotiationTimeoutMs: number;
  packetTimeoutMs: number;
  handlerTimeoutMs: number;
  maxDataSize: number;
  handlerErrorReply: DecisionReply;
  onError: (error: MilterSessionError, ctx: SessionContext) => void;
  onSessionStart?: (ctx: SessionContext) => void;
  onSessionEnd?: (ctx: SessionContext, end: SessionEnd) => void;
}

export function resolveSessionOptions(o: SessionOptions = {}): Settings {
  const idle = o.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS;
  return {
    idleTimeoutMs: idle,
    negotiationTimeoutMs: o.negotiationTimeoutMs ?? DEFAULT_NEGOTIATION_TIMEOUT_MS,
    packetTimeoutMs: o.packetTimeoutMs ?? DEFAULT_PACKET_TIMEOUT_MS,
    handlerTimeoutMs: o.handlerTimeoutMs ?? idle,
    maxDataSize: o.maxDataSize ?? 65535,
    handlerErrorReply: o.handlerErrorReply ?? Tempfail,
    onError: o.onError ?? defaultOnError,
    onSessionStart: o.onSessionStart,
    onSessionEnd: o.onSessionEnd,
  };
}

/**
 * Start a session on an accepted connection. Returns its context; the session
 * runs by itself until the MTA quits, disconnects, times out or errs.
 */
export function startSession(conn: FramedConnection, factory: HandlerFactory, options: SessionOptions = {}): MilterSession {
  const s = new MilterSession(conn, resolveSessionOptions(options));
  s.start(factory);
  return s;
}

export class MilterSession implements SessionContext {
  readonly id = ++lastSessionId;
  readonly peer: string;
  readonly remote: SocketAddress | undefined;
  readonly local: SocketAddress | undefined;
  offer: OptnegCommand | undefined;
  negotiated: Negotiated | undefined;
  readonly macros = new MacroContext();
  stage: StageName | undefined;
  inTransaction = false;
  smtpSession = 1;
  messages = 0;
  /** Resolves when the session is over (after close() settled). */
  readonly ended: Promise<SessionEnd>;

  private handler: MilterHandler = {};
  private readonly reader = new PacketReader();
  private queue: Item[] = [];
  private busy = false;
  private readPaused = false;
  private readFailed = false;
  private gone = false;
  private ending = false;
  private finished = false;
  private skipping = false;
  /** Command whose reply the MTA is waiting for while its handler runs (progress() needs "eob"). */
  private awaiting: MtaCommandType | undefined;
  private controller: AbortController | undefined;
  // Deadlines while we wait for the MTA (negotiation, rest of a packet, next command): one timer,
  // armed for the earliest of them; bytes only stamp times and the timer checks when it fires.
  private idleTimer: Timer | undefined;
  private idleDue = 0;
  private readonly startedAt = Date.now();
  /** Last complete command received or step finished (the idle time counts from here). */
  private lastActive = this.startedAt;
  /** When the packet that is still incomplete was started; 0 = none. */
  private partialSince = 0;
  /** The last command the latest read completed (onData: does a reply of ours follow it?). */
  private lastRead: MtaCommandType | undefined;
  // Handler timeout: one timer per session, armed lazily (armHandlerTimer): each async handler
  // call only stamps its due time, and the timer acts on the call that is pending once it is due.
  private handlerTimer: Timer | undefined;
  /** When the handler timer fires; 0 = not armed. */
  private handlerTimerDue = 0;
  private pendingDue = 0;
  // The async handler call being waited for (wait()): at most one at a time, as commands are
  // worked off one by one. callId tells a late settlement (after its timeout) from the current one.
  private callId = 0;
  private callWhat = "";
  private callDone: Done<any> | undefined;
  private callResolve: (() => void) | undefined;
  /** The step whose handler runs (step()), for stepDone. */
  private stepType: MtaCommandType | undefined;
  private stepExpects = false;
  private resolveEnded!: (end: SessionEnd) => void;

  constructor(
    private readonly conn: FramedConnection,
    private readonly settings: Settings,
  ) {
    this.peer = conn.peer;
    this.remote = conn.remote;
    this.local = conn.local;
    this.ended = new Promise((r) => (this.resolveEnded = r));
  }

  // ---- SessionContext ----

  macro(name: string): string | undefined {
    return this.macros.get(name);
  }

  get signal(): AbortSignal {
    if (!this.controller) {
      this.controller = new AbortController();
      if (this.gone || this.ending) this.controller.abort(new MilterSessionError("disconnected", this.id, this.peer, "session is over"));
    }
    return this.controller.signal;
  }

  progress(): boolean {
    if (this.awaiting !== "eob" || this.gone || !this.conn.writable) return false;
    this.write(PACKET.progress);
    return true;
  }

  /** The handler of this session (for tests and tools). */
  get handlerObject(): MilterHandler {
    return this.handler;
  }

  // ---- life cycle ----

  start(factory: HandlerFactory): void {
    try {
      this.handler = factory(this) ?? {};
    } catch (e) {
      this.handlerFailed("handler factory", e);
      this.conn.destroy();
      this.finished = true;
      this.ending = true;
      const end: SessionEnd = { reason: "error", error: new MilterSessionError("handler", this.id, this.peer, `handler factory failed: ${messageOf(e)}`, { cause: e }) };
      this.resolveEnded(end);
      return;
    }
    this.settings.onSessionStart?.(this);
    this.conn.setQuickAck("on-request"); // onData asks when no reply of ours follows what it read
    this.conn.setHandlers({
      data: (chunk) => this.onData(chunk),
      end: () => this.onPeerGone(undefined),
      close: (error) => this.onPeerGone(error),
    });
    this.armIdle();
  }

  /** Ask the session to end (server shutdown): after the current step, the connection is closed. */
  shutdown(): void {
    if (this.ending) return;
    this.queue = [{ kind: "end", end: { reason: "closed" } }];
    this.pump();
  }

  // ---- input ----

  private readonly onPacket = (code: number, payload: Buffer): void => {
    const cmd = decodeCommand(code, payload);
    this.lastRead = cmd.type;
    this.queue.push({ kind: "cmd", cmd });
  };

  private onData(chunk: Uint8Array): void {
    if (this.readFailed || this.ending) return;
    this.lastRead = undefined; // set again by each whole packet read
    // Only whole packets count as activity: bytes that trickle in do not extend any deadline.
    try {
      this.reader.push(chunk, this.onPacket);
      const packets = this.lastRead !== undefined;
      if (packets) this.lastActive = Date.now();
      if (this.reader.buffered === 0) this.partialSince = 0;
      else if (this.partialSince === 0 || packets) {
        this.partialSince = Date.now();
        this.armIdle();
      }
      // An MTA with Nagle on holds its next small write (Postfix: macros of a skipped step, then the
      // next command) until we acknowledge this one; our reply carries the ACK, so ask for it only
      // when none follows: a part of a packet, or a command that gets no reply.
      const last = this.lastRead;
      if (this.reader.buffered > 0 || last === undefined || (last !== "optneg" && !this.negotiated?.expectsReply(last))) this.conn.acknowledge();
    } catch (e) {
      this.readFailed = true;
      const kind: MilterSessionErrorKind = "protocol";
      const text = e instanceof MilterProtocolError ? e.message : `cannot read packet: ${messageOf(e)}`;
      this.queue.push({ kind: "fail", error: new MilterSessionError(kind, this.id, this.peer, text, { cause: e }) });
    }
    if (this.queue.length > QUEUE_HIGH && !this.readPaused) {
      this.readPaused = true;
      this.conn.pauseReading();
    }
    this.pump();
  }

  private onPeerGone(error: ConnectionError | undefined): void {
    if (this.gone) return;
    this.gone = true;
    if (this.ending) return;
    if (this.busy) {
      this.controller?.abort(new MilterSessionError("disconnected", this.id, this.peer, "the MTA closed the connection"));
      this.shortenPending(GONE_GRACE_MS);
    }
    this.queue.push({ kind: "eof", error });
    this.pump();
  }

  // ---- the queue ----

  private pump(): void {
    while (!this.busy && !this.finished && this.queue.length > 0) {
      const item = this.queue.shift()!;
      let r: void | Promise<void>;
      try {
        r = this.process(item);
      } catch (e) {
        // A bug of ours, not the handler's (handler calls are guarded): end the session visibly.
        r = this.end({ reason: "error", error: new MilterSessionError("connection", this.id, this.peer, `internal error: ${messageOf(e)}`, { cause: e }) });
      }
      if (r) {
        this.busy = true;
        r.then(this.afterAsync, this.afterAsyncFailure);
        return;
      }
    }
    if (this.readPaused && this.queue.length <= QUEUE_LOW && !this.ending) {
      this.readPaused = false;
      this.conn.resumeReading();
    }
    if (!this.busy) this.lastActive = Date.now();
  }

  private readonly afterAsync = (): void => {
    this.busy = false;
    this.pump();
  };

  private readonly afterAsyncFailure = (e: unknown): void => {
    this.busy = false;
    void this.end({ reason: "error", error: new MilterSessionError("connection", this.id, this.peer, `internal error: ${messageOf(e)}`, { cause: e }) });
    this.pump();
  };

  private process(item: Item): void | Promise<void> {
    switch (item.kind) {
      case "fail":
        return this.end({ reason: "error", error: item.error });
      case "eof":
        return this.onEof(item.error);
      case "end":
        return this.end(item.end);
      case "cmd":
        return this.command(item.cmd);
    }
  }

  private command(cmd: MtaCommand): void | Promise<void> {
    if (this.offer === undefined && cmd.type !== "optneg") {
      return this.end(this.protocolError(`expected SMFIC_OPTNEG ('O') first, got ${describe(cmd)}`));
    }
    const h = this.handler;
    switch (cmd.type) {
      case "optneg":
        return this.optneg(cmd);
      case "macro":
        this.macros.define(cmd.command, cmd.macros);
        if (!h.macro) return;
        return this.invoke("macro", () => h.macro!(cmd.command, cmd.macros, this), noop);
      case "connect":
        return then(this.enter(cmd, true), () => this.step(cmd, h.connect));
      case "helo":
        return then(this.enter(cmd, true), () => this.step(cmd, h.helo));
      case "mail":
        return then(this.enter(cmd, true), () => {
          this.inTransaction = true;
          return this.step(cmd, h.envelopeFrom);
        });
      case "rcpt":
        this.enter(cmd, false);
        return this.step(cmd, h.envelopeRecipient);
      case "data":
        this.enter(cmd, false);
        return this.step(cmd, h.data);
      case "header":
        this.enter(cmd, false);
        return this.step(cmd, h.header);
      case "eoh":
        this.enter(cmd, false);
        return this.step(cmd, h.endOfHeader);
      case "body":
        this.enter(cmd, false);
        // After `s` the MTA may still have chunks in flight: answer them without bothering the handler.
        return this.step(cmd, this.skipping ? undefined : h.body, LIVE_BODY);
      case "unknown":
        this.enter(cmd, false);
        return this.step(cmd, h.unknown);
      case "eob":
        this.enter(cmd, false);
        return this.endOfMessage(cmd);
      case "abort": {
        const inTransaction = this.inTransaction;
        this.stage = "abort";
        this.closeTransaction();
        this.macros.enter("A");
        return this.callAbort({ implicit: false, inTransaction });
      }
      case "quit_nc":
        return then(this.implicitAbort(), () => {
          this.stage = "quit";
          this.macros.enter("K");
          this.smtpSession++;
          if (!h.newConnection) return;
          return this.invoke("newConnection", () => h.newConnection!(this), noop);
        });
      case "quit":
        return then(this.implicitAbort(), () => {
          this.stage = "quit";
          this.ending = true; // anything after Q is ignored
          const done = () => this.end({ reason: "quit" });
          if (!h.quit) return done();
          return then(this.invoke("quit", () => h.quit!(this), noop), done);
        });
    }
  }

  // ---- steps ----

  /** Stage bookkeeping before a command's handler runs; `restart` commands first abort an open transaction. */
  private enter(cmd: MtaCommand, restart: boolean): void | Promise<void> {
    if (restart && this.inTransaction) return then(this.implicitAbort(), () => this.enterStage(cmd.type));
    this.enterStage(cmd.type);
  }

  private enterStage(type: MtaCommandType): void {
    this.stage = stageName(type);
    this.macros.enter(LETTER[type]);
  }

  private implicitAbort(): void | Promise<void> {
    if (!this.inTransaction) return;
    this.closeTransaction();
    this.macros.enter("A");
    return this.callAbort({ implicit: true, inTransaction: true });
  }

  private callAbort(info: AbortInfo): void | Promise<void> {
    const h = this.handler;
    if (!h.abort) return;
    return this.invoke("abort", () => h.abort!(this, info), noop);
  }

  private closeTransaction(): void {
    this.inTransaction = false;
    this.skipping = false;
  }

  /**
   * Call a step's handler method (if any) and answer with its decision unless the reply was
   * switched off. No closure per step: what the answer needs waits in stepType/stepExpects.
   */
  private step<C extends MtaCommand>(cmd: C, method: StepMethod<C> | undefined, info?: BodyInfo): void | Promise<void> {
    const expects = this.negotiated!.expectsReply(cmd.type);
    if (!method) {
      if (expects) this.write(PACKET.continue);
      return;
    }
    if (expects) this.awaiting = cmd.type;
    this.stepType = cmd.type;
    this.stepExpects = expects;
    const what = stageName(cmd.type) ?? cmd.type;
    let v: Awaitable<StepResult>;
    try {
      v = method.call(this.handler, cmd, this, info!); // info: body only
    } catch (e) {
      this.handlerFailed(what, e);
      return this.stepDone(undefined, true);
    }
    if (!isThenable(v)) return this.stepDone(v, false);
    return this.wait(what, v, this.stepDone);
  }

  private readonly stepDone = (result: StepResult | undefined, failed: boolean): void => {
    this.awaiting = undefined;
    this.answer(this.stepType!, this.stepExpects, failed ? this.settings.handlerErrorReply : result);
  };

  private answer(type: MtaCommandType, expects: boolean, result: StepResult | EomResult): void {
    if (result !== undefined && result !== null && (result as { type?: string }).type === "close") {
      this.queue = [{ kind: "end", end: { reason: "closed" } }];
      this.ending = true;
      return;
    }
    if (!expects) return; // NR_*: the MTA does not read a reply, whatever the handler said
    const reply = this.checkDecision(type, result);
    this.applyDecision(type, reply);
    this.write(this.encodeDecision(reply));
  }

  /** A valid decision for this step, or the handler-error reply (reported). */
  private checkDecision(type: MtaCommandType, result: unknown): DecisionReply {
    if (result === undefined || result === null) return Continue;
    if (typeof result !== "object" || !isDecision(result as MilterReply)) {
      this.report("handler", `${stageName(type)} handler returned ${JSON.stringify(result)}, not a decision`);
      return this.settings.handlerErrorReply;
    }
    const reply = result as DecisionReply;
    if (reply.type === "skip" && !(type === "body" && this.negotiated!.skip)) return Continue;
    if (reply.type === "replycode") {
      const check = typeof reply.text === "string" ? parseReplyText(reply.text) : { ok: false as const, error: "reply text is not a string" };
      if (!check.ok) {
        this.report("handler", `${stageName(type)} handler: ${check.error}`);
        return typeof reply.text === "string" && reply.text.startsWith("5") ? Reject : Tempfail;
      }
    }
    return reply;
  }

  /** What a decision means for the transaction (libmilter: a final a, or r/t/d outside RCPT/UNKNOWN, ends it). */
  private applyDecision(type: MtaCommandType, reply: DecisionReply): void {
    switch (reply.type) {
      case "continue":
        return;
      case "skip":
        this.skipping = true;
        return;
      case "accept":
        this.closeTransaction();
        return;
      default:
        if (type !== "rcpt" && type !== "unknown") this.closeTransaction();
    }
  }

  private encodeDecision(reply: DecisionReply): Buffer {
    if (reply.type === "replycode") return encodeReply(reply, this.negotiated?.maxDataSize);
    return PACKET[reply.type];
  }

  // ---- end of message ----

  private endOfMessage(cmd: MtaCommand & { type: "eob" }): void | Promise<void> {
    const h = this.handler;
    this.awaiting = "eob";
    const eom = (): void | Promise<void> => {
      if (!h.endOfMessage) return this.finishEom(undefined);
      return this.invoke("end-of-message", () => h.endOfMessage!(cmd, this), (result, failed) =>
        this.finishEom(failed ? this.settings.handlerErrorReply : result),
      );
    };
    if (cmd.chunk === undefined || !h.body || this.skipping) return eom();
    // libmilter hands data inside `E` to the body callback first; a decision other than continue answers the E.
    let early: StepResult | undefined;
    const body = this.invoke("body", () => h.body!({ type: "body", chunk: cmd.chunk! }, this, { fromEndOfMessage: true }), (result, failed) => {
      const r = failed ? this.settings.handlerErrorReply : result;
      if (r && r.type !== "continue" && r.type !== "skip") early = r;
    });
    return then(body, () => (early ? this.finishEom(early) : eom()));
  }

  private finishEom(result: StepResult | EomResult): void | Promise<void> {
    this.awaiting = undefined;
    this.messages++;
    let mods: readonly unknown[] = [];
    let decision: unknown = result;
    let body: Iterable<Uint8Array> | undefined;
    if (result && typeof result === "object" && !("type" in result)) {
      mods = Array.isArray(result.modifications) ? result.modifications : [];
      decision = result.reply;
      body = result.body;
      if (result.modifications !== undefined && !Array.isArray(result.modifications)) {
        this.report("handler", "end-of-message handler: modifications is not an array");
      }
    }
    if (decision && (decision as { type?: string }).type === "close") {
      this.closeTransaction();
      release(body);
      return this.answer("eob", true, decision as StepResult);
    }
    let reply = this.checkDecision("eob", decision);
    if (reply.type === "skip") reply = Continue;
    const parts: Buffer[] = [];
    for (const m of mods) this.encodeModification(m, parts);
    this.closeTransaction();
    if (body !== undefined) {
      if (parts.length > 0) this.write(parts.length === 1 ? parts[0] : Buffer.concat(parts));
      return this.streamBody(body, this.encodeDecision(reply));
    }
    parts.push(this.encodeDecision(reply));
    this.write(parts.length === 1 ? parts[0] : Buffer.concat(parts));
  }

  /** A replacement body as replbody packets, one write each, waiting whenever the MTA falls behind; then `last`. */
  private async streamBody(body: Iterable<Uint8Array>, last: Buffer): Promise<void> {
    const neg = this.negotiated!;
    if (!neg.permits("replbody")) {
      this.report("handler", `end-of-message handler: replbody needs an action that was not negotiated (agreed actions 0x${neg.actions.toString(16)}); dropped`);
      release(body);
      this.write(last);
      return;
    }
    const it = body[Symbol.iterator]();
    // One packet buffer for the whole body, reused once the kernel has taken the previous packet:
    // a 50 MB body then makes no 50 MB of garbage (which would raise the peak memory).
    const packet = Buffer.allocUnsafe(5 + neg.maxDataSize);
    try {
      for (let r = it.next(); !r.done; r = it.next()) {
        const chunk = r.value;
        for (let off = 0; off === 0 || off < chunk.length; off += neg.maxDataSize) {
          if (!this.conn.writable) return; // the MTA is gone
          const piece = chunk.subarray(off, off + neg.maxDataSize);
          packet.writeUInt32BE(1 + piece.length, 0);
          packet[4] = SMFIR_REPLBODY;
          packet.set(piece, 5);
          this.conn.send(packet.subarray(0, 5 + piece.length));
          if (this.conn.queued > 0) await this.conn.flushed().catch(() => undefined); // before the buffer is reused
          if (chunk.length === 0) break;
        }
      }
    } catch (e) {
      // The body could not be read (its spill file): the MTA has part of it; only closing is safe.
      this.report("handler", `end-of-message: cannot send the replaced body: ${messageOf(e)}`, e);
      this.conn.destroy();
      return;
    } finally {
      it.return?.();
    }
    this.write(last);
  }

  private encodeModification(m: unknown, out: Buffer[]): void {
    const neg = this.negotiated!;
    if (!m || typeof m !== "object" || !isModification(m as MilterReply)) {
      this.report("handler", `end-of-message handler: ${JSON.stringify(m)} is not a modification; dropped`);
      return;
    }
    const mod = m as MilterReply & { type: string };
    if (!neg.permits(mod.type as MilterReply["type"])) {
      this.report("handler", `end-of-message handler: ${mod.type} needs an action that was not negotiated (agreed actions 0x${neg.actions.toString(16)}); dropped`);
      return;
    }
    try {
      if (mod.type === "replbody" && (mod as { chunk: Uint8Array }).chunk.length > neg.maxDataSize) {
        const chunk = (mod as { chunk: Uint8Array }).chunk;
        for (let off = 0; off < chunk.length; off += neg.maxDataSize) {
          out.push(encodeReply({ type: "replbody", chunk: chunk.subarray(off, off + neg.maxDataSize) }, neg.maxDataSize));
        }
        return;
      }
      out.push(encodeReply(mod as MilterReply, neg.maxDataSize));
    } catch (e) {
      this.report("handler", `end-of-message handler: cannot send ${mod.type}: ${messageOf(e)}; dropped`, e);
    }
  }

  // ---- negotiation ----

  private optneg(cmd: OptnegCommand): void | Promise<void> {
    if (this.offer !== undefined) return this.end(this.protocolError("a second SMFIC_OPTNEG ('O') in the same session"));
    this.offer = cmd;
    this.stage = "negotiate";
    this.macros.enter("O");
    const h = this.handler;
    const finish = (result: unknown, failed: boolean): void | Promise<void> => {
      if (failed) return this.end({ reason: "error", error: new MilterSessionError("handler", this.id, this.peer, "negotiate handler failed; closing") });
      if (result && (result as { type?: string }).type === "close") return this.end({ reason: "closed" });
      const request: MilterRequest = (result as MilterRequest | undefined) ?? defaultRequest(h, cmd, this.settings.maxDataSize);
      let reply;
      try {
        const r = negotiateAsMilter(cmd, request.maxDataSize === undefined ? { ...request, maxDataSize: this.settings.maxDataSize } : request);
        reply = r.reply;
        this.negotiated = r.negotiated;
      } catch (e) {
        const text = e instanceof NegotiationError ? e.message : `negotiation failed: ${messageOf(e)}`;
        return this.end({ reason: "error", error: new MilterSessionError("negotiation", this.id, this.peer, text, { cause: e }) });
      }
      this.reader.maxDataSize = this.negotiated.maxDataSize;
      this.write(encodeReply(reply));
    };
    if (!h.negotiate) return finish(undefined, false);
    let after: void | Promise<void> = undefined;
    const r = this.invoke("negotiate", () => h.negotiate!(cmd, this), (result, failed) => {
      after = finish(result, failed);
    });
    return r ? r.then(() => after) : after;
  }

  // ---- end of session ----

  private onEof(error: ConnectionError | undefined): void | Promise<void> {
    return then(this.implicitAbort(), () => {
      // A reset or a FIN without QUIT: either way the MTA is gone (the socket error, if any, says how).
      const what = !this.offer ? "the MTA closed the connection before negotiating" : "the MTA closed the connection without SMFIC_QUIT";
      const err = new MilterSessionError("disconnected", this.id, this.peer, error ? `${what} (${error.message})` : what, { cause: error });
      return this.end({ reason: "disconnected", error: err });
    });
  }

  /** End the session: report, close the connection, call close() once, then onSessionEnd. */
  private end(end: SessionEnd): void | Promise<void> {
    if (this.finished) return;
    this.ending = true;
    this.queue = [];
    clearTimeout(this.idleTimer);
    this.idleTimer = undefined;
    if (end.error) this.settings.onError(end.error, this);
    this.controller?.abort(end.error ?? end);
    if (!this.conn.isClosed) {
      if (end.reason === "error" || end.reason === "timeout") this.conn.destroy();
      else void this.conn.close(5000);
    }
    const h = this.handler;
    const done = () => {
      if (this.finished) return;
      this.finished = true;
      clearTimeout(this.handlerTimer); // nothing of this session may wait any longer
      this.handlerTimer = undefined;
      this.handlerTimerDue = 0;
      this.settings.onSessionEnd?.(this, end);
      this.resolveEnded(end);
    };
    if (!h.close) return done();
    return then(this.invoke("close", () => h.close!(this, end), noop), done);
  }

  private protocolError(text: string): SessionEnd {
    return { reason: "error", error: new MilterSessionError("protocol", this.id, this.peer, text) };
  }

  // ---- handler calls ----

  /**
   * Call a handler method. Sync results are passed to `done` at once (no
   * promise, no timer: the fast path). Async ones are raced against the
   * handler timeout; a throw or timeout is reported and passed as failed.
   */
  private invoke<T>(what: string, f: () => Awaitable<T>, done: Done<T>): void | Promise<void> {
    let v: Awaitable<T>;
    try {
      v = f();
    } catch (e) {
      this.handlerFailed(what, e);
      return done(undefined, true);
    }
    if (!isThenable(v)) return done(v, false);
    return this.wait(what, v, done);
  }

  /** Wait for an async handler call, racing it against the handler timeout; settles after `done`. */
  private wait<T>(what: string, v: PromiseLike<T>, done: Done<T>): Promise<void> {
    const id = ++this.callId;
    this.callWhat = what;
    this.callDone = done;
    if (this.settings.handlerTimeoutMs > 0) {
      this.armHandlerTimer(this.gone ? Math.min(GONE_GRACE_MS, this.settings.handlerTimeoutMs) : this.settings.handlerTimeoutMs);
    }
    // Made first: a thenable may call back at once.
    const settled = new Promise<void>((resolve) => (this.callResolve = resolve));
    v.then(
      (value) => this.settle(id, value, false),
      (e) => {
        if (id === this.callId && this.callDone !== undefined) this.handlerFailed(what, e);
        this.settle(id, undefined, true);
      },
    );
    return settled;
  }

  /** The call `id` ended (or timed out): its `done`, then the promise wait() gave. Late ones are ignored. */
  private settle(id: number, value: unknown, failed: boolean): void {
    const done = this.callDone;
    if (id !== this.callId || done === undefined) return;
    const resolve = this.callResolve!;
    this.callDone = undefined;
    this.callResolve = undefined;
    let after: void | Promise<void> = undefined;
    try {
      after = done(value, failed);
    } finally {
      if (after) after.then(resolve, resolve);
      else resolve();
    }
  }

  /** The MTA went away while a handler runs: do not wait longer than `ms` for it. */
  private shortenPending(ms: number): void {
    if (this.callDone === undefined || this.pendingDue <= Date.now() + ms) return;
    this.armHandlerTimer(ms);
  }

  /**
   * The pending handler call is due in `ms`. A timer armed for an earlier time is left alone: it
   * fires first and waits for the rest then, so a step costs no timer call.
   */
  private armHandlerTimer(ms: number): void {
    const due = Date.now() + ms;
    this.pendingDue = due;
    if (this.handlerTimerDue !== 0 && this.handlerTimerDue <= due) return;
    this.setHandlerTimer(ms);
  }

  private setHandlerTimer(ms: number): void {
    clearTimeout(this.handlerTimer);
    this.handlerTimerDue = Date.now() + ms;
    this.handlerTimer = setTimeout(this.onHandlerTimer, ms);
    this.handlerTimer.unref?.(); // the connection keeps the process alive, not this timer
  }

  private readonly onHandlerTimer = (): void => {
    this.handlerTimerDue = 0;
    if (this.callDone === undefined) return; // the call it was armed for settled in time
    const left = this.pendingDue - Date.now();
    if (left > 1) return this.setHandlerTimer(left); // armed for an earlier call: wait for the rest
    const what = this.callWhat;
    this.report("timeout", this.gone
      ? `${what} handler still running ${GONE_GRACE_MS} ms after the MTA went away; giving up on it`
      : `${what} handler did not finish within ${this.settings.handlerTimeoutMs} ms`);
    this.settle(this.callId, undefined, true);
  };

  private handlerFailed(what: string, e: unknown): void {
    this.report("handler", `${what} handler failed: ${messageOf(e)}`, e);
  }

  private report(kind: MilterSessionErrorKind, text: string, cause?: unknown): void {
    const err = new MilterSessionError(kind, this.id, this.peer, text, cause === undefined ? undefined : { cause });
    try {
      this.settings.onError(err, this);
    } catch {
      // a failing error hook must not break the session
    }
  }

  // ---- output and timers ----

  private write(packet: Uint8Array): void {
    if (!this.conn.writable) return; // the MTA is gone; the reply has nobody to go to
    try {
      this.conn.send(packet);
    } catch (e) {
      this.report("connection", `cannot send reply: ${messageOf(e)}`, e);
    }
  }

  /**
   * One timer per session, re-armed lazily: packets and finished steps only
   * stamp `lastActive`, and the timer checks the stamps when it fires.
   */
  private armIdle(): void {
    if (this.ending) return;
    const next = this.nextDeadline();
    if (next === undefined) return;
    if (this.idleTimer !== undefined) {
      if (this.idleDue <= next.at) return; // the timer fires first and looks again then
      clearTimeout(this.idleTimer);
    }
    this.idleDue = next.at;
    this.idleTimer = setTimeout(this.onIdleTimer, Math.max(1, next.at - Date.now()));
    this.idleTimer.unref?.();
  }

  /**
   * The earliest deadline for the MTA: to negotiate, to finish a started packet, to send the next
   * command. Asked on every read that ends inside a packet, so its text is made only when it passed.
   */
  private nextDeadline(): { at: number; kind: "negotiation" | "packet" | "idle" } | undefined {
    const s = this.settings;
    let at = Infinity;
    let kind: "negotiation" | "packet" | "idle" = "idle";
    if (this.offer === undefined && s.negotiationTimeoutMs > 0) {
      at = this.startedAt + s.negotiationTimeoutMs;
      kind = "negotiation";
    }
    if (this.partialSince > 0 && s.packetTimeoutMs > 0 && this.partialSince + s.packetTimeoutMs < at) {
      at = this.partialSince + s.packetTimeoutMs;
      kind = "packet";
    }
    if (s.idleTimeoutMs > 0 && this.lastActive + s.idleTimeoutMs < at) {
      at = this.lastActive + s.idleTimeoutMs;
      kind = "idle";
    }
    return at === Infinity ? undefined : { at, kind };
  }

  private deadlineText(kind: "negotiation" | "packet" | "idle"): string {
    const s = this.settings;
    if (kind === "negotiation") return `the MTA did not negotiate within ${s.negotiationTimeoutMs} ms`;
    if (kind === "packet") return `the MTA did not finish a started packet within ${s.packetTimeoutMs} ms (${this.reader.buffered} bytes received)`;
    return `no command from the MTA for ${s.idleTimeoutMs} ms`;
  }

  private readonly onIdleTimer = (): void => {
    this.idleTimer = undefined;
    if (this.ending) return;
    if (this.busy || this.queue.length > 0) {
      // We are working and the MTA waits for us (the handler timeout bounds that); its clocks
      // start again when we are done, as reading may have been paused meanwhile.
      this.lastActive = Date.now();
      if (this.partialSince > 0) this.partialSince = this.lastActive;
      return this.armIdle();
    }
    const next = this.nextDeadline();
    if (next === undefined) return;
    if (next.at > Date.now()) return this.armIdle();
    this.queue.push({ kind: "end", end: { reason: "timeout", error: new MilterSessionError("timeout", this.id, this.peer, this.deadlineText(next.kind)) } });
    this.pump();
  };
}

const LETTER: Record<MtaCommandType, string> = {
  optneg: "O", macro: "D", connect: "C", helo: "H", mail: "M", rcpt: "R", data: "T", header: "L",
  eoh: "N", body: "B", eob: "E", abort: "A", quit: "Q", quit_nc: "K", unknown: "U",
};

function noop(): void {}

/** A step's handler method, called with the handler as `this`. */
type StepMethod<C> = (cmd: C, ctx: SessionContext, info: BodyInfo) => Awaitable<StepResult>;

/** A body chunk the MTA sent as such (not inside its end-of-message). */
const LIVE_BODY: BodyInfo = Object.freeze({ fromEndOfMessage: false });

/** Let an unused body iterable release what it holds (a generator's finally). */
function release(body: Iterable<Uint8Array> | undefined): void {
  if (body !== undefined) body[Symbol.iterator]().return?.();
}

function messageOf(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

function describe(cmd: MtaCommand): string {
  return `${stageName(cmd.type) ?? cmd.type} ('${LETTER[cmd.type]}')`;
}
