/**
 * milter-test-server options: the original's surface (docs/tools.md §2.1)
 * plus --n-messages, --json and the load mode. Parsed from argv in order,
 * because the original lets option order decide between -m and -f/-r.
 * Pure: file reading is done by the caller through `readFile`.
 */
import { parseSpec, type ConnectionSpec } from "../net/spec.ts";
import { parseMailFile, type HeaderField } from "./mail-file.ts";

export class OptionError extends Error {
  override readonly name = "OptionError";
}

/** Stages that take `--<stage>-macro NAME:VALUE`. */
export const MACRO_STAGES = ["connect", "helo", "envelope-from", "envelope-recipient", "data", "end-of-header", "end-of-message"] as const;
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

/** How one option is spelled and whether it takes a value. */
interface Spec {
  long: string;
  short?: string;
  aliases?: string[];
  value: "none" | "required" | "optional";
}

export const OPTION_SPECS: readonly Spec[] = [
  { long: "name", value: "required" },
  { long: "connection-spec", short: "s", value: "required" },
  { long: "negotiate-version", value: "required" },
  { long: "connect-host", value: "required" },
  { long: "connect-address", value: "required" },
  { long: "helo-fqdn", value: "required" },
  { long: "envelope-from", short: "f", aliases: ["from"], value: "required" },
  { long: "envelope-recipient", short: "r", aliases: ["recipient"], value: "required" },
  { long: "header", short: "h", value: "required" },
  { long: "body", short: "b", value: "required" },
  { long: "unknown", value: "required" },
  { long: "authenticated-name", value: "required" },
  { long: "authenticated-type", value: "required" },
  { long: "authenticated-author", value: "required" },
  { long: "mail-file", short: "m", value: "required" },
  { long: "output-message", value: "none" },
  { long: "color", value: "optional" },
  { long: "connection-timeout", value: "required" },
  { long: "reading-timeout", value: "required" },
  { long: "writing-timeout", value: "required" },
  { long: "end-of-message-timeout", value: "required" },
  { long: "all-timeouts", value: "required" },
  { long: "threads", short: "t", value: "required" },
  { long: "verbose", short: "v", value: "none" },
  { long: "n-messages", value: "required" },
  { long: "json", value: "none" },
  { long: "sessions", value: "required" },
  { long: "concurrency", value: "required" },
  { long: "max-time", value: "required" },
  ...MACRO_STAGES.map((s): Spec => ({ long: `${s}-macro`, value: "required" })),
];

export const DEFAULT_SPEC = "inet:10025@[127.0.0.1]";
export const DEFAULT_CONNECT_ADDRESS = "inet:50443@[192.168.123.123]";
/** The original's default body: one chunk of four lines. */
export const DEFAULT_BODY = "La de da de da 1.\nLa de da de da 2.\nLa de da de da 3.\nLa de da de da 4.";

/** Argument list in order: [long name, value] (value undefined for flags). Throws OptionError. */
export function orderedOptions(argv: readonly string[]): [string, string | undefined][] {
  const byLong = new Map<string, Spec>();
  const byShort = new Map<string, Spec>();
  for (const s of OPTION_SPECS) {
    byLong.set(s.long, s);
    for (const a of s.aliases ?? []) byLong.set(a, s);
    if (s.short) byShort.set(s.short, s);
  }
  const out: [string, string | undefined][] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === "--") {
      if (i + 1 < argv.length) throw new OptionError(`unexpected argument '${argv[i + 1]}'`);
      break;
    }
    if (arg.startsWith("--")) {
      const eq = arg.indexOf("=");
      const name = eq < 0 ? arg.slice(2) : arg.slice(2, eq);
      const spec = byLong.get(name);
      if (!spec) throw new OptionError(`unknown option '--${name}'`);
      if (spec.value === "none") {
        if (eq >= 0) throw new OptionError(`option '--${name}' takes no value`);
        out.push([spec.long, undefined]);
      } else if (eq >= 0) out.push([spec.long, arg.slice(eq + 1)]);
      else if (spec.value === "optional") out.push([spec.long, undefined]);
      else if (i + 1 < argv.length) out.push([spec.long, argv[++i]]);
      else throw new OptionError(`option '--${name}' needs a value`);
    } else if (arg.startsWith("-") && arg.length > 1) {
      for (let j = 1; j < arg.length; j++) {
        const spec = byShort.get(arg[j]);
        if (!spec) throw new OptionError(`unknown option '-${arg[j]}'`);
        if (spec.value === "none") {
          out.push([spec.long, undefined]);
          continue;
        }
        const rest = arg.slice(j + 1);
        if (rest !== "") out.push([spec.long, rest]);
        else if (i + 1 < argv.length) out.push([spec.long, argv[++i]]);
        else throw new OptionError(`option '-${arg[j]}' needs a value`);
        break;
      }
    } else {
      throw new OptionError(`unexpected argument '${arg}'`);
    }
  }
  return out;
}

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
  for (const [name, value] of orderedOptions(argv)) {
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
