// smtp-sink's dump files: one file per transaction in Postfix smtp-sink's
// layout, so readers of either sink's dumps work on both:
//
//   [the -S string]
//   X-Client-Addr: 127.0.0.1          (IPv6 as "ipv6:::1", unix sockets as "local")
//   X-Client-Proto: SMTP | ESMTP | LMTP
//   X-Helo-Args: client.example       (when HELO/EHLO/LHLO had an argument)
//   X-Mail-Args: <a@example.test>     (everything after "MAIL FROM:")
//   X-Rcpt-Args: <b@example.test>     (one per accepted RCPT, after "RCPT TO:")
//   Received: from client.example ([127.0.0.1])
//   \tby smtp-sink (smtp-sink) with SMTP id 0000002a;
//   \tSun, 22 Nov 2026 03:04:51 +0000 (UTC)
//   <the message as received, dot-unstuffed, CRLF turned into LF>
//   <one empty line>
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { rfc5322Date } from "./message.ts";

export interface DumpEnvelope {
  clientAddr: string;
  proto: "SMTP" | "ESMTP" | "LMTP";
  helo?: string;
  mailArgs: string;
  rcptArgs: string[];
  hostname: string;
  id: string;
  date: Date;
}

/** The dump record of one transaction; `message` is the data as received (CRLF lines, unstuffed). */
export function formatDump(env: DumpEnvelope, message: Uint8Array, prefix = ""): Buffer {
  let head = prefix;
  head += `X-Client-Addr: ${env.clientAddr}\n`;
  head += `X-Client-Proto: ${env.proto}\n`;
  if (env.helo) head += `X-Helo-Args: ${env.helo}\n`;
  head += `X-Mail-Args: ${env.mailArgs}\n`;
  for (const r of env.rcptArgs) head += `X-Rcpt-Args: ${r}\n`;
  const bare = env.clientAddr.startsWith("ipv6:") ? env.clientAddr.slice(5) : env.clientAddr;
  head += `Received: from ${env.helo || "unknown"} ([${bare}])\n` +
    `\tby ${env.hostname} (smtp-sink) with ${env.proto} id ${env.id};\n` +
    `\t${rfc5322Date(env.date)}\n`;
  const text = Buffer.from(message.buffer, message.byteOffset, message.byteLength).toString("latin1").replace(/\r\n/g, "\n");
  return Buffer.from(head + text + "\n", "latin1");
}

/** Undo SMTP dot-stuffing of DATA content (lines starting with "." lose that dot). */
export function unstuff(data: string): string {
  return ("\r\n" + data).replace(/\r\n\./g, "\r\n").slice(2);
}

export interface DumpRecord {
  file: string;
  prefix: string;
  clientAddr: string;
  proto: string;
  helo?: string;
  mailArgs: string;
  /** The sender address without <>. */
  from: string;
  rcptArgs: string[];
  /** Recipient addresses without <> (and without RCPT parameters). */
  recipients: string[];
  /** The Received: header smtp-sink added (unfolded). */
  received: string;
  /** The message as the client sent it: CRLF line ends, dot-unstuffed. */
  message: Buffer;
  /** The message's header fields in order, unfolded: [name, value]. */
  headers: [string, string][];
  /** The message body (after the empty line), CRLF. */
  body: string;
}

const ENVELOPE = /^X-(Client-Addr|Client-Proto|Helo-Args|Mail-Args|Rcpt-Args): ?(.*)$/;

function address(args: string): string {
  const m = /^\s*<([^>]*)>/.exec(args);
  return m ? m[1] : args.trim().split(/\s+/)[0] ?? "";
}

/** Parse one dump record (Postfix smtp-sink's or ours). */
export function parseDump(raw: Buffer | string, file = ""): DumpRecord {
  const text = typeof raw === "string" ? raw : raw.toString("latin1");
  const lines = text.split("\n");
  let i = 0;
  const prefixLines: string[] = [];
  // Anything before the first X- line is the -S prefix.
  while (i < lines.length && !ENVELOPE.test(lines[i]) && !lines[i].startsWith("Received:")) prefixLines.push(lines[i++]);
  const rec: DumpRecord = {
    file, prefix: prefixLines.length ? prefixLines.join("\n") + "\n" : "", clientAddr: "", proto: "", mailArgs: "", from: "",
    rcptArgs: [], recipients: [], received: "", message: Buffer.alloc(0), headers: [], body: "",
  };
  for (; i < lines.length; i++) {
    const m = ENVELOPE.exec(lines[i]);
    if (!m) break;
    if (m[1] === "Client-Addr") rec.clientAddr = m[2];
    else if (m[1] === "Client-Proto") rec.proto = m[2];
    else if (m[1] === "Helo-Args") rec.helo = m[2];
    else if (m[1] === "Mail-Args") rec.mailArgs = m[2];
    else rec.rcptArgs.push(m[2]);
  }
  if (i < lines.length && lines[i].startsWith("Received:")) {
    let r = lines[i++];
    while (i < lines.length && (lines[i].startsWith("\t") || lines[i].startsWith(" "))) r += " " + lines[i++].trim();
    rec.received = r;
  }
  const msgLines = lines.slice(i);
  // The file ends with "\n" after the empty line that follows the message.
  if (msgLines.length && msgLines[msgLines.length - 1] === "") msgLines.pop();
  if (msgLines.length && msgLines[msgLines.length - 1] === "") msgLines.pop();
  const message = msgLines.length ? msgLines.join("\r\n") + "\r\n" : "";
  rec.message = Buffer.from(message, "latin1");
  rec.from = address(rec.mailArgs);
  rec.recipients = rec.rcptArgs.map(address);
  const sep = message.indexOf("\r\n\r\n");
  const head = sep < 0 ? message : message.slice(0, sep + 2);
  rec.body = sep < 0 ? "" : message.slice(sep + 4);
  for (const line of head.split("\r\n")) {
    if (line === "") continue;
    if ((line.startsWith(" ") || line.startsWith("\t")) && rec.headers.length) {
      rec.headers[rec.headers.length - 1][1] += " " + line.trim();
      continue;
    }
    const c = line.indexOf(":");
    if (c > 0) rec.headers.push([line.slice(0, c), line.slice(c + 1).trim()]);
  }
  return rec;
}

export function readDumpFile(path: string): DumpRecord {
  return parseDump(readFileSync(path), path);
}

/** Every dump file of a directory, in file-name order (our names sort by arrival). */
export function readDumpDir(dir: string): DumpRecord[] {
  return readdirSync(dir).filter((f) => !f.startsWith(".")).sort().map((f) => readDumpFile(join(dir, f)));
}

/** The value of the first header `name` (case-insensitive) of a record. */
export function header(rec: DumpRecord, name: string): string | undefined {
  const n = name.toLowerCase();
  return rec.headers.find(([k]) => k.toLowerCase() === n)?.[1];
}
