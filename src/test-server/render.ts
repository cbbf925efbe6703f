/**
 * milter-test-server's output (pure: results in, bytes out):
 * - `status: …[ [code]<ext>(message)]`, `elapsed-time: %g seconds`,
 *   `Quarantine reason: <…>` as the original (docs/tools.md §2.2), plus
 *   `stage: …` saying which stage and reply produced a status other than
 *   pass;
 * - `--output-message`: envelope, header and body after the milter's
 *   changes with ` `/`-`/`+` prefixes (tools.md §2.3);
 * - the JSON form of a session.
 * Header and envelope text is latin1 (bytes as on the wire), so output is
 * built as Buffers, never through UTF-8.
 */
import { actionNicknames, protocolNicknames } from "../milter/index.ts";
import type { EndOfMessageOutcome, Modification, ReplyCode, StepOutcome } from "../mta-side/index.ts";
import type { HeaderField } from "./mail-file.ts";
import { displayValue, type MessageState, type Recipient } from "./message.ts";
import type { MessageResult, SessionResult } from "./session.ts";

/** C's `%g`: 6 significant digits, trailing zeros removed, exponent form below 1e-4 and from 1e6. */
export function formatG(x: number): string {
  if (x === 0) return "0";
  if (!Number.isFinite(x)) return String(x);
  let exp = Math.floor(Math.log10(Math.abs(x)));
  // Rounding to 6 digits may carry into the next power of ten (999999.5 → 1e+06).
  if (Math.abs(Number(x.toPrecision(6))) >= 10 ** (exp + 1)) exp++;
  if (exp < -4 || exp >= 6) {
    const [mant, e] = x.toExponential(5).split("e");
    const m = mant.includes(".") ? mant.replace(/0+$/, "").replace(/\.$/, "") : mant;
    const n = Number(e);
    return `${m}e${n < 0 ? "-" : "+"}${String(Math.abs(n)).padStart(2, "0")}`;
  }
  const fixed = x.toFixed(Math.max(0, 5 - exp));
  return fixed.includes(".") ? fixed.replace(/0+$/, "").replace(/\.$/, "") : fixed;
}

/** `[554]<5.7.1>(text)`; missing pieces print `(null)` like the original. */
function replyPart(r: ReplyCode): string {
  return `[${r.code}]<${r.extended ?? "(null)"}>(${r.message === "" ? "(null)" : r.message})`;
}

export function statusLine(m: MessageResult): string {
  return `status: ${m.status}${m.reply ? ` ${replyPart(m.reply)}` : ""}`;
}

/** What produced a status: `end-of-message (reply-code 554 5.7.1 go away)`, `helo (timeout/reading: …)`. */
export function describeOutcome(o: StepOutcome | EndOfMessageOutcome | undefined): string {
  if (!o) return "";
  if (!o.ok) return `${o.status}${o.timer ? `/${o.timer}` : ""}: ${o.detail}`;
  return o.reply ? `${o.status} ${o.reply.text.replace(/\r\n/g, " / ")}` : o.status;
}

const RULE = 39;
const rule = (title: string) => `${title}${"-".repeat(RULE - title.length)}`;

const GREEN = "\x1b[32m";
const RED = "\x1b[31m";
const RESET = "\x1b[0m";

type Mark = " " | "-" | "+";

