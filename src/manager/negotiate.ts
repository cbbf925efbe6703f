// Option negotiation of the manager (manager.md §2.3), pure:
// - what every child is offered: the MTA's offer with the version capped to 6 (and no MDS bits:
//   the manager speaks 64 KiB packets on both sides);
// - the answer to the MTA, merged from the children that negotiated.
import {
  type MacroStage,
  type OptionWords,
  type OptnegReply,
  SMFI_CURR_ACTS,
  SMFI_CURR_PROT,
  SMFI_INTERNAL,
  SMFI_VERSION_6,
  SMFI_VERSION_MAX,
  SMFIF_SETSYMLIST,
  SMFIP_HDR_LEADSPC,
  SMFIP_NO_MASK,
  SMFIP_NR_MASK,
  SMFIP_RCPT_REJ,
  SMFIP_SKIP,
  formatSymbolList,
  macroKey,
} from "../milter/index.ts";

/** "Yes" bits: a child asks the MTA to do something extra. */
export const YES_STEPS = SMFIP_SKIP | SMFIP_RCPT_REJ | SMFIP_HDR_LEADSPC;

/** What a child agreed on, as far as the merge needs it (a subset of mta-side's Negotiated). */
export interface ChildOptions {
  version: number;
  actions: number;
  /** The protocol bits the child answered (NO_*, NR_*, yes bits). */
  protocol: number;
  macroLists: ReadonlyMap<MacroStage, readonly string[]>;
}

/** The OPTNEG command every child gets: the MTA's offer, version capped to 6, MDS bits removed. */
export function childOffer(mta: OptionWords): OptionWords {
  return {
    version: Math.min(mta.version, SMFI_VERSION_MAX),
    actions: mta.actions >>> 0,
    protocol: (mta.protocol & ~SMFI_INTERNAL) >>> 0,
  };
}

/**
 * The manager's answer to the MTA's offer, given the children that negotiated:
 * - version: min(MTA, 6);
 * - actions: OR of the offer and every child (children may only ask for offered actions, so
 *   this is the offer) — the manager may have to apply any child's modification;
 * - NO_* bits: none — the manager always wants every event (conditions, DATA emulation,
 *   children that did not opt out);
 * - NR_* bits: kept only if the MTA offered them and every child asked for them (with no child
 *   at all none, since the manager answers every command with its fallback status then);
 * - yes bits (SKIP, RCPT_REJ, HDR_LEADSPC): offered by the MTA and asked by at least one child;
 * - macro lists: per stage the union of the children's lists (order of first appearance, names
 *   compared without braces), sent only for a stage that every child listed — a child without a
 *   list for a stage expects the MTA's configured macros, which a list would replace (the
 *   milter-manager quirk of manager.md §2.10 that drops macros other children need). Only for a v6 MTA that
 *   offers SMFIF_SETSYMLIST.
 */
export function mergeNegotiation(mta: OptionWords, children: readonly ChildOptions[]): OptnegReply {
  const version = Math.min(mta.version, SMFI_VERSION_MAX);
  const offered = mta.protocol & SMFI_CURR_PROT;
  let noReply = children.length > 0 ? offered & SMFIP_NR_MASK : 0;
  let yes = 0;
  let actions = mta.actions & SMFI_CURR_ACTS;
  for (const c of children) {
    noReply &= c.protocol;
    yes |= c.protocol & YES_STEPS;
    actions |= c.actions & mta.actions & SMFI_CURR_ACTS;
  }
  const protocol = (noReply | (yes & offered)) & ~SMFIP_NO_MASK;
  const reply: OptnegReply = { type: "optneg", version, actions: actions >>> 0, protocol: protocol >>> 0 };
  if (version >= SMFI_VERSION_6 && (mta.actions & SMFIF_SETSYMLIST) !== 0) {
    const lists = mergeMacroLists(children);
    if (lists.size > 0) {
      reply.actions = (reply.actions | SMFIF_SETSYMLIST) >>> 0;
      reply.macroLists = [...lists].map(([stage, names]) => ({ stage, macros: formatSymbolList(names) }));
    }
  }
  return reply;
}

/** Union of the children's macro lists per stage, for stages every child listed (see mergeNegotiation). */
export function mergeMacroLists(children: readonly ChildOptions[]): Map<MacroStage, string[]> {
  const out = new Map<MacroStage, string[]>();
  if (children.length === 0 || children[0].macroLists.size === 0) return out; // the usual case: no lists at all
  const stages = new Set<MacroStage>(children[0].macroLists.keys());
  for (const c of children) for (const s of stages) if (!c.macroLists.has(s)) stages.delete(s);
  for (const stage of [...stages].sort((a, b) => a - b)) {
    const names: string[] = [];
    const seen = new Set<string>();
    for (const c of children) {
      for (const name of c.macroLists.get(stage) ?? []) {
        const key = macroKey(name);
        if (seen.has(key)) continue;
        seen.add(key);
        names.push(name);
      }
    }
    if (names.length > 0) out.set(stage, names);
  }
  return out;
}

/** Did the manager agree with the MTA on header values with their leading space? */
export function leadingSpaceAgreed(reply: OptionWords): boolean {
  return (reply.protocol & SMFIP_HDR_LEADSPC) !== 0;
}
