import { describe, expect, it } from 'vitest';
import { alternating, calls, mixed } from './fixtures/fixture-bench';
import { QUICK_OPTIONS, roundOrder, runBenchmark } from './runner';
import type { RunOptions } from './types';

const options: RunOptions = {
  ...QUICK_OPTIONS,
  warmupMs: 5,
  timeMs: 40,
  rounds: 4,
  minSampleNs: 20_000,
  rssIntervalMs: 1,
};

describe('roundOrder', () => {
  it('rotates the cases by the round number', () => {
    expect(roundOrder(['a', 'b', 'c'], 0)).toEqual(['a', 'b', 'c']);
    expect(roundOrder(['a', 'b', 'c'], 1)).toEqual(['b', 'c', 'a']);
    expect(roundOrder(['a', 'b', 'c'], 5)).toEqual(['c', 'a', 'b']);
    expect(roundOrder([], 3)).toEqual([]);
  });
});

describe('runBenchmark', () => {
  it('warms every case up, then alternates them round by round', async () => {
    calls.length = 0;
    const { report } = await runBenchmark(
      { ...alternating, cases: alternating.cases.filter((c) => c.name !== 'peer') },
      options,
    );
    // warm-up a, warm-up b; rounds [a b] [b a] [a b] [b a] (consecutive repeats merged)
    expect(calls).toEqual(['a', 'b', 'a', 'b', 'a', 'b', 'a']);
    expect(report.cases.map((c) => c.name)).toEqual(['a', 'b']);
  });

  it('measures throughput, percentiles, RSS, copies and ratios per case', async () => {
    const { report, samples } = await runBenchmark(alternating, options);
    const [a, b, peer] = report.cases;
    for (const c of report.cases) {
      expect(c.ops).toBeGreaterThan(0);
      expect(c.samples).toBe(samples[c.name]?.length);
      expect(c.batch).toBeGreaterThanOrEqual(1);
      expect(c.throughput).toBeCloseTo((c.ops * 1000) / 2 ** 20 / (c.timeNs / 1e9), 6);
      expect(c.perOpNs?.p50).toBeGreaterThan(0);
      expect(c.perOpNs?.p99).toBeGreaterThanOrEqual(c.perOpNs?.p50 as number);
      expect(c.peakRssBytes).toBeGreaterThan(0);
      expect(c.rssGrowthBytes).toBeGreaterThanOrEqual(0);
      expect(c.error).toBeNull();
    }
    expect(a?.ratio).toBe(1);
    expect(b?.ratio).toBeCloseTo((b?.throughput as number) / (a?.throughput as number), 10);
    // Ours is counted by buffer-view's counters: one 1000-byte copy and allocation per op.
    expect(b?.copies).toEqual({
      source: 'counted',
      bytesCopiedPerOp: 1000,
      bytesAllocatedPerOp: 1000,
      copiesPerOp: 1,
    });
    expect(a?.copies).toBeNull();
    expect(peer?.copies).toEqual({ source: 'declared', bytesCopiedPerOp: 1000 });
    expect(report.targets.map((t) => t.met)).toEqual([true, false]);
    expect(report.allTargetsMet).toBe(false);
    expect(report.options).toEqual(options);
  });

  it('runs async cases, isolated cases in child processes, and reports failures without stopping', async () => {
    const log: string[] = [];
    const { report } = await runBenchmark(mixed, options, (line) => log.push(line));
    const byName = new Map(report.cases.map((c) => [c.name, c]));
    for (const name of ['sync', 'async', 'isolated', 'isolated async']) {
      const c = byName.get(name);
      expect(c?.error, name).toBeNull();
      expect(c?.ops, name).toBeGreaterThan(0);
      expect(c?.throughput, name).toBeGreaterThan(0);
    }
    expect(byName.get('isolated')?.isolated).toBe(true);
    expect(byName.get('isolated')?.copies).toMatchObject({
      source: 'counted',
      bytesCopiedPerOp: 0,
    });
    // An async op that waits ~1 ms is timed per op, not lost in a batch.
    expect(byName.get('isolated async')?.perOpNs?.p50).toBeGreaterThan(900_000);
    expect(byName.get('isolated async')?.batch).toBe(1);
    expect(byName.get('throws')).toMatchObject({ error: 'kaput', throughput: null, ops: 0 });
    expect(byName.get('isolated setup throws')?.error).toContain('setup 1 refused');
    expect(log.some((line) => line.includes('throws: failed: kaput'))).toBe(true);
  }, 60_000);
});
