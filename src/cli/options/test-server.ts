// milter-test-server's options: the original's (docs/tools.md §2.1) plus --n-messages, --json
// and the load mode. -h is --header, so help is -? or --help.
import { HELP_SECTION, helpOptions, type OptionDef, type ToolOptions } from "./format.ts";

/** Stages that take `--<stage>-macro NAME:VALUE`. */
export const MACRO_STAGES = ["connect", "helo", "envelope-from", "envelope-recipient", "data", "end-of-header", "end-of-message"] as const;

const seconds = (long: string, description: string, dflt?: number): OptionDef => ({
  long, value: "required", valueName: "SECONDS", section: "timeouts", description, ...(dflt === undefined ? {} : { default: dflt }),
});

export const TEST_SERVER_TABLE: ToolOptions = {
  tool: "test-server",
  prog: "milter-test-server",
  summary: "MTA side: drive a milter from the command line or an .eml file, or load-test it",
  description: [
    "MTA side: negotiate with one milter, send connect ... end-of-message with macros, apply its replies and modifications " +
      "and print `status:` and `elapsed-time:` (and with --output-message the resulting message). " +
      "A `stage:` line says which stage and reply produced a status other than pass.",
    "Load mode: --sessions N [--concurrency C] [--max-time S] prints messages/s and latency percentiles.",
    "Exit status 0 when every message got a decision (a reject too), 1 on option, connection or session errors " +
      "(timeout, protocol error, closed).",
  ],
  sections: [
    { id: "connection", title: "Connection" },
    { id: "message", title: "Envelope and message" },
    { id: "macros", title: "Macros" },
    { id: "timeouts", title: "Timeouts" },
    { id: "output", title: "Output" },
    { id: "load", title: "Sessions and load mode" },
    HELP_SECTION,
  ],
  options: [
    { long: "connection-spec", short: "s", value: "required", valueName: "SPEC", section: "connection", description: "Milter to connect to (default inet:10025@[127.0.0.1] or $MILTER_DEFAULT_CONNECTION_SPEC; /path = unix:/path)" },
    { long: "negotiate-version", value: "required", valueName: "VERSION", default: 6, section: "connection", description: "Protocol version offered" },
    { long: "name", value: "required", valueName: "NAME", section: "connection", description: "Server name; default {daemon_name} (default milter-test-server)" },
    { long: "connect-host", value: "required", valueName: "HOST", default: "mx.example.net", section: "message", description: "Host name in the connect command" },
    { long: "connect-address", value: "required", valueName: "SPEC", default: "inet:50443@[192.168.123.123]", section: "message", description: "Client address in the connect command" },
    { long: "helo-fqdn", value: "required", valueName: "FQDN", default: "delian", section: "message", description: "HELO argument" },
    { long: "envelope-from", short: "f", aliases: ["from"], value: "required", valueName: "FROM", section: "message", description: "Sender, wrapped in <> (default sender@example.com)" },
    { long: "envelope-recipient", short: "r", aliases: ["recipient"], value: "required", valueName: "RCPT", repeat: "list", section: "message", description: "Add a recipient (repeatable; default receiver@example.org)" },
    { long: "header", short: "h", value: "required", valueName: "NAME:VALUE", repeat: "list", section: "message", description: "Add a header (repeatable); From: and To: are added when missing" },
    { long: "body", short: "b", value: "required", valueName: "CHUNK", repeat: "list", section: "message", description: "One BODY packet, sent as given (repeatable)" },
    { long: "mail-file", short: "m", value: "required", valueName: "PATH", repeat: "list", section: "message", complete: "file", description: "Message file (- = stdin); its From: and To: give the envelope where -f and -r do not" },
    { long: "unknown", value: "required", valueName: "COMMAND", section: "message", description: "Send COMMAND as an unknown SMTP command after the recipients" },
    { long: "authenticated-name", value: "required", valueName: "NAME", section: "message", description: "{auth_authen} at MAIL" },
    { long: "authenticated-type", value: "required", valueName: "TYPE", section: "message", description: "{auth_type} at MAIL" },
    { long: "authenticated-author", value: "required", valueName: "AUTHOR", section: "message", description: "{auth_author} at MAIL" },
    { long: "n-messages", value: "required", valueName: "N", default: 1, section: "message", description: "Messages per connection, ABORT between them" },
    ...MACRO_STAGES.map((s): OptionDef => ({
      long: `${s}-macro`, value: "required", valueName: "NAME:VALUE", repeat: "list", section: "macros", description: `Add or override a ${s} macro (repeatable)`,
    })),
    seconds("connection-timeout", "Connect timeout", 300),
    seconds("reading-timeout", "Reply timeout, restarted by each byte", 10),
    seconds("writing-timeout", "Write timeout", 10),
    seconds("end-of-message-timeout", "End-of-message reply timeout, restarted by progress", 300),
    seconds("all-timeouts", "Set all four timeouts"),
    { long: "output-message", section: "output", description: "Print the resulting envelope, headers and body" },
    { long: "color", value: "optional", valueName: "WHEN", choices: ["yes", "true", "no", "false", "auto"], section: "output", description: "Colour the +/- lines: yes, true, no, false or auto (bare --color = yes; default auto)" },
    { long: "verbose", short: "v", section: "output", description: "Trace every packet (decoded and hex) on stderr" },
    { long: "json", section: "output", description: "Print the result (or the load summary) as JSON" },
    { long: "threads", short: "t", value: "required", valueName: "N", section: "load", description: "Run N identical sessions at the same time, each printing its result" },
    { long: "sessions", value: "required", valueName: "N", section: "load", description: "Load mode: run N complete sessions" },
    { long: "concurrency", value: "required", valueName: "C", default: 1, section: "load", description: "Load mode: sessions in flight" },
    { long: "max-time", value: "required", valueName: "SECONDS", default: 60, section: "load", description: "Load mode: stop after this long" },
    ...helpOptions({ h: false }),
  ],
};
