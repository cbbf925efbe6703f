// What one MTA session tells the log, in the spirit of Postfix's own lines: at the default level
// one summary line per message and one per session (queue id, client name and address, helo,
// sender, recipient count — the recipients at `info` —, each child's answers per stage with their
// time, the answer the MTA got, elapsed); at `debug` every command sent to every child and every
// reply with stage and timing. Text from the wire is shown by wireText() (runtime/log-text.ts).
// It also feeds the events sink (metrics): each child's answers, failures and state.
import type { ManagerEvents } from "./events.ts";
import type { ManagerLog } from "./log.ts";
import type { EndOfMessageOutcome, StepObserver, StepOutcome } from "../mta-side/index.ts";
import type { MtaCommandType, StageName } from "../milter/index.ts";
import { oneLine, wireText } from "../runtime/log-text.ts";

/** One child's answers at one stage of a message or session: how many, the last one, total time. */
interface StageAnswers {
  stage: string;
  count: number;
  status: string;
  ms: number;
}

/** Answers per child in the order children and stages first answered. */
class Answers {
  private readonly byChild = new Map<string, Map<string, StageAnswers>>();

  add(child: string, stage: string, status: string, ms: number): void {
    let stages = this.byChild.get(child);
    if (!stages) this.byChild.set(child, (stages = new Map()));
    const a = stages.get(stage);
    if (a) {
      a.count++;
      a.ms += ms;
      // A refusal or failure among many continues is what matters.
      if (status !== "continue") a.status = status;
    } else {
      stages.set(stage, { stage, count: 1, status, ms });
    }
  }

  get empty(): boolean {
    return this.byChild.size === 0;
  }

  /** `spamd: envelope-from=continue/0.21ms header=continue×9/1.02ms end-of-message=accept/3.10ms; clamav: …` */
  text(): string {
    let out = "";
    for (const [child, stages] of this.byChild) {
      out += out === "" ? `${child}:` : `; ${child}:`;
      for (const a of stages.values()) out += ` ${a.stage}=${a.status}${a.count > 1 ? `×${a.count}` : ""}/${fixed2(a.ms)}ms`;
    }
    return out;
  }

  json(): Record<string, Record<string, { status: string; count: number; ms: number }>> {
    const out: ReturnType<Answers["json"]> = {};
    for (const [child, stages] of this.byChild) {
      out[child] = {};
      for (const a of stages.values()) out[child][a.stage] = { status: a.status, count: a.count, ms: Number(a.ms.toFixed(3)) };
    }
    return out;
  }
}

/** A time in ms with two decimals, as toFixed(2) writes it (cheaper: every summary line has one per child and stage). */
export function fixed2(ms: number): string {
  const r = Math.round(ms * 100);
  const cents = r % 100;
  return `${(r - cents) / 100}.${cents < 10 ? "0" : ""}${cents}`;
}

/** A step outcome as one status word: the decision (reply-code: its class), or `error`. */
export function answerStatus(o: StepOutcome | EndOfMessageOutcome): string {
  if (!o.ok) return "error";
  if (o.status === "reply-code") return o.reply?.status ?? "reject";
  return o.status;
}

/** Escaped text of the packets of one write: `D{C}'j\x00mx\x00' C'mx.example\x00…'`, long payloads cut. */
export function packetsText(bytes: Uint8Array, max = 200): string {
  const parts: string[] = [];
  const view = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let at = 0;
  while (at + 5 <= view.length) {
    const len = view.readUInt32BE(at);
    const code = String.fromCharCode(view[at + 4]);
    const end = Math.min(view.length, at + 4 + len);
    const payload = view.subarray(at + 5, end);
    const shown = payload.subarray(0, max).toString("latin1");
    parts.push(`${code}'${oneLine(wireText(shown))}${payload.length > max ? `…(${payload.length} bytes)` : ""}'`);
    at = at + 4 + len;
  }
  return parts.join(" ");
}

export class SessionLog {
  private client = "unknown";
  private helo = "";
  private from: string | undefined;
  private recipients: string[] = [];
  private queueId: string | undefined;
  private messages = 0;
  private messageStartedAt = 0;
  private readonly session = new Answers();
  private message: Answers | undefined;
  private readonly startedAt = performance.now();
  /** Summary lines are written (level `message` on): only then are answers collected for them. */
  private readonly summaries: boolean;

  constructor(
    private readonly log: ManagerLog,
    private readonly events: ManagerEvents,
    private readonly id: number,
  ) {
    this.summaries = log.enabled("message");
  }

  /**
   * Watch a child's steps (its MilterClient's observer). An evaluation-mode child is marked on the
   * summary line: its answers there are what it really said, not what counted.
   */
  observer(child: string, evaluation = false): StepObserver {
    const debug = this.log.enabled("debug");
    const label = evaluation ? `${child}(evaluation)` : child;
    return {
      sent: debug ? (_type, stage, bytes) => this.log.write("debug", `[${this.id}] → ${child} ${stage}: ${packetsText(bytes)}`) : undefined,
      done: (type, stage, outcome, ms) => this.done(child, label, type, stage, outcome, ms),
    };
  }

