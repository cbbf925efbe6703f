// Restrict Accounts: apply a milter only to messages whose recipients are all allowed accounts.
// A recipient that is not allowed is hidden from the milter (stopped at that RCPT) and marks the
// transaction; at DATA the milter is stopped (leaves the message) when the transaction is marked.
// The mark lives in the per-transaction store, not in a macro, so the result does not depend on
// the order of the recipients (milter-manager issues #39, #42).
import { z } from "./zod.ts";
import type { Awaitable, ConditionContext, ConditionDefinition } from "./api.ts";
import { anyMatcher, type Pattern, patternSchema } from "./pattern.ts";
import { duplicates, nonEmpty } from "./settings.ts";

// ---- settings (applicable_conditions.*; config/schema.ts combines them)

/** One `restrict_accounts` rule: defines the condition `name` and attaches it to `milters`. */
export interface RestrictAccountsRule {
  /** Condition name (must not clash with a built-in). */
  name: string;
  /** Recipient addresses (without <>) or patterns the milters are applied to. */
  accounts: Pattern[];
  /** Milters the condition is attached to; null = every milter. */
  milters: string[] | null;
}


const RestrictAccountsRuleSchema = z.strictObject({
  name: nonEmpty,
  accounts: z.array(patternSchema).min(1, { error: "needs at least one account" }),
  milters: z.array(nonEmpty).nullable().default(null),
});
/** `applicable_conditions.restrict_accounts`: the rules, names unique. */
export const RestrictAccountsSchema = z.array(RestrictAccountsRuleSchema).superRefine((rules, ctx) => duplicates(rules, ctx));

/** `<user@example.com>` → `user@example.com`. */
export function bareAddress(address: string): string {
  return address.trim().replace(/^<(.*)>$/s, "$1");
}

export interface RestrictAccountsOptions {
  /** Condition name; default "Restrict Accounts". */
  name?: string;
  description?: string;
  /** Is this recipient (address without <>) an account the milter is for? */
  allowed: (ctx: ConditionContext, recipient: string) => Awaitable<boolean>;
  settings?: Record<string, unknown>;
}

/** A condition from any test of the recipient (milter-manager's restrict_accounts_generic). */
export function restrictAccounts(options: RestrictAccountsOptions): ConditionDefinition {
  const name = options.name ?? "Restrict Accounts";
  const key = (ctx: ConditionContext) => `restrict-accounts\u0000${name}\u0000${ctx.name}`;
  const mark = (ctx: ConditionContext, ok: boolean) => {
    if (ok) return false;
    ctx.transaction.set(key(ctx), true);
    return true; // this recipient is hidden from the milter
  };
  return {
    name,
    description: options.description ?? "Apply the milter only to messages whose recipients are all allowed accounts",
    settings: options.settings,
    envelopeRecipient(ctx, recipient) {
      const ok = options.allowed(ctx, bareAddress(recipient));
      return typeof ok === "boolean" ? mark(ctx, ok) : ok.then((v) => mark(ctx, v));
    },
    data: (ctx) => ctx.transaction.get(key(ctx)) === true,
  };
}

/** A condition from a list of accounts or patterns (milter-manager's restrict_accounts_by_list). */
export function restrictAccountsByList(accounts: readonly Pattern[], options: { name?: string; description?: string } = {}): ConditionDefinition {
  const allowed = anyMatcher(accounts);
  return restrictAccounts({
    name: options.name ?? `Restrict Accounts by List: [${accounts.join(", ")}]`,
    description: options.description ?? "Apply the milter only to messages whose recipients are all in the account list",
    allowed: (_ctx, recipient) => allowed(recipient),
    settings: { accounts: [...accounts] },
  });
}
