import { describe, expect, it } from 'vitest';
import { built } from './fixtures/built-bench';
import {
  alternating,
  calls,
  checked,
  checkedSeen,
  mixed,
  scenario,
  scenarioRuns,
} from './fixtures/fixture-bench';
import {
  DEFAULT_OPTIONS,
  effectiveOptions,
  QUICK_OPTIONS,
  resolveBytesPerOp,
  roundOrder,
  runBenchmark,
} from './runner';
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

describe('single-shot scenarios', () => {
  it('run no warm-up and exactly `runs` operations per case, each timed alone', async () => {
    for (const key of Object.keys(scenarioRuns)) delete scenarioRuns[key];
    const { report, samples } = await runBenchmark(scenario, options);
    expect(report.mode).toBe('single-shot');
    expect(report.options).toMatchObject({ warmupMs: 0, timeMs: 0, rounds: 2, quick: true });
    // Quick run: the per-run figure of bytes per op.
    expect(report.bytesPerOp).toBe(1000);
    // In this process: two runs each, so no warm-up or calibration ran.
    expect(scenarioRuns).toEqual({ sync: 2, async: 2 });
    for (const c of report.cases) {
      expect(c.error, c.name).toBeNull();
      expect(c).toMatchObject({ ops: 2, samples: 2, batch: 1, bytesPerOp: 1000 });
      expect(samples[c.name]).toHaveLength(2);
      expect(c.throughput).toBeCloseTo((2 * 1000) / 2 ** 20 / (c.timeNs / 1e9), 6);
    }
    // The async op is awaited, not lost: each of its runs took at least its 5 ms timer.
    expect(report.cases[1]?.perOpNs?.min).toBeGreaterThan(4_000_000);
  }, 60_000);

  it('report a baseline RSS for isolated cases only, and judge targets above it', async () => {
    const { report } = await runBenchmark(scenario, { ...options, quick: false });
    expect(report.bytesPerOp).toBe(2000);
    const [local, , isolated] = report.cases;
    expect(local?.baselineRssBytes).toBeNull();
    const baseline = isolated?.baselineRssBytes as number;
    expect(baseline).toBeGreaterThan(0);
    // The kernel's high-water mark is at least the RSS seen at any moment, the baseline included.
    expect(isolated?.peakRssBytes).toBeGreaterThanOrEqual(baseline);
    const [target] = report.targets;
    expect(target?.actual).toBe((isolated?.peakRssBytes as number) - baseline);
    expect(target?.met).toBe(true);
  }, 60_000);

  it('check each run after it, outside its timing, and fail the case whose check throws', async () => {
    checkedSeen.length = 0;
    const { report } = await runBenchmark(checked, options);
    const [slow, refused] = report.cases;
    // Each check got the value its run returned.
    expect(checkedSeen).toEqual(['slow check 1', 'slow check 2']);
    expect(slow?.error).toBeNull();
    expect(slow?.ops).toBe(2);
    // Two 300 ms checks ran, none of it timed.
    expect(slow?.timeNs).toBeLessThan(300e6);
    // In a child too: the second run's check refused it, so the case failed.
    expect(refused?.throughput).toBeNull();
    expect(refused?.error).toContain('run 2 left no output');
  }, 60_000);

  it('leave timed benchmarks as they are, and resolve bytes per op for the run', () => {
    expect(effectiveOptions(alternating, DEFAULT_OPTIONS)).toEqual({
      mode: 'timed',
      options: DEFAULT_OPTIONS,
    });
    expect(effectiveOptions(scenario, DEFAULT_OPTIONS).options.rounds).toBe(2);
    expect(resolveBytesPerOp(alternating, { quick: true })).toBe(1000);
    expect(resolveBytesPerOp(scenario, { quick: true })).toBe(1000);
    expect(resolveBytesPerOp(scenario, { quick: false })).toBe(2000);
  });
});

describe("the 'built' runtime", () => {
  it('runs the child on plain node, from a bundle of the benchmark module, and reports it', async () => {
    const { report } = await runBenchmark(built, options);
    const [ours, sources] = report.cases;
    // Each case's check (in its child) verified how that child was started.
    expect(ours).toMatchObject({ error: null, ops: 1, isolated: true, runtime: 'built' });
    expect(sources).toMatchObject({ error: null, ops: 1, isolated: true, runtime: 'sources' });
    expect(ours?.baselineRssBytes).toBeGreaterThan(0);
  }, 60_000);
});
