// smtp-sink: an SMTP/LMTP server that accepts mail and throws it away (or
// dumps it), with Postfix smtp-sink's replies and fault options. Built for
// speed: all replies to one received chunk go out in one write; the DATA
// terminator is found with indexOf, no per-line work inside a message.
import type { Socket, SocketHandler, TCPSocketListener, UnixSocketListener } from "bun";
import { appendFileSync, existsSync, lstatSync, mkdirSync, statSync, unlinkSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { adjustOwnFile } from "../fs/own-files.ts";
import { isRoot, lookupUser } from "../runtime/privilege.ts";
import { formatDump, unstuff } from "./dump.ts";
import type { SinkOptions } from "./sink-options.ts";
import { flushQueue, writeOrQueue } from "./write-queue.ts";

export interface SinkIO {
  out(s: string): void;
  err(s: string): void;
  prog: string;
}

export interface SinkStats {
  sessions: number;
  quits: number;
  messages: number;
  recipients: number;
  bytes: number;
  startedAt: number;
}

export class SinkError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "SinkError";
  }
}

const TERM = Buffer.from("\r\n.\r\n", "latin1");
const MAX_LINE = 64 * 1024;

interface Conn {
  sock: Socket<Conn>;
  upgraded: boolean;
  /** True while a delayed reply is pending: input waits in `held`. */
  blocked: boolean;
  held: Buffer[];
  line: string;
  inData: boolean;
  /** Bytes of "\r\n.\r\n" matched at the end of the previous chunk. */
  match: number;
  dataChunks: Buffer[] | undefined;
  dataBytes: number;
  helo: string;
  proto: "SMTP" | "ESMTP" | "LMTP";
  mailArgs: string | undefined;
  rcptArgs: string[];
  rcpts: number;
  out: string;
  queue: Uint8Array[];
  lastActive: number;
  closing: boolean;
  started: boolean;
  clientAddr: string;
  tls: boolean;
}

/** Length of the longest suffix of buf[from..] that is a proper prefix of "\r\n.\r\n". */
function partialTerm(buf: Buffer, from: number): number {
  const n = buf.length;
  for (let k = Math.min(4, n - from); k > 0; k--) {
    let ok = true;
    for (let i = 0; i < k; i++) if (buf[n - k + i] !== TERM[i]) { ok = false; break; }
    if (ok) return k;
  }
  return 0;
}

/** strftime for dump templates: %Y %m %d %H %M %S %j %y %e %% (UTC). */
export function strftime(template: string, d: Date): string {
  const p = (n: number, w = 2) => String(n).padStart(w, "0");
  const start = Date.UTC(d.getUTCFullYear(), 0, 1);
  return template.replace(/%(.)/g, (_m, c: string) => {
    switch (c) {
      case "Y": return String(d.getUTCFullYear());
      case "y": return p(d.getUTCFullYear() % 100);
      case "m": return p(d.getUTCMonth() + 1);
      case "d": return p(d.getUTCDate());
      case "e": return String(d.getUTCDate()).padStart(2, " ");
      case "H": return p(d.getUTCHours());
      case "M": return p(d.getUTCMinutes());
      case "S": return p(d.getUTCSeconds());
      case "j": return p(Math.floor((d.getTime() - start) / 86400000) + 1, 3);
      case "%": return "%";
      default: return `%${c}`;
    }
  });
}

export class SmtpSink {
  readonly stats: SinkStats = { sessions: 0, quits: 0, messages: 0, recipients: 0, bytes: 0, startedAt: 0 };
  private listener: TCPSocketListener<Conn> | UnixSocketListener<Conn> | undefined;
  private readonly conns = new Set<Conn>();
  private readonly waiting: Conn[] = [];
  private active = 0;
  private sweeper: ReturnType<typeof setInterval> | undefined;
  private readonly ehloReply: string;
  private readonly greeting: string;
  private readonly dumpDir: string | undefined;
  private dumpSeq = 0;
  private readonly idBase = (Math.random() * 0x10000000) >>> 0;
  private tlsConfig: { key: string; cert: string } | undefined;
  private readonly verbose: boolean;
  private exitRequested = false;
  /** Called when -M/-n is reached (the CLI exits). */
  onExit?: () => void;

