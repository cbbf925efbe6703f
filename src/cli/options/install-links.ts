// `milterkit install-links`'s options. Postfix ships its own smtp-source and smtp-sink (in
// /usr/sbin on Debian): ours are linked as milterkit-smtp-source/-sink unless asked for.
import { HELP_SECTION, helpOptions, type ToolOptions } from "./format.ts";

export const INSTALL_LINKS_TABLE: ToolOptions = {
  tool: "install-links",
  prog: "milterkit install-links",
  summary: "create one symlink per tool in a directory",
  description: [
    "Creates in DIRECTORY one symlink per tool, pointing at this executable: milter-manager, milter-test-client, " +
      "milter-test-server, milterkit-smtp-source and milterkit-smtp-sink. A link is refreshed; any other file in the way is left alone (exit 1).",
    "smtp-source and smtp-sink are Postfix's names: they are only created with --postfix-names, since a directory early " +
      "on PATH would otherwise shadow Postfix's own tools.",
  ],
  sections: [
    { id: "links", title: "Links" },
    HELP_SECTION,
  ],
  operands: [{ name: "DIRECTORY", description: "Where the links go, e.g. /usr/local/bin" }],
  options: [
    { long: "postfix-names", section: "links", description: "Name the SMTP tools smtp-source and smtp-sink (Postfix's names) instead of milterkit-smtp-source and milterkit-smtp-sink" },
    ...helpOptions({ h: true }).filter((d) => d.long === "help"),
  ],
};
