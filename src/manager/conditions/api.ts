// The applicable-condition API (manager.md §3): what an administrator writes in a `.ts`
// configuration and what the built-in conditions are written with.
//
//   import { defineConfig, defineCondition } from "milterkit";
//   const onlyExternal = defineCondition({
//     name: "Only external",
//     description: "Apply the milter to clients outside our networks only",
//     connect: (ctx, host, address) => address.local, // true = stop this milter for the session
//   });
//   export default defineConfig({
//     conditions: [onlyExternal],
//     milters: [{ name: "spamass", connection_spec: "unix:/run/spamass.sock", applicable_conditions: ["Only external"] }],
//   });
//
// A condition has stoppers, one per stage it cares about. Before a stage's command goes to a milter,
// the stoppers of that stage of every condition the milter names run in order; the first that returns
// true stops the milter at that stage (what a stop means at each stage: stop-hook.ts, manager.md §2.9).
// Returning false, nothing, or throwing (logged) means "do not stop". A stopper may be async.
// `abort` and `quit` are notifications: they cannot stop anything.
import type { SocketAddress } from "./address.ts";
import type { ChildView, StopStage } from "../stop-hook.ts";

export type { SocketAddress } from "./address.ts";
export type { ChildView, StopStage } from "../stop-hook.ts";

export type Awaitable<T> = T | Promise<T>;

/** What a stopper returns: true stops the milter; false or nothing lets it go on. */
export type StopAnswer = Awaitable<boolean | undefined | void>;

/** Stages a condition hears about: the nine stopping stages plus the abort and quit notifications. */
export type ConditionStage = StopStage | "abort" | "quit";

/** Log levels a condition may write at (the manager's `log.level` decides what is kept). */
export type ConditionLogLevel = "error" | "warning" | "message" | "info" | "debug";

/** What a stopper knows and can do, for one milter at one stage. */
export interface ConditionContext {
  /** The milter (child) this decision is for: its configured name. */
  readonly name: string;
  /** The stage about to be sent. */
  readonly stage: ConditionStage;
  /** The MTA session's number, as in the log. */
  readonly sessionId: number;
  /**
   * A macro visible to this milter now: the MTA's macros of every stage so far (libmilter's
   * lifetime rules) and those added by conditions for this milter. `{name}` and `name` both work.
   */
  macro(name: string): string | undefined;
  /** Every visible macro (names without braces), later stages over earlier ones. */
  macros(): Map<string, string>;
  /** Add (or replace) a macro for this milter at the current stage; it is sent with this stage's command. */
  addMacro(name: string, value: string): void;
  /** The client's host name as the MTA reported it at connect (`[192.0.2.1]` when reverse DNS failed). */
  readonly clientHost: string | undefined;
  /** The SMTP client's address (family "unknown" before connect or when the MTA does not say). */
  readonly clientAddress: SocketAddress;
  /** The address the MTA received the connection on, from `{daemon_addr}`/`{if_addr}` and `{daemon_port}`. */
  readonly serverAddress: SocketAddress;
  /**
   * Key/value store of the current mail transaction, shared by the conditions of all milters of the
   * session (milter-manager's mail_transaction_shelf): emptied at MAIL and at abort.
   */
  readonly transaction: Map<string, unknown>;
  /** Key/value store of the SMTP session, shared by the conditions of all milters of the session. */
  readonly session: Map<string, unknown>;
  /** Every milter of the session, in order, with its state. */
  readonly children: readonly ChildView[];
  /** Another milter of the session by name. */
  child(name: string): ChildView | undefined;
  /** This milter's last answer ("continue", "accept", "reject", "stop", ...), if any. */
  readonly status: string | undefined;
  /** MTA sessions the manager is serving right now (milter-manager's n_processing_sessions). */
  readonly processingSessions: number;
  /** The MTA is Postfix (macro `v` says so). */
  readonly postfix: boolean;
  /** The sender authenticated (macro `{auth_type}` or `{auth_authen}` is set; known from MAIL on). */
  readonly authenticated: boolean;
  /** Write to the manager's log, tagged with the session, milter and condition. */
  log(level: ConditionLogLevel, text: string): void;
}

/** An applicable condition. Every stopper is optional. */
export interface ConditionDefinition {
  /** The name milters use in `applicable_conditions`. */
  name: string;
  /** What it does, for `--show-config`. */
  description?: string | null;
  /** Values shown by `--show-config` (plain data the stoppers use, e.g. lists of accounts). */
  settings?: Record<string, unknown>;
  /** Before connect. `host` is the client's host name as the MTA reports it. */
  connect?: (ctx: ConditionContext, host: string, address: SocketAddress) => StopAnswer;
  /** Before HELO/EHLO. */
  helo?: (ctx: ConditionContext, fqdn: string) => StopAnswer;
  /** Before MAIL FROM. `from` as the MTA sent it (normally `<user@domain>`). */
  envelopeFrom?: (ctx: ConditionContext, from: string, args: readonly string[]) => StopAnswer;
  /** Before each RCPT TO. Stopping affects only this recipient for this milter. */
  envelopeRecipient?: (ctx: ConditionContext, recipient: string, args: readonly string[]) => StopAnswer;
  /** Before DATA. */
  data?: (ctx: ConditionContext) => StopAnswer;
  /** Before each header. */
  header?: (ctx: ConditionContext, name: string, value: string) => StopAnswer;
  /** Before end-of-header. */
  endOfHeader?: (ctx: ConditionContext) => StopAnswer;
  /** Before each body chunk. */
  body?: (ctx: ConditionContext, chunk: Uint8Array) => StopAnswer;
  /** Before end-of-message. */
  endOfMessage?: (ctx: ConditionContext) => StopAnswer;
  /** The MTA aborted the transaction (notification). */
  abort?: (ctx: ConditionContext) => Awaitable<void>;
  /** The SMTP session ends (notification). */
  quit?: (ctx: ConditionContext) => Awaitable<void>;
}

/** The stoppers' keys, in stage order. */
export const STOPPER_KEYS = [
  "connect", "helo", "envelopeFrom", "envelopeRecipient", "data", "header", "endOfHeader", "body", "endOfMessage",
] as const satisfies readonly (keyof ConditionDefinition)[];
export type StopperKey = (typeof STOPPER_KEYS)[number];
export const NOTIFICATION_KEYS = ["abort", "quit"] as const satisfies readonly (keyof ConditionDefinition)[];

/** Engine stage name → stopper key. */
export const STOPPER_OF_STAGE: Readonly<Record<StopStage, StopperKey>> = {
  connect: "connect",
  helo: "helo",
  "envelope-from": "envelopeFrom",
  "envelope-recipient": "envelopeRecipient",
  data: "data",
  header: "header",
  "end-of-header": "endOfHeader",
  body: "body",
  "end-of-message": "endOfMessage",
};

/** Stopper key → stage name as the log and --show-config spell it. */
export const STAGE_OF_KEY: Readonly<Record<StopperKey | "abort" | "quit", ConditionStage>> = {
  connect: "connect",
  helo: "helo",
  envelopeFrom: "envelope-from",
  envelopeRecipient: "envelope-recipient",
  data: "data",
  header: "header",
  endOfHeader: "end-of-header",
  body: "body",
  endOfMessage: "end-of-message",
  abort: "abort",
  quit: "quit",
};

/** Gives a condition its type (and editor completion) in a `.ts` configuration; returns it unchanged. */
export function defineCondition(condition: ConditionDefinition): ConditionDefinition {
  return condition;
}
