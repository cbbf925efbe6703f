// One MTA connection (manager.md §2): the milter-side handler that opens the children at
// negotiation, sends the envelope stages to them, hands the content phase to the message
// pipeline, and answers the MTA. This file only sequences and does the I/O: which children take
// part in a stage, what their answers and condition stops do, when the message is aborted and
// how failures count are the rule book's (rules/: envelope.ts for connect … data and unknown,
// content.ts and end-of-message.ts for the pipeline, failures.ts, answers.ts).
import type { FallbackStatus, ManagerConfig, MilterConfig } from "./config/schema.ts";
import { Child, openChildren } from "./children.ts";
import { type ManagerEvents, NO_EVENTS } from "./events.ts";
import type { Availability } from "./rules/availability.ts";
import type { ManagerLog } from "./log.ts";
import { SessionLog } from "./session-log.ts";
import {
  childAnswer,
  type FinalReply,
  fromMtaReply,
  realStatus,
  StageReply,
  statisticsStatus,
  toMtaReply,
} from "./rules/answers.ts";
import { CONTENT_PHASE } from "./rules/content.ts";
import { ENVELOPE, type EnvelopeRule, type EnvelopeStage, mustRunData, refusedByMta, takingPart } from "./rules/envelope.ts";
import { fatalFallback } from "./rules/failures.ts";
import { childOffer, leadingSpaceAgreed, mergeNegotiation } from "./negotiate.ts";
import { hiddenHeadersOf, mtaOf } from "./headers.ts";
import { MessagePipeline } from "./pipeline.ts";
import { askStop, type Conditions, type NotifyContext, type StopContext, type StopEvent, withMacros } from "./stop-hook.ts";
import { Continue, eom } from "../milter-side/index.ts";
import type { BodyInfo, EomResult, MilterHandler, SessionContext, SessionEnd } from "../milter-side/index.ts";
import {
  type BodyCommand,
  type ConnectCommand,
  type DataCommand,
  type DecisionReply,
  type EobCommand,
  type EohCommand,
  type HeaderCommand,
  type HeloCommand,
  type Macros,
  type MacroStage,
  type MailCommand,
  type MilterRequest,
  type MtaCommand,
  type Negotiated,
  type OptionWords,
  type OptnegCommand,
  parseSymbolList,
  type RcptCommand,
  SMFIF_SETSYMLIST,
  SMFIP_RCPT_REJ,
  type StageName,
  type UnknownCommand,
} from "../milter/index.ts";
import { type ClientAddress, connectCommand, type PreparedStep, prepareStep, sameEncoding, type StepOutcome } from "../mta-side/index.ts";

/** What every session of a running manager shares. */
export interface LeaderEnv {
  config: ManagerConfig;
  log: ManagerLog;
  /** Where answers, failures, child states and session ends are counted (monitor.ts); default none. */
  events?: ManagerEvents;
  /** Applicable conditions (conditions/registry.ts); undefined = no child is ever stopped. */
  conditions?: Conditions;
  /** Body bytes kept in memory before spilling to a temporary file (default 5 MiB). */
  bodySpillThreshold?: number;
  /** Directory for body spill files (default os.tmpdir()). */
  tmpDir?: string;
  /** A child could not be connected at negotiation: may it be started (launcher.ts) and tried once more? */
  unreachable?: (milter: MilterConfig) => Promise<boolean>;
  /** Which children are down, across sessions (rules/availability.ts); undefined = every session tries every child. */
  availability?: Availability;
  /** A child's part in the session is over (statistics `[milter][end]` line); reported at the session end. */
  onChildEnd?(info: { id: number; name: string; stage: string; status: string; elapsedMs: number }): void;
  /** A session ended: its last stage and the status the MTA got last. */
  onSessionEnd?(info: { id: number; stage: StageName; status: string; elapsedMs: number; end: SessionEnd }): void;
}