  constructor(private readonly o: SinkOptions, private readonly io: SinkIO) {
    this.verbose = o.verbose > 0;
    const h = o.hostname;
    this.greeting = o.pixBanner ? "220 ********\r\n" : `220 ${h}${o.noEsmtp ? "" : " ESMTP"}\r\n`;
    const kws: string[] = [];
    if (!o.noPipelining) kws.push("PIPELINING");
    if (!o.no8bitmime) kws.push("8BITMIME");
    if (!o.noAuth) kws.push("AUTH PLAIN LOGIN");
    if (!o.noXclient) kws.push("XCLIENT NAME HELO");
    if (!o.noXforward) kws.push("XFORWARD NAME ADDR PROTO HELO");
    if (!o.noEnhancedCodes) kws.push("ENHANCEDSTATUSCODES");
    if (!o.noDsn) kws.push("DSN");
    if (o.tlsCert) kws.push("STARTTLS");
    // Postfix's smtp-sink ends the list with a bare "250 ".
    this.ehloReply = [`250-${h}`, ...kws.map((k) => `250-${k}`), "250 "].join("\r\n") + "\r\n";
    const t = o.dumpTemplate;
    this.dumpDir = t !== undefined && (t.endsWith("/") || !t.includes("%") || (existsSync(t) && statSync(t).isDirectory()))
      ? t : undefined;
  }

  private log(line: string): void {
    this.io.err(`${this.io.prog}: ${line}\n`);
  }

  // ---- listening ------------------------------------------------------------

  async start(): Promise<{ port?: number; path?: string; hostname?: string }> {
    const o = this.o;
    if (o.chroot !== undefined) throw new SinkError("-R (chroot) is not supported");
    if (o.tlsCert && o.tlsKey) {
      this.tlsConfig = { cert: await Bun.file(o.tlsCert).text(), key: await Bun.file(o.tlsKey).text() };
    }
    if (this.dumpDir !== undefined) this.makeDumpDir(this.dumpDir);
    const self = this;
    const handlers: SocketHandler<Conn> = {
      binaryType: "buffer",
      open(s) { self.onOpen(s); },
      data(s, d) { if (!s.data.upgraded) self.onData(s.data, d as unknown as Buffer); },
      drain(s) { if (!s.data.upgraded) self.flushQueue(s.data); },
      close(s) { if (!s.data.upgraded) self.onClose(s.data); },
      end(s) { if (!s.data.upgraded) self.onClose(s.data); },
      error(s) { if (!s.data.upgraded) self.onClose(s.data); },
    };
    const l = o.listen;
    try {
      if (l.kind === "unix") {
        this.reclaimUnixPath(l.path);
        this.listener = Bun.listen<Conn>({ unix: l.path, socket: handlers });
      } else {
        const host = l.host !== "" ? l.host : o.family === 4 ? "0.0.0.0" : "::";
        // -6: IPv6 only, as --help says (a "::" socket takes IPv4 too unless told not to).
        const ipv6Only = { ipv6Only: o.family === 6 }; // Bun's option, missing from bun-types
        this.listener = Bun.listen<Conn>({ hostname: host, port: l.port, socket: handlers, ...ipv6Only });
      }
    } catch (e: any) {
      const where = l.kind === "unix" ? l.path : `${l.host}:${l.port}`;
      throw new SinkError(`bind ${where}: ${e?.code === "EADDRINUSE" ? "Address already in use" : e?.message ?? e}`);
    }
    this.stats.startedAt = performance.now();
    const sweepMs = Math.max(50, Math.min(1000, (o.timeout * 1000) / 4));
    this.sweeper = setInterval(() => this.sweep(), sweepMs);
    this.sweeper.unref?.();
    if (l.kind === "unix") return { path: l.path };
    const tl = this.listener as TCPSocketListener<Conn>;
    return { port: tl.port, hostname: tl.hostname };
  }

  /** A socket file left by a killed sink is removed; a live one or a non-socket is refused. */
  private reclaimUnixPath(path: string): void {
    let st;
    try { st = lstatSync(path); } catch { return; }
    if (!st.isSocket()) throw new SinkError(`${path} exists and is not a socket`);
    unlinkSync(path);
  }

