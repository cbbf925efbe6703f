/**
 * Postfix's smtp-sink as the relay target of a test, and readers for its
 * per-message dump files; DKIM verification of a received message.
 *
 * smtp-sink facts this relies on (Postfix 3.7.11, checked on this machine):
 * - as root it refuses to run without `-u user`; the dump directory must be
 *   writable by that user (postfix);
 * - with `-d DIR/%H%M%S.` each transaction gets its own file, created empty
 *   at MAIL FROM, written in one go and closed at the final ".", and deleted
 *   if the transaction is aborted (RSET/QUIT before the end of DATA);
 * - a dump is: X-Client-Addr, X-Client-Proto, [X-Helo-Args], X-Mail-Args,
 *   one X-Rcpt-Args per RCPT, a three-line Received: header, the message as
 *   received (dot-unstuffed, CRLF turned into LF), then one empty line.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { fixturePath, makeDir, makeTempDir } from "./dirs.ts";
import { freePort, isListening, waitForPort, waitForUnix } from "./ports.ts";
import { isAlive, pollUntil, removeDir, run, spawnTracked, stopPid, tailFile, userIds } from "./proc.ts";

export const SMTP_SINK = "/usr/sbin/smtp-sink";
export const SMTP_SOURCE = "/usr/sbin/smtp-source";

export interface SinkOptions {
  /** TCP port on 127.0.0.1 (default: a free one) */
  port?: number;
  /** listen on this Unix socket instead of TCP */
  unix?: string;
  /** dump every message into this directory (created and chowned to postfix); `true` = a fresh temp dir */
  dumpDir?: string | true;
  /** speak LMTP (-L) */
  lmtp?: boolean;
  /** more smtp-sink options, placed before the address */
  extraArgs?: string[];
}

export interface Sink {
  /** TCP port (undefined with unix) */
  port?: number;
  unix?: string;
  pid: number;
  dumpDir?: string;
  /** the sink's own base directory (log) */
  base: string;
  log(): string;
  /** number of complete dumped messages */
  count(): number;
  /** wait until at least `n` complete messages were dumped; returns them */
  waitForMessages(n: number, timeoutMs?: number): Promise<DumpedMessage[]>;
  /** stop by PID and delete the sink's directory (and a dump dir it created itself) */
  stop(): Promise<void>;
}

// dump dir -> sink PID, so countDumps/readDump can leave out files the sink still has open
const liveSinks = new Map<string, number>();