export class Leader implements MilterHandler {
  private children: Child[] = [];
  /** Every child of the session, also those that failed to negotiate or belonged to an SMTP session before `K`. */
  private everyChild: Child[] = [];
  /** Set when a child that could not be negotiated has a refusing fallback: every command gets it (manager.md §2.3 step 7). */
  private fatalFallback: FallbackStatus | undefined;
  private offer: OptionWords = { version: 6, actions: 0, protocol: 0 };
  private mtaVersion = 6;
  private leadingSpace = false;
  private rcptRejected = false;
  private message: MessagePipeline | undefined;
  private dataSeen = false;
  private busy = false;
  private readonly transaction = new Map<string, unknown>();
  private readonly sessionStore = new Map<string, unknown>();
  /** Last stage the MTA got an answer for, and that answer (statistics line at the end). */
  private lastStage: StageName = "negotiate";
  private lastStatus = "pass";
  private readonly startedAt = performance.now();
  /** The session's summary lines, debug trace and events. */
  private readonly record: SessionLog;
  private readonly events: ManagerEvents;
  /** The recipient being asked about (counted on the summary line when not refused). */
  private pendingRcpt: string | undefined;
  /** The answer the MTA got at the last stage of the current message. */
  private messageStatus = "pass";
  private messageStage: StageName = "envelope-from";

  constructor(
    private readonly env: LeaderEnv,
    private readonly ctx: SessionContext,
  ) {
    this.events = env.events ?? NO_EVENTS;
    this.record = new SessionLog(env.log, this.events, ctx.id);
    this.events.sessionStart();
  }

  // ---- negotiate (manager.md §2.3) ----

  async negotiate(offer: OptnegCommand, ctx: SessionContext): Promise<MilterRequest> {
    this.offer = childOffer(offer);
    this.mtaVersion = this.offer.version;
    this.busy = true;
    ctx.signal.addEventListener("abort", () => this.mtaGone(), { once: true });
    await this.openAll();
    this.busy = false;
    const reply = mergeNegotiation(offer, this.children.map((c) => c.negotiated!));
    this.leadingSpace = leadingSpaceAgreed(reply);
    this.rcptRejected = (reply.protocol & SMFIP_RCPT_REJ) !== 0;
    if (this.children.length === 0 && this.fatalFallback === undefined) {
      this.log("info", "no milter available: every command gets manager.fallback_status");
    }
    const request: MilterRequest = { version: reply.version, actions: reply.actions & ~SMFIF_SETSYMLIST, protocol: reply.protocol };
    if (reply.macroLists) request.macroLists = new Map(reply.macroLists.map((l) => [l.stage as MacroStage, parseSymbolList(l.macros)]));
    return request;
  }

  // ---- envelope stages (manager.md §2.4) ----

  connect(cmd: ConnectCommand, ctx: SessionContext): DecisionReply | Promise<DecisionReply> {
    this.lastStage = "connect";
    // Forwarded as the MTA sent it (protocol.md §6 item 13).
    const address: ClientAddress = cmd.family === "U" ? { family: "U" } : { family: cmd.family, address: cmd.address, port: cmd.port };
    this.record.connect(cmd.hostname, cmd.family === "U" ? undefined : cmd.address, cmd.family === "U" ? undefined : cmd.port);
    return this.fanOut("connect", ctx.macros.stage("C"), shared(connectCommand(cmd.hostname, address)), {
      stage: "connect",
      command: cmd,
    });
  }

  helo(cmd: HeloCommand, ctx: SessionContext): DecisionReply | Promise<DecisionReply> {
    this.lastStage = "helo";
    this.record.setHelo(cmd.hostname);
    return this.fanOut("helo", ctx.macros.stage("H"), shared({ type: "helo", hostname: cmd.hostname }), { stage: "helo", fqdn: cmd.hostname });
  }

  envelopeFrom(cmd: MailCommand, ctx: SessionContext): DecisionReply | Promise<DecisionReply> {
    this.lastStage = "envelope-from";
    this.endMessage();
    this.summarise();
    this.record.mail(cmd.address);
    this.messageStatus = "pass";
    this.messageStage = "envelope-from";
    this.record.setQueueId(ctx.macro("i"));
    this.transaction.clear();
    for (const c of this.children) c.newMessage();
    return this.fanOut(
      "envelope-from",
      ctx.macros.stage("M"),
      shared({ type: "mail", address: cmd.address, args: cmd.args }, (c) => {
        c.inTransaction = true;
      }),
      { stage: "envelope-from", from: cmd.address, args: cmd.args },
    );
  }

