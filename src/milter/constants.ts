/**
 * Milter wire-protocol constants: command and reply codes, action and protocol
 * flags, versions, size limits, macro stages, address families, and the names
 * milter-manager uses for stages and flags.
 *
 * Names follow libmilter's mfdef.h (SMFIC_*, SMFIR_*, SMFIF_*, SMFIP_*, SMFIM_*,
 * SMFIA_*) so that the code reads like the protocol description
 * (docs/protocol.md). Codes are byte values (numbers); the comment shows the
 * ASCII letter on the wire.
 */

// ---------------------------------------------------------------------------
// Framing and sizes

/** Bytes in the length word that starts every packet. */
export const MILTER_LEN_BYTES = 4;
/** Data bytes of an OPTNEG packet from the MTA (three u32 words). */
export const MILTER_OPTLEN = 12;
/** Body chunk size used by Sendmail, Postfix and libmilter's smfi_replacebody. */
export const MILTER_CHUNK_SIZE = 65535;
/** Default maximum data bytes per packet (command byte excluded). */
export const MILTER_MAX_DATA_SIZE = 65535;
/** Data size limits selectable through SMFIP_MDS_* bits (64 KiB − 1, 256 KiB − 1, 1 MiB − 1). */
export const MILTER_MDS_64K = 65535;
export const MILTER_MDS_256K = 262143;
export const MILTER_MDS_1M = 1048575;

// ---------------------------------------------------------------------------
// Versions

/** Oldest protocol version anyone still speaks; version 1 is refused. */
export const SMFI_VERSION_MIN = 2;
/** Newest protocol version (Sendmail 8.14+, Postfix 2.6+, libmilter). */
export const SMFI_VERSION_MAX = 6;
/** libmilter's name for the newest version. */
export const SMFI_PROT_VERSION = SMFI_VERSION_MAX;
/** First version with SMFIC_UNKNOWN ('U'). */
export const SMFI_VERSION_UNKNOWN = 3;
/** First version with SMFIC_DATA ('T'). */
export const SMFI_VERSION_DATA = 4;
/** First version with K, s, e, 2, macro lists, SKIP, RCPT_REJ, NR_*, HDR_LEADSPC. */
export const SMFI_VERSION_6 = 6;

// ---------------------------------------------------------------------------
// Commands, MTA → milter

export const SMFIC_ABORT = 0x41; // 'A'
export const SMFIC_BODY = 0x42; // 'B'
export const SMFIC_CONNECT = 0x43; // 'C'
export const SMFIC_MACRO = 0x44; // 'D'
export const SMFIC_BODYEOB = 0x45; // 'E'
export const SMFIC_HELO = 0x48; // 'H'
export const SMFIC_QUIT_NC = 0x4b; // 'K'
export const SMFIC_HEADER = 0x4c; // 'L'
export const SMFIC_MAIL = 0x4d; // 'M'
export const SMFIC_EOH = 0x4e; // 'N'
export const SMFIC_OPTNEG = 0x4f; // 'O' (also the milter's negotiation reply)
export const SMFIC_QUIT = 0x51; // 'Q'
export const SMFIC_RCPT = 0x52; // 'R'
export const SMFIC_DATA = 0x54; // 'T'
export const SMFIC_UNKNOWN = 0x55; // 'U'

// ---------------------------------------------------------------------------
// Replies, milter → MTA

export const SMFIR_ADDRCPT = 0x2b; // '+'
export const SMFIR_DELRCPT = 0x2d; // '-'
export const SMFIR_ADDRCPT_PAR = 0x32; // '2'
export const SMFIR_SHUTDOWN = 0x34; // '4'
export const SMFIR_ACCEPT = 0x61; // 'a'
export const SMFIR_REPLBODY = 0x62; // 'b'
export const SMFIR_CONTINUE = 0x63; // 'c'
export const SMFIR_DISCARD = 0x64; // 'd'
export const SMFIR_CHGFROM = 0x65; // 'e'
export const SMFIR_CONN_FAIL = 0x66; // 'f'
export const SMFIR_ADDHEADER = 0x68; // 'h'
export const SMFIR_INSHEADER = 0x69; // 'i'
export const SMFIR_SETSYMLIST = 0x6c; // 'l'
export const SMFIR_CHGHEADER = 0x6d; // 'm'
export const SMFIR_PROGRESS = 0x70; // 'p'
export const SMFIR_QUARANTINE = 0x71; // 'q'
export const SMFIR_REJECT = 0x72; // 'r'
export const SMFIR_SKIP = 0x73; // 's'
export const SMFIR_TEMPFAIL = 0x74; // 't'
export const SMFIR_REPLYCODE = 0x79; // 'y'

