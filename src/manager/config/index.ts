// The manager's configuration, for the engine: types, loading (with reload) and --show-config.
export * from "./schema.ts";
export {
  applyOverrides, CONF_D, CONFIG_DIR_ENV, ConfigError, type ConfigOrigins, type ConfigSource, configFiles, DEFAULT_CONFIG_DIR,
  formatOrigin, itemKey, type LoadedConfig, loadEffectiveConfig, MAIN_FILE_NAMES, milterKey, type Origin, type Override,
  resolveConfigSource,
} from "./load.ts";
export { formatConfigToml } from "./show.ts";
export { CliOptionError, type ManagerArgs, parseManagerArgv } from "./cli.ts";
export { defineConfig, MILTERKIT_MODULE, registerMilterkitModule } from "./define.ts";
