/**
 * Codec micro-benchmark: decode (PacketReader + decoder) and encode (batch
 * encoders, one buffer per protocol step) for two sessions:
 *  - "postfix": a typical Postfix session as in protocol.md §7.1 with 10
 *    headers and a 2 KiB body; bytes arrive one protocol step per chunk, as
 *    over a socket in request/response mode;
 *  - "1mib": the same envelope with a 1 MiB body in 65535-byte `B` chunks,
 *    arriving in 64 KiB socket reads (so packets straddle chunks).
 * For comparison the same script times two references on the same input:
 * a naive decoder (Buffer.concat reassembly + split on NUL, as one would write
 * it without care) and a plain copy of the bytes (a lower bound).
 *
 *   bun run bench:codec          # mitata output, then a summary table
 */
import { bench, do_not_optimize, group, run } from "mitata";
import {
  MILTER_CHUNK_SIZE,
  PacketReader,
  SMFI_CURR_ACTS,
  SMFI_CURR_PROT,
  bodyCommands,
  decodeCommand,
  decodeReply,
  encodeCommands,
  encodeReplies,
  macrosFrom,
  type MilterReply,
  type MtaCommand,
} from "../src/milter/index.ts";

// ---------------------------------------------------------------------------
// Workloads: each is a list of protocol steps (packets written together).

interface Workload {
  name: string;
  commandSteps: MtaCommand[][];
  replySteps: MilterReply[][];
  /** Socket reads of the MTA → milter stream. */
  commandChunks: Uint8Array[];
  /** Socket reads of the milter → MTA stream. */
  replyChunks: Uint8Array[];
  commandPackets: number;
  replyPackets: number;
  commandBytes: number;
  replyBytes: number;
}

function session(body: Uint8Array): { commandSteps: MtaCommand[][]; replySteps: MilterReply[][] } {
  const i = "3300A21403C";
  const qid = macrosFrom({ i });
  const steps: MtaCommand[][] = [
    [{ type: "optneg", version: 6, actions: SMFI_CURR_ACTS, protocol: SMFI_CURR_PROT }],
    [
      { type: "macro", command: "C", macros: macrosFrom({ j: "mta.example.test", "{daemon_name}": "mta.example.test", "{daemon_addr}": "127.0.0.1", v: "Postfix 3.7.11", _: "localhost [127.0.0.1]" }) },
      { type: "connect", hostname: "localhost", family: "4", port: 41578, address: "127.0.0.1" },
    ],
    [{ type: "macro", command: "H", macros: new Map() }, { type: "helo", hostname: "client.example.org" }],
    [
      { type: "macro", command: "M", macros: macrosFrom({ "{mail_addr}": "sender@example.com", "{mail_host}": "example.com", "{mail_mailer}": "smtp" }) },
      { type: "mail", address: "<sender@example.com>", args: ["SIZE=4096", "BODY=8BITMIME"] },
    ],
    [
      { type: "macro", command: "R", macros: macrosFrom({ i, "{rcpt_addr}": "rcpt@example.net", "{rcpt_host}": "example.net", "{rcpt_mailer}": "smtp" }) },
      { type: "rcpt", address: "<rcpt@example.net>", args: [] },
    ],
    [{ type: "macro", command: "T", macros: qid }, { type: "data" }],
  ];
  const headers: [string, string][] = [
    ["Received", "from client.example.org (localhost [127.0.0.1])\n\tby mta.example.test (Postfix) with ESMTP id 3300A21403C\n\tfor <rcpt@example.net>; Mon,  1 Jan 2024 00:00:00 +0000 (UTC)"],
    ["From", "Sender <sender@example.com>"],
    ["To", "Recipient <rcpt@example.net>"],
    ["Subject", "Quarterly report and a few more words to make it realistic"],
    ["Date", "Mon, 1 Jan 2024 00:00:00 +0000"],
    ["Message-Id", "<20240101000000.3300A21403C@mta.example.test>"],
    ["MIME-Version", "1.0"],
    ["Content-Type", "text/plain; charset=utf-8"],
    ["Content-Transfer-Encoding", "8bit"],
    ["X-Mailer", "milterkit bench"],
  ];
  for (const [name, value] of headers) steps.push([{ type: "macro", command: "L", macros: qid }, { type: "header", name, value }]);
  steps.push([{ type: "macro", command: "N", macros: qid }, { type: "eoh" }]);
  for (const b of bodyCommands(body, MILTER_CHUNK_SIZE)) steps.push([{ type: "macro", command: "B", macros: qid }, b]);
  steps.push([{ type: "macro", command: "E", macros: qid }, { type: "eob" }]);
  steps.push([{ type: "abort" }], [{ type: "abort" }, { type: "quit" }]);

  // One reply step per command that gets an answer; EOM answers with a header and accept.
  const replySteps: MilterReply[][] = [[{ type: "optneg", version: 6, actions: SMFI_CURR_ACTS, protocol: 0 }]];
  const answered = steps.filter((s) => !["optneg", "abort", "eob", "quit"].includes(s[s.length - 1].type)).length;
  for (let k = 0; k < answered; k++) replySteps.push([{ type: "continue" }]);
  replySteps.push([{ type: "addheader", name: "X-Scanned", value: "yes" }, { type: "accept" }]);
  return { commandSteps: steps, replySteps };
}

