/**
 * Option negotiation (OPTNEG), both sides, as pure functions:
 * - negotiateAsMilter: we are the milter; from the MTA's offer and what we
 *   want, build our `O` reply and the agreed options;
 * - makeOffer / negotiateAsMta: we are the MTA; build our offer, validate the
 *   milter's reply against it and derive the agreed options.
 * The result, Negotiated, answers the questions a session asks all the time:
 * is this command sent, does it get a reply, may the milter send `s` or this
 * modification, how big may a packet be, which macros were requested.
 * Rules: docs/protocol.md §4.
 */
import {
  ACTION_FLAGS,
  MILTER_MAX_DATA_SIZE,
  MILTER_MDS_1M,
  MILTER_MDS_256K,
  type MacroStage,
  type MilterReplyType,
  type MtaCommandType,
  PROTOCOL_FLAGS,
  SMFI_CURR_ACTS,
  SMFI_CURR_PROT,
  SMFI_INTERNAL,
  SMFI_V1_ACTS,
  SMFI_V1_PROT,
  SMFI_VERSION_DATA,
  SMFI_VERSION_MAX,
  SMFI_VERSION_MIN,
  SMFI_VERSION_UNKNOWN,
  SMFI_VERSION_6,
  SMFIF_ADDHDRS,
  SMFIF_ADDRCPT,
  SMFIF_ADDRCPT_PAR,
  SMFIF_CHGBODY,
  SMFIF_CHGFROM,
  SMFIF_CHGHDRS,
  SMFIF_DELRCPT,
  SMFIF_QUARANTINE,
  SMFIF_SETSYMLIST,
  SMFIP_HDR_LEADSPC,
  SMFIP_MDS_1M,
  SMFIP_MDS_256K,
  SMFIP_NOBODY,
  SMFIP_NOCONNECT,
  SMFIP_NODATA,
  SMFIP_NOEOH,
  SMFIP_NOHDRS,
  SMFIP_NOHELO,
  SMFIP_NOMAIL,
  SMFIP_NORCPT,
  SMFIP_NOUNKNOWN,
  SMFIP_NR_BODY,
  SMFIP_NR_CONN,
  SMFIP_NR_DATA,
  SMFIP_NR_EOH,
  SMFIP_NR_HDR,
  SMFIP_NR_HELO,
  SMFIP_NR_MAIL,
  SMFIP_NR_RCPT,
  SMFIP_NR_UNKN,
  SMFIP_RCPT_REJ,
  SMFIP_SKIP,
  flagNames,
  flagNicknames,
  isMacroStage,
  macroStageOf,
  parseFlags,
} from "./constants.ts";
import type { OptnegCommand } from "./commands.ts";
import { NegotiationError } from "./errors.ts";
import { formatSymbolList, parseSymbolList } from "./macros.ts";
import type { MacroList, OptnegReply } from "./replies.ts";

/** The three words of an OPTNEG packet. */
export interface OptionWords {
  version: number;
  actions: number;
  protocol: number;
}

// ---------------------------------------------------------------------------
// Negotiated options

/** `SMFIP_NO*` bit that suppresses a command, and the version that introduced it. */
const SEND_RULE: Partial<Record<MtaCommandType, { no?: number; since?: number }>> = {
  connect: { no: SMFIP_NOCONNECT },
  helo: { no: SMFIP_NOHELO },
  mail: { no: SMFIP_NOMAIL },
  rcpt: { no: SMFIP_NORCPT },
  data: { no: SMFIP_NODATA, since: SMFI_VERSION_DATA },
  header: { no: SMFIP_NOHDRS },
  eoh: { no: SMFIP_NOEOH },
  body: { no: SMFIP_NOBODY },
  unknown: { no: SMFIP_NOUNKNOWN, since: SMFI_VERSION_UNKNOWN },
  quit_nc: { since: SMFI_VERSION_6 },
};

