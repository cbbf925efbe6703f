/**
 * MilterClient: we are the MTA and drive ONE milter over one connection.
 *
 *   const milter = new MilterClient({ spec: "inet:10025@[127.0.0.1]" });
 *   const neg = await milter.open();                 // connect + OPTNEG
 *   if (!neg.ok) ...
 *   await milter.connect("mx.example.net", { family: "4", address: "192.0.2.1", port: 25 }, { j: "mx" });
 *   ... helo, envelopeFrom, envelopeRecipient, data, header, endOfHeader, body, endOfMessage ...
 *   await milter.quit();
 *
 * Every step returns a Promise of a typed outcome (outcome.ts) and never
 * throws because of the peer. The client applies what was negotiated:
 * NO_* steps and version-gated steps (T < v4, U < v3, K < v6) are not sent,
 * NR_* steps are not waited for, macros are filtered by the milter's symbol
 * lists, body chunks are split to the agreed data size, `s` is accepted only
 * after a body chunk. Each step is ONE socket write (macros + command); the
 * `D` of a stage suppressed by NO_* goes out with the next write.
 * Any protocol violation, timeout or lost connection closes the connection;
 * the failure is returned by the pending step and by every later one.
 *
 * Throws (programming errors only): a step before open() succeeded, or a
 * step while another one is still pending.
 */
import {
  MILTER_MAX_DATA_SIZE,
  MilterProtocolError,
  NegotiationError,
  PacketReader,
  SMFI_VERSION_6,
  SMFI_VERSION_DATA,
  SMFI_VERSION_UNKNOWN,
  decodeReply,
  encodeCommands,
  filterMacros,
  isModification,
  macroStageOf,
  macroWireName,
  makeOffer,
  negotiateAsMta,
  replyName,
  splitBody,
  stageName,
  commandLetter,
  type ConnectCommand,
  type MilterReply,
  type MtaCommand,
  type MtaCommandType,
  type MtaOfferOptions,
  type Negotiated,
  type OptnegCommand,
  type OptnegReply,
  type StageName,
} from "../milter/index.ts";
import { ConnectError, connect } from "../net/connect.ts";
import { ConnectionError, type FramedConnection } from "../net/connection.ts";
import { formatSpec, parseSpec, type ConnectionSpec } from "../net/spec.ts";
import {
  decisionStatus,
  parseReplyCode,
  toModification,
  type DecisionOutcome,
  type DecisionSource,
  type EndOfMessageOutcome,
  type FailureOutcome,
  type FailureStatus,
  type Modification,
  type StepOutcome,
  type TimerName,
} from "./outcome.ts";

/** Macro values for one step: a Map or a plain object; names with or without braces. */
export type MacroInput = ReadonlyMap<string, string> | Readonly<Record<string, string>>;

/** Client address for the connect step (SMFIC_CONNECT); family "U" carries no address. */
export type ClientAddress =
  | { family: "4" | "6"; address: string; port: number }
  | { family: "L"; address: string; port?: number }
  | { family: "U" };

/** milter-manager's child defaults (manager.md §1.2, milter.*: 300/10/10/300 s minus 3 s leeway). */
export const CHILD_TIMEOUTS = {
  connectionTimeoutMs: 297_000,
  writingTimeoutMs: 7_000,
  readingTimeoutMs: 7_000,
  endOfMessageTimeoutMs: 297_000,
} as const;

export interface MilterClientOptions {
  /** Where the milter listens: a ConnectionSpec or its text (`inet:10025@[127.0.0.1]`, `unix:/path`). */
  spec: ConnectionSpec | string;
  /** TCP/unix connect must complete within this (milter.connection_timeout). Default 297 s. For every timeout 0 = no limit. */
  connectionTimeoutMs?: number;
  /** Queued bytes must make progress within this (milter.writing_timeout). Default 7 s. */
  writingTimeoutMs?: number;
  /** A reply must be complete this long after its command was sent, except end-of-message (milter.reading_timeout). Default 7 s. */
  readingTimeoutMs?: number;
  /**
   * The end-of-message reply must be complete this long after `E` was sent, or after the last
   * `p` (progress) — the only thing that extends a wait (milter.end_of_message_timeout). Default 297 s.
   */
  endOfMessageTimeoutMs?: number;
  /** Upper bound of the whole end-of-message exchange, whatever `p` says (milter.end_of_message_total_timeout). 0 = none (default). */
  endOfMessageTotalTimeoutMs?: number;
  /** What we offer in OPTNEG (default: version 6, all actions, all protocol bits, 64K data). */
  offer?: MtaOfferOptions;
  /**
   * Most modification packets (replace-body excepted) one end-of-message may bring; one more fails
   * the step (protocol-error), so a milter cannot fill our memory. Default 0 = no limit.
   */
  maxModifications?: number;
  /** Most bytes of modification packets (replace-body excepted) one end-of-message may bring. Default 0 = no limit. */
  maxModificationBytes?: number;
  /** Called for each `p` as it arrives, with the stage being waited for. */
  onProgress?: (stage: StageName) => void;
  /** Sees every byte written ("send": whole packets of one step) and read ("receive": raw chunks). */
  trace?: (direction: "send" | "receive", bytes: Uint8Array) => void;
}

