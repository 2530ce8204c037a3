import { measureCopies } from 'buffer-view';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { type DisconnectedError, InvalidArgumentError } from './errors';
import { Broadcast } from './fan-out';
import type { BroadcastChunk, BroadcastConsumer } from './fan-out-consumer';
import { chunkOf, settle, track } from './fan-out-test-support';

const sequences = (chunks: BroadcastChunk[]) => chunks.map((c) => c.sequence);

function intact(chunks: BroadcastChunk[]): void {
  for (const c of chunks) expect(c.bytes.copy()).toEqual(chunkOf(c.sequence, c.bytes.length));
}

function accounting(consumer: BroadcastConsumer): void {
  const m = consumer.metrics;
  expect(m.bytesIn).toBe(m.bytesOut + m.bytesDropped + m.lag);
  expect(m.bufferedBytes).toBe(m.lag + m.inUseBytes);
}

afterEach(() => {
  vi.useRealTimers();
});

describe('BroadcastConsumer.readBatch() and batches()', () => {
  it('hands out everything pending as the same zero-copy chunks read() would, in use until released', async () => {
    const live = new Broadcast({ capacity: 1000, maxChunk: 100 });
    const c = live.subscribe({ policy: 'block', budget: 800 });
    const other = live.subscribe({ policy: 'block', budget: 800 });
    for (let seq = 0; seq < 5; seq++) live.write(chunkOf(seq, 10 + seq), { marker: seq === 2 });
    const { result, stats } = measureCopies(() => c.readBatch());
    expect(stats.bytesCopied).toBe(0);
    const { value: batch, done } = await result;
    expect(done).toBe(false);
    expect(sequences(batch!)).toEqual([0, 1, 2, 3, 4]);
    expect(batch!.map((chunk: BroadcastChunk) => [chunk.offset, chunk.marker])).toEqual([
      [0, false],
      [10, false],
      [21, true],
      [33, false],
      [46, false],
    ]);
    intact(batch!);
    // The same chunk objects every consumer is handed.
    const { value: single } = await other.read();
    expect(single).toBe(batch![0]);
    expect(c.metrics).toMatchObject({ lag: 0, inUseBytes: 60, chunksOut: 5, bytesOut: 60 });
    c.release(batch![1]);
    expect(c.metrics.inUseBytes).toBe(60 - 10 - 11);
    c.release();
    expect(c.metrics.inUseBytes).toBe(0);
    accounting(c);
  });

  it('waits only when nothing is pending; batches() releases each batch when asked for the next', async () => {
    const live = new Broadcast({ capacity: 1000, maxChunk: 100 });
    const c = live.subscribe({ policy: 'block', budget: 300 });
    const seen: number[][] = [];
    const inUse: number[] = [];
    const loop = (async () => {
      for await (const batch of c.batches()) {
        seen.push(sequences(batch));
        inUse.push(c.metrics.inUseBytes);
        intact(batch);
      }
    })();
    await settle();
    live.write(chunkOf(0, 100));
    await settle();
    live.write(chunkOf(1, 100));
    // A producer that writes several chunks before the reader runs: one batch.
    live.write(chunkOf(2, 100));
    expect(live.write(chunkOf(3, 100))).toBe(false);
    await settle();
    // The batch is in use until the loop asks for more; then the producer may go on.
    expect(live.writable).toBe(true);
    live.end();
    await loop;
    expect(seen).toEqual([[0], [1, 2, 3]]);
    expect(inUse).toEqual([100, 300]);
    expect(c.closed).toBe(true);
  });

  it('leaving the loop closes the consumer; reads after end drain what is left, then finish', async () => {
    const live = new Broadcast({ capacity: 1000, maxChunk: 100 });
    const a = live.subscribe({ policy: 'drop-oldest' });
    const b = live.subscribe({ policy: 'drop-oldest' });
    live.write(chunkOf(0, 50));
    for await (const batch of a.batches()) {
      expect(sequences(batch)).toEqual([0]);
      break;
    }
    expect(a.closed).toBe(true);
    live.write(chunkOf(1, 50));
    live.end();
    expect(sequences((await b.readBatch()).value!)).toEqual([0, 1]);
    expect(await b.readBatch()).toEqual({ value: undefined, done: true });
    expect(b.closed).toBe(true);
  });

  it('rejects with the typed error once the consumer is cut off, including a batch woken but not yet taken', async () => {
    const live = new Broadcast({ capacity: 1000, maxChunk: 100 });
    const c = live.subscribe({ policy: 'drop-oldest' });
    const woken = track(c.readBatch());
    live.write(chunkOf(0, 10));
    live.abort(new Error('ingest died'));
    await settle();
    expect(woken.done).toBe(true);
    expect(woken.error).toMatchObject({ reason: 'producer-aborted' });
    await expect(c.readBatch()).rejects.toBe(woken.error);
  });

  it('a per-call signal stops only that wait', async () => {
    const live = new Broadcast({ capacity: 1000, maxChunk: 100 });
    const c = live.subscribe({ policy: 'drop-oldest', coalesce: { minBytes: 50 } });
    const call = new AbortController();
    const wait = track(c.readBatch({ signal: call.signal }));
    live.write(chunkOf(0, 10));
    call.abort();
    await settle();
    expect(wait.error).toMatchObject({ code: 'BACKPRESSURE_ABORTED' });
    expect(c.closed).toBe(false);
    expect(sequences((await c.readBatch()).value!)).toEqual([0]);
  });
});