/** `SMFIP_NR_*` bit that removes the reply to a command. */
const NO_REPLY_BIT: Partial<Record<MtaCommandType, number>> = {
  connect: SMFIP_NR_CONN,
  helo: SMFIP_NR_HELO,
  mail: SMFIP_NR_MAIL,
  rcpt: SMFIP_NR_RCPT,
  data: SMFIP_NR_DATA,
  header: SMFIP_NR_HDR,
  eoh: SMFIP_NR_EOH,
  body: SMFIP_NR_BODY,
  unknown: SMFIP_NR_UNKN,
};
/** Commands that never get a reply (`D`, `A`, `Q`, `K`). */
const NEVER_ANSWERED = new Set<MtaCommandType>(["macro", "abort", "quit", "quit_nc"]);

/** SMFIF_* action a reply needs; 0 if none. */
const ACTION_FOR_REPLY: Partial<Record<MilterReplyType, number>> = {
  addheader: SMFIF_ADDHDRS,
  insheader: SMFIF_ADDHDRS,
  chgheader: SMFIF_CHGHDRS,
  replbody: SMFIF_CHGBODY,
  addrcpt: SMFIF_ADDRCPT,
  addrcpt_par: SMFIF_ADDRCPT_PAR,
  delrcpt: SMFIF_DELRCPT,
  chgfrom: SMFIF_CHGFROM,
  quarantine: SMFIF_QUARANTINE,
};

/** The SMFIF_* action flag a modification reply requires (0 for replies that need none). */
export function requiredAction(type: MilterReplyType): number {
  return ACTION_FOR_REPLY[type] ?? 0;
}

export interface NegotiatedInit {
  version: number;
  actions: number;
  /** Agreed protocol bits, SMFI_INTERNAL bits removed. */
  protocol: number;
  /** True if both sides agreed on SMFIP_SKIP (and version 6). */
  skip: boolean;
  maxDataSize: number;
  macroLists?: ReadonlyMap<MacroStage, readonly string[]>;
  /** MTA side: protocol bits the milter set although we did not offer them (honoured anyway). */
  unofferedProtocol?: number;
  /** MTA side: stage numbers of macro lists that were ignored because they are not 0..6. */
  ignoredMacroStages?: readonly number[];
}

/** Options both sides agreed on; the same shape on the milter side and the MTA side. */
export class Negotiated {
  /** Agreed protocol version (2..6). */
  readonly version: number;
  /** SMFIF_* actions the milter may use. */
  readonly actions: number;
  /** Agreed SMFIP_* bits (NO_*, NR_*, SKIP, RCPT_REJ, HDR_LEADSPC); no SMFI_INTERNAL bits. */
  readonly protocol: number;
  /** Whether the milter may answer a body chunk with `s`. */
  readonly skip: boolean;
  /** Largest data size of a packet in either direction (65535 unless MDS was agreed). */
  readonly maxDataSize: number;
  /** Macro lists the milter requested, by stage, names as requested. */
  readonly macroLists: ReadonlyMap<MacroStage, readonly string[]>;
  /** MTA side: protocol bits set by the milter without having been offered (for a warning). */
  readonly unofferedProtocol: number;
  /** MTA side: macro-list stage numbers outside 0..6 that were ignored. */
  readonly ignoredMacroStages: readonly number[];

  constructor(init: NegotiatedInit) {
    this.version = init.version;
    this.actions = init.actions;
    this.protocol = init.protocol;
    this.skip = init.skip;
    this.maxDataSize = init.maxDataSize;
    this.macroLists = init.macroLists ?? new Map();
    this.unofferedProtocol = init.unofferedProtocol ?? 0;
    this.ignoredMacroStages = init.ignoredMacroStages ?? [];
  }

  /** Is a command sent at all (NO_* bits, and `U` only for v ≥ 3, `T` only for v ≥ 4, `K` only for v6)? */
  sends(type: MtaCommandType): boolean {
    const rule = SEND_RULE[type];
    if (rule === undefined) return true;
    if (rule.since !== undefined && this.version < rule.since) return false;
    return rule.no === undefined || (this.protocol & rule.no) === 0;
  }

  /** Does the MTA wait for a reply to this command (false for D/A/Q/K and under an NR_* bit)? */
  expectsReply(type: MtaCommandType): boolean {
    if (NEVER_ANSWERED.has(type)) return false;
    const nr = NO_REPLY_BIT[type];
    return nr === undefined || (this.protocol & nr) === 0;
  }

