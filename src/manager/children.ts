// The children of one MTA session (manager.md §2.1, §2.3, §2.7): one MilterClient per enabled
// milter, opened in parallel at negotiation, with the per-session and per-message state the
// leader and the pipeline need (alive, in the transaction, processing the message, accepted
// recipients, skip). What happens to a child when is the rule book's (rules/); Child.take carries
// out a rule's effect, Child.decide turns a failed step into the child's fallback (rules/failures.ts).
import { BodyBuffer, type BodyBufferOptions, GC_EVERY_BYTES } from "./body.ts";
import type { MilterConfig } from "./config/schema.ts";
import { type ChildDecision, realStatus } from "./rules/answers.ts";
import type { ChildEffect, ChildState } from "./rules/envelope.ts";
import { failedStep, failureText } from "./rules/failures.ts";
import type { Availability, AvailabilityChange } from "./rules/availability.ts";
import type { ChildView } from "./stop-hook.ts";
import {
  MilterClient,
  type EndOfMessageOutcome,
  type FailureOutcome,
  type StepOutcome,
} from "../mta-side/index.ts";
import type { Negotiated, OptionWords } from "../milter/index.ts";

const REPLACEMENT_IN_MEMORY = 1024 * 1024;

export class Child implements ChildView, ChildState {
  readonly name: string;
  readonly config: MilterConfig;
  readonly client: MilterClient;
  negotiated: Negotiated | undefined;
  /** Connected, negotiated and taking part in the SMTP session. */
  alive = false;
  /** Got MAIL for the current transaction and was not aborted since: an MTA abort goes to it. */
  inTransaction = false;
  /** Still taking part in the current message. */
  processing = false;
  /** Recipients of the current message this child did not refuse. */
  acceptedRecipients = 0;
  /** Has received commands of the message's content (headers/body), live or replayed. */
  started = false;
  /** Answered skip: gets no more body chunks of this message. */
  skipBody = false;
  /** Last real answer, for logs and conditions. */
  lastStatus: string | undefined;
  /** Why the child left the session, for the log. */
  failure: string | undefined;
  /** Not tried: it is down (rules/availability.ts). */
  skipped = false;
  /** The body this child is sending at end-of-message (replace-body), spilled to a file as it arrives. */
  private replacement: BodyBuffer | undefined;
  /** Stage of the last answer (or failure), and when the child was created / left: statistics line. */
  lastStage = "negotiate";
  readonly startedAt = performance.now();
  endedAt: number | undefined;

  constructor(config: MilterConfig, offer: OptionWords) {
    this.name = config.name;
    this.config = config;
    this.client = new MilterClient({
      spec: config.connection_spec,
      connectionTimeoutMs: config.connection_timeout * 1000,
      writingTimeoutMs: config.writing_timeout * 1000,
      readingTimeoutMs: config.reading_timeout * 1000,
      endOfMessageTimeoutMs: config.end_of_message_timeout * 1000,
      endOfMessageTotalTimeoutMs: config.end_of_message_total_timeout * 1000,
      maxModifications: config.max_modifications,
      maxModificationBytes: config.max_modification_bytes,
      offer: { version: offer.version, actions: offer.actions, protocol: offer.protocol },
    });
  }

  get evaluation(): boolean {
    return this.config.evaluation_mode;
  }

  /** The child asked for header values with their leading space. */
  get leadingSpace(): boolean {
    return this.negotiated?.leadingSpace ?? false;
  }

  /** It negotiated SMFIP_RCPT_REJ: it wants the recipients the MTA refused itself. */
  get wantsRefusedRecipients(): boolean {
    return this.negotiated?.rcptRejected ?? false;
  }

  /** At end-of-message: keep a replacement body as it arrives, not in memory packet by packet. */
  streamReplacement(options: BodyBufferOptions): void {
    this.dropReplacement();
    let sinceGc = 0;
    this.client.onReplaceBody = (chunk) => {
      // Kept in memory only up to 1 MiB: the message's own body may already be there too.
      (this.replacement ??= new BodyBuffer({ ...options, spillThreshold: Math.min(options.spillThreshold ?? REPLACEMENT_IN_MEMORY, REPLACEMENT_IN_MEMORY) })).appendCopy(chunk);
      sinceGc += chunk.length;
      if (sinceGc >= GC_EVERY_BYTES) {
        // The socket's read buffers are garbage at once, but the collector does not count them as
        // pressure: without this, tens of MB of them pile up before it runs.
        sinceGc = 0;
        Bun.gc(true);
      }
    };
  }

  /** The replacement body received (the rules apply it, rules/end-of-message.ts); the child lets go of it. */
  takeReplacement(): BodyBuffer {
    const r = this.replacement ?? new BodyBuffer();
    this.replacement = undefined;
    return r;
  }

  /** A replacement that was not applied (evaluation mode, refusal, failure): release its file. */
  dropReplacement(): void {
    this.replacement?.dispose();
    this.replacement = undefined;
  }