describe('BroadcastConsumer coalescing', () => {
  it('wakes a waiting reader only once minBytes are pending, then hands it all of them', async () => {
    const live = new Broadcast({ capacity: 10_000, maxChunk: 200 });
    const c = live.subscribe({ policy: 'drop-oldest', coalesce: { minBytes: 250 } });
    expect(c.coalesce).toEqual({ minBytes: 250, maxWaitMs: 5 });
    const batch = track(c.readBatch());
    live.write(chunkOf(0, 100));
    await settle();
    live.write(chunkOf(1, 100));
    await settle();
    expect(batch.done).toBe(false);
    live.write(chunkOf(2, 100));
    await settle();
    expect(sequences(batch.value!.value!)).toEqual([0, 1, 2]);
    // read() is woken the same way, and later reads return at once.
    const one = track(c.read());
    live.write(chunkOf(3, 200));
    await settle();
    expect(one.done).toBe(false);
    live.write(chunkOf(4, 50));
    await settle();
    expect(one.value!.value!.sequence).toBe(3);
    expect((await c.read()).value!.sequence).toBe(4);
    accounting(c);
  });

  it('never costs bytes: a waiting reader is woken before the next chunk could push it over its budget', async () => {
    for (const policy of ['drop-oldest', 'skip-to-marker', 'disconnect', 'block'] as const) {
      const live = new Broadcast({ capacity: 1000, maxChunk: 100 });
      const c = live.subscribe({ policy, budget: 450, coalesce: { maxWaitMs: Infinity } });
      const sizes: number[] = [];
      const loop = (async () => {
        for await (const batch of c.batches()) {
          sizes.push(batch.reduce((n, chunk) => n + chunk.bytes.length, 0));
        }
      })();
      for (let seq = 0; seq < 40; seq++) {
        expect(live.write(chunkOf(seq, 100), { marker: seq % 4 === 0 })).toBe(true);
        await settle();
      }
      live.end();
      await loop;
      // Woken at 400 bytes: one more chunk would have made 500 > 450.
      expect(sizes).toEqual(Array(10).fill(400));
      expect(c.metrics).toMatchObject({ bytesDropped: 0, skips: 0, bytesOut: 4000 });
      expect(c.error).toBeUndefined();
    }
  });

  it('wakes a waiting reader maxWaitMs after the first pending chunk', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'] });
    const live = new Broadcast({ capacity: 10_000, maxChunk: 100 });
    const c = live.subscribe({ policy: 'drop-oldest', coalesce: { maxWaitMs: 20 } });
    const batch = track(c.readBatch());
    vi.advanceTimersByTime(100);
    live.write(chunkOf(0, 10));
    vi.advanceTimersByTime(10);
    live.write(chunkOf(1, 10));
    vi.advanceTimersByTime(8);
    await settle();
    expect(batch.done).toBe(false);
    vi.advanceTimersByTime(3);
    await settle();
    expect(sequences(batch.value!.value!)).toEqual([0, 1]);
    // Nothing pending: no timer runs while the stream is idle.
    const next = track(c.readBatch());
    expect(vi.getTimerCount()).toBe(0);
    live.write(chunkOf(2, 10));
    vi.advanceTimersByTime(25);
    await settle();
    expect(sequences(next.value!.value!)).toEqual([2]);
  });

  it('wakes on end, on a skip resuming at a marker, and on a newest-marker join', async () => {
    const live = new Broadcast({ capacity: 1000, maxChunk: 100 });
    const coalesce = { minBytes: 10_000, maxWaitMs: Infinity };
    const skipper = live.subscribe({ policy: 'skip-to-marker', budget: 250, coalesce });
    const joiner = live.subscribe({
      policy: 'drop-oldest',
      start: 'newest-marker',
      budget: 800,
      coalesce,
    });
    const joined = track(joiner.readBatch());
    // Read and released at once, so only the skip policy decides what it loses.
    skipper.release();
    live.write(chunkOf(0, 100));
    live.write(chunkOf(1, 100));
    live.write(chunkOf(2, 100)); // over budget, no marker in reach: waits for one
    expect(skipper.metrics).toMatchObject({ skips: 1, lag: 0 });
    const resumed = track(skipper.readBatch());
    live.write(chunkOf(3, 100));
    await settle();
    expect(resumed.done).toBe(false);
    expect(joined.done).toBe(false);
    live.write(chunkOf(4, 100), { marker: true });
    await settle();
    expect(sequences(resumed.value!.value!)).toEqual([4]);
    expect(sequences(joined.value!.value!)).toEqual([4]);
    const last = track(joiner.readBatch());
    live.write(chunkOf(5, 100));
    await settle();
    expect(last.done).toBe(false);
    live.end();
    await settle();
    expect(sequences(last.value!.value!)).toEqual([5]);
    expect(await joiner.readBatch()).toEqual({ value: undefined, done: true });
  });

  it('takes the batch when the reader runs: what the policy dropped meanwhile is gone, what came is in', async () => {
    const live = new Broadcast({ capacity: 1000, maxChunk: 100 });
    const c = live.subscribe({ policy: 'drop-oldest', budget: 300, coalesce: { minBytes: 200 } });
    const batch = track(c.readBatch());
    // A producer writing a burst without yielding: the reader is woken at 200 bytes but
    // only runs afterwards; until then the chunks are not in use, so the policy keeps
    // dropping the oldest instead of the reader being lapped.
    for (let seq = 0; seq < 8; seq++) live.write(chunkOf(seq, 100));
    expect(c.metrics).toMatchObject({ inUseBytes: 0, lag: 300, bytesDropped: 500 });
    await settle();
    expect(sequences(batch.value!.value!)).toEqual([5, 6, 7]);
    intact(batch.value!.value!);
    expect(c.closed).toBe(false);
    accounting(c);
  });

  it('validates its options, naming the numbers', () => {
    const live = new Broadcast({ capacity: 1000, maxChunk: 100 });
    expect(() => live.subscribe({ policy: 'block', coalesce: { minBytes: 0 } })).toThrow(
      InvalidArgumentError,
    );
    expect(() => live.subscribe({ policy: 'block', coalesce: { maxWaitMs: -1 } })).toThrow(
      /coalesce.maxWaitMs -1/,
    );
    expect(() => live.subscribe({ policy: 'block', coalesce: { minBytes: 1.5 } })).toThrow(
      /coalesce.minBytes 1.5/,
    );
    expect(live.subscribe({ policy: 'block', coalesce: {} }).coalesce).toEqual({
      minBytes: Infinity,
      maxWaitMs: 5,
    });
    expect(live.subscribe({ policy: 'block' }).coalesce).toBeUndefined();
  });
});

