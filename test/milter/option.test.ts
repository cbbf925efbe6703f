/** Option negotiation on both sides and the Negotiated answers (docs/protocol.md §4). */
import { describe, expect, test } from "bun:test";
import {
  MILTER_MDS_1M,
  MILTER_MDS_256K,
  NegotiationError,
  Negotiated,
  SMFI_CURR_ACTS,
  SMFI_CURR_PROT,
  SMFI_V1_ACTS,
  SMFI_V1_PROT,
  SMFIF_ADDHDRS,
  SMFIF_CHGBODY,
  SMFIF_CHGFROM,
  SMFIF_QUARANTINE,
  SMFIF_SETSYMLIST,
  SMFIM_CONNECT,
  SMFIM_EOM,
  SMFIP_HDR_LEADSPC,
  SMFIP_MDS_1M,
  SMFIP_MDS_256K,
  SMFIP_NOBODY,
  SMFIP_NOCONNECT,
  SMFIP_NODATA,
  SMFIP_NOHELO,
  SMFIP_NOUNKNOWN,
  SMFIP_NR_BODY,
  SMFIP_NR_CONN,
  SMFIP_NR_HDR,
  SMFIP_RCPT_REJ,
  SMFIP_SKIP,
  actionNicknames,
  dataSizeBit,
  dataSizeOf,
  decodeCommand,
  decodeReply,
  encodeReply,
  formatOptionWords,
  makeOffer,
  negotiateAsMilter,
  negotiateAsMta,
  parseActions,
  parseProtocol,
  protocolNicknames,
  requiredAction,
  type MtaCommandType,
  type OptnegCommand,
  type OptnegReply,
} from "../../src/milter/index.ts";
import { fromHex, hex, vector } from "./helpers.ts";

function negotiationError(fn: () => unknown): NegotiationError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(NegotiationError);
    return e as NegotiationError;
  }
  throw new Error("expected a NegotiationError");
}

/** The offer of a vector (T01 Postfix v6, T02 v2, T03 v4, T04 with MDS 256K). */
function offerOf(id: string): OptnegCommand {
  const bytes = fromHex(vector(id).hex);
  return decodeCommand(bytes[4], bytes.subarray(5)) as OptnegCommand;
}

const ALL_COMMANDS: MtaCommandType[] = [
  "optneg", "macro", "connect", "helo", "mail", "rcpt", "data", "header", "eoh", "body", "eob", "abort", "quit", "quit_nc", "unknown",
];

