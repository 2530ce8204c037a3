import { measureCopies } from 'buffer-view';
import { describe, expect, it } from 'vitest';
import { AbortedError, DisconnectedError, InvalidArgumentError } from './errors';
import { Broadcast } from './fan-out';
import type { BroadcastChunk } from './fan-out-consumer';
import { chunkOf, settle, track } from './fan-out-test-support';

function intact(chunk: BroadcastChunk): boolean {
  const expected = chunkOf(chunk.sequence, chunk.bytes.length);
  const actual = chunk.bytes.asUint8Array();
  return actual.every((byte, i) => byte === expected[i]);
}

describe('BroadcastConsumer.forEachBatch()', () => {
  it('hands every chunk over in order, intact and uncopied, in use only while the handler runs', async () => {
    const live = new Broadcast({ capacity: 1000, maxChunk: 100 });
    const c = live.subscribe({ policy: 'block', budget: 800 });
    const seen: number[] = [];
    const inUse: number[] = [];
    const done = track(
      c.forEachBatch((batch) => {
        for (const chunk of batch) {
          expect(intact(chunk)).toBe(true);
          seen.push(chunk.sequence);
        }
        inUse.push(c.metrics.inUseBytes);
      }),
    );
    const { stats } = measureCopies(() => {
      for (let seq = 0; seq < 3; seq++) live.write(chunkOf(seq, 10));
    });
    // Only the one copy into the ring per chunk.
    expect(stats.bytesCopied).toBe(30);
    // Delivered from a microtask, never from inside write().
    expect(seen).toEqual([]);
    await settle();
    expect(seen).toEqual([0, 1, 2]);
    expect(inUse).toEqual([30]);
    expect(c.metrics).toMatchObject({ inUseBytes: 0, bytesOut: 30, chunksOut: 3, lag: 0 });
    for (let seq = 3; seq < 5; seq++) live.write(chunkOf(seq, 10));
    live.end();
    await settle();
    expect(seen).toEqual([0, 1, 2, 3, 4]);
    expect(done).toEqual({ done: true, value: undefined });
    expect(c.closed).toBe(true);
  });

  it('serves every consumer a write wakes from one microtask, sharing one batch array', async () => {
    const live = new Broadcast({ capacity: 10_000, maxChunk: 100 });
    const batches: (readonly BroadcastChunk[])[] = [];
    const consumers = Array.from({ length: 50 }, () =>
      live.subscribe({ policy: 'drop-oldest', budget: 5000, coalesce: { minBytes: 300 } }),
    );
    for (const c of consumers) void c.forEachBatch((batch) => void batches.push(batch));
    live.write(chunkOf(0, 100));
    live.write(chunkOf(1, 100));
    await Promise.resolve();
    // Below minBytes: nobody was woken.
    expect(batches).toHaveLength(0);
    live.write(chunkOf(2, 100));
    // One turn of the microtask queue reaches all fifty: no promise chain per consumer.
    await Promise.resolve();
    expect(batches).toHaveLength(50);
    expect(batches[0]?.map((chunk) => chunk.sequence)).toEqual([0, 1, 2]);
    for (const batch of batches) expect(batch).toBe(batches[0]);
    live.end();
  });

  it('keeps an async handler’s batch in use until it settles, then hands over what came meanwhile at once', async () => {
    const live = new Broadcast({ capacity: 1000, maxChunk: 100 });
    const c = live.subscribe({ policy: 'block', budget: 200 });
    const calls: number[][] = [];
    let finish: (() => void) | undefined;
    void c.forEachBatch((batch) => {
      calls.push(batch.map((chunk) => chunk.sequence));
      return new Promise<void>((resolve) => {
        finish = resolve;
      });
    });
    live.write(chunkOf(0, 100));
    await settle();
    expect(calls).toEqual([[0]]);
    expect(live.write(chunkOf(1, 100))).toBe(false);
    // The handler still holds chunk 0, so the block consumer holds the producer back.
    expect(c.metrics.inUseBytes).toBe(100);
    expect(live.writable).toBe(false);
    const ready = track(live.ready());
    await settle();
    expect(calls).toEqual([[0]]);
    finish?.();
    await settle();
    expect(calls).toEqual([[0], [1]]);
    expect(ready.done).toBe(true);
    expect(c.metrics.inUseBytes).toBe(100);
    finish?.();
    await settle();
    expect(c.metrics.inUseBytes).toBe(0);
    live.end();
  });

  it('never costs a fast consumer a chunk when the producer yields between writes', async () => {
    const live = new Broadcast({ capacity: 4200, maxChunk: 100 });
    const c = live.subscribe({ policy: 'drop-oldest', budget: 4000, coalesce: { maxWaitMs: 5 } });
    let received = 0;
    let next = 0;
    let ordered = true;
    const done = c.forEachBatch((batch) => {
      for (const chunk of batch) {
        if (chunk.sequence !== next++ || !intact(chunk)) ordered = false;
        received += chunk.bytes.length;
      }
    });
    for (let seq = 0; seq < 2000; seq++) {
      live.write(chunkOf(seq, 100));
      await Promise.resolve();
    }
    live.end();
    await done;
    expect(ordered).toBe(true);
    expect(received).toBe(200_000);
    // Woken only before the next chunk could take it over budget: 39 chunks a batch, not one.
    expect(c.metrics).toMatchObject({ bytesDropped: 0, chunksOut: 2000 });
    expect(c.metrics.peakBufferedBytes).toBeLessThanOrEqual(4000);
  });

  it('ends the consumer and rejects with the handler’s error when it throws or rejects', async () => {
    const live = new Broadcast({ capacity: 1000, maxChunk: 100 });
    const sync = live.subscribe({ policy: 'block', budget: 400 });
    const async = live.subscribe({ policy: 'block', budget: 400 });
    const boom = new Error('boom');
    const syncDone = track(
      sync.forEachBatch(() => {
        throw boom;
      }),
    );
    const asyncDone = track(async.forEachBatch(() => Promise.reject(boom)));
    live.write(chunkOf(0, 10));
    await settle();
    expect(syncDone).toEqual({ done: true, error: boom });
    expect(asyncDone).toEqual({ done: true, error: boom });
    expect(sync.closed && async.closed).toBe(true);
    // Nothing they held keeps the producer back.
    expect(live.writable).toBe(true);
  });

  it('rejects with DisconnectedError when the policy cuts the consumer off mid-batch', async () => {
    const live = new Broadcast({ capacity: 1000, maxChunk: 100 });
    const c = live.subscribe({ policy: 'disconnect', budget: 300 });
    const done = track(c.forEachBatch(() => new Promise<void>(() => {})));
    live.write(chunkOf(0, 100));
    await settle();
    for (let seq = 1; seq < 4; seq++) live.write(chunkOf(seq, 100));
    await settle();
    expect(done.done).toBe(true);
    expect(DisconnectedError.isInstance(done.error)).toBe(true);
    expect((done.error as DisconnectedError).reason).toBe('lagged');
  });

  it('rejects with DisconnectedError when the producer aborts, and AbortedError when its signal does', async () => {
    const live = new Broadcast({ capacity: 1000, maxChunk: 100 });
    const stop = new AbortController();
    const a = live.subscribe({ policy: 'drop-oldest' });
    const b = live.subscribe({ policy: 'drop-oldest' });
    const aDone = track(a.forEachBatch(() => {}, { signal: stop.signal }));
    const bDone = track(b.forEachBatch(() => {}));
    stop.abort(new Error('viewer left'));
    await settle();
    expect(AbortedError.isInstance(aDone.error)).toBe(true);
    expect(a.closed).toBe(true);
    expect(bDone.done).toBe(false);
    live.abort(new Error('ingest died'));
    await settle();
    expect(DisconnectedError.isInstance(bDone.error)).toBe(true);
    expect((bDone.error as DisconnectedError).reason).toBe('producer-aborted');
  });

  it('resolves on close() and allows one reader at a time', async () => {
    const live = new Broadcast({ capacity: 1000, maxChunk: 100 });
    const c = live.subscribe({ policy: 'drop-oldest' });
    const done = track(c.forEachBatch(() => {}));
    await expect(c.read()).rejects.toSatisfy(InvalidArgumentError.isInstance);
    await expect(c.readBatch()).rejects.toSatisfy(InvalidArgumentError.isInstance);
    await expect(c.forEachBatch(() => {})).rejects.toThrow(/one reader at a time/);
    c.close();
    await settle();
    expect(done).toEqual({ done: true, value: undefined });
    const other = live.subscribe({ policy: 'drop-oldest' });
    const waiting = other.read();
    await expect(other.forEachBatch(() => {})).rejects.toSatisfy(InvalidArgumentError.isInstance);
    await expect(other.forEachBatch('nope' as unknown as () => void)).rejects.toThrow(
      /needs a function, got string/,
    );
    live.end();
    expect(await waiting).toEqual({ value: undefined, done: true });
  });
});

