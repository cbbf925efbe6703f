/**
 * From options to what a session sends: the macros of every stage (the
 * original's defaults, then the --<stage>-macro overrides), the message,
 * and — once the milter's options are known — every step encoded for that
 * negotiation (PreparedSession), so the load generator encodes a session
 * once and reuses the bytes for every connection with the same negotiation.
 */
import { macroKey, type MacroStage, type Negotiated } from "../milter/index.ts";
import { prepareBody, prepareStep, type ClientAddress, type PreparedStep } from "../mta-side/index.ts";
import type { ConnectionSpec } from "../net/spec.ts";
import { wireValue, type MessageState } from "./message.ts";
import type { MacroStageOption, TestServerOptions } from "./options.ts";

export type MacroList = [string, string][];

export interface SessionPlan {
  connectHost: string;
  client: ClientAddress;
  heloFqdn: string;
  /** The message as sent (each of the nMessages messages is the same). */
  message: MessageState;
  unknown?: string;
  nMessages: number;
  macros: {
    connect: MacroList;
    helo: MacroList;
    mail: MacroList;
    /** One list per recipient ({rcpt_addr} differs). */
    rcpt: MacroList[];
    data: MacroList;
    eoh: MacroList;
    eom: MacroList;
  };
}

/** Set a macro, replacing one of the same name in any spelling (`j` ≡ `{j}`). */
function setMacro(list: MacroList, name: string, value: string): void {
  const key = macroKey(name);
  const i = list.findIndex(([n]) => macroKey(n) === key);
  if (i >= 0) list[i] = [list[i][0], value];
  else list.push([name, value]);
}

function withOverrides(defaults: MacroList, overrides: readonly [string, string][]): MacroList {
  const list: MacroList = defaults.map(([n, v]) => [n, v]);
  for (const [n, v] of overrides) setMacro(list, n, v);
  return list;
}

/** SMFIC_CONNECT address of a --connect-address spec. */
export function clientAddressOf(spec: ConnectionSpec): ClientAddress {
  if (spec.kind === "unix") return { family: "L", address: spec.path, port: 0 };
  if (spec.kind === "inet6") return { family: "6", address: spec.host ?? "::1", port: spec.port };
  return { family: "4", address: spec.host ?? "127.0.0.1", port: spec.port };
}

export function buildPlan(o: TestServerOptions): SessionPlan {
  const m = (s: MacroStageOption) => o.macros[s];
  const mailDefaults: MacroList = [
    ["{mail_mailer}", "mail_mailer"],
    ["{mail_host}", "mail_host"],
    ["{mail_addr}", "mail_addr"],
  ];
  if (o.authenticatedName !== undefined) mailDefaults.push(["{auth_authen}", o.authenticatedName]);
  if (o.authenticatedType !== undefined) mailDefaults.push(["{auth_type}", o.authenticatedType]);
  if (o.authenticatedAuthor !== undefined) mailDefaults.push(["{auth_author}", o.authenticatedAuthor]);
  return {
    connectHost: o.connectHost,
    client: clientAddressOf(o.connectAddress),
    heloFqdn: o.heloFqdn,
    unknown: o.unknown,
    nMessages: o.nMessages,
    message: {
      from: o.envelopeFrom,
      recipients: o.recipients.map((address) => ({ address })),
      headers: o.headers.map((h) => ({ ...h })),
      body: [...o.bodyChunks],
    },
    macros: {
      connect: withOverrides(
        [["{daemon_name}", o.name], ["{if_name}", "localhost"], ["{if_addr}", "127.0.0.1"], ["j", "mail.example.com"]],
        m("connect"),
      ),
      helo: withOverrides(
        [["{tls_version}", "0"], ["{cipher}", "0"], ["{cipher_bits}", "0"], ["{cert_subject}", "cert_subject"], ["{cert_issuer}", "cert_issuer"]],
        m("helo"),
      ),
      mail: withOverrides(mailDefaults, m("envelope-from")),
      rcpt: o.recipients.map((r) =>
        withOverrides([["{rcpt_mailer}", "rcpt_mailer"], ["{rcpt_host}", "rcpt_host"], ["{rcpt_addr}", r]], m("envelope-recipient")),
      ),
      data: withOverrides([["i", "i"]], m("data")),
      eoh: withOverrides([["i", "i"]], m("end-of-header")),
      eom: withOverrides([["i", "i"]], m("end-of-message")),
    },
  };
}

/** Every step of a session, encoded for one negotiation. */
export interface PreparedSession {
  connect: PreparedStep;
  helo: PreparedStep;
  mail: PreparedStep;
  rcpts: PreparedStep[];
  unknown?: PreparedStep;
  data: PreparedStep;
  headers: PreparedStep[];
  eoh: PreparedStep;
  body: PreparedStep[];
  eom: PreparedStep;
  abort: PreparedStep;
  quit: PreparedStep;
}

/**
 * A requested macro (symbol list) that we have no value for is defined with
 * its own name as value, like the original (without its bug of doing so only
 * for some stages).
 */
function forStage(n: Negotiated, stage: MacroStage, list: MacroList): Map<string, string> {
  const out = new Map(list);
  const wanted = n.macroLists.get(stage);
  if (wanted) for (const name of wanted) if (!list.some(([k]) => macroKey(k) === macroKey(name))) out.set(name, name);
  return out;
}

export function prepareSession(plan: SessionPlan, n: Negotiated): PreparedSession {
  const { message: msg, macros } = plan;
  const ls = n.leadingSpace;
  return {
    connect: prepareStep(n, { type: "connect", hostname: plan.connectHost, ...connectFields(plan.client) }, forStage(n, 0, macros.connect)),
    helo: prepareStep(n, { type: "helo", hostname: plan.heloFqdn }, forStage(n, 1, macros.helo)),
    mail: prepareStep(n, { type: "mail", address: msg.from, args: [] }, forStage(n, 2, macros.mail)),
    rcpts: msg.recipients.map((r, i) => prepareStep(n, { type: "rcpt", address: r.address, args: [] }, forStage(n, 3, macros.rcpt[i]))),
    ...(plan.unknown !== undefined ? { unknown: prepareStep(n, { type: "unknown", commandLine: plan.unknown }) } : {}),
    data: prepareStep(n, { type: "data" }, forStage(n, 4, macros.data)),
    headers: msg.headers.map((h) => prepareStep(n, { type: "header", name: h.name, value: wireValue(h.raw, ls) })),
    eoh: prepareStep(n, { type: "eoh" }, forStage(n, 6, macros.eoh)),
    body: msg.body.flatMap((chunk) => prepareBody(n, chunk)),
    eom: prepareStep(n, { type: "eob" }, forStage(n, 5, macros.eom)),
    abort: prepareStep(n, { type: "abort" }),
    quit: prepareStep(n, { type: "quit" }),
  };
}

function connectFields(c: ClientAddress): { family: "U" } | { family: "4" | "6" | "L"; port: number; address: string } {
  return c.family === "U" ? { family: "U" } : { family: c.family, port: c.port ?? 0, address: c.address };
}
