/**
 * milterkit's milter side: we are the milter, an MTA connects to us.
 *
 *   import { serveMilter, Continue, eom } from "../milter-side/index.ts";
 *   const server = await serveMilter("inet:10025@[127.0.0.1]", (ctx) => ({
 *     async envelopeFrom(cmd, ctx) { return Continue; },
 *     endOfMessage: () => eom([{ type: "addheader", name: "X-Seen", value: "yes" }]),
 *   }));
 *
 * - types.ts      MilterHandler, SessionContext, results, MilterSessionError, SessionOptions
 * - replies.ts    Continue/Accept/Reject/Tempfail/Discard/Skip/Shutdown/Close, replyCode(), eom()
 * - negotiate.ts  the libmilter-like default negotiation request
 * - session.ts    MilterSession (one connection) and startSession()
 * - server.ts     serveMilter() → MilterServer
 * Reference: docs/api/milter-side.md.
 */
export * from "./types.ts";
export * from "./replies.ts";
export { defaultRequest } from "./negotiate.ts";
export { DEFAULT_IDLE_TIMEOUT_MS, MilterSession, resolveSessionOptions, startSession } from "./session.ts";
export { type MilterServer, type ServeOptions, serveMilter } from "./server.ts";
