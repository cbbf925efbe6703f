/**
 * The milter side's public types: what a handler receives (typed commands and
 * a SessionContext) and what it returns (typed replies), plus the session's
 * error type. We are the milter here: an MTA (Postfix, Sendmail, milterkit's
 * manager upstream) connects to us.
 *
 * A handler method may return its result directly or as a Promise; the
 * session never hands the handler the next command before the reply to the
 * current one is on the wire (docs/api/milter-side.md).
 */
import type {
  BodyCommand,
  ConnectCommand,
  DataCommand,
  DecisionReply,
  EobCommand,
  EohCommand,
  HeaderCommand,
  HeloCommand,
  MacroContext,
  Macros,
  MailCommand,
  MilterRequest,
  ModificationReply,
  Negotiated,
  OptnegCommand,
  RcptCommand,
  StageName,
  UnknownCommand,
} from "../milter/index.ts";
import type { SocketAddress } from "../net/spec.ts";

/** A value or a promise of it: every handler method may be async. */
export type Awaitable<T> = T | PromiseLike<T>;

/**
 * Close the MTA's connection without answering the current command (the MTA
 * then applies its "milter unavailable" policy, e.g. Postfix's
 * milter_default_action). Valid as the result of any step.
 */
export interface CloseResult {
  type: "close";
}

/**
 * Result of a step that the MTA waits for: a decision (`continue`, `accept`,
 * `reject`, `tempfail`, `discard`, `skip`, `replycode` with SMTP text,
 * `shutdown`), `close`, or nothing (= continue).
 */
export type StepResult = DecisionReply | CloseResult | undefined | void;

/** End of message: modifications (sent in order, before the decision) and the final decision. */
export interface EomResult {
  /** h i m b + 2 - e q replies; each must be covered by the negotiated actions, else it is dropped and reported. */
  modifications?: readonly ModificationReply[];
  /** Final decision; default continue. `skip` at EOM is sent as continue. */
  reply?: DecisionReply | CloseResult;
  /**
   * A replacement body too large to hold as `b` packets: its pieces are sent as replbody packets
   * (split to the agreed data size) after `modifications`, each write waiting while the MTA has
   * not taken the previous ones (backpressure), then the decision. Iterated once, to the end or
   * until the MTA is gone (then its return() is called, so a generator can release what it holds).
   */
  body?: Iterable<Uint8Array>;
}

/** What endOfMessage may return: a plain step result or modifications + decision. */
export type EndOfMessageResult = StepResult | EomResult;

/**
 * Result of negotiate: what we ask the MTA for (actions, protocol bits, macro
 * lists, version, max data size; see MilterRequest), `close` to refuse the
 * connection, or nothing for the default (as libmilter: every offered action,
 * SMFIP_NO* for each event the handler has no method for, SKIP if offered and
 * the handler has a body method).
 */
export type NegotiateResult = MilterRequest | CloseResult | undefined | void;

/** Extra facts for abort(). */
export interface AbortInfo {
  /** True when the session synthesised the abort (a new MAIL/HELO/CONNECT, QUIT or EOF inside a transaction). */
  implicit: boolean;
  /** True if a transaction (MAIL … end of message) was open; Postfix also sends `A` outside one. */
  inTransaction: boolean;
}

/** Extra facts for body(). */
export interface BodyInfo {
  /** True when the chunk came inside the end-of-message packet (libmilter accepts data in `E`). */
  fromEndOfMessage: boolean;
}

/** Why a session ended (given to close() and onSessionEnd). */
export interface SessionEnd {
  /**
   * - `quit`: the MTA sent `Q`;
   * - `closed`: we closed it (handler returned close, or the server shut down);
   * - `disconnected`: EOF/reset without `Q`;
   * - `timeout`: the idle timeout expired;
   * - `error`: a protocol, negotiation or connection error.
   */
  reason: "quit" | "closed" | "disconnected" | "timeout" | "error";
  /** Set for every reason except `quit` and `closed`. */
  error?: MilterSessionError;
}

/** Per-session facts and services handed to every handler call. */
export interface SessionContext {
  /** Process-wide session number, starting at 1 (milter-manager's session tag). */
  readonly id: number;
  /** Printable peer, e.g. `inet:41234@[127.0.0.1]` or `client of unix:/run/x.sock`. */
  readonly peer: string;
  readonly remote: SocketAddress | undefined;
  readonly local: SocketAddress | undefined;
  /** The MTA's OPTNEG offer (undefined before it arrived). */
  readonly offer: OptnegCommand | undefined;
  /** What was agreed (undefined before negotiation finished). */
  readonly negotiated: Negotiated | undefined;
  /** Macros of all stages so far, with libmilter's lifetime rules (a new MAIL drops RCPT…EOM values, …). */
  readonly macros: MacroContext;
  /** A visible macro by any spelling (`j`, `{j}`, `daemon_name`, `{daemon_name}`); latest stage wins. */
  macro(name: string): string | undefined;
  /** Stage of the command being handled (milter-manager names: `connect`, `envelope-from`, …). */
  readonly stage: StageName | undefined;
  /** True between MAIL and the end of that message (or its abort/rejection). */
  readonly inTransaction: boolean;
  /** Number of SMTP sessions seen on this connection (1 + the number of `K` packets). */
  readonly smtpSession: number;
  /** Number of end-of-message packets handled so far on this connection. */
  readonly messages: number;
  /**
   * Aborted when the MTA went away or the session ended, so a handler waiting
   * for something slow (child milters) can give up. The reason is a
   * MilterSessionError or a SessionEnd.
   */
  readonly signal: AbortSignal;
  /**
   * Send SMFIR_PROGRESS (`p`) now, restarting the MTA's timer. Only during
   * end-of-message while its reply is pending (Sendmail refuses `p` elsewhere);
   * returns false (and sends nothing) otherwise.
   */
  progress(): boolean;
}

