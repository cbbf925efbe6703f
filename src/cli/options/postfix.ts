// Shared by smtp-source and smtp-sink: Postfix's letters (each with a long name of ours), in
// "Postfix options", then milterkit's own in "milterkit options".
import { HELP_SECTION, type OptionDef, type ToolOptions } from "./format.ts";

export const POSTFIX_SECTIONS: ToolOptions["sections"] = [
  { id: "postfix", title: "Postfix options" },
  { id: "milterkit", title: "milterkit options" },
  HELP_SECTION,
];

/** A Postfix letter without a value. */
export const flag = (short: string, long: string, description: string, more: Partial<OptionDef> = {}): OptionDef => ({ long, short, section: "postfix", description, ...more });

/** A Postfix letter with a value. */
export const value = (short: string, long: string, valueName: string, description: string, more: Partial<OptionDef> = {}): OptionDef => ({ long, short, value: "required", valueName, section: "postfix", description, ...more });
