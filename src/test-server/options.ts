/**
 * milter-test-server options (listed in src/cli/options/test-server.ts) turned into a
 * session's settings. Applied in command-line order, because the original lets option
 * order decide between -m and -f/-r. Pure: file reading is done by the caller through `readFile`.
 */
import { type Scanned, scanOr } from "../cli/options/scan.ts";
import { MACRO_STAGES, TEST_SERVER_TABLE } from "../cli/options/test-server.ts";
import { parseSpec, type ConnectionSpec } from "../net/spec.ts";
import { parseMailFile, type HeaderField } from "./mail-file.ts";

export class OptionError extends Error {
  override readonly name = "OptionError";
}

export { MACRO_STAGES };
export type MacroStageOption = (typeof MACRO_STAGES)[number];

export interface Timeouts {
  connectionMs: number;
  readingMs: number;
  writingMs: number;
  endOfMessageMs: number;
}

export interface TestServerOptions {
  /** Server name; also the default `{daemon_name}`. */
  name: string;
  spec: ConnectionSpec;
  negotiateVersion: number;
  connectHost: string;
  /** Client address sent in SMFIC_CONNECT (data only). */
  connectAddress: ConnectionSpec;
  heloFqdn: string;
  /** `<…>` form. */
  envelopeFrom: string;
  /** `<…>` form, in order. */
  recipients: string[];
  headers: HeaderField[];
  /** One BODY packet per chunk (a mail file's body is already cut at line boundaries). */
  bodyChunks: Uint8Array[];
  unknown?: string;
  authenticatedName?: string;
  authenticatedType?: string;
  authenticatedAuthor?: string;
  /** `--<stage>-macro` values in order, per stage. */
  macros: Record<MacroStageOption, [string, string][]>;
  outputMessage: boolean;
  color: boolean;
  timeouts: Timeouts;
  /** Sessions run at the same time (the original's -t; 0 and 1 both mean one). */
  threads: number;
  verbose: boolean;
  /** Messages per connection (abort between them). */
  nMessages: number;
  json: boolean;
  /** Load mode when set: N complete sessions. */
  sessions?: number;
  concurrency: number;
  /** Load mode: stop starting sessions (and give up running ones) after this. */
  maxTimeMs: number;
}

export const DEFAULT_SPEC = "inet:10025@[127.0.0.1]";
export const DEFAULT_CONNECT_ADDRESS = "inet:50443@[192.168.123.123]";
/** The original's default body: one chunk of four lines. */
export const DEFAULT_BODY = "La de da de da 1.\nLa de da de da 2.\nLa de da de da 3.\nLa de da de da 4.";

export interface ParseContext {
  /** Read a file (`-` = standard input); throw an Error with a readable message. */
  readFile(path: string): Uint8Array;
  /** MILTER_DEFAULT_CONNECTION_SPEC. */
  env?: Record<string, string | undefined>;
  /** Is stdout a terminal (for --color=auto). */
  isTty?: boolean;
}

/** `<addr>` unless already wrapped. */
export function wrapAddress(a: string): string {
  return a.startsWith("<") && a.endsWith(">") ? a : `<${a}>`;
}

/** `NAME:VALUE` → [NAME, VALUE]; OptionError naming the option otherwise. */
function nameValue(option: string, text: string): [string, string] {
  const colon = text.indexOf(":");
  if (colon <= 0) throw new OptionError(`--${option}: expected NAME:VALUE, got '${text}'`);
  return [text.slice(0, colon), text.slice(colon + 1)];
}

function number(option: string, text: string, min: number, integer: boolean): number {
  const v = Number(text);
  if (text.trim() === "" || !Number.isFinite(v) || v < min || (integer && !Number.isInteger(v))) {
    throw new OptionError(`--${option}: '${text}' is not ${integer ? "an integer" : "a number"} ≥ ${min}`);
  }
  return v;
}

function spec(option: string, text: string): ConnectionSpec {
  try {
    return parseSpec(text.startsWith("/") ? `unix:${text}` : text);
  } catch (e) {
    throw new OptionError(`--${option}: ${(e as Error).message}`);
  }
}

/** Parse argv (without the program name) into options. Throws OptionError. */
export function parseTestServerArgs(argv: readonly string[], ctx: ParseContext): TestServerOptions {
  const scanned = scanOr(TEST_SERVER_TABLE, argv, (m) => new OptionError(m));
  return testServerOptions(scanned, ctx);
}

