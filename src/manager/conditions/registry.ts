// Every condition a configuration knows (built-ins with their settings, the restrict_accounts
// rules, those written in the configuration) and the engine's hook (stop-hook.ts Conditions) that
// runs, for each milter, the stoppers of the conditions it names.
//
// A milter is stopped at a stage when any stopper of that stage of any of its conditions returns
// true; they run in the order the milter lists its conditions and the first true ends the round.
// A stopper that throws, rejects or does not answer within the milter's reading_timeout counts as
// "do not stop" and is logged — a condition never breaks a session.
import type { ManagerLog } from "../log.ts";
import type { ChildView, Conditions, NotifyContext, StopContext, StopEvent, StopStage } from "../stop-hook.ts";
import type { SocketAddress } from "./address.ts";
import {
  type ConditionDefinition,
  type ConditionStage,
  NOTIFICATION_KEYS,
  STAGE_OF_KEY,
  STOPPER_KEYS,
  STOPPER_OF_STAGE,
  type StopperKey,
} from "./api.ts";
import { authenticatedCondition, unauthenticatedCondition } from "./authentication.ts";
import { type ContextDeps, sessionMemory, StopperContext } from "./context.ts";
import type { CachingResolver } from "./dns.ts";
import { dnsblConditions, type DnsblSettings } from "./dnsbl.ts";
import { remoteNetworkCondition, type RemoteNetworkSettings } from "./remote-network.ts";
import { restrictAccountsByList, type RestrictAccountsRule } from "./restrict-accounts.ts";
import { s25rCondition, type S25rSettings } from "./s25r.ts";
import { sendmailCompatibleCondition } from "./sendmail-compatible.ts";
import { stressConditions, type StressSettings } from "./stress.ts";
import { trustCondition, type TrustSettings } from "./trust.ts";

/** `applicable_conditions`: the settings of the built-in conditions (each file owns its part). */
export interface ConditionSettings {
  s25r: S25rSettings;
  remote_network: RemoteNetworkSettings;
  trust: TrustSettings;
  stress: StressSettings;
  dnsbl: DnsblSettings;
  /** Default []. */
  restrict_accounts: RestrictAccountsRule[];
}

/** What the conditions read of a milter's configuration (config/schema.ts MilterConfig). */
export interface MilterConditions {
  readonly name: string;
  readonly enabled: boolean;
  readonly applicable_conditions: readonly string[];
  /** Seconds a stopper may take. */
  readonly reading_timeout: number;
}

/** What the conditions read of the manager's configuration (config/schema.ts ManagerConfig). */
export interface ConditionsConfig {
  readonly applicable_conditions: ConditionSettings;
  /** Conditions written in the configuration (defineCondition). */
  readonly conditions: readonly ConditionDefinition[];
  readonly milters: readonly MilterConditions[];
}

/** What the conditions need from the running manager. */
export interface ConditionDeps extends ContextDeps {
  /** Resolver for the DNSBL conditions (default: one built from applicable_conditions.dnsbl). */
  dnsblResolver?: CachingResolver;
  /** Resolver for Sendmail Compatible's reverse lookups (default: the system's name servers). */
  reverseResolver?: CachingResolver;
  /** Stress threshold "auto" with Postfix (default: read with postconf once). */
  detectPostfixThreshold?: () => Promise<number>;
}

/** Where a condition comes from, for --show-config. */
export type ConditionSource =
  | { kind: "built-in"; settings: string | undefined }
  | { kind: "restrict_accounts" }
  | { kind: "configuration" };

export interface CatalogEntry {
  condition: ConditionDefinition;
  source: ConditionSource;
}

const NO_DEPS: ConditionDeps = { log: { enabled: () => false, write() {} }, sessions: () => 0 };

