// The manager's option negotiation (manager.md §2.3): what children are offered and what the
// MTA gets back.
import { describe, expect, test } from "bun:test";
import {
  SMFI_CURR_ACTS,
  SMFI_CURR_PROT,
  SMFIF_SETSYMLIST,
  SMFIP_HDR_LEADSPC,
  SMFIP_MDS_1M,
  SMFIP_NOBODY,
  SMFIP_NOCONNECT,
  SMFIP_NOHDRS,
  SMFIP_NR_CONN,
  SMFIP_NR_HDR,
  SMFIP_NR_RCPT,
  SMFIP_RCPT_REJ,
  SMFIP_SKIP,
  type MacroStage,
} from "../../src/milter/index.ts";
import { childOffer, type ChildOptions, leadingSpaceAgreed, mergeMacroLists, mergeNegotiation } from "../../src/manager/negotiate.ts";

const SEVEN_ACTIONS = 0x7f; // add-headers … change-envelope-from
const mta = { version: 6, actions: SEVEN_ACTIONS, protocol: SMFI_CURR_PROT };

function child(protocol: number, lists: [MacroStage, string[]][] = [], actions = 0): ChildOptions {
  return { version: 6, actions, protocol, macroLists: new Map(lists) };
}

describe("childOffer", () => {
  test("the MTA's option, version capped at 6, MDS bits removed", () => {
    expect(childOffer(mta)).toEqual(mta);
    expect(childOffer({ version: 8, actions: 0x1ff, protocol: SMFI_CURR_PROT | SMFIP_MDS_1M })).toEqual({
      version: 6,
      actions: 0x1ff,
      protocol: SMFI_CURR_PROT,
    });
    expect(childOffer({ version: 2, actions: 0x1ff, protocol: 0x7f })).toEqual({ version: 2, actions: 0x1ff, protocol: 0x7f });
  });
});

describe("mergeNegotiation", () => {
  test("negotiate fixture: 10026 keeps only skip, 10027 no steps → v6, 7 actions, step skip", () => {
    const reply = mergeNegotiation(mta, [child(SMFIP_SKIP), child(0)]);
    expect(reply).toEqual({ type: "optneg", version: 6, actions: SEVEN_ACTIONS, protocol: SMFIP_SKIP });
  });

  test("NO_* bits are never asked from the MTA, whatever the children say", () => {
    const reply = mergeNegotiation(mta, [child(SMFIP_NOBODY | SMFIP_NOHDRS | SMFIP_NOCONNECT), child(SMFIP_NOBODY)]);
    expect(reply.protocol).toBe(0);
  });

  test("NR_* bits: AND over the children and the offer", () => {
    expect(mergeNegotiation(mta, [child(SMFIP_NR_HDR | SMFIP_NR_CONN), child(SMFIP_NR_HDR | SMFIP_NR_RCPT)]).protocol).toBe(SMFIP_NR_HDR);
    expect(mergeNegotiation({ ...mta, protocol: 0x7f }, [child(SMFIP_NR_HDR), child(SMFIP_NR_HDR)]).protocol).toBe(0);
  });

  test("yes bits: offered and asked by at least one child", () => {
    const reply = mergeNegotiation(mta, [child(SMFIP_HDR_LEADSPC), child(SMFIP_RCPT_REJ | SMFIP_SKIP)]);
    expect(reply.protocol).toBe(SMFIP_HDR_LEADSPC | SMFIP_RCPT_REJ | SMFIP_SKIP);
    expect(leadingSpaceAgreed(reply)).toBe(true);
    const notOffered = mergeNegotiation({ ...mta, protocol: SMFIP_SKIP }, [child(SMFIP_HDR_LEADSPC | SMFIP_SKIP)]);
    expect(notOffered.protocol).toBe(SMFIP_SKIP);
    expect(leadingSpaceAgreed(notOffered)).toBe(false);
  });

  test("no child: a normal reply with no NR bits (every command is answered with the fallback)", () => {
    expect(mergeNegotiation(mta, [])).toEqual({ type: "optneg", version: 6, actions: SEVEN_ACTIONS, protocol: 0 });
  });

  test("version: min(MTA, 6)", () => {
    expect(mergeNegotiation({ ...mta, version: 4 }, [child(0)]).version).toBe(4);
    expect(mergeNegotiation({ ...mta, version: 7 }, [child(0)]).version).toBe(6);
  });

  test("actions: the offer (children can only ask for offered actions)", () => {
    expect(mergeNegotiation({ ...mta, actions: SMFI_CURR_ACTS }, [child(0, [], 0x01)]).actions).toBe(SMFI_CURR_ACTS);
  });
});

describe("macro lists", () => {
  const full = { version: 6, actions: SMFI_CURR_ACTS, protocol: SMFI_CURR_PROT };

  test("union per stage in order of first appearance, braces ignored for duplicates", () => {
    const reply = mergeNegotiation(full, [
      child(0, [[0, ["{client_addr}", "j"]], [5, ["i"]]]),
      child(0, [[0, ["j", "client_addr", "{daemon_name}"]], [5, ["{i}", "{mail_addr}"]]]),
    ]);
    expect(reply.macroLists).toEqual([
      { stage: 0, macros: "{client_addr} j {daemon_name}" },
      { stage: 5, macros: "i {mail_addr}" },
    ]);
    expect(reply.actions & SMFIF_SETSYMLIST).toBe(SMFIF_SETSYMLIST);
  });

  test("a stage not listed by every child is not overridden (quirk manager.md §2.10 fixed)", () => {
    const lists = mergeMacroLists([child(0, [[0, ["j"]], [2, ["{auth_type}"]]]), child(0, [[2, ["i"]]])]);
    expect([...lists]).toEqual([[2, ["{auth_type}", "i"]]]);
  });

  test("no lists for a v < 6 MTA or without SETSYMLIST offered", () => {
    const c = [child(0, [[0, ["j"]]])];
    expect(mergeNegotiation({ ...full, version: 4 }, c).macroLists).toBeUndefined();
    expect(mergeNegotiation({ ...full, actions: 0xff }, c).macroLists).toBeUndefined();
    expect(mergeNegotiation({ ...full, actions: 0xff }, c).actions).toBe(0xff);
  });

  test("empty union → no list for that stage", () => {
    expect(mergeMacroLists([child(0, [[1, []]])]).size).toBe(0);
  });
});
