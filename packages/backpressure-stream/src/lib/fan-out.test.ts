import { ByteView, measureCopies, RingOverrunError } from 'buffer-view';
import { describe, expect, it, vi } from 'vitest';
import {
  AbortedError,
  BudgetExceededError,
  ClosedError,
  DisconnectedError,
  InvalidArgumentError,
} from './errors';
import { Broadcast } from './fan-out';
import type { BroadcastChunk, BroadcastConsumer } from './fan-out-consumer';
import { chunkOf } from './fan-out-test-support';

function catchError(fn: () => unknown): unknown {
  try {
    fn();
  } catch (error) {
    return error;
  }
  throw new Error('expected a throw');
}

/** Reads (and releases) every chunk the consumer can be handed right now. */
async function readAvailable(consumer: BroadcastConsumer): Promise<BroadcastChunk[]> {
  const out: BroadcastChunk[] = [];
  while (consumer.metrics.lag > 0) {
    const result = await consumer.read();
    if (result.done === true) break;
    out.push(result.value);
    expect(result.value.bytes.copy()).toEqual(
      chunkOf(result.value.sequence, result.value.bytes.length),
    );
    consumer.release(result.value);
  }
  return out;
}

const sequences = (chunks: BroadcastChunk[]) => chunks.map((c) => c.sequence);

function accounting(consumer: BroadcastConsumer): void {
  const m = consumer.metrics;
  expect(m.bytesIn).toBe(m.bytesOut + m.bytesDropped + m.lag);
  expect(m.bufferedBytes).toBe(m.lag + m.inUseBytes);
}

