/**
 * milterkit's MTA side: we connect to a milter and drive it (used by
 * `milterkit test-server` and by the manager for its child milters).
 *
 *   import { MilterClient } from "../mta-side/index.ts";
 *
 * - client.ts   MilterClient: one connection, open() = connect + OPTNEG, one method per step
 * - outcome.ts  typed outcomes (decision or failure), modifications, reply-code parsing
 *
 * Reference: docs/api/mta-side.md.
 */
export * from "./client.ts";
export * from "./outcome.ts";