/**
 * Watches the steps of one client (the manager's logs and metrics): `sent` when a step's bytes go
 * out, `done` with its outcome and the time since perform() was called. Steps that end without
 * being sent (NO_*, after a failure) get `done` only.
 */
export interface StepObserver {
  sent?(type: MtaCommandType, stage: StageName, bytes: Uint8Array): void;
  done(type: MtaCommandType, stage: StageName, outcome: StepOutcome | EndOfMessageOutcome, ms: number): void;
}

interface Pending {
  type: MtaCommandType;
  stage: StageName;
  resolve: (o: any) => void;
  /** End-of-message only. */
  mods?: Modification[];
  /** Modification bytes received (replace-body excepted), for maxModificationBytes. */
  modBytes?: number;
  /** A replace-body chunk was handed to onReplaceBody. */
  streamed?: boolean;
  progress: number;
  /** A step without reply waiting for the write queue to drain: any packet now is stray. */
  flushing?: boolean;
  /** When perform() was called, for the observer; -1 = nobody watches. */
  t0: number;
}

/** Outcome of open(): the agreed options, or why there are none. */
export type NegotiateOutcome =
  | { ok: true; status: "negotiated"; stage: "negotiate"; negotiated: Negotiated; offer: OptnegCommand; reply: OptnegReply }
  | FailureOutcome;

/** Spec text → parsed spec (treated as immutable) and its printable name. */
const parsedSpecs = new Map<string, { spec: ConnectionSpec; name: string }>();

/** Longest setTimeout delay: what "0 = no limit" becomes for the connect timer. */
const MAX_TIMER_MS = 2_147_483_647;

/** Version a command needs (its `D` is not sent either below it, as Postfix does). */
const SINCE: Partial<Record<MtaCommandType, number>> = {
  data: SMFI_VERSION_DATA,
  unknown: SMFI_VERSION_UNKNOWN,
  quit_nc: SMFI_VERSION_6,
};

export class MilterClient {
  readonly spec: ConnectionSpec;
  /** Printable spec for messages. */
  readonly name: string;
  /** Set once open() succeeded. */
  negotiated: Negotiated | undefined;
  onProgress: ((stage: StageName) => void) | undefined;
  /** Called with a description when the milter took a harmless liberty that is honoured (docs/tolerances.md). */
  onTolerated: ((what: string) => void) | undefined;
  /** Sees every step and its outcome (undefined = nobody watches; nothing is timed). */
  observer: StepObserver | undefined;
  /**
   * When set, replace-body chunks are handed here as they arrive (in order; the chunk is only
   * valid during the call) instead of being collected: the outcome then holds one empty
   * replace-body entry where the first chunk came. A throw fails the step.
   */
  onReplaceBody: ((chunk: Uint8Array) => void) | undefined;

  private readonly opts: MilterClientOptions;
  private conn: FramedConnection | undefined;
  private readonly reader = new PacketReader();
  private pending: Pending | undefined;
  private failure: FailureOutcome | undefined;
  private quitting = false;
  private skipped = false;
  /** `D` packets of suppressed (NO_*) stages, sent with the next write. */
  private deferred: Uint8Array | undefined;
  /** Stage of the last step sent, to name the stage of a stray reply or a close. */
  private lastStage: StageName = "negotiate";
  private offer: OptnegCommand | undefined;
  // Per-step deadlines, one for reading_timeout and one for end_of_message_timeout (StepDeadline:
  // a step only stamps its due time, no timer call). Bytes that arrive do not move them (a milter
  // dripping a reply must not hold the MTA); only a `p` at end-of-message does, within the total.
  // A deadline that passes while no step of its kind is pending does nothing.
  private readonly readDeadline = new StepDeadline(() => this.onReadTimer());
  private readonly eomDeadline = new StepDeadline(() => this.onEomTimer());
  private totalTimer: Timer | undefined;
  private readonly onPacketBound = (code: number, payload: Buffer) => this.onPacket(code, payload);