  /** Carry out what a rule (rules/) does to this child. */
  take(effect: ChildEffect): void {
    switch (effect) {
      case "none":
        return;
      case "join-message":
        this.processing = true;
        return;
      case "count-recipient":
        this.acceptedRecipients++;
        return;
      case "leave-message":
        this.processing = false;
        return;
      case "abort":
        this.abort();
        return;
      case "quit":
        this.quit();
        return;
    }
  }

  /** Forget the state of the previous message (a new MAIL). */
  newMessage(): void {
    this.inTransaction = false;
    this.processing = false;
    this.acceptedRecipients = 0;
    this.started = false;
    this.skipBody = false;
  }

  /** Send ABORT if the child is inside a transaction; it then takes no further part in the message. */
  abort(): void {
    if (this.alive && this.inTransaction) background(() => this.client.abort());
    this.inTransaction = false;
    this.processing = false;
  }

  /** QUIT: the child leaves the SMTP session. */
  quit(): void {
    if (!this.alive) return;
    this.endedAt ??= performance.now();
    this.alive = false;
    this.processing = false;
    this.inTransaction = false;
    background(() => this.client.quit());
  }

  /** A step failed: the connection is gone; the child counts as having answered its fallback status. */
  expire(outcome: FailureOutcome): ChildDecision {
    this.endedAt ??= performance.now();
    this.alive = false;
    this.processing = false;
    this.inTransaction = false;
    this.failure = failureText(outcome);
    this.client.close();
    return failedStep(this.config.fallback_status);
  }

  /** Drop the connection without QUIT (session over, MTA gone). */
  close(): void {
    this.endedAt ??= performance.now();
    this.alive = false;
    this.processing = false;
    this.client.close();
  }

  /** The decision a step outcome stands for; a failure expires the child and gives its fallback. */
  decide(outcome: StepOutcome | EndOfMessageOutcome): ChildDecision {
    const d: ChildDecision = outcome.ok
      ? { status: outcome.status, replyText: outcome.reply?.text }
      : this.expire(outcome);
    this.lastStatus = realStatus(d);
    this.lastStage = outcome.stage;
    return d;
  }
}

/** What one child's open changed in the children's availability (rules/availability.ts), to be logged once. */
export interface AvailabilityReport {
  child: Child;
  change: NonNullable<AvailabilityChange>;
}

/**
 * Open every child (connect + OPTNEG) in parallel; each within its connection_timeout overall.
 * `unreachable`: a child could not be connected — after it resolves true (the launcher started
 * the child's command, launcher.ts), the child is tried once more. `availability`: children that
 * are down are not tried (they count as failed at once), except by the one session that probes.
 */
export async function openChildren(
  configs: readonly MilterConfig[],
  offer: OptionWords,
  unreachable?: (config: MilterConfig) => Promise<boolean>,
  availability?: Availability,
): Promise<{ ready: Child[]; failed: Child[]; changes: AvailabilityReport[] }> {
  const children = configs.map((c) => new Child(c, offer));
  const changes: AvailabilityReport[] = [];
  await Promise.all(
    children.map(async (child, i) => {
      if (availability?.plan(child.config, Date.now()) === "skip") {
        child.endedAt = performance.now();
        child.failure = "down: not tried again yet (counted as its fallback_status)";
        child.skipped = true;
        return;
      }
      await openOne(child);
      if (!child.alive && unreachable && child.client.lastFailure?.status === "connection-error" && (await unreachable(child.config))) {
        const again = new Child(child.config, offer);
        await openOne(again);
        children[i] = again;
      }
      const change = availability?.opened(child.config, children[i].alive, Date.now());
      if (change) changes.push({ child: children[i], change });
    }),
  );
  return { ready: children.filter((c) => c.alive), failed: children.filter((c) => !c.alive), changes };
}

/**
 * client.open() bounded as a whole by `limitMs`: a child that connects but never answers OPTNEG
 * must not hold the MTA's answer back longer than its connection_timeout. Late: closed, "late".
 */
export function openWithin(client: MilterClient, limitMs: number): Promise<Awaited<ReturnType<MilterClient["open"]>> | "late"> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      resolve("late"); // first: the close below may settle open() too
      client.close();
    }, limitMs);
    client.open().then(
      (outcome) => {
        clearTimeout(timer);
        resolve(outcome);
      },
      (e) => {
        clearTimeout(timer);
        reject(e);
      },
    );
  });
}

async function openOne(child: Child): Promise<void> {
  const limit = child.config.connection_timeout * 1000;
  const outcome = await openWithin(child.client, limit);
  if (outcome === "late") {
    child.endedAt = performance.now();
    child.failure = failureText({ status: "timeout", timer: "connection", stage: "negotiate", detail: `no negotiation within ${limit / 1000} s` });
    return;
  }
  if (!outcome.ok) {
    child.endedAt = performance.now();
    child.failure = failureText({ ...outcome, stage: "negotiate" });
    return;
  }
  child.negotiated = outcome.negotiated;
  child.alive = true;
  child.lastStage = "negotiate";
}

/** Start a step nobody waits for (abort, quit: no reply). Only called when no step is pending. */
function background(step: () => Promise<unknown>): void {
  try {
    void step().catch(() => {});
  } catch {} // a step still pending would be a bug of ours; the child's connection is closed at the session end anyway
}