  private done(child: string, label: string, type: MtaCommandType, stage: StageName, outcome: StepOutcome | EndOfMessageOutcome, ms: number): void {
    if (type === "abort" || type === "quit" || type === "quit_nc") return; // nothing is answered
    const status = answerStatus(outcome);
    const sentAndAnswered = outcome.ok ? outcome.via === "reply" : true;
    if (this.log.enabled("debug")) {
      const via = outcome.ok && outcome.via !== "reply" ? ` (${outcome.via})` : "";
      const mods = "modifications" in outcome && outcome.modifications.length > 0 ? ` with ${outcome.modifications.length} modifications` : "";
      const why = outcome.ok ? "" : `: ${outcome.status}${outcome.timer ? ` (${outcome.timer} timeout)` : ""}: ${outcome.detail}`;
      this.log.write("debug", `[${this.id}] ← ${child} ${stage}: ${status}${via}${mods}${why} ${ms.toFixed(3)} ms`);
    }
    if (!sentAndAnswered && outcome.ok) return; // not sent or not answered: no answer to count
    this.answer(child, stage, status, ms, label);
    if (!outcome.ok) this.events.childFailure(child, outcome.status, stage, outcome.detail, outcome.timer);
  }

  /** Record a child's answer (also a condition's stop, which sends nothing). */
  answer(child: string, stage: string, status: string, ms: number, label = child): void {
    if (this.summaries) (this.message ?? this.session).add(label, stage, status, ms);
    this.events.childAnswer(child, stage as StageName, status, ms);
  }

  /** A child could or could not be opened at negotiation. */
  opened(child: string, ok: boolean, detail?: string): void {
    this.events.childState(child, ok, detail);
  }

  /** `mx.example.net[192.0.2.1]:25`, `host[unix]` for a client on a unix socket. */
  connect(hostname: string, address: string | undefined, port: number | undefined): void {
    const where = address === undefined ? "[unix]" : `[${wireText(address)}]${port ? `:${port}` : ""}`;
    this.client = `${wireText(hostname)}${where}`;
  }

  setHelo(name: string): void {
    this.helo = wireText(name);
  }

  /** MAIL: a message starts (the previous one ended already or is ended now). */
  mail(from: string): void {
    this.from = wireText(from);
    this.recipients = [];
    this.queueId = undefined;
    this.message = new Answers();
    this.messageStartedAt = performance.now();
  }

  rcpt(to: string): void {
    this.recipients.push(wireText(to));
  }

  /** The `i` macro as soon as the MTA sends it. */
  setQueueId(i: string | undefined): void {
    if (i && this.queueId === undefined) this.queueId = wireText(i);
  }

  get inMessage(): boolean {
    return this.message !== undefined;
  }

  /** The message ended (answered at end-of-message, refused, aborted): its summary line. */
  endMessage(status: string, stage: string): void {
    const answers = this.message;
    if (!answers) return;
    this.message = undefined;
    this.messages++;
    this.events.messageEnd(status);
    if (!this.log.enabled("message")) return;
    const qid = this.queueId ?? "NOQUEUE";
    const elapsed = (performance.now() - this.messageStartedAt) / 1000;
    const to = this.log.enabled("info") ? ` to=${this.recipients.join(",")}` : "";
    this.log.write(
      "message",
      `[${this.id}] ${qid}: client=${this.client} helo=<${this.helo}> from=${this.from} nrcpt=${this.recipients.length}${to} milters: ${answers.empty ? "none" : answers.text()}; reply=${status} at ${stage} elapsed=${elapsed.toFixed(3)}s`,
      () => ({
        session: this.id,
        queue_id: qid,
        client: this.client,
        helo: this.helo,
        from: this.from,
        nrcpt: this.recipients.length,
        ...(to ? { recipients: [...this.recipients] } : {}),
        milters: answers.json(),
        reply: status,
        stage,
        elapsed,
      }),
    );
  }

  /** The session ended: its summary line. */
  end(status: string, stage: string, reason: string): void {
    if (!this.log.enabled("message")) return;
    const elapsed = (performance.now() - this.startedAt) / 1000;
    this.log.write(
      "message",
      `[${this.id}] session: client=${this.client} helo=<${this.helo}> messages=${this.messages} milters: ${this.session.empty ? "none" : this.session.text()}; reply=${status} at ${stage} end=${reason} elapsed=${elapsed.toFixed(3)}s`,
      () => ({ session: this.id, client: this.client, helo: this.helo, messages: this.messages, milters: this.session.json(), reply: status, stage, end: reason, elapsed }),
    );
  }
}