  constructor(options: MilterClientOptions) {
    this.opts = options;
    if (typeof options.spec === "string") {
      // A manager makes a client per child per session from the same few spec strings: parse each once.
      let known = parsedSpecs.get(options.spec);
      if (!known) {
        const spec = parseSpec(options.spec);
        known = { spec, name: formatSpec(spec) };
        if (parsedSpecs.size >= 1024) parsedSpecs.clear();
        parsedSpecs.set(options.spec, known);
      }
      this.spec = known.spec;
      this.name = known.name;
    } else {
      this.spec = options.spec;
      this.name = formatSpec(this.spec);
    }
    this.onProgress = options.onProgress;
  }

  /** True once the connection is gone (failure, quit or close). */
  get closed(): boolean {
    return this.failure !== undefined;
  }

  /** The failure that ended the connection, if any (quit/close report status "closed"). */
  get lastFailure(): FailureOutcome | undefined {
    return this.failure;
  }

  /** Connect (connection_timeout) and negotiate (reading_timeout). */
  async open(): Promise<NegotiateOutcome> {
    if (this.conn || this.failure) throw new Error(`MilterClient ${this.name}: open() called twice`);
    const o = this.opts;
    try {
      this.conn = await connect(this.spec, {
        timeoutMs: o.connectionTimeoutMs || (o.connectionTimeoutMs === 0 ? MAX_TIMER_MS : CHILD_TIMEOUTS.connectionTimeoutMs),
        writeTimeoutMs: o.writingTimeoutMs ?? CHILD_TIMEOUTS.writingTimeoutMs,
        quickAck: "on-request", // onData asks while a reply is still incomplete
        handlers: {
          data: (chunk) => this.onData(chunk),
          close: (error) => this.onClose(error),
        },
      });
    } catch (e) {
      if (e instanceof ConnectError) {
        return this.setFailure(e.kind === "timeout" ? "timeout" : "connection-error", "negotiate", e.message, e.kind === "timeout" ? "connection" : undefined);
      }
      return this.setFailure("connection-error", "negotiate", `cannot connect to ${this.name}: ${(e as Error)?.message ?? e}`);
    }
    if (this.failure) {
      this.conn.destroy(); // close() (e.g. a negotiation deadline) came while we connected: do not leave it open
      return this.failure;
    }
    this.offer = makeOffer(o.offer);
    this.reader.maxDataSize = MILTER_MAX_DATA_SIZE;
    return this.send("optneg", encodeCommands([this.offer]), true) as Promise<NegotiateOutcome>;
  }

  // ---- SMTP-level steps -------------------------------------------------

  connect(hostname: string, client: ClientAddress, macros?: MacroInput): Promise<StepOutcome> {
    return this.step(connectCommand(hostname, client), macros);
  }

  helo(hostname: string, macros?: MacroInput): Promise<StepOutcome> {
    return this.step({ type: "helo", hostname }, macros);
  }

  /** MAIL FROM; address as the client wrote it (normally `<a@b>`), each ESMTP argument one string. */
  envelopeFrom(address: string, args: readonly string[] = [], macros?: MacroInput): Promise<StepOutcome> {
    return this.step({ type: "mail", address, args }, macros);
  }

  envelopeRecipient(address: string, args: readonly string[] = [], macros?: MacroInput): Promise<StepOutcome> {
    return this.step({ type: "rcpt", address, args }, macros);
  }

  /** DATA (not sent below version 4). */
  data(macros?: MacroInput): Promise<StepOutcome> {
    return this.step({ type: "data" }, macros);
  }

  /** An SMTP command the MTA does not know (not sent below version 3). */
  unknown(commandLine: string, macros?: MacroInput): Promise<StepOutcome> {
    return this.step({ type: "unknown", commandLine }, macros);
  }

  /**
   * One header. `value` goes out as given: without the space after the colon,
   * unless `negotiated.leadingSpace` (then as it stands in the message).
   * `macros` become a `D L` before it (Postfix style), unfiltered.
   */
  header(name: string, value: string, macros?: MacroInput): Promise<StepOutcome> {
    return this.step({ type: "header", name, value }, macros);
  }

  endOfHeader(macros?: MacroInput): Promise<StepOutcome> {
    return this.step({ type: "eoh" }, macros);
  }

  /**
   * Body bytes: split into packets of at most the agreed data size, each
   * answered before the next is sent; returns the first outcome that is not
   * continue, else the last one. An empty chunk is not sent; after a `skip`
   * nothing more is sent until the message ends (outcome skip, not-sent).
   */
  body(chunk: Uint8Array, macros?: MacroInput): Promise<StepOutcome> {
    const n = this.requireNegotiated();
    // The usual chunk fits one packet: its step is the body step (no loop, no async frame).
    if (!this.failure && !this.skipped && chunk.length > 0 && chunk.length <= n.maxDataSize && n.sends("body")) {
      return this.perform(prepareStep(n, { type: "body", chunk }, macros)) as Promise<StepOutcome>;
    }
    return this.bodyPieces(n, chunk, macros);
  }