/** The built-in conditions with the configuration's settings (manager.md §3.3); no I/O until used. */
export function builtinConditions(config: ConditionsConfig, deps: ConditionDeps = NO_DEPS): CatalogEntry[] {
  const a = config.applicable_conditions;
  const builtIn = (condition: ConditionDefinition, settings?: string): CatalogEntry => ({
    condition,
    source: { kind: "built-in", settings: settings === undefined ? undefined : `applicable_conditions.${settings}` },
  });
  return [
    builtIn(s25rCondition(a.s25r), "s25r"),
    builtIn(remoteNetworkCondition(a.remote_network), "remote_network"),
    builtIn(authenticatedCondition()),
    builtIn(unauthenticatedCondition()),
    builtIn(trustCondition(a.trust), "trust"),
    builtIn(sendmailCompatibleCondition({ resolver: deps.reverseResolver })),
    ...stressConditions(a.stress, { detectPostfix: deps.detectPostfixThreshold }).map((c) => builtIn(c, "stress")),
    ...dnsblConditions(a.dnsbl, deps.dnsblResolver).map((c) => builtIn(c, "dnsbl")),
  ];
}

/** Every condition of a configuration: built-ins, restrict_accounts rules, then the configuration's own. */
export function conditionCatalog(config: ConditionsConfig, deps: ConditionDeps = NO_DEPS): CatalogEntry[] {
  return [
    ...builtinConditions(config, deps),
    ...config.applicable_conditions.restrict_accounts.map((r): CatalogEntry => ({
      condition: restrictAccountsByList(r.accounts, { name: r.name }),
      source: { kind: "restrict_accounts" },
    })),
    ...config.conditions.map((condition): CatalogEntry => ({ condition, source: { kind: "configuration" } })),
  ];
}

/** The conditions a milter runs: those it names, in its order, then restrict_accounts rules attached to it. */
export function conditionNamesOf(milter: MilterConditions, config: ConditionsConfig): string[] {
  const names = [...milter.applicable_conditions];
  for (const r of config.applicable_conditions.restrict_accounts) {
    if ((r.milters === null || r.milters.includes(milter.name)) && !names.includes(r.name)) names.push(r.name);
  }
  return names;
}

/** The stoppers of one stage for one milter. */
type Stoppers = { condition: ConditionDefinition; run: (...args: never[]) => unknown }[];

interface MilterHooks {
  readonly stages: Partial<Record<StopperKey | "abort" | "quit", Stoppers>>;
  /** How long a stopper may take: the milter's reading_timeout. */
  readonly timeoutMs: number;
}

/**
 * The engine's hook for a configuration, or undefined when no milter has a condition (the engine
 * then asks nothing). Throws on a condition name no catalog entry has (load.ts checks this first).
 */
export function createConditions(config: ConditionsConfig, deps: ConditionDeps): AppliedConditions | undefined {
  const named = config.milters.filter((m) => m.enabled).map((m) => ({ m, names: conditionNamesOf(m, config) }));
  if (named.every((x) => x.names.length === 0)) return undefined;
  const byName = new Map(conditionCatalog(config, deps).map((e) => [e.condition.name, e.condition]));
  const perMilter = new Map<string, MilterHooks>();
  for (const { m, names } of named) {
    const conditions = names.map((n) => {
      const c = byName.get(n);
      if (!c) throw new Error(`milter "${m.name}": unknown applicable condition "${n}"`);
      return c;
    });
    if (conditions.length === 0) continue;
    const stages: MilterHooks["stages"] = {};
    for (const key of [...STOPPER_KEYS, ...NOTIFICATION_KEYS]) {
      const list: Stoppers = [];
      for (const c of conditions) {
        const fn = c[key];
        if (typeof fn === "function") list.push({ condition: c, run: fn as (...args: never[]) => unknown });
      }
      if (list.length > 0) stages[key] = list;
    }
    perMilter.set(m.name, { stages, timeoutMs: m.reading_timeout * 1000 });
  }
  return perMilter.size === 0 ? undefined : new AppliedConditions(perMilter, deps);
}

export class AppliedConditions implements Conditions {
  constructor(
    private readonly perMilter: ReadonlyMap<string, MilterHooks>,
    private readonly deps: ConditionDeps,
  ) {}

  /** The milters that have conditions. */
  get milters(): string[] {
    return [...this.perMilter.keys()];
  }

