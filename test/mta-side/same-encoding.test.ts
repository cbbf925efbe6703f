// sameEncoding(a, b): may a step prepared for negotiation `a` be sent to a milter that negotiated
// `b`? The manager encodes each envelope command once for all children that negotiated alike; the
// answer must agree with negotiationKey, and equal answers must mean byte-identical steps.
import { expect, test } from "bun:test";
import { makeOffer, negotiateAsMta, SMFIP_NOHELO, SMFIP_NR_HDR, type Negotiated } from "../../src/milter/index.ts";
import { negotiationKey, prepareStep, sameEncoding } from "../../src/mta-side/index.ts";

const offer = makeOffer();
const neg = (protocol: number, lists?: { stage: number; macros: string }[], version = 6): Negotiated =>
  negotiateAsMta(offer, { type: "optneg", version, actions: offer.actions, protocol, ...(lists ? { macroLists: lists } : {}) } as never);

const cases: [string, Negotiated, Negotiated][] = [
  ["same words, no lists", neg(0), neg(0)],
  ["another protocol word", neg(0), neg(SMFIP_NOHELO)],
  ["another NR bit", neg(0), neg(SMFIP_NR_HDR)],
  ["another version", neg(0), neg(0, undefined, 4)],
  ["same macro lists", neg(0, [{ stage: 1, macros: "{mail_addr} i" }]), neg(0, [{ stage: 1, macros: "{mail_addr} i" }])],
  ["other macro lists", neg(0, [{ stage: 1, macros: "{mail_addr}" }]), neg(0, [{ stage: 1, macros: "i" }])],
  ["a list against none", neg(0, [{ stage: 1, macros: "i" }]), neg(0)],
];

for (const [name, a, b] of cases) {
  test(`${name}: sameEncoding agrees with negotiationKey, and equal means the same bytes`, () => {
    const same = negotiationKey(a) === negotiationKey(b);
    expect(sameEncoding(a, b)).toBe(same);
    expect(sameEncoding(b, a)).toBe(same);
    if (!same) return;
    const macros = new Map([["{mail_addr}", "alice@example.com"], ["i", "4ABC123"], ["j", "mx.example.net"]]);
    for (const cmd of [
      { type: "helo", hostname: "client.example.net" },
      { type: "mail", address: "<alice@example.com>", args: ["SIZE=100"] },
      { type: "data" },
    ] as const) {
      expect(Buffer.from(prepareStep(a, cmd, macros).bytes ?? [])).toEqual(Buffer.from(prepareStep(b, cmd, macros).bytes ?? []));
    }
  });
}