  private async bodyPieces(n: Negotiated, chunk: Uint8Array, macros?: MacroInput): Promise<StepOutcome> {
    if (this.failure) return this.after("body");
    if (this.skipped) return decision("skip", "body", "not-sent");
    let last: StepOutcome = decision("continue", "body", "not-sent");
    for (const step of prepareBody(n, chunk, macros)) {
      last = (await this.perform(step)) as StepOutcome;
      if (!last.ok || last.status !== "continue") return last;
    }
    return last;
  }

  /**
   * End of message. A `chunk` (body data the MTA sent inside its `E`) goes
   * inside our `E` too, as the milter would get it from the MTA; only what
   * exceeds the agreed data size is sent as body before it.
   * The outcome carries every modification in arrival order and the number
   * of `p` received; end_of_message_timeout (and the optional total timeout)
   * apply instead of reading_timeout.
   */
  async endOfMessage(macros?: MacroInput, chunk?: Uint8Array): Promise<EndOfMessageOutcome> {
    const n = this.requireNegotiated();
    let data = chunk && chunk.length > 0 ? chunk : undefined;
    if (data && data.length > n.maxDataSize) {
      const b = await this.body(data.subarray(0, data.length - n.maxDataSize));
      if (!b.ok || (b.status !== "continue" && b.status !== "skip")) return { ...b, modifications: [], progress: 0 };
      data = data.subarray(data.length - n.maxDataSize);
    }
    if (this.failure) return { ...this.after("end-of-message"), modifications: [], progress: 0 };
    return (await this.step(data ? { type: "eob", chunk: data } : { type: "eob" }, macros)) as EndOfMessageOutcome;
  }

  /** Abort the current message (no reply). The connection stays for a new MAIL. */
  abort(macros?: MacroInput): Promise<StepOutcome> {
    return this.step({ type: "abort" }, macros);
  }

  /** QUIT: send `Q` and close the connection. Resolves once the socket is closed. */
  async quit(): Promise<StepOutcome> {
    if (this.failure) return this.after("quit");
    this.requireNegotiated();
    const sent = await this.step({ type: "quit" });
    if (!sent.ok) return sent;
    this.quitting = true;
    const conn = this.conn!;
    this.setFailure("closed", "quit", `connection to ${this.name} closed by quit`);
    this.clearTimers();
    await conn.close(this.opts.writingTimeoutMs ?? CHILD_TIMEOUTS.writingTimeoutMs);
    return sent;
  }

  /**
   * `K` (v6): end this SMTP session but keep the connection and the agreed
   * options; the next step is connect(). Below v6: not sent — quit instead.
   * Note libmilter honours `K` only after an end-of-message answered continue.
   */
  quitNc(): Promise<StepOutcome> {
    return this.step({ type: "quit_nc" });
  }

  /** Close without `Q` (after an error, or to give up). Idempotent. */
  close(): void {
    if (this.failure && !this.pending) return void this.conn?.destroy();
    this.fail("closed", this.pending?.stage ?? "quit", `connection to ${this.name} closed by us`);
  }

  /**
   * Run a step prepared with prepareStep()/prepareBody() — for this client's
   * negotiation or an identical one (same negotiationKey()). The load
   * generator prepares a session once and reuses the bytes on every client.
   */
  perform(step: PreparedStep): Promise<StepOutcome | EndOfMessageOutcome> {
    const t0 = this.observer ? performance.now() : -1;
    const r = this.performStep(step, t0);
    if (r instanceof Promise) return r;
    this.observed(step.type, step.stage, r, t0); // settled at once: not sent, or after a failure
    return Promise.resolve(r);
  }

  /** A step's outcome, or the promise of its reply; `t0`: when perform() was called (-1: nobody watches). */
  private performStep(step: PreparedStep, t0: number): StepOutcome | EndOfMessageOutcome | Promise<StepOutcome | EndOfMessageOutcome> {
    this.requireNegotiated();
    const { type, stage } = step;
    if (this.pending) throw new Error(`MilterClient ${this.name}: ${stage} while ${this.pending.stage} is still pending`);
    if (this.failure) return this.after(stage);
    if (type === "mail" || type === "abort" || type === "quit_nc" || type === "eob") this.skipped = false;
    if (type === "body" && this.skipped) return decision("skip", stage, "not-sent");
    if (step.error !== undefined) return this.fail("protocol-error", stage, `cannot send ${stage} to ${this.name}: ${step.error}`);
    if (step.bytes === undefined) return decision("continue", stage, step.via);
    if (step.via === "not-sent") {
      // Only the `D` of a suppressed stage: it carries no event, so it rides with the next write.
      this.deferred = this.deferred ? Buffer.concat([this.deferred, step.bytes]) : step.bytes;
      return decision("continue", stage, "not-sent");
    }
    return this.send(type, step.bytes, step.expectReply, step.via, t0);
  }

