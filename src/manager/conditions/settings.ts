// Item validators shared by the conditions' settings schemas (each condition file owns its
// schema; config/schema.ts only combines them) and by config/schema.ts itself.
import { z } from "./zod.ts";
import { AddressError, parseNetwork } from "./address.ts";

export const nonEmpty = z.string().min(1, { error: "must not be empty" });
export const count = z.number().int().nonnegative();
export const seconds = z.number().nonnegative().finite();
export const positiveSeconds = z.number().positive().finite();

/** "addr" or "addr/prefix", IPv4 or IPv6 (family 4: IPv4 only), as the conditions will parse it. */
export function checkCidr(text: string, family?: 4): string | undefined {
  const notAddress = `"${text}" is not an ${family === 4 ? "IPv4" : "IP"} address or CIDR`;
  try {
    const net = parseNetwork(text);
    if (family === 4 && net.ip.family !== 4) return notAddress;
  } catch (e) {
    if (!(e instanceof AddressError)) throw e;
    return e.kind === "prefix" ? e.message : notAddress;
  }
  return undefined;
}

export function cidr(family?: 4) {
  return z.string().superRefine((t, ctx) => {
    const problem = checkCidr(t, family);
    if (problem) ctx.addIssue({ code: "custom", message: problem, input: t });
  });
}

/** Adds an issue at [i, "name"] for every entry whose name already appeared earlier in the list. */
export function duplicates(list: { name: string }[], ctx: z.RefinementCtx, what = "name"): void {
  const first = new Map<string, number>();
  list.forEach((entry, i) => {
    const j = first.get(entry.name);
    if (j === undefined) first.set(entry.name, i);
    else ctx.addIssue({ code: "custom", message: `duplicate ${what} "${entry.name}" (first at index ${j})`, path: [i, "name"], input: entry.name });
  });
}
