// Never fail open silently: a manager with no child to ask answers every message with
// manager.fallback_status (accept by default), which is a mail system with no filtering at all.
// Said as a warning at start, on every reload and wherever the configuration is checked.
import type { ManagerConfig } from "./schema.ts";

/** The warning for a configuration with no enabled child milter, or undefined when there is one. */
export function noChildWarning(config: ManagerConfig): string | undefined {
  if (config.milters.some((m) => m.enabled)) return undefined;
  const what = config.milters.length === 0 ? "no child milter is configured or detected" : "every child milter is disabled";
  return `${what}: every message gets manager.fallback_status "${config.manager.fallback_status}"` +
    (config.manager.fallback_status === "accept" ? " (delivered unfiltered)" : "");
}
