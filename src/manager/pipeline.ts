// One message's content phase through the children in order (manager.md §2.5, §2.11):
// - streaming: only the first waiting child gets the MTA's headers, end-of-header and body chunks
//   live, and its answer drives the reply to the MTA; every header and chunk is also kept here;
// - a child that leaves (accept, evaluation-mode refusal, stop, failure with fallback accept)
//   hands over to the next one, which is first replayed everything kept so far;
// - at end-of-message every remaining child in turn is replayed the whole message as changed by
//   the children before it (headers one by one, end-of-header, body in chunk_size pieces, then
//   end-of-message), and its modifications are applied to the message;
// - then the MTA gets the combined modifications (header diff, change from, recipients, body,
//   quarantine) and the compiled status in one reply.
// A refusal (reject, temporary-failure, discard, reply code, or a failure whose fallback is one)
// ends the message at once: remaining children are aborted.
import type { ChgfromReply, Macros, ModificationReply } from "../milter/index.ts";
import type { EndOfMessageOutcome, Modification, StepOutcome } from "../mta-side/index.ts";
import { BodyBuffer, type BodyBufferOptions } from "./body.ts";
import type { Child } from "./children.ts";
import { addLeadingSpace, diffHeaders, type Header, HeaderList, stripLeadingSpace } from "./headers.ts";
import { type ChildAnswer, childAnswer, type FinalReply, isRefusal, realStatus, StageReply } from "./merge.ts";
import { type StopEvent, withMacros } from "./stop-hook.ts";
import { headerAddLine } from "../runtime/statistics.ts";

export interface PipelineEnv {
  /** HDR_LEADSPC was agreed with the MTA: header values keep their leading space in the message. */
  leadingSpace: boolean;
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

/** How one child's answer moves the pipeline. */
type Kind = "continue" | "skip" | "accept" | "refuse";

interface Step {
  kind: Kind;
  answer: ChildAnswer;
  /** End-of-message answers: the child's modifications. */
  modifications?: Modification[];
}

const CONTINUE: FinalReply = { status: "continue" };
const CONTINUE_STEP: Step = { kind: "continue", answer: { status: "continue" } };
const SKIP_STEP: Step = { kind: "skip", answer: { status: "skip" } };
const STOP_STEP: Step = { kind: "accept", answer: { status: "accept" } };

/** What the MTA gets at end of message. */
export interface EomOutput {
  modifications: ModificationReply[];
  reply: FinalReply;
}

export class MessagePipeline {
  readonly headers = new HeaderList();
  /** The message body (as changed by the children so far). */
  readonly content: BodyBuffer;
  /** A final answer for the message was given: nobody takes part any more. */
  finished = false;

  private sawEndOfHeader = false;
  private pos = 0;
  // Latest macros of each content stage, for replays.
  private headerMacros: Macros | undefined;
  private eohMacros: Macros | undefined;
  private bodyMacros: Macros | undefined;
  private eomMacros: Macros | undefined;
  // Modifications that are not applied to the message itself.
  private changeFrom: ChgfromReply | undefined;
  private readonly recipients: ModificationReply[] = [];
  private quarantine: string | undefined;
  private bodyReplaced = false;

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
  }

  // ---- streaming (the MTA is still sending) ----

  header(name: string, value: string, macros: Macros | undefined): Promise<FinalReply> {
    this.headers.append(name, value);
    this.headerMacros = macros;
    return this.stream((child) =>
      this.command(child, { stage: "header", name, value }, macros, (m) => child.client.header(name, this.valueFor(child, value), m)),
    );
  }

  endOfHeader(macros: Macros | undefined): Promise<FinalReply> {
    this.sawEndOfHeader = true;
    this.eohMacros = macros;
    return this.stream((child) => this.command(child, { stage: "end-of-header" }, macros, (m) => child.client.endOfHeader(m)));
  }

  body(chunk: Uint8Array, macros: Macros | undefined): Promise<FinalReply> {
    this.content.append(chunk);
    this.bodyMacros = macros;
    return this.stream((child) =>
      child.skipBody ? SKIP_STEP : this.command(child, { stage: "body", chunk }, macros, (m) => child.client.body(chunk, m)),
    );
  }

