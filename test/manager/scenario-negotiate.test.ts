// manager.md §2.13 "Negotiate / availability" (+ manager.md §2.3; manager.md §2.7 at negotiation; manager.md §2.9 at connect).
import { afterEach, describe, expect, test } from "bun:test";
import { SMFIP_NR_HDR, SMFIP_NR_CONN } from "../../src/milter/index.ts";
import type { Conditions } from "../../src/manager/stop-hook.ts";
import { chain, expectStatus, received, SESSION, type Setup, setup, unreachableMilter } from "./support/harness.ts";

let s: Setup;
afterEach(async () => {
  await s?.close();
});

describe("negotiate / availability", () => {
  test("negotiate-no-child: a normal reply, then connect-no-child: the manager's fallback (accept)", async () => {
    s = await setup({ scripts: [] });
    const mta = await s.mta();
    expect(mta.negotiated!.version).toBe(6);
    expect(mta.negotiated!.protocol).toBe(0);
    expect(mta.negotiated!.macroLists.size).toBe(0);
    expectStatus(await SESSION.connect(mta), "accept");
  });

  test("negotiate-no-enabled-child / connect-no-enabled-child", async () => {
    s = await setup({ milters: [{ enabled: false }, { enabled: false }] });
    const mta = await s.mta();
    expect(received(s.children, "negotiate")).toEqual([0, 0]);
    expectStatus(await SESSION.connect(mta), "accept");
    expect(received(s.children, "connect")).toEqual([0, 0]);
  });

  test("negotiate-no-available-child / connect-no-available-child", async () => {
    s = await setup({ scripts: [], extra: [await unreachableMilter("milter@10026"), await unreachableMilter("milter@10027")] });
    const mta = await s.mta();
    expectStatus(await SESSION.connect(mta), "accept");
  });

  test("connect-no-available-child with manager.fallback_status = temporary-failure", async () => {
    s = await setup({ scripts: [], extra: [await unreachableMilter("milter@10026")], manager: { fallback_status: "temporary-failure" } });
    const mta = await s.mta();
    expectStatus(await SESSION.connect(mta), "temporary-failure");
  });

  test("negotiate-no-bind: only the listening child is negotiated and used", async () => {
    s = await setup({ scripts: [{}], extra: [await unreachableMilter("milter@10027")] });
    const mta = await s.mta();
    expect(received(s.children, "negotiate")).toEqual([1]);
    expectStatus(await SESSION.connect(mta), "continue");
    expect(received(s.children, "connect")).toEqual([1]);
  });

  for (const status of ["discard", "reject", "temporary-failure"] as const) {
    test(`negotiate-fallback-${status}: connect answered ${status}, no child sees it`, async () => {
      s = await setup({
        scripts: [{}],
        extra: [await unreachableMilter("milter@10027", { fallback_status: status })],
        manager: { fallback_status: status },
      });
      const mta = await s.mta();
      expect(received(s.children, "negotiate")).toEqual([1]);
      expectStatus(await SESSION.connect(mta), status);
      expect(received(s.children, "connect")).toEqual([0]);
    });
  }

  test("fatal fallback: the missing child's status wins even with manager.fallback_status accept (our choice)", async () => {
    s = await setup({ scripts: [{}], extra: [await unreachableMilter("milter@10027", { fallback_status: "temporary-failure" })] });
    const mta = await s.mta();
    expectStatus(await SESSION.connect(mta), "temporary-failure");
    expectStatus(await SESSION.helo(mta), "temporary-failure");
  });

  test("fatal fallback: the MTA is not told NR_* bits (every command gets the fallback)", async () => {
    s = await setup({ scripts: [{ protocol: SMFIP_NR_CONN | SMFIP_NR_HDR }], extra: [await unreachableMilter("x", { fallback_status: "reject" })] });
    const mta = await s.mta();
    expect(mta.negotiated!.protocol).toBe(0);
  });

  test("NR_* bits all children agree on are passed to the MTA", async () => {
    s = await setup({ scripts: [{ protocol: SMFIP_NR_HDR | SMFIP_NR_CONN }, { protocol: SMFIP_NR_HDR }] });
    const mta = await s.mta();
    expect(mta.negotiated!.protocol).toBe(SMFIP_NR_HDR);
    await chain(mta, "data");
    expectStatus(await SESSION.header(mta), "continue"); // not waited for
    expectStatus(await SESSION.endOfHeader(mta), "continue");
    expect(received(s.children, "header")).toEqual([1, 0]);
  });

  test("a child that never answers negotiation: the MTA still gets its answer within connection_timeout", async () => {
    s = await setup({ scripts: [{ negotiate: "hang" }, {}], milters: [{ connection_timeout: 0.5, reading_timeout: 30 }] });
    const started = Date.now();
    const mta = await s.mta();
    expect(Date.now() - started).toBeLessThan(10_000); // bound, not a timing measurement: reading_timeout would be 30 s
    expectStatus(await SESSION.connect(mta), "continue");
    expect(received(s.children, "connect")).toEqual([0, 1]);
  });

  test("a child that closes at negotiation is dropped with its fallback", async () => {
    s = await setup({ scripts: [{ negotiate: "close" }, {}], milters: [{ fallback_status: "accept" }] });
    const mta = await s.mta();
    expectStatus(await SESSION.connect(mta), "continue");
    expect(received(s.children, "connect")).toEqual([0, 1]);
  });

  test("connect-policy: a condition stops milter@10027 at connect", async () => {
    const conditions: Conditions = { shouldStop: (child, stage) => child.name === "milter@10027" && stage === "connect" };
    s = await setup({ engine: { conditions } });
    const mta = await s.mta();
    expectStatus(await SESSION.connect(mta), "continue");
    expect(received(s.children, "connect")).toEqual([1, 0]);
    // Stopped at connect = out for the rest of the session.
    expectStatus(await SESSION.helo(mta), "continue");
    expect(received(s.children, "helo")).toEqual([1, 0]);
  });

  test("applicable-condition-remote-network: 160.29.167.0/24 is local, so milter@10026 is stopped", async () => {
    const conditions: Conditions = {
      shouldStop(child, stage, ctx) {
        if (child.name !== "milter@10026" || ctx.event.stage !== "connect") return false;
        const c = ctx.event.command;
        return c.family === "4" && c.address.startsWith("160.29.167.");
      },
    };
    s = await setup({ engine: { conditions } });
    const mta = await s.mta();
    expectStatus(await mta.connect("mx.local.net", { family: "4", address: "160.29.167.10", port: 2929 }), "continue");
    expect(received(s.children, "connect")).toEqual([0, 1]);
  });

  test("every child stopped at connect: the MTA gets accept", async () => {
    s = await setup({ engine: { conditions: { shouldStop: async () => true } } });
    const mta = await s.mta();
    expectStatus(await SESSION.connect(mta), "accept");
    expect(received(s.children, "connect")).toEqual([0, 0]);
  });

  test("a condition that throws counts as 'do not stop'", async () => {
    s = await setup({
      engine: {
        conditions: {
          shouldStop: () => {
            throw new Error("broken condition");
          },
        },
      },
    });
    const mta = await s.mta();
    expectStatus(await SESSION.connect(mta), "continue");
    expect(received(s.children, "connect")).toEqual([1, 1]);
  });
});
