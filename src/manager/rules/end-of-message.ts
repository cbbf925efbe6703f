// The rule book for end-of-message (manager.md §2.5, §2.11): what each child's answer does, how
// its modifications are applied to the message, and the packets the MTA gets in the end.
// pipeline.ts only sequences (who is next, the replay, sending) and does the I/O.
//
// Who takes part: every child still in the message, one after the other in configuration order;
// one that has not got the message yet is first replayed all of it as changed by the children
// before it (headers, end-of-header, body in chunk_size pieces), then gets end-of-message.
// A child's answer (as compiled: evaluation mode counts as accept):
//   refuse    (reject, temporary-failure, discard, reply code, a failure whose fallback is one)
//             every child of the session gets ABORT; the remaining ones are not asked; the MTA
//             gets the compiled answer, with the modifications applied so far
//   otherwise its modifications are applied to the message (evaluation mode: only logged) and
//             the next child takes over
// A condition stop: the child gets ABORT and counts as accept, with no modifications.
// After a quarantine, Postfix asks no further milter (docs/transparency.md): the remaining
// children get ABORT. Sendmail goes on.
// The MTA gets one reply: the modifications (header diff against the message as it arrived,
// change of sender, recipients, replaced body, quarantine) then the compiled answer.
import type { ModificationReply, ChgfromReply } from "../../milter/index.ts";
import type { Modification } from "../../mta-side/outcome.ts";
import { headerAddLine } from "../../runtime/statistics.ts";
import { addLeadingSpace, diffHeaders, type Header, type HeaderList, type MtaKind } from "../headers.ts";
import { type ChildAnswer, isRefusal, type Status } from "./answers.ts";
import type { StopRule } from "./envelope.ts";

/** "done": the child's modifications are applied and it leaves; "refuse": the message ends. */
export type EomMove = "done" | "refuse";

export const END_OF_MESSAGE: {
  readonly answer: (compiled: Status) => EomMove;
  readonly stop: StopRule;
  /** Does a quarantine end the chain (the remaining children get ABORT)? */
  readonly quarantineEndsChain: (mta: MtaKind) => boolean;
} = {
  answer: (s) => (isRefusal(s) ? "refuse" : "done"),
  stop: { compiled: { status: "accept" } satisfies ChildAnswer, child: "abort" },
  quarantineEndsChain: (mta) => mta === "postfix",
};

/** The message as the children change it: its headers and its body (body.ts BodyBuffer). */
export interface EditedMessage {
  readonly headers: HeaderList;
  readonly body: {
    reset(): void;
    append(chunk: Uint8Array): void;
    chunks(size: number): Iterable<Uint8Array>;
  };
}

/** What the modification rules read of a child. */
export interface EditingChild {
  readonly name: string;
  readonly evaluation: boolean;
  /** It agreed to HDR_LEADSPC: its header values carry their leading space. */
  readonly leadingSpace: boolean;
}

export interface EditsEnv {
  /** HDR_LEADSPC was agreed with the MTA: header values in the message keep their leading space. */
  leadingSpace: boolean;
  /** manager.chunk_size: replace-body packets towards the MTA. */
  chunkSize: number;
  /** Session tag for the statistics lines. */
  tag: number;
  log(level: "info" | "statistics", text: string): void;
}

/**
 * The modifications of one message. Headers and body are changed in the message itself (the next
 * child is replayed them); sender, recipients and quarantine are only collected for the MTA.
 */
export class MessageEdits {
  private changeFrom: ChgfromReply | undefined;
  private readonly recipients: ModificationReply[] = [];
  private quarantine: string | undefined;
  private bodyReplaced = false;
  private lineEndMissing = false;

  constructor(
    private readonly message: EditedMessage,
    private readonly env: EditsEnv,
  ) {}

  /** A child quarantined the message. */
  get quarantined(): boolean {
    return this.quarantine !== undefined;
  }

  /** A child replaced the body (the MTA's end-of-message data belonged to the old one). */
  get replacedBody(): boolean {
    return this.bodyReplaced;
  }

  /** The replaced body's last line has no line end (Postfix adds it for the next milter). */
  get replacedBodyLacksLineEnd(): boolean {
    return this.bodyReplaced && this.lineEndMissing;
  }

  /** Apply one child's end-of-message modifications, in the order it sent them. */
  apply(child: EditingChild, mods: readonly Modification[]): void {
    if (mods.length === 0) return;
    if (child.evaluation) {
      this.env.log("info", `milter ${child.name} (evaluation mode): ${mods.length} modification(s) not applied`);
      return;
    }
    const headers = this.message.headers;
    // Values from a child that did not agree on leading spaces lack the one the MTA keeps.
    const space = this.env.leadingSpace && !child.leadingSpace ? addLeadingSpace : (v: string) => v;
    // The child's first replace-body packet replaces the body, its next ones continue it; a later child starts over.
    let replacing = false;
    let last = 0x0a;
    for (const m of mods) {
      switch (m.type) {
        case "add-header":
          headers.add(m.name, space(m.value));
          this.logHeader(child, m.name, m.value);
          break;
        case "insert-header":
          headers.insert(m.index, m.name, space(m.value));
          this.logHeader(child, m.name, m.value);
          break;
        case "change-header":
          headers.change(m.name, m.index, space(m.value));
          this.logHeader(child, m.name, m.value);
          break;
        case "delete-header":
          headers.delete(m.name, m.index);
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
          if (!replacing) {
            replacing = true;
            this.message.body.reset();
            this.bodyReplaced = true;
          }
          this.message.body.append(m.chunk);
          if (m.chunk.length > 0) last = m.chunk[m.chunk.length - 1];
          break;
        case "quarantine":
          this.quarantine = m.reason;
          break;
      }
    }
    if (replacing) this.lineEndMissing = last !== 0x0a;
  }

  /** Everything the MTA must do to the message, in one list: headers, sender, recipients, body, quarantine. */
  packets(original: readonly Header[]): ModificationReply[] {
    const out: ModificationReply[] = diffHeaders(original, this.message.headers.all);
    if (this.changeFrom) out.push(this.changeFrom);
    out.push(...this.recipients);
    if (this.bodyReplaced) {
      let any = false;
      for (const chunk of this.message.body.chunks(this.env.chunkSize)) {
        out.push({ type: "replbody", chunk });
        any = true;
      }
      if (!any) out.push({ type: "replbody", chunk: new Uint8Array(0) }); // replaced by an empty body
    }
    if (this.quarantine !== undefined) out.push({ type: "quarantine", reason: this.quarantine }); // last before the decision
    return out;
  }

  private logHeader(child: EditingChild, name: string, value: string): void {
    this.env.log("statistics", headerAddLine(this.env.tag, name, value, child.name));
  }
}
