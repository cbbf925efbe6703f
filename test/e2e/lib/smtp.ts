/**
 * A tiny SMTP client for end-to-end tests (Bun.connect): one command at a
 * time, every reply kept, every wait bounded. `sendMail` sends one message,
 * optionally after AUTH PLAIN/LOGIN (so that Postfix hands {auth_authen} and
 * friends to the milters).
 */
import type { Socket } from "bun";

export interface SmtpReply {
  code: number;
  /** all reply lines without the "NNN-" / "NNN " prefix */
  lines: string[];
  /** the lines joined with "\n" */
  text: string;
}

export interface SmtpStep {
  /** what was sent: "<connect>", "EHLO x", "AUTH PLAIN <credentials>", "MAIL FROM:<a>", "RCPT TO:<b>", "DATA", "<end of data>", "QUIT" */
  command: string;
  reply: SmtpReply;
}

/** The server closed the connection, a reply was malformed, or a wait timed out. */
export class SmtpError extends Error {
  constructor(message: string, readonly steps: SmtpStep[] = []) {
    super(`${message}${steps.length ? `\ntranscript:\n${transcript(steps)}` : ""}`);
    this.name = "SmtpError";
  }
}

export function transcript(steps: SmtpStep[]): string {
  return steps.map((s) => `> ${s.command}\n${s.reply.lines.map((l) => `< ${s.reply.code} ${l}`).join("\n")}`).join("\n");
}

interface Conn {
  buf: string;
  closed: boolean;
  waiter?: () => void;
  drainWaiter?: () => void;
}

/** One SMTP connection; commands are sent one at a time and each reply is awaited. */
export class SmtpClient {
  readonly steps: SmtpStep[] = [];
  private constructor(
    private readonly sock: Socket<Conn>,
    private readonly st: Conn,
    private readonly timeoutMs: number,
  ) {}

  /** Connect and read the greeting (recorded as the step "<connect>"). */
  static async connect(opts: { host?: string; port?: number; unix?: string; timeoutMs?: number }): Promise<SmtpClient> {
    const timeoutMs = opts.timeoutMs ?? 30_000;
    const st: Conn = { buf: "", closed: false };
    const handlers = {
      data(_s: Socket<Conn>, d: Buffer) {
        st.buf += d.toString("latin1");
        st.waiter?.();
      },
      drain() {
        st.drainWaiter?.();
      },
      close() {
        st.closed = true;
        st.waiter?.();
        st.drainWaiter?.();
      },
      end() {
        st.closed = true;
        st.waiter?.();
      },
      error() {
        st.closed = true;
        st.waiter?.();
      },
    };
    const connecting = opts.unix
      ? Bun.connect<Conn>({ unix: opts.unix, data: st, socket: handlers })
      : Bun.connect<Conn>({ hostname: (opts.host ?? "127.0.0.1").replace(/^\[|\]$/g, ""), port: opts.port!, data: st, socket: handlers });
    const sock = await withTimeout(connecting, timeoutMs, `connect to ${opts.unix ?? `${opts.host ?? "127.0.0.1"}:${opts.port}`}`);
    if (!opts.unix) sock.setNoDelay(true);
    const c = new SmtpClient(sock, st, timeoutMs);
    c.steps.push({ command: "<connect>", reply: await c.readReply() });
    return c;
  }

  /** Read one (possibly multi-line) reply. */
  async readReply(): Promise<SmtpReply> {
    const end = Date.now() + this.timeoutMs;
    const lines: string[] = [];
    let code = 0;
    for (;;) {
      const nl = this.st.buf.indexOf("\r\n");
      if (nl < 0) {
        if (this.st.closed) throw new SmtpError(`connection closed while waiting for a reply${lines.length ? " (partial)" : ""}`, this.steps);
        const left = end - Date.now();
        if (left <= 0) throw new SmtpError(`no reply within ${this.timeoutMs} ms`, this.steps);
        await new Promise<void>((resolve) => {
          const t = setTimeout(resolve, left);
          this.st.waiter = () => {
            clearTimeout(t);
            resolve();
          };
        });
        this.st.waiter = undefined;
        continue;
      }
      const line = this.st.buf.slice(0, nl);
      this.st.buf = this.st.buf.slice(nl + 2);
      const m = /^(\d{3})([ -]?)(.*)$/.exec(line);
      if (!m) throw new SmtpError(`malformed reply line ${JSON.stringify(line)}`, this.steps);
      code = Number(m[1]);
      lines.push(m[3]);
      if (m[2] !== "-") return { code, lines, text: lines.join("\n") };
    }
  }

  /** Write bytes, waiting for `drain` when the kernel buffer is full. */
  async write(data: Uint8Array | string): Promise<void> {
    let buf = typeof data === "string" ? Buffer.from(data, "latin1") : data;
    const end = Date.now() + this.timeoutMs;
    while (buf.length > 0) {
      if (this.st.closed) throw new SmtpError("connection closed while writing", this.steps);
      const n = this.sock.write(buf);
      if (n < 0) throw new SmtpError("connection closed while writing", this.steps);
      buf = buf.subarray(n);
      if (buf.length === 0) break;
      const left = end - Date.now();
      if (left <= 0) throw new SmtpError(`write blocked for ${this.timeoutMs} ms`, this.steps);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.min(left, 100));
        this.st.drainWaiter = () => {
          clearTimeout(t);
          resolve();
        };
      });
      this.st.drainWaiter = undefined;
    }
  }

  /** Send one command line and read its reply; `shown` replaces the line in the transcript (secrets). */
  async command(line: string, shown = line): Promise<SmtpReply> {
    await this.write(line + "\r\n");
    const reply = await this.readReply();
    this.steps.push({ command: shown, reply });
    return reply;
  }

  /** Send a message body (normalised to CRLF, dot-stuffed) and the final ".", read the reply. */
  async data(body: Uint8Array | string): Promise<SmtpReply> {
    await this.write(dotStuff(body));
    const reply = await this.readReply();
    this.steps.push({ command: "<end of data>", reply });
    return reply;
  }

  /** QUIT (reply recorded if the server still answers) and close. Never throws. */
  async quit(): Promise<void> {
    try {
      if (!this.st.closed) await this.command("QUIT");
    } catch {
      // the server may have closed already (e.g. after a 421)
    } finally {
      this.close();
    }
  }

  close(): void {
    try {
      this.sock.end();
    } catch {
      // already closed
    }
  }
}