  private makeDumpDir(dir: string): void {
    if (existsSync(dir)) return;
    mkdirSync(dir, { recursive: true });
    // As root with -u, the directory is the user's: it writes there after the privilege drop.
    if (this.o.user !== undefined && isRoot()) {
      const u = lookupUser(this.o.user);
      // Through a descriptor of the directory just made, never by name (a swapped-in symlink
      // would hand its target to the user).
      try {
        adjustOwnFile(dir, { kind: "directory", uid: u.uid, gid: u.gid });
      } catch (e) {
        throw new SinkError(`dump directory ${dir}: ${(e as Error).message}`);
      }
    }
  }

  stop(): void {
    clearInterval(this.sweeper);
    this.listener?.stop(true);
    this.listener = undefined;
    for (const c of this.conns) { try { c.sock.terminate(); } catch {} }
  }

  // ---- connections ------------------------------------------------------------

  private onOpen(s: Socket<Conn>): void {
    const isUnix = this.o.listen.kind === "unix";
    const ra = s.remoteAddress;
    const c: Conn = {
      sock: s, upgraded: false, blocked: false, held: [], line: "", inData: false, match: 0, dataChunks: undefined,
      dataBytes: 0, helo: "", proto: this.o.lmtp ? "LMTP" : "SMTP", mailArgs: undefined, rcptArgs: [], rcpts: 0, out: "",
      queue: [], lastActive: performance.now(), closing: false, started: false,
      clientAddr: isUnix || !ra ? "local" : ra.includes(":") && !ra.startsWith("::ffff:") ? `ipv6:${ra}` : ra.replace(/^::ffff:/, ""),
      tls: false,
    };
    s.data = c;
    if (!isUnix) s.setNoDelay(true);
    this.conns.add(c);
    if (this.active >= this.o.maxConnections) {
      this.waiting.push(c); // like a full kernel queue: no greeting until a slot frees
      return;
    }
    this.begin(c);
  }

  private begin(c: Conn): void {
    this.active++;
    c.started = true;
    if (this.verbose) this.log(`connect from ${c.clientAddr}`);
    if (this.o.disconnect.has("CONNECT")) return this.hangUp(c);
    if (this.o.disconnect421.has("CONNECT")) return this.close421(c);
    if (this.o.hardReject.has("CONNECT")) c.out += this.o.hardReply + "\r\n";
    else if (this.o.softReject.has("CONNECT")) c.out += this.o.softReply + "\r\n";
    else c.out += this.greeting;
    this.flush(c);
    if (c.held.length) this.resume(c);
  }

  private onClose(c: Conn): void {
    if (!this.conns.delete(c)) return;
    if (!c.started) {
      const i = this.waiting.indexOf(c);
      if (i >= 0) this.waiting.splice(i, 1);
      return;
    }
    this.active--;
    this.stats.sessions++;
    if (this.verbose) this.log("disconnect");
    this.showCounters();
    const next = this.waiting.shift();
    if (next) this.begin(next);
    if (this.o.exitAfterSessions !== undefined && this.stats.sessions >= this.o.exitAfterSessions) this.requestExit();
  }

  private sweep(): void {
    const limit = performance.now() - this.o.timeout * 1000;
    for (const c of this.conns) {
      if (c.started && !c.blocked && c.lastActive < limit) {
        if (this.verbose) this.log(`timeout from ${c.clientAddr}`);
        try { c.sock.terminate(); } catch {}
        this.onClose(c);
      }
    }
  }

  private requestExit(): void {
    if (this.exitRequested) return;
    this.exitRequested = true;
    // Let the last reply leave before the process goes.
    setTimeout(() => this.onExit?.(), 20);
  }

  private showCounters(): void {
    if (this.o.counters) {
      const st = this.stats;
      this.io.out(`sess=${st.sessions} quit=${st.quits} mesg=${st.messages}\r`);
    }
  }

  // ---- output -----------------------------------------------------------------

  private flush(c: Conn): void {
    if (c.out === "") return;
    const buf = Buffer.from(c.out, "latin1");
    c.out = "";
    writeOrQueue(c.sock, c.queue, buf);
  }

  private flushQueue(c: Conn): void {
    if (flushQueue(c.sock, c.queue) && c.closing) c.sock.end();
  }

  /** Send what is pending, then close. */
  private closeAfterFlush(c: Conn): void {
    c.closing = true;
    this.flush(c);
    if (c.queue.length === 0) c.sock.end();
  }

  private hangUp(c: Conn): void {
    c.out = "";
    c.closing = true;
    c.sock.end();
  }