/** The scanned command line as options. Throws OptionError. */
export function testServerOptions(scanned: Scanned, ctx: ParseContext): TestServerOptions {
  if (scanned.operands.length > 0) throw new OptionError(`unexpected argument '${scanned.operands[0]}'`);
  const env = ctx.env ?? {};
  const o: TestServerOptions = {
    name: "milter-test-server",
    spec: spec("connection-spec", env.MILTER_DEFAULT_CONNECTION_SPEC || DEFAULT_SPEC),
    negotiateVersion: 6,
    connectHost: "mx.example.net",
    connectAddress: spec("connect-address", DEFAULT_CONNECT_ADDRESS),
    heloFqdn: "delian",
    envelopeFrom: "",
    recipients: [],
    headers: [],
    bodyChunks: [],
    macros: Object.fromEntries(MACRO_STAGES.map((s) => [s, []])) as unknown as TestServerOptions["macros"],
    outputMessage: false,
    color: false,
    timeouts: { connectionMs: 300_000, readingMs: 10_000, writingMs: 10_000, endOfMessageMs: 300_000 },
    threads: 0,
    verbose: false,
    nMessages: 1,
    json: false,
    concurrency: 1,
    maxTimeMs: 60_000,
  };
  let color = "auto";
  let bodyGiven = false;
  for (const { def, value } of scanned.occurrences) {
    const name = def.long;
    const v = value ?? "";
    switch (name) {
      case "name": o.name = v; break;
      case "connection-spec": o.spec = spec(name, v); break;
      case "negotiate-version": o.negotiateVersion = number(name, v, 0, true); break;
      case "connect-host": o.connectHost = v; break;
      case "connect-address": o.connectAddress = spec(name, v); break;
      case "helo-fqdn": o.heloFqdn = v; break;
      case "envelope-from": o.envelopeFrom = wrapAddress(v); break;
      case "envelope-recipient": o.recipients.push(wrapAddress(v)); break;
      case "header": {
        const [n, val] = nameValue(name, v);
        o.headers.push({ name: n, raw: ` ${val.replace(/^[ \t]+/, "")}` });
        break;
      }
      case "body":
        o.bodyChunks.push(Buffer.from(v, "latin1"));
        bodyGiven = true;
        break;
      case "unknown": o.unknown = v; break;
      case "authenticated-name": o.authenticatedName = v; break;
      case "authenticated-type": o.authenticatedType = v; break;
      case "authenticated-author": o.authenticatedAuthor = v; break;
      case "mail-file": {
        let bytes: Uint8Array;
        try {
          bytes = ctx.readFile(v);
        } catch (e) {
          throw new OptionError(`--mail-file: ${(e as Error).message}`);
        }
        const mail = parseMailFile(bytes);
        if (mail.from !== undefined) o.envelopeFrom = wrapAddress(mail.from);
        for (const r of mail.recipients) o.recipients.push(wrapAddress(r));
        o.headers.push(...mail.headers);
        o.bodyChunks.push(...mail.bodyChunks);
        bodyGiven = true;
        break;
      }
      case "output-message": o.outputMessage = true; break;
      case "color":
        if (value !== undefined && !["yes", "true", "no", "false", "auto"].includes(value)) {
          throw new OptionError(`--color: expected yes, true, no, false or auto, got '${value}'`);
        }
        color = value ?? "yes";
        break;
      case "connection-timeout": o.timeouts.connectionMs = number(name, v, 0, false) * 1000; break;
      case "reading-timeout": o.timeouts.readingMs = number(name, v, 0, false) * 1000; break;
      case "writing-timeout": o.timeouts.writingMs = number(name, v, 0, false) * 1000; break;
      // The original stored this into the writing timeout; we do not copy that bug.
      case "end-of-message-timeout": o.timeouts.endOfMessageMs = number(name, v, 0, false) * 1000; break;
      case "all-timeouts": {
        const ms = number(name, v, 0, false) * 1000;
        o.timeouts = { connectionMs: ms, readingMs: ms, writingMs: ms, endOfMessageMs: ms };
        break;
      }
      case "threads": o.threads = number(name, v, 0, true); break;
      case "verbose": o.verbose = true; break;
      case "n-messages": o.nMessages = number(name, v, 1, true); break;
      case "json": o.json = true; break;
      case "sessions": o.sessions = number(name, v, 1, true); break;
      case "concurrency": o.concurrency = number(name, v, 1, true); break;
      case "max-time": o.maxTimeMs = number(name, v, 0.001, false) * 1000; break;
      case "help": case "version": break; // answered by the tool runner
      default: {
        const stage = name.slice(0, -"-macro".length) as MacroStageOption;
        o.macros[stage].push(nameValue(name, v));
      }
    }
  }
  if (o.envelopeFrom === "") o.envelopeFrom = "<sender@example.com>";
  if (o.recipients.length === 0) o.recipients.push("<receiver@example.org>");
  const has = (n: string) => o.headers.some((h) => h.name.toLowerCase() === n);
  if (!has("from")) o.headers.push({ name: "From", raw: ` ${o.envelopeFrom}` });
  if (!has("to")) o.headers.push({ name: "To", raw: ` ${o.recipients[0]}` });
  if (!bodyGiven) o.bodyChunks.push(Buffer.from(DEFAULT_BODY, "latin1"));
  o.color = color === "yes" || color === "true" || (color === "auto" && !!ctx.isTty);
  return o;
}
