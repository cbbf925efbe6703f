/**
 * The default negotiation request, as libmilter builds it for a milter that
 * did not register a negotiate callback: every action the MTA offers, a
 * SMFIP_NO* bit for each event the handler has no method for (so the MTA does
 * not send it), and SKIP when offered and the handler looks at body chunks.
 */
import {
  type MilterRequest,
  type OptnegCommand,
  SMFI_CURR_ACTS,
  SMFIF_SETSYMLIST,
  SMFIP_NOBODY,
  SMFIP_NOCONNECT,
  SMFIP_NODATA,
  SMFIP_NOEOH,
  SMFIP_NOHDRS,
  SMFIP_NOHELO,
  SMFIP_NOMAIL,
  SMFIP_NORCPT,
  SMFIP_NOUNKNOWN,
  SMFIP_SKIP,
  SMFI_V1_ACTS,
} from "../milter/index.ts";
import type { MilterHandler } from "./types.ts";

/** Handler method → the NO* bit that spares the MTA sending that event. */
const NO_BIT: readonly [keyof MilterHandler, number][] = [
  ["connect", SMFIP_NOCONNECT],
  ["helo", SMFIP_NOHELO],
  ["envelopeFrom", SMFIP_NOMAIL],
  ["envelopeRecipient", SMFIP_NORCPT],
  ["body", SMFIP_NOBODY],
  ["header", SMFIP_NOHDRS],
  ["endOfHeader", SMFIP_NOEOH],
  ["unknown", SMFIP_NOUNKNOWN],
  ["data", SMFIP_NODATA],
];

export function defaultRequest(handler: MilterHandler, offer: OptnegCommand, maxDataSize: number): MilterRequest {
  const offered = offer.actions === 0 ? SMFI_V1_ACTS : offer.actions;
  let protocol = 0;
  for (const [method, bit] of NO_BIT) if (typeof handler[method] !== "function") protocol |= bit;
  if (typeof handler.body === "function") protocol |= SMFIP_SKIP;
  return {
    actions: offered & SMFI_CURR_ACTS & ~SMFIF_SETSYMLIST,
    protocol,
    maxDataSize,
  };
}