/** Code of every MTA → milter command, keyed by the `type` of its typed value. */
export const COMMAND_CODE = {
  optneg: SMFIC_OPTNEG,
  macro: SMFIC_MACRO,
  connect: SMFIC_CONNECT,
  helo: SMFIC_HELO,
  mail: SMFIC_MAIL,
  rcpt: SMFIC_RCPT,
  data: SMFIC_DATA,
  header: SMFIC_HEADER,
  eoh: SMFIC_EOH,
  body: SMFIC_BODY,
  eob: SMFIC_BODYEOB,
  abort: SMFIC_ABORT,
  quit: SMFIC_QUIT,
  quit_nc: SMFIC_QUIT_NC,
  unknown: SMFIC_UNKNOWN,
} as const;
/** `type` of a typed MTA → milter command (see MtaCommand). */
export type MtaCommandType = keyof typeof COMMAND_CODE;

/** Code of every milter → MTA reply, keyed by the `type` of its typed value. */
export const REPLY_CODE = {
  optneg: SMFIC_OPTNEG,
  accept: SMFIR_ACCEPT,
  continue: SMFIR_CONTINUE,
  discard: SMFIR_DISCARD,
  reject: SMFIR_REJECT,
  tempfail: SMFIR_TEMPFAIL,
  replycode: SMFIR_REPLYCODE,
  skip: SMFIR_SKIP,
  progress: SMFIR_PROGRESS,
  shutdown: SMFIR_SHUTDOWN,
  conn_fail: SMFIR_CONN_FAIL,
  addheader: SMFIR_ADDHEADER,
  insheader: SMFIR_INSHEADER,
  chgheader: SMFIR_CHGHEADER,
  replbody: SMFIR_REPLBODY,
  addrcpt: SMFIR_ADDRCPT,
  addrcpt_par: SMFIR_ADDRCPT_PAR,
  delrcpt: SMFIR_DELRCPT,
  chgfrom: SMFIR_CHGFROM,
  quarantine: SMFIR_QUARANTINE,
  setsymlist: SMFIR_SETSYMLIST,
} as const;
/** `type` of a typed milter → MTA reply (see MilterReply). */
export type MilterReplyType = keyof typeof REPLY_CODE;

function invert<K extends string>(table: Record<K, number>): Map<number, K> {
  const m = new Map<number, K>();
  for (const k of Object.keys(table) as K[]) m.set(table[k], k);
  return m;
}
const COMMAND_TYPE_BY_CODE = invert(COMMAND_CODE);
const REPLY_TYPE_BY_CODE = invert(REPLY_CODE);

/** Typed-value `type` for a command byte, or undefined for an unknown byte. */
export function commandType(code: number): MtaCommandType | undefined {
  return COMMAND_TYPE_BY_CODE.get(code);
}
/** Wire letter of a command type: `commandLetter("connect")` → `"C"`. */
export function commandLetter(type: MtaCommandType): string {
  return String.fromCharCode(COMMAND_CODE[type]);
}
/** Typed-value `type` for a reply byte, or undefined for an unknown byte. */
export function replyType(code: number): MilterReplyType | undefined {
  return REPLY_TYPE_BY_CODE.get(code);
}

