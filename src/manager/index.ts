// The manager's entry point, called by src/cli/manager.ts once the configuration is loaded.
//
// ╔══════════════════════════════════════════════════════════════════════════════════════╗
// ║ PLACEHOLDER: minimal implementation until the session engine (leader, children) is   ║
// ║ written. It only logs that the engine is missing and returns exit code 2. The engine ║
// ║ author replaces the body of startManager (keep the signature, or adapt the caller).  ║
// ╚══════════════════════════════════════════════════════════════════════════════════════╝
import type { LoadedConfig } from "./config/load.ts";

export interface ManagerStartup {
  /** The effective configuration (files + command-line overrides) and what the log should say about it. */
  loaded: LoadedConfig;
  /**
   * Load the configuration again from the same source with the same command-line overrides
   * (for SIGHUP). Throws ConfigError (from ./config/load.ts) on a bad file: keep running on the
   * old configuration and log the error's message.
   */
  reload: () => Promise<LoadedConfig>;
}

/**
 * Start the manager. Return an exit code, or undefined while a server keeps running.
 * The engine must log every `loaded.notes` entry at start (and after each reload), e.g. that
 * the built-in default configuration is in use because no file was found.
 */
export async function startManager(startup: ManagerStartup): Promise<number | undefined> {
  for (const note of startup.loaded.notes) process.stderr.write(`milter-manager: ${note}\n`);
  process.stderr.write("milter-manager: manager engine not implemented yet\n");
  return 2;
}
