/**
 * MTA → milter commands as typed values, with their decoder and encoders.
 *
 * Style: `decodeCommand(code, payload)` returns an MtaCommand or throws
 * MilterProtocolError; encoders return one Buffer holding one or many whole
 * packets (exact size, one allocation) and throw MilterProtocolError for values
 * that cannot be put on the wire. Strings are latin1 (one byte per character);
 * body chunks stay bytes. Decoded values own their data (nothing aliases the
 * reader's buffer).
 */
import { asBuffer, hexPreview, isCstrSafe, readLatin1, readU16, readU32, writeU16, writeU32 } from "./bytes.ts";
import {
  type ConnectFamily,
  MILTER_CHUNK_SIZE,
  MILTER_LEN_BYTES,
  MILTER_MAX_DATA_SIZE,
  MILTER_OPTLEN,
  SMFIC_ABORT,
  SMFIC_BODY,
  SMFIC_BODYEOB,
  SMFIC_CONNECT,
  SMFIC_DATA,
  SMFIC_EOH,
  SMFIC_HEADER,
  SMFIC_HELO,
  SMFIC_MACRO,
  SMFIC_MAIL,
  SMFIC_OPTNEG,
  SMFIC_QUIT,
  SMFIC_QUIT_NC,
  SMFIC_RCPT,
  SMFIC_UNKNOWN,
  codeLabel,
  COMMAND_CODE,
  commandName,
} from "./constants.ts";
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

/** Macro name → value, names exactly as on the wire (`j`, `{daemon_name}`), in wire order. */
export type Macros = ReadonlyMap<string, string>;

/** `O`: the MTA's offer (exactly three u32 words). */
export interface OptnegCommand {
  type: "optneg";
  version: number;
  /** SMFIF_* actions the MTA can perform. */
  actions: number;
  /** SMFIP_* protocol bits the MTA understands (may include SMFIP_MDS_* bits). */
  protocol: number;
}
/** `D`: macros for the command that follows; never answered. */
export interface MacroCommand {
  type: "macro";
  /** Letter of the command the macros belong to ("C", "H", "M", "R", "T", "L", "N", "B", "E", "U", or any other byte). */
  command: string;
  macros: Macros;
}
/** `C` for a TCP (4/6) or unix-domain (L) client: host name, family, port, address text. */
export interface ConnectCommandInet {
  type: "connect";
  /** Client host name as the MTA reports it: a name, `[addr]`, `unknown`, `localhost`, possibly empty. */
  hostname: string;
  family: "4" | "6" | "L";
  /** Client port (0 for unix-domain). */
  port: number;
  /** Address text exactly as sent (`192.0.2.1`, `::1`, `IPv6:2001:db8::1`, a socket path). */
  address: string;
}
/** `C` with family 'U' (unknown): no port, no address. */
export interface ConnectCommandUnknown {
  type: "connect";
  hostname: string;
  family: "U";
}
export type ConnectCommand = ConnectCommandInet | ConnectCommandUnknown;
/** `H`: the HELO/EHLO argument exactly as given. */
export interface HeloCommand {
  type: "helo";
  hostname: string;
}
/** `M`: the MAIL FROM address as sent (usually with `<>`) and its ESMTP parameters, one string each. */
export interface MailCommand {
  type: "mail";
  address: string;
  args: readonly string[];
}
/** `R`: one RCPT TO address as sent and its ESMTP parameters. */
export interface RcptCommand {
  type: "rcpt";
  address: string;
  args: readonly string[];
}
/** `T`: DATA (protocol version ≥ 4). */
export interface DataCommand {
  type: "data";
}
/** `L`: one header field; value as on the wire (folded lines joined by LF; leading space only with HDR_LEADSPC). */
export interface HeaderCommand {
  type: "header";
  name: string;
  value: string;
}
/** `N`: end of headers. */
export interface EohCommand {
  type: "eoh";
}
/** `B`: one body chunk, 1..max data size bytes. */
export interface BodyCommand {
  type: "body";
  chunk: Uint8Array;
}
/** `E`: end of message; `chunk` only if the MTA put body data into it (libmilter accepts that; never send it). */
export interface EobCommand {
  type: "eob";
  chunk?: Uint8Array;
}
/** `A`: abort the current message; never answered. */
export interface AbortCommand {
  type: "abort";
}
/** `Q`: quit; never answered, the MTA closes the connection. */
export interface QuitCommand {
  type: "quit";
}
/** `K`: quit, a new SMTP session follows on this connection (v6); never answered. */
export interface QuitNcCommand {
  type: "quit_nc";
}
/** `U`: an SMTP command the MTA does not know (Postfix: the verb; Sendmail: the whole line). */
export interface UnknownCommand {
  type: "unknown";
  commandLine: string;
}

