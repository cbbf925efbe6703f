/**
 * The milter codec in one import: framing (PacketReader), typed commands and
 * replies with their decoders/encoders, and whole-stream helpers.
 *
 * Error style everywhere: functions return typed values or throw
 * MilterProtocolError (with `kind` and the offending bytes in the message).
 */
import { MILTER_MAX_DATA_SIZE } from "./constants.ts";
import { decodeCommand, type MtaCommand } from "./commands.ts";
import { PacketReader } from "./reader.ts";
import { decodeReply, type MilterReply } from "./replies.ts";

export * from "./commands.ts";
export * from "./replies.ts";
export * from "./reader.ts";
export { MilterProtocolError, type MilterProtocolErrorKind } from "./errors.ts";

/**
 * Decode a complete byte stream of MTA → milter packets (e.g. a capture or a
 * test fixture). Throws MilterProtocolError for any framing or layout error,
 * including `truncated` when the bytes end inside a packet.
 */
export function decodeCommands(bytes: Uint8Array, maxDataSize = MILTER_MAX_DATA_SIZE): MtaCommand[] {
  const out: MtaCommand[] = [];
  const reader = new PacketReader({ maxDataSize });
  reader.push(bytes, (code, payload) => out.push(decodeCommand(code, payload)));
  reader.finish();
  return out;
}

/** Decode a complete byte stream of milter → MTA packets (see decodeCommands). */
export function decodeReplies(bytes: Uint8Array, maxDataSize = MILTER_MAX_DATA_SIZE): MilterReply[] {
  const out: MilterReply[] = [];
  const reader = new PacketReader({ maxDataSize });
  reader.push(bytes, (code, payload) => out.push(decodeReply(code, payload)));
  reader.finish();
  return out;
}
