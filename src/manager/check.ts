// `milter-manager --check`: connect and negotiate with every child of a loaded configuration and
// print one line per child — name, spec, reachable or not, time, negotiated version, actions and
// steps, applicable conditions. Touches nothing (no socket to listen on, no pid file, no log
// file) and needs no root. Exit status 1 when an enabled child is unreachable.
import { noChildWarning } from "./config/fail-open.ts";
import type { ManagerConfig, MilterConfig } from "./config/schema.ts";
import { flagNicknames, ACTION_FLAGS, PROTOCOL_FLAGS } from "../milter/index.ts";
import { MilterClient } from "../mta-side/index.ts";
import { openWithin } from "./children.ts";

export interface ChildCheck {
  name: string;
  spec: string;
  enabled: boolean;
  reachable: boolean;
  ms: number;
  version?: number;
  actions?: string[];
  steps?: string[];
  conditions: string[];
  error?: string;
}

/** Open one child as the manager would (its connection_timeout) and close it again. */
export async function checkChild(m: MilterConfig): Promise<ChildCheck> {
  const base = { name: m.name, spec: m.connection_spec, enabled: m.enabled, conditions: m.applicable_conditions };
  if (!m.enabled) return { ...base, reachable: false, ms: 0 };
  const client = new MilterClient({
    spec: m.connection_spec,
    connectionTimeoutMs: m.connection_timeout * 1000,
    readingTimeoutMs: m.reading_timeout * 1000,
    writingTimeoutMs: m.writing_timeout * 1000,
  });
  const t0 = performance.now();
  const outcome = await openWithin(client, m.connection_timeout * 1000);
  const ms = performance.now() - t0;
  if (outcome === "late") {
    return { ...base, reachable: false, ms, error: `no negotiation within ${m.connection_timeout} s` };
  }
  if (!outcome.ok) return { ...base, reachable: false, ms, error: `${outcome.status}: ${outcome.detail}` };
  const n = outcome.negotiated;
  await client.quit();
  return {
    ...base,
    reachable: true,
    ms,
    version: n.version,
    actions: flagNicknames(n.actions, ACTION_FLAGS),
    steps: flagNicknames(n.protocol, PROTOCOL_FLAGS),
  };
}

export function formatCheck(c: ChildCheck): string {
  const conditions = `conditions=${c.conditions.length > 0 ? c.conditions.join(",") : "-"}`;
  if (!c.enabled) return `${c.name} ${c.spec} disabled ${conditions}`;
  const time = `${c.ms.toFixed(1)}ms`;
  if (!c.reachable) return `${c.name} ${c.spec} unreachable ${time} ${conditions} error=${c.error}`;
  const list = (l: string[] | undefined) => (l && l.length > 0 ? l.join("|") : "none");
  return `${c.name} ${c.spec} reachable ${time} version=${c.version} actions=${list(c.actions)} steps=${list(c.steps)} ${conditions}`;
}

/** Check every child in parallel; lines in configuration order. Returns the exit status. */
export async function runCheck(config: ManagerConfig, print: (line: string) => void, source?: string): Promise<number> {
  if (source) print(`configuration: ${source}`);
  const warning = noChildWarning(config);
  if (warning) print(`warning: ${warning}`);
  const results = await Promise.all(config.milters.map(checkChild));
  for (const r of results) print(formatCheck(r));
  const down = results.filter((r) => r.enabled && !r.reachable).length;
  const up = results.filter((r) => r.reachable).length;
  print(`${up} reachable, ${down} unreachable${results.length > up + down ? `, ${results.length - up - down} disabled` : ""}`);
  return down > 0 ? 1 : 0;
}
