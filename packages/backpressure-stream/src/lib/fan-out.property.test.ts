import { measureCopies } from 'buffer-view';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DisconnectedError } from './errors';
import { Broadcast } from './fan-out';
import type {
  BroadcastChunk,
  BroadcastConsumer,
  BroadcastStart,
  SlowConsumerPolicy,
} from './fan-out-consumer';
import { chunkOf, settle } from './fan-out-test-support';

interface Plan {
  policy: SlowConsumerPolicy;
  /** Fraction of the allowed budget range. */
  budget: number;
  start: BroadcastStart;
  joinAt: number;
  /**
   * How it reads: `read()` one chunk at a time, `readBatch()` everything
   * pending, or (not for `'block'`) `'parked'`: a `readBatch()` always
   * waiting, like a `for await` over `batches()` whose body runs between
   * writes, or `'push'`: a `forEachBatch()` handler, sync or (`asyncHandler`)
   * keeping each batch until a promise settles.
   */
  mode: 'read' | 'batch' | 'parked' | 'push';
  asyncHandler: boolean;
  /** Wake-up coalescing, `minBytes` as a fraction of twice the budget (so sometimes beyond it). */
  coalesce: number | null;
  /** Chunks (or batches) to read after each write, cycled; 0 means it keeps what it read last in use. */
  reads: number[];
  /** From this write on it reads nothing more, like a stuck socket, keeping what it read last in use. */
  stuckAt: number | null;
}

interface Viewer {
  plan: Plan;
  consumer: BroadcastConsumer;
  got: BroadcastChunk[];
  /** What it read last, in use until it reads again. */
  held: BroadcastChunk[];
  /** `'parked'`: the outstanding readBatch(), its outcome once settled, and whether its body saw it. */
  parked:
    | { result?: IteratorResult<BroadcastChunk[]>; error?: unknown; seen?: boolean }
    | undefined;
  /** `'push'`: how `forEachBatch()` ended, once it has, and whether the handler is stuck. */
  push: { settled: boolean; error?: unknown; stuck: boolean } | undefined;
  error: unknown;
  /** Bytes it had lost before its first chunk: with none, it must start at a marker when asked to. */
  droppedBeforeFirst: number | undefined;
}

const policy = fc.constantFrom<SlowConsumerPolicy>(
  'block',
  'drop-oldest',
  'skip-to-marker',
  'disconnect',
);

const scenario = fc
  .record({
    capacity: fc.integer({ min: 60, max: 3000 }),
    chunkShare: fc.double({ min: 0.02, max: 1 / 3, noNaN: true }),
  })
  .chain(({ capacity, chunkShare }) => {
    const maxChunk = Math.max(1, Math.floor(capacity * chunkShare));
    return fc.record({
      capacity: fc.constant(capacity),
      maxChunk: fc.constant(maxChunk),
      chunks: fc.array(
        fc.record({
          size: fc.integer({ min: 1, max: maxChunk }),
          marker: fc.boolean(),
          // Written with the next one before any consumer runs (only in bursty runs).
          burst: fc.boolean(),
        }),
        { minLength: 1, maxLength: 300, size: 'large' },
      ),
      // One run in four has bursts; the others keep their no-loss checks.
      bursty: fc.nat(3).map((n) => n === 0),
      plans: fc.array(
        fc.record({
          policy,
          budget: fc.double({ min: 0, max: 1, noNaN: true }),
          start: fc.constantFrom<BroadcastStart>('newest', 'newest-marker', 'oldest'),
          joinAt: fc.nat(40),
          mode: fc.constantFrom<Plan['mode']>('read', 'batch', 'parked', 'push'),
          asyncHandler: fc.boolean(),
          coalesce: fc.option(fc.double({ min: 0, max: 1, noNaN: true })),
          reads: fc.array(fc.nat(3), { minLength: 1, maxLength: 8 }),
          stuckAt: fc.option(fc.nat(60)),
        }),
        { minLength: 1, maxLength: 5 },
      ),
    });
  });