  shouldStop(child: ChildView, stage: StopStage, context: StopContext): boolean | Promise<boolean> {
    const memory = sessionMemory(context.session);
    memory.observe(child.name, context.event);
    const hooks = this.perMilter.get(child.name);
    const stoppers = hooks?.stages[STOPPER_OF_STAGE[stage]];
    if (!hooks || !stoppers) return false;
    const ctx = new StopperContext(child, stage, context, memory, this.deps);
    return this.run(stoppers, 0, ctx, argsOf(context.event, memory.clientAddress), hooks.timeoutMs);
  }

  /** The MTA aborted the transaction or the session ends: tell the conditions that listen. */
  notify(child: ChildView, what: "abort" | "quit", context: NotifyContext): void | Promise<void> {
    const memory = sessionMemory(context.session);
    if (what === "abort") memory.abort(child.name);
    const hooks = this.perMilter.get(child.name);
    const listeners = hooks?.stages[what];
    if (!hooks || !listeners) return;
    const ctx = new StopperContext(child, what, context, memory, this.deps);
    const r = this.run(listeners, 0, ctx, [], hooks.timeoutMs);
    return typeof r === "boolean" ? undefined : r.then(() => undefined);
  }

  /** Run stoppers from `i` on until one says stop; synchronous as long as they are. */
  private run(stoppers: Stoppers, i: number, ctx: StopperContext, args: unknown[], timeoutMs: number): boolean | Promise<boolean> {
    for (; i < stoppers.length; i++) {
      const { condition, run } = stoppers[i];
      ctx.conditionName = condition.name;
      let r: unknown;
      try {
        r = (run as (...a: unknown[]) => unknown)(ctx, ...args);
      } catch (e) {
        this.failed(ctx, e);
        continue;
      }
      if (r === true) return true;
      if (isThenable(r)) {
        const next = i + 1;
        return this.settle(r, ctx, timeoutMs).then((stop) => {
          if (stop) return true;
          return this.run(stoppers, next, ctx, args, timeoutMs);
        });
      }
    }
    return false;
  }

  /** An async stopper's answer, within the time limit; a rejection or a late answer is "no". */
  private settle(p: PromiseLike<unknown>, ctx: StopperContext, timeoutMs: number): Promise<boolean> {
    return new Promise<boolean>((resolve) => {
      let done = false;
      const finish = (stop: boolean, error?: unknown) => {
        if (done) return; // an answer after the time limit is dropped
        done = true;
        clearTimeout(timer);
        if (error !== undefined) this.failed(ctx, error);
        resolve(stop);
      };
      const timer = setTimeout(
        () => finish(false, new Error(`no answer within ${timeoutMs / 1000} s (the milter's reading_timeout)`)),
        timeoutMs,
      );
      p.then(
        (v) => finish(v === true),
        (e) => finish(false, e ?? new Error("rejected")),
      );
    });
  }

  private failed(ctx: StopperContext, e: unknown): void {
    const why = e instanceof Error ? e.message : String(e);
    ctx.log("warning", `failed, counted as "do not stop": ${why}`);
  }
}

function isThenable(v: unknown): v is PromiseLike<unknown> {
  return v !== null && (typeof v === "object" || typeof v === "function") && typeof (v as PromiseLike<unknown>).then === "function";
}

/** The stage's values after the context, as the stoppers take them (api.ts ConditionDefinition). */
function argsOf(event: StopEvent, clientAddress: SocketAddress): unknown[] {
  switch (event.stage) {
    case "connect":
      return [event.command.hostname, clientAddress];
    case "helo":
      return [event.fqdn];
    case "envelope-from":
      return [event.from, event.args];
    case "envelope-recipient":
      return [event.recipient, event.args];
    case "header":
      return [event.name, event.value];
    case "body":
      return [event.chunk];
    default:
      return [];
  }
}

/** Stage names of the stoppers a condition has, in stage order (for --show-config). */
export function stagesOf(condition: ConditionDefinition): ConditionStage[] {
  return [...STOPPER_KEYS, ...NOTIFICATION_KEYS].filter((k) => typeof condition[k] === "function").map((k) => STAGE_OF_KEY[k]);
}