/** Start /usr/sbin/smtp-sink (see {@link SinkOptions}). */
export async function startPostfixSmtpSink(opts: SinkOptions = {}): Promise<Sink> {
  const base = makeTempDir("mk-sink-");
  const logFile = path.join(base, "sink.log");
  const pfUser = userIds("postfix");
  let dumpDir: string | undefined;
  if (opts.dumpDir === true) {
    dumpDir = makeDir(path.join(base, "dump"), 0o755, pfUser);
  } else if (opts.dumpDir) {
    dumpDir = path.resolve(opts.dumpDir);
    makeDir(dumpDir, 0o755, pfUser);
  }
  const fixedPort = opts.port;
  for (let attempt = 0; ; attempt++) {
    const port = opts.unix ? undefined : (fixedPort ?? (await freePort()));
    const where = opts.unix ? `unix:${opts.unix}` : `127.0.0.1:${port}`;
    const args = [
      SMTP_SINK,
      "-u", "postfix", // mandatory as root
      ...(opts.unix ? [] : ["-4"]),
      ...(opts.lmtp ? ["-L"] : []),
      ...(dumpDir ? ["-d", `${dumpDir}/%Y%m%d%H%M%S.`] : []),
      ...(opts.extraArgs ?? []),
      where,
      "256", // listen backlog
    ];
    const sp = spawnTracked(args, { logFile, what: `smtp-sink ${where}` });
    try {
      if (opts.unix) await waitForUnix(opts.unix, 10_000, { pid: sp.pid, logFile, what: "smtp-sink" });
      else await waitForPort("127.0.0.1", port!, 10_000, { pid: sp.pid, logFile, what: "smtp-sink" });
    } catch (e) {
      await stopPid(sp.pid, { graceMs: 1000 });
      // a free port can be taken by someone else between freePort() and bind(): then try another one
      const taken = port !== undefined && isListening("127.0.0.1", port) === true;
      if (taken && fixedPort === undefined && attempt < 2) continue;
      removeDir(base);
      throw e;
    }
    if (dumpDir) liveSinks.set(dumpDir, sp.pid);
    const sink: Sink = {
      port,
      unix: opts.unix,
      pid: sp.pid,
      dumpDir,
      base,
      log: () => tailFile(logFile, 1 << 20),
      count: () => (dumpDir ? countDumps(dumpDir) : 0),
      async waitForMessages(n, timeoutMs = 20_000) {
        if (!dumpDir) throw new Error("waitForMessages needs a sink started with dumpDir");
        const ok = await pollUntil(() => countDumps(dumpDir!) >= n, timeoutMs, 50);
        if (!ok) {
          throw new Error(
            `smtp-sink ${where}: ${countDumps(dumpDir)} of ${n} message(s) after ${timeoutMs} ms` +
              (isAlive(sp.pid) ? "" : " (smtp-sink is not running)") +
              `\n${tailFile(logFile)}`,
          );
        }
        return readDump(dumpDir);
      },
      async stop() {
        await stopPid(sp.pid, { graceMs: 2000 });
        if (dumpDir) liveSinks.delete(dumpDir);
        if (opts.unix) fs.rmSync(opts.unix, { force: true });
        removeDir(base); // includes the dump dir when we created it
      },
    };
    return sink;
  }
}

/** Paths the process `pid` has open (as root, /proc/PID/fd is readable for any process). */
function openFiles(pid: number): Set<string> {
  const out = new Set<string>();
  try {
    for (const fd of fs.readdirSync(`/proc/${pid}/fd`)) {
      try {
        out.add(fs.readlinkSync(`/proc/${pid}/fd/${fd}`));
      } catch {
        // closed meanwhile
      }
    }
  } catch {
    // process gone
  }
  return out;
}

/**
 * Dump files of complete transactions, oldest first (by mtime, then name). A file
 * still open by a running sink started here, or empty, is a transaction in
 * progress and is left out.
 */
export function dumpFiles(dir: string): string[] {
  const abs = path.resolve(dir);
  let names: string[];
  try {
    names = fs.readdirSync(abs);
  } catch {
    return [];
  }
  const pid = liveSinks.get(abs);
  const open = pid !== undefined ? openFiles(pid) : new Set<string>();
  const done: { p: string; t: number }[] = [];
  for (const n of names) {
    const p = path.join(abs, n);
    if (open.has(p)) continue;
    try {
      const st = fs.statSync(p);
      if (st.isFile() && st.size > 0) done.push({ p, t: st.mtimeMs });
    } catch {
      // removed meanwhile (aborted transaction)
    }
  }
  return done.sort((a, b) => a.t - b.t || (a.p < b.p ? -1 : a.p > b.p ? 1 : 0)).map((d) => d.p);
}

/** Number of complete messages in an smtp-sink dump directory. */
export function countDumps(dir: string): number {
  return dumpFiles(dir).length;
}

export interface DumpedMessage {
  file: string;
  /** envelope sender (from X-Mail-Args, without <> and ESMTP parameters) */
  from: string;
  /** envelope recipients (from X-Rcpt-Args) */
  rcpts: string[];
  /** full MAIL FROM argument line, e.g. "<a@b.test> SIZE=123 BODY=8BITMIME" */
  mailArgs: string;
  heloArgs?: string;
  clientAddr?: string;
  clientProto?: string;
  /** headers of the message as the client sent it, in order; values unfolded, leading blanks removed */
  headers: [string, string][];
  /** body (after the empty line), latin1, CRLF line ends */
  body: string;
  /** the message as the client sent it (smtp-sink's prefix removed), latin1, CRLF line ends */
  raw: string;
}