const COMMAND_NAME: Record<MtaCommandType, string> = {
  optneg: "SMFIC_OPTNEG", macro: "SMFIC_MACRO", connect: "SMFIC_CONNECT", helo: "SMFIC_HELO",
  mail: "SMFIC_MAIL", rcpt: "SMFIC_RCPT", data: "SMFIC_DATA", header: "SMFIC_HEADER", eoh: "SMFIC_EOH",
  body: "SMFIC_BODY", eob: "SMFIC_BODYEOB", abort: "SMFIC_ABORT", quit: "SMFIC_QUIT",
  quit_nc: "SMFIC_QUIT_NC", unknown: "SMFIC_UNKNOWN",
};
const REPLY_NAME: Record<MilterReplyType, string> = {
  optneg: "SMFIC_OPTNEG", accept: "SMFIR_ACCEPT", continue: "SMFIR_CONTINUE", discard: "SMFIR_DISCARD",
  reject: "SMFIR_REJECT", tempfail: "SMFIR_TEMPFAIL", replycode: "SMFIR_REPLYCODE", skip: "SMFIR_SKIP",
  progress: "SMFIR_PROGRESS", shutdown: "SMFIR_SHUTDOWN", conn_fail: "SMFIR_CONN_FAIL",
  addheader: "SMFIR_ADDHEADER", insheader: "SMFIR_INSHEADER", chgheader: "SMFIR_CHGHEADER",
  replbody: "SMFIR_REPLBODY", addrcpt: "SMFIR_ADDRCPT", addrcpt_par: "SMFIR_ADDRCPT_PAR",
  delrcpt: "SMFIR_DELRCPT", chgfrom: "SMFIR_CHGFROM", quarantine: "SMFIR_QUARANTINE",
  setsymlist: "SMFIR_SETSYMLIST",
};

/** Printable form of a code byte: `'C'` or `0x00` for non-printables. */
export function codeLabel(code: number): string {
  return code >= 0x21 && code <= 0x7e ? `'${String.fromCharCode(code)}'` : `0x${code.toString(16).padStart(2, "0")}`;
}
/** mfdef.h name of a command byte, e.g. `SMFIC_CONNECT ('C')`; unknown bytes give `unknown command 0x5a ('Z')`. */
export function commandName(code: number): string {
  const t = COMMAND_TYPE_BY_CODE.get(code);
  return t ? `${COMMAND_NAME[t]} (${codeLabel(code)})` : `unknown command ${codeLabel(code)}`;
}
/** mfdef.h name of a reply byte, e.g. `SMFIR_ACCEPT ('a')`. */
export function replyName(code: number): string {
  const t = REPLY_TYPE_BY_CODE.get(code);
  return t ? `${REPLY_NAME[t]} (${codeLabel(code)})` : `unknown reply ${codeLabel(code)}`;
}

// ---------------------------------------------------------------------------
// Connect address families (the byte after the host name in SMFIC_CONNECT)

export const SMFIA_UNKNOWN = "U"; // no port, no address
export const SMFIA_UNIX = "L"; // unix-domain socket, port 0
export const SMFIA_INET = "4";
export const SMFIA_INET6 = "6";
/** Family letter of SMFIC_CONNECT. */
export type ConnectFamily = typeof SMFIA_INET | typeof SMFIA_INET6 | typeof SMFIA_UNIX | typeof SMFIA_UNKNOWN;

// ---------------------------------------------------------------------------
// Action flags (second OPTNEG word): what the milter may modify

export const SMFIF_NONE = 0x000;
export const SMFIF_ADDHDRS = 0x001; // h, i
export const SMFIF_CHGBODY = 0x002; // b
export const SMFIF_MODBODY = SMFIF_CHGBODY;
export const SMFIF_ADDRCPT = 0x004; // +
export const SMFIF_DELRCPT = 0x008; // -
export const SMFIF_CHGHDRS = 0x010; // m
export const SMFIF_QUARANTINE = 0x020; // q
export const SMFIF_CHGFROM = 0x040; // e
export const SMFIF_ADDRCPT_PAR = 0x080; // 2
export const SMFIF_SETSYMLIST = 0x100; // macro lists in the OPTNEG reply
/** Actions of protocol version 1 (also libmilter's stand-in when an MTA offers 0). */
export const SMFI_V1_ACTS = 0x0f;
export const SMFI_V2_ACTS = 0x3f;
/** Every defined action. */
export const SMFI_CURR_ACTS = 0x1ff;