/** Any MTA → milter packet. Discriminate on `type`. */
export type MtaCommand =
  | OptnegCommand
  | MacroCommand
  | ConnectCommand
  | HeloCommand
  | MailCommand
  | RcptCommand
  | DataCommand
  | HeaderCommand
  | EohCommand
  | BodyCommand
  | EobCommand
  | AbortCommand
  | QuitCommand
  | QuitNcCommand
  | UnknownCommand;

/** The command variant with a given `type`, e.g. `CommandOf<"connect">`. */
export type CommandOf<T extends MtaCommand["type"]> = Extract<MtaCommand, { type: T }>;

// Compile-time check that the union and COMMAND_CODE name the same commands.
type SameKeys<A, B> = [A] extends [B] ? ([B] extends [A] ? true : never) : never;
const _commandTypesMatch: SameKeys<MtaCommand["type"], keyof typeof COMMAND_CODE> = true;
void _commandTypesMatch;

// ---------------------------------------------------------------------------
// Decoding

/**
 * Decode the data of one MTA → milter packet. `payload` is the data after the
 * command byte (as delivered by PacketReader). Throws MilterProtocolError:
 * `unknown-command` for a byte that is not a command, `malformed` for a layout
 * error (missing NUL, wrong length, bad family, trailing bytes, empty body).
 */
export function decodeCommand(code: number, payload: Uint8Array): MtaCommand {
  const p = asBuffer(payload);
  switch (code) {
    case SMFIC_OPTNEG: {
      if (p.length !== MILTER_OPTLEN) {
        malformed(commandName, code, `expected ${MILTER_OPTLEN} data bytes, got ${p.length}`, p);
      }
      return { type: "optneg", version: readU32(p, 0), actions: readU32(p, 4), protocol: readU32(p, 8) };
    }
    case SMFIC_MACRO:
      return decodeMacro(p);
    case SMFIC_CONNECT:
      return decodeConnect(p);
    case SMFIC_HELO:
      return { type: "helo", hostname: onlyCstr(p, 0, commandName, code, "HELO argument") };
    case SMFIC_MAIL:
    case SMFIC_RCPT: {
      if (p.length === 0) malformed(commandName, code, "missing address");
      const [address, ...args] = cstrList(p, 0, commandName, code, "string");
      return code === SMFIC_MAIL ? { type: "mail", address, args } : { type: "rcpt", address, args };
    }
    case SMFIC_HEADER: {
      const nul = p.indexOf(0);
      if (nul < 0) malformed(commandName, code, "header name is not NUL-terminated", p);
      return { type: "header", name: readLatin1(p, 0, nul), value: onlyCstr(p, nul + 1, commandName, code, "header value") };
    }
    case SMFIC_BODY:
      if (p.length === 0) malformed(commandName, code, "empty body chunk");
      return { type: "body", chunk: copyBytes(p) };
    case SMFIC_BODYEOB:
      return p.length === 0 ? { type: "eob" } : { type: "eob", chunk: copyBytes(p) };
    case SMFIC_UNKNOWN:
      return { type: "unknown", commandLine: onlyCstr(p, 0, commandName, code, "command") };
    case SMFIC_DATA:
      expectEmpty(p, commandName, code);
      return { type: "data" };
    case SMFIC_EOH:
      expectEmpty(p, commandName, code);
      return { type: "eoh" };
    case SMFIC_ABORT:
      expectEmpty(p, commandName, code);
      return { type: "abort" };
    case SMFIC_QUIT:
      expectEmpty(p, commandName, code);
      return { type: "quit" };
    case SMFIC_QUIT_NC:
      expectEmpty(p, commandName, code);
      return { type: "quit_nc" };
    default:
      throw new MilterProtocolError(
        "unknown-command",
        `unknown command ${codeLabel(code)} from the MTA; data ${hexPreview(p)}`,
        code,
      );
  }
}

function decodeMacro(p: Buffer): MacroCommand {
  if (p.length === 0) malformed(commandName, SMFIC_MACRO, "missing the command byte the macros belong to");
  const command = String.fromCharCode(p[0]);
  const macros = new Map<string, string>();
  if (p.length > 1) {
    if (p[p.length - 1] !== 0) malformed(commandName, SMFIC_MACRO, "last macro string is not NUL-terminated", p);
    let pos = 1;
    while (pos < p.length) {
      const n = p.indexOf(0, pos);
      if (n === p.length - 1) {
        malformed(commandName, SMFIC_MACRO, `macro ${JSON.stringify(readLatin1(p, pos, n))} has no value`, p);
      }
      const v = p.indexOf(0, n + 1);
      macros.set(readLatin1(p, pos, n), readLatin1(p, n + 1, v));
      pos = v + 1;
    }
  }
  return { type: "macro", command, macros };
}

