// The floor of smtp-source on this runtime (bench/smtp-source.bench.ts): a
// bare Bun SMTP/LMTP client that speaks exactly smtp-source's dialogue with
// the same bytes (HELO/LHLO or EHLO with -P, MAIL, RCPT, DATA, the generated
// headers and -l body, ".", QUIT; -d reuses the connection; -P sends MAIL,
// RCPT and DATA in one write, and the content, "." and the next envelope or
// QUIT in one write), and nothing else: no timers, no statistics, no
// options beyond these, one recipient, a reply is checked only for its first
// digit. What smtp-source costs beyond this is its engine's own work.
//
//   bun bench/smtp-source-floor.ts [-d] [-P] [-L] -s N -m M -l LEN -M myhostname host:port
import { currentDate, generatedBody, headerTemplate } from "../src/smtp/message.ts";

const argv = process.argv.slice(2);
let sessions = 1, messages = 1, length = 0, reuse = false, pipelining = false, lmtp = false;
let myhostname = "localhost", target = "";
for (let i = 0; i < argv.length; i++) {
  const a = argv[i];
  if (a === "-d") reuse = true;
  else if (a === "-P") pipelining = true;
  else if (a === "-L") lmtp = true;
  else if (a === "-s") sessions = Number(argv[++i]);
  else if (a === "-m") messages = Number(argv[++i]);
  else if (a === "-l") length = Number(argv[++i]);
  else if (a === "-M") myhostname = argv[++i];
  else if (a.startsWith("-")) throw new Error(`floor: unknown option ${a}`);
  else target = a;
}
const colon = target.lastIndexOf(":");
const host = target.slice(0, colon), port = Number(target.slice(colon + 1));
const addr = `foo@${myhostname}`;
const enc = (s: string) => Buffer.from(s, "latin1");
const HELO = enc(`${lmtp ? "LHLO" : pipelining ? "EHLO" : "HELO"} ${myhostname}\r\n`);
const MAIL = enc(`MAIL FROM:<${addr}>\r\n`);
const RCPT = enc(`RCPT TO:<${addr}>\r\n`);
const DATA = enc("DATA\r\n");
const QUIT = enc("QUIT\r\n");
const ENVELOPE = Buffer.concat([MAIL, RCPT, DATA]);

// Built once, so the same bytes as ours cost the floor nothing per message.
const BODY = Buffer.concat([generatedBody(length), enc(".\r\n")]);
let claimed = 0, live = 0;
const claim = () => (claimed < messages ? claimed++ : -1);

// Replies awaited, then what to do.
const enum Next { Helo, Envelope, Mail, Rcpt, Data, Content, AfterDot, Close }

class Session {
  sock: any;
  waiting = 1;
  next = Next.Helo;
  partial: Buffer | undefined;
  // headers room + body + "." + the longest tail (the envelope)
  readonly buf = Buffer.allocUnsafe(512 + BODY.length + ENVELOPE.length);
  readonly head: (date: string, message: number) => string;
  constructor(readonly id: number) {
    this.buf.set(BODY, 512);
    this.head = headerTemplate({ from: addr, to: addr, myhostname, pid: process.pid, session: id });
  }
  content(msg: number, tail: Buffer | undefined): Buffer {
    const h = this.head(currentDate(), msg);
    const start = 512 - h.length;
    this.buf.write(h, start, "latin1");
    let end = 512 + BODY.length;
    if (tail) {
      this.buf.set(tail, end);
      end += tail.length;
    }
    return this.buf.subarray(start, end);
  }
  write(b: Buffer, replies: number, next: Next): void {
    this.sock.write(b); // 1 KB messages: the kernel takes them whole
    this.waiting = replies;
    this.next = next;
  }
  connect(): void {
    live++;
    this.waiting = 1;
    this.next = Next.Helo;
    Bun.connect({ hostname: host, port, data: this, socket: handlers }).catch((e) => fail(String(e)));
  }
  // One whole reply arrived.
  reply(code: number): void {
    if (code >= 400) fail(`reply ${code}`);
    if (--this.waiting > 0) return;
    let msg: number;
    switch (this.next) {
      case Next.Helo: return this.write(HELO, 1, pipelining ? Next.Envelope : Next.Mail);
      case Next.Envelope: return this.write(ENVELOPE, 3, Next.Content);
      case Next.Mail: return this.write(MAIL, 1, Next.Rcpt);
      case Next.Rcpt: return this.write(RCPT, 1, Next.Data);
      case Next.Data: return this.write(DATA, 1, Next.Content);
      case Next.Content:
        this.msg0 = this.msgN;
        if (!pipelining) return this.write(this.content(this.msgN, undefined), 1, Next.AfterDot);
        msg = reuse ? claim() : -1;
        this.msgN = msg;
        return this.write(this.content(this.msg0, msg >= 0 ? ENVELOPE : QUIT), msg >= 0 ? 4 : 2, msg >= 0 ? Next.Content : Next.Close);
      case Next.AfterDot:
        msg = reuse ? claim() : -1;
        this.msgN = msg;
        if (msg >= 0) return this.write(MAIL, 1, Next.Rcpt);
        return this.write(QUIT, 1, Next.Close);
      case Next.Close:
        this.sock.end();
        return;
    }
  }
  msgN = 0;
  msg0 = 0;
  closed(): void {
    live--;
    if (this.next !== Next.Close || this.waiting > 0) fail("lost connection");
    if (!reuse) {
      const m = claim();
      if (m >= 0) {
        this.msgN = m;
        return this.connect();
      }
    }
    if (live === 0) process.exit(0);
  }
  data(d: Buffer): void {
    if (this.partial) {
      d = Buffer.concat([this.partial, d]);
      this.partial = undefined;
    }
    let start = 0;
    for (;;) {
      const nl = d.indexOf(10, start);
      if (nl < 0) break;
      if (d[start + 3] !== 45) this.reply((d[start] - 48) * 100 + (d[start + 1] - 48) * 10 + d[start + 2] - 48);
      start = nl + 1;
    }
    if (start < d.length) this.partial = Buffer.from(d.subarray(start));
  }
}

function fail(why: string): never {
  process.stderr.write(`floor: ${why}\n`);
  process.exit(1);
}

const handlers = {
  binaryType: "buffer" as const,
  data(s: any, d: Buffer) { s.data.data(d); },
  open(s: any) { s.data.sock = s; },
  close(s: any) { s.data.closed(); },
  error(_s: any, e: Error) { fail(String(e)); },
};

const n = Math.min(sessions, messages);
for (let i = 0; i < n; i++) {
  const s = new Session(i);
  s.msgN = claim();
  s.connect();
}
