import { type CopyStats, copyStats } from 'buffer-view';
import { getGc, RssTracker } from './memory';
import { calibratedBatch } from './stats';
import type { BenchCase, RunOptions } from './types';

/** Buffer-view counter deltas over one slice. */
export interface CopyDelta {
  bytesCopied: number;
  copies: number;
  bytesAllocated: number;
}

/** What one slice (a case's turn in a round) measured. Plain data: it crosses process boundaries. */
export interface SliceResult {
  /** Per-operation nanoseconds, one per timed batch. */
  samples: number[];
  ops: number;
  timeNs: number;
  peakRss: number;
  rssGrowth: number;
  copies: CopyDelta;
}

/** Drives one case: in this process, or by proxy in a child. */
export interface CaseRunner {
  /** Operations per timed sample, known after warm-up (1 when there is none). */
  readonly batch: number;
  /** For a case in its own process: that process's RSS before the case's setup. Null otherwise. */
  readonly baselineRssBytes: number | null;
  warmup(): Promise<void>;
  slice(ms: number): Promise<SliceResult>;
  /**
   * Exactly one operation, timed alone, with no warm-up needed before it:
   * a round of a single-shot scenario. The RSS is sampled by a timer while
   * it runs. The case's `check`, if any, runs after it, untimed.
   */
  shot(): Promise<SliceResult>;
  /** Tears the case down. `maxRssBytes` is the process's kernel high-water mark, for isolated cases. */
  close(): Promise<{ maxRssBytes: number | null }>;
}

/** Results land here so the optimiser cannot drop the measured work. */
let sink: unknown;

/** The last value a case returned (kept only so it is observable). */
export function lastSinkValue(): unknown {
  return sink;
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return (
    value !== null &&
    (typeof value === 'object' || typeof value === 'function') &&
    typeof (value as { then?: unknown }).then === 'function'
  );
}

const MAX_BATCH = 2 ** 24;

/**
 * Runs a case in this process: its setup now, warm-up and batch calibration
 * on `warmup()`, timed slices on `slice()`, its teardown on `close()`.
 */
export async function createLocalRunner<S>(
  benchCase: BenchCase<S>,
  state: S,
  options: RunOptions,
): Promise<CaseRunner> {
  await benchCase.setup?.(state);
  const run = benchCase.run;
  const rss = new RssTracker(options.rssIntervalMs);
  const gc = options.gcBetweenSlices ? getGc() : null;
  let isAsync = false;
  let batch = 1;
  let closed = false;

  const runSync = (n: number) => {
    for (let i = 0; i < n; i++) sink = run(state);
  };
  const runAsync = async (n: number) => {
    for (let i = 0; i < n; i++) sink = await run(state);
  };
  /** Runs `n` operations and returns their duration in nanoseconds. */
  const timed = async (n: number): Promise<bigint> => {
    if (isAsync) {
      const t0 = process.hrtime.bigint();
      await runAsync(n);
      return process.hrtime.bigint() - t0;
    }
    const t0 = process.hrtime.bigint();
    runSync(n);
    return process.hrtime.bigint() - t0;
  };

  const copyDelta = (before: CopyStats): CopyDelta => {
    const after = copyStats();
    return {
      bytesCopied: after.bytesCopied - before.bytesCopied,
      copies: after.copies - before.copies,
      bytesAllocated: after.bytesAllocated - before.bytesAllocated,
    };
  };

  return {
    get batch() {
      return batch;
    },

    baselineRssBytes: null,

    async warmup() {
      const first = run(state);
      if (isThenable(first)) {
        isAsync = true;
        sink = await first;
      } else {
        sink = first;
      }
      const deadline = process.hrtime.bigint() + BigInt(Math.round(options.warmupMs * 1e6));
      let n = 1;
      const perOp: number[] = [];
      for (;;) {
        const d = Number(await timed(n));
        perOp.push(d / n);
        if (process.hrtime.bigint() >= deadline) break;
        if (d < options.minSampleNs && n < MAX_BATCH) n *= 2;
      }
      batch = calibratedBatch(perOp, options.minSampleNs, MAX_BATCH);
      gc?.();
    },

    async slice(ms) {
      if (closed) throw new Error(`case '${benchCase.name}' is closed`);
      const before = copyStats();
      const samples: number[] = [];
      let ops = 0;
      let timeNs = 0;
      rss.start(isAsync);
      const deadline = process.hrtime.bigint() + BigInt(Math.round(ms * 1e6));
      let now: bigint;
      try {
        do {
          const d = Number(await timed(batch));
          now = process.hrtime.bigint();
          samples.push(d / batch);
          ops += batch;
          timeNs += d;
          rss.maybeSample(now);
        } while (now < deadline);
      } catch (error) {
        rss.stop();
        throw error;
      }
      const memory = rss.stop();
      const copies = copyDelta(before);
      // Collect this slice's garbage now, outside the timing: left behind, V8
      // would collect it in the background while the next case (in this
      // process or a child) runs, and slow that case down.
      gc?.();
      return {
        samples,
        ops,
        timeNs,
        peakRss: memory.peak,
        rssGrowth: memory.growth,
        copies,
      };
    },

    async shot() {
      if (closed) throw new Error(`case '${benchCase.name}' is closed`);
      const before = copyStats();
      // Whether the operation is async is not known before it runs: the timer samples only if it yields.
      rss.start(true);
      let d: bigint;
      try {
        const t0 = process.hrtime.bigint();
        const result = run(state);
        sink = isThenable(result) ? await result : result;
        d = process.hrtime.bigint() - t0;
      } catch (error) {
        rss.stop();
        throw error;
      }
      const memory = rss.stop();
      const copies = copyDelta(before);
      // Outside the timing and the copy counts: proof the run did its work.
      await benchCase.check?.(state, sink);
      gc?.();
      const ns = Number(d);
      return {
        samples: [ns],
        ops: 1,
        timeNs: ns,
        peakRss: memory.peak,
        rssGrowth: memory.growth,
        copies,
      };
    },

    async close() {
      if (!closed) {
        closed = true;
        await benchCase.teardown?.(state);
      }
      return { maxRssBytes: null };
    },
  };
}
