// A strict parser of the Prometheus text exposition format (0.0.4), written for the tests: every
// line must be a HELP/TYPE comment or a sample `name{label="value",…} number`; a sample's family
// must have been TYPEd before it; label values unescape \\, \" and \n; a histogram's buckets must
// be cumulative with le="+Inf" equal to its _count. Throws on the first bad line.

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface Exposition {
  types: Map<string, string>;
  help: Map<string, string>;
  samples: Sample[];
  /** Sum of the samples named `name` whose labels include `match`. */
  get(name: string, match?: Record<string, string>): number;
  /** Whether any sample named `name` matches. */
  has(name: string, match?: Record<string, string>): boolean;
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const TYPES = new Set(["counter", "gauge", "histogram", "summary", "untyped"]);

function parseValue(text: string, line: string): number {
  if (text === "+Inf") return Infinity;
  if (text === "-Inf") return -Infinity;
  if (text === "NaN") return NaN;
  if (!/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(text)) throw new Error(`bad value "${text}" in: ${line}`);
  return Number(text);
}

function parseLabels(text: string, line: string): Record<string, string> {
  const labels: Record<string, string> = {};
  let i = 0;
  while (i < text.length) {
    const m = /^([a-zA-Z_][a-zA-Z0-9_]*)="/.exec(text.slice(i));
    if (!m) throw new Error(`bad label at "${text.slice(i)}" in: ${line}`);
    i += m[0].length;
    let value = "";
    for (;;) {
      if (i >= text.length) throw new Error(`unterminated label value in: ${line}`);
      const c = text[i++];
      if (c === '"') break;
      if (c === "\\") {
        const e = text[i++];
        if (e === "n") value += "\n";
        else if (e === "\\" || e === '"') value += e;
        else throw new Error(`bad escape \\${e} in: ${line}`);
      } else value += c;
    }
    if (m[1] in labels) throw new Error(`label ${m[1]} twice in: ${line}`);
    labels[m[1]] = value;
    if (text[i] === ",") i++;
    else if (i < text.length) throw new Error(`expected , after label in: ${line}`);
  }
  return labels;
}

function familyOf(name: string, types: Map<string, string>): string | undefined {
  if (types.has(name)) return name;
  for (const suffix of ["_bucket", "_sum", "_count"]) {
    if (name.endsWith(suffix)) {
      const base = name.slice(0, -suffix.length);
      if (types.get(base) === "histogram" || types.get(base) === "summary") return base;
    }
  }
  return undefined;
}

export function parsePrometheus(text: string): Exposition {
  if (!text.endsWith("\n")) throw new Error("exposition must end with a line feed");
  const types = new Map<string, string>();
  const help = new Map<string, string>();
  const samples: Sample[] = [];
  for (const line of text.slice(0, -1).split("\n")) {
    if (line === "") continue;
    if (line.startsWith("#")) {
      const m = /^# (HELP|TYPE) (\S+) (.*)$/.exec(line);
      if (!m) continue; // other comments are allowed
      if (!NAME.test(m[2])) throw new Error(`bad metric name in: ${line}`);
      if (m[1] === "TYPE") {
        if (!TYPES.has(m[3])) throw new Error(`bad type in: ${line}`);
        if (types.has(m[2])) throw new Error(`TYPE twice for ${m[2]}`);
        types.set(m[2], m[3]);
      } else help.set(m[2], m[3]);
      continue;
    }
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)(?: (-?\d+))?$/.exec(line);
    if (!m) throw new Error(`bad sample line: ${line}`);
    if (!familyOf(m[1], types)) throw new Error(`sample of an undeclared family: ${line}`);
    samples.push({ name: m[1], labels: m[2] ? parseLabels(m[2], line) : {}, value: parseValue(m[3], line) });
  }
  const matches = (s: Sample, name: string, match: Record<string, string> = {}) =>
    s.name === name && Object.entries(match).every(([k, v]) => s.labels[k] === v);
  // Histograms: cumulative buckets ending at +Inf = _count, per label set.
  for (const [family, type] of types) {
    if (type !== "histogram") continue;
    const groups = new Map<string, Sample[]>();
    for (const s of samples.filter((x) => x.name === `${family}_bucket`)) {
      const { le, ...rest } = s.labels;
      if (le === undefined) throw new Error(`${family}_bucket without le`);
      const key = JSON.stringify(rest);
      groups.set(key, [...(groups.get(key) ?? []), s]);
    }
    for (const [key, buckets] of groups) {
      let last = -1;
      for (const b of buckets) {
        if (b.value < last) throw new Error(`${family} buckets not cumulative for ${key}`);
        last = b.value;
      }
      const inf = buckets.find((b) => b.labels.le === "+Inf");
      const count = samples.find((x) => x.name === `${family}_count` && JSON.stringify(x.labels) === key);
      if (!inf || !count || inf.value !== count.value) throw new Error(`${family}: +Inf bucket and _count differ for ${key}`);
    }
  }
  return {
    types,
    help,
    samples,
    get: (name, match) => samples.filter((s) => matches(s, name, match)).reduce((a, s) => a + s.value, 0),
    has: (name, match) => samples.some((s) => matches(s, name, match)),
  };
}