describe("milter side: negotiateAsMilter", () => {
  test("Postfix v6 offer, plain milter → reply R01 byte for byte", () => {
    const { reply, negotiated } = negotiateAsMilter(offerOf("T01"), { actions: SMFI_CURR_ACTS, protocol: 0 });
    expect(hex(encodeReply(reply))).toBe(vector("R01").hex);
    expect(negotiated.version).toBe(6);
    expect(negotiated.maxDataSize).toBe(65535);
    expect(ALL_COMMANDS.filter((c) => negotiated.sends(c))).toEqual(ALL_COMMANDS);
    expect(ALL_COMMANDS.filter((c) => negotiated.expectsReply(c))).toEqual([
      "optneg", "connect", "helo", "mail", "rcpt", "data", "header", "eoh", "body", "eob", "unknown",
    ]);
  });

  test("NR_CONN + NR_HDR + HDR_LEADSPC → reply R02; replies expected accordingly", () => {
    const want = SMFIP_NR_CONN | SMFIP_NR_HDR | SMFIP_HDR_LEADSPC;
    const { reply, negotiated } = negotiateAsMilter(offerOf("T01"), { actions: SMFI_CURR_ACTS, protocol: want });
    expect(hex(encodeReply(reply))).toBe(vector("R02").hex);
    expect(negotiated.expectsReply("connect")).toBe(false);
    expect(negotiated.expectsReply("header")).toBe(false);
    expect(negotiated.expectsReply("helo")).toBe(true);
    expect(negotiated.leadingSpace).toBe(true);
  });

  test("macro lists → reply R03 (SETSYMLIST is part of the actions word)", () => {
    const { reply, negotiated } = negotiateAsMilter(offerOf("T01"), {
      actions: SMFI_CURR_ACTS & ~SMFIF_SETSYMLIST,
      protocol: 0,
      macroLists: new Map([[SMFIM_CONNECT, ["{client_addr}", "j"]], [SMFIM_EOM, ["i"]]]),
    });
    expect(hex(encodeReply(reply))).toBe(vector("R03").hex);
    expect(negotiated.requestedMacros("connect")).toEqual(["{client_addr}", "j"]);
    expect(negotiated.requestedMacros("eob")).toEqual(["i"]);
    expect(negotiated.requestedMacros("helo")).toBeUndefined();
  });

  test("macro lists are not sent to a v2 MTA or without SETSYMLIST in the offer", () => {
    const lists = new Map([[SMFIM_CONNECT, ["j"]]] as const);
    const v2 = negotiateAsMilter(offerOf("T02"), { actions: SMFIF_ADDHDRS, protocol: 0, macroLists: lists });
    expect(v2.reply.macroLists).toBeUndefined();
    expect(v2.reply.actions).toBe(SMFIF_ADDHDRS);
    const noSym = negotiateAsMilter({ version: 6, actions: 0x0ff, protocol: SMFI_CURR_PROT }, { actions: 0, protocol: 0, macroLists: lists });
    expect(noSym.reply.macroLists).toBeUndefined();
    expect(noSym.negotiated.macroLists.size).toBe(0);
  });

  test("SKIP → reply R04; skip allowed only at v6 and when offered", () => {
    const { reply, negotiated } = negotiateAsMilter(offerOf("T01"), { actions: SMFI_CURR_ACTS, protocol: SMFIP_SKIP });
    expect(hex(encodeReply(reply))).toBe(vector("R04").hex);
    expect(negotiated.skip).toBe(true);
    expect(negotiated.permits("skip")).toBe(true);
    const v4 = negotiateAsMilter(offerOf("T03"), { actions: 0, protocol: SMFIP_SKIP });
    expect(v4.reply.protocol & SMFIP_SKIP).toBe(0);
    expect(v4.negotiated.skip).toBe(false);
  });

  test("version = min(own, MTA); version 1 offer refused (negative vector)", () => {
    expect(negotiateAsMilter(offerOf("T02"), { actions: 0, protocol: 0 }).reply.version).toBe(2);
    expect(negotiateAsMilter(offerOf("T03"), { actions: 0, protocol: 0 }).reply.version).toBe(4);
    expect(negotiateAsMilter(offerOf("T01"), { version: 4, actions: 0, protocol: 0 }).reply.version).toBe(4);
    expect(negotiateAsMilter({ version: 7, actions: 0x1ff, protocol: 0 }, { actions: 0, protocol: 0 }).reply.version).toBe(6);
    // `0000000d4f 00000001 …`
    const v1 = decodeCommand(0x4f, fromHex("00000001000001ff0000007f")) as OptnegCommand;
    const e = negotiationError(() => negotiateAsMilter(v1, { actions: 0, protocol: 0 }));
    expect(e.kind).toBe("version");
    expect(e.message).toContain("version 1");
    expect(negotiationError(() => negotiateAsMilter(offerOf("T01"), { version: 7, actions: 0, protocol: 0 })).kind).toBe("version");
  });

  test("actions must be a subset of the offer", () => {
    const e = negotiationError(() =>
      negotiateAsMilter({ version: 6, actions: SMFIF_ADDHDRS, protocol: SMFI_CURR_PROT }, { actions: SMFIF_ADDHDRS | SMFIF_CHGBODY, protocol: 0 }),
    );
    expect(e.kind).toBe("actions");
    expect(e.message).toContain("CHGBODY");
  });

  test("protocol bits are granted only where offered (v2 offer has no NR bits, no SKIP)", () => {
    const want = SMFIP_NOHELO | SMFIP_NR_CONN | SMFIP_NODATA | SMFIP_SKIP;
    const { reply, negotiated } = negotiateAsMilter(offerOf("T02"), { actions: 0, protocol: want });
    expect(reply.protocol).toBe(SMFIP_NOHELO);
    expect(negotiated.sends("helo")).toBe(false);
    expect(negotiated.expectsReply("connect")).toBe(true); // not granted: we must answer
    expect(negotiated.sends("data")).toBe(false); // v2: no T at all
    expect(negotiated.sends("unknown")).toBe(false); // v2: no U
    expect(negotiated.sends("quit_nc")).toBe(false);
  });

  test("offer words of 0 count as SMFI_V1_ACTS / SMFI_V1_PROT (libmilter)", () => {
    const { reply } = negotiateAsMilter({ version: 2, actions: 0, protocol: 0 }, { actions: SMFI_V1_ACTS, protocol: SMFI_V1_PROT | SMFIP_NR_HDR });
    expect(reply.actions).toBe(SMFI_V1_ACTS);
    expect(reply.protocol).toBe(SMFI_V1_PROT);
    expect(negotiationError(() => negotiateAsMilter({ version: 2, actions: 0, protocol: 0 }, { actions: SMFIF_QUARANTINE, protocol: 0 })).kind).toBe("actions");
  });

  test("MDS: echo the offered bit only if we can read that much; never set SMFI_INTERNAL otherwise", () => {
    const t04 = offerOf("T04"); // offers 256K
    const cannot = negotiateAsMilter(t04, { actions: 0, protocol: SMFI_CURR_PROT });
    expect(cannot.reply.protocol & 0x70000000).toBe(0);
    expect(cannot.negotiated.maxDataSize).toBe(65535);
    const can = negotiateAsMilter(t04, { actions: 0, protocol: 0, maxDataSize: MILTER_MDS_1M });
    expect(can.reply.protocol).toBe(SMFIP_MDS_256K);
    expect(can.negotiated.maxDataSize).toBe(MILTER_MDS_256K);
    expect(can.negotiated.protocol).toBe(0); // MDS bits are not protocol options
    const offer1M = { version: 6, actions: 0x1ff, protocol: SMFI_CURR_PROT | SMFIP_MDS_1M };
    expect(negotiateAsMilter(offer1M, { actions: 0, protocol: 0, maxDataSize: MILTER_MDS_256K }).reply.protocol).toBe(SMFIP_MDS_256K);
    expect(negotiateAsMilter(offer1M, { actions: 0, protocol: 0, maxDataSize: MILTER_MDS_1M }).reply.protocol).toBe(SMFIP_MDS_1M);
    // No MDS offered: our capacity does not matter; MDS bits in `protocol` are dropped.
    const plain = negotiateAsMilter(offerOf("T01"), { actions: 0, protocol: SMFIP_MDS_1M | 0x40000000, maxDataSize: MILTER_MDS_1M });
    expect(plain.reply.protocol).toBe(0);
    expect(plain.negotiated.maxDataSize).toBe(65535);
  });
});