  /** True if every bit of `action` (SMFIF_*) was agreed. */
  allows(action: number): boolean {
    return (this.actions & action) === action;
  }

  /**
   * May the milter send this reply after negotiation? Modifications need
   * their action flag, `s` needs SKIP; `O` and `l` are never valid here.
   */
  permits(type: MilterReplyType): boolean {
    if (type === "optneg" || type === "setsymlist") return false;
    if (type === "skip") return this.skip;
    return this.allows(requiredAction(type));
  }

  /** Header values keep their leading space (SMFIP_HDR_LEADSPC). */
  get leadingSpace(): boolean {
    return (this.protocol & SMFIP_HDR_LEADSPC) !== 0;
  }

  /** The MTA also reports recipients it rejected (SMFIP_RCPT_REJ). */
  get rcptRejected(): boolean {
    return (this.protocol & SMFIP_RCPT_REJ) !== 0;
  }

  /**
   * Macro names the milter asked for before this command, if it sent a list
   * for that stage ([] for an empty list — Postfix then keeps its configured
   * list, Sendmail sends none); undefined if it did not ask.
   */
  requestedMacros(type: MtaCommandType): readonly string[] | undefined {
    const stage = macroStageOf(type);
    return stage === undefined ? undefined : this.macroLists.get(stage);
  }
}

// ---------------------------------------------------------------------------
// Data size (SMFIP_MDS_*)

/** Data size selected by the MDS bits of a protocol word (65535 when none is set). */
export function dataSizeOf(protocol: number): number {
  if (protocol & SMFIP_MDS_1M) return MILTER_MDS_1M;
  if (protocol & SMFIP_MDS_256K) return MILTER_MDS_256K;
  return MILTER_MAX_DATA_SIZE;
}

/** MDS bit for a data size, rounding up to 256K/1M like Sendmail (0 for ≤ 65535). */
export function dataSizeBit(maxDataSize: number): number {
  if (maxDataSize <= MILTER_MAX_DATA_SIZE) return 0;
  return maxDataSize <= MILTER_MDS_256K ? SMFIP_MDS_256K : SMFIP_MDS_1M;
}

// ---------------------------------------------------------------------------
// Milter side

/** What our milter wants from the MTA. */
export interface MilterRequest {
  /** Highest version we speak, 2..6 (default 6); the reply carries min(this, MTA's). */
  version?: number;
  /** SMFIF_* actions we will use; each must be offered, else NegotiationError "actions". */
  actions: number;
  /**
   * SMFIP_* bits we would like (NO_*, NR_*, SKIP, RCPT_REJ, HDR_LEADSPC). Only
   * bits the MTA offered are granted: the MTA still sends events whose NO_* bit
   * was not granted, and still waits for replies whose NR_* bit was not granted
   * (answer `c` yourself then, as libmilter does). MDS bits here are ignored;
   * use maxDataSize.
   */
  protocol: number;
  /** Macro lists to request, stage → names. Sent only to a v6 MTA that offers SMFIF_SETSYMLIST. */
  macroLists?: ReadonlyMap<MacroStage, readonly string[]>;
  /** Largest packet data we are able to read (default 65535). An offered MDS size is accepted up to this. */
  maxDataSize?: number;
}

export interface MilterNegotiation {
  /** Our `O` packet. */
  reply: OptnegReply;
  /** What was agreed (from our side). */
  negotiated: Negotiated;
}

/**
 * Milter side of OPTNEG. Throws NegotiationError: "version" if the MTA offers
 * a version below 2 (or ours is outside 2..6), "actions" if we need an action
 * the MTA does not offer. As libmilter does, an offer of 0 actions counts as
 * SMFI_V1_ACTS and 0 protocol bits as SMFI_V1_PROT.
 */