/** `chunks` were handed out (after the viewer released what it held, unless `keep`). */
function received(viewer: Viewer, chunks: BroadcastChunk[], keep = false): void {
  expect(chunks.length).toBeGreaterThan(0);
  viewer.droppedBeforeFirst ??= viewer.consumer.metrics.bytesDropped;
  for (const chunk of chunks) {
    viewer.got.push(chunk);
    expect(chunk.bytes.copy()).toEqual(chunkOf(chunk.sequence, chunk.bytes.length));
  }
  viewer.held = keep ? [...viewer.held, ...chunks] : chunks;
}

/** What was read last stays in use until the next read, as with `for await`. */
async function readSome(viewer: Viewer, count: number): Promise<void> {
  const { consumer } = viewer;
  for (let i = 0; i < count && !consumer.closed && consumer.metrics.lag > 0; i++) {
    consumer.release();
    if (viewer.plan.mode === 'read') {
      const result = await consumer.read();
      if (result.done === true) return;
      received(viewer, [result.value]);
    } else {
      const result = await consumer.readBatch();
      if (result.done === true) return;
      received(viewer, result.value);
    }
  }
}

/** `'parked'`: keeps one readBatch() waiting, as a `for await` over `batches()` does. */
function park(viewer: Viewer): void {
  const state: NonNullable<Viewer['parked']> = {};
  viewer.parked = state;
  viewer.consumer.readBatch().then(
    (result) => {
      state.result = result;
    },
    (error: unknown) => {
      state.error = error;
    },
  );
}

/**
 * `'parked'`: the body of the loop runs with the batch the reader was woken
 * with, then releases it and waits again (as `batches()` does when asked for
 * the next one), or, once stuck, keeps it in use and never asks again.
 */
async function runParked(viewer: Viewer, stuck: boolean): Promise<void> {
  for (let i = 0; i < 5; i++) await Promise.resolve();
  const state = viewer.parked;
  if (state?.result === undefined || state.result.done === true || state.seen === true) return;
  state.seen = true;
  // Cut off while the batch waited for the body (a burst lapped it): its bytes may be gone.
  if (viewer.error !== undefined) return;
  received(viewer, state.result.value, true);
  if (stuck) return;
  viewer.consumer.release();
  viewer.held = [];
  park(viewer);
}

/**
 * `'push'`: `forEachBatch()` with a handler that takes each batch (in use
 * until it returns, or until its promise settles) and, once stuck, returns
 * a promise that never settles, keeping its last batch in use.
 */
function push(viewer: Viewer, stuckAt: () => boolean): void {
  const state: NonNullable<Viewer['push']> = { settled: false, stuck: false };
  viewer.push = state;
  viewer.consumer
    .forEachBatch((batch) => {
      received(viewer, [...batch], true);
      if (stuckAt()) {
        state.stuck = true;
        return new Promise<void>(() => {});
      }
      if (!viewer.plan.asyncHandler) {
        viewer.held = [];
        return;
      }
      return Promise.resolve().then(() => {
        viewer.held = [];
      });
    })
    .then(
      () => {
        state.settled = true;
      },
      (error: unknown) => {
        state.settled = true;
        state.error = error;
      },
    );
}

