/**
 * Transparency checks: the same messages through an MTA whose milter chain is
 * configured directly and through the same MTA -> milterkit manager -> the same
 * children in the same order, and what may legitimately differ between the two
 * deliveries (masked before comparing).
 *
 * - TRANSPARENCY_MESSAGES: plain; several recipients; 8-bit and folded long
 *   headers; a 1 MB body; repeated header names.
 * - maskDelivery(): queue ids, dates, DKIM t= and b=, smtp-sink's transaction id.
 * - compareChain(): one chain through the manager (lib/manager.ts) against the direct chain.
 */
import * as fs from "node:fs";
import { expect } from "bun:test";
import { startManagerProcess } from "./manager.ts";
import { type ModMode, type Peer, startModMilter, startOpendkim, startPymilter } from "./peers.ts";

export interface TestMessage {
  name: string;
  from: string;
  rcpts: string[];
  /** header + body, CRLF or LF line ends (the SMTP client makes them CRLF), latin1 */
  data: string;
}

const FROM = "bench@bench.test"; // opendkim signs mail of this domain

function message(name: string, headers: string[], body: string, rcpts = ["rcpt@example.test"]): TestMessage {
  const head = [
    `From: Bench <${FROM}>`,
    `To: ${rcpts.map((r) => `<${r}>`).join(", ")}`,
    `Subject: transparency ${name}`,
    "Date: Mon, 07 Dec 2026 06:00:00 +0000",
    `Message-ID: <${name}@transparency.test>`,
    ...headers,
  ];
  return { name, from: FROM, rcpts, data: head.join("\r\n") + "\r\n\r\n" + body };
}

/** 1 MB of 78-character lines, each numbered. */
function bigBody(): string {
  const lines: string[] = [];
  let size = 0;
  for (let i = 0; size < 1024 * 1024; i++) {
    const l = `${String(i).padStart(7, "0")} ${"0123456789abcdefghijklmnopqrstuvwxyz".repeat(2).slice(0, 70)}`;
    lines.push(l);
    size += l.length + 2;
  }
  return lines.join("\r\n") + "\r\n";
}

export const TRANSPARENCY_MESSAGES: TestMessage[] = [
  message("plain", [], "Hello,\r\nthis is a plain message.\r\n"),
  message("multi", [], "To three recipients.\r\n", ["rcpt1@example.test", "rcpt2@example.test", "rcpt3@example.test"]),
  message(
    "eightbit",
    [
      "X-Latin: caf\xe9 cr\xe8me br\xfbl\xe9e",
      "X-Folded: a long header value that is folded over several lines because it is longer than",
      "\tseventy-eight characters, with a tab here and",
      "    four spaces there, and an 8-bit byte \xc3\xa9 at the end",
      "Content-Type: text/plain; charset=utf-8",
      "Content-Transfer-Encoding: 8bit",
      "MIME-Version: 1.0",
    ],
    "Gr\xc3\xbc\xc3\x9fe, caf\xc3\xa9.\r\n\xe9t\xe9 in latin1\r\n",
  ),
  message("big", [], bigBody()),
  message(
    "repeated",
    ["X-Repeat: one", "Comments: first comment", "X-Repeat: two", "x-repeat: three", "Comments: second comment"],
    "Headers with repeated names.\r\n",
  ),
];

/**
 * What legitimately differs between two deliveries of the same message:
 * queue ids (`id XXXX` in Received: lines, smtp-sink's transaction id), dates
 * after the `;` of Received: lines, and the DKIM signature's t= and b= values.
 * Works on a whole smtp-sink dump or a postcat listing (LF line ends).
 */
export function maskDelivery(text: string): string {
  const lines = text.split("\n");
  const out: string[] = [];
  let inReceived = false;
  for (let i = 0; i < lines.length; i++) {
    let l = lines[i];
    if (/^DKIM-Signature:/i.test(l)) {
      // the whole folded header, masked as one piece
      const parts = [l];
      while (i + 1 < lines.length && /^[ \t]/.test(lines[i + 1])) parts.push(lines[++i]);
      const joined = parts.join("\n").replace(/\bt=\d+/, "t=<T>").replace(/([;\s]b=)[A-Za-z0-9+/=\s]+/, "$1<B>");
      out.push(joined.trimEnd());
      inReceived = false;
      continue;
    }
    // (Sendmail queue files write a header as H?flags?Name: value)
    if (!/^[ \t]/.test(l)) inReceived = /^(H\?[^?]*\?)?Received:/i.test(l);
    if (inReceived) {
      l = l
        .replace(/\bid [0-9A-Za-z]{6,}/g, "id <ID>")
        .replace(/(Mon|Tue|Wed|Thu|Fri|Sat|Sun), +\d{1,2} \w{3} \d{4} \d\d:\d\d:\d\d ([+-]\d{4}( \([A-Z]+\))?|GMT)/g, "<DATE>");
    }
    // postcat: the queue file's name, times, the queue id it logs under, the client's ports, and
    // where the content starts in the file (the second message_size field: it moves with the
    // length of the envelope records before it)
    l = l
      .replace(/^(\*\*\* [A-Z ]+) \/\S+ \*\*\*$/, "$1 <FILE> ***")
      .replace(/^(message_arrival_time|create_time): .*/, "$1: <TIME>")
      .replace(/^(named_attribute: log_ident)=\S+/, "$1=<ID>")
      .replace(/^(named_attribute: (?:log_)?(?:client|server)_port)=\d+/, "$1=<PORT>")
      .replace(/^(message_size: +\d+ +)\d+/, "$1<OFFSET>");
    out.push(l);
  }
  return out.join("\n");
}

