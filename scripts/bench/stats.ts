// Small statistics for the benchmarks: percentiles (linear interpolation between closest ranks, as numpy's
// default), summaries of samples, and a histogram of event times per time bucket.

export interface Summary {
  n: number;
  min: number;
  max: number;
  mean: number;
  stddev: number;
  p50: number;
  p90: number;
  p95: number;
  p99: number;
}

/** The q-th percentile (0–100) of `sorted` (ascending); NaN for no samples. */
export function percentileOfSorted(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return NaN;
  if (sorted.length === 1) return sorted[0]!;
  const rank = (Math.min(100, Math.max(0, q)) / 100) * (sorted.length - 1);
  const lo = Math.floor(rank);
  const hi = Math.ceil(rank);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (rank - lo);
}

export function percentile(samples: readonly number[], q: number): number {
  return percentileOfSorted(
    [...samples].sort((a, b) => a - b),
    q,
  );
}

export function summarize(samples: readonly number[]): Summary {
  const s = [...samples].sort((a, b) => a - b);
  const n = s.length;
  const mean = n ? s.reduce((a, b) => a + b, 0) / n : NaN;
  const variance = n > 1 ? s.reduce((a, b) => a + (b - mean) ** 2, 0) / (n - 1) : 0;
  return {
    n,
    min: n ? s[0]! : NaN,
    max: n ? s[n - 1]! : NaN,
    mean,
    stddev: Math.sqrt(variance),
    p50: percentileOfSorted(s, 50),
    p90: percentileOfSorted(s, 90),
    p95: percentileOfSorted(s, 95),
    p99: percentileOfSorted(s, 99),
  };
}

/** Counts of `times` (ms) per bucket of `bucketMs`, from `fromMs` to `toMs` (exclusive). */
export function histogram(times: readonly number[], fromMs: number, toMs: number, bucketMs: number): number[] {
  const buckets = new Array<number>(Math.max(1, Math.ceil((toMs - fromMs) / bucketMs))).fill(0);
  for (const t of times) {
    if (t < fromMs || t >= toMs) continue;
    buckets[Math.floor((t - fromMs) / bucketMs)]!++;
  }
  return buckets;
}

/** Rounds for the JSON and tables: 3 significant decimals are plenty for milliseconds and ratios. */
export function round(x: number, digits = 3): number {
  if (!Number.isFinite(x)) return x;
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

export function roundSummary(s: Summary, digits = 3): Summary {
  return Object.fromEntries(
    Object.entries(s).map(([k, v]) => [k, k === 'n' ? v : round(v, digits)]),
  ) as unknown as Summary;
}
