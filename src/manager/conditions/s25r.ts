// S25R ("Selective SMTP Rejection"): a client whose host name looks like an end-user or dynamic
// address (no reverse DNS, many digits, dialup/dsl prefixes, ...) is probably a bot; the milter is
// applied to those clients only. Decision: allow list → stop; deny list or an S25R rule → apply;
// anything else → stop. With check_only_ipv4, clients that are not IPv4 count as allowed.
import { z } from "./zod.ts";
import { asIPv4 } from "./address.ts";
import type { ConditionDefinition } from "./api.ts";
import { anyMatcher, type Pattern, patternSchema } from "./pattern.ts";

// ---- settings (applicable_conditions.*; config/schema.ts combines them)

/** `applicable_conditions.s25r`: settings of the S25R condition. */
export interface S25rSettings {
  /** Hosts never treated as end-user hosts (milter-manager's whitelist). Default: the six stock suffixes. */
  allow: Pattern[];
  /** Hosts always treated as end-user hosts (blacklist), checked after `allow`, in addition to the S25R rules. Default []. */
  deny: Pattern[];
  /** Clients that are not IPv4 are treated as allowed. Default true. */
  check_only_ipv4: boolean;
}

export const S25R_DEFAULTS: S25rSettings = {
  allow: [".google.com", ".obsmtp.com", ".smtp-out.amazonses.com", ".slack.com", ".mg.gitlab.com", ".sendgrid.net"],
  deny: [],
  check_only_ipv4: true,
};

export const S25rSchema = z.strictObject({ allow: z.array(patternSchema), deny: z.array(patternSchema), check_only_ipv4: z.boolean() });

/**
 * The S25R rules, each on the full host name (labels separated by dots). Written from the
 * published rule descriptions; `i` because DNS names are case-insensitive.
 */
export const S25R_RULES: readonly { readonly re: RegExp; readonly what: string }[] = [
  { re: /^unknown$/i, what: "no host name (unknown)" },
  { re: /^\[.*\]$/, what: "no reverse DNS ([address])" },
  { re: /^[^.]*[0-9][^0-9.]+[0-9]/i, what: "first label has digits separated by non-digits" },
  { re: /^[^.]*[0-9]{5}/i, what: "first label has five or more digits in a row" },
  { re: /^([^.]+\.)?[0-9][^.]*\.[^.]+\..+\.[a-z]/i, what: "a label starting with a digit followed by two or more labels" },
  { re: /^[^.]*[0-9]\.[^.]*[0-9]-[0-9]/i, what: "first label ends in a digit, second has digit-hyphen-digit" },
  { re: /^[^.]*[0-9]\.[^.]*[0-9]\.[^.]+\..+\./i, what: "first two labels end in a digit, then two or more labels" },
  { re: /^(dhcp|dialup|ppp|[achrsvx]?dsl)[^.]*[0-9]/i, what: "first label starts with dhcp, dialup, ppp or xdsl and has a digit" },
];

/** The S25R rule a host name matches, if any. */
export function s25rRule(host: string): string | undefined {
  return S25R_RULES.find((r) => r.re.test(host))?.what;
}

/** "allow", "deny" (listed or an S25R rule) or "pass" (looks like a proper server). */
export type S25rVerdict = { verdict: "allow" | "pass" } | { verdict: "deny"; why: string };

export function s25rClassifier(settings: S25rSettings): (host: string) => S25rVerdict {
  const allow = anyMatcher(settings.allow);
  const deny = anyMatcher(settings.deny);
  return (host) => {
    if (allow(host)) return { verdict: "allow" };
    if (deny(host)) return { verdict: "deny", why: "deny list" };
    const rule = s25rRule(host);
    return rule ? { verdict: "deny", why: rule } : { verdict: "pass" };
  };
}

export function s25rCondition(settings: S25rSettings): ConditionDefinition {
  const classify = s25rClassifier(settings);
  return {
    name: "S25R",
    description: "Apply the milter only to clients whose host name looks like an end-user/dynamic host (S25R rules or deny list), not on the allow list",
    connect(ctx, host, address) {
      if (settings.check_only_ipv4) {
        const ip = address.family === "ipv4" || address.family === "ipv6" ? asIPv4(address.ip) : undefined;
        if (!ip) return true; // not IPv4: treated as allowed
      }
      const v = classify(host);
      if (v.verdict === "deny") ctx.log("debug", `${host}: ${v.why}`);
      return v.verdict !== "deny";
    },
  };
}
