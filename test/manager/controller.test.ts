// The HTTP controller: /metrics parses as Prometheus text and its counters match the sessions run,
// /status says the same, a unix socket gets mode 0660, and the status page renders those numbers in
// a real headless Chromium (skipped with a note where Debian's chromium is not installed).
import { afterEach, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Controller, startController } from "../../src/manager/controller/server.ts";
import { Monitor, type StatusDocument } from "../../src/manager/monitor.ts";
import { Accept, Reject } from "../../src/milter-side/index.ts";
import { chain, eventually, SESSION, type Setup, setup, unreachableMilter } from "./support/harness.ts";
import { parsePrometheus } from "./support/prometheus.ts";

let s: Setup | undefined;
let controller: Controller | undefined;
const dirs: string[] = [];
afterEach(async () => {
  controller?.close();
  controller = undefined;
  await s?.close();
  s = undefined;
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

const CHROMIUM = ["/usr/bin/chromium", "/usr/bin/chromium-browser"].find((p) => existsSync(p));

/** N sessions with one message each: `reject` of them refused by the second child at end-of-message. */
async function run(s: Setup, n: number, reject: number): Promise<void> {
  for (let i = 0; i < n; i++) {
    const mta = await s.mta();
    await chain(mta, "body");
    await mta.endOfMessage(i < reject ? { i: "REJ" } : { i: "QID1" });
    await mta.quit();
  }
}

async function monitored(n: number, reject: number, dead = false) {
  const monitor = new Monitor({ version: "9.9.9-test", configSource: "/etc/milterkit/milterkit.config.toml", milters: [] });
  const extra = dead ? [await unreachableMilter("dead")] : [];
  s = await setup({
    scripts: [{ endOfMessage: Accept }, { endOfMessage: (_c, ctx) => (ctx.macro("i") === "REJ" ? Reject : Accept) }],
    extra,
    engine: { events: monitor },
  });
  monitor.configure({ version: "9.9.9-test", configSource: "/etc/milterkit/milterkit.config.toml", milters: s.config.milters.map((m) => ({ name: m.name, spec: m.connection_spec, enabled: m.enabled })) });
  await run(s, n, reject);
  await eventually(() => monitor.sessions.total() === n, 3000, `${n} sessions counted`);
  return monitor;
}

describe("/metrics and /status", () => {
  test("counters match the sessions run; the exposition parses strictly", async () => {
    const monitor = await monitored(6, 2, true);
    controller = await startController("inet:0@[127.0.0.1]", monitor);
    const res = await fetch(`${controller.url}/metrics`);
    expect(res.headers.get("content-type")).toStartWith("text/plain; version=0.0.4");
    const m = parsePrometheus(await res.text());
    expect(m.types.get("milterkit_sessions_total")).toBe("counter");
    expect(m.types.get("milterkit_child_latency_seconds")).toBe("histogram");
    expect(m.get("milterkit_sessions_total")).toBe(6);
    expect(m.get("milterkit_sessions_total", { status: "reject" })).toBe(2);
    expect(m.get("milterkit_sessions_total", { status: "accept" })).toBe(4);
    expect(m.get("milterkit_messages_total", { status: "reject" })).toBe(2);
    expect(m.get("milterkit_messages_total", { status: "accept" })).toBe(4);
    expect(m.get("milterkit_sessions_open")).toBe(0);
    for (const child of ["milter@10026", "milter@10027"]) {
      for (const stage of ["connect", "helo", "envelope-from", "envelope-recipient", "data", "header", "end-of-header", "body"]) {
        expect(m.get("milterkit_child_answers_total", { milter: child, stage, status: "continue" })).toBe(6);
      }
      expect(m.get("milterkit_child_up", { milter: child })).toBe(1);
      // one answer per stage: 9 stages × 6 sessions observed in the latency histogram
      expect(m.get("milterkit_child_latency_seconds_count", { milter: child })).toBe(54);
    }
    expect(m.get("milterkit_child_answers_total", { milter: "milter@10026", stage: "end-of-message", status: "accept" })).toBe(6);
    expect(m.get("milterkit_child_answers_total", { milter: "milter@10027", stage: "end-of-message", status: "reject" })).toBe(2);
    expect(m.get("milterkit_child_answers_total", { milter: "milter@10027", stage: "end-of-message", status: "accept" })).toBe(4);
    // One session finds it unreachable; the other five count it as down without trying (rules/availability.ts).
    expect(m.get("milterkit_child_failures_total", { milter: "dead", kind: "connection-error" })).toBe(1);
    expect(m.get("milterkit_child_failures_total", { milter: "dead", kind: "down" })).toBe(5);
    expect(m.get("milterkit_child_up", { milter: "dead" })).toBe(0);
    expect(m.get("milterkit_child_state_changes_total", { milter: "dead", state: "down" })).toBe(1);
    expect(m.get("process_resident_memory_bytes")).toBeGreaterThan(1_000_000);
    expect(m.get("process_open_fds")).toBeGreaterThan(2);
    expect(m.has("milterkit_info", { version: "9.9.9-test" })).toBe(true);

    const st = (await (await fetch(`${controller.url}/status`)).json()) as StatusDocument;
    expect(st.version).toBe("9.9.9-test");
    expect(st.configuration.source).toBe("/etc/milterkit/milterkit.config.toml");
    expect(st.sessions).toMatchObject({ open: 0, total: 6, by_status: { reject: 2, accept: 4 } });
    expect(st.messages).toMatchObject({ total: 6, by_status: { reject: 2, accept: 4 } });
    const byName = Object.fromEntries(st.children.map((c) => [c.name, c]));
    expect(byName["milter@10026"]).toMatchObject({ state: "up", answers: 54, failures: 0, last_error: null });
    expect(byName.dead).toMatchObject({ state: "down", failures: 6 });
    expect(byName.dead.last_error).toContain("connection-error");
    expect((await fetch(`${controller.url}/nothing`)).status).toBe(404);
    expect((await fetch(`${controller.url}/metrics`, { method: "POST" })).status).toBe(405);
  });

  test("a host-less inet spec binds loopback only; a unix socket gets mode 0660 and is removed on close", async () => {
    const monitor = new Monitor({ version: "t", configSource: "x", milters: [] });
    controller = await startController("inet:0", monitor);
    expect(controller.url).toStartWith("http://127.0.0.1:");
    controller.close();
    const d = mkdtempSync(join(tmpdir(), "mk-ctl-"));
    dirs.push(d);
    const path = join(d, "sub", "controller.sock");
    controller = await startController(`unix:${path}`, monitor);
    expect(statSync(path).mode & 0o777).toBe(0o660);
    const st = (await (await fetch("http://localhost/status", { unix: path } as RequestInit)).json()) as StatusDocument;
    expect(st.sessions.total).toBe(0);
    controller.close();
    controller = undefined;
    expect(existsSync(path)).toBe(false);
  });
});

describe("status page", () => {
  test.skipIf(!CHROMIUM)("renders the numbers in headless Chromium", async () => {
    const monitor = await monitored(5, 1);
    controller = await startController("inet:0@[127.0.0.1]", monitor);
    const profile = mkdtempSync(join(tmpdir(), "mk-chromium-"));
    dirs.push(profile);
    const shot = join(profile, "status.png");
    const args = [
      CHROMIUM!, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
      "--disable-component-update", "--disable-sync", `--user-data-dir=${profile}`, "--virtual-time-budget=5000", "--window-size=1200,1000",
    ];
    const browse = async (extra: string[]) => {
      const p = Bun.spawn([...args, ...extra, `${controller!.url}/`], { stdout: "pipe", stderr: "ignore" });
      const timer = setTimeout(() => p.kill("SIGKILL"), 60_000);
      const out = await new Response(p.stdout).text();
      await p.exited;
      clearTimeout(timer);
      return out;
    };
    const dom = await browse(["--dump-dom"]);
    const text = (id: string) => new RegExp(`id="${id}">([^<]*)<`).exec(dom)?.[1];
    expect(text("version")).toBe("9.9.9-test");
    expect(text("sessions-total")).toBe("5");
    expect(text("messages-total")).toBe("5");
    expect(text("failures-total")).toBe("0");
    expect(dom).toMatch(/<tr data-status="reject"><td>reject<\/td><td>1<\/td><td>1<\/td><\/tr>/);
    expect(dom).toMatch(/<tr data-status="accept"><td>accept<\/td><td>4<\/td><td>4<\/td><\/tr>/);
    expect(dom).toMatch(/<tr data-child="milter@10026"><td>milter@10026<\/td><td>[^<]+<\/td><td class="up">up<\/td><td>45<\/td><td>0<\/td>/);
    // The charts are drawn (SVG elements inside the chart boxes), with no external resource.
    expect(dom).toMatch(/<svg id="chart-latency"[^>]*>.*<polyline /s);
    expect(dom).not.toMatch(/<script[^>]+src=|<link[^>]+href=/);
    await browse([`--screenshot=${shot}`]);
    expect(statSync(shot).size).toBeGreaterThan(10_000);
  }, 120_000);
});