  /** Tell the observer (if any) how a step ended. */
  private observed(type: MtaCommandType, stage: StageName, outcome: StepOutcome | EndOfMessageOutcome, t0: number): void {
    if (t0 >= 0) this.observer?.done(type, stage, outcome, performance.now() - t0);
  }

  // ---- internals ----------------------------------------------------------

  private requireNegotiated(): Negotiated {
    if (this.negotiated) return this.negotiated;
    if (this.failure) return NOT_NEGOTIATED;
    throw new Error(`MilterClient ${this.name}: a step before open() succeeded`);
  }

  private step(cmd: MtaCommand, macros?: MacroInput): Promise<StepOutcome> {
    const n = this.requireNegotiated();
    if (this.failure) return Promise.resolve(this.after(stageOf(cmd.type)));
    return this.perform(prepareStep(n, cmd, macros)) as Promise<StepOutcome>;
  }

  private send(type: MtaCommandType, bytes: Uint8Array, expectReply: boolean, via: DecisionSource = "no-reply", t0 = -1): any {
    if (this.pending) throw new Error(`MilterClient ${this.name}: ${stageOf(type)} while ${this.pending.stage} is still pending`);
    const stage = stageOf(type);
    this.lastStage = stage;
    const conn = this.conn!;
    if (this.deferred) {
      bytes = Buffer.concat([this.deferred, bytes]);
      this.deferred = undefined;
    }
    let below: boolean;
    try {
      this.opts.trace?.("send", bytes);
      this.observer?.sent?.(type, stage, bytes);
      below = conn.send(bytes);
    } catch (e) {
      return this.fail("connection-error", stage, (e as Error).message);
    }
    if (!expectReply) {
      const done = decision("continue", stage, via);
      if (below) return done;
      // Honour backpressure for steps nobody answers (NR_BODY with a big body): the step
      // ends when the queue drained, or with the failure (writing timeout) that ended it.
      return new Promise((resolve) => {
        const p: Pending = { type, stage, resolve, progress: 0, flushing: true, t0 };
        this.pending = p;
        conn.flushed().then(
          () => this.pending === p && this.finish(p, done),
          (e) => this.pending === p && this.onClose(e instanceof ConnectionError ? e : undefined),
        );
      });
    }
    return new Promise((resolve) => {
      this.pending = { type, stage, resolve, progress: 0, mods: type === "eob" ? [] : undefined, t0 };
      this.armTimers(type);
    });
  }

  private armTimers(type: MtaCommandType): void {
    const o = this.opts;
    if (type === "eob") {
      const ms = o.endOfMessageTimeoutMs ?? CHILD_TIMEOUTS.endOfMessageTimeoutMs;
      if (ms > 0) this.eomDeadline.start(ms);
      const total = o.endOfMessageTotalTimeoutMs ?? 0;
      if (total > 0) this.totalTimer = setTimeout(() => this.onTimeout("end-of-message-total", total), total);
    } else {
      const ms = o.readingTimeoutMs ?? CHILD_TIMEOUTS.readingTimeoutMs;
      if (ms > 0) this.readDeadline.start(ms);
    }
  }

  private onReadTimer(): void {
    const p = this.pending;
    if (p && !p.flushing && p.type !== "eob") this.onTimeout("reading", this.opts.readingTimeoutMs ?? CHILD_TIMEOUTS.readingTimeoutMs);
  }

  private onEomTimer(): void {
    if (this.pending?.type === "eob") this.onTimeout("end-of-message", this.opts.endOfMessageTimeoutMs ?? CHILD_TIMEOUTS.endOfMessageTimeoutMs);
  }

  /** A reply is complete: only the total timer is per step; the other two stay for the next step. */
  private stepDone(): void {
    if (this.totalTimer) clearTimeout(this.totalTimer);
    this.totalTimer = undefined;
  }

  /** The connection is over: no timer may keep this client (or the process) alive. */
  private clearTimers(): void {
    this.readDeadline.clear();
    this.eomDeadline.clear();
    if (this.totalTimer) clearTimeout(this.totalTimer);
    this.totalTimer = undefined;
  }