describe('Broadcast under random producers, budgets and read patterns', () => {
  it('keeps memory fixed, each policy its promise, and every handed-out chunk intact', async () => {
    const seen = new Set<string>();
    await fc.assert(
      fc.asyncProperty(scenario, async ({ capacity, maxChunk, chunks, plans, bursty }) => {
        const live = new Broadcast({ capacity, maxChunk });
        const maxBudget = live.maxBudget;
        const viewers: Viewer[] = [];
        let drains = 0;
        live.on('drain', () => drains++);
        let written = 0;
        for (const [seq, { size, marker, burst }] of chunks.entries()) {
          // The consumers run between writes, except after a write in a burst.
          const yielded = seq === 0 || !bursty || !chunks[seq - 1]?.burst;
          for (const plan of plans) {
            if (plan.joinAt !== seq) continue;
            const budget = maxChunk + Math.floor(plan.budget * (maxBudget - maxChunk));
            if (plan.mode === 'parked' && plan.policy === 'block') plan.mode = 'batch';
            // A block consumer that stops reading would hold the producer back for good.
            if (plan.mode === 'push' && plan.policy === 'block') plan.stuckAt = null;
            const consumer = live.subscribe({
              policy: plan.policy,
              budget,
              start: plan.start,
              // No time limit: the properties must not depend on timers.
              ...(plan.coalesce === null
                ? {}
                : {
                    coalesce: {
                      minBytes: 1 + Math.floor(plan.coalesce * 2 * budget),
                      maxWaitMs: Infinity,
                    },
                  }),
            });
            const viewer: Viewer = {
              plan,
              consumer,
              got: [],
              held: [],
              parked: undefined,
              push: undefined,
              error: undefined,
              droppedBeforeFirst: undefined,
            };
            consumer.on('disconnect', (error) => {
              viewer.error = error;
              // Fired before the producer reuses the bytes: what it holds is still intact.
              for (const { bytes, sequence } of viewer.held) {
                // No copy(): this runs inside the measured write().
                expect(bytes.asUint8Array()).toEqual(chunkOf(sequence, bytes.length));
              }
            });
            if (plan.mode === 'parked') park(viewer);
            if (plan.mode === 'push') {
              push(viewer, () => plan.stuckAt !== null && written >= plan.stuckAt);
            }
            viewers.push(viewer);
          }
          // A parked reader's body runs between writes: also right after it joined.
          for (const v of viewers) {
            if (v.plan.mode !== 'parked' || !yielded) continue;
            await runParked(v, v.plan.stuckAt !== null && seq >= v.plan.stuckAt);
          }
          if (yielded) await settle();
          const bytes = chunkOf(seq, size);
          const { result: ok, stats } = measureCopies(() => live.write(bytes, { marker }));
          written++;
          // Consumers that run right after the write may already free the producer.
          const drainsBefore = drains;
          // The ring is all the memory: a write copies its bytes once and allocates nothing.
          expect(stats.bytesAllocated).toBe(0);
          expect(stats.bytesCopied).toBe(size);
          if (!viewers.some((v) => v.plan.policy === 'block' && !v.consumer.closed)) {
            // Only block consumers ever hold the producer back.
            expect(ok).toBe(true);
          }
          const yields = !bursty || !burst;
          for (const v of viewers) {
            if (v.plan.mode !== 'parked' || !yields) continue;
            await runParked(v, v.plan.stuckAt !== null && seq >= v.plan.stuckAt);
          }
          if (yields) await settle();
          if (!ok) {
            seen.add('stall');
            // A well-behaved producer waits: here, until the block consumers catch up.
            for (const v of viewers) {
              if (v.plan.policy !== 'block') continue;
              // A push consumer's handler runs and returns (or settles) by itself.
              if (v.plan.mode === 'push') {
                await settle();
                continue;
              }
              await readSome(v, Number.POSITIVE_INFINITY);
              v.consumer.release();
              v.held = [];
            }
            expect(drains).toBe(drainsBefore + 1);
            expect(live.writable).toBe(true);
          }
          for (const v of viewers) {
            const m = v.consumer.metrics;
            // Block: like a stream's highWaterMark, the write that reaches the budget is
            // taken whole. Every other policy acts before the write: never over budget.
            const bound =
              v.plan.policy === 'block' ? v.consumer.budget + maxChunk : v.consumer.budget;
            expect(m.bufferedBytes).toBeLessThanOrEqual(bound);
            expect(m.peakBufferedBytes).toBeLessThanOrEqual(bound);
            expect(m.bytesIn).toBe(m.bytesOut + m.bytesDropped + m.lag);
            if (!v.consumer.closed) {
              // In use: never altered, whatever the producer did meanwhile.
              for (const { bytes, sequence } of v.held) {
                expect(bytes.copy()).toEqual(chunkOf(sequence, bytes.length));
              }
            }
            const stuck = v.plan.stuckAt !== null && seq >= v.plan.stuckAt;
            if (!stuck && yields && (v.plan.mode === 'read' || v.plan.mode === 'batch')) {
              await readSome(v, v.plan.reads[seq % v.plan.reads.length] as number);
            }
          }
        }
        live.end();
        await settle();
        for (const v of viewers) {
          try {
            if (v.push !== undefined) {
              // Ended: a handler that returns has had everything and the promise settled.
              if (v.push.stuck) v.consumer.close();
              await settle();
              expect(v.push.settled).toBe(true);
              if (v.push.error !== undefined) throw v.push.error;
            }
            if (v.parked !== undefined) {
              for (let i = 0; i < 5; i++) await Promise.resolve();
              const { result, error } = v.parked;
              if (error !== undefined) throw error;
              if (v.plan.stuckAt === null) {
                // The end wakes a parked reader with whatever is pending.
                expect(result).toBeDefined();
                if (result?.done === false && v.error === undefined) received(v, result.value);
              }
            }
            for (;;) {
              v.consumer.release();
              const result = await v.consumer.read();
              if (result.done === true) break;
              received(v, [result.value]);
            }
          } catch (error) {
            expect(error).toBe(v.error);
          }
          check(v, chunks.length);
          // A burst gives no consumer a chance to run between its writes.
          const calm = !(bursty && chunks.some((c) => c.burst));
          if (v.push !== undefined && !v.push.stuck && calm) {
            // Its handler ran between writes: coalescing never made it lose a byte.
            expect(v.consumer.metrics.bytesDropped).toBe(0);
            expect(v.error).toBeUndefined();
            seen.add('pushed');
          }
          if (v.plan.mode === 'parked' && v.plan.stuckAt === null && calm) {
            // Its reader ran between writes: coalescing never made it lose a byte.
            expect(v.consumer.metrics.bytesDropped).toBe(0);
            expect(v.error).toBeUndefined();
            if (v.plan.coalesce !== null) seen.add('coalesced');
          }
          const m = v.consumer.metrics;
          if (m.chunksDropped > 0) seen.add(`${v.plan.policy} dropped`);
          if (
            m.skips > 0 &&
            v.got.some((c, i) => i > 0 && c.sequence !== v.got[i - 1]!.sequence + 1)
          ) {
            seen.add('skip resumed');
          }
          if (DisconnectedError.isInstance(v.error)) seen.add(v.error.reason);
        }
      }),
      { numRuns: 150 },
    );
    // The runs exercised every path the properties are about.
    for (const path of [
      'coalesced',
      'stall',
      'drop-oldest dropped',
      'skip-to-marker dropped',
      'skip resumed',
      'lagged',
      'lapped',
      'pushed',
    ]) {
      expect(seen).toContain(path);
    }
  });
});

