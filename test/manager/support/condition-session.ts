// Drives the conditions' engine hook (AppliedConditions) the way the leader does for one SMTP
// session, without sockets: the MTA's macros go through a real MacroContext (define, then the
// command), the transaction store is emptied at MAIL and abort, and the macros a condition adds
// for a child are collected per call.
import { defaultConfig, defaultMilter, type ManagerConfig } from "../../../src/manager/config/schema.ts";
import type { ConditionDefinition } from "../../../src/manager/conditions/api.ts";
import { type AppliedConditions, type ConditionDeps, createConditions } from "../../../src/manager/conditions/registry.ts";
import type { ManagerLog } from "../../../src/manager/log.ts";
import type { ChildView, StopEvent } from "../../../src/manager/stop-hook.ts";
import { type ConnectCommand, MacroContext } from "../../../src/milter/index.ts";

const LETTER: Record<string, string> = {
  connect: "C", helo: "H", "envelope-from": "M", "envelope-recipient": "R", data: "T", header: "L",
  "end-of-header": "N", body: "B", "end-of-message": "E",
};

/** A log that keeps its lines. */
export function memoryLog(): ManagerLog & { lines: string[] } {
  const lines: string[] = [];
  return { lines, enabled: () => true, write: (level, text) => void lines.push(`[${level}] ${text}`) };
}

/** A configuration with milters named `names`, each naming the given conditions. */
export function configWith(milters: Record<string, string[]>, edit?: (c: ManagerConfig) => void, conditions: ConditionDefinition[] = []): ManagerConfig {
  const config = defaultConfig();
  config.milters = Object.entries(milters).map(([name, list]) => ({ ...defaultMilter(name, "unix:/nonexistent"), applicable_conditions: list }));
  config.conditions = conditions;
  edit?.(config);
  return config;
}

export interface Answer {
  stop: boolean;
  /** Macros added for the child at this call. */
  added: Record<string, string>;
}

export class ConditionSession {
  readonly macros = new MacroContext();
  readonly transaction = new Map<string, unknown>();
  readonly session = new Map<string, unknown>();
  readonly children: (ChildView & { lastStatus: string | undefined })[];
  readonly log = memoryLog();
  readonly conditions: AppliedConditions | undefined;
  sessions = 1;
  private static ids = 0;
  readonly id = ++ConditionSession.ids;

  constructor(config: ManagerConfig, deps: Partial<ConditionDeps> = {}) {
    this.conditions = createConditions(config, { log: this.log, sessions: () => this.sessions, ...deps });
    this.children = config.milters.map((m) => ({ name: m.name, alive: true, processing: false, lastStatus: undefined }));
  }

  /** The MTA sends this stage (with its macros); ask the conditions for `child`. */
  async ask(child: string, event: StopEvent, macros?: Record<string, string>): Promise<Answer> {
    return (await this.askAll([child], event, macros))[0];
  }

  /** Same for several children at once (the fan-out). */
  async askAll(children: string[], event: StopEvent, macros?: Record<string, string>): Promise<Answer[]> {
    const letter = LETTER[event.stage];
    if (macros) this.macros.define(letter, new Map(Object.entries(macros)));
    this.macros.enter(letter);
    if (event.stage === "envelope-from") this.transaction.clear();
    return Promise.all(
      children.map(async (name) => {
        const view = this.children.find((c) => c.name === name)!;
        const added: Record<string, string> = {};
        const stop = this.conditions
          ? await this.conditions.shouldStop(view, event.stage, {
              sessionId: this.id,
              event,
              macros: this.macros,
              children: this.children,
              transaction: this.transaction,
              session: this.session,
              addMacro: (n: string, v: string) => void (added[n] = v),
            } as Parameters<AppliedConditions["shouldStop"]>[2])
          : false;
        return { stop, added };
      }),
    );
  }

  /** MTA abort: macros of the transaction and the store go, conditions are told. */
  async abort(): Promise<void> {
    this.macros.enter("A");
    for (const c of this.children) await this.conditions?.notify(c, "abort", this.notifyContext());
    this.transaction.clear();
  }

  async quit(): Promise<void> {
    for (const c of this.children) await this.conditions?.notify(c, "quit", this.notifyContext());
    this.macros.enter("Q");
  }

  private notifyContext() {
    return { sessionId: this.id, macros: this.macros, children: this.children, transaction: this.transaction, session: this.session };
  }
}

export function connect(hostname: string, address: string, family: "4" | "6" | "L" = address.includes(":") ? "6" : "4", port = 40000): StopEvent {
  const command: ConnectCommand = { type: "connect", hostname, family, port, address };
  return { stage: "connect", command };
}
export const helo = (fqdn: string): StopEvent => ({ stage: "helo", fqdn });
export const mail = (from: string, args: string[] = []): StopEvent => ({ stage: "envelope-from", from, args });
export const rcpt = (recipient: string, args: string[] = []): StopEvent => ({ stage: "envelope-recipient", recipient, args });
export const DATA: StopEvent = { stage: "data" };