  private onTimeout(timer: TimerName, ms: number): void {
    const p = this.pending;
    if (!p) return;
    const what = timer === "end-of-message-total" ? "the end-of-message exchange did not finish" : `no reply to ${p.stage}`;
    this.fail("timeout", p.stage, `${this.name}: ${what} within ${ms / 1000} s`, timer);
  }

  private onData(chunk: Uint8Array): void {
    if (this.failure) return;
    this.opts.trace?.("receive", chunk);
    try {
      this.reader.push(chunk, this.onPacketBound);
    } catch (e) {
      if (!(e instanceof MilterProtocolError)) throw e;
      this.fail("protocol-error", this.pending?.stage ?? this.lastStage, `${this.name}: ${e.message}`);
    }
    // Still waiting (e.g. `h` came, `c` will follow): a milter with Nagle on holds its next small
    // write until we acknowledge this one, and our next command, which would carry the ACK, waits for it.
    if (this.pending && !this.failure) this.conn?.acknowledge();
  }

  private onPacket(code: number, payload: Buffer): void {
    if (this.failure) return;
    const p = this.pending;
    let reply: MilterReply;
    try {
      reply = decodeReply(code, payload);
    } catch (e) {
      if (!(e instanceof MilterProtocolError)) throw e;
      this.fail("protocol-error", p?.stage ?? this.lastStage, `${this.name}: ${e.message}`);
      return;
    }
    if (!p || p.flushing) {
      this.fail("protocol-error", this.lastStage, `${this.name}: unexpected ${replyName(code)} after ${this.lastStage}, while no reply was expected`);
      return;
    }
    if (p.type === "optneg") return this.onNegotiateReply(p, reply, code);
    if (reply.type === "progress") {
      // libmilter's smfi_progress() is for the end-of-message callback only; elsewhere it would
      // let a milter hold the MTA while telling it nothing.
      if (p.type !== "eob") return this.unexpected(p, code, "progress is only valid at end-of-message");
      p.progress++;
      const ms = this.opts.endOfMessageTimeoutMs ?? CHILD_TIMEOUTS.endOfMessageTimeoutMs;
      if (ms > 0) this.eomDeadline.start(ms); // as milter-manager does; the total (if any) still applies
      try {
        this.onProgress?.(p.stage);
      } catch {} // a caller's callback must not break the session
      return;
    }
    const n = this.negotiated!;
    if (isModification(reply)) {
      if (p.type !== "eob") return this.unexpected(p, code, "a modification outside end-of-message");
      if (!n.permits(reply.type)) return this.unexpected(p, code, "an action that was not negotiated");
      if (reply.type === "replbody" && this.onReplaceBody) return this.streamBody(p, reply.chunk);
      const o = this.opts;
      p.modBytes = (p.modBytes ?? 0) + payload.length + 1;
      let over: string | undefined;
      if (o.maxModifications && p.mods!.length >= o.maxModifications) over = `more than ${o.maxModifications} modifications`;
      else if (o.maxModificationBytes && p.modBytes > o.maxModificationBytes) over = `more than ${o.maxModificationBytes} bytes of modifications`;
      if (over) {
        this.fail("protocol-error", p.stage, `${this.name}: ${over} for one message`);
        return;
      }
      p.mods!.push(toModification(reply));
      return;
    }
    const status = decisionStatus(reply.type);
    if (status === undefined) return this.unexpected(p, code, "not a reply the MTA accepts");
    if (status === "skip" && p.type !== "body") return this.unexpected(p, code, "skip is only valid after a body chunk");
    // A skip without SMFIP_SKIP loses nothing (it is never passed on to the MTA): honour it (docs/tolerances.md).
    if (status === "skip" && !n.skip) this.tolerated(`${this.name}: skip in reply to a body chunk although SMFIP_SKIP was not negotiated; honoured`);
    const out: DecisionOutcome = { ok: true, status, stage: p.stage, via: "reply" };
    if (reply.type === "replycode") {
      const parsed = parseReplyCode(reply.text);
      if (typeof parsed === "string") return this.unexpected(p, code, parsed);
      out.reply = parsed;
    }
    if (status === "skip") this.skipped = true;
    this.finish(p, p.mods ? { ...out, modifications: p.mods, progress: p.progress } : out);
  }

  /** A replace-body chunk for onReplaceBody; the outcome keeps only where the replacement started. */
  private streamBody(p: Pending, chunk: Uint8Array): void {
    if (!p.streamed) {
      p.streamed = true;
      p.mods!.push({ type: "replace-body", chunk: new Uint8Array(0) });
    }
    try {
      this.onReplaceBody!(chunk);
    } catch (e) {
      this.fail("protocol-error", p.stage, `${this.name}: cannot keep the replacement body: ${(e as Error)?.message ?? e}`);
    }
  }

