// Auto-detection of the milters installed and enabled on a Debian system (milters.ts), as a
// configuration layer that goes under the configuration files: a file's [[milters]] entry of
// the same name refines or overrides what was detected, item by item.
//
// The root directory is "/" unless $MILTERKIT_DETECT_ROOT names another (tests point it at a
// fixture tree; it is not meant for administrators).
import { Root } from "./files.ts";
import { type Detected, detectAll, type Skipped } from "./milters.ts";
import { MILTER_DEFAULTS, type MilterConfig } from "../config/schema.ts";

export type { Detected, Skipped } from "./milters.ts";
export { normalizeSpec } from "./milters.ts";

export const DETECT_ROOT_ENV = "MILTERKIT_DETECT_ROOT";

export interface Detection {
  /** The root that was searched ("/" on a real system). */
  root: string;
  detected: Detected[];
  skipped: Skipped[];
}

/** Where an item of a detected milter came from (a file and line, or a rule). */
export interface DetectedOrigin {
  file: string;
  line?: number;
}

export function detectRoot(env: Record<string, string | undefined> = process.env): string {
  return env[DETECT_ROOT_ENV] || "/";
}

/** Look for installed, enabled milters under `root`. Never throws. */
export function detectMilters(root = detectRoot()): Detection {
  try {
    return { root, ...detectAll(new Root(root)) };
  } catch (e) {
    return { root, detected: [], skipped: [{ name: "(detection)", why: `failed: ${(e as Error).message}` }] };
  }
}

/** A detected milter as a configuration entry, with the origin of each item it sets. */
export function milterEntry(d: Detected): { milter: Partial<MilterConfig> & { name: string }; origins: Map<keyof MilterConfig | "", DetectedOrigin> } {
  const at = (f: { file: string; line?: number }): DetectedOrigin => ({ file: f.file, line: f.line });
  const milter: Partial<MilterConfig> & { name: string } = {
    name: d.name,
    connection_spec: d.connection_spec,
    enabled: true,
    applicable_conditions: d.applicable_conditions,
  };
  const origins = new Map<keyof MilterConfig | "", DetectedOrigin>([
    ["", at(d.specFrom)],
    ["name", at(d.specFrom)],
    ["connection_spec", at(d.specFrom)],
    ["enabled", at(d.enabledFrom)],
    ["applicable_conditions", { file: "milter manager's Debian defaults" }],
  ]);
  if (d.description !== null) {
    milter.description = d.description;
    if (d.descriptionFrom) origins.set("description", at(d.descriptionFrom));
  }
  if (d.extraTimeout) {
    milter.reading_timeout = MILTER_DEFAULTS.reading_timeout + d.extraTimeout.seconds;
    milter.writing_timeout = MILTER_DEFAULTS.writing_timeout + d.extraTimeout.seconds;
    origins.set("reading_timeout", at(d.extraTimeout));
    origins.set("writing_timeout", at(d.extraTimeout));
  }
  return { milter, origins };
}

function where(o: DetectedOrigin): string {
  return o.line === undefined ? o.file : `${o.file}:${o.line}`;
}

/** What `milter-manager --detect` prints: each milter, its socket and conditions, and from where. */
export function formatDetection(d: Detection): string {
  const out: string[] = [];
  out.push(`# auto-detection under ${d.root}${d.root === "/" ? "" : " (paths below are relative to it)"}`);
  if (d.detected.length === 0) out.push("# nothing detected");
  for (const m of d.detected) {
    const { origins } = milterEntry(m);
    out.push(
      "",
      `${m.name}: ${m.connection_spec}`,
      `  socket from      ${where(origins.get("connection_spec")!)}`,
      `  enabled by       ${where(origins.get("enabled")!)}`,
      `  conditions       ${m.applicable_conditions.length === 0 ? "(none)" : m.applicable_conditions.join(", ")} (milter manager's Debian defaults)`,
    );
    if (m.description !== null) out.push(`  description      ${m.description}`);
    if (m.extraTimeout) out.push(`  timeouts         reading and writing +${m.extraTimeout.seconds} s for "${m.extraTimeout.value}" at ${m.extraTimeout.file}:${m.extraTimeout.line}`);
  }
  if (d.skipped.length > 0) {
    out.push("", "# installed but not detected:");
    for (const s of d.skipped) out.push(`#   ${s.name}: ${s.why}`);
  }
  return out.join("\n") + "\n";
}