  private close421(c: Conn): void {
    c.out += "421 4.0.0 Server closing connection\r\n";
    this.closeAfterFlush(c);
  }

  // ---- input ------------------------------------------------------------------

  private onData(c: Conn, d: Buffer): void {
    if (c.closing) return;
    c.lastActive = performance.now();
    if (c.blocked || !c.started) {
      c.held.push(d);
      return;
    }
    this.consume(c, d, 0);
    this.flush(c);
  }

  /** Go on with input that arrived while a delayed reply was pending. */
  private resume(c: Conn): void {
    while (c.held.length && !c.blocked && !c.closing) {
      const d = c.held.shift()!;
      this.consume(c, d, 0);
    }
    this.flush(c);
  }

  /** Process `d` from `off`; stops early when a delay blocks the connection (the rest is held). */
  private consume(c: Conn, d: Buffer, off: number): void {
    while (off < d.length) {
      if (c.closing) return;
      if (c.blocked) {
        c.held.unshift(d.subarray(off));
        return;
      }
      if (c.inData) {
        off = this.consumeData(c, d, off);
        continue;
      }
      const nl = d.indexOf(10, off);
      if (nl < 0) {
        c.line += d.toString("latin1", off);
        if (c.line.length > MAX_LINE) {
          c.out += "500 5.5.0 Error: line too long\r\n";
          return this.closeAfterFlush(c);
        }
        return;
      }
      let line = d.toString("latin1", off, nl);
      if (c.line !== "") {
        line = c.line + line;
        c.line = "";
      }
      if (line.endsWith("\r")) line = line.slice(0, -1);
      off = nl + 1;
      if (this.command(c, line) === "tls") return; // anything after STARTTLS is discarded
    }
  }

  /**
   * Message content from d[off..]; returns where command input resumes. The
   * stored chunks hold everything consumed, so they end with ".\r\n".
   */
  private consumeData(c: Conn, d: Buffer, off: number): number {
    if (c.match > 0) {
      // Finish a terminator begun at the end of the previous chunk.
      let m = c.match;
      let i = off;
      while (m < 5 && i < d.length && d[i] === TERM[m]) { m++; i++; }
      if (m === 5 || i === d.length) {
        if (c.dataChunks) c.dataChunks.push(d.subarray(off, i));
        c.dataBytes += i - off;
        if (m === 5) {
          this.endOfData(c);
          return i;
        }
        c.match = m;
        return i;
      }
      c.match = 0;
    }
    const at = d.indexOf(TERM, off);
    const end = at >= 0 ? at + 5 : d.length;
    if (c.dataChunks) c.dataChunks.push(off === 0 && end === d.length ? d : d.subarray(off, end));
    c.dataBytes += end - off;
    if (at >= 0) {
      this.endOfData(c);
      return end;
    }
    c.match = partialTerm(d, off);
    return end;
  }

  // ---- SMTP commands ------------------------------------------------------------

