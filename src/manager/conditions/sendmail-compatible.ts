// Sendmail Compatible: never stops; with Postfix, adds the Sendmail macros some milters expect and
// Postfix does not send: at connect `if_addr` (the address the MTA was reached on, from
// `{daemon_addr}`), `if_name` (its reverse DNS name) and `daemon_port`; at MAIL `i` (queue id)
// when Postfix did not send one.
import type { ConditionContext, ConditionDefinition } from "./api.ts";
import { CachingResolver } from "./dns.ts";

export interface SendmailCompatibleDeps {
  /** Reverse lookups for if_name (default: the system's name servers, 2 s timeout, cached). */
  resolver?: CachingResolver;
}

/** A failed reverse lookup is not retried for this long (the MTA's own addresses rarely change). */
const FAILED_LOOKUP_MEMORY_MS = 5 * 60_000;

export function sendmailCompatibleCondition(deps: SendmailCompatibleDeps = {}): ConditionDefinition {
  let resolver = deps.resolver;
  const failed = new Map<string, number>();

  async function ifName(ctx: ConditionContext, address: string): Promise<void> {
    const until = failed.get(address);
    if (until !== undefined && until > Date.now()) return;
    resolver ??= new CachingResolver({ servers: [], timeoutMs: 2000, cacheTtlMs: 3_600_000, maxEntries: 100 });
    const answer = await resolver.reverse(address);
    if (answer.ok && answer.values.length > 0) {
      ctx.addMacro("if_name", answer.values[0]);
      return;
    }
    if (failed.size > 100) failed.clear();
    failed.set(address, Date.now() + FAILED_LOOKUP_MEMORY_MS);
    if (!answer.ok) ctx.log("debug", `no if_name for ${address}: ${answer.error}`);
  }

  return {
    name: "Sendmail Compatible",
    description: "Never stops; with Postfix adds Sendmail's macros if_addr, if_name, daemon_port (connect) and i (MAIL) when missing",
    connect(ctx) {
      if (!ctx.postfix) return false;
      const server = ctx.serverAddress;
      if (server.family !== "ipv4" && server.family !== "ipv6") return false;
      if (ctx.macro("daemon_port") === undefined && server.port > 0) ctx.addMacro("daemon_port", String(server.port));
      if (ctx.macro("if_addr") === undefined) ctx.addMacro("if_addr", server.address);
      if (ctx.macro("if_name") !== undefined) return false;
      return ifName(ctx, server.address).then(() => false);
    },
    envelopeFrom(ctx) {
      if (ctx.postfix && ctx.macro("i") === undefined) ctx.addMacro("i", "dummy-id");
      return false;
    },
  };
}
