import { type CaseRunner, createLocalRunner, type SliceResult } from './case-runner';
import { createChildRunner } from './child';
import { formatDuration } from './format';
import { machineInfo } from './machine';
import { summarize, throughputOf } from './stats';
import { ensureDebianPackages } from './system';
import { evaluateTargets } from './targets';
import { TEARDOWN_TIMEOUT_MS, withTimeout } from './timeout';
import type {
  BenchCase,
  Benchmark,
  BenchmarkReport,
  CaseResult,
  RunMode,
  RunOptions,
  SetupContext,
} from './types';

/** Full runs: about 2.5 s per case. */
export const DEFAULT_OPTIONS: RunOptions = {
  warmupMs: 300,
  timeMs: 2000,
  rounds: 10,
  minSampleNs: 200_000,
  rssIntervalMs: 2,
  gcBetweenSlices: true,
  quick: false,
};

/** `--quick`: a smoke run for CI, a fraction of a second per case. Numbers are indicative only. */
export const QUICK_OPTIONS: RunOptions = {
  ...DEFAULT_OPTIONS,
  warmupMs: 30,
  timeMs: 150,
  rounds: 3,
  quick: true,
};

/** A run's report plus the raw per-sample timings (written to results/raw/). */
export interface RunOutcome {
  report: BenchmarkReport;
  samples: Record<string, number[]>;
}

interface Tally {
  benchCase: BenchCase<unknown>;
  runner: CaseRunner | undefined;
  samples: number[];
  ops: number;
  timeNs: number;
  peakRss: number;
  rssGrowth: number;
  bytesCopied: number;
  copies: number;
  bytesAllocated: number;
  kernelMaxRss: number | null;
  baselineRss: number | null;
  error: string | null;
}

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** A benchmark's bytes per operation for this run. */
export function resolveBytesPerOp(benchmark: Benchmark, context: SetupContext): number {
  const value = benchmark.bytesPerOp;
  return typeof value === 'function' ? value(context) : value;
}

/**
 * The options a benchmark actually runs with: for a single-shot scenario,
 * no warm-up, no time box and one round per run.
 */
export function effectiveOptions(
  benchmark: Benchmark,
  options: RunOptions,
): { mode: RunMode; options: RunOptions } {
  if (benchmark.singleShot === undefined) return { mode: 'timed', options };
  return {
    mode: 'single-shot',
    options: { ...options, warmupMs: 0, timeMs: 0, rounds: benchmark.singleShot.runs },
  };
}

/** Case order of round `r`: the list rotated by `r`, so no case always runs first or right after the same neighbour. */
export function roundOrder<T>(items: readonly T[], round: number): T[] {
  if (items.length === 0) return [];
  const k = round % items.length;
  return [...items.slice(k), ...items.slice(0, k)];
}

/**
 * Runs one benchmark: its setup, each case's setup and warm-up, then
 * `rounds` round-robin rounds in which every case runs one time-boxed slice,
 * then teardowns. A single-shot scenario skips the warm-up and runs one
 * operation per case per round instead. A failing case is reported with its
 * error and the others go on; targets are judged, never thrown.
 */
