// milter-manager / `milterkit manager`: parse the options, load the configuration
// (--config FILE, -c DIR, $MILTERKIT_CONFIG_DIR or /etc/milterkit), answer --show-config,
// otherwise hand the configuration to the daemon (src/manager/daemon/run.ts), which runs the engine.
// The manager's modules load in run(), not with this one: `--help` and `--version` then cost a
// few ms instead of ~16 (bench/startup.bench.ts).
import { MANAGER_TABLE } from "./options/manager.ts";
import { type Tool, UsageError } from "./run.ts";

const NAME = "milter-manager";

const tool: Tool = {
  options: MANAGER_TABLE,
  async run(args) {
    const { CliOptionError, managerArgs } = await import("../manager/config/cli.ts");
    const { ConfigError, loadEffectiveConfig, resolveConfigSource } = await import("../manager/config/load.ts");
    const { notifyFailure } = await import("../runtime/daemon.ts");
    let opts;
    try {
      opts = managerArgs(args);
    } catch (e) {
      if (e instanceof CliOptionError) throw new UsageError(e.message);
      throw e;
    }
    if (opts.importConfig !== undefined) {
      const { runImport } = await import("../manager/migrate/index.ts");
      return runImport(opts.importConfig, { stdout: (t) => process.stdout.write(t), stderr: (t) => process.stderr.write(t) });
    }
    if (opts.detect) {
      const { detectMilters, formatDetection } = await import("../manager/detect/index.ts");
      process.stdout.write(formatDetection(detectMilters()));
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
      const { privilegeProblems } = await import("../manager/daemon/run.ts");
      const { formatConfigToml } = await import("../manager/config/show.ts");
      process.stdout.write(formatConfigToml({ ...loaded, warnings: [...loaded.warnings, ...privilegeProblems(loaded)] }));
      return 0;
    }
    if (opts.check) {
      const { runCheck } = await import("../manager/check.ts");
      const { describeSource } = await import("../manager/daemon/run.ts");
      return runCheck(loaded.config, (line) => process.stdout.write(`${line}\n`), describeSource(loaded));
    }
    const { runManager } = await import("../manager/daemon/run.ts");
    return runManager({ loaded, reload: load });
  },
};

export default tool;