/**
 * One session's event handler; create one per connection in the factory
 * passed to serveMilter(). Every method is optional (a missing one answers
 * continue), may be async, and is called strictly in protocol order.
 * Results of commands whose reply was switched off (SMFIP_NR_*) are ignored.
 */
export interface MilterHandler {
  negotiate?(offer: OptnegCommand, ctx: SessionContext): Awaitable<NegotiateResult>;
  connect?(cmd: ConnectCommand, ctx: SessionContext): Awaitable<StepResult>;
  helo?(cmd: HeloCommand, ctx: SessionContext): Awaitable<StepResult>;
  envelopeFrom?(cmd: MailCommand, ctx: SessionContext): Awaitable<StepResult>;
  envelopeRecipient?(cmd: RcptCommand, ctx: SessionContext): Awaitable<StepResult>;
  data?(cmd: DataCommand, ctx: SessionContext): Awaitable<StepResult>;
  header?(cmd: HeaderCommand, ctx: SessionContext): Awaitable<StepResult>;
  endOfHeader?(cmd: EohCommand, ctx: SessionContext): Awaitable<StepResult>;
  body?(cmd: BodyCommand, ctx: SessionContext, info: BodyInfo): Awaitable<StepResult>;
  endOfMessage?(cmd: EobCommand, ctx: SessionContext): Awaitable<EndOfMessageResult>;
  unknown?(cmd: UnknownCommand, ctx: SessionContext): Awaitable<StepResult>;
  /** `A`, or an abort the session synthesised; never answered. */
  abort?(ctx: SessionContext, info: AbortInfo): Awaitable<void>;
  /** `Q`; close() follows. */
  quit?(ctx: SessionContext): Awaitable<void>;
  /** `K` (QUIT_NC): the SMTP session is over, a new one follows on this connection with the same options. */
  newConnection?(ctx: SessionContext): Awaitable<void>;
  /** `D`: macros for the next command (already stored in ctx.macros). `stage` is the command letter (`C`, `H`, …). */
  macro?(stage: string, macros: Macros, ctx: SessionContext): Awaitable<void>;
  /** Called exactly once when the session is over, after every other call has settled. */
  close?(ctx: SessionContext, end: SessionEnd): Awaitable<void>;
}

/** Creates the handler of a new session. Throwing refuses the connection (reported as a handler error). */
export type HandlerFactory = (ctx: SessionContext) => MilterHandler;

/**
 * What went wrong in a session:
 * - `protocol`: malformed, oversize or unknown packet, or a command before OPTNEG (the connection is closed);
 * - `negotiation`: the MTA's offer cannot be met (version < 2, actions missing);
 * - `handler`: a handler threw, returned an invalid value, or returned something
 *   that cannot be sent (un-negotiated modification, bad reply text); the session goes on;
 * - `timeout`: the MTA sent nothing for the idle timeout, or a handler did not settle in time;
 * - `disconnected`: the MTA closed the connection without QUIT;
 * - `connection`: a socket error.
 */
export type MilterSessionErrorKind = "protocol" | "negotiation" | "handler" | "timeout" | "disconnected" | "connection";

export class MilterSessionError extends Error {
  override readonly name = "MilterSessionError";
  constructor(
    readonly kind: MilterSessionErrorKind,
    /** Session id (SessionContext.id). */
    readonly sessionId: number,
    readonly peer: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** Options of one session (also accepted by serveMilter). */
export interface SessionOptions {
  /** Close a session when the MTA sends nothing for this long while we wait for it. Default 7 210 000 ms (libmilter's 7210 s). */
  idleTimeoutMs?: number;
  /** Close a connection whose MTA has not sent OPTNEG this long after connecting. Default 30 000 ms; 0 = never. */
  negotiationTimeoutMs?: number;
  /** Close a connection whose MTA started a packet and has not finished it after this long. Default 30 000 ms; 0 = never. */
  packetTimeoutMs?: number;
  /**
   * Give up on a handler call after this long: the late result is discarded, the
   * MTA gets `handlerErrorReply`, and a `timeout` error is reported. Default: the idle timeout.
   */
  handlerTimeoutMs?: number;
  /** Largest packet data we read; an MDS offer is accepted up to this. Default 65535. */
  maxDataSize?: number;
  /** Reply sent when a handler throws, times out or returns garbage. Default tempfail. */
  handlerErrorReply?: DecisionReply;
  /** Every error of every session. Default: one line on stderr. */
  onError?: (error: MilterSessionError, ctx: SessionContext) => void;
  /** A session started (after the factory ran). */
  onSessionStart?: (ctx: SessionContext) => void;
  /** A session ended (after the handler's close() settled). */
  onSessionEnd?: (ctx: SessionContext, end: SessionEnd) => void;
}