function decodeConnect(p: Buffer): ConnectCommand {
  const code = SMFIC_CONNECT;
  const nul = p.indexOf(0);
  if (nul < 0) malformed(commandName, code, "host name is not NUL-terminated", p);
  const hostname = readLatin1(p, 0, nul);
  if (nul + 1 >= p.length) malformed(commandName, code, "missing address family", p);
  const fam = p[nul + 1];
  switch (fam) {
    case 0x55: // 'U'
      if (nul + 2 !== p.length) malformed(commandName, code, `${p.length - nul - 2} trailing byte(s) after family 'U'`, p);
      return { type: "connect", hostname, family: "U" };
    case 0x34: // '4'
    case 0x36: // '6'
    case 0x4c: {
      // 'L'
      if (nul + 4 > p.length) malformed(commandName, code, "missing port", p);
      const port = readU16(p, nul + 2);
      const address = onlyCstr(p, nul + 4, commandName, code, "address");
      return { type: "connect", hostname, family: String.fromCharCode(fam) as "4" | "6" | "L", port, address };
    }
    default:
      return malformed(commandName, code, `unknown address family ${codeLabel(fam)}`, p);
  }
}

// ---------------------------------------------------------------------------
// Encoding

/**
 * Data bytes of a command's packet (command byte excluded); validates the
 * value and throws MilterProtocolError "malformed" if it cannot be encoded.
 */
export function commandDataSize(cmd: MtaCommand): number {
  const code = COMMAND_CODE[cmd.type];
  if (typeof code !== "number") {
    throw new MilterProtocolError("malformed", `cannot encode: unknown command type ${JSON.stringify(cmd.type)}`);
  }
  switch (cmd.type) {
    case "optneg":
      checkU32(cmd.version, commandName, code, "version");
      checkU32(cmd.actions, commandName, code, "actions");
      checkU32(cmd.protocol, commandName, code, "protocol");
      return MILTER_OPTLEN;
    case "macro": {
      const c = cmd.command;
      if (typeof c !== "string" || c.length !== 1 || c.charCodeAt(0) > 0xff) {
        malformed(commandName, code, `cannot encode: command ${JSON.stringify(c)} is not one latin1 character`);
      }
      let n = 1;
      for (const [name, value] of cmd.macros) {
        n += cstrSize(name, commandName, code, "macro name");
        if (typeof value !== "string" || !isCstrSafe(value)) cstrSize(value, commandName, code, `value of macro ${name}`); // throws
        n += value.length + 1;
      }
      return n;
    }
    case "connect": {
      const n = cstrSize(cmd.hostname, commandName, code, "host name") + 1;
      if (cmd.family === "U") return n;
      if (cmd.family !== "4" && cmd.family !== "6" && cmd.family !== "L") {
        malformed(commandName, code, `cannot encode: unknown family ${JSON.stringify((cmd as { family: unknown }).family)}`);
      }
      if (!Number.isInteger(cmd.port) || cmd.port < 0 || cmd.port > 0xffff) {
        malformed(commandName, code, `cannot encode: port ${cmd.port} is not a u16`);
      }
      return n + 2 + cstrSize(cmd.address, commandName, code, "address");
    }
    case "helo":
      return cstrSize(cmd.hostname, commandName, code, "HELO argument");
    case "mail":
    case "rcpt": {
      let n = cstrSize(cmd.address, commandName, code, "address");
      for (const a of cmd.args) n += cstrSize(a, commandName, code, "ESMTP argument");
      return n;
    }
    case "header":
      return cstrSize(cmd.name, commandName, code, "header name") + cstrSize(cmd.value, commandName, code, "header value");
    case "body":
      checkBytes(cmd.chunk, commandName, code, "chunk");
      if (cmd.chunk.length === 0) malformed(commandName, code, "cannot encode an empty body chunk (use splitBody)");
      return cmd.chunk.length;
    case "eob":
      if (cmd.chunk === undefined) return 0;
      checkBytes(cmd.chunk, commandName, code, "chunk");
      return cmd.chunk.length;
    case "unknown":
      return cstrSize(cmd.commandLine, commandName, code, "command");
    case "data":
    case "eoh":
    case "abort":
    case "quit":
    case "quit_nc":
      return 0;
    default:
      return cmd satisfies never;
  }
}

