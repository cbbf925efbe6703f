// The manager's header list for one message, and the diff that tells the MTA how to turn its
// headers into the manager's (manager.md §2.5.3, protocol.md §3.3). Pure, no I/O.
//
// The model is the MTA's, so that a child's index means what it means when the child talks to
// the MTA directly (docs/transparency.md):
// - the list starts with the MTA's own header entries that milters never see (Postfix: its
//   Received:, one entry; Sendmail: the .cf's H lines after Return-Path, 8 with an m4 .cf);
//   `i` (insert) counts them: index 0 is above the MTA's Received:, index k lands at position k
//   of the whole list, past the end appends;
// - add (`h`) appends at the end (both MTAs; milter-manager put it before the first header of
//   the same name, which neither MTA does);
// - change/delete (`m`): 1-based among the visible headers of that name (index 0 counts as 1),
//   empty value deletes, a missing occurrence makes a change an append and a delete a no-op;
//   Sendmail keeps a deleted header as a tombstone until the message ends: later `m` indexes
//   (of any child) still count it, and a change of it brings it back.
// Names are compared case-insensitively (as MTAs do).
// Values are kept as the MTA sends them (with the leading space when HDR_LEADSPC was agreed).
//
// The diff (diffHeaders) works on the whole list, hidden entries included, so an `i` it sends
// uses the same count as the MTA. What it assumes about the MTA:
// - `m` index counts visible headers of that name, case-insensitively; Postfix shifts later
//   indexes on delete, Sendmail does not — so deletes come last, highest position first, which
//   gives the same result with both;
// - `h` appends at the end; it is used only for headers that end up after every other header.
// Packet order: changes (positions unchanged), then inserts/appends in final order, then deletes.
import type { AddheaderReply, ChgheaderReply, InsheaderReply } from "../milter/index.ts";

export interface Header {
  name: string;
  value: string;
}

/** A header packet for the MTA. */
export type HeaderPacket = AddheaderReply | InsheaderReply | ChgheaderReply;

/** Header entries the MTA counts for `i` but never shows to milters (its own Received:, ...). */
export const POSTFIX_HIDDEN_HEADERS = 1;
/** Sendmail with an m4-generated .cf: Received, Resent-Date, Date, Resent-From, From, Full-Name, Resent-Message-Id, Message-Id. */
export const SENDMAIL_HIDDEN_HEADERS = 8;

/** The MTAs whose behaviour the manager reproduces (docs/transparency.md). */
export type MtaKind = "postfix" | "sendmail";

/**
 * Which MTA this is, told apart by the macros it sends (docs/transparency.md): Postfix's `v`
 * starts with "Postfix"; Sendmail defines {mail_mailer} at MAIL (its m4 default list asks for
 * it; Postfix never defines it); anything else is taken as Postfix.
 */
export function mtaOf(macro: (name: string) => string | undefined): MtaKind {
  if (/^Postfix/i.test(macro("v") ?? "")) return "postfix";
  return macro("{mail_mailer}") !== undefined ? "sendmail" : "postfix";
}

/** How many hidden entries the MTA counts for `i`. */
export function hiddenHeadersOf(macro: (name: string) => string | undefined): number {
  return mtaOf(macro) === "sendmail" ? SENDMAIL_HIDDEN_HEADERS : POSTFIX_HIDDEN_HEADERS;
}

/** Names of hidden entries start with ":", which no real header name contains. */
export function isHidden(h: Header): boolean {
  return h.name.charCodeAt(0) === 0x3a;
}

function sameName(a: string, b: string): boolean {
  return a.length === b.length && (a === b || a.toLowerCase() === b.toLowerCase());
}

/** A header of the list; `deleted`: a Sendmail tombstone. */
interface Entry extends Header {
  deleted?: true;
}

/** The header list of the message being processed, with the MTA's editing rules. */
export class HeaderList {
  /** The whole list: the MTA's hidden entries first (plus what children inserted among them), then the message's headers; tombstones included. */
  private readonly entries: Entry[];

