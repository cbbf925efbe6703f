/**
 * Typed errors of the protocol layer. Reader, decoders and encoders throw only
 * MilterProtocolError; negotiation throws NegotiationError. Both carry the
 * offending input in the message so a log line is enough to debug a peer.
 */

/**
 * What went wrong with a packet or the packet stream:
 * - `zero-length`: a length word of 0 (a packet always has a command byte);
 * - `oversize`: more data than the (negotiated) maximum data size;
 * - `truncated`: the stream ended inside a packet;
 * - `unknown-command`: a command/reply byte this direction does not define;
 * - `malformed`: wrong layout — missing NUL, wrong fixed length, bad connect
 *   family, trailing bytes after a reply without data, a value that cannot be
 *   encoded, etc.
 */
export type MilterProtocolErrorKind = "zero-length" | "oversize" | "truncated" | "unknown-command" | "malformed";

export class MilterProtocolError extends Error {
  override readonly name = "MilterProtocolError";
  constructor(
    readonly kind: MilterProtocolErrorKind,
    message: string,
    /** Command/reply byte of the packet concerned, when known. */
    readonly code?: number,
  ) {
    super(message);
  }
}

/**
 * Why an OPTNEG exchange cannot succeed:
 * - `version`: version below 2, or a milter answering with a higher version than offered;
 * - `actions`: actions wanted/answered that the MTA did not offer;
 * - `data-size`: a max-data-size choice larger than what was offered or is supported.
 */
export type NegotiationErrorKind = "version" | "actions" | "data-size";

export class NegotiationError extends Error {
  override readonly name = "NegotiationError";
  constructor(
    readonly kind: NegotiationErrorKind,
    message: string,
  ) {
    super(message);
  }
}