/** Write a command validated by commandDataSize at `off` in `buf`; returns the offset after it. */
function writeCommand(buf: Buffer, off: number, cmd: MtaCommand): number {
  const start = off;
  off += MILTER_LEN_BYTES + 1;
  switch (cmd.type) {
    case "optneg":
      off = writeU32(buf, off, cmd.version);
      off = writeU32(buf, off, cmd.actions);
      off = writeU32(buf, off, cmd.protocol);
      break;
    case "macro":
      buf[off++] = cmd.command.charCodeAt(0);
      for (const [name, value] of cmd.macros) off = putCstr(buf, putCstr(buf, off, name), value);
      break;
    case "connect":
      off = putCstr(buf, off, cmd.hostname);
      buf[off++] = cmd.family.charCodeAt(0);
      if (cmd.family !== "U") {
        off = writeU16(buf, off, cmd.port);
        off = putCstr(buf, off, cmd.address);
      }
      break;
    case "helo":
      off = putCstr(buf, off, cmd.hostname);
      break;
    case "mail":
    case "rcpt":
      off = putCstr(buf, off, cmd.address);
      for (const a of cmd.args) off = putCstr(buf, off, a);
      break;
    case "header":
      off = putCstr(buf, putCstr(buf, off, cmd.name), cmd.value);
      break;
    case "body":
      off = putBytes(buf, off, cmd.chunk);
      break;
    case "eob":
      if (cmd.chunk) off = putBytes(buf, off, cmd.chunk);
      break;
    case "unknown":
      off = putCstr(buf, off, cmd.commandLine);
      break;
  }
  return closePacket(buf, start, COMMAND_CODE[cmd.type], off);
}

const CODEC: PacketCodec<MtaCommand> = {
  code: (v) => COMMAND_CODE[v.type],
  label: commandName,
  dataSize: commandDataSize,
  write: writeCommand,
};

/**
 * Encode several commands into one Buffer (exact size, one allocation) so a
 * protocol step (macros + command) goes out in one socket write. Throws
 * MilterProtocolError: "malformed" for a value that cannot be encoded,
 * "oversize" if a packet's data exceeds `maxDataSize` (default 65535, the
 * negotiated maximum otherwise).
 */
export function encodeCommands(cmds: readonly MtaCommand[], maxDataSize = MILTER_MAX_DATA_SIZE): Buffer {
  return encodeBatch(cmds, CODEC, maxDataSize);
}

/** Encode one command (see encodeCommands). */
export function encodeCommand(cmd: MtaCommand, maxDataSize = MILTER_MAX_DATA_SIZE): Buffer {
  return encodeBatch([cmd], CODEC, maxDataSize);
}

/**
 * Encode a raw packet from a code byte and data, without any validation of the
 * data layout (for tests and tools that must send exactly these bytes).
 */
export function encodePacket(code: number, data: Uint8Array = new Uint8Array(0)): Buffer {
  const buf = Buffer.allocUnsafe(MILTER_LEN_BYTES + 1 + data.length);
  buf.set(data, MILTER_LEN_BYTES + 1);
  closePacket(buf, 0, code, buf.length);
  return buf;
}

// ---------------------------------------------------------------------------
// Helpers

/**
 * Cut a body into chunks of at most `max` bytes (views, no copy), never an
 * empty one: an empty body gives []. Use the negotiated max data size.
 */
export function splitBody(body: Uint8Array, max: number = MILTER_CHUNK_SIZE): Uint8Array[] {
  if (!Number.isInteger(max) || max < 1) throw new RangeError(`splitBody: chunk size ${max} must be a positive integer`);
  const out: Uint8Array[] = [];
  for (let off = 0; off < body.length; off += max) out.push(body.subarray(off, Math.min(off + max, body.length)));
  return out;
}

/** `B` commands for a whole body (see splitBody); an empty body gives []. */
export function bodyCommands(body: Uint8Array, max: number = MILTER_CHUNK_SIZE): BodyCommand[] {
  return splitBody(body, max).map((chunk) => ({ type: "body", chunk }));
}

/** Strip one pair of angle brackets (`<a@example.com>` → `a@example.com`); other input is returned unchanged. */
export function stripAngleBrackets(address: string): string {
  return address.length >= 2 && address.charCodeAt(0) === 0x3c && address.charCodeAt(address.length - 1) === 0x3e
    ? address.slice(1, -1)
    : address;
}

/** Family letter as typed value: `"4"`, `"6"`, `"L"` or `"U"`; undefined for other text. */
export function asConnectFamily(s: string): ConnectFamily | undefined {
  return s === "4" || s === "6" || s === "L" || s === "U" ? s : undefined;
}

