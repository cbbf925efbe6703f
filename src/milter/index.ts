/**
 * milterkit's milter protocol layer (pure, no I/O). Import from here:
 *
 *   import { PacketReader, decodeCommand, encodeReplies, negotiateAsMilter } from "../milter/index.ts";
 *
 * - constants.ts  codes, flags, versions, sizes, macro stages, stage names, flag nicknames
 * - reader.ts     PacketReader: chunks in, whole packets out
 * - commands.ts   MtaCommand (MTA → milter) types, decodeCommand, encodeCommand(s), splitBody
 * - replies.ts    MilterReply (milter → MTA) types, decodeReply, encodeReply/Replies
 * - codec.ts      all of the above plus decodeCommands/decodeReplies for whole streams
 * - option.ts     negotiation on both sides → Negotiated
 * - macros.ts     macro names, symbol lists, filtering, MacroContext
 * - reply-code.ts SMTP reply text for 'y'
 * - errors.ts     MilterProtocolError, NegotiationError
 */
export * from "./constants.ts";
export * from "./errors.ts";
export * from "./codec.ts";
export * from "./option.ts";
export * from "./macros.ts";
export * from "./reply-code.ts";
