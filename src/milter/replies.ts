/**
 * Milter → MTA replies as typed values, with their decoder and encoders.
 * Same style as commands.ts: `decodeReply(code, payload)` returns a
 * MilterReply or throws MilterProtocolError; encoders return one Buffer with
 * one or many whole packets.
 */
import { asBuffer, hexPreview, readLatin1, readU32, writeU32 } from "./bytes.ts";
import {
  MILTER_CHUNK_SIZE,
  MILTER_LEN_BYTES,
  MILTER_MAX_DATA_SIZE,
  MILTER_OPTLEN,
  SMFIC_OPTNEG,
  SMFIR_ACCEPT,
  SMFIR_ADDHEADER,
  SMFIR_ADDRCPT,
  SMFIR_ADDRCPT_PAR,
  SMFIR_CHGFROM,
  SMFIR_CHGHEADER,
  SMFIR_CONN_FAIL,
  SMFIR_CONTINUE,
  SMFIR_DELRCPT,
  SMFIR_DISCARD,
  SMFIR_INSHEADER,
  SMFIR_PROGRESS,
  SMFIR_QUARANTINE,
  SMFIR_REJECT,
  SMFIR_REPLBODY,
  SMFIR_REPLYCODE,
  SMFIR_SETSYMLIST,
  SMFIR_SHUTDOWN,
  SMFIR_SKIP,
  SMFIR_TEMPFAIL,
  codeLabel,
  REPLY_CODE,
  replyName,
  type MilterReplyType,
} from "./constants.ts";
import { splitBody } from "./commands.ts";
import { MilterProtocolError } from "./errors.ts";
import {
  checkBytes,
  checkU32,
  closePacket,
  copyBytes,
  cstrList,
  cstrSize,
  expectEmpty,
  malformed,
  onlyCstr,
  putBytes,
  putCstr,
  encodeBatch,
  type PacketCodec,
} from "./wire.ts";

/** One macro list of an OPTNEG reply: the stage number as sent and the list text as sent. */
export interface MacroList {
  /** SMFIM_* stage (0..6); other numbers are kept on decode and ignored by negotiation. */
  stage: number;
  /** Macro names separated by spaces (or commas), e.g. `{client_addr} j`. */
  macros: string;
}

/** `O`: the milter's answer to the offer, optionally with macro lists (v6). */
export interface OptnegReply {
  type: "optneg";
  version: number;
  /** SMFIF_* actions the milter will use (a subset of the offer). */
  actions: number;
  /** SMFIP_* bits the milter asks for. */
  protocol: number;
  /** Present only when the packet carries lists. */
  macroLists?: readonly MacroList[];
}
export interface AcceptReply { type: "accept" }
export interface ContinueReply { type: "continue" }
export interface DiscardReply { type: "discard" }
export interface RejectReply { type: "reject" }
export interface TempfailReply { type: "tempfail" }
/** `y`: custom SMTP reply text (see reply-code.ts to build and check it). */
export interface ReplycodeReply {
  type: "replycode";
  text: string;
}
/** `s`: stop sending body chunks (SMFIP_SKIP negotiated, v6). */
export interface SkipReply { type: "skip" }
/** `p`: still working, restart the MTA's timer. */
export interface ProgressReply { type: "progress" }
/** `4`: 421 and close the SMTP session (Postfix only). */
export interface ShutdownReply { type: "shutdown" }
/** `f`: defined in mfdef.h, implemented by nobody. */
export interface ConnFailReply { type: "conn_fail" }
/** `h`: append a header. */
export interface AddheaderReply {
  type: "addheader";
  name: string;
  value: string;
}
/** `i`: insert a header at a position (0 = top; counts all headers). */
export interface InsheaderReply {
  type: "insheader";
  index: number;
  name: string;
  value: string;
}
/** `m`: change the index-th (1-based) header of that name; empty value deletes it. */
export interface ChgheaderReply {
  type: "chgheader";
  index: number;
  name: string;
  value: string;
}
/** `b`: one chunk of the replacement body (an empty chunk replaces the body with nothing). */
export interface ReplbodyReply {
  type: "replbody";
  chunk: Uint8Array;
}
/** `+`: add a recipient. */
export interface AddrcptReply {
  type: "addrcpt";
  address: string;
}
/** `2`: add a recipient with ESMTP arguments in one string (v6). */
export interface AddrcptParReply {
  type: "addrcpt_par";
  address: string;
  args?: string;
}
/** `-`: delete a recipient (address as received in `R`). */
export interface DelrcptReply {
  type: "delrcpt";
  address: string;
}
/** `e`: change the envelope sender, optionally with ESMTP arguments (v6). */
export interface ChgfromReply {
  type: "chgfrom";
  address: string;
  args?: string;
}
/** `q`: quarantine (hold) the message; not a decision. */
export interface QuarantineReply {
  type: "quarantine";
  reason: string;
}
/** `l`: a macro list as a stand-alone packet (defined, never sent by libmilter, refused by MTAs). */
export interface SetsymlistReply {
  type: "setsymlist";
  stage: number;
  macros: string;
}

