/**
 * `--verbose`: a protocol trace of every packet in both directions, decoded
 * and in hex, for MilterClient's `trace` hook. `>` = we sent, `<` = the
 * milter sent.
 */
import {
  MILTER_MDS_1M,
  PacketReader,
  codeLabel,
  commandName,
  decodeCommands,
  decodeReply,
  replyName,
  REPLY_CODE,
  COMMAND_CODE,
  type MilterReply,
  type MtaCommand,
} from "../milter/index.ts";

const HEX_LIMIT = 128;

function hex(b: Uint8Array): string {
  const buf = Buffer.from(b.buffer, b.byteOffset, b.byteLength);
  const h = buf.subarray(0, HEX_LIMIT).toString("hex");
  return buf.length > HEX_LIMIT ? `${h}… (${buf.length} bytes)` : h;
}

const q = (s: string) => JSON.stringify(s);

export function describeCommand(c: MtaCommand): string {
  const name = commandName(COMMAND_CODE[c.type]);
  switch (c.type) {
    case "optneg":
      return `${name} version=${c.version} actions=0x${c.actions.toString(16)} protocol=0x${c.protocol.toString(16)}`;
    case "macro":
      return `${name} ${c.command} ${[...c.macros].map(([k, v]) => `${k}=${q(v)}`).join(" ")}`.trimEnd();
    case "connect":
      return c.family === "U" ? `${name} host=${q(c.hostname)} family=U` : `${name} host=${q(c.hostname)} family=${c.family} port=${c.port} address=${q(c.address)}`;
    case "helo":
      return `${name} ${q(c.hostname)}`;
    case "mail":
    case "rcpt":
      return `${name} ${q(c.address)}${c.args.map((a) => ` ${q(a)}`).join("")}`;
    case "header":
      return `${name} ${q(c.name)}: ${q(c.value)}`;
    case "body":
      return `${name} ${c.chunk.length} bytes`;
    case "eob":
      return c.chunk ? `${name} ${c.chunk.length} bytes` : name;
    case "unknown":
      return `${name} ${q(c.commandLine)}`;
    default:
      return name;
  }
}

export function describeReply(r: MilterReply): string {
  const name = replyName(REPLY_CODE[r.type]);
  switch (r.type) {
    case "optneg":
      return `${name} version=${r.version} actions=0x${r.actions.toString(16)} protocol=0x${r.protocol.toString(16)}${(r.macroLists ?? []).map((l) => ` list${l.stage}=${q(l.macros)}`).join("")}`;
    case "replycode":
      return `${name} ${q(r.text)}`;
    case "addheader":
      return `${name} ${q(r.name)}: ${q(r.value)}`;
    case "insheader":
    case "chgheader":
      return `${name} #${r.index} ${q(r.name)}: ${q(r.value)}`;
    case "replbody":
      return `${name} ${r.chunk.length} bytes`;
    case "addrcpt":
    case "delrcpt":
      return `${name} ${q(r.address)}`;
    case "addrcpt_par":
    case "chgfrom":
      return `${name} ${q(r.address)}${r.args !== undefined ? ` ${q(r.args)}` : ""}`;
    case "quarantine":
      return `${name} ${q(r.reason)}`;
    case "setsymlist":
      return `${name} stage=${r.stage} ${q(r.macros)}`;
    default:
      return name;
  }
}

/** A trace hook writing lines through `write` (prefix identifies the session when several run). */
export function makeTracer(write: (line: string) => void, prefix = ""): (direction: "send" | "receive", bytes: Uint8Array) => void {
  const reader = new PacketReader({ maxDataSize: MILTER_MDS_1M * 64 });
  return (direction, bytes) => {
    if (direction === "send") {
      let cmds: MtaCommand[];
      try {
        cmds = decodeCommands(bytes, MILTER_MDS_1M * 64);
      } catch (e) {
        write(`${prefix}> (undecodable: ${(e as Error).message})\n${prefix}  ${hex(bytes)}\n`);
        return;
      }
      for (const c of cmds) write(`${prefix}> ${describeCommand(c)}\n`);
      write(`${prefix}  ${hex(bytes)}\n`);
      return;
    }
    try {
      reader.push(bytes, (code, payload) => {
        let d: string;
        try {
          d = describeReply(decodeReply(code, payload));
        } catch (e) {
          d = `${codeLabel(code)} (undecodable: ${(e as Error).message})`;
        }
        const packet = Buffer.allocUnsafe(5 + payload.length);
        packet.writeUInt32BE(payload.length + 1, 0);
        packet[4] = code;
        packet.set(payload, 5);
        write(`${prefix}< ${d}\n${prefix}  ${hex(packet)}\n`);
      });
    } catch (e) {
      write(`${prefix}< (framing error: ${(e as Error).message})\n${prefix}  ${hex(bytes)}\n`);
    }
  };
}