  /**
   * @param items the message's headers (visible to milters)
   * @param hidden number of entries the MTA counts before them for `i` (default: Postfix's one Received:)
   * @param tombstones a delete leaves a tombstone that `m` indexes still count (Sendmail)
   */
  constructor(
    items: Header[] = [],
    hidden = POSTFIX_HIDDEN_HEADERS,
    private readonly tombstones = false,
  ) {
    this.entries = [];
    for (let k = 0; k < hidden; k++) this.entries.push({ name: `:mta-${k}`, value: "" });
    this.entries.push(...items);
  }

  /** The whole list for diffHeaders: hidden entries included, tombstones left out. */
  get all(): Header[] {
    return this.tombstones ? this.entries.filter((h) => !h.deleted) : this.entries;
  }

  /** The headers milters see, in order (hidden entries and tombstones left out). */
  get items(): Header[] {
    return this.entries.filter((h) => !isHidden(h) && !h.deleted);
  }

  get length(): number {
    return this.items.length;
  }

  /** A header as received from the MTA. */
  append(name: string, value: string): void {
    this.entries.push({ name, value });
  }

  /** `h` from a child: at the end. */
  add(name: string, value: string): void {
    this.entries.push({ name, value });
  }

  /** `i` from a child: at position `index` of the whole list (hidden entries count), past the end appends. */
  insert(index: number, name: string, value: string): void {
    this.entries.splice(Math.min(Math.max(0, index), this.entries.length), 0, { name, value });
  }

  /** `m` from a child; an empty value deletes. */
  change(name: string, index: number, value: string): void {
    if (value === "") return this.delete(name, index);
    const i = this.position(name, index);
    if (i < 0) this.add(name, value);
    else this.entries[i] = { name, value }; // a tombstone comes back (Sendmail)
  }

  /** `m` with an empty value: remove the index-th header of that name, if there is one. */
  delete(name: string, index: number): void {
    const i = this.position(name, index);
    if (i < 0) return;
    if (this.tombstones) this.entries[i] = { name: this.entries[i].name, value: "", deleted: true };
    else this.entries.splice(i, 1);
  }

  /** A copy of the whole list (hidden entries included, tombstones left out), for diffHeaders. */
  snapshot(): Header[] {
    return this.all.map((h) => ({ name: h.name, value: h.value }));
  }

  /** Position in `entries` of the index-th (1-based, 0 = 1) header named `name` (tombstones count), or -1. */
  private position(name: string, index: number): number {
    let left = Math.max(1, index);
    for (let i = 0; i < this.entries.length; i++) {
      if (sameName(this.entries[i].name, name) && --left === 0) return i;
    }
    return -1;
  }
}

// ---------------------------------------------------------------------------------------------
// Diff

/** Alignment of `orig` and `final`: for each final header, the orig header it keeps or changes. */
type Pairing = Int32Array; // final index → orig index, or -1 for a new header

/**
 * Pair final headers with original ones, preserving order, maximising 2 points per header kept
 * as it is and 1 per header whose value (or name case) changes. A header with an empty value
 * cannot be reached by a change (`m` with an empty value deletes), so it is always inserted.
 */
function align(orig: readonly Header[], final: readonly Header[]): Pairing {
  const pairing = new Int32Array(final.length).fill(-1);
  // Equal heads and tails are the common case (no or few changes): pair them directly.
  let head = 0;
  while (head < orig.length && head < final.length && equal(orig[head], final[head])) pairing[head] = head++;
  let tail = 0;
  while (
    tail < orig.length - head && tail < final.length - head &&
    equal(orig[orig.length - 1 - tail], final[final.length - 1 - tail])
  ) {
    pairing[final.length - 1 - tail] = orig.length - 1 - tail;
    tail++;
  }
  const n = orig.length - head - tail;
  const m = final.length - head - tail;
  if (n === 0 || m === 0) return pairing;
  // Weighted LCS over the middle part: score[i][j] for orig[head+i..], final[head+j..].
  const w = m + 1;
  const score = new Int32Array((n + 1) * w);
  const weight = (i: number, j: number): number => {
    const o = orig[head + i];
    const f = final[head + j];
    // hidden entries always pair with themselves: the MTA cannot move or delete them
    if (equal(o, f)) return isHidden(o) ? HIDDEN_WEIGHT : 2;
    return sameName(o.name, f.name) && f.value !== "" ? 1 : 0;
  };
  for (let i = n - 1; i >= 0; i--) {
    for (let j = m - 1; j >= 0; j--) {
      const k = weight(i, j);
      const take = k > 0 ? k + score[(i + 1) * w + j + 1] : 0;
      score[i * w + j] = Math.max(take, score[(i + 1) * w + j], score[i * w + j + 1]);
    }
  }
  let i = 0;
  let j = 0;
  while (i < n && j < m) {
    const k = weight(i, j);
    if (k > 0 && score[i * w + j] === k + score[(i + 1) * w + j + 1]) {
      pairing[head + j] = head + i;
      i++;
      j++;
    } else if (score[(i + 1) * w + j] >= score[i * w + j + 1]) i++;
    else j++;
  }
  return pairing;
}