describe('Broadcast basics', () => {
  it('hands every consumer whole chunks in order, copied once into the ring and never again', async () => {
    const live = new Broadcast({ capacity: 1000, maxChunk: 100 });
    const a = live.subscribe({ policy: 'block', budget: 800 });
    const b = live.subscribe({ policy: 'drop-oldest', budget: 800 });
    const sizes = [10, 100, 37, 1, 99, 64];
    const { stats } = measureCopies(() => {
      for (const [seq, n] of sizes.entries()) live.write(chunkOf(seq, n), { marker: seq === 2 });
    });
    expect(stats.bytesCopied).toBe(311);
    expect(stats.copies).toBe(6);
    expect(stats.bytesAllocated).toBe(0);
    const { result: got, stats: readStats } = measureCopies(() => {
      const views: BroadcastChunk[] = [];
      const take = (c: BroadcastConsumer) => c.read().then((r) => views.push(r.value!));
      for (let i = 0; i < sizes.length; i++) {
        void take(a);
        void take(b);
      }
      return views;
    });
    await Promise.resolve();
    expect(readStats.bytesCopied).toBe(0);
    const fromA = got.filter((_, i) => i % 2 === 0);
    const fromB = got.filter((_, i) => i % 2 === 1);
    expect(fromA.map((c) => c.bytes.length)).toEqual(sizes);
    expect(fromA.map((c) => c.offset)).toEqual([0, 10, 110, 147, 148, 247]);
    expect(fromA.map((c) => c.marker)).toEqual([false, false, true, false, false, false]);
    for (const [i, chunk] of fromA.entries()) {
      expect(chunk.bytes.copy()).toEqual(chunkOf(i, sizes[i]!));
      // One copy in memory: both consumers see the same ring bytes.
      expect(chunk.bytes.asUint8Array().buffer).toBe(fromB[i]!.bytes.asUint8Array().buffer);
      expect(chunk.bytes.asUint8Array().byteOffset).toBe(fromB[i]!.bytes.asUint8Array().byteOffset);
    }
  });

  it('never splits a chunk at the ring edge: each one is a single Uint8Array', async () => {
    const live = new Broadcast({ capacity: 100, maxChunk: 30 });
    const c = live.subscribe({ policy: 'block', budget: 40 });
    const sizes = [30, 30, 30, 25, 30, 7, 29, 30, 30, 30, 1, 30];
    const seen: number[] = [];
    for (const [seq, n] of sizes.entries()) {
      live.write(chunkOf(seq, n));
      const { value } = await c.read();
      expect(value!.bytes.segmentCount).toBe(1);
      expect(value!.bytes.asUint8Array()).toEqual(chunkOf(seq, n));
      seen.push(value!.offset);
      c.release();
    }
    expect(seen[3]).toBe(90);
    expect(live.metrics.bytesIn).toBe(sizes.reduce((x, y) => x + y));
  });

  it('validates its options and chunks, naming the numbers', () => {
    expect(() => new Broadcast({ capacity: 2 })).toThrow(InvalidArgumentError);
    expect(() => new Broadcast({ capacity: 99, maxChunk: 34 })).toThrow(/<= 33/);
    const live = new Broadcast({ capacity: 1000, maxChunk: 100 });
    expect(live.maxBudget).toBe(800);
    const err = catchError(() => live.subscribe({ policy: 'drop-oldest', budget: 801 }));
    expect(InvalidArgumentError.isInstance(err)).toBe(true);
    expect((err as Error).message).toMatch(/budget 801 .*maxChunk 100 .*1000 bytes.*<= 800/);
    expect(() => live.subscribe({ policy: 'sometimes' as 'block' })).toThrow(/policy sometimes/);
    expect(() => live.subscribe({ policy: 'block', start: 'middle' as 'oldest' })).toThrow(
      /start middle/,
    );
    expect(() => live.subscribe({ policy: 'block', budget: 0 })).toThrow(InvalidArgumentError);
    expect(live.subscribe({ policy: 'block' }).budget).toBe(800);
    expect(() => live.write(new Uint8Array(101))).toThrow(/101 bytes .* maxChunk 100/);
    expect(() => live.write('text' as unknown as Uint8Array)).toThrow(InvalidArgumentError);
    expect(live.write(new Uint8Array(0), { marker: true })).toBe(true);
    expect(live.metrics.chunksIn).toBe(0);
  });

  it('accepts ByteViews, even multi-segment ones, as one chunk', async () => {
    const live = new Broadcast({ capacity: 1000, maxChunk: 100 });
    const c = live.subscribe({ policy: 'block' });
    const whole = chunkOf(0, 50);
    live.write(ByteView.from([whole.subarray(0, 20), whole.subarray(20)]));
    const { value } = await c.read();
    expect(value!.bytes.asUint8Array()).toEqual(whole);
  });

  it('end(): consumers read what is left, then finish; writes throw ClosedError', async () => {
    const live = new Broadcast({ capacity: 1000, maxChunk: 100 });
    const c = live.subscribe({ policy: 'drop-oldest', budget: 500 });
    const ended = vi.fn();
    c.on('end', ended);
    live.write(chunkOf(0, 10));
    live.write(chunkOf(1, 10));
    const waiting = live.subscribe({ policy: 'block' });
    const pending = waiting.read();
    live.end();
    expect(() => live.write(chunkOf(2, 1))).toThrow(ClosedError);
    await expect(live.ready()).rejects.toBeInstanceOf(ClosedError);
    expect(await pending).toEqual({ value: undefined, done: true });
    const got: number[] = [];
    for await (const chunk of c) got.push(chunk.sequence);
    expect(got).toEqual([0, 1]);
    expect(ended).toHaveBeenCalledTimes(1);
    expect(c.closed).toBe(true);
    expect(live.consumers).toEqual([]);
    // A late subscriber can still read what the ring holds.
    const late = live.subscribe({ policy: 'block', start: 'oldest' });
    expect(sequences(await readAvailable(late))).toEqual([0, 1]);
    expect((await late.read()).done).toBe(true);
  });
});