describe("MTA side: makeOffer / negotiateAsMta", () => {
  test("makeOffer defaults equal Postfix's v6 offer (T01); MDS sizes add the bit", () => {
    expect(makeOffer()).toEqual(offerOf("T01"));
    expect(makeOffer({ maxDataSize: MILTER_MDS_256K })).toEqual(offerOf("T04"));
    expect(makeOffer({ maxDataSize: 100000 }).protocol & 0x70000000).toBe(SMFIP_MDS_256K); // rounded up
    expect(makeOffer({ maxDataSize: 300000 }).protocol & 0x70000000).toBe(SMFIP_MDS_1M);
    expect(makeOffer({ version: 2, protocol: 0x7f })).toEqual(offerOf("T02"));
  });

  test("a v6 reply to a v2/v3/v4 offer is refused (negative vector)", () => {
    const r01 = decodeReply(0x4f, fromHex(vector("R01").hex).subarray(5)) as OptnegReply;
    for (const v of [2, 3, 4]) {
      const e = negotiationError(() => negotiateAsMta(makeOffer({ version: v }), r01));
      expect(e.kind).toBe("version");
      expect(e.message).toBe(`milter protocol version 6 conflicts with the offered version ${v}`);
    }
    expect(negotiationError(() => negotiateAsMta(makeOffer(), { ...r01, version: 1 })).kind).toBe("version");
  });

  test("a lower reply version is accepted and gates U (v ≥ 3) and T (v ≥ 4)", () => {
    const n2 = negotiateAsMta(makeOffer(), { version: 2, actions: 0, protocol: 0 });
    expect(n2.sends("unknown")).toBe(false);
    expect(n2.sends("data")).toBe(false);
    const n3 = negotiateAsMta(makeOffer(), { version: 3, actions: 0, protocol: 0 });
    expect(n3.sends("unknown")).toBe(true);
    expect(n3.sends("data")).toBe(false);
    const n4 = negotiateAsMta(makeOffer(), { version: 4, actions: 0, protocol: SMFIP_NOUNKNOWN });
    expect(n4.sends("unknown")).toBe(false);
    expect(n4.sends("data")).toBe(true);
    expect(n4.sends("quit_nc")).toBe(false);
  });

  test("actions must be a subset of the offer", () => {
    const e = negotiationError(() => negotiateAsMta(makeOffer({ actions: SMFIF_ADDHDRS }), { version: 6, actions: SMFIF_ADDHDRS | SMFIF_CHGFROM, protocol: 0 }));
    expect(e.kind).toBe("actions");
    expect(e.message).toContain("CHGFROM");
  });

  test("NO_* and NR_* bits decide what is sent and what is answered", () => {
    const n = negotiateAsMta(makeOffer(), { version: 6, actions: SMFIF_ADDHDRS, protocol: SMFIP_NOCONNECT | SMFIP_NOBODY | SMFIP_NR_HDR | SMFIP_NR_BODY });
    expect(ALL_COMMANDS.filter((c) => !n.sends(c))).toEqual(["connect", "body"]);
    expect(ALL_COMMANDS.filter((c) => !n.expectsReply(c))).toEqual(["macro", "header", "body", "abort", "quit", "quit_nc"]);
    expect(n.permits("addheader")).toBe(true);
    expect(n.permits("insheader")).toBe(true);
    expect(n.permits("chgheader")).toBe(false);
    expect(n.permits("replbody")).toBe(false);
    expect(n.permits("accept")).toBe(true);
    expect(n.permits("optneg")).toBe(false);
    expect(n.permits("setsymlist")).toBe(false);
    expect(n.permits("skip")).toBe(false);
  });

  test("SKIP only counts if offered; unoffered bits are honoured and reported", () => {
    const offer = makeOffer({ protocol: SMFI_CURR_PROT & ~(SMFIP_SKIP | SMFIP_NR_CONN) });
    const n = negotiateAsMta(offer, { version: 6, actions: 0, protocol: SMFIP_SKIP | SMFIP_NR_CONN | SMFIP_RCPT_REJ });
    expect(n.skip).toBe(false);
    expect(n.expectsReply("connect")).toBe(false);
    expect(n.unofferedProtocol).toBe(SMFIP_SKIP | SMFIP_NR_CONN);
    expect(n.rcptRejected).toBe(true);
    expect(negotiateAsMta(makeOffer(), { version: 6, actions: 0, protocol: SMFIP_SKIP }).skip).toBe(true);
  });

  test("macro lists: known stages parsed (spaces or commas), unknown stage numbers ignored", () => {
    const n = negotiateAsMta(makeOffer(), {
      version: 6,
      actions: SMFIF_SETSYMLIST,
      protocol: 0,
      macroLists: [{ stage: 0, macros: "{client_addr} j" }, { stage: 9, macros: "x" }, { stage: 6, macros: "i,{auth_type}" }, { stage: 1, macros: "" }],
    });
    expect(n.requestedMacros("connect")).toEqual(["{client_addr}", "j"]);
    expect(n.requestedMacros("eoh")).toEqual(["i", "{auth_type}"]);
    expect(n.requestedMacros("helo")).toEqual([]);
    expect(n.requestedMacros("mail")).toBeUndefined();
    expect(n.ignoredMacroStages).toEqual([9]);
    // R03 as it comes off the wire.
    const r03 = decodeReply(0x4f, fromHex(vector("R03").hex).subarray(5)) as OptnegReply;
    expect(negotiateAsMta(makeOffer(), r03).requestedMacros("eob")).toEqual(["i"]);
  });

  test("max data size: from the echoed MDS bit, never above the offer", () => {
    const offer = makeOffer({ maxDataSize: MILTER_MDS_256K });
    expect(negotiateAsMta(offer, { version: 6, actions: 0, protocol: SMFIP_MDS_256K }).maxDataSize).toBe(MILTER_MDS_256K);
    expect(negotiateAsMta(offer, { version: 6, actions: 0, protocol: 0 }).maxDataSize).toBe(65535);
    expect(negotiationError(() => negotiateAsMta(offer, { version: 6, actions: 0, protocol: SMFIP_MDS_1M })).kind).toBe("data-size");
    // Without an MDS offer, SMFI_INTERNAL bits in the reply are ignored.
    const n = negotiateAsMta(makeOffer(), { version: 6, actions: 0, protocol: SMFIP_MDS_1M | SMFIP_NR_HDR });
    expect(n.maxDataSize).toBe(65535);
    expect(n.protocol).toBe(SMFIP_NR_HDR);
  });
});

