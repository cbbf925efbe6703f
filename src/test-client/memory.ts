/**
 * --report-memory-profile: the process's memory after each session, from
 * /proc/self/status and the JS heap; more detail with MILTER_MEMORY_PROFILE=yes.
 */
import { readFileSync } from "node:fs";

function procStatus(): Record<string, string> {
  const out: Record<string, string> = {};
  try {
    for (const line of readFileSync("/proc/self/status", "latin1").split("\n")) {
      const i = line.indexOf(":");
      if (i > 0) out[line.slice(0, i)] = line.slice(i + 1).trim();
    }
  } catch {}
  return out;
}

const kb = (n: number) => `${Math.round(n / 1024)} kB`;

/** `memory: VmRSS=… kB, VmHWM=… kB, heap-used=… kB` (text) or a JSON line when `session` is given. */
export function memoryReport(detail: boolean, session?: number): string {
  const st = procStatus();
  const mu = process.memoryUsage();
  const fields: [string, string][] = [
    ["VmRSS", st.VmRSS ?? "?"],
    ["VmHWM", st.VmHWM ?? "?"],
    ["heap-used", kb(mu.heapUsed)],
  ];
  if (detail) {
    fields.push(
      ["RssAnon", st.RssAnon ?? "?"],
      ["RssFile", st.RssFile ?? "?"],
      ["VmData", st.VmData ?? "?"],
      ["Threads", st.Threads ?? "?"],
      ["heap-total", kb(mu.heapTotal)],
      ["external", kb(mu.external)],
      ["array-buffers", kb(mu.arrayBuffers)],
    );
    try {
      const { heapStats } = require("bun:jsc") as { heapStats(): { objectCount: number; protectedObjectCount: number } };
      const h = heapStats();
      fields.push(["objects", String(h.objectCount)], ["protected-objects", String(h.protectedObjectCount)]);
    } catch {}
  }
  if (session !== undefined) {
    return `${JSON.stringify({ event: "memory", session, pid: process.pid, ...Object.fromEntries(fields) })}\n`;
  }
  return `memory: ${fields.map(([k, v]) => `${k}=${v}`).join(", ")}\n`;
}