export async function runBenchmark(
  benchmark: Benchmark,
  requested: RunOptions = DEFAULT_OPTIONS,
  log: (line: string) => void = () => {},
): Promise<RunOutcome> {
  const started = Date.now();
  const date = new Date(started).toISOString();
  const { mode, options } = effectiveOptions(benchmark, requested);
  const bytesPerOp = resolveBytesPerOp(benchmark, { quick: options.quick });
  if (benchmark.debianPackages?.length) ensureDebianPackages(benchmark.debianPackages, log);
  const state = await benchmark.setup?.({ quick: options.quick });
  const tallies: Tally[] = benchmark.cases.map((benchCase) => ({
    benchCase,
    runner: undefined,
    samples: [],
    ops: 0,
    timeNs: 0,
    peakRss: 0,
    rssGrowth: 0,
    bytesCopied: 0,
    copies: 0,
    bytesAllocated: 0,
    kernelMaxRss: null,
    baselineRss: null,
    error: null,
  }));
  const failed = async (tally: Tally, error: unknown) => {
    tally.error = message(error);
    log(`  ${tally.benchCase.name}: failed: ${tally.error}`);
    const runner = tally.runner;
    tally.runner = undefined;
    if (runner) await withTimeout(runner.close(), TEARDOWN_TIMEOUT_MS, 'teardown').catch(() => {});
  };

  try {
    for (const tally of tallies) {
      try {
        tally.runner = tally.benchCase.isolate
          ? await createChildRunner(benchmark, tally.benchCase.name, options)
          : await createLocalRunner(tally.benchCase, state, options);
        tally.baselineRss = tally.runner.baselineRssBytes;
        if (mode === 'single-shot') {
          log(`  ${tally.benchCase.name}: set up (single-shot: no warm-up)`);
        } else {
          await tally.runner.warmup();
          log(
            `  ${tally.benchCase.name}: warmed up, ${tally.runner.batch} op${tally.runner.batch === 1 ? '' : 's'} per sample`,
          );
        }
      } catch (error) {
        await failed(tally, error);
      }
    }
    const sliceMs = options.timeMs / Math.max(1, options.rounds);
    for (let round = 0; round < options.rounds; round++) {
      for (const tally of roundOrder(tallies, round)) {
        if (tally.runner === undefined) continue;
        try {
          if (mode === 'single-shot') {
            const shot = await tally.runner.shot();
            add(tally, shot);
            log(
              `  ${tally.benchCase.name}: run ${round + 1} of ${options.rounds} took ${formatDuration(shot.timeNs)}`,
            );
          } else {
            add(tally, await tally.runner.slice(sliceMs));
          }
        } catch (error) {
          await failed(tally, error);
        }
      }
    }
  } finally {
    for (const tally of tallies) {
      if (tally.runner === undefined) continue;
      try {
        const closed = await withTimeout(
          tally.runner.close(),
          TEARDOWN_TIMEOUT_MS,
          `teardown of '${tally.benchCase.name}'`,
        );
        tally.kernelMaxRss = closed.maxRssBytes;
      } catch (error) {
        tally.error ??= message(error);
        log(`  ${tally.benchCase.name}: ${message(error)}`);
      }
    }
    try {
      await withTimeout(
        Promise.resolve(benchmark.teardown?.(state)),
        TEARDOWN_TIMEOUT_MS,
        `teardown of '${benchmark.name}'`,
      );
    } catch (error) {
      log(`  ${message(error)}`);
    }
  }

  const cases = tallies.map((t) => toCaseResult(benchmark, bytesPerOp, t));
  const byName = new Map(cases.map((c) => [c.name, c]));
  for (const c of cases) {
    const ref = byName.get(c.reference)?.throughput;
    c.ratio = c.throughput !== null && ref ? c.throughput / ref : null;
  }
  const targets = evaluateTargets(benchmark.targets ?? [], cases);
  const samples: Record<string, number[]> = {};
  for (const t of tallies) samples[t.benchCase.name] = t.samples;
  return {
    report: {
      schema: 1,
      name: benchmark.name,
      summary: benchmark.summary,
      description: benchmark.description,
      unit: benchmark.unit,
      bytesPerOp,
      reference: benchmark.reference,
      mode,
      date,
      durationMs: Date.now() - started,
      machine: machineInfo(),
      options,
      cases,
      targets,
      allTargetsMet: targets.every((t) => t.met),
    },
    samples,
  };
}

function add(tally: Tally, slice: SliceResult): void {
  for (const s of slice.samples) tally.samples.push(s);
  tally.ops += slice.ops;
  tally.timeNs += slice.timeNs;
  tally.peakRss = Math.max(tally.peakRss, slice.peakRss);
  tally.rssGrowth = Math.max(tally.rssGrowth, slice.rssGrowth);
  tally.bytesCopied += slice.copies.bytesCopied;
  tally.copies += slice.copies.copies;
  tally.bytesAllocated += slice.copies.bytesAllocated;
}

function toCaseResult(benchmark: Benchmark, benchmarkBytesPerOp: number, tally: Tally): CaseResult {
  const c = tally.benchCase;
  const unit = c.unit ?? benchmark.unit;
  const bytesPerOp = c.bytesPerOp ?? benchmarkBytesPerOp;
  const measured = tally.error === null && tally.ops > 0;
  const counted = c.countCopies ?? c.role === 'ours';
  let copies: CaseResult['copies'] = null;
  if (measured && counted) {
    copies = {
      source: 'counted',
      bytesCopiedPerOp: tally.bytesCopied / tally.ops,
      bytesAllocatedPerOp: tally.bytesAllocated / tally.ops,
      copiesPerOp: tally.copies / tally.ops,
    };
  } else if (c.declaredCopyBytesPerOp !== undefined) {
    copies = { source: 'declared', bytesCopiedPerOp: c.declaredCopyBytesPerOp };
  }
  const peak = tally.ops > 0 ? Math.max(tally.peakRss, tally.kernelMaxRss ?? 0) : null;
  return {
    name: c.name,
    role: c.role,
    description: c.description ?? null,
    group: c.group ?? null,
    unit,
    bytesPerOp,
    isolated: c.isolate ?? false,
    runtime: c.isolate ? (c.runtime ?? 'sources') : null,
    ops: tally.ops,
    samples: tally.samples.length,
    batch: tally.runner?.batch ?? 0,
    timeNs: tally.timeNs,
    throughput: measured ? throughputOf(unit, tally.ops, tally.timeNs, bytesPerOp) : null,
    perOpNs: measured && tally.samples.length > 0 ? summarize(tally.samples) : null,
    peakRssBytes: peak,
    rssGrowthBytes: tally.ops > 0 ? tally.rssGrowth : null,
    baselineRssBytes: tally.baselineRss,
    copies,
    reference: c.reference ?? benchmark.reference,
    ratio: null,
    error: tally.error,
  };
}
