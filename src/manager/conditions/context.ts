// The per-session memory of the conditions and the ConditionContext handed to stoppers.
//
// What the engine gives for each decision (stop-hook.ts StopContext) is enough except for two
// things kept here per SMTP session: the client host and address from the connect command (for
// the later stages) and, per milter, the macros conditions added (so that a stopper reads them
// back like the MTA's). Added macros live like the MTA's own: a new command of a stage replaces
// that stage's values and clears the later stages', abort clears the transaction's.
import { getMacro, macroKey } from "../../milter/index.ts";
import type { ManagerLog } from "../log.ts";
import type { ChildView, NotifyContext, StopEvent } from "../stop-hook.ts";
import { clientAddressOf, serverAddressFrom, type SocketAddress, UNKNOWN_ADDRESS } from "./address.ts";
import type { ConditionContext, ConditionLogLevel, ConditionStage } from "./api.ts";

/** Macro stage letter of each condition stage (libmilter's command letters). */
const LETTER: Readonly<Record<ConditionStage, string | undefined>> = {
  connect: "C",
  helo: "H",
  "envelope-from": "M",
  "envelope-recipient": "R",
  data: "T",
  header: "L",
  "end-of-header": "N",
  body: "B",
  "end-of-message": "E",
  abort: undefined,
  quit: undefined,
};
/** Stages in protocol order; a command of one clears the ones after it. */
const ORDER = ["C", "H", "M", "R", "T", "L", "N", "B", "E"] as const;
const TRANSACTION = ["M", "R", "T", "L", "N", "B", "E"] as const;
/** Later stages first, as MacroContext looks macros up (U first). */
const LOOKUP = ["U", "E", "B", "N", "L", "T", "R", "M", "H", "C"] as const;

/** Stage letter → macro key (no braces) → value, for one milter. */
type Added = Map<string, Map<string, string>>;

/** The conditions' memory of one SMTP session. */
export class SessionMemory {
  clientHost: string | undefined;
  clientAddress: SocketAddress = UNKNOWN_ADDRESS;
  private readonly added = new Map<string, Added>();

  /** A command is about to go to `child`: remember the client at connect, drop added macros it replaces. */
  observe(child: string, event: StopEvent): void {
    if (event.stage === "connect") {
      this.clientHost = event.command.hostname;
      this.clientAddress = clientAddressOf(event.command);
    }
    const mine = this.added.get(child);
    if (!mine) return;
    const i = ORDER.indexOf(LETTER[event.stage] as (typeof ORDER)[number]);
    for (let j = i; j < ORDER.length; j++) mine.delete(ORDER[j]);
  }

  /** Abort: the transaction's added macros are gone (connect and HELO ones stay). */
  abort(child: string): void {
    const mine = this.added.get(child);
    if (mine) for (const s of TRANSACTION) mine.delete(s);
  }

  add(child: string, stage: string, name: string, value: string): void {
    let mine = this.added.get(child);
    if (!mine) this.added.set(child, (mine = new Map()));
    let table = mine.get(stage);
    if (!table) mine.set(stage, (table = new Map()));
    table.set(macroKey(name), value);
  }

  addedFor(child: string): Added | undefined {
    return this.added.get(child);
  }
}

// One memory per session, found through the session's own store (a Map the engine keeps per session).
const memories = new WeakMap<Map<string, unknown>, SessionMemory>();

export function sessionMemory(session: Map<string, unknown>): SessionMemory {
  let m = memories.get(session);
  if (!m) memories.set(session, (m = new SessionMemory()));
  return m;
}

/** What the context needs besides the engine's view. */
export interface ContextDeps {
  log: ManagerLog;
  /** MTA sessions being served now. */
  sessions(): number;
}

/** The ConditionContext of one milter at one stage (built only when a stopper runs). */
export class StopperContext implements ConditionContext {
  /** Set by the registry before each stopper runs, for log lines. */
  conditionName = "";

  constructor(
    private readonly view: ChildView,
    readonly stage: ConditionStage,
    private readonly engine: NotifyContext & { addMacro?: (name: string, value: string) => void },
    private readonly memory: SessionMemory,
    private readonly deps: ContextDeps,
  ) {}

  get name(): string {
    return this.view.name;
  }
  get sessionId(): number {
    return this.engine.sessionId;
  }

  macro(name: string): string | undefined {
    const added = this.memory.addedFor(this.view.name);
    const key = macroKey(name);
    for (const s of LOOKUP) {
      const a = added?.get(s)?.get(key);
      if (a !== undefined) return a;
      const m = this.engine.macros.stage(s);
      if (m === undefined) continue;
      const v = getMacro(m, name);
      if (v !== undefined) return v;
    }
    return undefined;
  }

  macros(): Map<string, string> {
    const out = new Map<string, string>();
    const added = this.memory.addedFor(this.view.name);
    for (let i = LOOKUP.length - 1; i >= 0; i--) {
      const s = LOOKUP[i];
      const m = this.engine.macros.stage(s);
      if (m) for (const [k, v] of m) out.set(macroKey(k), v);
      const a = added?.get(s);
      if (a) for (const [k, v] of a) out.set(k, v);
    }
    return out;
  }

  addMacro(name: string, value: string): void {
    const letter = LETTER[this.stage];
    if (letter === undefined || this.engine.addMacro === undefined) {
      this.log("warning", `macro ${name} not added: nothing is sent to the milter at ${this.stage}`);
      return;
    }
    this.memory.add(this.view.name, letter, name, value);
    this.engine.addMacro(name, value);
  }

  get clientHost(): string | undefined {
    return this.memory.clientHost;
  }
  get clientAddress(): SocketAddress {
    return this.memory.clientAddress;
  }
  get serverAddress(): SocketAddress {
    return serverAddressFrom((n) => this.macro(n));
  }
  get transaction(): Map<string, unknown> {
    return this.engine.transaction;
  }
  get session(): Map<string, unknown> {
    return this.engine.session;
  }
  get children(): readonly ChildView[] {
    return this.engine.children;
  }
  child(name: string): ChildView | undefined {
    return this.engine.children.find((c) => c.name === name);
  }
  get status(): string | undefined {
    return this.view.lastStatus;
  }
  get processingSessions(): number {
    return this.deps.sessions();
  }
  get postfix(): boolean {
    return (this.macro("v") ?? "").includes("Postfix");
  }
  get authenticated(): boolean {
    return !!this.macro("auth_type") || !!this.macro("auth_authen");
  }

  log(level: ConditionLogLevel, text: string): void {
    if (!this.deps.log.enabled(level)) return;
    this.deps.log.write(level, `[${this.sessionId}] [condition][${this.conditionName}] milter ${this.view.name} at ${this.stage}: ${text}`);
  }
}