describe("Broadcast 'block' policy", () => {
  it('returns false exactly when the consumer is at its budget, counting the chunk in use', async () => {
    const live = new Broadcast({ capacity: 1000, maxChunk: 100 });
    const c = live.subscribe({ policy: 'block', budget: 250 });
    const events: string[] = [];
    live.on('stall', (consumer) => events.push(`stall ${consumer.name}`));
    live.on('drain', () => events.push('drain'));
    expect(live.write(chunkOf(0, 100))).toBe(true);
    expect(live.write(chunkOf(1, 100))).toBe(true);
    expect(live.write(chunkOf(2, 100))).toBe(false);
    expect(live.writable).toBe(false);
    expect(events).toEqual(['stall consumer-1']);
    const it = c[Symbol.asyncIterator]();
    expect((await it.next()).value.sequence).toBe(0);
    // Chunk 0 is in use until the next call: still 300 bytes held.
    expect(c.metrics).toMatchObject({ bufferedBytes: 300, lag: 200, inUseBytes: 100 });
    expect(events).toEqual(['stall consumer-1']);
    const ready = live.ready();
    expect((await it.next()).value.sequence).toBe(1);
    expect(events).toEqual(['stall consumer-1', 'drain']);
    await ready;
    expect(live.writable).toBe(true);
    expect(c.metrics.stalls).toBe(1);
    expect(live.metrics.stalls).toBe(1);
    expect(c.metrics.stalledMs).toBeGreaterThanOrEqual(0);
  });

  it('never loses a byte: a producer that ignores false is refused before any held byte is overwritten', async () => {
    const live = new Broadcast({ capacity: 1000, maxChunk: 100 });
    const c = live.subscribe({ policy: 'block', budget: 250 });
    const results = [];
    for (let seq = 0; seq < 10; seq++) results.push(live.write(chunkOf(seq, 100)));
    expect(results).toEqual([true, true, ...Array(8).fill(false)]);
    const err = catchError(() => live.write(chunkOf(10, 100)));
    expect(BudgetExceededError.isInstance(err)).toBe(true);
    expect(err).toMatchObject({ requested: 1100, limit: 1000 });
    expect((err as Error).message).toMatch(/consumer-1/);
    expect(live.metrics.bytesIn).toBe(1000);
    const got = await readAvailable(c);
    expect(sequences(got)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(c.metrics.bytesDropped).toBe(0);
    expect(live.write(chunkOf(10, 100))).toBe(true);
  });

  it('the slowest block consumer sets the pace; drain waits for all of them', async () => {
    const live = new Broadcast({ capacity: 1000, maxChunk: 100 });
    const fast = live.subscribe({ policy: 'block', budget: 200, name: 'fast' });
    const slow = live.subscribe({ policy: 'block', budget: 300, name: 'slow' });
    const drained = vi.fn();
    live.on('drain', drained);
    live.write(chunkOf(0, 100));
    expect(live.write(chunkOf(1, 100))).toBe(false); // fast is at its budget
    expect(live.write(chunkOf(2, 100))).toBe(false); // and now slow too
    await readAvailable(fast);
    expect(drained).not.toHaveBeenCalled();
    expect(live.writable).toBe(false);
    await readAvailable(slow);
    expect(drained).toHaveBeenCalledTimes(1);
    expect(slow.metrics.bytesOut).toBe(300);
  });

  it('leaving releases its hold so drain fires: close, disconnect(), signal', async () => {
    for (const leave of ['close', 'disconnect', 'signal'] as const) {
      const live = new Broadcast({ capacity: 1000, maxChunk: 100 });
      const controller = new AbortController();
      const c = live.subscribe({ policy: 'block', budget: 150, signal: controller.signal });
      const other = live.subscribe({ policy: 'drop-oldest', budget: 100 });
      const left = vi.fn();
      live.on('leave', left);
      live.write(chunkOf(0, 100));
      expect(live.write(chunkOf(1, 100))).toBe(false);
      const ready = live.ready();
      // read() does not release: it holds both chunks, and would hold the ring until released.
      expect((await c.read()).value!.sequence).toBe(0);
      expect((await c.read()).value!.sequence).toBe(1);
      expect(c.metrics).toMatchObject({ inUseBytes: 200, lag: 0 });
      const next = c.read();
      if (leave === 'close') c.close();
      else if (leave === 'disconnect') c.disconnect(new Error('kicked'));
      else controller.abort(new Error('viewer went away'));
      await ready;
      expect(live.writable).toBe(true);
      expect(left).toHaveBeenCalledTimes(1);
      expect(left.mock.calls[0]![0]).toBe(c);
      if (leave === 'close') {
        expect(await next).toEqual({ value: undefined, done: true });
      } else if (leave === 'disconnect') {
        const err = await next.catch((e: unknown) => e);
        expect(err).toMatchObject({ reason: 'removed', code: 'BACKPRESSURE_DISCONNECTED' });
        expect((err as Error).cause).toEqual(new Error('kicked'));
      } else {
        await expect(next).rejects.toSatisfy(
          (e: unknown) =>
            AbortedError.isInstance(e) && /went away/.test(String((e as Error).cause)),
        );
      }
      // It no longer pins the ring: ten more rings' worth of writes go through.
      for (let seq = 2; seq < 100; seq++) expect(live.write(chunkOf(seq, 100))).toBe(true);
      expect(live.consumers).toEqual([other]);
    }
  });
});

describe("Broadcast 'drop-oldest' policy", () => {
  it('drops whole oldest chunks to stay within budget, with exact accounting', async () => {
    const live = new Broadcast({ capacity: 1000, maxChunk: 100 });
    const c = live.subscribe({ policy: 'drop-oldest', budget: 250 });
    const drops: [number, number][] = [];
    c.on('drop', (bytes, chunks) => drops.push([bytes, chunks]));
    for (let seq = 0; seq < 10; seq++) {
      expect(live.write(chunkOf(seq, 100))).toBe(true);
      expect(c.metrics.lag).toBeLessThanOrEqual(250);
      accounting(c);
    }
    expect(c.metrics).toMatchObject({
      lag: 200,
      bytesIn: 1000,
      bytesDropped: 800,
      chunksDropped: 8,
      bytesOut: 0,
      peakBufferedBytes: 200,
    });
    expect(drops).toEqual(Array(8).fill([100, 1]));
    expect(sequences(await readAvailable(c))).toEqual([8, 9]);
    accounting(c);
  });

  it('drops several small chunks for one big one, and with nothing in use keeps the newest chunk', async () => {
    const live = new Broadcast({ capacity: 1000, maxChunk: 100 });
    const c = live.subscribe({ policy: 'drop-oldest', budget: 60 });
    for (let seq = 0; seq < 5; seq++) live.write(chunkOf(seq, 12));
    expect(c.metrics.lag).toBe(60);
    const drops = vi.fn();
    c.on('drop', drops);
    live.write(chunkOf(5, 100));
    expect(drops).toHaveBeenCalledWith(60, 5);
    expect(c.metrics).toMatchObject({ lag: 100, bytesDropped: 60, chunksDropped: 5 });
    expect(sequences(await readAvailable(c))).toEqual([5]);
  });

  it('counts the chunk in use against the budget', async () => {
    const live = new Broadcast({ capacity: 1000, maxChunk: 100 });
    const c = live.subscribe({ policy: 'drop-oldest', budget: 250 });
    live.write(chunkOf(0, 100));
    await c.read(); // in use, not released
    live.write(chunkOf(1, 100));
    live.write(chunkOf(2, 100));
    expect(c.metrics).toMatchObject({ inUseBytes: 100, lag: 100, chunksDropped: 1 });
    c.release();
    expect(sequences(await readAvailable(c))).toEqual([2]);
  });

  it('loses the incoming chunk too when the chunks in use leave no room for it: never over budget', async () => {
    const live = new Broadcast({ capacity: 1000, maxChunk: 100 });
    // The policy applied write by write (a 'drop' listener) and worked out later: same outcome.
    const eager = live.subscribe({ policy: 'drop-oldest', budget: 250 });
    const lazy = live.subscribe({ policy: 'drop-oldest', budget: 250 });
    const drops = vi.fn();
    eager.on('drop', drops);
    live.write(chunkOf(0, 100));
    live.write(chunkOf(1, 100));
    for (const c of [eager, lazy]) {
      await c.read();
      await c.read(); // both in use: 200 of 250
    }
    live.write(chunkOf(2, 100));
    expect(drops).toHaveBeenCalledWith(100, 1);
    live.write(chunkOf(3, 50)); // fits: 250
    for (const c of [eager, lazy]) {
      expect(c.metrics).toMatchObject({
        inUseBytes: 200,
        lag: 50,
        bufferedBytes: 250,
        peakBufferedBytes: 250,
        bytesDropped: 100,
        chunksDropped: 1,
      });
      accounting(c);
      c.release();
    }
    live.write(chunkOf(4, 100));
    for (const c of [eager, lazy]) expect(sequences(await readAvailable(c))).toEqual([3, 4]);
  });
});

describe("Broadcast 'skip-to-marker' policy", () => {
  it('jumps to the newest marker when it is within budget, and resumes exactly there', async () => {
    const live = new Broadcast({ capacity: 1000, maxChunk: 100 });
    const c = live.subscribe({ policy: 'skip-to-marker', budget: 250 });
    const skips = vi.fn();
    c.on('skip', skips);
    live.write(chunkOf(0, 100));
    live.write(chunkOf(1, 50), { marker: true });
    live.write(chunkOf(2, 100));
    expect(skips).not.toHaveBeenCalled();
    live.write(chunkOf(3, 100));
    expect(skips).toHaveBeenCalledWith(100, 1);
    expect(c.metrics).toMatchObject({ skips: 1, bytesDropped: 100, chunksDropped: 1, lag: 250 });
    const got = await readAvailable(c);
    expect(sequences(got)).toEqual([1, 2, 3]);
    expect(got[0]!.marker).toBe(true);
    accounting(c);
  });

  it('with no marker in reach, delivers nothing until the next marker, then resumes at it', async () => {
    const live = new Broadcast({ capacity: 1000, maxChunk: 100 });
    const c = live.subscribe({ policy: 'skip-to-marker', budget: 250 });
    const skips: [number, number][] = [];
    c.on('skip', (bytes, chunks) => skips.push([bytes, chunks]));
    live.write(chunkOf(0, 100), { marker: true });
    live.write(chunkOf(1, 100));
    live.write(chunkOf(2, 100)); // over budget; marker 0 is where it already is
    expect(skips).toEqual([[300, 3]]);
    expect(c.metrics.lag).toBe(0);
    const pending = c.read();
    live.write(chunkOf(3, 100));
    live.write(chunkOf(4, 100));
    expect(c.metrics.lag).toBe(0);
    live.write(chunkOf(5, 100), { marker: true });
    const { value } = await pending;
    expect(value).toMatchObject({ sequence: 5, marker: true, offset: 500 });
    expect(skips).toEqual([
      [300, 3],
      [100, 1],
      [100, 1],
    ]);
    expect(c.metrics).toMatchObject({ skips: 1, bytesDropped: 500, chunksDropped: 5 });
    accounting(c);
  });

  it('resumes at the chunk being written when that one is a marker', async () => {
    const live = new Broadcast({ capacity: 1000, maxChunk: 100 });
    const c = live.subscribe({ policy: 'skip-to-marker', budget: 250 });
    live.write(chunkOf(0, 100), { marker: true });
    live.write(chunkOf(1, 100));
    live.write(chunkOf(2, 100), { marker: true });
    expect(c.metrics).toMatchObject({ skips: 1, bytesDropped: 200, lag: 100 });
    expect(sequences(await readAvailable(c))).toEqual([2]);
  });

  it('does not resume at a marker the chunks in use leave no room for: it waits for the next one', async () => {
    const live = new Broadcast({ capacity: 1000, maxChunk: 100 });
    const c = live.subscribe({ policy: 'skip-to-marker', budget: 250 });
    live.write(chunkOf(0, 100), { marker: true });
    live.write(chunkOf(1, 100));
    await c.read();
    await c.read(); // both in use: 200 of 250
    live.write(chunkOf(2, 100), { marker: true });
    expect(c.metrics).toMatchObject({ inUseBytes: 200, lag: 0, skips: 1, bytesDropped: 100 });
    live.write(chunkOf(3, 50));
    expect(c.metrics).toMatchObject({ lag: 0, bufferedBytes: 200, bytesDropped: 150 });
    c.release();
    live.write(chunkOf(4, 100), { marker: true });
    expect(sequences(await readAvailable(c))).toEqual([4]);
    expect(c.metrics.peakBufferedBytes).toBe(200);
    accounting(c);
  });

  it('disconnects (lagged) a consumer that skips more than maxSkip waiting for a marker', async () => {
    const live = new Broadcast({ capacity: 1000, maxChunk: 100 });
    const c = live.subscribe({ policy: 'skip-to-marker', budget: 250, maxSkip: 450 });
    const disconnected = vi.fn();
    c.on('disconnect', disconnected);
    for (let seq = 0; seq < 4; seq++) live.write(chunkOf(seq, 100));
    expect(c.closed).toBe(false);
    live.write(chunkOf(4, 100));
    expect(c.closed).toBe(true);
    const err = disconnected.mock.calls[0]![0] as DisconnectedError;
    expect(err).toMatchObject({ reason: 'lagged', lag: 500, limit: 450 });
    await expect(c.read()).rejects.toBe(err);
  });
});

describe("Broadcast 'disconnect' policy", () => {
  it('cuts the consumer off with a typed error giving the lag and the limit', async () => {
    const live = new Broadcast({ capacity: 1000, maxChunk: 100 });
    const c = live.subscribe({ policy: 'disconnect', budget: 250, name: 'viewer 7' });
    const left = vi.fn();
    live.on('leave', left);
    const events = vi.fn();
    c.on('disconnect', events);
    live.write(chunkOf(0, 100));
    live.write(chunkOf(1, 100));
    expect(c.closed).toBe(false);
    expect(live.write(chunkOf(2, 100))).toBe(true);
    expect(c.closed).toBe(true);
    const err = c.error as DisconnectedError;
    expect(DisconnectedError.isInstance(err)).toBe(true);
    expect(err).toMatchObject({ reason: 'lagged', lag: 300, limit: 250 });
    expect(err.message).toMatch(/viewer 7/);
    expect(events).toHaveBeenCalledWith(err);
    expect(left).toHaveBeenCalledWith(c, err);
    // Its undelivered bytes count as dropped.
    expect(c.metrics).toMatchObject({ bytesDropped: 200, lag: 0, bytesIn: 200 });
    await expect(
      (async () => {
        for await (const _ of c) throw new Error('unreachable');
      })(),
    ).rejects.toBe(err);
    expect(live.consumers).toEqual([]);
  });
});

describe('Broadcast joining and leaving', () => {
  it("'newest-marker' joins at the newest marker, or waits for the next one", async () => {
    const live = new Broadcast({ capacity: 1000, maxChunk: 100 });
    const early = live.subscribe({ policy: 'drop-oldest', budget: 100, start: 'newest-marker' });
    live.write(chunkOf(0, 100));
    live.write(chunkOf(1, 100), { marker: true });
    live.write(chunkOf(2, 100));
    live.write(chunkOf(3, 100), { marker: true });
    live.write(chunkOf(4, 100));
    // Waited for the first marker, then drop-oldest kept it within budget.
    expect(early.metrics).toMatchObject({ bytesIn: 400, bytesDropped: 300 });
    const late = live.subscribe({ policy: 'block', budget: 300, start: 'newest-marker' });
    expect(sequences(await readAvailable(late))).toEqual([3, 4]);
    const newest = live.subscribe({ policy: 'block', start: 'newest' });
    const oldest = live.subscribe({ policy: 'block', budget: 250, start: 'oldest' });
    // The oldest chunk within budget: a start further back is moved forward.
    expect(oldest.metrics.lag).toBe(200);
    const tooFar = live.subscribe({ policy: 'drop-oldest', budget: 150, start: 'newest-marker' });
    expect(tooFar.metrics.lag).toBe(0);
    live.write(chunkOf(5, 100));
    expect(tooFar.metrics.lag).toBe(0);
    live.write(chunkOf(6, 100), { marker: true });
    expect(sequences(await readAvailable(tooFar))).toEqual([6]);
    expect(tooFar.metrics.bytesDropped).toBe(0);
    expect(sequences(await readAvailable(newest))).toEqual([5, 6]);
    expect(sequences(await readAvailable(oldest))).toEqual([3, 4, 5, 6]);
    const skipper = live.subscribe({ policy: 'skip-to-marker', budget: 250, start: 'oldest' });
    expect(sequences(await readAvailable(skipper))).toEqual([6]);
  });

  it('lets consumers join and leave between any two writes', async () => {
    const live = new Broadcast({ capacity: 1000, maxChunk: 100 });
    const joined = vi.fn();
    live.on('join', joined);
    const all: BroadcastConsumer[] = [];
    const got = new Map<BroadcastConsumer, number[]>();
    for (let seq = 0; seq < 60; seq++) {
      if (seq % 5 === 0) {
        const c = live.subscribe({ policy: seq % 10 === 0 ? 'block' : 'drop-oldest', budget: 500 });
        all.push(c);
        got.set(c, []);
      }
      if (seq % 7 === 0 && all.length > 2) all.splice(1, 1)[0]!.close();
      expect(live.write(chunkOf(seq, 20))).toBe(true);
      for (const c of all) got.get(c)!.push(...sequences(await readAvailable(c)));
    }
    expect(joined).toHaveBeenCalledTimes(12);
    for (const c of all) {
      const seqs = got.get(c)!;
      expect(seqs).toEqual(Array.from({ length: seqs.length }, (_, i) => seqs[0]! + i));
      expect(seqs.at(-1)).toBe(59);
    }
    expect(live.consumers).toEqual(all);
  });
});

describe('Broadcast never slows the producer for non-blocking consumers', () => {
  it('write() returns true for 10,000 chunks while such consumers never read', () => {
    const live = new Broadcast({ capacity: 64 * 1024, maxChunk: 1024 });
    const dropper = live.subscribe({ policy: 'drop-oldest', budget: 8000 });
    const skipper = live.subscribe({ policy: 'skip-to-marker', budget: 8000 });
    const cutter = live.subscribe({ policy: 'disconnect', budget: 8000 });
    const { stats } = measureCopies(() => {
      for (let seq = 0; seq < 10_000; seq++) {
        const ok = live.write(chunkOf(seq, 1 + ((seq * 37) % 1024)), { marker: seq % 30 === 0 });
        if (!ok) throw new Error(`write ${seq} returned false`);
      }
    });
    expect(stats.bytesAllocated).toBe(0);
    expect(live.metrics.stalls).toBe(0);
    expect(dropper.metrics.bufferedBytes).toBeLessThanOrEqual(8000);
    expect(skipper.metrics.bufferedBytes).toBeLessThanOrEqual(8000);
    expect(skipper.metrics.skips).toBeGreaterThan(100);
    expect(cutter.closed).toBe(true);
    for (const c of [dropper, skipper]) accounting(c);
  });
});

describe("Broadcast 'lapped' protection", () => {
  it('disconnects a consumer holding a chunk before the writer reuses its bytes, which stay intact until then', async () => {
    const live = new Broadcast({ capacity: 1000, maxChunk: 100 });
    const c = live.subscribe({ policy: 'drop-oldest', budget: 300 });
    live.write(chunkOf(0, 100));
    const { value: held } = await c.read(); // never released
    const raw = held!.bytes.asUint8Array();
    let atDisconnect: Uint8Array | undefined;
    c.on('disconnect', (err) => {
      expect(err.reason).toBe('lapped');
      atDisconnect = raw.slice();
    });
    for (let seq = 1; seq < 10; seq++) {
      live.write(chunkOf(seq, 100));
      expect(held!.bytes.copy()).toEqual(chunkOf(0, 100));
    }
    expect(c.closed).toBe(false);
    live.write(chunkOf(10, 100)); // the first write that needs bytes 0..99 of the ring
    expect(atDisconnect).toEqual(chunkOf(0, 100));
    expect(c.error).toMatchObject({ reason: 'lapped', limit: 1000 });
    // The view refuses to show the new bytes.
    expect(() => held!.bytes.copy()).toThrow(RingOverrunError);
    await expect(c.read()).rejects.toMatchObject({ reason: 'lapped' });
  });

  it('protects the chunk a for-await body is still using', async () => {
    const live = new Broadcast({ capacity: 1000, maxChunk: 100 });
    const c = live.subscribe({ policy: 'skip-to-marker', budget: 300 });
    live.write(chunkOf(0, 100), { marker: true });
    const seen: Uint8Array[] = [];
    const loop = (async () => {
      for await (const chunk of c) {
        seen.push(chunk.bytes.copy());
        // Busy with chunk 0 while the producer runs far ahead.
        for (let seq = 1; seq < 12; seq++) {
          live.write(chunkOf(seq, 100), { marker: seq % 4 === 0 });
          if (!c.closed) expect(chunk.bytes.copy()).toEqual(chunkOf(0, 100));
        }
      }
    })();
    await expect(loop).rejects.toMatchObject({ reason: 'lapped' });
    expect(seen).toEqual([chunkOf(0, 100)]);
  });

  it('a consumer that releases in time is never lapped, however far the producer runs', async () => {
    const live = new Broadcast({ capacity: 1000, maxChunk: 100 });
    const c = live.subscribe({ policy: 'drop-oldest' });
    for (let seq = 0; seq < 1000; seq++) {
      live.write(chunkOf(seq, 1 + (seq % 100)));
      if (seq % 3 === 0) await readAvailable(c);
    }
    expect(c.closed).toBe(false);
  });
});

describe('Broadcast abort and cleanup', () => {
  it('abort() rejects every consumer with producer-aborted and the producer with AbortedError', async () => {
    const live = new Broadcast({ capacity: 1000, maxChunk: 100 });
    const a = live.subscribe({ policy: 'block', budget: 100 });
    const b = live.subscribe({ policy: 'drop-oldest' });
    live.write(chunkOf(0, 100));
    const waiting = live.ready();
    const pendingB = (async () => {
      for await (const _ of b);
    })();
    const reason = new Error('encoder crashed');
    const aborted = vi.fn();
    live.on('abort', aborted);
    live.abort(reason);
    await expect(waiting).rejects.toSatisfy(
      (e: unknown) => AbortedError.isInstance(e) && (e as Error).cause === reason,
    );
    await expect(pendingB).rejects.toMatchObject({ reason: 'producer-aborted', cause: reason });
    await expect(a.read()).rejects.toMatchObject({ reason: 'producer-aborted' });
    expect(a.metrics.bytesDropped).toBe(100);
    expect(aborted).toHaveBeenCalledWith(reason);
    expect(() => live.write(chunkOf(1, 1))).toThrow(AbortedError);
    expect(() => live.subscribe({ policy: 'block' })).toThrow(AbortedError);
    expect(live.consumers).toEqual([]);
  });

  it('removes every signal listener after end, abort and close', async () => {
    const spy = (signal: AbortSignal) => ({
      add: vi.spyOn(signal, 'addEventListener'),
      remove: vi.spyOn(signal, 'removeEventListener'),
    });
    const balanced = (s: ReturnType<typeof spy>) =>
      expect(s.add.mock.calls.length).toBe(s.remove.mock.calls.length);

    for (const finish of ['end', 'abort', 'close'] as const) {
      const own = new AbortController();
      const sub = new AbortController();
      const call = new AbortController();
      const ownSpy = spy(own.signal);
      const subSpy = spy(sub.signal);
      const callSpy = spy(call.signal);
      const live = new Broadcast({ capacity: 1000, maxChunk: 100, signal: own.signal });
      const c = live.subscribe({ policy: 'block', budget: 100, signal: sub.signal });
      const read = c.read({ signal: call.signal });
      live.write(chunkOf(0, 100));
      await read;
      const ready = live.ready({ signal: call.signal });
      const read2 = c.read({ signal: call.signal });
      if (finish === 'end') live.end();
      else if (finish === 'abort') live.abort('stop');
      else c.close();
      await Promise.allSettled([ready, read2]);
      if (finish !== 'close') balanced(ownSpy);
      else live.end();
      balanced(ownSpy);
      balanced(subSpy);
      balanced(callSpy);
      expect(ownSpy.add).toHaveBeenCalledTimes(1);
      expect(subSpy.add).toHaveBeenCalledTimes(1);
      expect(live.consumers).toEqual([]);
      // The ring no longer has a blocking reader: nothing is held.
      expect(c.metrics.bufferedBytes).toBe(0);
    }
  });

  it('a signal aborts the broadcast, and a per-call signal stops only that wait', async () => {
    const controller = new AbortController();
    const live = new Broadcast({ capacity: 1000, maxChunk: 100, signal: controller.signal });
    const c = live.subscribe({ policy: 'drop-oldest' });
    const call = new AbortController();
    const read = c.read({ signal: call.signal });
    call.abort('enough');
    await expect(read).rejects.toBeInstanceOf(AbortedError);
    expect(c.closed).toBe(false);
    live.write(chunkOf(0, 10));
    expect((await c.read()).value!.sequence).toBe(0);
    controller.abort(new Error('shutdown'));
    expect(live.aborted).toBe(true);
    await expect(c.read()).rejects.toMatchObject({ reason: 'producer-aborted' });
    expect(new Broadcast({ capacity: 100, signal: AbortSignal.abort() }).aborted).toBe(true);
  });

  it('breaking out of for-await closes the consumer', async () => {
    const live = new Broadcast({ capacity: 1000, maxChunk: 100 });
    const c = live.subscribe({ policy: 'block', budget: 150 });
    live.write(chunkOf(0, 100));
    expect(live.write(chunkOf(1, 100))).toBe(false);
    for await (const chunk of c) if (chunk.sequence === 0) break;
    expect(c.closed).toBe(true);
    expect(live.writable).toBe(true);
    expect(live.metrics).toMatchObject({ bytesOut: 100, bytesDropped: 100, consumers: [] });
  });

  it('refuses re-entrant writes and subscriptions from listeners', () => {
    const live = new Broadcast({ capacity: 1000, maxChunk: 100 });
    const c = live.subscribe({ policy: 'drop-oldest', budget: 100 });
    const errors: unknown[] = [];
    c.on('drop', () => {
      errors.push(catchError(() => live.write(chunkOf(9, 1))));
      errors.push(catchError(() => live.subscribe({ policy: 'block' })));
    });
    live.write(chunkOf(0, 100));
    live.write(chunkOf(1, 100));
    expect(errors).toHaveLength(2);
    for (const e of errors) expect(InvalidArgumentError.isInstance(e)).toBe(true);
    expect(live.metrics.chunksIn).toBe(2);
  });
});
