// Trust: never stops; when the envelope sender's domain is a trusted one, the milter gets the macro
// `trusted_domain=yes` with MAIL FROM (milters such as milter-greylist can act on it).
import { z } from "./zod.ts";
import type { ConditionDefinition } from "./api.ts";
import { anyMatcher, type Pattern, patternSchema } from "./pattern.ts";

// ---- settings (applicable_conditions.*; config/schema.ts combines them)

/** `applicable_conditions.trust`: settings of "Trust". */
export interface TrustSettings {
  /** Envelope-from domains (or patterns) that get macro `trusted_domain=yes`. Default: the stock eight. */
  envelope_from_domains: Pattern[];
}

export const TRUST_DEFAULTS: TrustSettings = {
  envelope_from_domains: [
    "gmail.com", "hotmail.com", "msn.com", "yahoo.co.jp", "softbank.ne.jp", "ezweb.ne.jp", "docomo.ne.jp", "clear-code.com",
  ],
};

export const TrustSchema = z.strictObject({ envelope_from_domains: z.array(patternSchema) });

/** The domain of an envelope address (`<user@Example.COM>` → `example.com`); undefined for `<>` or no domain. */
export function envelopeDomain(address: string): string | undefined {
  const a = address.trim().replace(/^<(.*)>$/s, "$1");
  const at = a.lastIndexOf("@");
  if (at < 0 || at === a.length - 1) return undefined;
  return a.slice(at + 1).toLowerCase();
}

export function trustCondition(settings: TrustSettings): ConditionDefinition {
  const trusted = anyMatcher(settings.envelope_from_domains);
  return {
    name: "Trust",
    description: "Never stops; adds the macro trusted_domain=yes at MAIL when the sender's domain is in envelope_from_domains",
    envelopeFrom(ctx, from) {
      const domain = envelopeDomain(from);
      if (domain !== undefined && trusted(domain)) ctx.addMacro("trusted_domain", "yes");
      return false;
    },
  };
}