  /** The current child gets the command live; a child that has not started yet is replayed everything so far. */
  private async stream(live: (child: Child) => Step | Promise<Step>): Promise<FinalReply> {
    const reply = new StageReply();
    for (;;) {
      const child = this.queue[this.pos];
      if (child === undefined) {
        this.finished = true; // every child left: the compiled status (normally ACCEPT) ends the message
        return reply.final();
      }
      const step = child.started ? await live(child) : await this.start(child, false);
      reply.add(step.answer);
      switch (step.kind) {
        case "continue":
          return CONTINUE;
        case "skip":
          child.skipBody = true;
          return CONTINUE; // skip is the child's business; the MTA keeps sending (others need the body)
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

  async endOfMessage(macros: Macros | undefined): Promise<EomOutput> {
    this.eomMacros = macros;
    const original = this.headers.snapshot();
    const reply = new StageReply();
    while (!this.finished) {
      const child = this.queue[this.pos];
      if (child === undefined) break;
      const step = child.started
        ? await this.command(child, { stage: "end-of-message" }, macros, (m) => child.client.endOfMessage(m))
        : await this.start(child, true);
      reply.add(step.answer);
      if (step.kind === "refuse") {
        this.refuse();
        break;
      }
      if (step.modifications) this.apply(child, step.modifications);
      this.leave(child);
    }
    this.finished = true;
    return { modifications: this.modifications(original), reply: reply.final() };
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
        const step = await this.command(child, { stage: "header", name: h.name, value: h.value }, this.headerMacros, (m) =>
          child.client.header(h.name, this.valueFor(child, h.value), m),
        );
        if (step.kind !== "continue") return step;
      }
    }
    if (this.sawEndOfHeader || toEndOfMessage) {
      const step = await this.command(child, { stage: "end-of-header" }, this.eohMacros, (m) => child.client.endOfHeader(m));
      if (step.kind !== "continue") return step;
    }
    if (!child.skipBody && n.sends("body")) {
      for (const chunk of this.content.chunks(this.env.chunkSize)) {
        const step = await this.command(child, { stage: "body", chunk }, this.bodyMacros, (m) => child.client.body(chunk, m));
        if (step.kind === "skip") {
          child.skipBody = true;
          break;
        }
        if (step.kind !== "continue") return step;
      }
    }
    if (toEndOfMessage) {
      return this.command(child, { stage: "end-of-message" }, this.eomMacros, (m) => child.client.endOfMessage(m));
    }
    return child.skipBody ? SKIP_STEP : CONTINUE_STEP;
  }

  /** Ask the conditions, then send (with the macros they added); what the child's answer (or failure) means. */
  private command(
    child: Child,
    event: StopEvent,
    macros: Macros | undefined,
    send: (macros: Macros | undefined) => Promise<StepOutcome | EndOfMessageOutcome>,
  ): Step | Promise<Step> {
    if (this.env.stop === undefined) return this.send(child, () => send(macros));
    let added: Map<string, string> | undefined;
    const stop = this.env.stop(child, event, (name, value) => (added ??= new Map()).set(name, value));
    const go = () => this.send(child, () => send(added ? withMacros(macros, added) : macros));
    if (stop === true) return this.stopped(child, event);
    if (stop === false) return go();
    return stop.then((s) => (s ? this.stopped(child, event) : go()));
  }

  private async send(child: Child, send: () => Promise<StepOutcome | EndOfMessageOutcome>): Promise<Step> {
    const outcome = await send();
    const decision = child.decide(outcome);
    if (!outcome.ok) this.env.log("warning", `milter ${child.name} failed, counted as ${decision.status}: ${child.failure}`);
    const answer = childAnswer(decision, child.evaluation);
    if (child.evaluation && answer.status !== realStatus(decision)) {
      this.env.log("info", `milter ${child.name} (evaluation mode) answered ${decision.status} at ${outcome.stage}; not applied`);
    }
    const step: Step = { kind: kindOf(answer), answer };
    if (outcome.ok && "modifications" in outcome) step.modifications = outcome.modifications;
    return step;
  }

  /** A condition stopped the child: it gets ABORT and leaves the message; compiled as ACCEPT. */
  private stopped(child: Child, event: StopEvent): Step {
    this.env.log("debug", `milter ${child.name} stopped at ${event.stage}`);
    child.lastStatus = "stop";
    child.abort();
    return STOP_STEP;
  }

  private leave(child: Child): void {
    child.processing = false;
    this.pos++;
  }

  /** The message is refused: every child still in the transaction is aborted. */
  private refuse(): void {
    for (const c of this.everyone) c.abort();
    this.finished = true;
  }

  /** A header value from the message, as this child wants it. */
  private valueFor(child: Child, value: string): string {
    return this.env.leadingSpace && !child.leadingSpace ? stripLeadingSpace(value) : value;
  }

  // ---- modifications ----

  /** Apply one child's end-of-message modifications to the message (evaluation mode: only log them). */
  private apply(child: Child, mods: readonly Modification[]): void {
    if (mods.length === 0) return;
    if (child.evaluation) {
      this.env.log("info", `milter ${child.name} (evaluation mode): ${mods.length} modification(s) not applied`);
      return;
    }
    // Values from a child that did not agree on leading spaces lack the one the MTA keeps.
    const space = this.env.leadingSpace && !child.leadingSpace ? addLeadingSpace : (v: string) => v;
    child.replacingBody = false;
    for (const m of mods) {
      switch (m.type) {
        case "add-header":
          this.headers.add(m.name, space(m.value));
          this.logHeader(child, m.name, m.value);
          break;
        case "insert-header":
          this.headers.insert(m.index, m.name, space(m.value));
          this.logHeader(child, m.name, m.value);
          break;
        case "change-header":
          this.headers.change(m.name, m.index, space(m.value));
          this.logHeader(child, m.name, m.value);
          break;
        case "delete-header":
          this.headers.delete(m.name, m.index);
          break;
        case "change-envelope-from":
          this.changeFrom = m.args === undefined ? { type: "chgfrom", address: m.address } : { type: "chgfrom", address: m.address, args: m.args };
          break;
        case "add-envelope-recipient":
          if (!m.withParameters) this.recipients.push({ type: "addrcpt", address: m.address });
          else this.recipients.push(m.args === undefined ? { type: "addrcpt_par", address: m.address } : { type: "addrcpt_par", address: m.address, args: m.args });
          break;
        case "delete-envelope-recipient":
          this.recipients.push({ type: "delrcpt", address: m.address });
          break;
        case "replace-body":
          // The child's first packet replaces the body, its next ones continue it; a later child starts over.
          if (!child.replacingBody) {
            child.replacingBody = true;
            this.content.reset();
            this.bodyReplaced = true;
          }
          this.content.append(m.chunk);
          break;
        case "quarantine":
          this.quarantine = m.reason;
          break;
      }
    }
  }

  private logHeader(child: Child, name: string, value: string): void {
    this.env.log("statistics", headerAddLine(this.env.tag ?? 0, name, value, child.name));
  }

  /** Everything the MTA must do to the message, in one list: headers, sender, recipients, body, quarantine. */
  private modifications(original: readonly Header[]): ModificationReply[] {
    const out: ModificationReply[] = diffHeaders(original, this.headers.items);
    if (this.changeFrom) out.push(this.changeFrom);
    out.push(...this.recipients);
    if (this.bodyReplaced) {
      let any = false;
      for (const chunk of this.content.chunks(this.env.chunkSize)) {
        out.push({ type: "replbody", chunk });
        any = true;
      }
      if (!any) out.push({ type: "replbody", chunk: new Uint8Array(0) }); // replaced by an empty body
    }
    if (this.quarantine !== undefined) out.push({ type: "quarantine", reason: this.quarantine }); // last before the decision
    return out;
  }
}

function kindOf(answer: ChildAnswer): Kind {
  switch (answer.status) {
    case "accept":
      return "accept";
    case "skip":
      return "skip";
    default:
      return isRefusal(answer.status) ? "refuse" : "continue";
  }
}