export function negotiateAsMilter(offer: OptionWords, request: MilterRequest): MilterNegotiation {
  const own = request.version ?? SMFI_VERSION_MAX;
  if (!Number.isInteger(own) || own < SMFI_VERSION_MIN || own > SMFI_VERSION_MAX) {
    throw new NegotiationError("version", `our milter protocol version ${own} is not in ${SMFI_VERSION_MIN}..${SMFI_VERSION_MAX}`);
  }
  if (offer.version < SMFI_VERSION_MIN) {
    throw new NegotiationError(
      "version",
      `MTA offers milter protocol version ${offer.version}, at least ${SMFI_VERSION_MIN} is required`,
    );
  }
  const version = Math.min(own, offer.version);
  const offeredActions = offer.actions === 0 ? SMFI_V1_ACTS : offer.actions;
  const offeredProtocol = offer.protocol === 0 ? SMFI_V1_PROT : offer.protocol;

  const missing = request.actions & ~offeredActions;
  if (missing !== 0) {
    throw new NegotiationError(
      "actions",
      `milter needs actions ${formatFlagWord(missing, "actions")} that the MTA does not offer (offered ${formatFlagWord(offeredActions, "actions")})`,
    );
  }
  let actions = request.actions >>> 0;

  // Macro lists need v6 and SETSYMLIST; without them the MTA's own lists apply.
  let macroLists: Map<MacroStage, readonly string[]> | undefined;
  let lists: MacroList[] | undefined;
  if (request.macroLists && request.macroLists.size > 0 && version >= SMFI_VERSION_6 && offeredActions & SMFIF_SETSYMLIST) {
    actions |= SMFIF_SETSYMLIST;
    macroLists = new Map();
    lists = [];
    for (const [stage, names] of request.macroLists) {
      macroLists.set(stage, [...names]);
      lists.push({ stage, macros: formatSymbolList(names) });
    }
  }

  // Echo an MDS size only if the MTA offered one; never more than we can read.
  const mine = request.maxDataSize ?? MILTER_MAX_DATA_SIZE;
  const offeredSize = dataSizeOf(offer.protocol);
  const maxDataSize = offeredSize > MILTER_MAX_DATA_SIZE ? agreedSize(Math.min(offeredSize, mine)) : MILTER_MAX_DATA_SIZE;

  const granted = request.protocol & offeredProtocol & SMFI_CURR_PROT;
  const skip = version >= SMFI_VERSION_6 && (granted & SMFIP_SKIP) !== 0;
  const reply: OptnegReply = { type: "optneg", version, actions, protocol: (granted | dataSizeBit(maxDataSize)) >>> 0 };
  if (lists) reply.macroLists = lists;
  return {
    reply,
    negotiated: new Negotiated({ version, actions, protocol: granted >>> 0, skip, maxDataSize, macroLists }),
  };
}

/** Largest defined size not above `n` (65535, 262143, 1048575). */
function agreedSize(n: number): number {
  if (n >= MILTER_MDS_1M) return MILTER_MDS_1M;
  if (n >= MILTER_MDS_256K) return MILTER_MDS_256K;
  return MILTER_MAX_DATA_SIZE;
}

// ---------------------------------------------------------------------------
// MTA side

/** What our MTA side offers (defaults: version 6, all actions, all protocol bits, 64K). */
export interface MtaOfferOptions {
  version?: number;
  actions?: number;
  protocol?: number;
  /** Largest data we accept and send; > 65535 adds the matching MDS bit (rounded up to 256K/1M). */
  maxDataSize?: number;
}

/** Build the `O` command an MTA sends. MDS bits in `protocol` are replaced by the one for maxDataSize. */
export function makeOffer(options: MtaOfferOptions = {}): OptnegCommand {
  const protocol = ((options.protocol ?? SMFI_CURR_PROT) & ~SMFI_INTERNAL) | dataSizeBit(options.maxDataSize ?? 0);
  return {
    type: "optneg",
    version: options.version ?? SMFI_VERSION_MAX,
    actions: options.actions ?? SMFI_CURR_ACTS,
    protocol: protocol >>> 0,
  };
}