  private onNegotiateReply(p: Pending, reply: MilterReply, code: number): void {
    if (reply.type !== "optneg") return this.unexpected(p, code, "negotiation needs an SMFIC_OPTNEG reply");
    let negotiated: Negotiated;
    try {
      negotiated = negotiateAsMta(this.offer!, reply);
    } catch (e) {
      if (!(e instanceof NegotiationError)) throw e;
      this.fail("protocol-error", "negotiate", `${this.name}: ${e.message}`);
      return;
    }
    this.negotiated = negotiated;
    this.reader.maxDataSize = negotiated.maxDataSize;
    this.finish(p, { ok: true, status: "negotiated", stage: "negotiate", negotiated, offer: this.offer!, reply });
  }

  private tolerated(what: string): void {
    try {
      this.onTolerated?.(what);
    } catch {} // a caller's callback must not break the session
  }

  private unexpected(p: Pending, code: number, why: string): void {
    this.fail("protocol-error", p.stage, `${this.name}: unexpected ${replyName(code)} in reply to ${p.stage}: ${why}`);
  }

  private finish(p: Pending, outcome: unknown): void {
    this.pending = undefined;
    this.stepDone();
    this.observed(p.type, p.stage, outcome as StepOutcome, p.t0);
    p.resolve(outcome);
  }

  private onClose(error: ConnectionError | undefined): void {
    if (this.failure) return;
    const stage = this.pending?.stage ?? this.lastStage;
    if (error?.kind === "write-timeout") this.fail("timeout", stage, error.message, "writing");
    else if (error) this.fail("connection-error", stage, error.message);
    else this.fail("closed", stage, `${this.name}: the milter closed the connection${this.pending ? ` while we waited for a reply to ${stage}` : ""}`);
  }

  /** Record the first failure; close the connection; hand the failure to the pending step. */
  private fail(status: FailureStatus, stage: StageName, detail: string, timer?: TimerName): FailureOutcome {
    if (this.failure && this.pending === undefined) return this.after(stage);
    const f = this.setFailure(status, stage, detail, timer);
    this.clearTimers();
    this.conn?.destroy();
    const p = this.pending;
    if (p) {
      this.pending = undefined;
      const outcome = p.mods ? { ...f, modifications: p.mods, progress: p.progress } : f;
      this.observed(p.type, p.stage, outcome, p.t0);
      p.resolve(outcome);
    }
    return f;
  }

  private setFailure(status: FailureStatus, stage: StageName, detail: string, timer?: TimerName): FailureOutcome {
    const f: FailureOutcome = { ok: false, status, stage, detail };
    if (timer) f.timer = timer;
    this.failure ??= f;
    return f;
  }

  /** Outcome of a step asked for after the connection ended. */
  private after(stage: StageName): FailureOutcome {
    const f = this.failure!;
    if (this.quitting || f.status === "closed") return { ok: false, status: "closed", stage, detail: f.detail };
    return { ok: false, status: "closed", stage, detail: `connection already failed: ${f.detail}` };
  }
}

/**
 * One step encoded for a negotiation, reusable on every client whose
 * negotiation has the same negotiationKey(). Immutable: the bytes may be
 * queued by several connections at once.
 */
export interface PreparedStep {
  readonly type: MtaCommandType;
  readonly stage: StageName;
  /** What goes out in one write (`D` + command, or only the `D` of a suppressed stage); undefined = nothing. */
  readonly bytes: Uint8Array | undefined;
  /** Wait for a reply (false under NR_* and for D/A/Q/K, or when nothing is sent). */
  readonly expectReply: boolean;
  /** Reported when no reply is awaited. */
  readonly via: DecisionSource;
  /** Set when the command cannot be encoded (NUL in a string, too large): performing it fails the step. */
  readonly error?: string;
}

/**
 * Encode a step as the negotiation wants it: nothing for a version-gated
 * command (T < v4, U < v3, K < v6) nor its macros; only the `D` for a
 * NO_* command (both MTAs still send the macros); `D` + command otherwise,
 * macros filtered by the milter's symbol list for that stage.
 */
export function prepareStep(n: Negotiated, cmd: MtaCommand, macros?: MacroInput): PreparedStep {
  const type = cmd.type;
  const stage = stageOf(type);
  const since = SINCE[type];
  if (since !== undefined && n.version < since) return { type, stage, bytes: undefined, expectReply: false, via: "not-sent" };
  const def = macros === undefined ? undefined : macroCommand(n, type, macros);
  const sends = n.sends(type);
  const cmds: MtaCommand[] = sends ? (def ? [def, cmd] : [cmd]) : def && macroStageOf(type) !== undefined ? [def] : [];
  const expectReply = sends && n.expectsReply(type);
  const via: DecisionSource = sends ? "no-reply" : "not-sent";
  if (cmds.length === 0) return { type, stage, bytes: undefined, expectReply: false, via };
  try {
    return { type, stage, bytes: encodeCommands(cmds, n.maxDataSize), expectReply, via };
  } catch (e) {
    if (!(e instanceof MilterProtocolError)) throw e;
    return { type, stage, bytes: undefined, expectReply: false, via, error: e.message };
  }
}

