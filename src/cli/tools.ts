// The tools of the multicall binary, loaded lazily so each starts fast.
import type { CommandDef } from "citty";

export type ToolName = "manager" | "test-client" | "test-server" | "smtp-source" | "smtp-sink";

export const TOOLS: Record<ToolName, { link: string; summary: string; load: () => Promise<CommandDef<any>> }> = {
  "manager": {
    link: "milter-manager",
    summary: "milter that fans each SMTP session out to child milters and merges their answers",
    load: async () => (await import("./manager.ts")).default,
  },
  "test-client": {
    link: "milter-test-client",
    summary: "milter that answers continue and prints everything the MTA sends",
    load: async () => (await import("./test-client.ts")).default,
  },
  "test-server": {
    link: "milter-test-server",
    summary: "MTA side: drive a milter from the command line or an .eml file, or load-test it",
    load: async () => (await import("./test-server.ts")).default,
  },
  "smtp-source": {
    link: "smtp-source",
    summary: "SMTP/LMTP load generator compatible with Postfix's smtp-source",
    load: async () => (await import("./smtp-source.ts")).default,
  },
  "smtp-sink": {
    link: "smtp-sink",
    summary: "SMTP/LMTP test server compatible with Postfix's smtp-sink",
    load: async () => (await import("./smtp-sink.ts")).default,
  },
};

/** The tool an executable name stands for: milter-manager, milterkit-manager, smtp-source, ... */
export function toolFromName(exe: string): ToolName | undefined {
  const base = exe.replace(/\.(exe|ts|js)$/, "");
  for (const [tool, t] of Object.entries(TOOLS) as [ToolName, (typeof TOOLS)[ToolName]][]) {
    if (base === t.link || base === `milterkit-${tool}` || base === `milterkit-${t.link}`) return tool;
  }
  return undefined;
}