  /** Handle one command line; "tls" when the connection switched to TLS. */
  private command(c: Conn, line: string): void | "tls" {
    const o = this.o;
    const sp = line.indexOf(" ");
    const verb = (sp < 0 ? line : line.slice(0, sp)).toUpperCase();
    const arg = sp < 0 ? "" : line.slice(sp + 1);
    if (this.verbose || (o.log.size && o.log.has(verb))) this.log(line);
    if (o.disconnect.size && o.disconnect.has(verb)) return this.hangUp(c);
    if (o.disconnect421.size && o.disconnect421.has(verb)) return this.close421(c);
    if (o.hardReject.size && o.hardReject.has(verb)) return this.reply(c, verb, o.hardReply);
    if (o.softReject.size && o.softReject.has(verb)) return this.reply(c, verb, o.softReply);
    if (o.replies.length) {
      const custom = this.customReply(verb, arg);
      if (custom !== undefined) return this.reply(c, verb, custom);
    }
    switch (verb) {
      case "EHLO":
        if (o.lmtp || o.noEsmtp) return this.reply(c, verb, "500 5.5.1 Error: unknown command");
        this.resetTransaction(c);
        c.helo = arg.trim();
        c.proto = "ESMTP";
        return this.reply(c, verb, this.ehloReply, true);
      case "LHLO":
        if (!o.lmtp) return this.reply(c, verb, "500 5.5.1 Error: unknown command");
        this.resetTransaction(c);
        c.helo = arg.trim();
        return this.reply(c, verb, this.ehloReply, true);
      case "HELO":
        if (o.lmtp) return this.reply(c, verb, "500 5.5.1 Error: unknown command");
        this.resetTransaction(c);
        c.helo = arg.trim();
        c.proto = "SMTP";
        return this.reply(c, verb, `250 ${o.hostname}`);
      case "MAIL":
        c.mailArgs = /^from:/i.test(arg) ? arg.slice(5).trim() : arg;
        c.rcptArgs = [];
        c.rcpts = 0;
        return this.reply(c, verb, "250 2.1.0 Ok");
      case "RCPT":
        if (c.mailArgs === undefined) return this.reply(c, verb, "503 5.5.1 Error: need MAIL command");
        c.rcpts++;
        if (this.dumping) c.rcptArgs.push(/^to:/i.test(arg) ? arg.slice(3).trim() : arg);
        return this.reply(c, verb, "250 2.1.5 Ok");
      case "DATA":
        if (c.rcpts === 0) return this.reply(c, verb, "503 5.5.1 Error: need RCPT command");
        return this.startData(c);
      case "RSET":
        this.resetTransaction(c);
        return this.reply(c, verb, "250 2.0.0 Ok");
      case "NOOP":
      case "VRFY":
        return this.reply(c, verb, "250 2.0.0 Ok");
      case "XCLIENT":
        if (o.noXclient) break;
        return this.reply(c, verb, "250 2.0.0 Ok");
      case "XFORWARD":
        if (o.noXforward) break;
        return this.reply(c, verb, "250 2.0.0 Ok");
      case "AUTH":
        if (o.noAuth) break;
        return this.reply(c, verb, "235 2.0.0 Authentication successful");
      case "STARTTLS":
        if (!this.tlsConfig || c.tls) break;
        return this.startTls(c);
      case "QUIT":
        this.stats.quits++;
        c.out += "221 Bye\r\n";
        return this.closeAfterFlush(c);
    }
    return this.reply(c, verb, "500 5.5.1 Error: unknown command");
  }

  private get dumping(): boolean {
    return this.o.dumpTemplate !== undefined || this.o.appendTemplate !== undefined;
  }

  private customReply(verb: string, arg: string): string | undefined {
    let low: string | undefined;
    for (const r of this.o.replies) {
      if (r.command !== verb) continue;
      if (r.match === undefined) return r.reply;
      low ??= arg.toLowerCase();
      if (low.includes(r.match)) return r.reply;
    }
    return undefined;
  }

  private resetTransaction(c: Conn): void {
    c.mailArgs = undefined;
    c.rcptArgs = [];
    c.rcpts = 0;
  }

  /** Queue `text` as the reply to `verb`, after any -W/-w delay. `multi`: text has its own CRLFs. */
  private reply(c: Conn, verb: string, text: string, multi = false): void {
    const line = multi ? text : text + "\r\n";
    const wait = this.delayFor(verb);
    if (wait <= 0) {
      c.out += line;
      return;
    }
    this.delayed(c, wait, () => { c.out += line; });
  }

  private delayFor(verb: string): number {
    const o = this.o;
    let s = 0;
    if (verb === "DATA" && o.dataDelay) s += o.dataDelay;
    for (const d of o.delays) {
      if (d.command !== verb) continue;
      s += d.odds ? d.seconds * Math.floor(Math.random() * d.odds) : d.seconds;
    }
    return s;
  }

  /** Hold the connection for `seconds`, then run `then` and go on with held input. */
  private delayed(c: Conn, seconds: number, then: () => void): void {
    this.flush(c);
    c.blocked = true;
    setTimeout(() => {
      c.blocked = false;
      c.lastActive = performance.now();
      if (c.closing || !this.conns.has(c)) return;
      then();
      this.flush(c);
      if (!c.blocked) this.resume(c);
    }, seconds * 1000);
  }

  private startData(c: Conn): void {
    const o = this.o;
    const go = () => {
      c.out += "354 End data with <CR><LF>.<CR><LF>\r\n";
      if (o.abortDelay !== undefined) {
        // -A: wait, then give up on the client without reading the message.
        this.delayed(c, o.abortDelay, () => {
          c.out += "550 This violates SMTP\r\n";
          this.closeAfterFlush(c);
        });
        return;
      }
      c.inData = true;
      c.match = 2; // the CRLF of the DATA command starts a terminator
      c.dataBytes = 0;
      c.dataChunks = this.dumping ? [] : undefined;
      if (o.readDelay) this.delayed(c, o.readDelay, () => {});
    };
    const wait = this.delayFor("DATA");
    if (wait > 0) this.delayed(c, wait, go);
    else go();
  }

