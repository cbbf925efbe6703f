// One message's content phase through the children in order: the sequencing and the I/O. What
// each answer, stop and modification means is the rule book's: rules/content.ts (header,
// end-of-header, body) and rules/end-of-message.ts.
// - streaming: only the first waiting child gets the MTA's headers, end-of-header and body chunks
//   live, and its answer drives the reply to the MTA; every header and chunk is also kept here;
// - a child that leaves hands over to the next one, which is first replayed everything kept so far;
// - at end-of-message every remaining child in turn is replayed the whole message as changed by
//   the children before it (headers one by one, end-of-header, body in chunk_size pieces, then
//   end-of-message), and its modifications are applied to the message;
// - then the MTA gets the combined modifications and the compiled status in one reply.
import type { Macros, ModificationReply } from "../milter/index.ts";
import type { EndOfMessageOutcome, Modification, StepOutcome } from "../mta-side/index.ts";
import { BodyBuffer, type BodyBufferOptions } from "./body.ts";
import type { Child } from "./children.ts";
import { HeaderList, type MtaKind } from "./headers.ts";
import { type ChildAnswer, childAnswer, type FinalReply, realStatus, StageReply } from "./rules/answers.ts";
import { CONTENT, type ContentStage, headerValueFor } from "./rules/content.ts";
import { END_OF_MESSAGE, MessageEdits } from "./rules/end-of-message.ts";
import type { StopRule } from "./rules/envelope.ts";
import { type StopEvent, withMacros } from "./stop-hook.ts";

export interface PipelineEnv {
  /** HDR_LEADSPC was agreed with the MTA: header values keep their leading space in the message. */
  leadingSpace: boolean;
  /** Header entries the MTA counts for `i` but never shows (headers.ts; default 1, Postfix's Received:). */
  hiddenHeaders?: number;
  /**
   * The MTA whose behaviour between milters is reproduced (docs/transparency.md). Postfix: a
   * quarantine ends the chain, and a replaced body reaches the next milter with a final line end;
   * Sendmail: deleted headers stay as tombstones that later `m` indexes count. Default postfix.
   */
  mta?: MtaKind;
  /** manager.chunk_size: body pieces for replays and for replace-body towards the MTA. */
  chunkSize: number;
  body: BodyBufferOptions;
  /** Applicable conditions: should this child be stopped for this event? Macros they add for it go to onAdd. Undefined = never. */
  stop: ((child: Child, event: StopEvent, onAdd: (name: string, value: string) => void) => boolean | Promise<boolean>) | undefined;
  /** A log line about this message (the leader adds the session tag, except to statistics lines). */
  log(level: "warning" | "info" | "debug" | "statistics", text: string): void;
  /** The session tag, for statistics lines. */
  tag?: number;
}

/** One child's answer to one command: what it compiles as, and its end-of-message modifications. */
interface Step {
  answer: ChildAnswer;
  /** End-of-message answers: the child's modifications. */
  modifications?: Modification[];
}

const CONTINUE: FinalReply = { status: "continue" };
const CONTINUE_STEP: Step = { answer: { status: "continue" } };
const SKIP_STEP: Step = { answer: { status: "skip" } };
const CRLF = new Uint8Array([0x0d, 0x0a]);
/** A content command as the conditions see it (stop-hook.ts), also what request() sends. */
type ContentEvent = Extract<StopEvent, { stage: ContentStage }>;
const END_OF_HEADER: ContentEvent = Object.freeze({ stage: "end-of-header" });
const END_OF_MESSAGE_EVENT: StopEvent & { stage: "end-of-message" } = Object.freeze({ stage: "end-of-message" });

/** What the MTA gets at end of message. */
export interface EomOutput {
  modifications: ModificationReply[];
  /** The replaced body, read from the message's body (memory or spill file) as it is sent: dispose() only after. */
  body: Iterable<Uint8Array> | undefined;
  reply: FinalReply;
}

export class MessagePipeline {
  readonly headers: HeaderList;
  /** The message body (as changed by the children so far). */
  readonly content: BodyBuffer;
  /** A final answer for the message was given: nobody takes part any more. */
  finished = false;

  private sawEndOfHeader = false;
  private pos = 0;
  private readonly edits: MessageEdits;
  // Latest macros of each content stage, for replays.
  private headerMacros: Macros | undefined;
  private eohMacros: Macros | undefined;
  private bodyMacros: Macros | undefined;
  private eomMacros: Macros | undefined;
  private readonly mta: MtaKind;
  /** Body data the MTA sent inside its end-of-message packet: each child gets it inside its own. */
  private eomChunk: Uint8Array | undefined;
  /** The command the current child is answering live (stream). */
  private live: { child: Child; event: ContentEvent; macros: Macros | undefined } | undefined;

  /**
   * @param queue children taking part, in order
   * @param everyone every child of the session (a refusal aborts all of them)
   */
  constructor(
    private readonly env: PipelineEnv,
    private readonly queue: readonly Child[],
    private readonly everyone: readonly Child[],
  ) {
    this.content = new BodyBuffer(env.body);
    this.mta = env.mta ?? "postfix";
    this.headers = new HeaderList([], env.hiddenHeaders, this.mta === "sendmail");
    this.edits = new MessageEdits(
      { headers: this.headers, body: this.content },
      { leadingSpace: env.leadingSpace, chunkSize: env.chunkSize, tag: env.tag ?? 0, log: (level, text) => env.log(level, text) },
    );
  }

