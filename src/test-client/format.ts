/**
 * milter-test-client's output, as pure functions: the text lines of the
 * original (docs/tools.md §1.3) and one JSON object per event (--json).
 *
 * Text mode writes wire bytes unchanged (strings are latin1, one char per
 * byte). JSON mode carries the same latin1 strings, so a byte 0xE4 appears as
 * U+00E4; encode a value as latin1 to get the wire bytes back.
 */
import {
  ACTION_FLAGS,
  type ConnectCommand,
  flagNicknames,
  type Macros,
  macroKey,
  type OptnegCommand,
  PROTOCOL_FLAGS,
} from "../milter/index.ts";

/** `inet:PORT@[IPv4]`, `inet6:PORT@[IPv6]` (Sendmail's `IPv6:` tag removed), `unix:PATH` or `unknown`. */
export function connectSpec(cmd: ConnectCommand): string {
  switch (cmd.family) {
    case "4":
      return `inet:${cmd.port}@[${cmd.address}]`;
    case "6":
      return `inet6:${cmd.port}@[${cmd.address.replace(/^IPv6:/i, "")}]`;
    case "L":
      return `unix:${cmd.address}`;
    default:
      return "unknown";
  }
}

/** `macros:` block (names without braces, in wire order), or "" when there are none. */
export function macrosText(macros: Macros | undefined): string {
  if (!macros || macros.size === 0) return "";
  let s = "macros:\n";
  for (const [k, v] of macros) s += `  ${macroKey(k)}=${v}\n`;
  return s;
}

export function negotiateLine(offer: OptnegCommand): string {
  const action = flagNicknames(offer.actions, ACTION_FLAGS).join("|");
  const step = flagNicknames(offer.protocol, PROTOCOL_FLAGS).join("|");
  return `negotiate: version=<${offer.version}>, action=<${action}>, step=<${step}>\n`;
}

/** Macros as a plain object for JSON (names without braces, wire order). */
export function macrosObject(macros: Macros | undefined): Record<string, string> | undefined {
  if (!macros || macros.size === 0) return undefined;
  const o: Record<string, string> = {};
  for (const [k, v] of macros) o[macroKey(k)] = v;
  return o;
}

/** One JSON line: `{"event":…,"session":…,"pid":…,…fields,"macros":{…}}`. */
export function jsonLine(event: string, session: number, fields: Record<string, unknown>, macros?: Macros): string {
  const m = macrosObject(macros);
  const o: Record<string, unknown> = { event, session, pid: process.pid, ...fields };
  if (m) o.macros = m;
  return `${JSON.stringify(o)}\n`;
}

/** Bytes as a latin1 string (one char per byte). */
export function latin1(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("latin1");
}