describe("helpers", () => {
  test("dataSizeOf / dataSizeBit", () => {
    expect(dataSizeOf(0)).toBe(65535);
    expect(dataSizeOf(SMFIP_MDS_256K)).toBe(MILTER_MDS_256K);
    expect(dataSizeOf(SMFIP_MDS_1M | SMFIP_MDS_256K)).toBe(MILTER_MDS_1M);
    expect(dataSizeBit(65535)).toBe(0);
    expect(dataSizeBit(65536)).toBe(SMFIP_MDS_256K);
    expect(dataSizeBit(MILTER_MDS_1M)).toBe(SMFIP_MDS_1M);
  });

  test("requiredAction", () => {
    expect(requiredAction("addheader")).toBe(SMFIF_ADDHDRS);
    expect(requiredAction("replbody")).toBe(SMFIF_CHGBODY);
    expect(requiredAction("continue")).toBe(0);
  });

  test("nicknames print like milter-test-client (tools.md §1.5)", () => {
    expect(actionNicknames(0x1ff)).toBe(
      "add-headers|change-body|add-envelope-recipient|delete-envelope-recipient|change-headers|quarantine|change-envelope-from|add-envelope-recipient-with-parameters|set-symbol-list",
    );
    expect(protocolNicknames(0x1fffff)).toBe(
      "no-connect|no-helo|no-envelope-from|no-envelope-recipient|no-body|no-headers|no-end-of-header|no-reply-header|no-unknown|no-data|skip|envelope-recipient-rejected|no-reply-connect|no-reply-helo|no-reply-envelope-from|no-reply-envelope-recipient|no-reply-data|no-reply-unknown|no-reply-end-of-header|no-reply-body|header-value-with-leading-space",
    );
    expect(protocolNicknames(SMFIP_MDS_256K)).toBe("");
  });

  test("parseActions / parseProtocol accept nicknames, names and numbers", () => {
    expect(parseActions("add-headers|change-body")).toBe(3);
    expect(parseActions("SMFIF_ADDHDRS, CHGBODY 0x100")).toBe(0x103);
    expect(parseProtocol("no-connect|NR_HDR|0x400")).toBe(0x481);
    expect(() => parseActions("add-everything")).toThrow('unknown flag "add-everything"');
  });

  test("formatOptionWords", () => {
    expect(formatOptionWords({ version: 6, actions: 3, protocol: SMFIP_NR_HDR | SMFIP_MDS_256K })).toBe(
      "version=6 actions=0x3 (ADDHDRS|CHGBODY) protocol=0x10000080 (NR_HDR|MDS_256K)",
    );
  });

  test("Negotiated can be built directly", () => {
    const n = new Negotiated({ version: 6, actions: 0, protocol: SMFIP_NODATA, skip: false, maxDataSize: 65535 });
    expect(n.sends("data")).toBe(false);
    expect(n.macroLists.size).toBe(0);
    expect(n.allows(0)).toBe(true);
  });
});