describe("'drop-oldest' deferring its policy (no listener, no reader waiting)", () => {
  it('ends exactly where applying it write by write ends, at every look and after every read', async () => {
    const op = (maxChunk: number) =>
      fc.oneof(
        {
          weight: 6,
          arbitrary: fc.record({
            kind: fc.constant<'write'>('write'),
            size: fc.integer({ min: 1, max: maxChunk }),
            marker: fc.boolean(),
          }),
        },
        {
          weight: 2,
          arbitrary: fc.record({
            kind: fc.constantFrom<'read' | 'batch' | 'release' | 'release-one' | 'look'>(
              'read',
              'batch',
              'release',
              'release-one',
              'look',
            ),
          }),
        },
      );
    const scenario = fc
      .record({
        capacity: fc.integer({ min: 60, max: 3000 }),
        chunkShare: fc.double({ min: 0.02, max: 1 / 3, noNaN: true }),
        budget: fc.double({ min: 0, max: 1, noNaN: true }),
        // Every chunk maxChunk long and a budget of whole chunks: a lagging consumer then
        // sits exactly at its budget, the case the catch-up works out without a replay.
        whole: fc.boolean(),
      })
      .chain(({ capacity, chunkShare, budget, whole }) => {
        const maxChunk = Math.max(1, Math.floor(capacity * chunkShare));
        return fc.record({
          capacity: fc.constant(capacity),
          maxChunk: fc.constant(maxChunk),
          budget: fc.constant(budget),
          whole: fc.constant(whole),
          // Long enough to cross the broadcast's periodic catch-up (every 256 writes).
          ops: fc.array(op(maxChunk), { minLength: 1, maxLength: 900, size: 'max' }),
        });
      });
    await fc.assert(
      fc.asyncProperty(scenario, async ({ capacity, maxChunk, budget: share, whole, ops }) => {
        const live = new Broadcast({ capacity, maxChunk });
        const any = 1 + Math.floor(share * (live.maxBudget - 1));
        const budget = whole ? Math.max(maxChunk, any - (any % maxChunk)) : any;
        const eager = live.subscribe({ policy: 'drop-oldest', budget, name: 'twin' });
        const lazy = live.subscribe({ policy: 'drop-oldest', budget, name: 'twin' });
        let events = 0;
        eager.on('drop', (bytes) => {
          events += bytes;
        });
        const held: BroadcastChunk[] = [];
        const same = () => {
          expect(lazy.metrics).toEqual(eager.metrics);
          expect(lazy.closed).toBe(eager.closed);
        };
        let seq = 0;
        for (const o of ops) {
          if (eager.closed) break;
          if (o.kind === 'write') {
            live.write(chunkOf(seq, whole ? maxChunk : o.size), { marker: o.marker });
            seq++;
          } else if (o.kind === 'look') {
            same();
          } else if (o.kind === 'release') {
            eager.release();
            lazy.release();
            held.length = 0;
          } else if (o.kind === 'release-one') {
            const first = held.shift();
            if (first !== undefined) {
              eager.release(first);
              lazy.release(first);
            }
          } else if (eager.metrics.lag > 0 && lazy.metrics.lag > 0) {
            const [a, b] =
              o.kind === 'read'
                ? [[(await eager.read()).value], [(await lazy.read()).value]]
                : [(await eager.readBatch()).value, (await lazy.readBatch()).value];
            // The same chunk objects, in the same order.
            expect(b).toEqual(a);
            for (const [i, chunk] of (a as BroadcastChunk[]).entries()) {
              expect((b as BroadcastChunk[])[i]).toBe(chunk);
              expect(chunk.bytes.copy()).toEqual(chunkOf(chunk.sequence, chunk.bytes.length));
              held.push(chunk);
            }
          }
          if (!eager.closed) {
            for (const { bytes, sequence } of held) {
              expect(bytes.copy()).toEqual(chunkOf(sequence, bytes.length));
            }
          }
        }
        same();
        if (!eager.closed) expect(eager.metrics.bytesDropped).toBe(events);
      }),
      { numRuns: 200 },
    );
  });
});