  envelopeRecipient(cmd: RcptCommand, ctx: SessionContext): DecisionReply | Promise<DecisionReply> {
    this.lastStage = "envelope-recipient";
    const byMta = refusedByMta(this.rcptRejected, ctx.macro("rcpt_mailer"));
    this.pendingRcpt = byMta ? undefined : cmd.address;
    return this.fanOut(
      "envelope-recipient",
      ctx.macros.stage("R"),
      shared({ type: "rcpt", address: cmd.address, args: cmd.args }),
      { stage: "envelope-recipient", recipient: cmd.address, args: cmd.args },
      byMta,
    );
  }

  data(_cmd: DataCommand, ctx: SessionContext): DecisionReply | Promise<DecisionReply> {
    this.lastStage = "data";
    return this.dataStage(ctx.macros.stage("T"));
  }

  unknown(cmd: UnknownCommand, ctx: SessionContext): DecisionReply | Promise<DecisionReply> {
    this.lastStage = "unknown";
    return this.fanOut("unknown", ctx.macros.stage("U"), shared({ type: "unknown", commandLine: cmd.commandLine }), undefined);
  }

  // ---- content stages (manager.md §2.5) ----

  header(cmd: HeaderCommand, ctx: SessionContext): Promise<DecisionReply> {
    this.lastStage = "header";
    return this.content(ctx, (p) => p.header(cmd.name, cmd.value, ctx.macros.stage("L")));
  }

  endOfHeader(_cmd: EohCommand, ctx: SessionContext): Promise<DecisionReply> {
    this.lastStage = "end-of-header";
    return this.content(ctx, (p) => p.endOfHeader(ctx.macros.stage("N")));
  }

  body(cmd: BodyCommand, ctx: SessionContext, info?: BodyInfo): DecisionReply | Promise<DecisionReply> {
    // Data inside the MTA's end-of-message goes to each child inside its own (endOfMessage below).
    if (info?.fromEndOfMessage) return Continue;
    this.lastStage = "body";
    return this.content(ctx, (p) => p.body(cmd.chunk, ctx.macros.stage("B")));
  }

  /**
   * A content command through the message's pipeline. Once the pipeline exists (every content
   * command but the first) it is called at once: no async frame nor extra promise per header.
   */
  private content(ctx: SessionContext, run: (p: MessagePipeline) => Promise<FinalReply>): Promise<DecisionReply> {
    const m = this.message;
    if (m !== undefined && !m.finished && this.fatalFallback === undefined) {
      const running = run(m);
      this.busy = true;
      return running.then(this.answerDuring, this.failDuring);
    }
    return this.pipeline(ctx).then((p) => {
      if (!(p instanceof MessagePipeline)) return this.answer(p);
      const running = run(p);
      this.busy = true;
      return running.then(this.answerDuring, this.failDuring);
    });
  }

  private readonly answerDuring = (r: FinalReply): DecisionReply => {
    this.busy = false;
    return this.answer(r);
  };

  private readonly failDuring = (e: unknown): never => {
    this.busy = false;
    throw e;
  };

  async endOfMessage(cmd: EobCommand, ctx: SessionContext): Promise<DecisionReply | EomResult> {
    this.lastStage = "end-of-message";
    const p = await this.pipeline(ctx);
    if (!(p instanceof MessagePipeline)) return this.answer(p);
    const out = await this.during(p.endOfMessage(ctx.macros.stage("E"), cmd.chunk));
    const reply = this.answer(out.reply);
    this.summarise();
    const answer = eom(out.modifications, reply);
    if (out.body === undefined) {
      p.dispose(); // the children are done with the body: release its file now
      return answer;
    }
    // The replaced body is read from its file as it is sent to the MTA; released after that.
    return { ...answer, body: thenDispose(out.body, p) };
  }

  // ---- abort, quit, end (manager.md §2.6) ----

  abort(): void {
    this.notify("abort", this.children);
    this.abortTransaction();
    if (this.messageStatus === "pass") this.messageStatus = "abort";
    this.summarise();
  }

  /** The message's summary line, when one is open. */
  private summarise(): void {
    if (this.record.inMessage) this.record.endMessage(this.messageStatus, this.messageStage);
  }

  quit(): void {
    this.endMessage();
    for (const c of this.children) c.quit();
  }

  /** `K`: a new SMTP session follows on this connection; children start afresh (libmilter honours `K` badly). */
  async newConnection(): Promise<void> {
    this.endMessage();
    this.notify("quit", this.children);
    for (const c of this.children) c.quit();
    this.children = [];
    this.sessionStore.clear();
    if (this.fatalFallback !== undefined) return;
    this.busy = true;
    await this.openAll();
    this.busy = false;
  }