/** Any milter → MTA packet. Discriminate on `type`. */
export type MilterReply =
  | OptnegReply
  | AcceptReply
  | ContinueReply
  | DiscardReply
  | RejectReply
  | TempfailReply
  | ReplycodeReply
  | SkipReply
  | ProgressReply
  | ShutdownReply
  | ConnFailReply
  | AddheaderReply
  | InsheaderReply
  | ChgheaderReply
  | ReplbodyReply
  | AddrcptReply
  | AddrcptParReply
  | DelrcptReply
  | ChgfromReply
  | QuarantineReply
  | SetsymlistReply;

/** The reply variant with a given `type`, e.g. `ReplyOf<"chgheader">`. */
export type ReplyOf<T extends MilterReply["type"]> = Extract<MilterReply, { type: T }>;

type SameKeys<A, B> = [A] extends [B] ? ([B] extends [A] ? true : never) : never;
const _replyTypesMatch: SameKeys<MilterReply["type"], MilterReplyType> = true;
void _replyTypesMatch;

/** Replies that end the MTA's wait for an answer to a command: a c d r t y s 4. */
export type DecisionReply =
  | AcceptReply
  | ContinueReply
  | DiscardReply
  | RejectReply
  | TempfailReply
  | ReplycodeReply
  | SkipReply
  | ShutdownReply;
/** Message modifications, legal only between `E` and the final decision: h i m b + 2 - e q. */
export type ModificationReply =
  | AddheaderReply
  | InsheaderReply
  | ChgheaderReply
  | ReplbodyReply
  | AddrcptReply
  | AddrcptParReply
  | DelrcptReply
  | ChgfromReply
  | QuarantineReply;

const DECISIONS = new Set<MilterReplyType>(["accept", "continue", "discard", "reject", "tempfail", "replycode", "skip", "shutdown"]);
const MODIFICATIONS = new Set<MilterReplyType>([
  "addheader", "insheader", "chgheader", "replbody", "addrcpt", "addrcpt_par", "delrcpt", "chgfrom", "quarantine",
]);
/** True for a reply that answers a command (a c d r t y s 4); `p` and modifications are not decisions. */
export function isDecision(reply: MilterReply): reply is DecisionReply {
  return DECISIONS.has(reply.type);
}
/** True for a modification (h i m b + 2 - e q). */
export function isModification(reply: MilterReply): reply is ModificationReply {
  return MODIFICATIONS.has(reply.type);
}

// ---------------------------------------------------------------------------
// Decoding

/**
 * Decode the data of one milter → MTA packet. Throws MilterProtocolError:
 * `unknown-command` for a byte that is not a reply, `malformed` for a layout
 * error (missing NUL, short OPTNEG, broken macro list, trailing bytes after a
 * reply without data, …).
 */