/** Values of every header `name` (case-insensitive) of a dumped message. */
export function headerValues(msg: DumpedMessage, name: string): string[] {
  const n = name.toLowerCase();
  return msg.headers.filter(([k]) => k.toLowerCase() === n).map(([, v]) => v);
}

const SINK_PREFIX = /^X-(Client-Addr|Client-Proto|Helo-Args|Mail-Args|Rcpt-Args): ?(.*)$/;

/** Parse one smtp-sink dump file (see the format at the top of this file). */
export function parseDump(content: Buffer | string, file = ""): DumpedMessage {
  const text = typeof content === "string" ? content : content.toString("latin1");
  const lines = text.split("\n");
  let i = 0;
  const msg: DumpedMessage = { file, from: "", rcpts: [], mailArgs: "", headers: [], body: "", raw: "" };
  for (; i < lines.length; i++) {
    const m = SINK_PREFIX.exec(lines[i]);
    if (!m) break;
    const v = m[2];
    switch (m[1]) {
      case "Client-Addr": msg.clientAddr = v; break;
      case "Client-Proto": msg.clientProto = v; break;
      case "Helo-Args": msg.heloArgs = v; break;
      case "Mail-Args": msg.mailArgs = v; msg.from = envelopeAddr(v); break;
      case "Rcpt-Args": msg.rcpts.push(envelopeAddr(v)); break;
    }
  }
  // smtp-sink's own Received: header (folded over three lines)
  if (i < lines.length && lines[i].startsWith("Received:")) {
    i++;
    while (i < lines.length && /^[ \t]/.test(lines[i])) i++;
  }
  let rest = lines.slice(i);
  // the dump ends with the message's last line break plus one empty line
  if (rest.length && rest[rest.length - 1] === "") rest = rest.slice(0, -1);
  if (rest.length && rest[rest.length - 1] === "") rest = rest.slice(0, -1);
  msg.raw = rest.length ? rest.join("\r\n") + "\r\n" : "";
  const sep = rest.indexOf("");
  const headLines = sep >= 0 ? rest.slice(0, sep) : rest;
  msg.body = sep >= 0 ? rest.slice(sep + 1).map((l) => l + "\r\n").join("") : "";
  for (const l of headLines) {
    if (/^[ \t]/.test(l) && msg.headers.length) {
      const last = msg.headers[msg.headers.length - 1];
      last[1] += l; // unfold: drop the line break, keep the blank
      continue;
    }
    const c = l.indexOf(":");
    if (c > 0) msg.headers.push([l.slice(0, c), l.slice(c + 1).replace(/^[ \t]+/, "")]);
  }
  return msg;
}

/** `<a@b> SIZE=1` -> `a@b`; `<>` -> `` */
function envelopeAddr(args: string): string {
  const m = /^<([^>]*)>/.exec(args.trim());
  return m ? m[1] : args.trim().split(/\s+/)[0] ?? "";
}

/** All complete messages in an smtp-sink dump directory, oldest first. */
export function readDump(dir: string): DumpedMessage[] {
  return dumpFiles(dir).map((f) => parseDump(fs.readFileSync(f), f));
}

/**
 * Verify the DKIM signature of `rawMessage` (as the signer saw it, CRLF line
 * ends) with dkimpy, using the public key from opendkim-genkey's .txt file
 * instead of DNS. Resolves true if it verifies.
 */
export async function verifyDkim(rawMessage: string | Uint8Array, keyTxtPath: string): Promise<boolean> {
  const res = await run(["/usr/bin/python3", fixturePath("dkim/verify_dkim.py"), keyTxtPath], {
    stdin: typeof rawMessage === "string" ? Buffer.from(rawMessage, "latin1") : rawMessage,
    check: false,
    timeoutMs: 30_000,
  });
  if (res.exitCode === 2 || (res.exitCode !== 0 && res.exitCode !== 1)) {
    throw new Error(`verify_dkim.py failed (exit ${res.exitCode}): ${res.stderr}${res.stdout}`);
  }
  return res.exitCode === 0;
}