  /** Connect and negotiate every enabled child in parallel; apply the fatal-fallback rule (manager.md §2.3 step 7). */
  private async openAll(): Promise<void> {
    const configs = this.env.config.milters.filter((m) => m.enabled);
    if (configs.length === 0) return;
    const { ready, failed, changes } = await openChildren(configs, this.offer, this.env.unreachable, this.env.availability);
    if (this.env.onChildEnd) this.everyChild.push(...ready, ...failed);
    this.children = ready;
    for (const c of ready) {
      this.record.opened(c.name, true);
      c.client.observer = this.record.observer(c.name, c.evaluation);
    }
    for (const { child: c, change } of changes) {
      const where = `milter ${c.name} (${c.config.connection_spec})`;
      if (change.event === "down") {
        this.log("warning", `${where} is down, counted as ${c.config.fallback_status} without trying for ${change.retryInMs / 1000} s, then one session tries again: ${c.failure}`);
      } else if (change.event === "up") {
        this.log("message", `${where} is back after ${(change.downForMs / 1000).toFixed(1)} s`);
      } else {
        this.log("info", `${where} is still down; next try in ${change.retryInMs / 1000} s: ${c.failure}`);
      }
    }
    for (const c of failed) {
      // Down and back are said once (above); without an availability record, every session says it.
      const level = this.env.availability ? "info" : "warning";
      if (!changes.some((x) => x.child === c)) this.log(level, `milter ${c.name} (${c.config.connection_spec}) is not available, counted as ${c.config.fallback_status}: ${c.failure}`);
      if (c.skipped) this.events.childFailure(c.name, "down", "negotiate", c.failure ?? "");
      else this.events.childFailure(c.name, c.client.lastFailure?.status ?? "timeout", "negotiate", c.failure ?? "", c.client.lastFailure?.timer ?? (c.client.lastFailure ? undefined : "connection"));
      this.record.opened(c.name, false, c.skipped ? undefined : c.failure);
    }
    const fatal = fatalFallback(failed.map((c) => c.config.fallback_status));
    if (fatal !== undefined) {
      // A child we must not do without is missing: answer every command with its fallback.
      this.fatalFallback = fatal;
      for (const c of ready) c.quit();
      this.children = [];
    }
    for (const c of this.children) {
      c.client.onProgress = () => void this.ctx.progress(); // only sent while EOM is pending
      c.client.onTolerated = (what) => this.log("debug", what);
    }
  }

  close(ctx: SessionContext, end: SessionEnd): void {
    this.endMessage();
    this.notify("quit", this.children);
    for (const c of this.children) c.quit(); // no-op for children already gone
    if (this.env.onChildEnd) {
      const now = performance.now();
      for (const c of this.everyChild) {
        const status = c.failure !== undefined ? "error" : (c.lastStatus ?? "pass");
        this.env.onChildEnd({ id: ctx.id, name: c.name, stage: c.lastStage, status, elapsedMs: (c.endedAt ?? now) - c.startedAt });
      }
    }
    const elapsedMs = performance.now() - this.startedAt;
    if (this.record.inMessage && this.messageStatus === "pass") this.messageStatus = "abort";
    this.summarise();
    this.record.end(this.lastStatus, this.lastStage, end.reason);
    this.events.sessionEnd(this.lastStatus, elapsedMs);
    this.env.onSessionEnd?.({ id: ctx.id, stage: this.lastStage, status: this.lastStatus, elapsedMs, end });
  }

  // ---- fan-out ----

  /**
   * Send a stage to the children its rule (rules/envelope.ts) asks, all at once, and compile their
   * answers. `byMta`: the recipient was refused by the MTA already.
   */
  private fanOut(
    stage: EnvelopeStage,
    macros: Macros | undefined,
    send: (child: Child, macros: Macros | undefined) => Promise<StepOutcome>,
    event: StopEvent | undefined,
    byMta = false,
  ): DecisionReply | Promise<DecisionReply> {
    const rule = ENVELOPE[stage];
    const pre = this.precheck(rule);
    if (pre) return this.answer(pre);
    if (rule.before) for (const c of takingPart(rule, this.children)) c.take(rule.before(c));
    const eligible = takingPart(rule, this.children).filter((c) => rule.asked?.(c, byMta) ?? true);
    if (eligible.length === 0) return this.answer({ status: rule.nobodyAsked });
    const reply = new StageReply();
    const asks = eligible.map((child) => this.ask(rule, stage, child, macros, send, event, reply, byMta));
    this.busy = true;
    return Promise.all(asks).then(() => {
      this.busy = false;
      const final = reply.final();
      if (reply.invalidReplyCode) this.log("warning", reply.invalidReplyCode);
      if (rule.abortsMessage(final.status)) this.abortTransaction();
      return this.answer(final);
    });
  }

