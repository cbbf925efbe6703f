/**
 * One milter-test-server session over a MilterClient: negotiate, connect,
 * HELO, then nMessages × (MAIL, RCPT…, [UNKNOWN], DATA, headers, EOH, body,
 * EOM) with ABORT between messages, and QUIT. Reply handling as the original
 * (manager.md §4.1): continue goes on; skip during the body jumps to EOM; a
 * reject/tempfail/reply-code at RCPT drops that recipient (the message goes
 * on while one is left); any other decision at connect/HELO ends the
 * session, at a message stage ends that message (ABORT, then the next one);
 * shutdown ends the session. EOM modifications are applied to a local copy.
 */
import type { StageName } from "../milter/index.ts";
import {
  negotiationKey,
  type DecisionOutcome,
  type EndOfMessageOutcome,
  type FailureOutcome,
  type MilterClient,
  type Modification,
  type NegotiateOutcome,
  type PreparedStep,
  type ReplyCode,
  type StepOutcome,
} from "../mta-side/index.ts";
import { applyModifications, cloneMessage, removeRecipient, type MessageState } from "./message.ts";
import { prepareSession, type PreparedSession, type SessionPlan } from "./plan.ts";

/** Final status of a message as milter-test-server prints it; "error" for a failure (timeout, …). */
export type FinalStatus = "pass" | "accept" | "reject" | "temporary-failure" | "discard" | "shutdown" | "error";

export interface MessageResult {
  status: FinalStatus;
  /** Stage whose outcome produced the status ("end-of-message" for pass). */
  stage: StageName;
  /** The outcome that decided (a decision or a failure). */
  outcome?: StepOutcome | EndOfMessageOutcome;
  /** Last reply code received during connect/HELO or this message, whatever the final status. */
  reply?: ReplyCode;
  /** The message as sent. */
  sent: MessageState;
  /** After RCPT rejections and the milter's modifications. */
  result: MessageState;
  modifications: Modification[];
  quarantine?: string;
  rejectedRecipients: { address: string; outcome: DecisionOutcome }[];
  progress: number;
}

export interface SessionResult {
  /** Connection and negotiation succeeded. */
  connected: boolean;
  negotiate: NegotiateOutcome;
  messages: MessageResult[];
  /** A failure (timeout, protocol error, closed, connection error) that ended the session. */
  failure?: FailureOutcome;
  /** From just before the connection to the end (after QUIT). */
  elapsedMs: number;
  /** From just before the connection to the last decision (before ABORT/QUIT). */
  decidedMs: number;
  leadingSpace: boolean;
}

export interface RunSessionOptions {
  plan: SessionPlan;
  /** A client not opened yet. */
  client: MilterClient;
  /** Prepared sessions by negotiationKey (the load generator shares one across sessions). */
  cache?: Map<string, PreparedSession>;
}

type Verdict = "next" | "skip" | "message" | "session";

export async function runSession({ plan, client, cache }: RunSessionOptions): Promise<SessionResult> {
  const t0 = performance.now();
  const negotiate = await client.open();
  if (!negotiate.ok) {
    const ms = performance.now() - t0;
    return { connected: false, negotiate, messages: [], failure: negotiate, elapsedMs: ms, decidedMs: ms, leadingSpace: false };
  }
  const n = negotiate.negotiated;
  let prepared: PreparedSession | undefined;
  if (cache) {
    const key = negotiationKey(n);
    prepared = cache.get(key);
    if (!prepared) cache.set(key, (prepared = prepareSession(plan, n)));
  } else prepared = prepareSession(plan, n);
  const p = prepared;

  const messages: MessageResult[] = [];
  let failure: FailureOutcome | undefined;
  let sessionReply: ReplyCode | undefined;
  const newMessage = (): MessageResult => ({
    status: "pass",
    stage: "end-of-message",
    reply: sessionReply,
    sent: plan.message,
    result: cloneMessage(plan.message),
    modifications: [],
    rejectedRecipients: [],
    progress: 0,
  });

  /** Record a non-continue outcome on `r`; say how the session goes on. */
  const judge = (o: StepOutcome, r: MessageResult, level: "session" | "message"): Verdict => {
    if (!o.ok) {
      failure = o;
      Object.assign(r, { status: "error", stage: o.stage, outcome: o });
      return "session";
    }
    if (o.reply) r.reply = o.reply;
    if (o.status === "continue") return "next";
    if (o.status === "skip") return "skip";
    Object.assign(r, { status: finalStatus(o), stage: o.stage, outcome: o });
    return o.status === "shutdown" ? "session" : level;
  };
  const step = (s: PreparedStep) => client.perform(s) as Promise<StepOutcome>;

  // Connection-level stages: anything but continue ends the session.
  const conn = newMessage();
  let verdict = judge(await step(p.connect), conn, "session");
  if (verdict === "next") verdict = judge(await step(p.helo), conn, "session");
  sessionReply = conn.reply;
  if (verdict !== "next") {
    messages.push(conn);
  } else {
    for (let i = 0; i < plan.nMessages && verdict !== "session"; i++) {
      if (i > 0) await step(p.abort);
      const r = newMessage();
      messages.push(r);
      verdict = await runMessage(r);
    }
  }
  const decidedMs = performance.now() - t0;
  if (!failure) {
    if (verdict !== "next") await step(p.abort);
    await client.quit();
  } else client.close();
  return { connected: true, negotiate, messages, failure, elapsedMs: performance.now() - t0, decidedMs, leadingSpace: n.leadingSpace };

  async function runMessage(r: MessageResult): Promise<Verdict> {
    let v = judge(await step(p.mail), r, "message");
    if (v !== "next") return v;
    for (let i = 0; i < p.rcpts.length; i++) {
      const o = await step(p.rcpts[i]);
      if (o.ok && (o.status === "reject" || o.status === "temporary-failure" || o.status === "reply-code")) {
        if (o.reply) r.reply = o.reply;
        const address = plan.message.recipients[i].address;
        r.rejectedRecipients.push({ address, outcome: o });
        removeRecipient(r.result, address);
        if (r.result.recipients.length === 0) {
          Object.assign(r, { status: finalStatus(o), stage: o.stage, outcome: o });
          return "message";
        }
        continue;
      }
      v = judge(o, r, "message");
      if (v !== "next") return v;
    }
    for (const s of [p.unknown, p.data, ...p.headers, p.eoh]) {
      if (!s) continue;
      v = judge(await step(s), r, "message");
      if (v !== "next") return v;
    }
    for (const s of p.body) {
      v = judge(await step(s), r, "message");
      if (v === "skip") break;
      if (v !== "next") return v;
    }
    const eom = (await client.perform(p.eom)) as EndOfMessageOutcome;
    r.modifications = eom.modifications;
    r.progress = eom.progress;
    const { quarantine } = applyModifications(r.result, eom.modifications, n.leadingSpace);
    if (quarantine !== undefined) r.quarantine = quarantine;
    v = judge(eom, r, "message");
    if (eom.ok) r.outcome = eom;
    return v === "next" ? "next" : v;
  }
}

function finalStatus(o: DecisionOutcome): FinalStatus {
  switch (o.status) {
    case "continue":
    case "skip":
      return "pass";
    case "reply-code":
      return o.reply!.status;
    default:
      return o.status;
  }
}
