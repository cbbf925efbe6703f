/**
 * The local copy of a message that milter-test-server keeps, and how the
 * milter's end-of-message modifications change it (pure).
 *
 * Header rules (docs/protocol.md §3.3): insert-header index 0 = top, past the
 * end appends; change/delete-header index is 1-based per name
 * (case-insensitive), 0 counts as 1; change past the last occurrence
 * appends, delete past it does nothing. Header text is kept as `raw` (what
 * follows the colon); the milter's values get the MTA's space after the
 * colon unless HDR_LEADSPC was agreed.
 */
import type { Modification } from "../mta-side/index.ts";
import type { HeaderField } from "./mail-file.ts";

export interface Recipient {
  /** `<…>` as sent or as the milter gave it. */
  address: string;
  args?: string;
}

export interface MessageState {
  from: string;
  fromArgs?: string;
  recipients: Recipient[];
  headers: HeaderField[];
  /** Body bytes (chunks as sent, or the replacement). */
  body: Uint8Array[];
}

export function cloneMessage(m: MessageState): MessageState {
  return {
    from: m.from,
    ...(m.fromArgs !== undefined ? { fromArgs: m.fromArgs } : {}),
    recipients: m.recipients.map((r) => ({ ...r })),
    headers: m.headers.map((h) => ({ ...h })),
    body: [...m.body],
  };
}

/** Header value as sent to the milter: one leading space removed unless HDR_LEADSPC. */
export function wireValue(raw: string, leadingSpace: boolean): string {
  return leadingSpace || !raw.startsWith(" ") ? raw : raw.slice(1);
}

/** Raw header text for a value coming from the milter. */
export function rawFromMilter(value: string, leadingSpace: boolean): string {
  return leadingSpace ? value : ` ${value}`;
}

/** Header value for display (`Name: value`): the raw text without one leading space. */
export function displayValue(raw: string): string {
  return raw.startsWith(" ") ? raw.slice(1) : raw;
}

/** Compare addresses without angle brackets and case. */
function sameAddress(a: string, b: string): boolean {
  const strip = (s: string) => (s.startsWith("<") && s.endsWith(">") ? s.slice(1, -1) : s).toLowerCase();
  return strip(a) === strip(b);
}

/** Apply modifications in arrival order; replace-body chunks concatenate into the new body. */
export function applyModifications(m: MessageState, mods: readonly Modification[], leadingSpace: boolean): { quarantine?: string } {
  let replaced: Uint8Array[] | undefined;
  let quarantine: string | undefined;
  for (const mod of mods) {
    switch (mod.type) {
      case "add-header":
        m.headers.push({ name: mod.name, raw: rawFromMilter(mod.value, leadingSpace) });
        break;
      case "insert-header":
        m.headers.splice(Math.min(mod.index, m.headers.length), 0, { name: mod.name, raw: rawFromMilter(mod.value, leadingSpace) });
        break;
      case "change-header": {
        const i = nthHeader(m.headers, mod.name, mod.index);
        const field = { name: mod.name, raw: rawFromMilter(mod.value, leadingSpace) };
        if (i < 0) m.headers.push(field);
        else m.headers[i] = { name: m.headers[i].name, raw: field.raw };
        break;
      }
      case "delete-header": {
        const i = nthHeader(m.headers, mod.name, mod.index);
        if (i >= 0) m.headers.splice(i, 1);
        break;
      }
      case "change-envelope-from":
        m.from = mod.address;
        if (mod.args !== undefined) m.fromArgs = mod.args;
        else delete m.fromArgs;
        break;
      case "add-envelope-recipient":
        m.recipients.push(mod.args !== undefined ? { address: mod.address, args: mod.args } : { address: mod.address });
        break;
      case "delete-envelope-recipient": {
        const i = m.recipients.findIndex((r) => sameAddress(r.address, mod.address));
        if (i >= 0) m.recipients.splice(i, 1);
        break;
      }
      case "replace-body":
        (replaced ??= []).push(mod.chunk);
        break;
      case "quarantine":
        quarantine = mod.reason;
        break;
    }
  }
  if (replaced) m.body = replaced;
  return quarantine === undefined ? {} : { quarantine };
}

/** Index of the index-th (1-based; 0 = 1) header named `name`, case-insensitively; -1 if there is none. */
function nthHeader(headers: readonly HeaderField[], name: string, index: number): number {
  const want = Math.max(1, index);
  const lower = name.toLowerCase();
  let seen = 0;
  for (let i = 0; i < headers.length; i++) {
    if (headers[i].name.toLowerCase() === lower && ++seen === want) return i;
  }
  return -1;
}

/** Remove the first recipient with this address (after a reject at RCPT). */
export function removeRecipient(m: MessageState, address: string): void {
  const i = m.recipients.findIndex((r) => sameAddress(r.address, address));
  if (i >= 0) m.recipients.splice(i, 1);
}