  /** One child at one fan-out stage: conditions, send, compile, the rule's effect on the child. */
  private async ask(
    rule: EnvelopeRule,
    stage: EnvelopeStage,
    child: Child,
    macros: Macros | undefined,
    send: (child: Child, macros: Macros | undefined) => Promise<StepOutcome>,
    event: StopEvent | undefined,
    reply: StageReply,
    byMta: boolean,
  ): Promise<void> {
    if (event !== undefined && rule.stop && this.env.conditions) {
      let added: Map<string, string> | undefined;
      const stop = this.stopFor(child, event, (name, value) => (added ??= new Map()).set(name, value));
      if (stop === true || (stop !== false && (await stop))) {
        child.lastStatus = "stop";
        this.log("debug", `milter ${child.name} stopped at ${stage}`);
        this.record.answer(child.name, stage, "stop", 0);
        if (rule.stop.compiled) reply.add(rule.stop.compiled);
        child.take(rule.stop.child);
        return;
      }
      if (added) macros = withMacros(macros, added);
    }
    const outcome = await send(child, macros);
    const decision = child.decide(outcome);
    if (!outcome.ok) this.log("warning", `milter ${child.name} failed, counted as ${decision.status}: ${child.failure}`);
    reply.add(childAnswer(decision, child.evaluation));
    child.take(rule.answer(realStatus(decision), byMta));
  }

  /** Ask the conditions about one child and one command; macros they add for it go to `onAdd`. */
  private stopFor(child: Child, event: StopEvent, onAdd: (name: string, value: string) => void): boolean | Promise<boolean> {
    const context: StopContext = { ...this.notifyContext(), event, addMacro: onAdd };
    return askStop(this.env.conditions!, child, context, (e) =>
      this.log("warning", `applicable condition for ${child.name} at ${event.stage} failed: ${(e as Error)?.message ?? e}`),
    );
  }

  private notifyContext(): NotifyContext {
    return { sessionId: this.ctx.id, macros: this.ctx.macros, children: this.children, transaction: this.transaction, session: this.sessionStore };
  }

  /** Tell the conditions of every child that the MTA aborted or the session ends (errors only logged). */
  private notify(what: "abort" | "quit", children: readonly Child[]): void {
    const conditions = this.env.conditions;
    if (!conditions?.notify) return;
    const context = this.notifyContext();
    for (const child of children) {
      const failed = (e: unknown) => this.log("warning", `applicable condition for ${child.name} at ${what} failed: ${(e as Error)?.message ?? e}`);
      try {
        const r = conditions.notify(child, what, context);
        if (r) r.catch(failed);
      } catch (e) {
        failed(e);
      }
    }
  }

  // ---- DATA and the message pipeline ----

  private dataStage(macros: Macros | undefined): DecisionReply | Promise<DecisionReply> {
    this.dataSeen = true;
    return this.fanOut("data", macros, shared({ type: "data" }), { stage: "data" });
  }

  /** The pipeline of the current message, created at its first content command; or the answer when there is none. */
  private async pipeline(ctx: SessionContext): Promise<MessagePipeline | FinalReply> {
    if (this.fatalFallback !== undefined) return { status: this.fatalFallback };
    if (this.message) return this.message.finished ? this.noneLeft() : this.message;
    if (!this.children.some((c) => c.processing)) return this.noneLeft();
    if (mustRunData(this.dataSeen, this.mtaVersion)) {
      const r = await this.dataStage(ctx.macros.stage("T"));
      if (r.type !== "continue") return fromMtaReply(r);
    }
    for (const c of takingPart(CONTENT_PHASE, this.children)) c.take(CONTENT_PHASE.before(c));
    const queue = takingPart(CONTENT_PHASE, this.children);
    if (queue.length === 0) return this.noneLeft();
    const m = this.env.config.manager;
    const macro = (name: string) => ctx.macros.get(name);
    this.message = new MessagePipeline(
      {
        leadingSpace: this.leadingSpace,
        hiddenHeaders: hiddenHeadersOf(macro),
        mta: mtaOf(macro),
        chunkSize: m.chunk_size,
        body: { spillThreshold: this.env.bodySpillThreshold, tmpDir: this.env.tmpDir },
        stop: this.env.conditions ? (child, event, onAdd) => this.stopFor(child, event, onAdd) : undefined,
        log: (level, text) => this.log(level, text),
        tag: this.ctx.id,
      },
      queue,
      this.children,
    );
    return this.message;
  }

