// Latency figures shared by the load generators (smtp-source, milter-test-server's load mode).

export interface LatencySummary {
  count: number;
  min: number;
  mean: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
}

/** Nearest-rank percentile (p in 0..100) of sorted values; NaN when empty. */
export function percentile(sorted: ArrayLike<number>, p: number): number {
  const n = sorted.length;
  if (n === 0) return NaN;
  const rank = Math.ceil((p / 100) * n);
  return sorted[Math.min(n - 1, Math.max(0, rank - 1))];
}

/** Summary of ascending-sorted samples (milliseconds), rounded to microseconds. */
export function summarizeSorted(s: Float64Array): LatencySummary {
  let sum = 0;
  for (let i = 0; i < s.length; i++) sum += s[i];
  const r = (x: number) => (Number.isNaN(x) ? NaN : Math.round(x * 1000) / 1000);
  return {
    count: s.length,
    min: r(s.length ? s[0] : NaN),
    mean: r(s.length ? sum / s.length : NaN),
    p50: r(percentile(s, 50)),
    p90: r(percentile(s, 90)),
    p99: r(percentile(s, 99)),
    max: r(s.length ? s[s.length - 1] : NaN),
  };
}