/** Cut a stream into socket-read-sized pieces. */
function reads(stream: Uint8Array, size: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let off = 0; off < stream.length; off += size) out.push(stream.subarray(off, off + size));
  return out;
}

function workload(name: string, body: Uint8Array, readSize?: number): Workload {
  const { commandSteps, replySteps } = session(body);
  const cmdBufs = commandSteps.map((s) => encodeCommands(s));
  const repBufs = replySteps.map((s) => encodeReplies(s));
  const cmdStream = Buffer.concat(cmdBufs);
  const repStream = Buffer.concat(repBufs);
  return {
    name,
    commandSteps,
    replySteps,
    commandChunks: readSize ? reads(cmdStream, readSize) : cmdBufs,
    replyChunks: readSize ? reads(repStream, readSize) : repBufs,
    commandPackets: commandSteps.reduce((n, s) => n + s.length, 0),
    replyPackets: replySteps.reduce((n, s) => n + s.length, 0),
    commandBytes: cmdStream.length,
    replyBytes: repStream.length,
  };
}

function textBody(size: number): Buffer {
  const line = "The quick brown fox jumps over the lazy dog, again and again.\r\n";
  return Buffer.from(line.repeat(Math.ceil(size / line.length)).slice(0, size), "latin1");
}

const W = [workload("postfix", textBody(2048)), workload("1mib", textBody(1 << 20), 64 * 1024)];

// ---------------------------------------------------------------------------
// The operations measured

function decodeAllCommands(chunks: Uint8Array[]): number {
  const reader = new PacketReader();
  let n = 0;
  const on = (code: number, payload: Buffer) => {
    do_not_optimize(decodeCommand(code, payload));
    n++;
  };
  for (const c of chunks) reader.push(c, on);
  reader.finish();
  return n;
}

function decodeAllReplies(chunks: Uint8Array[]): number {
  const reader = new PacketReader();
  let n = 0;
  const on = (code: number, payload: Buffer) => {
    do_not_optimize(decodeReply(code, payload));
    n++;
  };
  for (const c of chunks) reader.push(c, on);
  reader.finish();
  return n;
}

function encodeAllCommands(steps: MtaCommand[][]): number {
  let n = 0;
  for (const s of steps) n += encodeCommands(s).length;
  return n;
}

function encodeAllReplies(steps: MilterReply[][]): number {
  let n = 0;
  for (const s of steps) n += encodeReplies(s).length;
  return n;
}

/** Reference: what a straightforward decoder looks like (concat per chunk, split strings on NUL). */
function naiveDecodeCommands(chunks: Uint8Array[]): number {
  let pending = Buffer.alloc(0);
  let n = 0;
  for (const c of chunks) {
    pending = Buffer.concat([pending, c]);
    while (pending.length >= 4) {
      const len = pending.readUInt32BE(0);
      if (pending.length < 4 + len) break;
      const code = pending[4];
      const data = Buffer.from(pending.subarray(5, 4 + len));
      pending = pending.subarray(4 + len);
      const value =
        code === 0x42 || code === 0x45
          ? { code, chunk: data }
          : code === 0x4f
            ? { code, words: [data.readUInt32BE(0), data.readUInt32BE(4), data.readUInt32BE(8)] }
            : { code, strings: data.toString("latin1").split("\0") };
      do_not_optimize(value);
      n++;
    }
  }
  return n;
}

