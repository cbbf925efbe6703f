// milter-test-client: a milter that answers "continue" to everything and prints what the MTA sent, macros included.
import { defineCommand, renderUsage } from "citty";
import { VERSION } from "../version.ts";
import { OptionError, parseTestClientArgs, type RawArgs } from "../test-client/options.ts";
import { PROG, runTestClient } from "../test-client/run.ts";

const command = defineCommand({
  meta: {
    name: PROG,
    version: VERSION,
    description:
      "A milter that answers continue to every event and prints everything the MTA sends, macros included\n" +
      "  (one line per event as milter-manager's milter-test-client, macros in wire order; --json: one JSON object per event).\n" +
      "  It asks for every event and replies to every one. Exit status 0 once it listens (with --daemon: once the\n" +
      "  background process listens); 1 with one line for a bad option, an invalid spec, an address in use or a socket\n" +
      "  that cannot be created. Started as root it switches to the user nobody after listening unless -u names another.",
  },
  args: {
    "connection-spec": { type: "string", alias: "s", valueHint: "SPEC", description: "listen on SPEC: unix:PATH, inet:PORT[@HOST], inet6:PORT[@HOST] (HOST may be [ADDRESS]), local:PATH (default $MILTER_DEFAULT_CONNECTION_SPEC or inet:10025@[127.0.0.1])" },
    "log-level": { type: "string", valueHint: "LEVEL", description: "log level: items joined with |: default, none, all, critical, error, warning, message, info, debug, statistics, profile (default: default)" },
    "log-path": { type: "string", valueHint: "PATH", description: "log to PATH (- = standard output, the default); SIGUSR1/SIGHUP reopen it" },
    verbose: { type: "boolean", alias: "v", description: "log everything (--log-level=all)" },
    quiet: { type: "boolean", alias: "q", description: "log nothing (--log-level=none)" },
    syslog: { type: "boolean", description: "also log to syslog (/dev/log)" },
    "syslog-facility": { type: "string", valueHint: "FACILITY", description: "syslog facility: mail (default), daemon, user, local0…local7, …" },
    daemon: { type: "boolean", description: "run in the background; exits 0 once the background process listens (--no-daemon cancels)" },
    user: { type: "string", alias: "u", valueHint: "USER", description: "switch to USER (name or uid) after listening; root only (root default: nobody)" },
    "user-id": { type: "string", valueHint: "UID", description: "same as --user with a numeric uid" },
    "user-name": { type: "string", valueHint: "NAME", description: "same as --user with a user name" },
    group: { type: "string", alias: "g", valueHint: "GROUP", description: "switch to GROUP (name or gid) after listening; root only (default: the user's group)" },
    "group-id": { type: "string", valueHint: "GID", description: "same as --group with a numeric gid" },
    "group-name": { type: "string", valueHint: "NAME", description: "same as --group with a group name" },
    "unix-socket-group": { type: "string", valueHint: "GROUP", description: "group of the listening unix socket" },
    "socket-group-name": { type: "string", valueHint: "GROUP", description: "deprecated spelling of --unix-socket-group" },
    "unix-socket-mode": { type: "string", valueHint: "MODE", description: "mode of the listening unix socket (default 0660)" },
    "n-workers": { type: "string", valueHint: "N", description: "worker processes sharing the TCP port (SO_REUSEPORT), 0–1000 (default 0 = none); unix sockets are served by one process" },
    "event-loop-backend": { type: "string", valueHint: "glib|libev", description: "accepted for compatibility; Bun's own event loop serves both" },
    "packet-buffer-size": { type: "string", valueHint: "SIZE", description: "accepted for compatibility (default 0): replies are always written one protocol step per write" },
    "pid-file": { type: "string", valueHint: "FILE", description: "write the process id to FILE" },
    "max-pending-finished-sessions": { type: "string", valueHint: "N", description: "accepted for compatibility (default 0): finished sessions are freed at once" },
    "report-request": { type: "boolean", default: true, description: "print every event (--no-report-request: print nothing per event, for load tests)" },
    "report-memory-profile": { type: "boolean", description: "print the memory use after each session (more with MILTER_MEMORY_PROFILE=yes)" },
    json: { type: "boolean", description: "print one JSON object per line for each event instead of the text lines" },
    "help-all": { type: "boolean", description: "show all options" },
    "help-milter": { type: "boolean", description: "show the milter options" },
    version: { type: "boolean", description: "print the version number" },
  },
  async run({ args }) {
    const a = args as RawArgs;
    if (a.version === true) {
      process.stdout.write(`${VERSION}\n`);
      return 0;
    }
    if (a["help-all"] === true || a["help-milter"] === true) {
      process.stdout.write(`${(await renderUsage(command)).replace(/\x1b\[[0-9;]*m/g, "")}\n`);
      return 0;
    }
    let config;
    try {
      config = parseTestClientArgs(a);
    } catch (e) {
      if (e instanceof OptionError) {
        process.stderr.write(`${PROG}: ${e.message}\n`);
        return 1;
      }
      throw e;
    }
    return runTestClient(config);
  },
});

export default command;