function check(v: Viewer, total: number): void {
  const seqs = v.got.map((c) => c.sequence);
  for (let i = 1; i < seqs.length; i++) expect(seqs[i]).toBeGreaterThan(seqs[i - 1] as number);
  const { policy } = v.plan;
  const gaps = seqs.filter((s, i) => i > 0 && s !== (seqs[i - 1] as number) + 1);
  if (policy === 'block') {
    // Every byte, in order, to the end.
    expect(v.error).toBeUndefined();
    expect(gaps).toEqual([]);
    if (seqs.length > 0) expect(seqs.at(-1)).toBe(total - 1);
    if (v.plan.start === 'newest' && seqs.length > 0) expect(seqs[0]).toBe(v.plan.joinAt);
    expect(v.consumer.metrics.bytesDropped).toBe(0);
  } else if (policy === 'skip-to-marker') {
    // Resumes only at markers.
    for (let i = 1; i < v.got.length; i++) {
      if (seqs[i] !== (seqs[i - 1] as number) + 1) expect(v.got[i]?.marker).toBe(true);
    }
  } else if (policy === 'disconnect') {
    expect(gaps).toEqual([]);
  }
  if (v.plan.start === 'newest-marker' && v.droppedBeforeFirst === 0) {
    expect(v.got[0]?.marker).toBe(true);
  }
  if (v.error !== undefined) {
    expect(DisconnectedError.isInstance(v.error)).toBe(true);
    const reason = (v.error as DisconnectedError).reason;
    // Only disconnect consumers are cut off for lagging (or skip ones past maxSkip, unset here);
    // any non-block consumer may be lapped when it keeps a chunk in use too long.
    if (reason === 'lagged') expect(policy).toBe('disconnect');
    else expect(reason).toBe('lapped');
    expect(policy).not.toBe('block');
  }
}
