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

/**
 * Operations per timed sample so that a sample lasts about `minSampleNs`:
 * from the median per-operation time of the later half of the warm-up's
 * measurements (`perOpNs`, oldest first), not the last one alone. One pause
 * (a GC, a JIT compile, the machine's other tenants) in the last
 * measurement would otherwise make the whole run time a fast case one
 * operation per sample, adding the harness's own per-sample cost (an await
 * and two clock reads) to every operation it reports. The earlier half is
 * left out: it is the batch size still doubling, and code still warming up.
 */
export function calibratedBatch(
  perOpNs: readonly number[],
  minSampleNs: number,
  maxBatch: number,
): number {
  const recent = perOpNs.slice(Math.floor(perOpNs.length / 2)).sort((x, y) => x - y);
  if (recent.length === 0) return 1;
  const perOp = percentile(recent, 50);
  if (!(perOp > 0)) return maxBatch;
  return Math.min(maxBatch, Math.max(1, Math.ceil(minSampleNs / perOp)));
}