/** A line-by-line difference of two texts (first differing lines with context), for failure messages. */
export function firstDifference(a: string, b: string, context = 3): string {
  const x = a.split("\n");
  const y = b.split("\n");
  let i = 0;
  while (i < x.length && i < y.length && x[i] === y[i]) i++;
  if (i === x.length && i === y.length) return "(identical)";
  const from = Math.max(0, i - context);
  const show = (l: string[], tag: string) => l.slice(from, i + context + 1).map((s, k) => `${tag}${from + k + 1}: ${s.slice(0, 200)}`).join("\n");
  return `first difference at line ${i + 1}\n--- direct\n${show(x, "  ")}\n+++ manager\n${show(y, "  ")}`;
}

/** The children of the transparency suites: one mod-milter per modification kind, pymilter, opendkim. */
export const MOD_CHILDREN: Record<string, ModMode> = {
  add: "add",
  "add-b": "add",
  ins0: "ins0",
  ins2: "ins2",
  ins99: "ins99",
  change: "change",
  del2: "del2",
  del2twice: "del2twice",
  body: "body",
  bodynoeol: "bodynoeol",
  bodytail: "bodytail",
  rcpt: "rcpt",
  envrcpt: "envrcpt",
  from: "from",
  quarantine: "quarantine",
};
export type ChildName = keyof typeof MOD_CHILDREN | "pymilter" | "opendkim";

/** Each child alone, then chains of two and three in several orders. */
export const CHAINS: ChildName[][] = [
  ...(Object.keys(MOD_CHILDREN).filter((k) => k !== "add-b") as ChildName[]).map((k) => [k]),
  ["pymilter"],
  ["opendkim"],
  ["add", "add-b"],
  ["ins0", "opendkim"],
  ["opendkim", "ins0"],
  ["add", "change", "del2"],
  ["del2", "ins2", "add"],
  ["del2twice", "del2"],
  ["del2twice", "ins2", "change"],
  ["ins99", "ins0", "pymilter"],
  ["pymilter", "ins2", "opendkim"],
  ["body", "opendkim"],
  ["bodynoeol", "opendkim"],
  ["bodytail", "opendkim"],
  ["opendkim", "body", "pymilter"],
  ["rcpt", "from", "quarantine"],
  ["envrcpt", "from"],
  ["quarantine", "rcpt"],
];

/** Start every child of CHAINS on a unix socket. */
export async function startTransparencyChildren(): Promise<Map<ChildName, Peer>> {
  const started = await Promise.all([
    ...Object.entries(MOD_CHILDREN).map(async ([name, mode]) => [name, await startModMilter({ mode, tag: name, unix: true })] as const),
    (async () => ["pymilter", await startPymilter({ unix: true })] as const)(),
    (async () => ["opendkim", await startOpendkim({ unix: true })] as const)(),
  ]);
  return new Map(started.map(([n, p]) => [n as ChildName, p]));
}

/** One message as the MTA handled it, masked (maskDelivery). */
export interface Delivery {
  /** the final SMTP reply, queue id masked */
  reply: string;
  /** delivered to the sink, or kept in the MTA's queue (quarantine) */
  where: "delivered" | "held";
  text: string;
}

/**
 * One case of a transparency suite: start the manager with `chain` on `socket`, send every test
 * message on the direct port and on the manager's port, and expect the same delivery.
 * MK_TR_DUMP=DIR keeps both deliveries of every case (masked) for inspection, named PREFIX+chain.
 */
export async function compareChain(o: {
  chain: string[];
  peers: Map<string, { spec: string }>;
  socket: string;
  deliver: (which: "direct" | "manager", msg: TestMessage) => Promise<Delivery>;
  dumpPrefix: string;
}): Promise<void> {
  const label = o.chain.join(" -> ");
  const manager = await startManagerProcess({
    milters: o.chain.map((c) => ({ name: c, connection_spec: o.peers.get(c)!.spec })),
    socket: o.socket,
  });
  try {
    for (const msg of TRANSPARENCY_MESSAGES) {
      const direct = await o.deliver("direct", msg);
      const via = await o.deliver("manager", msg);
      const dumpDir = process.env.MK_TR_DUMP;
      if (dumpDir) {
        const base = `${dumpDir}/${o.dumpPrefix}${o.chain.join("_")}-${msg.name}`;
        fs.writeFileSync(`${base}.direct`, direct.text);
        fs.writeFileSync(`${base}.manager`, via.text);
      }
      if (via.text !== direct.text) {
        throw new Error(`${label} / ${msg.name}: delivered messages differ\n${firstDifference(direct.text, via.text)}`);
      }
      expect({ reply: via.reply, where: via.where }).toEqual({ reply: direct.reply, where: direct.where });
      expect(direct.text.length).toBeGreaterThan(0);
    }
  } finally {
    await manager.stop();
  }
}