/** Body bytes as `B` steps of at most the agreed data size; none for an empty chunk or under NO_BODY. */
export function prepareBody(n: Negotiated, chunk: Uint8Array, macros?: MacroInput): PreparedStep[] {
  if (chunk.length === 0 || !n.sends("body")) return [];
  return splitBody(chunk, n.maxDataSize).map((piece) => prepareStep(n, { type: "body", chunk: piece }, macros));
}

/** The `C` command for a client address (family "U" carries none). */
export function connectCommand(hostname: string, client: ClientAddress): ConnectCommand {
  return client.family === "U"
    ? { type: "connect", hostname, family: "U" }
    : { type: "connect", hostname, family: client.family, port: client.port ?? 0, address: client.address };
}

/** Do prepared steps of `a` suit `b` (negotiationKey equal)? Cheap for the usual case without macro lists. */
export function sameEncoding(a: Negotiated, b: Negotiated): boolean {
  if (a === b) return true;
  if (a.version !== b.version || a.protocol !== b.protocol || a.actions !== b.actions || a.maxDataSize !== b.maxDataSize) return false;
  if (a.macroLists.size === 0 && b.macroLists.size === 0) return true;
  return negotiationKey(a) === negotiationKey(b);
}

/** Identifies what prepared steps depend on: equal keys → the same bytes are valid. */
export function negotiationKey(n: Negotiated): string {
  let lists = "";
  for (const [stage, names] of n.macroLists) lists += `;${stage}:${names.join(" ")}`;
  return `${n.version}/${n.actions}/${n.protocol}/${n.maxDataSize}${lists}`;
}

/** `D` for a step: filtered by the milter's symbol list for that stage, if it sent one; undefined if empty. */
function macroCommand(n: Negotiated, type: MtaCommandType, input: MacroInput): MtaCommand | undefined {
  const given = input instanceof Map ? (input as ReadonlyMap<string, string>) : new Map(Object.entries(input));
  if (given.size === 0) return undefined;
  const wanted = n.requestedMacros(type);
  let macros: Map<string, string>;
  if (wanted !== undefined) macros = filterMacros(given, wanted);
  else if (allWireNames(given)) macros = given as Map<string, string>; // as decoded from an MTA: no copy
  else {
    macros = new Map();
    for (const [k, v] of given) macros.set(macroWireName(k), v);
  }
  return macros.size === 0 ? undefined : { type: "macro", command: commandLetter(type), macros };
}

function allWireNames(macros: ReadonlyMap<string, string>): boolean {
  for (const k of macros.keys()) if (macroWireName(k) !== k) return false;
  return true;
}

function stageOf(type: MtaCommandType): StageName {
  return stageName(type) ?? "unknown";
}

function decision(status: DecisionOutcome["status"], stage: StageName, via: DecisionSource): DecisionOutcome {
  return { ok: true, status, stage, via };
}

/**
 * A deadline that moves on every step and rarely passes. start() only stamps the due time while
 * the timer is armed for an earlier one: that timer fires first and waits for the rest then, so a
 * step costs no timer call. `fire` runs once the stamped time has passed.
 */
class StepDeadline {
  private timer: Timer | undefined;
  /** When the timer fires; 0 = not armed. */
  private armedFor = 0;
  private due = 0;

  constructor(private readonly fire: () => void) {}

  /** Due `ms` from now. */
  start(ms: number): void {
    this.due = Date.now() + ms;
    if (this.armedFor === 0 || this.armedFor > this.due) this.arm(ms);
  }

  /** No timer may stay (the connection is over). */
  clear(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.armedFor = this.due = 0;
  }

  private arm(ms: number): void {
    clearTimeout(this.timer);
    this.armedFor = Date.now() + ms;
    this.timer = setTimeout(this.onTimer, ms);
  }

  private readonly onTimer = (): void => {
    this.armedFor = 0;
    if (this.due === 0) return;
    const left = this.due - Date.now();
    if (left > 1) return this.arm(left);
    this.due = 0;
    this.fire();
  };
}

/** Placeholder returned by requireNegotiated() after a failed open(), so steps report the failure. */
const NOT_NEGOTIATED = undefined as unknown as Negotiated;