// ---------------------------------------------------------------------------
// Protocol flags (third OPTNEG word). In the MTA's word a bit means "I can do
// this"; in the milter's word "do this for me" (note the NO* polarity).

export const SMFIP_NONE = 0;
export const SMFIP_NOCONNECT = 0x00000001; // don't send C
export const SMFIP_NOHELO = 0x00000002; // don't send H
export const SMFIP_NOMAIL = 0x00000004; // don't send M
export const SMFIP_NORCPT = 0x00000008; // don't send R
export const SMFIP_NOBODY = 0x00000010; // don't send B
export const SMFIP_NOHDRS = 0x00000020; // don't send L
export const SMFIP_NOEOH = 0x00000040; // don't send N
export const SMFIP_NR_HDR = 0x00000080; // no reply to L
export const SMFIP_NOHREPL = SMFIP_NR_HDR;
export const SMFIP_NOUNKNOWN = 0x00000100; // don't send U
export const SMFIP_NODATA = 0x00000200; // don't send T
export const SMFIP_SKIP = 0x00000400; // MTA understands 's'
export const SMFIP_RCPT_REJ = 0x00000800; // also send rejected recipients
export const SMFIP_NR_CONN = 0x00001000; // no reply to C
export const SMFIP_NR_HELO = 0x00002000; // no reply to H
export const SMFIP_NR_MAIL = 0x00004000; // no reply to M
export const SMFIP_NR_RCPT = 0x00008000; // no reply to R
export const SMFIP_NR_DATA = 0x00010000; // no reply to T
export const SMFIP_NR_UNKN = 0x00020000; // no reply to U
export const SMFIP_NR_EOH = 0x00040000; // no reply to N
export const SMFIP_NR_BODY = 0x00080000; // no reply to B
export const SMFIP_HDR_LEADSPC = 0x00100000; // header values keep their leading space
export const SMFIP_MDS_256K = 0x10000000; // max data size 262143
export const SMFIP_MDS_1M = 0x20000000; // max data size 1048575
/** Bits reserved for MTA ↔ libmilter (the MDS bits live here); never pass them on as protocol options. */
export const SMFI_INTERNAL = 0x70000000;
/** Protocol bits of version 1 (libmilter's stand-in when an MTA offers 0). */
export const SMFI_V1_PROT = 0x3f;
export const SMFI_V2_PROT = 0x7f;
/** Every defined protocol bit outside SMFI_INTERNAL. */
export const SMFI_CURR_PROT = 0x1fffff;
/** All "don't send X" bits. */
export const SMFIP_NO_MASK =
  SMFIP_NOCONNECT | SMFIP_NOHELO | SMFIP_NOMAIL | SMFIP_NORCPT | SMFIP_NOBODY | SMFIP_NOHDRS | SMFIP_NOEOH |
  SMFIP_NOUNKNOWN | SMFIP_NODATA;
/** All "no reply to X" bits. */
export const SMFIP_NR_MASK =
  SMFIP_NR_HDR | SMFIP_NR_CONN | SMFIP_NR_HELO | SMFIP_NR_MAIL | SMFIP_NR_RCPT | SMFIP_NR_DATA | SMFIP_NR_UNKN |
  SMFIP_NR_EOH | SMFIP_NR_BODY;

// ---------------------------------------------------------------------------
// Macro stages of the OPTNEG reply's macro lists (note: EOM = 5, EOH = 6)