/**
 * MTA side of OPTNEG: check the milter's reply against our offer. Throws
 * NegotiationError "version" (reply version below 2 or above ours, as Postfix
 * does), "actions" (actions we did not offer), "data-size" (an MDS size larger
 * than offered). Protocol bits we did not offer are honoured (we can always
 * skip an event or not wait for a reply) and reported in
 * `unofferedProtocol`; SKIP counts only if we offered it. Macro lists with
 * stage numbers outside 0..6 are ignored (reported in `ignoredMacroStages`).
 * If we offered no MDS bit, SMFI_INTERNAL bits in the reply are ignored.
 */
export function negotiateAsMta(offer: OptionWords, reply: OptionWords & { macroLists?: readonly MacroList[] }): Negotiated {
  if (reply.version < SMFI_VERSION_MIN) {
    throw new NegotiationError("version", `milter answered protocol version ${reply.version}, at least ${SMFI_VERSION_MIN} is required`);
  }
  if (reply.version > offer.version) {
    throw new NegotiationError(
      "version",
      `milter protocol version ${reply.version} conflicts with the offered version ${offer.version}`,
    );
  }
  const extra = reply.actions & ~offer.actions;
  if (extra !== 0) {
    throw new NegotiationError(
      "actions",
      `milter requests actions ${formatFlagWord(extra, "actions")} that were not offered (offered ${formatFlagWord(offer.actions, "actions")})`,
    );
  }
  const offeredSize = dataSizeOf(offer.protocol);
  let maxDataSize = MILTER_MAX_DATA_SIZE;
  if (offeredSize > MILTER_MAX_DATA_SIZE) {
    maxDataSize = dataSizeOf(reply.protocol);
    if (maxDataSize > offeredSize) {
      throw new NegotiationError(
        "data-size",
        `milter chose max data size ${maxDataSize}, larger than the offered ${offeredSize}`,
      );
    }
  }
  const protocol = (reply.protocol & ~SMFI_INTERNAL) >>> 0;
  const macroLists = new Map<MacroStage, readonly string[]>();
  const ignored: number[] = [];
  for (const l of reply.macroLists ?? []) {
    if (isMacroStage(l.stage)) macroLists.set(l.stage, parseSymbolList(l.macros));
    else ignored.push(l.stage);
  }
  return new Negotiated({
    version: reply.version,
    actions: reply.actions >>> 0,
    protocol,
    skip: reply.version >= SMFI_VERSION_6 && (protocol & offer.protocol & SMFIP_SKIP) !== 0,
    maxDataSize,
    macroLists,
    unofferedProtocol: (protocol & ~offer.protocol) >>> 0,
    ignoredMacroStages: ignored,
  });
}

// ---------------------------------------------------------------------------
// Formatting and parsing flag words

/** `0x1ff (ADDHDRS|CHGBODY|…)`: a flag word with its mfdef.h names, for logs. */
export function formatFlagWord(value: number, kind: "actions" | "protocol"): string {
  const names = flagNames(value, kind === "actions" ? ACTION_FLAGS : PROTOCOL_FLAGS);
  return `0x${(value >>> 0).toString(16)}${names.length ? ` (${names.join("|")})` : ""}`;
}

/** `version=6 actions=0x1ff (…) protocol=0x1fffff (…)`: one OPTNEG packet, for logs. */
export function formatOptionWords(words: OptionWords): string {
  return `version=${words.version} actions=${formatFlagWord(words.actions, "actions")} protocol=${formatFlagWord(words.protocol, "protocol")}`;
}

/** milter-manager nicknames of actions joined with `|` (`add-headers|change-body`), as milter-test-client prints them. */
export function actionNicknames(actions: number): string {
  return flagNicknames(actions, ACTION_FLAGS).join("|");
}

/** milter-manager nicknames of protocol ("step") bits joined with `|` (`no-connect|no-helo|…`). */
export function protocolNicknames(protocol: number): string {
  return flagNicknames(protocol, PROTOCOL_FLAGS).join("|");
}

/** Parse actions written as nicknames/names/numbers (`add-headers|CHGBODY`); RangeError on an unknown word. */
export function parseActions(text: string): number {
  return parseFlags(text, ACTION_FLAGS);
}

/** Parse protocol bits written as nicknames/names/numbers (`no-connect|NR_HDR|0x400`). */
export function parseProtocol(text: string): number {
  return parseFlags(text, PROTOCOL_FLAGS);
}