export function decodeReply(code: number, payload: Uint8Array): MilterReply {
  const p = asBuffer(payload);
  switch (code) {
    case SMFIC_OPTNEG:
      return decodeOptnegReply(p);
    case SMFIR_ACCEPT:
      expectEmpty(p, replyName, code);
      return { type: "accept" };
    case SMFIR_CONTINUE:
      expectEmpty(p, replyName, code);
      return { type: "continue" };
    case SMFIR_DISCARD:
      expectEmpty(p, replyName, code);
      return { type: "discard" };
    case SMFIR_REJECT:
      expectEmpty(p, replyName, code);
      return { type: "reject" };
    case SMFIR_TEMPFAIL:
      expectEmpty(p, replyName, code);
      return { type: "tempfail" };
    case SMFIR_SKIP:
      expectEmpty(p, replyName, code);
      return { type: "skip" };
    case SMFIR_PROGRESS:
      expectEmpty(p, replyName, code);
      return { type: "progress" };
    case SMFIR_SHUTDOWN:
      expectEmpty(p, replyName, code);
      return { type: "shutdown" };
    case SMFIR_CONN_FAIL:
      expectEmpty(p, replyName, code);
      return { type: "conn_fail" };
    case SMFIR_REPLYCODE:
      return { type: "replycode", text: onlyCstr(p, 0, replyName, code, "reply text") };
    case SMFIR_ADDHEADER: {
      const [name, value] = nameValue(p, 0, code);
      return { type: "addheader", name, value };
    }
    case SMFIR_INSHEADER:
    case SMFIR_CHGHEADER: {
      if (p.length < 4) malformed(replyName, code, "missing header index", p);
      const index = readU32(p, 0);
      const [name, value] = nameValue(p, 4, code);
      return code === SMFIR_INSHEADER
        ? { type: "insheader", index, name, value }
        : { type: "chgheader", index, name, value };
    }
    case SMFIR_REPLBODY:
      return { type: "replbody", chunk: copyBytes(p) };
    case SMFIR_ADDRCPT:
      return { type: "addrcpt", address: onlyCstr(p, 0, replyName, code, "address") };
    case SMFIR_DELRCPT:
      return { type: "delrcpt", address: onlyCstr(p, 0, replyName, code, "address") };
    case SMFIR_ADDRCPT_PAR:
    case SMFIR_CHGFROM: {
      const s = cstrList(p, 0, replyName, code, "string");
      if (s.length === 0) malformed(replyName, code, "missing address");
      if (s.length > 2) malformed(replyName, code, `expected address and at most one argument string, got ${s.length} strings`, p);
      const type = code === SMFIR_CHGFROM ? "chgfrom" : "addrcpt_par";
      return s.length === 2 ? { type, address: s[0], args: s[1] } : { type, address: s[0] };
    }
    case SMFIR_QUARANTINE:
      return { type: "quarantine", reason: onlyCstr(p, 0, replyName, code, "reason") };
    case SMFIR_SETSYMLIST: {
      if (p.length < 4) malformed(replyName, code, "missing stage", p);
      return { type: "setsymlist", stage: readU32(p, 0), macros: onlyCstr(p, 4, replyName, code, "macro list") };
    }
    default:
      throw new MilterProtocolError(
        "unknown-command",
        `unknown reply ${codeLabel(code)} from the milter; data ${hexPreview(p)}`,
        code,
      );
  }
}

/** Exactly two NUL-terminated strings (header name and value) from `from` to the end. */
function nameValue(p: Buffer, from: number, code: number): [string, string] {
  const nul = p.indexOf(0, from);
  if (nul < 0) malformed(replyName, code, "header name is not NUL-terminated", p);
  return [readLatin1(p, from, nul), onlyCstr(p, nul + 1, replyName, code, "header value")];
}

function decodeOptnegReply(p: Buffer): OptnegReply {
  const code = SMFIC_OPTNEG;
  if (p.length < MILTER_OPTLEN) malformed(replyName, code, `expected at least ${MILTER_OPTLEN} data bytes, got ${p.length}`, p);
  const reply: OptnegReply = { type: "optneg", version: readU32(p, 0), actions: readU32(p, 4), protocol: readU32(p, 8) };
  if (p.length === MILTER_OPTLEN) return reply;
  const lists: MacroList[] = [];
  let pos = MILTER_OPTLEN;
  while (pos < p.length) {
    if (p.length - pos < 5) malformed(replyName, code, `truncated macro list at offset ${pos}`, p);
    const stage = readU32(p, pos);
    const nul = p.indexOf(0, pos + 4);
    if (nul < 0) malformed(replyName, code, `macro list for stage ${stage} is not NUL-terminated`, p);
    lists.push({ stage, macros: readLatin1(p, pos + 4, nul) });
    pos = nul + 1;
  }
  reply.macroLists = lists;
  return reply;
}

// ---------------------------------------------------------------------------
// Encoding

/**
 * Data bytes of a reply's packet (reply byte excluded); validates the value and
 * throws MilterProtocolError "malformed" if it cannot be encoded.
 */