export const SMFIM_CONNECT = 0;
export const SMFIM_HELO = 1;
export const SMFIM_ENVFROM = 2;
export const SMFIM_ENVRCPT = 3;
export const SMFIM_DATA = 4;
export const SMFIM_EOM = 5;
export const SMFIM_EOH = 6;
/** A macro-list stage number. */
export type MacroStage = 0 | 1 | 2 | 3 | 4 | 5 | 6;
/** Command that each macro stage's list is sent before. */
export const MACRO_STAGE_COMMAND: Readonly<Record<MacroStage, MtaCommandType>> = {
  0: "connect", 1: "helo", 2: "mail", 3: "rcpt", 4: "data", 5: "eob", 6: "eoh",
};
const MACRO_STAGE_NAME: Readonly<Record<MacroStage, string>> = {
  0: "SMFIM_CONNECT", 1: "SMFIM_HELO", 2: "SMFIM_ENVFROM", 3: "SMFIM_ENVRCPT", 4: "SMFIM_DATA", 5: "SMFIM_EOM",
  6: "SMFIM_EOH",
};
/** True for the seven defined stage numbers 0..6. */
export function isMacroStage(n: number): n is MacroStage {
  return Number.isInteger(n) && n >= 0 && n <= 6;
}
/** mfdef.h name of a macro stage (`SMFIM_EOM`), or `stage N` for an unknown number. */
export function macroStageName(stage: number): string {
  return isMacroStage(stage) ? MACRO_STAGE_NAME[stage] : `stage ${stage}`;
}
/** Macro stage whose list applies to a command, if any (connect → 0, …, eob → 5, eoh → 6). */
export function macroStageOf(type: MtaCommandType): MacroStage | undefined {
  switch (type) {
    case "connect": return SMFIM_CONNECT;
    case "helo": return SMFIM_HELO;
    case "mail": return SMFIM_ENVFROM;
    case "rcpt": return SMFIM_ENVRCPT;
    case "data": return SMFIM_DATA;
    case "eob": return SMFIM_EOM;
    case "eoh": return SMFIM_EOH;
    default: return undefined;
  }
}

// ---------------------------------------------------------------------------
// Stage names as milter-manager uses them (logs, statistics, configuration)

export type StageName =
  | "negotiate" | "connect" | "helo" | "envelope-from" | "envelope-recipient" | "data" | "header"
  | "end-of-header" | "body" | "end-of-message" | "unknown" | "abort" | "quit";
export const STAGE_NAMES: readonly StageName[] = [
  "negotiate", "connect", "helo", "envelope-from", "envelope-recipient", "data", "header",
  "end-of-header", "body", "end-of-message", "unknown", "abort", "quit",
];
const STAGE_BY_COMMAND: Partial<Record<MtaCommandType, StageName>> = {
  optneg: "negotiate", connect: "connect", helo: "helo", mail: "envelope-from", rcpt: "envelope-recipient",
  data: "data", header: "header", eoh: "end-of-header", body: "body", eob: "end-of-message",
  unknown: "unknown", abort: "abort", quit: "quit", quit_nc: "quit",
};
/** milter-manager stage name of a command; undefined for `macro` (not a stage of its own). */
export function stageName(type: MtaCommandType): StageName | undefined {
  return STAGE_BY_COMMAND[type];
}

// ---------------------------------------------------------------------------
// Flag names: mfdef.h names without prefix, and milter-manager's nicknames
// (in bit order, as milter-test-client prints them: `action=<a|b>`).

/** One flag bit with its mfdef.h name (prefix removed) and milter-manager nickname. */
export interface FlagInfo {
  readonly bit: number;
  readonly name: string;
  readonly nick?: string;
}

export const ACTION_FLAGS: readonly FlagInfo[] = [
  { bit: SMFIF_ADDHDRS, name: "ADDHDRS", nick: "add-headers" },
  { bit: SMFIF_CHGBODY, name: "CHGBODY", nick: "change-body" },
  { bit: SMFIF_ADDRCPT, name: "ADDRCPT", nick: "add-envelope-recipient" },
  { bit: SMFIF_DELRCPT, name: "DELRCPT", nick: "delete-envelope-recipient" },
  { bit: SMFIF_CHGHDRS, name: "CHGHDRS", nick: "change-headers" },
  { bit: SMFIF_QUARANTINE, name: "QUARANTINE", nick: "quarantine" },
  { bit: SMFIF_CHGFROM, name: "CHGFROM", nick: "change-envelope-from" },
  { bit: SMFIF_ADDRCPT_PAR, name: "ADDRCPT_PAR", nick: "add-envelope-recipient-with-parameters" },
  { bit: SMFIF_SETSYMLIST, name: "SETSYMLIST", nick: "set-symbol-list" },
];

