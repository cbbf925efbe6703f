/**
 * The test client's milter: answers continue to everything, asks for every
 * event (negotiation as milter-manager's milter-test-client: the offered
 * actions; the offered steps minus RCPT_REJ, HDR_LEADSPC and every NO_* and NR_*
 * bit) and reports each event as text lines or JSON, one write per event.
 */
import {
  type Macros,
  type MilterRequest,
  type OptnegCommand,
  SMFI_CURR_PROT,
  SMFIP_HDR_LEADSPC,
  SMFIP_NO_MASK,
  SMFIP_NR_MASK,
  SMFIP_RCPT_REJ,
} from "../milter/index.ts";
import type { HandlerFactory, MilterHandler, SessionContext, SessionEnd } from "../milter-side/index.ts";
import { type Logger, sessionsFinishedLine } from "../runtime/log.ts";
import type { FdWriter } from "../runtime/output.ts";
import { connectSpec, jsonLine, latin1, macrosText, negotiateLine } from "./format.ts";
import { memoryReport } from "./memory.ts";

export interface TestClientOptions {
  /** Print the events (false = --no-report-request). */
  report: boolean;
  json: boolean;
  out: FdWriter;
  logger: Logger;
  /** --report-memory-profile; `detail` with MILTER_MEMORY_PROFILE=yes. */
  memoryProfile?: { detail: boolean };
}

/** The original's reply: the offered actions; the offered steps without RCPT_REJ, HDR_LEADSPC, NO_* and NR_*. */
export function testClientRequest(offer: OptnegCommand): MilterRequest {
  const protocol = offer.protocol & SMFI_CURR_PROT & ~(SMFIP_RCPT_REJ | SMFIP_HDR_LEADSPC | SMFIP_NO_MASK | SMFIP_NR_MASK);
  return { version: 6, actions: offer.actions, protocol };
}

export interface TestClient {
  factory: HandlerFactory;
  onSessionEnd(ctx: SessionContext, end: SessionEnd): void;
  /** Sessions finished so far. */
  readonly finished: number;
}

export function createTestClient(o: TestClientOptions, running: () => number): TestClient {
  let finished = 0;
  const negotiate = (offer: OptnegCommand, ctx: SessionContext): MilterRequest => {
    if (o.report) {
      o.out.write(o.json
        ? jsonLine("negotiate", ctx.id, { version: offer.version, actions: offer.actions, protocol: offer.protocol })
        : negotiateLine(offer));
    }
    return testClientRequest(offer);
  };
  const quiet: MilterHandler = { negotiate };

  const text = (line: string, macros: Macros | undefined) => o.out.write(line + macrosText(macros));
  const reporting = (ctx: SessionContext): MilterHandler => {
    const m = (letter: string) => ctx.macros.stage(letter);
    if (o.json) {
      const j = (event: string, fields: Record<string, unknown>, letter?: string) =>
        o.out.write(jsonLine(event, ctx.id, fields, letter ? m(letter) : undefined));
      return {
        negotiate,
        connect: (c) => j("connect", { host: c.hostname, family: c.family, ...(c.family === "U" ? {} : { port: c.port, address: c.address }), spec: connectSpec(c) }, "C"),
        helo: (c) => j("helo", { fqdn: c.hostname }, "H"),
        envelopeFrom: (c) => j("envelope-from", { address: c.address, args: c.args }, "M"),
        envelopeRecipient: (c) => j("envelope-recipient", { address: c.address, args: c.args }, "R"),
        data: () => j("data", {}, "T"),
        header: (c) => j("header", { name: c.name, value: c.value }, "L"),
        endOfHeader: () => j("end-of-header", {}, "N"),
        body: (c, _ctx, info) => {
          if (!info.fromEndOfMessage) j("body", { chunk: latin1(c.chunk), size: c.chunk.length }, "B");
        },
        endOfMessage: (c) => j("end-of-message", c.chunk ? { chunk: latin1(c.chunk), size: c.chunk.length } : {}, "E"),
        unknown: (c) => j("unknown", { command: c.commandLine }, "U"),
        abort: (_ctx, info) => {
          if (!info.implicit) j("abort", {});
        },
        newConnection: () => j("quit-nc", {}),
        quit: () => j("quit", {}),
      };
    }
    return {
      negotiate,
      connect: (c) => text(`connect: host=<${c.hostname}>, address=<${connectSpec(c)}>\n`, m("C")),
      helo: (c) => text(`helo: <${c.hostname}>\n`, m("H")),
      envelopeFrom: (c) => text(`envelope-from: <${c.address}>\n`, m("M")),
      envelopeRecipient: (c) => text(`envelope-recipient: <${c.address}>\n`, m("R")),
      data: () => text("data\n", m("T")),
      header: (c) => text(`header: <${c.name}: ${c.value}>\n`, m("L")),
      endOfHeader: () => text("end-of-header\n", m("N")),
      // Data inside `E` is printed by end-of-message, as the original does.
      body: (c, _ctx, info) => {
        if (!info.fromEndOfMessage) text(`body: <${latin1(c.chunk)}>\n`, m("B"));
      },
      endOfMessage: (c) => text(c.chunk ? `end-of-message: <${latin1(c.chunk)}>\n` : "end-of-message\n", m("E")),
      unknown: (c) => text(`unknown: <${c.commandLine}>\n`, m("U")),
      abort: (_ctx, info) => {
        if (!info.implicit) o.out.write("abort\n");
      },
    };
  };

  return {
    factory: o.report ? reporting : () => quiet,
    onSessionEnd(ctx, end) {
      finished++;
      if (o.report) o.out.write(o.json ? jsonLine("finished", ctx.id, { reason: end.reason, ...(end.error ? { error: end.error.message } : {}) }) : "finished\n");
      o.logger.statistics(sessionsFinishedLine(finished, 1, running()));
      if (o.memoryProfile) o.out.write(memoryReport(o.memoryProfile.detail, o.json ? ctx.id : undefined));
    },
    get finished() {
      return finished;
    },
  };
}