/** Outweighs any number of ordinary pairs (2 points each). */
const HIDDEN_WEIGHT = 1 << 20;

function equal(a: Header, b: Header): boolean {
  return a.name === b.name && a.value === b.value;
}

/** One header of the MTA's list while the packets are being worked out. */
interface Slot {
  name: string;
  /** Index of the final header this slot becomes; -1 = to be deleted. */
  final: number;
}

/** 1-based index of slots[pos] among the slots of its name before it. */
function nameIndex(slots: readonly Slot[], pos: number): number {
  let k = 1;
  const name = slots[pos].name;
  for (let i = 0; i < pos; i++) if (sameName(slots[i].name, name)) k++;
  return k;
}

/**
 * Packets that turn the MTA's header list `orig` (as the manager received it) into `final`
 * (see the file comment for the MTA semantics assumed). Both are whole lists (HeaderList.all):
 * hidden entries are never changed or deleted, and an `i` index counts them. No change → no packet.
 */
export function diffHeaders(orig: readonly Header[], final: readonly Header[]): HeaderPacket[] {
  const packets: HeaderPacket[] = [];
  if (orig.length === final.length && orig.every((h, i) => equal(h, final[i]))) return packets;
  const pairing = align(orig, final);
  const slots: Slot[] = orig.map((h) => ({ name: h.name, final: -1 }));

  // 1. Changes: nothing has moved yet, so indexes are those of the original list.
  for (let j = 0; j < final.length; j++) {
    const o = pairing[j];
    if (o < 0) continue;
    slots[o].final = j;
    if (equal(orig[o], final[j])) continue;
    packets.push({ type: "chgheader", index: nameIndex(slots, o), name: final[j].name, value: final[j].value });
    slots[o].name = final[j].name;
  }

  // 2. New headers, in final order, each right after the slot of the final header before it.
  let cursor = 0; // position just after the last placed final header
  for (let j = 0; j < final.length; j++) {
    if (pairing[j] >= 0) {
      while (slots[cursor].final !== j) cursor++;
      cursor++;
      continue;
    }
    const { name, value } = final[j];
    if (cursor === slots.length) packets.push({ type: "addheader", name, value });
    else packets.push({ type: "insheader", index: cursor, name, value });
    slots.splice(cursor, 0, { name, final: j });
    cursor++;
  }

  // 3. Deletes, last position first, so no index has shifted in either MTA.
  for (let pos = slots.length - 1; pos >= 0; pos--) {
    if (slots[pos].final >= 0) continue;
    packets.push({ type: "chgheader", index: nameIndex(slots, pos), name: slots[pos].name, value: "" });
    slots.splice(pos, 1);
  }
  return packets;
}

// ---------------------------------------------------------------------------------------------
// Leading space (manager.md §2.5.6)

/** A value from the MTA (with its leading space) for a child that did not ask for it. */
export function stripLeadingSpace(value: string): string {
  return value.charCodeAt(0) === 0x20 ? value.slice(1) : value;
}

/** A value from a child that did not ask for leading spaces, for the MTA that keeps them. */
export function addLeadingSpace(value: string): string {
  return value.charCodeAt(0) === 0x20 ? value : ` ${value}`;
}
