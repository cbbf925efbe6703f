// /metrics: the Monitor's counters in the Prometheus text exposition format (version 0.0.4):
// `# HELP` and `# TYPE` per metric family, then one `name{labels} value` line per series.
import { LATENCY_BUCKETS, type Monitor, processFacts } from "../monitor.ts";

export const METRICS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

/** A label value as the format wants it: backslash, double quote and line feed escaped. */
function label(v: string): string {
  return v.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
}

function labels(names: readonly string[], key: string): string {
  const values = key.split("\0");
  return names.map((n, i) => `${n}="${label(values[i] ?? "")}"`).join(",");
}

class Out {
  lines: string[] = [];
  family(name: string, type: "counter" | "gauge" | "histogram", help: string): void {
    this.lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
  }
  sample(name: string, labelText: string, value: number): void {
    this.lines.push(`${name}${labelText ? `{${labelText}}` : ""} ${Number.isFinite(value) ? value : 0}`);
  }
  counter(name: string, help: string, names: readonly string[], values: Map<string, number>): void {
    this.family(name, "counter", help);
    for (const [k, v] of values) this.sample(name, labels(names, k), v);
  }
}

export function renderMetrics(m: Monitor): string {
  const o = new Out();
  o.family("milterkit_info", "gauge", "Version of the running manager (always 1).");
  o.sample("milterkit_info", `version="${label(m.info.version)}"`, 1);
  o.counter("milterkit_sessions_total", "MTA sessions ended, by the last answer the MTA got (pass, accept, reject, discard, temporary-failure, ...).", ["status"], m.sessions.values);
  o.counter("milterkit_messages_total", "Messages ended (end-of-message or abort), by the answer the MTA got.", ["status"], m.messages.values);
  o.family("milterkit_sessions_open", "gauge", "MTA sessions in progress.");
  o.sample("milterkit_sessions_open", "", m.openSessions);
  o.counter("milterkit_child_answers_total", "Answers of each child milter, by stage and status (error = the step failed).", ["milter", "stage", "status"], m.answers.values);
  o.counter("milterkit_child_failures_total", "Failed steps of each child milter, by kind (timeout, closed, protocol-error, connection-error).", ["milter", "kind"], m.failures.values);
  o.counter("milterkit_child_timeouts_total", "Timeouts of each child milter, by timer (connection, writing, reading, end-of-message, end-of-message-total).", ["milter", "timer"], m.timeouts.values);
  o.counter("milterkit_child_state_changes_total", "Times a child milter was found down, or up again.", ["milter", "state"], m.stateChanges.values);
  o.family("milterkit_child_up", "gauge", "1 when the last connection to the child milter negotiated, 0 when it failed (absent until tried).");
  for (const c of m.children.values()) if (c.up !== undefined) o.sample("milterkit_child_up", `milter="${label(c.name)}"`, c.up ? 1 : 0);
  o.family("milterkit_child_latency_seconds", "histogram", "Time from sending a command to a child milter to its answer.");
  for (const c of m.children.values()) {
    const name = `milter="${label(c.name)}"`;
    let cumulative = 0;
    LATENCY_BUCKETS.forEach((le, i) => {
      cumulative += c.buckets[i];
      o.sample("milterkit_child_latency_seconds_bucket", `${name},le="${le}"`, cumulative);
    });
    cumulative += c.buckets[LATENCY_BUCKETS.length];
    o.sample("milterkit_child_latency_seconds_bucket", `${name},le="+Inf"`, cumulative);
    o.sample("milterkit_child_latency_seconds_sum", name, c.latencySum);
    o.sample("milterkit_child_latency_seconds_count", name, cumulative);
  }
  o.counter("milterkit_reloads_total", "Configuration reloads, by outcome (ok, failed).", ["outcome"], m.reloads.values);
  o.family("milterkit_configuration_loaded_timestamp_seconds", "gauge", "When the configuration in use was loaded (Unix time).");
  o.sample("milterkit_configuration_loaded_timestamp_seconds", "", m.configLoadedAt / 1000);
  const p = processFacts();
  o.family("process_resident_memory_bytes", "gauge", "Resident memory of the process.");
  o.sample("process_resident_memory_bytes", "", p.resident_memory_bytes);
  if (p.open_fds !== null) {
    o.family("process_open_fds", "gauge", "Open file descriptors of the process.");
    o.sample("process_open_fds", "", p.open_fds);
  }
  o.family("process_start_time_seconds", "gauge", "When the process started (Unix time).");
  o.sample("process_start_time_seconds", "", m.startedAt / 1000);
  return `${o.lines.join("\n")}\n`;
}
