// milter-manager / `milterkit manager`: parse the options, load the configuration
// (--config FILE, -c DIR, $MILTERKIT_CONFIG_DIR or /etc/milterkit), answer --show-config,
// otherwise hand the configuration to the engine (src/manager/index.ts).
import { defineCommand, renderUsage } from "citty";
import { isatty } from "node:tty";
import { CliOptionError, managerCittyArgs, parseManagerArgv } from "../manager/config/cli.ts";
import { ConfigError, loadEffectiveConfig, resolveConfigSource } from "../manager/config/load.ts";
import { formatConfigToml } from "../manager/config/show.ts";
import { notifyFailure } from "../runtime/daemon.ts";
import { VERSION } from "../version.ts";
import { UsageError } from "./run.ts";

const NAME = "milter-manager";

const command = defineCommand({
  meta: {
    name: NAME,
    version: VERSION,
    description:
      "Milter manager: passes each SMTP session to the configured child milters and merges their answers.\n" +
      "Options override items of the configuration (shown in [brackets]) and stay in force across reloads.\n" +
      "--version prints the version, --help this text.",
  },
  args: managerCittyArgs(),
  async run({ rawArgs }) {
    let opts;
    try {
      opts = parseManagerArgv(rawArgs);
    } catch (e) {
      if (e instanceof CliOptionError) throw new UsageError(e.message);
      throw e;
    }
    if (opts.help) {
      const text = await renderUsage(command);
      process.stdout.write((isatty(1) && !process.env.NO_COLOR ? text : text.replace(/\x1b\[[0-9;]*m/g, "")) + "\n");
      return 0;
    }
    const source = resolveConfigSource({ configFile: opts.configFile, configDir: opts.configDir });
    const load = () => loadEffectiveConfig(source, opts.overrides);
    let loaded;
    try {
      loaded = await load();
    } catch (e) {
      if (e instanceof ConfigError) {
        process.stderr.write(`${NAME}: ${e.message}\n`);
        notifyFailure(e.message); // a daemon child or worker: its starter prints the reason
        return 1;
      }
      throw e;
    }
    if (opts.showConfig) {
      process.stdout.write(formatConfigToml(loaded));
      return 0;
    }
    const { startManager } = await import("../manager/index.ts");
    return startManager({ loaded, reload: load });
  },
});

export default command;
