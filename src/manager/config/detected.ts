// Detected milters (../detect/) as a configuration layer: each item's origin is the file and
// line it was read from, shown by --show-config as `# detected from FILE:LINE`.
import type { Detected, DetectedOrigin, Detection } from "../detect/index.ts";
import { MILTER_DEFAULTS, type MilterConfig } from "./schema.ts";

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
    // milter-greylist answers a tarpitted client only after the tarpit delay.
    milter.reading_timeout = MILTER_DEFAULTS.reading_timeout + d.extraTimeout.seconds;
    milter.writing_timeout = MILTER_DEFAULTS.writing_timeout + d.extraTimeout.seconds;
    origins.set("reading_timeout", at(d.extraTimeout));
    origins.set("writing_timeout", at(d.extraTimeout));
  }
  return { milter, origins };
}

/** Every detected milter, in detection order. */
export function detectedEntries(d: Detection): ReturnType<typeof milterEntry>[] {
  return d.detected.map(milterEntry);
}
