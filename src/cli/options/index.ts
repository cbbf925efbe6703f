// Every tool's option table, for whatever is made from all of them (man pages, completion).
import type { ToolOptions } from "./format.ts";
import { MANAGER_TABLE } from "./manager.ts";
import { SMTP_SINK_TABLE } from "./smtp-sink.ts";
import { SMTP_SOURCE_TABLE } from "./smtp-source.ts";
import { TEST_CLIENT_TABLE } from "./test-client.ts";
import { TEST_SERVER_TABLE } from "./test-server.ts";

export type { OptionDef, Operand, Section, Spelling, ToolOptions, ValueRule } from "./format.ts";
export { spellings } from "./format.ts";

/** Keyed by the tool's name in `milterkit TOOL`. */
export const OPTION_TABLES: Readonly<Record<string, ToolOptions>> = {
  "manager": MANAGER_TABLE,
  "test-client": TEST_CLIENT_TABLE,
  "test-server": TEST_SERVER_TABLE,
  "smtp-source": SMTP_SOURCE_TABLE,
  "smtp-sink": SMTP_SINK_TABLE,
};
