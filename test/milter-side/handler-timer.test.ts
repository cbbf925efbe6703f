// The session's handler timeout uses one timer per session, restarted for every async handler call
// (session.ts armHandlerTimer): calls that settle in time never trip it, however many there are and
// however long the session lasts; a later call that never settles is still given up after the timeout.
import { afterEach, expect, test } from "bun:test";
import { Continue } from "../../src/milter-side/index.ts";
import type { MtaCommand } from "../../src/milter/index.ts";
import { FULL_OFFER, type Recorded, serve, sleep } from "./helpers.ts";

const opened: Recorded[] = [];
afterEach(async () => {
  for (const r of opened.splice(0)) await r.close();
});

const CONNECT: MtaCommand = { type: "connect", hostname: "mx.example.net", family: "4", port: 50443, address: "192.0.2.10" };
const HELO: MtaCommand = { type: "helo", hostname: "client.example.net" };
const MAIL: MtaCommand = { type: "mail", address: "<alice@example.com>", args: [] };
const RCPT: MtaCommand = { type: "rcpt", address: "<bob@example.org>", args: [] };
const DATA: MtaCommand = { type: "data" };

test("async handlers that each take most of the timeout all answer; a later one that never settles is given up", async () => {
  const slow = async () => {
    await sleep(60);
    return Continue;
  };
  const r = await serve(() => ({ connect: slow, helo: slow, envelopeFrom: slow, envelopeRecipient: slow, data: () => new Promise(() => {}) }), { handlerTimeoutMs: 200 });
  opened.push(r);
  const mta = await r.connect();
  mta.send(FULL_OFFER, CONNECT, HELO, MAIL, RCPT, DATA);
  // 4 × 60 ms beyond 200 ms in all, each call well within it; then the DATA handler times out.
  expect(await mta.nextTypes(6)).toEqual(["optneg", "continue", "continue", "continue", "continue", "tempfail"]);
  await mta.quit();
  await r.idle();
  expect(r.errors.map((e) => e.kind)).toEqual(["timeout"]);
  expect(r.errors[0].message).toContain("data handler did not finish within 200 ms");
});

test("a quiet pause between commands is not a handler timeout", async () => {
  const r = await serve(() => ({ helo: async () => Continue, envelopeFrom: async () => Continue }), { handlerTimeoutMs: 80 });
  opened.push(r);
  const mta = await r.connect();
  mta.send(FULL_OFFER, CONNECT, HELO);
  expect(await mta.nextTypes(3)).toEqual(["optneg", "continue", "continue"]);
  await sleep(200); // the session's timer fires with no call pending
  mta.send(MAIL);
  expect(await mta.nextTypes(1)).toEqual(["continue"]);
  await mta.quit();
  await r.idle();
  expect(r.errors).toEqual([]);
});
