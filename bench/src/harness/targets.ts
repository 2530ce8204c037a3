import { formatMetric, formatRatio, METRIC_NAMES } from './format';
import type { CaseResult, Metric, Target, TargetResult } from './types';

/** A case's figure for `metric`, or null when the case failed or has no such figure. */
export function metricOf(result: CaseResult, metric: Metric): number | null {
  switch (metric) {
    case 'throughput':
      return result.throughput;
    case 'p50Ns':
      return result.perOpNs?.p50 ?? null;
    case 'p99Ns':
      return result.perOpNs?.p99 ?? null;
    case 'peakRssBytes':
      return result.peakRssBytes;
    case 'rssGrowthBytes':
      return result.rssGrowthBytes;
    case 'rssAboveBaselineBytes':
      return result.peakRssBytes === null || result.baselineRssBytes === null
        ? null
        : result.peakRssBytes - result.baselineRssBytes;
    case 'bytesCopiedPerOp':
      return result.copies?.bytesCopiedPerOp ?? null;
  }
}

function bounds(target: Target, show: (n: number) => string): string {
  const parts: string[] = [];
  if (target.atLeast !== undefined) parts.push(`≥ ${show(target.atLeast)}`);
  if (target.atMost !== undefined) parts.push(`≤ ${show(target.atMost)}`);
  return parts.join(' and ');
}

function within(value: number, target: Target): boolean {
  return (
    (target.atLeast === undefined || value >= target.atLeast) &&
    (target.atMost === undefined || value <= target.atMost)
  );
}

/** The generated description of a target, e.g. "ours ≥ 0.8× raw (throughput)". */
export function describeTarget(
  target: Target,
  unitOf: (caseName: string) => 'MiB/s' | 'ops/s',
): string {
  if (target.label !== undefined) return target.label;
  const metric = target.metric ?? 'throughput';
  if (target.kind === 'ratio') {
    const b = bounds(target, (n) => formatRatio(n));
    return `${target.case} ${b} ${target.vs} (${METRIC_NAMES[metric]})`;
  }
  const unit = unitOf(target.case);
  return `${target.case}: ${METRIC_NAMES[metric]} ${bounds(target, (n) => formatMetric(metric, n, unit))}`;
}

/**
 * Judges each target against the measured cases. Never throws: a missing
 * case or figure is a miss with the reason in `detail`.
 */
export function evaluateTargets(
  targets: readonly Target[],
  cases: readonly CaseResult[],
): TargetResult[] {
  const byName = new Map(cases.map((c) => [c.name, c]));
  const unitOf = (name: string) => byName.get(name)?.unit ?? 'ops/s';
  return targets.map((target) => {
    const label = describeTarget(target, unitOf);
    const metric = target.metric ?? 'throughput';
    const subject = byName.get(target.case);
    const value = subject ? metricOf(subject, metric) : null;
    if (subject === undefined || value === null) {
      const why =
        subject === undefined ? 'was not run' : (subject.error ?? `has no ${METRIC_NAMES[metric]}`);
      return { label, met: false, actual: null, detail: `${target.case} ${why}` };
    }
    const shown = formatMetric(metric, value, subject.unit);
    if (target.kind === 'limit') {
      return { label, met: within(value, target), actual: value, detail: `${shown}` };
    }
    const other = byName.get(target.vs);
    const base = other ? metricOf(other, metric) : null;
    if (other === undefined || base === null || base === 0) {
      const why =
        other === undefined
          ? 'was not run'
          : (other.error ?? `has no usable ${METRIC_NAMES[metric]}`);
      return { label, met: false, actual: null, detail: `${target.vs} ${why}` };
    }
    const ratio = value / base;
    const detail = `${formatRatio(ratio)} (${shown} vs ${formatMetric(metric, base, other.unit)})`;
    return { label, met: within(ratio, target), actual: ratio, detail };
  });
}
