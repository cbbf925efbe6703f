// A child milter for the manager's scenario tests, built on src/milter-side: told what to answer at
// each stage (a fixed reply, a function, "hang" or "close"), it records everything it receives
// (commands with their arguments, the macros of that stage, body chunks, aborts, quits).
import { createHash } from "node:crypto";
import {
  type Awaitable,
  Close,
  Continue,
  type EomResult,
  type MilterHandler,
  type MilterServer,
  type SessionContext,
  serveMilter,
  type StepResult,
} from "../../../src/milter-side/index.ts";
import {
  type BodyCommand,
  type ConnectCommand,
  type EobCommand,
  type HeaderCommand,
  type HeloCommand,
  type MacroStage,
  type MailCommand,
  macroKey,
  type OptnegCommand,
  type RcptCommand,
  SMFI_CURR_ACTS,
  type UnknownCommand,
} from "../../../src/milter/index.ts";
import { formatSpec } from "../../../src/net/spec.ts";

/** What to answer: a reply, a function computing one, "hang" (never answer) or "close" (drop the connection). */
export type Answer<C, R = StepResult> = R | "hang" | "close" | ((cmd: C, ctx: SessionContext, milter: ScriptedMilter) => Awaitable<R | "hang" | "close">);

export interface Script {
  /** Record body chunks (default true); false keeps only their sizes (bodyBytes), for big messages. */
  recordBody?: boolean;
  /** Protocol bits asked for (NO_*, NR_*, SKIP, HDR_LEADSPC, RCPT_REJ). Default 0: every event, every reply. */
  protocol?: number;
  /** Actions asked for (default: every offered action). */
  actions?: number;
  version?: number;
  macroLists?: Map<MacroStage, string[]>;
  /** "hang": never answer OPTNEG; "close": drop the connection instead. */
  negotiate?: "hang" | "close";
  connect?: Answer<ConnectCommand>;
  helo?: Answer<HeloCommand>;
  envelopeFrom?: Answer<MailCommand>;
  envelopeRecipient?: Answer<RcptCommand>;
  data?: Answer<undefined>;
  unknown?: Answer<UnknownCommand>;
  header?: Answer<HeaderCommand>;
  endOfHeader?: Answer<undefined>;
  body?: Answer<BodyCommand>;
  endOfMessage?: Answer<EobCommand, StepResult | EomResult>;
}

/** One thing the milter received. */
export interface Received {
  session: number;
  stage: string;
  /** Stage macros as received (braces removed from names), when the MTA sent any for this stage. */
  macros?: Record<string, string>;
  host?: string;
  family?: string;
  address?: string;
  port?: number;
  fqdn?: string;
  args?: readonly string[];
  name?: string;
  value?: string;
  chunk?: string;
  commandLine?: string;
  offer?: { version: number; actions: number; protocol: number };
}

const LETTER: Record<string, string> = {
  connect: "C", helo: "H", "envelope-from": "M", "envelope-recipient": "R", data: "T", header: "L",
  "end-of-header": "N", body: "B", "end-of-message": "E", unknown: "U",
};

export class ScriptedMilter {
  readonly received: Received[] = [];
  /** Sessions (connections) seen. */
  sessions = 0;
  /** Body bytes received, all sessions. */
  bodyBytes = 0;
  /** SHA-256 of every body byte received, all sessions (bodySha256()). */
  private readonly bodyHash = createHash("sha256");
  script: Script;
  private server!: MilterServer;

  /** Hex SHA-256 of the body bytes received so far, all sessions. */
  bodySha256(): string {
    return this.bodyHash.copy().digest("hex");
  }

  constructor(script: Script = {}) {
    this.script = script;
  }

  /** Where it listens, as a connection spec. */
  get spec(): string {
    return formatSpec(this.server.spec);
  }

  get port(): number {
    return this.server.port!;
  }

  /** Sessions (connections) open now. */
  get live(): number {
    return this.server.sessions;
  }

  /** Change (part of) the script; applies to the next commands, also of running sessions. */
  set(script: Script): void {
    this.script = { ...this.script, ...script };
  }

  /** Commands of a stage received so far (optionally only from index `from` of `received`). */
  count(stage: string, from = 0): number {
    let n = 0;
    for (let i = from; i < this.received.length; i++) if (this.received[i].stage === stage) n++;
    return n;
  }

  /** Events of a stage. */
  events(stage: string, from = 0): Received[] {
    return this.received.slice(from).filter((r) => r.stage === stage);
  }

  /** Body chunks received, as latin1 strings. */
  bodyChunks(from = 0): string[] {
    return this.events("body", from).map((r) => r.chunk!);
  }

  /** Index to pass as `from` to look only at what arrives after now. */
  mark(): number {
    return this.received.length;
  }