  // ---- streaming (the MTA is still sending) ----

  header(name: string, value: string, macros: Macros | undefined): Promise<FinalReply> {
    this.headers.append(name, value);
    this.headerMacros = macros;
    return this.stream({ stage: "header", name, value }, macros);
  }

  endOfHeader(macros: Macros | undefined): Promise<FinalReply> {
    this.sawEndOfHeader = true;
    this.eohMacros = macros;
    return this.stream(END_OF_HEADER, macros);
  }

  body(chunk: Uint8Array, macros: Macros | undefined): Promise<FinalReply> {
    this.content.append(chunk);
    this.bodyMacros = macros;
    return this.stream({ stage: "body", chunk }, macros);
  }

  /**
   * The current child gets the command live; a child that has not started yet is replayed
   * everything so far. The usual case (the child has the message live, no condition to ask) is
   * one promise for the round trip: the child's answer is read by liveAnswered.
   */
  private stream(event: ContentEvent, macros: Macros | undefined): Promise<FinalReply> {
    const child = this.queue[this.pos];
    if (child === undefined || !child.started || this.env.stop !== undefined || (event.stage === "body" && child.skipBody)) {
      return this.streamFrom(event, macros, new StageReply());
    }
    this.live = { child, event, macros };
    return this.request(child, event, macros).then(this.liveAnswered);
  }

  private readonly liveAnswered = (outcome: StepOutcome | EndOfMessageOutcome): FinalReply | Promise<FinalReply> => {
    const { child, event, macros } = this.live!;
    this.live = undefined;
    const step = this.answered(child, outcome);
    const move = CONTENT[event.stage].answer(step.answer.status);
    if (move === "continue") return CONTINUE;
    if (move === "skip") {
      child.skipBody = true;
      return CONTINUE;
    }
    const reply = new StageReply();
    reply.add(step.answer);
    if (move === "refuse") {
      this.refuse();
      return reply.final();
    }
    this.leave(child); // accept: the next child takes over in the same step
    return this.streamFrom(event, macros, reply);
  };

  private async streamFrom(event: ContentEvent, macros: Macros | undefined, reply: StageReply): Promise<FinalReply> {
    const rule = CONTENT[event.stage];
    for (;;) {
      const child = this.queue[this.pos];
      if (child === undefined) {
        this.finished = true; // every child left: the compiled status (normally ACCEPT) ends the message
        return reply.final();
      }
      const step = !child.started ? await this.start(child, false) : event.stage === "body" && child.skipBody ? SKIP_STEP : await this.command(child, event, macros);
      reply.add(step.answer);
      switch (rule.answer(step.answer.status)) {
        case "continue":
          return CONTINUE;
        case "skip":
          child.skipBody = true;
          return CONTINUE;
        case "accept":
          this.leave(child);
          continue;
        case "refuse":
          this.refuse();
          return reply.final();
      }
    }
  }

  // ---- end of message ----

  async endOfMessage(macros: Macros | undefined, chunk?: Uint8Array): Promise<EomOutput> {
    this.eomMacros = macros;
    this.eomChunk = chunk && chunk.length > 0 ? chunk : undefined;
    const original = this.headers.snapshot();
    const reply = new StageReply();
    while (!this.finished) {
      const child = this.queue[this.pos];
      if (child === undefined) break;
      child.streamReplacement(this.env.body);
      const step = child.started ? await this.command(child, END_OF_MESSAGE_EVENT, macros) : await this.start(child, true);
      reply.add(step.answer);
      if (END_OF_MESSAGE.answer(step.answer.status) === "refuse") {
        child.dropReplacement();
        this.refuse();
        break;
      }
      if (step.modifications) this.edits.apply(child, step.modifications);
      child.dropReplacement(); // not applied (evaluation mode, failure): its file goes
      this.leave(child);
      if (this.edits.quarantined && END_OF_MESSAGE.quarantineEndsChain(this.mta)) {
        for (const c of this.queue.slice(this.pos)) c.take("abort");
        break;
      }
    }
    this.finished = true;
    return { modifications: this.edits.packets(original), body: this.edits.replacedBodyChunks(), reply: reply.final() };
  }

  /** The MTA's end-of-message data, unless a child replaced the body it belonged to. */
  private eomData(): Uint8Array | undefined {
    return this.edits.replacedBody ? undefined : this.eomChunk;
  }

