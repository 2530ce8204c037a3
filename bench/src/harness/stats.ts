import type { TimeSummary } from './types';

/**
 * The `p`-th percentile (0..100) of ascending `sorted` values, interpolating
 * linearly between the two nearest ranks (the "R-7" / NumPy default method).
 */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) throw new RangeError('percentile of no samples');
  if (!(p >= 0 && p <= 100)) throw new RangeError(`percentile must be in 0..100, got ${p}`);
  const rank = (p / 100) * (sorted.length - 1);
  const lo = Math.floor(rank);
  const hi = Math.ceil(rank);
  const a = sorted[lo] as number;
  const b = sorted[hi] as number;
  return a + (b - a) * (rank - lo);
}

/** Mean, p50, p99, min and max of per-operation times (any order). */
export function summarize(samples: readonly number[]): TimeSummary {
  if (samples.length === 0) throw new RangeError('summary of no samples');
  const sorted = [...samples].sort((x, y) => x - y);
  let sum = 0;
  for (const s of sorted) sum += s;
  return {
    mean: sum / sorted.length,
    p50: percentile(sorted, 50),
    p99: percentile(sorted, 99),
    min: sorted[0] as number,
    max: sorted[sorted.length - 1] as number,
  };
}

/** Throughput in the case's unit from a count of operations over a time. */
export function throughputOf(
  unit: 'MiB/s' | 'ops/s',
  ops: number,
  timeNs: number,
  bytesPerOp: number,
): number {
  if (!(timeNs > 0) || ops === 0) return 0;
  const perSecond = ops / (timeNs / 1e9);
  return unit === 'ops/s' ? perSecond : (perSecond * bytesPerOp) / 2 ** 20;
}