describe('forEachBatch() handlers that write', () => {
  it('a handler that writes a whole ring past its own batch is cut off before the batch is overwritten', async () => {
    const live = new Broadcast({ capacity: 1000, maxChunk: 100 });
    const c = live.subscribe({
      policy: 'drop-oldest',
      budget: 500,
      coalesce: { maxWaitMs: Infinity },
    });
    let held: readonly BroadcastChunk[] = [];
    const intactWhenCut: boolean[] = [];
    c.on('disconnect', () => intactWhenCut.push(held.every(intact)));
    const done = track(
      c.forEachBatch((batch) => {
        held = batch;
        for (let seq = 5; seq < 20; seq++) live.write(chunkOf(seq, 100));
      }),
    );
    await settle();
    for (let seq = 0; seq < 5; seq++) live.write(chunkOf(seq, 100));
    await settle();
    expect(held.map((chunk) => chunk.sequence)).toEqual([0, 1, 2, 3, 4]);
    expect(intactWhenCut).toEqual([true]);
    expect(done.error).toBeInstanceOf(DisconnectedError);
    expect(done.error).toMatchObject({ reason: 'lapped' });
  });
});

describe('forEachBatch() consumers parked at the same point', () => {
  const sequences = (batch: readonly BroadcastChunk[]) => batch.map((chunk) => chunk.sequence);

  it('are woken together, each on its own budget, and any of them can leave or change alone', async () => {
    const live = new Broadcast({ capacity: 2000, maxChunk: 100 });
    const join = (budget: number) => {
      const c = live.subscribe({
        policy: 'drop-oldest',
        budget,
        coalesce: { maxWaitMs: Infinity },
      });
      const batches: number[][] = [];
      const done = track(c.forEachBatch((batch) => void batches.push(sequences(batch))));
      return { c, batches, done };
    };
    const [a, b, small, leaver, listener] = [join(500), join(500), join(300), join(500), join(500)];
    await settle();
    const drops: number[] = [];
    for (let seq = 0; seq < 8; seq++) {
      live.write(chunkOf(seq, 100));
      if (seq === 1) {
        leaver.c.close();
        listener.c.on('drop', (bytes) => drops.push(bytes));
      }
      await settle();
    }
    live.end();
    await settle();
    // Woken before the next chunk could take them over budget: every 5 chunks, every 3 for 300 bytes.
    expect(a.batches).toEqual([
      [0, 1, 2, 3, 4],
      [5, 6, 7],
    ]);
    expect(b.batches).toEqual(a.batches);
    expect(listener.batches).toEqual(a.batches);
    expect(small.batches).toEqual([
      [0, 1, 2],
      [3, 4, 5],
      [6, 7],
    ]);
    expect(leaver.batches).toEqual([]);
    expect(leaver.c.metrics).toMatchObject({ bytesOut: 0, bytesDropped: 200, chunksDropped: 2 });
    for (const v of [a, b, small, listener]) {
      expect(v.c.metrics).toMatchObject({ bytesOut: 800, bytesDropped: 0 });
      expect(v.done).toEqual({ done: true, value: undefined });
    }
    expect(leaver.done).toEqual({ done: true, value: undefined });
    expect(drops).toEqual([]);
  });

  it('are woken by the time limit together when the producer pauses', async () => {
    const live = new Broadcast({ capacity: 2000, maxChunk: 100 });
    const got: number[][] = [];
    for (let i = 0; i < 3; i++) {
      const c = live.subscribe({
        policy: 'skip-to-marker',
        budget: 1000,
        coalesce: { maxWaitMs: 5 },
      });
      void c.forEachBatch((batch) => void got.push(sequences(batch)));
    }
    await settle();
    live.write(chunkOf(0, 100));
    live.write(chunkOf(1, 100));
    await settle();
    expect(got).toEqual([]);
    await new Promise((resolve) => setTimeout(resolve, 40));
    expect(got).toEqual([
      [0, 1],
      [0, 1],
      [0, 1],
    ]);
    // Parked again after that batch: the time limit still applies.
    live.write(chunkOf(2, 100));
    await new Promise((resolve) => setTimeout(resolve, 40));
    expect(got.slice(3)).toEqual([[2], [2], [2]]);
    live.end();
  });

  it('are not woken by padding at the ring end: only by the bytes pending', async () => {
    const live = new Broadcast({ capacity: 1000, maxChunk: 300 });
    // Woken once 101 bytes are pending: then the next chunk cannot take it over 400.
    const c = live.subscribe({
      policy: 'drop-oldest',
      budget: 400,
      coalesce: { maxWaitMs: Infinity },
    });
    const got: number[][] = [];
    void c.forEachBatch((batch) => void got.push(sequences(batch)));
    await settle();
    for (let seq = 0; seq < 5; seq++) {
      live.write(chunkOf(seq, 190));
      await settle();
    }
    expect(got).toHaveLength(5);
    // 950 bytes in: this 60-byte chunk cannot fit before the ring's end, so 50 bytes of
    // padding precede it. 110 ring bytes, but 60 pending: not due.
    live.write(chunkOf(5, 60));
    await settle();
    expect(got).toHaveLength(5);
    live.write(chunkOf(6, 60));
    await settle();
    expect(got[5]).toEqual([5, 6]);
    live.end();
  });

  it('a consumer whose budget is below maxChunk still meets its policy on a chunk over budget', async () => {
    const live = new Broadcast({ capacity: 1000, maxChunk: 200 });
    const c = live.subscribe({
      policy: 'disconnect',
      budget: 100,
      coalesce: { maxWaitMs: Infinity },
    });
    const got: number[][] = [];
    const done = track(c.forEachBatch((batch) => void got.push(sequences(batch))));
    await settle();
    live.write(chunkOf(0, 50));
    await settle();
    expect(got).toEqual([[0]]);
    live.write(chunkOf(1, 150));
    await settle();
    expect(got).toEqual([[0]]);
    expect(done.error).toBeInstanceOf(DisconnectedError);
    expect(done.error).toMatchObject({ reason: 'lagged', lag: 150, limit: 100 });
  });
});
