// milter-test-client's options: the shared daemon options plus what it prints. Like the
// original (GLib), every flag also takes --no-FLAG.
import { DAEMON_OPTIONS, DAEMON_SECTIONS } from "./daemon.ts";
import { HELP_SECTION, helpOptions, type ToolOptions } from "./format.ts";

export const TEST_CLIENT_TABLE: ToolOptions = {
  tool: "test-client",
  prog: "milter-test-client",
  summary: "milter that answers continue and prints everything the MTA sends",
  description: [
    "A milter that answers continue to every event and prints everything the MTA sends, macros included: " +
      "one line per event as milter-manager's milter-test-client, macros in wire order (--json: one JSON object per event). " +
      "It asks for every event and replies to every one.",
    "Listens on $MILTER_DEFAULT_CONNECTION_SPEC or inet:10025@[127.0.0.1] unless -s says otherwise; " +
      "the log level defaults to $MILTER_LOG_LEVEL. Started as root it switches to the user nobody after listening unless -u names another.",
    "Exit status 0 once it listens (with --daemon: once the background process listens); 1 with one line for a bad option, " +
      "an invalid spec, an address in use or a socket that cannot be created.",
  ],
  sections: [
    { id: "output", title: "Output" },
    ...DAEMON_SECTIONS,
    HELP_SECTION,
  ],
  negatableFlags: true,
  options: [
    { long: "report-request", default: true, section: "output", description: "Print every event (--no-report-request: print nothing per event, for load tests)" },
    { long: "report-memory-profile", section: "output", description: "Print the memory use after each session (more with MILTER_MEMORY_PROFILE=yes)" },
    { long: "json", section: "output", description: "Print one JSON object per line for each event instead of the text lines" },
    ...DAEMON_OPTIONS,
    // --no-version too, as the original's GLib option.
    ...helpOptions({ h: true }).map((d) => (d.long === "version" ? { ...d, negatable: true } : d)),
    { long: "help-all", section: "help", description: "Same as --help" },
    { long: "help-milter", section: "help", description: "Same as --help" },
  ],
};
