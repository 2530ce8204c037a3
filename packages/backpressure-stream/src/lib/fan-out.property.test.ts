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

function chunkOf(seq: number, n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = (seq * 31 + i * 7 + 1) & 0xff;
  return out;
}

interface Plan {
  policy: SlowConsumerPolicy;
  /** Fraction of the allowed budget range. */
  budget: number;
  start: BroadcastStart;
  joinAt: number;
  /** Chunks to read after each write, cycled; 0 means it keeps its last chunk in use. */
  reads: number[];
  /** From this write on it reads nothing more, like a stuck socket, keeping its last chunk in use. */
  stuckAt: number | null;
}

interface Viewer {
  plan: Plan;
  consumer: BroadcastConsumer;
  got: BroadcastChunk[];
  held: BroadcastChunk | undefined;
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
        fc.record({ size: fc.integer({ min: 1, max: maxChunk }), marker: fc.boolean() }),
        { minLength: 1, maxLength: 300, size: 'large' },
      ),
      plans: fc.array(
        fc.record({
          policy,
          budget: fc.double({ min: 0, max: 1, noNaN: true }),
          start: fc.constantFrom<BroadcastStart>('newest', 'newest-marker', 'oldest'),
          joinAt: fc.nat(40),
          reads: fc.array(fc.nat(3), { minLength: 1, maxLength: 8 }),
          stuckAt: fc.option(fc.nat(60)),
        }),
        { minLength: 1, maxLength: 5 },
      ),
    });
  });

/** The last chunk read stays in use until the next read, as with `for await`. */
async function readSome(viewer: Viewer, count: number): Promise<void> {
  const { consumer } = viewer;
  for (let i = 0; i < count && !consumer.closed && consumer.metrics.lag > 0; i++) {
    consumer.release();
    const result = await consumer.read();
    if (result.done === true) return;
    viewer.droppedBeforeFirst ??= consumer.metrics.bytesDropped;
    viewer.got.push(result.value);
    viewer.held = result.value;
    expect(result.value.bytes.copy()).toEqual(
      chunkOf(result.value.sequence, result.value.bytes.length),
    );
  }
}

describe('Broadcast under random producers, budgets and read patterns', () => {
  it('keeps memory fixed, each policy its promise, and every handed-out chunk intact', async () => {
    const seen = new Set<string>();
    await fc.assert(
      fc.asyncProperty(scenario, async ({ capacity, maxChunk, chunks, plans }) => {
        const live = new Broadcast({ capacity, maxChunk });
        const maxBudget = live.maxBudget;
        const viewers: Viewer[] = [];
        let drains = 0;
        live.on('drain', () => drains++);
        for (const [seq, { size, marker }] of chunks.entries()) {
          for (const plan of plans) {
            if (plan.joinAt !== seq) continue;
            const budget = maxChunk + Math.floor(plan.budget * (maxBudget - maxChunk));
            const consumer = live.subscribe({ policy: plan.policy, budget, start: plan.start });
            const viewer: Viewer = {
              plan,
              consumer,
              got: [],
              held: undefined,
              error: undefined,
              droppedBeforeFirst: undefined,
            };
            consumer.on('disconnect', (error) => {
              viewer.error = error;
              // Fired before the producer reuses the bytes: what it holds is still intact.
              if (viewer.held !== undefined) {
                const { bytes, sequence } = viewer.held;
                // No copy(): this runs inside the measured write().
                expect(bytes.asUint8Array()).toEqual(chunkOf(sequence, bytes.length));
              }
            });
            viewers.push(viewer);
          }
          const bytes = chunkOf(seq, size);
          const { result: ok, stats } = measureCopies(() => live.write(bytes, { marker }));
          // The ring is all the memory: a write copies its bytes once and allocates nothing.
          expect(stats.bytesAllocated).toBe(0);
          expect(stats.bytesCopied).toBe(size);
          if (!viewers.some((v) => v.plan.policy === 'block' && !v.consumer.closed)) {
            // Only block consumers ever hold the producer back.
            expect(ok).toBe(true);
          }
          if (!ok) {
            seen.add('stall');
            // A well-behaved producer waits: here, until the block consumers catch up.
            const before = drains;
            for (const v of viewers) {
              if (v.plan.policy !== 'block') continue;
              await readSome(v, Number.POSITIVE_INFINITY);
              v.consumer.release();
              v.held = undefined;
            }
            expect(drains).toBe(before + 1);
            expect(live.writable).toBe(true);
          }
          for (const v of viewers) {
            const m = v.consumer.metrics;
            expect(m.bufferedBytes).toBeLessThanOrEqual(v.consumer.budget + maxChunk);
            expect(m.bytesIn).toBe(m.bytesOut + m.bytesDropped + m.lag);
            if (v.held !== undefined && !v.consumer.closed) {
              // In use: never altered, whatever the producer did meanwhile.
              expect(v.held.bytes.copy()).toEqual(chunkOf(v.held.sequence, v.held.bytes.length));
            }
            const stuck = v.plan.stuckAt !== null && seq >= v.plan.stuckAt;
            if (!stuck) await readSome(v, v.plan.reads[seq % v.plan.reads.length] as number);
          }
        }
        live.end();
        for (const v of viewers) {
          try {
            for (;;) {
              v.consumer.release();
              const result = await v.consumer.read();
              if (result.done === true) break;
              v.droppedBeforeFirst ??= v.consumer.metrics.bytesDropped;
              v.got.push(result.value);
              expect(result.value.bytes.copy()).toEqual(
                chunkOf(result.value.sequence, result.value.bytes.length),
              );
            }
          } catch (error) {
            expect(error).toBe(v.error);
          }
          check(v, chunks.length);
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
      'stall',
      'drop-oldest dropped',
      'skip-to-marker dropped',
      'skip resumed',
      'lagged',
      'lapped',
    ]) {
      expect(seen).toContain(path);
    }
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