class Out {
  private parts: Buffer[] = [];
  constructor(private readonly color: boolean) {}
  text(s: string): void {
    this.parts.push(Buffer.from(s, "latin1"));
  }
  line(mark: Mark, s: string): void {
    const l = `${mark} ${s}`;
    if (this.color && mark === "+") this.text(`${GREEN}${l}${RESET}\n`);
    else if (this.color && mark === "-") this.text(`${RED}${l}${RESET}\n`);
    else this.text(`${l}\n`);
  }
  bytes(b: Uint8Array): void {
    this.parts.push(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
  }
  done(): Buffer {
    return Buffer.concat(this.parts);
  }
}

function mailFrom(m: MessageState): string {
  return `MAIL FROM:${m.from}${m.fromArgs ? ` ${m.fromArgs}` : ""}`;
}

function rcptTo(r: Recipient): string {
  return `RCPT TO:${r.address}${r.args ? ` ${r.args}` : ""}`;
}

function sameHeader(a: HeaderField, b: HeaderField): boolean {
  return a.name === b.name && a.raw === b.raw;
}

function headerLines(out: Out, mark: Mark, h: HeaderField): void {
  const [first, ...rest] = displayValue(h.raw).split("\n");
  out.line(mark, `${h.name}: ${first}`);
  for (const l of rest) out.line(mark, l);
}

/**
 * Header diff: walk both lists; equal → ` `; a result header not among the
 * remaining originals → `+`; an original not among the remaining results →
 * `-`; same name → `-` then `+`; otherwise `+`. Left-overs: `-` / `+`.
 */
export function diffHeaders(sent: readonly HeaderField[], result: readonly HeaderField[]): [Mark, HeaderField][] {
  const out: [Mark, HeaderField][] = [];
  let i = 0;
  let j = 0;
  while (i < sent.length && j < result.length) {
    const o = sent[i];
    const r = result[j];
    if (sameHeader(o, r)) {
      out.push([" ", r]);
      i++;
      j++;
    } else if (!sent.slice(i).some((h) => sameHeader(h, r))) {
      out.push(["+", r]);
      j++;
    } else if (!result.slice(j).some((h) => sameHeader(h, o))) {
      out.push(["-", o]);
      i++;
    } else if (o.name === r.name) {
      out.push(["-", o], ["+", r]);
      i++;
      j++;
    } else {
      out.push(["+", r]);
      j++;
    }
  }
  for (; i < sent.length; i++) out.push(["-", sent[i]]);
  for (; j < result.length; j++) out.push(["+", result[j]]);
  return out;
}

/** Body for display: converted to UTF-8 from the Content-Type charset when there is one. */
export function displayBody(headers: readonly HeaderField[], body: Uint8Array): { bytes: Uint8Array; error?: string } {
  const ct = headers.find((h) => h.name.toLowerCase() === "content-type");
  const m = ct ? /charset\s*=\s*"?([^";\s]+)"?/i.exec(ct.raw) : null;
  if (!m) return { bytes: body };
  const charset = m[1].toLowerCase();
  if (charset === "utf-8" || charset === "utf8" || charset === "us-ascii") return { bytes: body };
  try {
    // WHATWG maps iso-8859-1 to windows-1252; latin1 proper is byte = code point.
    const text = /^(iso-8859-1|iso8859-1|latin1|l1)$/.test(charset)
      ? Buffer.from(body).toString("latin1")
      : new TextDecoder(charset as ConstructorParameters<typeof TextDecoder>[0], { fatal: true }).decode(body);
    return { bytes: Buffer.from(text, "utf8") };
  } catch (e) {
    return { bytes: body, error: `cannot convert the body from ${m[1]} to UTF-8: ${(e as Error).message}` };
  }
}

export function renderOutputMessage(m: MessageResult, color: boolean): Buffer {
  const out = new Out(color);
  const sent = m.sent;
  const res = m.result;
  out.text(`${rule("Envelope:")}\n`);
  if (mailFrom(sent) === mailFrom(res)) out.line(" ", mailFrom(res));
  else {
    out.line("-", mailFrom(sent));
    out.line("+", mailFrom(res));
  }
  // Recipients: positional diff.
  const n = Math.max(sent.recipients.length, res.recipients.length);
  for (let i = 0; i < n; i++) {
    const a = sent.recipients[i];
    const b = res.recipients[i];
    if (a && b && rcptTo(a) === rcptTo(b)) out.line(" ", rcptTo(b));
    else {
      if (a) out.line("-", rcptTo(a));
      if (b) out.line("+", rcptTo(b));
    }
  }
  out.text(`${rule("Header:")}\n`);
  for (const [mark, h] of diffHeaders(sent.headers, res.headers)) headerLines(out, mark, h);
  const body = Buffer.concat(res.body);
  const shown = displayBody(res.headers, body);
  if (shown.error) out.text(`${rule("Error:")}\n${shown.error}\n`);
  out.text(`${rule("Body:")}\n`);
  out.bytes(shown.bytes);
  out.text("\n");
  return out.done();
}