  /**
   * The body for a replay, in chunk_size pieces. Postfix keeps a body as lines, so after a child
   * replaced it without a final line end the next milter gets that last line ended (CRLF).
   */
  private *bodyChunks(): Generator<Uint8Array> {
    const size = this.env.chunkSize;
    const endLine = this.mta === "postfix" && this.edits.replacedBodyLacksLineEnd;
    // A piece from the spill file is valid only until the next is asked for: the last one is known
    // by the running total, never by holding a piece while reading the next.
    const total = this.content.size;
    let pos = 0;
    for (const chunk of this.content.chunks(size)) {
      pos += chunk.length;
      if (!endLine || pos < total) {
        yield chunk;
        continue;
      }
      if (chunk.length + CRLF.length <= size) {
        const joined = new Uint8Array(chunk.length + CRLF.length);
        joined.set(chunk);
        joined.set(CRLF, chunk.length);
        yield joined;
        return;
      }
      yield chunk;
      yield CRLF;
      return;
    }
    if (endLine && total === 0) yield CRLF;
  }

  /** The message is over (answered, aborted, or the session ends): release the body's file. */
  dispose(): void {
    this.finished = true;
    this.content.dispose();
  }

  // ---- children ----

  private start(child: Child, toEndOfMessage: boolean): Promise<Step> {
    child.started = true;
    return this.replay(child, toEndOfMessage);
  }

  /** Everything kept so far (headers as changed so far, end-of-header, body), then end-of-message if asked. */
  private async replay(child: Child, toEndOfMessage: boolean): Promise<Step> {
    const n = child.negotiated!;
    if (n.sends("header")) {
      for (const h of this.headers.items) {
        const step = await this.command(child, { stage: "header", name: h.name, value: h.value }, this.headerMacros);
        if (CONTENT.header.answer(step.answer.status) !== "continue") return step;
      }
    }
    if (this.sawEndOfHeader || toEndOfMessage) {
      const step = await this.command(child, END_OF_HEADER, this.eohMacros);
      if (CONTENT["end-of-header"].answer(step.answer.status) !== "continue") return step;
    }
    if (!child.skipBody && n.sends("body")) {
      for (const chunk of this.bodyChunks()) {
        const step = await this.command(child, { stage: "body", chunk }, this.bodyMacros);
        const move = CONTENT.body.answer(step.answer.status);
        if (move === "skip") {
          child.skipBody = true;
          break;
        }
        if (move !== "continue") return step;
      }
    }
    if (toEndOfMessage) {
      return this.command(child, END_OF_MESSAGE_EVENT, this.eomMacros);
    }
    return child.skipBody ? SKIP_STEP : CONTINUE_STEP;
  }

  /** Ask the conditions, then send (with the macros they added); what the child's answer (or failure) compiles as. */
  private async command(child: Child, event: ContentEvent | typeof END_OF_MESSAGE_EVENT, macros: Macros | undefined): Promise<Step> {
    const ask = this.env.stop;
    if (ask !== undefined) {
      let added: Map<string, string> | undefined;
      const r = ask(child, event, (name, value) => (added ??= new Map()).set(name, value));
      if (r === true || (r !== false && (await r))) return this.stopped(child, event.stage);
      if (added) macros = withMacros(macros, added);
    }
    return this.answered(child, await this.request(child, event, macros));
  }

  /** The command to the child. */
  private request(child: Child, event: ContentEvent | typeof END_OF_MESSAGE_EVENT, macros: Macros | undefined): Promise<StepOutcome | EndOfMessageOutcome> {
    const client = child.client;
    switch (event.stage) {
      case "header":
        return client.header(event.name, this.valueFor(child, event.value), macros);
      case "end-of-header":
        return client.endOfHeader(macros);
      case "body":
        return client.body(event.chunk, macros);
      case "end-of-message":
        return client.endOfMessage(macros, this.eomData());
    }
  }

  /** What the child's answer (or failure) compiles as. */
  private answered(child: Child, outcome: StepOutcome | EndOfMessageOutcome): Step {
    const decision = child.decide(outcome);
    if (!outcome.ok) this.env.log("warning", `milter ${child.name} failed, counted as ${decision.status}: ${child.failure}`);
    const answer = childAnswer(decision, child.evaluation);
    if (child.evaluation && answer.status !== realStatus(decision)) {
      this.env.log("info", `milter ${child.name} (evaluation mode) answered ${decision.status} at ${outcome.stage}; not applied`);
    }
    if (outcome.ok && "modifications" in outcome) return { answer, modifications: outcome.modifications };
    return { answer };
  }

  /** A condition stopped the child: the stage's stop rule (rules/content.ts, rules/end-of-message.ts). */
  private stopped(child: Child, stage: ContentStage | "end-of-message"): Step {
    const rule: StopRule = stage === "end-of-message" ? END_OF_MESSAGE.stop : CONTENT[stage].stop;
    this.env.log("debug", `milter ${child.name} stopped at ${stage}`);
    child.lastStatus = "stop";
    child.take(rule.child);
    return { answer: rule.compiled ?? { status: "not-change" } };
  }

  private leave(child: Child): void {
    child.take("leave-message");
    this.pos++;
  }

  /** The message is refused: every child still in the transaction is aborted. */
  private refuse(): void {
    for (const c of this.everyone) c.take("abort");
    this.finished = true;
  }

  /** A header value from the message, as this child wants it. */
  private valueFor(child: Child, value: string): string {
    return headerValueFor(this.env.leadingSpace, child.leadingSpace, value);
  }
}