/**
 * Message bytes for DATA: every line ending becomes CRLF, lines starting with
 * "." get another ".", and the terminating ".\r\n" is appended.
 */
export function dotStuff(body: Uint8Array | string): Buffer {
  const text = typeof body === "string" ? body : Buffer.from(body).toString("latin1");
  const lines = text.split(/\r?\n/);
  if (lines.length && lines[lines.length - 1] === "") lines.pop();
  const out = lines.map((l) => (l.startsWith(".") ? "." + l : l)).join("\r\n");
  return Buffer.from((out.length ? out + "\r\n" : "") + ".\r\n", "latin1");
}

export interface SendMailOptions {
  host?: string;
  port?: number;
  unix?: string;
  from: string;
  rcpts: string[];
  /** header + body; line ends are normalised to CRLF and dot-stuffing is done here */
  data: string | Uint8Array;
  /** authenticate first (AUTH PLAIN by default) */
  auth?: { user: string; password: string; mechanism?: "PLAIN" | "LOGIN" };
  /** EHLO name (default client.milterkit.test) */
  ehlo?: string;
  /** say HELO instead of EHLO (no AUTH possible then) */
  helo?: boolean;
  /** bound on the connection and on every single reply (default 30 s) */
  timeoutMs?: number;
}

export interface SendMailResult {
  /** every command and its reply, starting with the greeting */
  steps: SmtpStep[];
  /** the reply codes in order (greeting first) */
  codes: number[];
  /** true if the message was accepted (2xx after the end of DATA) */
  accepted: boolean;
  /** the reply to the end of DATA, if the session got that far */
  final?: SmtpReply;
  /** the first 4xx/5xx reply that ended the transaction, if any */
  failure?: SmtpStep;
}

/**
 * Send one message: greeting, EHLO (or HELO), [AUTH], MAIL, RCPT..., DATA,
 * the message, QUIT. Stops at the first failing step (any 4xx/5xx, except a
 * failing RCPT while another one was accepted) and then sends QUIT.
 * Throws SmtpError only if the connection breaks or a reply does not come.
 */
export async function sendMail(o: SendMailOptions): Promise<SendMailResult> {
  const c = await SmtpClient.connect({ host: o.host, port: o.port, unix: o.unix, timeoutMs: o.timeoutMs });
  let outcome: { failure?: SmtpStep; final?: SmtpReply };
  try {
    outcome = await transaction(c, o);
  } finally {
    await c.quit();
  }
  const { failure, final } = outcome;
  return {
    steps: c.steps,
    codes: c.steps.map((s) => s.reply.code),
    accepted: !!final && final.code >= 200 && final.code < 300,
    final,
    failure,
  };
}

async function transaction(c: SmtpClient, o: SendMailOptions): Promise<{ failure?: SmtpStep; final?: SmtpReply }> {
  const last = () => ({ failure: c.steps[c.steps.length - 1] });
  const ok = (r: SmtpReply, want = 2) => Math.floor(r.code / 100) === want;
  if (!ok(c.steps[0].reply)) return last();
  const name = o.ehlo ?? "client.milterkit.test";
  if (!ok(await c.command(`${o.helo ? "HELO" : "EHLO"} ${name}`))) return last();
  if (o.auth) {
    const mech = o.auth.mechanism ?? "PLAIN";
    if (mech === "PLAIN") {
      const cred = Buffer.from(`\0${o.auth.user}\0${o.auth.password}`, "latin1").toString("base64");
      if (!ok(await c.command(`AUTH PLAIN ${cred}`, "AUTH PLAIN <credentials>"))) return last();
    } else {
      const b64 = (s: string) => Buffer.from(s, "latin1").toString("base64");
      if (!ok(await c.command("AUTH LOGIN"), 3)) return last();
      if (!ok(await c.command(b64(o.auth.user), "<user>"), 3)) return last();
      if (!ok(await c.command(b64(o.auth.password), "<password>"))) return last();
    }
  }
  if (!ok(await c.command(`MAIL FROM:<${o.from}>`))) return last();
  let accepted = 0;
  let firstRcptFailure: SmtpStep | undefined;
  for (const r of o.rcpts) {
    if (ok(await c.command(`RCPT TO:<${r}>`))) accepted++;
    else firstRcptFailure ??= c.steps[c.steps.length - 1];
  }
  if (accepted === 0) return { failure: firstRcptFailure };
  if (!ok(await c.command("DATA"), 3)) return last();
  const final = await c.data(o.data);
  return ok(final) ? { final } : { final, failure: c.steps[c.steps.length - 1] };
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const t = setTimeout(() => reject(new SmtpError(`${what}: no answer within ${ms} ms`)), ms);
    p.then(
      (v) => {
        clearTimeout(t);
        resolve(v);
      },
      (e) => {
        clearTimeout(t);
        reject(e instanceof Error ? new SmtpError(`${what}: ${e.message}`) : e);
      },
    );
  });
}