/** The original's report for one session (status, elapsed-time, quarantine, message), plus our stage line. */
export function renderSession(s: SessionResult, opts: { outputMessage: boolean; color: boolean }): Buffer {
  const out = new Out(opts.color);
  const elapsed = `elapsed-time: ${formatG(s.elapsedMs / 1000)} seconds\n`;
  const many = s.messages.length > 1;
  s.messages.forEach((m, i) => {
    if (many) out.text(`message: ${i + 1}/${s.messages.length}\n`);
    out.text(`${statusLine(m)}\n`);
    if (!many) out.text(elapsed);
    if (m.status !== "pass") out.text(`stage: ${m.stage} (${describeOutcome(m.outcome)})\n`);
    if (m.quarantine !== undefined) out.text(`Quarantine reason: <${m.quarantine}>\n`);
    if (opts.outputMessage && m.status !== "error") {
      out.text("\n");
      out.bytes(renderOutputMessage(m, opts.color));
    }
  });
  if (many) out.text(elapsed);
  return out.done();
}

// ---------------------------------------------------------------------------
// JSON

const latin1 = (b: Uint8Array) => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString("latin1");

function jsonMessage(m: MessageState): object {
  return {
    from: m.from,
    ...(m.fromArgs !== undefined ? { fromArgs: m.fromArgs } : {}),
    recipients: m.recipients.map((r) => (r.args !== undefined ? { address: r.address, args: r.args } : { address: r.address })),
    headers: m.headers.map((h) => ({ name: h.name, value: displayValue(h.raw), raw: h.raw })),
    body: latin1(Buffer.concat(m.body)),
  };
}

function jsonModification(mod: Modification): object {
  return mod.type === "replace-body" ? { type: mod.type, chunk: latin1(mod.chunk) } : mod;
}

function jsonReply(r: ReplyCode | undefined): object | null {
  return r ? { code: r.code, extended: r.extended ?? null, message: r.message, text: r.text } : null;
}

/**
 * A session as a JSON-ready object. Strings carrying mail data are latin1
 * (one character per byte). `status`/`stage`/`reply` at the top describe
 * the last message.
 */
export function sessionJson(s: SessionResult, spec: string): object {
  const last = s.messages[s.messages.length - 1];
  const neg = s.negotiate.ok ? s.negotiate.negotiated : undefined;
  return {
    spec,
    status: s.connected ? (last?.status ?? "error") : "error",
    stage: last?.stage ?? s.failure?.stage ?? null,
    reply: jsonReply(last?.reply),
    quarantine: last?.quarantine ?? null,
    elapsedSeconds: s.elapsedMs / 1000,
    error: s.failure ? { status: s.failure.status, stage: s.failure.stage, timer: s.failure.timer ?? null, detail: s.failure.detail } : null,
    negotiated: neg
      ? {
          version: neg.version,
          actions: actionNicknames(neg.actions),
          protocol: protocolNicknames(neg.protocol),
          maxDataSize: neg.maxDataSize,
          macroLists: Object.fromEntries(neg.macroLists),
        }
      : null,
    messages: s.messages.map((m) => ({
      status: m.status,
      stage: m.stage,
      decision: m.outcome ? (m.outcome.ok ? m.outcome.status : m.outcome.status) : null,
      via: m.outcome && m.outcome.ok ? m.outcome.via : null,
      reply: jsonReply(m.reply),
      quarantine: m.quarantine ?? null,
      progress: m.progress,
      rejectedRecipients: m.rejectedRecipients.map((r) => ({ address: r.address, status: r.outcome.status, reply: jsonReply(r.outcome.reply) })),
      modifications: m.modifications.map(jsonModification),
      sent: jsonMessage(m.sent),
      result: jsonMessage(m.result),
    })),
  };
}