  async start(spec = "inet:0@[127.0.0.1]"): Promise<this> {
    this.server = await serveMilter(spec, (ctx) => this.handler(ctx), {
      onError: () => {}, // sessions the manager drops on purpose are not test failures
      idleTimeoutMs: 120_000,
    });
    return this;
  }

  async close(): Promise<void> {
    await this.server?.close({ waitMs: 0 });
  }

  private record(ctx: SessionContext, session: number, stage: string, fields: Partial<Received> = {}): void {
    const r: Received = { session, stage, ...fields };
    const letter = LETTER[stage];
    const m = letter ? ctx.macros.stage(letter) : undefined;
    if (m && m.size > 0) {
      r.macros = {};
      for (const [k, v] of m) r.macros[macroKey(k)] = v;
    }
    this.received.push(r);
  }

  private handler(ctx: SessionContext): MilterHandler {
    const session = ++this.sessions;
    const answer = async <C, R>(stage: string, a: Answer<C, R> | undefined, cmd: C): Promise<R | StepResult> => {
      const v = typeof a === "function" ? await (a as (c: C, x: SessionContext, m: ScriptedMilter) => Awaitable<R>)(cmd, ctx, this) : a;
      if (v === "hang") return hang(ctx);
      if (v === "close") return Close;
      return (v ?? Continue) as R;
    };
    return {
      negotiate: (offer: OptnegCommand) => {
        this.record(ctx, session, "negotiate", { offer: { version: offer.version, actions: offer.actions, protocol: offer.protocol } });
        const s = this.script;
        if (s.negotiate === "hang") return hang(ctx).then(() => Close);
        if (s.negotiate === "close") return Close;
        return {
          version: s.version,
          actions: (s.actions ?? SMFI_CURR_ACTS) & (offer.actions || 0x0f),
          protocol: s.protocol ?? 0,
          macroLists: s.macroLists,
        };
      },
      connect: (cmd) => {
        const f = cmd.family === "U" ? { host: cmd.hostname, family: "U" } : { host: cmd.hostname, family: cmd.family, address: cmd.address, port: cmd.port };
        this.record(ctx, session, "connect", f);
        return answer("connect", this.script.connect, cmd);
      },
      helo: (cmd) => {
        this.record(ctx, session, "helo", { fqdn: cmd.hostname });
        return answer("helo", this.script.helo, cmd);
      },
      envelopeFrom: (cmd) => {
        this.record(ctx, session, "envelope-from", { address: cmd.address, args: cmd.args });
        return answer("envelope-from", this.script.envelopeFrom, cmd);
      },
      envelopeRecipient: (cmd) => {
        this.record(ctx, session, "envelope-recipient", { address: cmd.address, args: cmd.args });
        return answer("envelope-recipient", this.script.envelopeRecipient, cmd);
      },
      data: () => {
        this.record(ctx, session, "data");
        return answer("data", this.script.data, undefined);
      },
      unknown: (cmd) => {
        this.record(ctx, session, "unknown", { commandLine: cmd.commandLine });
        return answer("unknown", this.script.unknown, cmd);
      },
      header: (cmd) => {
        this.record(ctx, session, "header", { name: cmd.name, value: cmd.value });
        return answer("header", this.script.header, cmd);
      },
      endOfHeader: () => {
        this.record(ctx, session, "end-of-header");
        return answer("end-of-header", this.script.endOfHeader, undefined);
      },
      body: (cmd) => {
        this.bodyBytes += cmd.chunk.length;
        this.bodyHash.update(cmd.chunk);
        this.record(ctx, session, "body", this.script.recordBody === false ? {} : { chunk: Buffer.from(cmd.chunk).toString("latin1") });
        return answer("body", this.script.body, cmd);
      },
      endOfMessage: (cmd) => {
        this.record(ctx, session, "end-of-message", cmd.chunk ? { chunk: Buffer.from(cmd.chunk).toString("latin1") } : {});
        return answer("end-of-message", this.script.endOfMessage, cmd) as Promise<StepResult | EomResult>;
      },
      abort: () => {
        this.record(ctx, session, "abort");
      },
      quit: () => {
        this.record(ctx, session, "quit");
      },
    };
  }
}

/** Never answer; give up when the session ends (the manager dropped us). */
function hang(ctx: SessionContext): Promise<StepResult> {
  return new Promise((resolve) => {
    if (ctx.signal.aborted) return resolve(Continue);
    ctx.signal.addEventListener("abort", () => resolve(Continue), { once: true });
  });
}

export async function startScriptedMilter(script: Script = {}, spec?: string): Promise<ScriptedMilter> {
  return new ScriptedMilter(script).start(spec);
}