  /** The terminator was seen: count, dump, answer. */
  private endOfData(c: Conn): void {
    const o = this.o;
    c.inData = false;
    c.match = 0;
    this.stats.messages++;
    this.stats.recipients += c.rcpts;
    this.stats.bytes += Math.max(0, c.dataBytes - 3);
    if (this.verbose) this.log(".");
    if (c.dataChunks) this.dump(c);
    c.dataChunks = undefined;
    const verb = ".";
    if (o.disconnect.has(verb)) return this.hangUp(c);
    if (o.disconnect421.has(verb)) return this.close421(c);
    let text: string;
    if (o.hardReject.has(verb)) text = o.hardReply;
    else if (o.softReject.has(verb)) text = o.softReply;
    else text = this.customReply(verb, "") ?? (o.lmtp ? "250 2.2.0 Ok" : "250 2.0.0 Ok");
    const n = o.lmtp ? Math.max(1, c.rcpts) : 1;
    const line = text + "\r\n";
    this.reply(c, verb, n === 1 ? line : line.repeat(n), true);
    this.resetTransaction(c);
    this.showCounters();
    if (o.exitAfterMessages !== undefined && this.stats.messages >= o.exitAfterMessages) this.requestExit();
  }

  private dump(c: Conn): void {
    const o = this.o;
    // Everything after DATA's CRLF up to and including the final ".\r\n".
    const data = Buffer.concat(c.dataChunks!).toString("latin1").slice(0, -3);
    const message = Buffer.from(unstuff(data), "latin1");
    const id = ((this.idBase + this.dumpSeq) >>> 0).toString(16).padStart(8, "0");
    const seq = this.dumpSeq++;
    const now = new Date();
    const record = formatDump({
      clientAddr: c.clientAddr, proto: c.proto, helo: c.helo || undefined, mailArgs: c.mailArgs ?? "",
      rcptArgs: c.rcptArgs, hostname: o.hostname, id, date: now,
    }, message, o.dumpPrefix ?? "");
    try {
      if (o.dumpTemplate !== undefined) {
        const path = this.dumpDir !== undefined
          ? join(this.dumpDir, `${String(seq).padStart(8, "0")}.${process.pid}.${id}`)
          : strftime(o.dumpTemplate, now) + id;
        if (this.dumpDir === undefined) mkdirSync(dirname(path), { recursive: true });
        writeFileSync(path, record);
      }
      if (o.appendTemplate !== undefined) {
        const path = strftime(o.appendTemplate, now);
        mkdirSync(dirname(path), { recursive: true });
        appendFileSync(path, record);
      }
    } catch (e: any) {
      this.log(`warning: dump: ${e?.message ?? e}`);
    }
  }

  private startTls(c: Conn): "tls" {
    c.out += "220 2.0.0 Ready to start TLS\r\n";
    this.flush(c);
    c.tls = true;
    c.upgraded = true;
    const self = this;
    const tlsHandlers: SocketHandler<Conn> = {
      binaryType: "buffer",
      data(_s, d) { self.onData(c, d as unknown as Buffer); },
      drain() { self.flushQueue(c); },
      close() { self.onClose(c); },
      end() { self.onClose(c); },
      error() { self.onClose(c); },
    };
    const [, tls] = (c.sock as any).upgradeTLS({ data: c, tls: this.tlsConfig, socket: tlsHandlers });
    c.sock = tls;
    // RFC 3207: forget everything learned before TLS.
    c.helo = "";
    this.resetTransaction(c);
    c.line = "";
    return "tls";
  }

  summary(): string {
    const st = this.stats;
    const secs = (performance.now() - st.startedAt) / 1000;
    return `${this.io.prog}: ${st.sessions} sessions, ${st.messages} messages, ${st.recipients} recipients, ` +
      `${st.bytes} bytes in ${secs.toFixed(3)} s, ${(st.messages / Math.max(secs, 1e-9)).toFixed(1)} messages/s\n`;
  }
}
