// A tiny MTA header model for tests: applies header packets (h, i, m) with Postfix's semantics
// (protocol.md §3.3), or Sendmail's for deletes, so tests can check what the MTA ends with.
import type { Header, HeaderPacket } from "../../../src/manager/headers.ts";
import type { ModificationReply } from "../../../src/milter/index.ts";

interface MtaHeader extends Header {
  /** The MTA's own Received: header: counted by `i`, invisible to milters and to `m`. */
  hidden?: boolean;
  /** Sendmail: deleted, but still counted by `m` until the end of the message. */
  tombstone?: boolean;
}

/**
 * The list starts with the MTA's own Received: header; `h` appends; `i` inserts before position
 * `index` of the whole list (past the end appends); `m` finds the index-th visible header of that
 * name (case-insensitive, 0 = 1): empty value deletes (later indexes shift, or a tombstone with
 * `sendmail`), a missing one is appended (change) or ignored (delete).
 */
export function applyHeaderPackets(
  orig: readonly Header[],
  packets: readonly (HeaderPacket | ModificationReply)[],
  opts: { sendmail?: boolean; full?: boolean } = {},
): Header[] {
  // full: `orig` is a whole list whose hidden entries are named ":..." (HeaderList.all); the result keeps them too
  const list: MtaHeader[] = opts.full
    ? orig.map((h) => ({ ...h, hidden: h.name.startsWith(":") }))
    : [{ name: "Received", value: "by mta", hidden: true }, ...orig.map((h) => ({ ...h }))];
  for (const p of packets) {
    if (p.type === "addheader") list.push({ name: p.name, value: p.value });
    else if (p.type === "insheader") list.splice(Math.min(p.index, list.length), 0, { name: p.name, value: p.value });
    else if (p.type === "chgheader") {
      let left = Math.max(1, p.index);
      const pos = list.findIndex((h) => !h.hidden && h.name.toLowerCase() === p.name.toLowerCase() && --left === 0);
      if (pos < 0 || list[pos].tombstone) {
        if (p.value !== "" && pos < 0) list.push({ name: p.name, value: p.value });
        continue;
      }
      if (p.value === "") {
        if (opts.sendmail) list[pos].tombstone = true;
        else list.splice(pos, 1);
      } else list[pos] = { name: p.name, value: p.value };
    }
  }
  return list.filter((h) => (opts.full || !h.hidden) && !h.tombstone).map(({ name, value }) => ({ name, value }));
}