describe("'drop-oldest' without listeners or readers defers its policy", () => {
  it('with exactly the outcome of applying it write by write', async () => {
    const live = new Broadcast({ capacity: 2000, maxChunk: 100 });
    const eager = live.subscribe({ policy: 'drop-oldest', budget: 450 });
    const lazy = live.subscribe({ policy: 'drop-oldest', budget: 450 });
    const drops: [number, number][] = [];
    eager.on('drop', (bytes, chunks) => drops.push([bytes, chunks]));
    const lazyDrops = vi.fn();
    let seq = 0;
    // Far more than the ring holds, and past several catch-up passes, between looks.
    for (const burst of [3, 700, 1, 90, 300]) {
      for (let i = 0; i < burst; i++, seq++) live.write(chunkOf(seq, 1 + ((seq * 37) % 100)));
      const { name: _a, ...e } = eager.metrics;
      const { name: _b, ...l } = lazy.metrics;
      expect(l).toEqual(e);
      accounting(lazy);
      const [x, y] = [await eager.read(), await lazy.read()];
      expect(y.value).toBe(x.value);
      intact([y.value!]);
      eager.release();
      lazy.release();
      if (seq > 700) lazy.on('drop', lazyDrops);
    }
    const dropped = drops.reduce((n, [bytes]) => n + bytes, 0);
    expect(eager.metrics.bytesDropped).toBe(dropped);
    expect(lazy.metrics.bytesDropped).toBe(dropped);
    // With a listener it applies the policy write by write again: one event per write.
    expect(lazyDrops.mock.calls.length).toBeGreaterThan(100);
    expect(live.metrics.peakBufferedBytes).toBeLessThanOrEqual(450 + 100);
  });

  it('still disconnects a consumer holding a chunk before the writer reuses its bytes', () => {
    const live = new Broadcast({ capacity: 1000, maxChunk: 100 });
    const c = live.subscribe({ policy: 'drop-oldest', budget: 500 });
    live.write(chunkOf(0, 100));
    let held: BroadcastChunk | undefined;
    void c.read().then((r) => {
      held = r.value;
    });
    const errors: DisconnectedError[] = [];
    c.on('disconnect', (error) => errors.push(error));
    for (let seq = 1; seq < 20 && !c.closed; seq++) live.write(chunkOf(seq, 100));
    expect(errors).toHaveLength(1);
    expect(errors[0]!.reason).toBe('lapped');
    expect(held === undefined || held.sequence === 0).toBe(true);
  });
});
