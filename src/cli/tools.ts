// The tools of the multicall binary, loaded lazily so each starts fast.
import { OPTION_TABLES } from "./options/index.ts";
import type { Tool } from "./run.ts";

export type ToolName = "manager" | "test-client" | "test-server" | "smtp-source" | "smtp-sink";

const tool = (name: ToolName, load: () => Promise<Tool>) => ({ link: OPTION_TABLES[name].prog, summary: OPTION_TABLES[name].summary, load });

export const TOOLS: Record<ToolName, { link: string; summary: string; load: () => Promise<Tool> }> = {
  "manager": tool("manager", async () => (await import("./manager.ts")).default),
  "test-client": tool("test-client", async () => (await import("./test-client.ts")).default),
  "test-server": tool("test-server", async () => (await import("./test-server.ts")).default),
  "smtp-source": tool("smtp-source", async () => (await import("./smtp-source.ts")).default),
  "smtp-sink": tool("smtp-sink", async () => (await import("./smtp-sink.ts")).default),
};

/** The tool an executable name stands for: milter-manager, milterkit-manager, smtp-source, ... */
export function toolFromName(exe: string): ToolName | undefined {
  const base = exe.replace(/\.(exe|ts|js)$/, "");
  for (const [tool, t] of Object.entries(TOOLS) as [ToolName, (typeof TOOLS)[ToolName]][]) {
    if (base === t.link || base === `milterkit-${tool}` || base === `milterkit-${t.link}`) return tool;
  }
  return undefined;
}