  /** Track that children are being waited for (the MTA going away then closes them). */
  private during<T>(p: Promise<T>): Promise<T> {
    this.busy = true;
    return p.then(
      (v) => {
        this.busy = false;
        return v;
      },
      this.failDuring,
    );
  }

  // ---- helpers ----

  /** The manager's own answer when no child can take the command (manager.md §2.4 step 1, rules/failures.ts), or undefined. */
  private precheck(rule: EnvelopeRule): FinalReply | undefined {
    if (this.fatalFallback !== undefined) return { status: this.fatalFallback };
    if (takingPart(rule, this.children).length > 0) return undefined;
    this.log("debug", rule.takesPart === "message" ? "None of milters are processing message." : "All milters are no longer alive.");
    return { status: this.env.config.manager.fallback_status };
  }

  private noneLeft(): FinalReply {
    this.log("debug", "None of milters are processing message.");
    return { status: this.env.config.manager.fallback_status };
  }

  /** Abort every child's transaction and forget the message (MTA abort, refused message). */
  private abortTransaction(): void {
    for (const c of this.children) c.abort();
    this.endMessage();
    this.transaction.clear();
  }

  private endMessage(): void {
    this.message?.dispose();
    this.message = undefined;
    this.dataSeen = false;
  }

  /** The MTA went away (or the session ended): stop waiting for children. */
  private mtaGone(): void {
    for (const c of this.children) {
      if (!c.alive) continue;
      if (this.busy) c.close(); // a step is pending: drop the connection so it resolves now
      else c.quit();
    }
    this.endMessage();
  }

  private answer(r: FinalReply): DecisionReply {
    this.lastStatus = statisticsStatus(r.status);
    if (this.record.inMessage) {
      this.messageStatus = this.lastStatus;
      this.messageStage = this.lastStage;
      if (this.lastStage === "envelope-recipient" && this.pendingRcpt !== undefined) {
        if (r.status !== "reject" && r.status !== "temporary-failure" && r.status !== "discard") this.record.rcpt(this.pendingRcpt);
        this.pendingRcpt = undefined;
      }
      if (this.lastStage !== "header" && this.lastStage !== "body") this.record.setQueueId(this.ctx.macro("i"));
    }
    return toMtaReply(r);
  }

  private log(level: "warning" | "message" | "info" | "debug" | "statistics", text: string): void {
    // Statistics lines carry the tag in their own place (runtime/statistics.ts), as log analyzers expect.
    if (this.env.log.enabled(level)) this.env.log.write(level, level === "statistics" ? text : `[${this.ctx.id}] ${text}`);
  }
}

/** The pieces of `body`, then `p` disposed (also when the reader stops early). */
function* thenDispose(body: Iterable<Uint8Array>, p: MessagePipeline): Generator<Uint8Array> {
  try {
    yield* body;
  } finally {
    p.dispose();
  }
}

/**
 * The send of a fan-out stage: `cmd` is encoded once for the children that negotiated alike (the
 * usual case: every child gets the same bytes), again only for a child that negotiated otherwise
 * or gets macros of its own from a condition. `before` runs for each child first.
 */
function shared(cmd: MtaCommand, before?: (child: Child) => void): (child: Child, macros: Macros | undefined) => Promise<StepOutcome> {
  let step: PreparedStep | undefined;
  let stepFor: Negotiated | undefined;
  let stepMacros: Macros | undefined;
  return (child, macros) => {
    before?.(child);
    const n = child.negotiated!;
    if (step === undefined || macros !== stepMacros || !sameEncoding(n, stepFor!)) {
      step = prepareStep(n, cmd, macros);
      stepFor = n;
      stepMacros = macros;
    }
    return child.client.perform(step) as Promise<StepOutcome>;
  };
}