export function replyDataSize(reply: MilterReply): number {
  const code = REPLY_CODE[reply.type];
  if (typeof code !== "number") {
    throw new MilterProtocolError("malformed", `cannot encode: unknown reply type ${JSON.stringify(reply.type)}`);
  }
  switch (reply.type) {
    case "optneg": {
      checkU32(reply.version, replyName, code, "version");
      checkU32(reply.actions, replyName, code, "actions");
      checkU32(reply.protocol, replyName, code, "protocol");
      let n = MILTER_OPTLEN;
      for (const l of reply.macroLists ?? []) {
        checkU32(l.stage, replyName, code, "macro list stage");
        n += 4 + cstrSize(l.macros, replyName, code, "macro list");
      }
      return n;
    }
    case "accept":
    case "continue":
    case "discard":
    case "reject":
    case "tempfail":
    case "skip":
    case "progress":
    case "shutdown":
    case "conn_fail":
      return 0;
    case "replycode":
      return cstrSize(reply.text, replyName, code, "reply text");
    case "addheader":
      return cstrSize(reply.name, replyName, code, "header name") + cstrSize(reply.value, replyName, code, "header value");
    case "insheader":
    case "chgheader":
      checkU32(reply.index, replyName, code, "index");
      return 4 + cstrSize(reply.name, replyName, code, "header name") + cstrSize(reply.value, replyName, code, "header value");
    case "replbody":
      checkBytes(reply.chunk, replyName, code, "chunk");
      return reply.chunk.length;
    case "addrcpt":
    case "delrcpt":
      return cstrSize(reply.address, replyName, code, "address");
    case "addrcpt_par":
    case "chgfrom":
      return (
        cstrSize(reply.address, replyName, code, "address") +
        (reply.args === undefined ? 0 : cstrSize(reply.args, replyName, code, "ESMTP arguments"))
      );
    case "quarantine":
      return cstrSize(reply.reason, replyName, code, "reason");
    case "setsymlist":
      checkU32(reply.stage, replyName, code, "stage");
      return 4 + cstrSize(reply.macros, replyName, code, "macro list");
    default:
      return reply satisfies never;
  }
}

/** Write a reply validated by replyDataSize at `off`; returns the offset after it. */
function writeReply(buf: Buffer, off: number, reply: MilterReply): number {
  const start = off;
  off += MILTER_LEN_BYTES + 1;
  switch (reply.type) {
    case "optneg":
      off = writeU32(buf, off, reply.version);
      off = writeU32(buf, off, reply.actions);
      off = writeU32(buf, off, reply.protocol);
      for (const l of reply.macroLists ?? []) off = putCstr(buf, writeU32(buf, off, l.stage), l.macros);
      break;
    case "replycode":
      off = putCstr(buf, off, reply.text);
      break;
    case "addheader":
      off = putCstr(buf, putCstr(buf, off, reply.name), reply.value);
      break;
    case "insheader":
    case "chgheader":
      off = putCstr(buf, putCstr(buf, writeU32(buf, off, reply.index), reply.name), reply.value);
      break;
    case "replbody":
      off = putBytes(buf, off, reply.chunk);
      break;
    case "addrcpt":
    case "delrcpt":
      off = putCstr(buf, off, reply.address);
      break;
    case "addrcpt_par":
    case "chgfrom":
      off = putCstr(buf, off, reply.address);
      if (reply.args !== undefined) off = putCstr(buf, off, reply.args);
      break;
    case "quarantine":
      off = putCstr(buf, off, reply.reason);
      break;
    case "setsymlist":
      off = putCstr(buf, writeU32(buf, off, reply.stage), reply.macros);
      break;
  }
  return closePacket(buf, start, REPLY_CODE[reply.type], off);
}

const CODEC: PacketCodec<MilterReply> = {
  code: (v) => REPLY_CODE[v.type],
  label: replyName,
  dataSize: replyDataSize,
  write: writeReply,
};

/**
 * Encode several replies into one Buffer (exact size, one allocation) so a
 * protocol step (modifications + final decision) goes out in one socket write.
 * Throws MilterProtocolError "malformed" for a value that cannot be encoded and
 * "oversize" if a packet's data exceeds `maxDataSize` (default 65535).
 */
export function encodeReplies(replys: readonly MilterReply[], maxDataSize = MILTER_MAX_DATA_SIZE): Buffer {
  return encodeBatch(replys, CODEC, maxDataSize);
}

/** Encode one reply (see encodeReplies). */
export function encodeReply(reply: MilterReply, maxDataSize = MILTER_MAX_DATA_SIZE): Buffer {
  return encodeBatch([reply], CODEC, maxDataSize);
}

/**
 * `b` replies for a whole replacement body, chunks of at most `max` bytes.
 * An empty body gives one empty `b`, which replaces the body with nothing.
 */
export function replaceBodyReplies(body: Uint8Array, max: number = MILTER_CHUNK_SIZE): ReplbodyReply[] {
  if (body.length === 0) return [{ type: "replbody", chunk: body }];
  return splitBody(body, max).map((chunk) => ({ type: "replbody", chunk }));
}
