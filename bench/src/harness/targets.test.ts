import { describe, expect, it } from 'vitest';
import { caseResult } from './fixtures/report';
import { describeTarget, evaluateTargets, metricOf } from './targets';
import type { Target } from './types';

const ours = caseResult({
  name: 'ours',
  role: 'ours',
  unit: 'MiB/s',
  throughput: 900,
  perOpNs: { mean: 800, p50: 700, p99: 2000, min: 500, max: 9000 },
  copies: { source: 'counted', bytesCopiedPerOp: 0, bytesAllocatedPerOp: 0, copiesPerOp: 0 },
});
const raw = caseResult({ name: 'raw', role: 'baseline', unit: 'MiB/s', throughput: 1000 });
const broken = caseResult({ name: 'broken', throughput: null, perOpNs: null, error: 'boom' });
const cases = [ours, raw, broken];

describe('metricOf', () => {
  it('gives peak RSS above the baseline for isolated cases, null without a baseline', () => {
    const child = caseResult({
      name: 'child',
      isolated: true,
      peakRssBytes: 120 * 2 ** 20,
      baselineRssBytes: 80 * 2 ** 20,
    });
    expect(metricOf(child, 'rssAboveBaselineBytes')).toBe(40 * 2 ** 20);
    expect(metricOf(raw, 'rssAboveBaselineBytes')).toBeNull();
    const [t] = evaluateTargets(
      [{ kind: 'limit', case: 'child', metric: 'rssAboveBaselineBytes', atMost: 32 * 2 ** 20 }],
      [child],
    );
    expect(t).toMatchObject({ met: false, actual: 40 * 2 ** 20, detail: '40 MiB' });
    expect(t?.label).toBe('child: peak RSS above baseline ≤ 32 MiB');
  });
});

describe('evaluateTargets', () => {
  it('meets a throughput ratio that holds, with the ratio as the actual figure', () => {
    const [r] = evaluateTargets([{ kind: 'ratio', case: 'ours', vs: 'raw', atLeast: 0.8 }], cases);
    expect(r).toMatchObject({ met: true, actual: 0.9 });
    expect(r?.label).toBe('ours ≥ 0.8× raw (throughput)');
    expect(r?.detail).toContain('0.9×');
  });

  it('misses a ratio that does not hold, without throwing', () => {
    const [r] = evaluateTargets([{ kind: 'ratio', case: 'ours', vs: 'raw', atLeast: 1.2 }], cases);
    expect(r).toMatchObject({ met: false, actual: 0.9 });
  });

  it('judges ratios of other metrics, with upper bounds', () => {
    const t: Target = { kind: 'ratio', case: 'ours', vs: 'raw', metric: 'p50Ns', atMost: 1.5 };
    // ours p50 700 ns vs raw p50 1 ms.
    expect(evaluateTargets([t], cases)[0]).toMatchObject({ met: true, actual: 0.0007 });
    const tight: Target = { kind: 'ratio', case: 'raw', vs: 'ours', metric: 'p50Ns', atMost: 1.5 };
    expect(evaluateTargets([tight], cases)[0]?.met).toBe(false);
  });

  it('judges limits on one case, both bounds included', () => {
    const within: Target = { kind: 'limit', case: 'ours', metric: 'p50Ns', atMost: 1000 };
    const over: Target = { kind: 'limit', case: 'ours', metric: 'p50Ns', atMost: 500 };
    const exact: Target = {
      kind: 'limit',
      case: 'ours',
      metric: 'bytesCopiedPerOp',
      atLeast: 0,
      atMost: 0,
    };
    const [a, b, c] = evaluateTargets([within, over, exact], cases);
    expect(a).toMatchObject({ met: true, actual: 700, label: 'ours: p50 ≤ 1 µs' });
    expect(b).toMatchObject({ met: false, actual: 700 });
    expect(c).toMatchObject({ met: true, actual: 0 });
  });

  it('reports a missing or failed case as a miss with the reason', () => {
    const results = evaluateTargets(
      [
        { kind: 'ratio', case: 'ours', vs: 'nobody', atLeast: 1 },
        { kind: 'ratio', case: 'broken', vs: 'raw', atLeast: 1 },
        { kind: 'ratio', case: 'ours', vs: 'broken', atLeast: 1 },
        { kind: 'limit', case: 'raw', metric: 'bytesCopiedPerOp', atMost: 0 },
      ],
      cases,
    );
    expect(results.map((r) => r.met)).toEqual([false, false, false, false]);
    expect(results[0]?.detail).toBe('nobody was not run');
    expect(results[1]?.detail).toBe('broken boom');
    expect(results[2]?.detail).toBe('broken boom');
    expect(results[3]?.detail).toBe('raw has no bytes copied/op');
    expect(results.every((r) => r.actual === null)).toBe(true);
  });

  it('uses a given label', () => {
    const [r] = evaluateTargets(
      [{ kind: 'limit', case: 'ours', metric: 'p99Ns', atMost: 1e4, label: 'fast' }],
      cases,
    );
    expect(r?.label).toBe('fast');
  });
});

describe('metricOf / describeTarget', () => {
  it('reads every metric', () => {
    expect(metricOf(ours, 'throughput')).toBe(900);
    expect(metricOf(ours, 'p99Ns')).toBe(2000);
    expect(metricOf(ours, 'peakRssBytes')).toBe(100 * 2 ** 20);
    expect(metricOf(ours, 'rssGrowthBytes')).toBe(2 ** 20);
    expect(metricOf(raw, 'bytesCopiedPerOp')).toBeNull();
  });

  it('describes limits in the metric unit', () => {
    const unit = () => 'MiB/s' as const;
    expect(
      describeTarget({ kind: 'limit', case: 'x', metric: 'throughput', atLeast: 2048 }, unit),
    ).toBe('x: throughput ≥ 2,048 MiB/s');
    expect(
      describeTarget({ kind: 'limit', case: 'x', metric: 'peakRssBytes', atMost: 2 ** 30 }, unit),
    ).toBe('x: peak RSS ≤ 1 GiB');
  });
});
