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
// A child that sends more modifications than its caps (max_modifications, max_modification_bytes)
// has failed its end-of-message step: it counts as its fallback_status (failures.ts) and none of
// its modifications are applied.
// The MTA gets one reply: the modifications (header diff against the message as it arrived,
// change of sender, recipients, quarantine), the replaced body (streamed in chunk_size packets,
// never whole in memory), then the compiled answer.
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
  readonly body: EditedBody;
}

interface EditedBody {
  readonly size: number;
  /** The body's last byte (undefined when empty). */
  readonly lastByte: number | undefined;
  reset(): void;
  append(chunk: Uint8Array): void;
  chunks(size: number): Iterable<Uint8Array>;
  /** Take over a child's replacement body (its memory or its spill file; from takeReplacement). */
  adopt(other: unknown): void;
}

/** What the modification rules read of a child. */
export interface EditingChild {
  readonly name: string;
  readonly evaluation: boolean;
  /** It agreed to HDR_LEADSPC: its header values carry their leading space. */
  readonly leadingSpace: boolean;
  /** The replacement body it streamed (its replace-body entries are then empty markers). */
  takeReplacement?(): unknown;
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
            this.bodyReplaced = true;
            // Streamed to a file as it arrived (children.ts): that file becomes the body.
            if (child.takeReplacement) this.message.body.adopt(child.takeReplacement());
            else this.message.body.reset();
          }
          this.message.body.append(m.chunk);
          break;
        case "quarantine":
          this.quarantine = m.reason;
          break;
      }
    }
    if (replacing) this.lineEndMissing = (this.message.body.lastByte ?? 0x0a) !== 0x0a;
  }

  /** Everything the MTA must do to the message but the body, in one list: headers, sender, recipients, quarantine. */
  packets(original: readonly Header[]): ModificationReply[] {
    const out: ModificationReply[] = diffHeaders(original, this.message.headers.all);
    if (this.changeFrom) out.push(this.changeFrom);
    out.push(...this.recipients);
    if (this.quarantine !== undefined) out.push({ type: "quarantine", reason: this.quarantine });
    return out;
  }

  /** The replaced body in chunk_size pieces (one empty piece for an empty body), or undefined if not replaced. */
  replacedBodyChunks(): Iterable<Uint8Array> | undefined {
    if (!this.bodyReplaced) return undefined;
    const body = this.message.body;
    const size = this.env.chunkSize;
    return body.size === 0 ? [new Uint8Array(0)] : body.chunks(size);
  }

  private logHeader(child: EditingChild, name: string, value: string): void {
    this.env.log("statistics", headerAddLine(this.env.tag, name, value, child.name));
  }
}
