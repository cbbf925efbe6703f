// The tools of the multicall binary, loaded lazily so each starts fast: not even the option
// tables load at start (they are read once a tool runs, or for the list in `milterkit --help`).
import type { Tool } from "./run.ts";

export type ToolName = "manager" | "test-client" | "test-server" | "smtp-source" | "smtp-sink";

/** `link` is the tool's program name (its option table's prog; test/cli/tools.test.ts holds them equal). */
export const TOOLS: Record<ToolName, { link: string; load: () => Promise<Tool> }> = {
  "manager": { link: "milter-manager", load: async () => (await import("./manager.ts")).default },
  "test-client": { link: "milter-test-client", load: async () => (await import("./test-client.ts")).default },
  "test-server": { link: "milter-test-server", load: async () => (await import("./test-server.ts")).default },
  "smtp-source": { link: "smtp-source", load: async () => (await import("./smtp-source.ts")).default },
  "smtp-sink": { link: "smtp-sink", load: async () => (await import("./smtp-sink.ts")).default },
};

/** The tool an executable name stands for: milter-manager, milterkit-manager, smtp-source, ... */
export function toolFromName(exe: string): ToolName | undefined {
  const base = exe.replace(/\.(exe|ts|js)$/, "");
  for (const [tool, t] of Object.entries(TOOLS) as [ToolName, (typeof TOOLS)[ToolName]][]) {
    if (base === t.link || base === `milterkit-${tool}` || base === `milterkit-${t.link}`) return tool;
  }
  return undefined;
}
