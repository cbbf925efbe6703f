// The manager's header list for one message, and the diff that tells the MTA how to turn its
// headers into the manager's (manager.md §2.5.3). Pure, no I/O.
//
// The model follows milter-manager, so that later children see what the fixtures say they see:
// - add (`h`): inserted just before the first header of the same name, otherwise appended;
// - insert (`i`): 0-based position in the visible list, past the end appends;
// - change/delete (`m`): 1-based among headers of that name (index 0 counts as 1), empty value
//   deletes, a missing occurrence makes a change an add and a delete a no-op.
// Names are compared case-insensitively (as MTAs do; milter-manager compares them exactly).
// Values are kept as the MTA sends them (with the leading space when HDR_LEADSPC was agreed).
//
// The diff (diffHeaders) is ours, not milter-manager's: an MTA applying it with Postfix's
// semantics ends with exactly the manager's final list (milter-manager's can leave another order,
// e.g. delete-header-many). What it assumes about the MTA (protocol.md §3.3):
// - `i` index counts the MTA's own invisible Received: header at the top, so "before visible
//   header p" is index p + 1 (Postfix: 0 = before Received, 1 = right after it);
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

function sameName(a: string, b: string): boolean {
  return a.length === b.length && (a === b || a.toLowerCase() === b.toLowerCase());
}

/** The header list of the message being processed, with milter-manager's editing rules. */
export class HeaderList {
  readonly items: Header[];

  constructor(items: Header[] = []) {
    this.items = items;
  }

  get length(): number {
    return this.items.length;
  }

  /** A header as received from the MTA. */
  append(name: string, value: string): void {
    this.items.push({ name, value });
  }

  /** `h` from a child: before the first header of the same name, else at the end. */
  add(name: string, value: string): void {
    const i = this.items.findIndex((h) => sameName(h.name, name));
    if (i < 0) this.items.push({ name, value });
    else this.items.splice(i, 0, { name, value });
  }

  /** `i` from a child: at 0-based position `index` of the visible list. */
  insert(index: number, name: string, value: string): void {
    this.items.splice(Math.min(index, this.items.length), 0, { name, value });
  }

  /** `m` from a child; an empty value deletes. */
  change(name: string, index: number, value: string): void {
    if (value === "") return this.delete(name, index);
    const i = this.position(name, index);
    if (i < 0) this.add(name, value);
    else this.items[i] = { name, value };
  }

  /** `m` with an empty value: remove the index-th header of that name, if there is one. */
  delete(name: string, index: number): void {
    const i = this.position(name, index);
    if (i >= 0) this.items.splice(i, 1);
  }

  /** A copy of the current list. */
  snapshot(): Header[] {
    return this.items.map((h) => ({ name: h.name, value: h.value }));
  }

  /** Position of the index-th (1-based, 0 = 1) header named `name`, or -1. */
  private position(name: string, index: number): number {
    let left = Math.max(1, index);
    for (let i = 0; i < this.items.length; i++) {
      if (sameName(this.items[i].name, name) && --left === 0) return i;
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
    if (equal(o, f)) return 2;
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
 * (see the file comment for the MTA semantics assumed). No change → no packet.
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
    else packets.push({ type: "insheader", index: cursor + 1, name, value }); // +1: the MTA's Received:
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