/** Reference: copying the bytes once, nothing else. */
function copyOnly(chunks: Uint8Array[]): number {
  let n = 0;
  for (const c of chunks) {
    const copy = Buffer.from(c);
    do_not_optimize(copy);
    n += copy.length;
  }
  return n;
}

// Sanity: every path sees every packet.
for (const w of W) {
  if (decodeAllCommands(w.commandChunks) !== w.commandPackets) throw new Error(`${w.name}: command count`);
  if (decodeAllReplies(w.replyChunks) !== w.replyPackets) throw new Error(`${w.name}: reply count`);
  if (naiveDecodeCommands(w.commandChunks) !== w.commandPackets) throw new Error(`${w.name}: naive count`);
  if (encodeAllCommands(w.commandSteps) !== w.commandBytes) throw new Error(`${w.name}: encoded size`);
}

for (const w of W) {
  group(w.name, () => {
    bench(`${w.name}: decode commands`, () => decodeAllCommands(w.commandChunks));
    bench(`${w.name}: decode replies`, () => decodeAllReplies(w.replyChunks));
    bench(`${w.name}: encode commands`, () => encodeAllCommands(w.commandSteps));
    bench(`${w.name}: encode replies`, () => encodeAllReplies(w.replySteps));
    bench(`${w.name}: reference naive decode commands`, () => naiveDecodeCommands(w.commandChunks));
    bench(`${w.name}: reference copy only`, () => copyOnly(w.commandChunks));
  });
}

const quiet = process.argv.includes("--quiet");
const result = await run(quiet ? { format: "quiet" } : { colors: false });

// ---------------------------------------------------------------------------
// Summary table

const avg = new Map<string, number>();
for (const b of result.benchmarks) for (const r of b.runs) if (r.stats) avg.set(r.name, r.stats.avg);

const fmtRate = (x: number) =>
  x >= 1e9 ? `${(x / 1e9).toFixed(2)} G` : x >= 1e6 ? `${(x / 1e6).toFixed(2)} M` : x >= 1e3 ? `${(x / 1e3).toFixed(1)} k` : x.toFixed(0);
const fmtTime = (ns: number) => (ns >= 1e6 ? `${(ns / 1e6).toFixed(2)} ms` : `${(ns / 1e3).toFixed(2)} µs`);

console.log("\nmilter codec, per whole session (avg of mitata samples)");
console.log("| session | operation | packets | bytes | time/session | packets/s | bytes/s | vs naive decode | vs copy only |");
console.log("|---|---|---|---|---|---|---|---|---|");
for (const w of W) {
  const naive = avg.get(`${w.name}: reference naive decode commands`)!;
  const copy = avg.get(`${w.name}: reference copy only`)!;
  const rows: [string, number, number][] = [
    ["decode commands", w.commandPackets, w.commandBytes],
    ["decode replies", w.replyPackets, w.replyBytes],
    ["encode commands", w.commandPackets, w.commandBytes],
    ["encode replies", w.replyPackets, w.replyBytes],
  ];
  for (const [op, packets, bytes] of rows) {
    const ns = avg.get(`${w.name}: ${op}`)!;
    const perS = 1e9 / ns;
    const vsNaive = op === "decode commands" ? `${(naive / ns).toFixed(2)}× faster` : "";
    const vsCopy = op === "decode commands" ? `${(ns / copy).toFixed(2)}× the time` : "";
    console.log(`| ${w.name} | ${op} | ${packets} | ${bytes} | ${fmtTime(ns)} | ${fmtRate(packets * perS)} | ${fmtRate(bytes * perS)}B | ${vsNaive} | ${vsCopy} |`);
  }
  console.log(`| ${w.name} | reference: naive decode commands | ${w.commandPackets} | ${w.commandBytes} | ${fmtTime(naive)} | ${fmtRate((w.commandPackets * 1e9) / naive)} | ${fmtRate((w.commandBytes * 1e9) / naive)}B | | |`);
  console.log(`| ${w.name} | reference: copy only | ${w.commandPackets} | ${w.commandBytes} | ${fmtTime(copy)} | | ${fmtRate((w.commandBytes * 1e9) / copy)}B | | |`);
}
