import { describe, expect, it } from 'vitest';
import { calibratedBatch, percentile, summarize, throughputOf } from './stats';

describe('percentile', () => {
  const oneToHundred = Array.from({ length: 100 }, (_, i) => i + 1);

  it('interpolates between ranks (R-7)', () => {
    expect(percentile(oneToHundred, 50)).toBeCloseTo(50.5, 10);
    expect(percentile(oneToHundred, 99)).toBeCloseTo(99.01, 10);
    expect(percentile([10, 20], 25)).toBeCloseTo(12.5, 10);
  });

  it('returns the extremes at 0 and 100', () => {
    expect(percentile(oneToHundred, 0)).toBe(1);
    expect(percentile(oneToHundred, 100)).toBe(100);
  });

  it('is the value itself for one sample', () => {
    expect(percentile([42], 50)).toBe(42);
    expect(percentile([42], 99)).toBe(42);
  });

  it('rejects no samples and out-of-range percentiles', () => {
    expect(() => percentile([], 50)).toThrow(RangeError);
    expect(() => percentile([1], 101)).toThrow(RangeError);
    expect(() => percentile([1], -1)).toThrow(RangeError);
    expect(() => percentile([1], Number.NaN)).toThrow(RangeError);
  });
});

describe('summarize', () => {
  it('sorts its input and reports mean, p50, p99, min, max', () => {
    const samples = [5, 1, 4, 2, 3];
    const s = summarize(samples);
    expect(s).toMatchObject({ mean: 3, p50: 3, min: 1, max: 5 });
    expect(s.p99).toBeCloseTo(4.96, 10);
    expect(samples).toEqual([5, 1, 4, 2, 3]);
  });

  it('puts a single outlier into p99 but not p50', () => {
    const samples = [...Array.from({ length: 999 }, () => 100), 1_000_000];
    const s = summarize(samples);
    expect(s.p50).toBe(100);
    expect(s.max).toBe(1_000_000);
    expect(s.p99).toBe(100);
    expect(s.mean).toBeCloseTo(1099.9, 5);
  });

  it('rejects no samples', () => {
    expect(() => summarize([])).toThrow(RangeError);
  });
});

describe('throughputOf', () => {
  it('counts operations per second', () => {
    expect(throughputOf('ops/s', 500, 0.5e9, 0)).toBe(1000);
  });

  it('turns bytes per second into MiB/s', () => {
    expect(throughputOf('MiB/s', 1000, 1e9, 2 ** 20)).toBe(1000);
    expect(throughputOf('MiB/s', 1, 2e9, 2 ** 20)).toBe(0.5);
  });

  it('is 0 when nothing was timed', () => {
    expect(throughputOf('ops/s', 0, 1e9, 0)).toBe(0);
    expect(throughputOf('ops/s', 10, 0, 0)).toBe(0);
  });
});

describe('calibratedBatch', () => {
  it('sizes a sample to last about minSampleNs', () => {
    expect(calibratedBatch([3000, 3000, 3000], 200_000, 2 ** 24)).toBe(67);
    expect(calibratedBatch([200_000], 200_000, 2 ** 24)).toBe(1);
  });

  it('is not thrown off by one pause in the last measurement', () => {
    // A 2.4 ms pause in the final measurement of a 3 µs operation.
    const perOp = [3100, 2900, 3000, 3050, 2950, 3000, 2_400_000];
    expect(calibratedBatch(perOp, 200_000, 2 ** 24)).toBe(67);
  });

  it('is not thrown off by a slow stretch at the end of the warm-up', () => {
    const perOp = [
      ...Array.from({ length: 40 }, () => 3000),
      ...Array.from({ length: 9 }, () => 40_000),
    ];
    expect(calibratedBatch(perOp, 200_000, 2 ** 24)).toBe(67);
  });

  it('follows a real change: the earlier half does not count', () => {
    const perOp = [
      ...Array.from({ length: 20 }, () => 1000),
      ...Array.from({ length: 20 }, () => 4000),
    ];
    expect(calibratedBatch(perOp, 200_000, 2 ** 24)).toBe(50);
  });

  it('stays within 1 and the largest batch', () => {
    expect(calibratedBatch([], 200_000, 2 ** 24)).toBe(1);
    expect(calibratedBatch([5_000_000], 200_000, 2 ** 24)).toBe(1);
    expect(calibratedBatch([0.001], 200_000, 1024)).toBe(1024);
    expect(calibratedBatch([0], 200_000, 1024)).toBe(1024);
  });
});
