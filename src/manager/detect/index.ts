// Auto-detection of the milters installed and enabled on a Debian system (milters.ts). The
// configuration (config/detected.ts) makes a layer of it under the configuration files: a
// file's [[milters]] entry of the same name refines or overrides what was detected, item by item.
//
// The root directory is "/" unless $MILTERKIT_DETECT_ROOT names another (tests point it at a
// fixture tree; it is not meant for administrators).
import { Root } from "./files.ts";
import { type Detected, detectAll, type Skipped } from "./milters.ts";

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

function where(o: DetectedOrigin): string {
  return o.line === undefined ? o.file : `${o.file}:${o.line}`;
}

/** What `milter-manager --detect` prints: each milter, its socket and conditions, and from where. */
export function formatDetection(d: Detection): string {
  const out: string[] = [];
  out.push(`# auto-detection under ${d.root}${d.root === "/" ? "" : " (paths below are relative to it)"}`);
  if (d.detected.length === 0) out.push("# nothing detected");
  for (const m of d.detected) {
    out.push(
      "",
      `${m.name}: ${m.connection_spec}`,
      `  socket from      ${where(m.specFrom)}`,
      `  enabled by       ${where(m.enabledFrom)}`,
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
