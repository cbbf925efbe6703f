// Hook point for applicable conditions (manager.md §2.9, §3). Before a stage's command goes to a
// child, the engine asks `shouldStop(child, stage, context)`; a true answer *stops* that child at
// that stage. What a stop does is the rule book's: the `stop` of each stage in rules/envelope.ts
// (connect … data), rules/content.ts (header, end-of-header, body) and rules/end-of-message.ts.
// There is no stop for unknown, abort and quit; abort (by the MTA) and quit are notifications.
// A hook that throws (or rejects) counts as "no". A condition may also add macros for the child at
// the current stage (context.addMacro): they go with that stage's command to that child only.
// The conditions themselves (built-ins, restrict_accounts rules, the configuration's own) are in
// conditions/: registry.ts createConditions builds this hook from the configuration (index.ts).
import { type ConnectCommand, type MacroContext, type Macros, macroKey, macroWireName } from "../milter/index.ts";

export type StopStage =
  | "connect" | "helo" | "envelope-from" | "envelope-recipient" | "data"
  | "header" | "end-of-header" | "body" | "end-of-message";

/** What a condition may know about a child (its own or another one of the session). */
export interface ChildView {
  /** The milter's configured name. */
  readonly name: string;
  /** Still connected and taking part in the SMTP session. */
  readonly alive: boolean;
  /** Taking part in the current message. */
  readonly processing: boolean;
  /** The last status this child answered (its real answer, evaluation mode or not). */
  readonly lastStatus: string | undefined;
}

/** The command about to be sent, with its arguments. */
export type StopEvent =
  | { stage: "connect"; command: ConnectCommand }
  | { stage: "helo"; fqdn: string }
  | { stage: "envelope-from"; from: string; args: readonly string[] }
  | { stage: "envelope-recipient"; recipient: string; args: readonly string[] }
  | { stage: "data" }
  | { stage: "header"; name: string; value: string }
  | { stage: "end-of-header" }
  | { stage: "body"; chunk: Uint8Array }
  | { stage: "end-of-message" };

export interface StopContext {
  /** Session number, as in the log. */
  readonly sessionId: number;
  readonly event: StopEvent;
  /** Macros the MTA sent so far (libmilter lifetime rules); `macros.get("{auth_type}")` etc. */
  readonly macros: MacroContext;
  /** Every child of the session, in order (milter-manager's `context.children`). */
  readonly children: readonly ChildView[];
  /** Key/value store of the current transaction, shared by all children; emptied at MAIL and abort. */
  readonly transaction: Map<string, unknown>;
  /** Key/value store of the SMTP session, shared by all children. */
  readonly session: Map<string, unknown>;
  /** Add (or replace) a macro sent to this child with this stage's command (if it is not stopped). */
  addMacro(name: string, value: string): void;
}

/** The context of a notification: no command, nothing to add. */
export type NotifyContext = Omit<StopContext, "event" | "addMacro">;

export interface Conditions {
  shouldStop(child: ChildView, stage: StopStage, context: StopContext): boolean | Promise<boolean>;
  /** The MTA aborted the transaction ("abort") or the SMTP session ends ("quit"); once per child. */
  notify?(child: ChildView, what: "abort" | "quit", context: NotifyContext): void | Promise<void>;
}

/**
 * Ask the hook, turning a throw or a rejection into "no" (milter-manager guards stoppers the same
 * way). Returns a plain boolean when the hook answered synchronously, so the common path has no await.
 */
export function askStop(
  conditions: Conditions,
  child: ChildView,
  context: StopContext,
  onError: (e: unknown) => void,
): boolean | Promise<boolean> {
  let r: boolean | Promise<boolean>;
  try {
    r = conditions.shouldStop(child, context.event.stage, context);
  } catch (e) {
    onError(e);
    return false;
  }
  if (typeof r === "boolean") return r;
  return Promise.resolve(r).then(
    (v) => v === true,
    (e) => {
      onError(e);
      return false;
    },
  );
}

/** A stage's macros with those conditions added for one child (theirs win, whatever the spelling). */
export function withMacros(macros: Macros | undefined, added: ReadonlyMap<string, string>): Map<string, string> {
  const out = new Map(macros ?? []);
  for (const [name, value] of added) {
    const key = macroKey(name);
    out.delete(key);
    out.delete(`{${key}}`);
    out.set(macroWireName(key), value);
  }
  return out;
}
