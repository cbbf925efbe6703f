// Patterns of the condition settings (host names, domains, accounts): `/regexp/flags` is a regular
// expression, `.example.com` matches names ending in it, anything else matches the whole name
// ignoring case.
import { z } from "./zod.ts";

/**
 * A host pattern (S25R lists) or account pattern: `/regexp/flags` is a regular expression,
 * `.example.com` matches that suffix, anything else matches the whole name (case-insensitively).
 */
export type Pattern = string;

function isRegexPattern(p: string): boolean {
  return /^\/.*\/[a-z]*$/s.test(p) && p.length >= 2;
}

/** Compile a Pattern: `/re/flags` → RegExp; otherwise undefined. Throws on a bad regexp. */
export function patternRegExp(p: Pattern): RegExp | undefined {
  if (!isRegexPattern(p)) return undefined;
  const end = p.lastIndexOf("/");
  return new RegExp(p.slice(1, end), p.slice(end + 1));
}

/** A Pattern item: not empty, a `/regexp/` that compiles. */
export const patternSchema = z.string().superRefine((p, ctx) => {
  if (p.trim() === "") {
    ctx.addIssue({ code: "custom", message: "pattern must not be empty", input: p });
    return;
  }
  if (!isRegexPattern(p)) return;
  try {
    patternRegExp(p);
  } catch (e) {
    ctx.addIssue({ code: "custom", message: `bad regular expression ${p}: ${(e as Error).message}`, input: p });
  }
});


export type Matcher = (text: string) => boolean;

export function patternMatcher(p: Pattern): Matcher {
  const re = patternRegExp(p);
  if (re) {
    return (text) => {
      re.lastIndex = 0; // a `g` or `y` flag would otherwise make the result depend on the previous call
      return re.test(text);
    };
  }
  const lower = p.toLowerCase();
  if (lower.startsWith(".")) return (text) => text.toLowerCase().endsWith(lower);
  return (text) => text.toLowerCase() === lower;
}

/** True when any pattern matches. */
export function anyMatcher(patterns: readonly Pattern[]): Matcher {
  const list = patterns.map(patternMatcher);
  return (text) => list.some((m) => m(text));
}