/** Protocol ("step") flags; the MDS bits have no milter-manager nickname. */
export const PROTOCOL_FLAGS: readonly FlagInfo[] = [
  { bit: SMFIP_NOCONNECT, name: "NOCONNECT", nick: "no-connect" },
  { bit: SMFIP_NOHELO, name: "NOHELO", nick: "no-helo" },
  { bit: SMFIP_NOMAIL, name: "NOMAIL", nick: "no-envelope-from" },
  { bit: SMFIP_NORCPT, name: "NORCPT", nick: "no-envelope-recipient" },
  { bit: SMFIP_NOBODY, name: "NOBODY", nick: "no-body" },
  { bit: SMFIP_NOHDRS, name: "NOHDRS", nick: "no-headers" },
  { bit: SMFIP_NOEOH, name: "NOEOH", nick: "no-end-of-header" },
  { bit: SMFIP_NR_HDR, name: "NR_HDR", nick: "no-reply-header" },
  { bit: SMFIP_NOUNKNOWN, name: "NOUNKNOWN", nick: "no-unknown" },
  { bit: SMFIP_NODATA, name: "NODATA", nick: "no-data" },
  { bit: SMFIP_SKIP, name: "SKIP", nick: "skip" },
  { bit: SMFIP_RCPT_REJ, name: "RCPT_REJ", nick: "envelope-recipient-rejected" },
  { bit: SMFIP_NR_CONN, name: "NR_CONN", nick: "no-reply-connect" },
  { bit: SMFIP_NR_HELO, name: "NR_HELO", nick: "no-reply-helo" },
  { bit: SMFIP_NR_MAIL, name: "NR_MAIL", nick: "no-reply-envelope-from" },
  { bit: SMFIP_NR_RCPT, name: "NR_RCPT", nick: "no-reply-envelope-recipient" },
  { bit: SMFIP_NR_DATA, name: "NR_DATA", nick: "no-reply-data" },
  { bit: SMFIP_NR_UNKN, name: "NR_UNKN", nick: "no-reply-unknown" },
  { bit: SMFIP_NR_EOH, name: "NR_EOH", nick: "no-reply-end-of-header" },
  { bit: SMFIP_NR_BODY, name: "NR_BODY", nick: "no-reply-body" },
  { bit: SMFIP_HDR_LEADSPC, name: "HDR_LEADSPC", nick: "header-value-with-leading-space" },
  { bit: SMFIP_MDS_256K, name: "MDS_256K" },
  { bit: SMFIP_MDS_1M, name: "MDS_1M" },
];

/** mfdef.h names (no prefix) of the bits set in `value`, in bit order; unknown bits are left out. */
export function flagNames(value: number, table: readonly FlagInfo[]): string[] {
  const out: string[] = [];
  for (const f of table) if ((value & f.bit) !== 0) out.push(f.name);
  return out;
}
/** milter-manager nicknames of the bits set in `value`, in bit order; bits without a nickname are left out. */
export function flagNicknames(value: number, table: readonly FlagInfo[]): string[] {
  const out: string[] = [];
  for (const f of table) if ((value & f.bit) !== 0 && f.nick !== undefined) out.push(f.nick);
  return out;
}
/**
 * Parse flags written as names or nicknames joined by `|`, `,` or spaces
 * (`add-headers|change-body`, `ADDHDRS,SMFIF_CHGBODY`, `0x3`). Returns the bit
 * mask or throws RangeError naming the unknown flag.
 */
export function parseFlags(text: string, table: readonly FlagInfo[]): number {
  let value = 0;
  for (const raw of text.split(/[|,\s]+/)) {
    if (raw === "") continue;
    if (/^(0x[0-9a-f]+|\d+)$/i.test(raw)) {
      value |= Number(raw);
      continue;
    }
    const word = raw.replace(/^SMFI[FP]_/i, "");
    const f = table.find((x) => x.nick === word.toLowerCase() || x.name === word.toUpperCase());
    if (!f) throw new RangeError(`unknown flag "${raw}"`);
    value |= f.bit;
  }
  return value >>> 0;
}
