// Patterns of the condition settings (host names, domains, accounts): `/regexp/flags` is a regular
// expression, `.example.com` matches names ending in it, anything else matches the whole name
// ignoring case (schema.ts `Pattern`).
import { type Pattern, patternRegExp } from "../config/schema.ts";

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
