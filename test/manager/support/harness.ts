// Scenario harness: a manager engine on a real socket with scripted child milters behind it, and
// a test MTA (src/mta-side's MilterClient) in front of it.
import { expect } from "bun:test";
import { defaultConfig, defaultMilter, type ManagerConfig, type ManagerSection, type MilterConfig } from "../../../src/manager/config/schema.ts";
import { type EngineOptions, type ManagerServer, startEngine } from "../../../src/manager/engine.ts";
import { SILENT_LOG } from "../../../src/manager/log.ts";
import { MilterClient, type MilterClientOptions, type StepOutcome } from "../../../src/mta-side/index.ts";
import { type Script, ScriptedMilter } from "./scripted-milter.ts";
import { freePort } from "../../e2e/lib/ports.ts";

export interface Setup {
  manager: ManagerServer;
  children: ScriptedMilter[];
  config: ManagerConfig;
  /** A test MTA connected to the manager and negotiated. */
  mta(options?: Partial<MilterClientOptions>): Promise<MilterClient>;
  close(): Promise<void>;
}

export interface SetupOptions {
  /** One script per child milter (default: two children answering continue to everything). */
  scripts?: Script[];
  /** Item overrides per child, by position. */
  milters?: Partial<MilterConfig>[];
  /** Milters that do not run (e.g. an unreachable spec), appended after the scripted ones. */
  extra?: MilterConfig[];
  /** Same, but put before the scripted ones. */
  before?: MilterConfig[];
  manager?: Partial<ManagerSection>;
  engine?: EngineOptions;
}

/** The fixture names of milter-manager's two test children. */
export const NAMES = ["milter@10026", "milter@10027", "milter@10028"];

export async function setup(opts: SetupOptions = {}): Promise<Setup> {
  const scripts = opts.scripts ?? [{}, {}];
  const children = await Promise.all(scripts.map((s) => new ScriptedMilter(s).start()));
  const config = defaultConfig();
  config.manager.connection_spec = "inet:0@[127.0.0.1]";
  Object.assign(config.manager, opts.manager ?? {});
  config.milters = children.map((c, i) => ({ ...defaultMilter(NAMES[i] ?? `milter@${i}`, c.spec), ...(opts.milters?.[i] ?? {}) }));
  config.milters.push(...(opts.extra ?? []));
  config.milters.unshift(...(opts.before ?? []));
  const manager = await startEngine(config, { log: SILENT_LOG, ...(opts.engine ?? {}) });
  const clients: MilterClient[] = [];
  return {
    manager,
    children,
    config,
    async mta(options = {}) {
      const c = new MilterClient({
        spec: `inet:${manager.port}@[127.0.0.1]`,
        connectionTimeoutMs: 5000,
        readingTimeoutMs: 15_000,
        endOfMessageTimeoutMs: 30_000,
        ...options,
      });
      clients.push(c);
      const neg = await c.open();
      if (!neg.ok) throw new Error(`test MTA could not negotiate with the manager: ${neg.detail}`);
      return c;
    },
    async close() {
      for (const c of clients) c.close();
      await manager.close({ waitMs: 0 });
      await Promise.all(children.map((c) => c.close()));
    },
  };
}

/** An unreachable milter (nothing listens on that port). */
export async function unreachableMilter(name: string, items: Partial<MilterConfig> = {}): Promise<MilterConfig> {
  return { ...defaultMilter(name, `inet:${freePort()}@[127.0.0.1]`), ...items };
}

export function expectStatus(o: StepOutcome, status: string, replyText?: string): void {
  if (!o.ok) throw new Error(`expected ${status}, got failure ${o.status}: ${o.detail}`);
  expect(o.status).toBe(status as never);
  if (replyText !== undefined) expect(o.reply?.text).toBe(replyText);
}

/** The milter-manager fixture session, step by step. */
export const SESSION = {
  connect: (m: MilterClient) =>
    m.connect("mx.local.net", { family: "4", address: "192.168.1.29", port: 2929 }, { "{daemon_name}": "Postfix", j: "postfix" }),
  helo: (m: MilterClient) => m.helo("delian"),
  envelopeFrom: (m: MilterClient, from = "<kou+sender@example.com>") => m.envelopeFrom(from, []),
  envelopeRecipient: (m: MilterClient, rcpt = "<kou+receiver@example.com>") => m.envelopeRecipient(rcpt, []),
  data: (m: MilterClient) => m.data({ i: "QID1" }),
  header: (m: MilterClient, name = "From", value = "<kou+sender@example.com>") => m.header(name, value, { i: "QID1" }),
  endOfHeader: (m: MilterClient) => m.endOfHeader({ i: "QID1" }),
  body: (m: MilterClient, chunk = "Hi,") => m.body(Buffer.from(chunk, "latin1"), { i: "QID1" }),
  endOfMessage: (m: MilterClient) => m.endOfMessage({ i: "QID1" }),
};

export type ChainStage = keyof typeof SESSION;
const ORDER: ChainStage[] = ["connect", "helo", "envelopeFrom", "envelopeRecipient", "data", "header", "endOfHeader", "body", "endOfMessage"];

/** Run the fixture session up to and including `upto` (from `from`), expecting continue at every step. */
export async function chain(m: MilterClient, upto: ChainStage, from: ChainStage = "connect"): Promise<void> {
  for (const stage of ORDER.slice(ORDER.indexOf(from))) {
    const o = await SESSION[stage](m);
    if (!o.ok || o.status !== "continue") {
      throw new Error(`chain: ${stage} gave ${o.ok ? o.status : `${o.status} (${o.detail})`}, expected continue`);
    }
    if (stage === upto) return;
  }
}

/** Wait (bounded) until `check` holds: for things children receive without a reply (abort, quit). */
export async function eventually(check: () => boolean, ms = 3000, what = "condition"): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error(`${what}: not reached within ${ms} ms`);
    await Bun.sleep(5);
  }
}

/** Total of `stage` commands received by all children since the marks. */
export function received(children: ScriptedMilter[], stage: string, marks: number[] = []): number[] {
  return children.map((c, i) => c.count(stage, marks[i] ?? 0));
}

export function marks(children: ScriptedMilter[]): number[] {
  return children.map((c) => c.mark());
}
