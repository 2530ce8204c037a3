import { describe, expect, it, vi } from 'vitest';
import { ByteBudget } from './budget';
import { Channel } from './channel';
import { AbortedError, BudgetExceededError, ClosedError, InvalidArgumentError } from './errors';

const bytes = (n: number, fill = 0) => new Uint8Array(n).fill(fill);

describe('Channel write() and drain', () => {
  it('returns false exactly when the buffered bytes reach capacity', () => {
    const ch = new Channel({ capacity: 10 });
    expect(ch.write(bytes(4))).toBe(true);
    expect(ch.write(bytes(5))).toBe(true);
    expect(ch.buffered).toBe(9);
    expect(ch.write(bytes(1))).toBe(false);
    expect(ch.writable).toBe(false);
    expect(ch.write(bytes(3))).toBe(false);
    expect(ch.buffered).toBe(13);
    expect(ch.metrics.stalls).toBe(1);
  });

  it('emits drain once, after the read that frees room, and only after a false write', async () => {
    const ch = new Channel({ capacity: 8 });
    const events: string[] = [];
    ch.on('drain', () => events.push(`drain@${ch.buffered}`));
    ch.write(bytes(4));
    await ch.read();
    expect(events).toEqual([]);
    ch.write(bytes(6));
    ch.write(bytes(6));
    expect(ch.write(bytes(1))).toBe(false);
    events.push('read 1');
    await ch.read();
    expect(events).toEqual(['read 1', 'drain@7']);
    await ch.read();
    await ch.read();
    expect(events).toEqual(['read 1', 'drain@7']);
  });

  it('lets a drain listener write synchronously without corrupting the count', async () => {
    const ch = new Channel({ capacity: 4 });
    ch.write(bytes(4, 1));
    ch.once('drain', () => ch.write(bytes(2, 2)));
    const first = await ch.read();
    expect(first.value?.[0]).toBe(1);
    expect(ch.buffered).toBe(2);
    expect((await ch.read()).value?.[0]).toBe(2);
    expect(ch.buffered).toBe(0);
  });

  it('hands a chunk straight to a waiting reader without buffering it', async () => {
    const ch = new Channel({ capacity: 4 });
    const pending = ch.read();
    expect(ch.write(bytes(100))).toBe(true);
    expect(ch.buffered).toBe(0);
    expect((await pending).value?.length).toBe(100);
    expect(ch.metrics.peakBufferedBytes).toBe(0);
  });

  it('bounds memory with send(): at most capacity plus one chunk', async () => {
    const ch = new Channel({ capacity: 1000 });
    let peak = 0;
    const producer = (async () => {
      for (let i = 0; i < 200; i++) {
        await ch.send(bytes(300, i));
        peak = Math.max(peak, ch.buffered);
      }
      ch.close();
    })();
    const seen: number[] = [];
    for await (const chunk of ch) {
      seen.push(chunk[0] as number);
      if (seen.length % 7 === 0) await new Promise((r) => setTimeout(r, 1));
    }
    await producer;
    expect(seen).toEqual(Array.from({ length: 200 }, (_, i) => i & 0xff));
    expect(peak).toBeLessThan(1000 + 300);
    expect(ch.metrics.peakBufferedBytes).toBeLessThan(1300);
    expect(ch.metrics.bytesOut).toBe(60_000);
  });

  it('enforces a hard limit with a typed error naming the numbers', () => {
    const ch = new Channel({ capacity: 10, limit: 20 });
    ch.write(bytes(15));
    const err = (() => {
      try {
        ch.write(bytes(6));
      } catch (e) {
        return e;
      }
    })();
    expect(BudgetExceededError.isInstance(err)).toBe(true);
    expect((err as BudgetExceededError).requested).toBe(21);
    expect((err as BudgetExceededError).limit).toBe(20);
    expect(ch.buffered).toBe(15);
  });

  it('measures bytes by default and refuses to guess for objects', () => {
    const ch = new Channel<unknown>();
    expect(() => ch.write({ a: 1 })).toThrow(InvalidArgumentError);
    const objects = new Channel<{ id: number }>({ capacity: 2, size: () => 1 });
    objects.write({ id: 1 });
    expect(objects.write({ id: 2 })).toBe(false);
    expect(() => new Channel({ capacity: 0 })).toThrow(InvalidArgumentError);
    const bad = new Channel<Uint8Array>({ size: () => Number.NaN });
    expect(() => bad.write(bytes(1))).toThrow(/NaN/);
  });
});

describe('Channel close, abort and cancel', () => {
  it('close() lets readers drain, then ends; writes after it throw ClosedError', async () => {
    const ch = new Channel({ capacity: 100 });
    const ended = vi.fn();
    ch.on('end', ended);
    ch.write(bytes(1, 1));
    ch.write(bytes(1, 2));
    ch.close();
    expect(() => ch.write(bytes(1))).toThrow(ClosedError);
    await expect(ch.send(bytes(1))).rejects.toBeInstanceOf(ClosedError);
    expect(ended).not.toHaveBeenCalled();
    const got = [];
    for await (const c of ch) got.push(c[0]);
    expect(got).toEqual([1, 2]);
    expect(ended).toHaveBeenCalledTimes(1);
    expect(ch.ended).toBe(true);
    expect((await ch.read()).done).toBe(true);
  });

  it('abort() drops data and rejects pending readers, writers and later calls with the reason', async () => {
    const ch = new Channel({ capacity: 4 });
    ch.write(bytes(8));
    const waitingWriter = ch.ready();
    const reason = new Error('viewer left');
    ch.abort(reason);
    await expect(waitingWriter).rejects.toSatisfy(
      (e: unknown) => AbortedError.isInstance(e) && (e as Error).cause === reason,
    );
    await expect(ch.read()).rejects.toBeInstanceOf(AbortedError);
    expect(() => ch.write(bytes(1))).toThrow(/viewer left/);
    expect(ch.metrics.bytesDropped).toBe(8);
    expect(ch.buffered).toBe(0);

    const empty = new Channel();
    const waitingReader = empty.read();
    empty.abort('stop');
    await expect(waitingReader).rejects.toBeInstanceOf(AbortedError);
  });

  it('an AbortSignal in the options aborts the channel and is then detached', async () => {
    const controller = new AbortController();
    const ch = new Channel({ signal: controller.signal });
    const pending = ch.read();
    controller.abort(new Error('shutdown'));
    await expect(pending).rejects.toThrow(/shutdown/);
    expect(ch.aborted).toBe(true);
    const pre = new Channel({ signal: AbortSignal.abort('early') });
    expect(pre.aborted).toBe(true);
  });

  it('a signal on one call stops only that wait and removes its listener', async () => {
    const ch = new Channel({ capacity: 1 });
    const controller = new AbortController();
    const pending = ch.read({ signal: controller.signal });
    controller.abort('enough');
    await expect(pending).rejects.toBeInstanceOf(AbortedError);
    expect(ch.write(bytes(1, 7))).toBe(false);
    expect((await ch.read()).value?.[0]).toBe(7);

    const ok = new AbortController();
    const addSpy = vi.spyOn(ok.signal, 'addEventListener');
    const removeSpy = vi.spyOn(ok.signal, 'removeEventListener');
    const p = ch.read({ signal: ok.signal });
    ch.write(bytes(1));
    await p;
    expect(addSpy).toHaveBeenCalledTimes(1);
    expect(removeSpy).toHaveBeenCalledTimes(1);
  });

  it('breaking out of for-await cancels the channel so the producer stops', async () => {
    const ch = new Channel({ capacity: 2 });
    const producer = (async () => {
      for (let i = 0; ; i++) await ch.send(bytes(1, i));
    })();
    for await (const chunk of ch) {
      if (chunk[0] === 3) break;
    }
    await expect(producer).rejects.toSatisfy(
      (e: unknown) => ClosedError.isInstance(e) && /reader cancelled it/.test((e as Error).message),
    );
    expect(ch.buffered).toBe(0);
  });
});

describe('Channel with a shared budget', () => {
  it('reports full when the shared budget is used, but never blocks an empty channel', async () => {
    const budget = new ByteBudget(10);
    const a = new Channel({ capacity: 100, budget });
    const b = new Channel({ capacity: 100, budget });
    expect(a.write(bytes(6))).toBe(true);
    expect(a.write(bytes(6))).toBe(false);
    expect(budget.used).toBe(12);
    expect(b.writable).toBe(true);
    expect(b.write(bytes(3))).toBe(false);
    const drained = vi.fn();
    b.on('drain', drained);
    await a.read();
    await a.read();
    expect(budget.used).toBe(3);
    expect(drained).toHaveBeenCalledTimes(1);
    expect(budget.peak).toBe(15);
  });

  it('unsubscribes from the budget when the channel ends or aborts', async () => {
    const budget = new ByteBudget(10);
    const a = new Channel({ budget });
    const b = new Channel({ budget });
    expect(budget.listenerCount).toBe(2);
    a.close();
    b.abort();
    expect(budget.listenerCount).toBe(0);
  });
});

describe('Channel readBatch() and batches()', () => {
  it('hands out everything buffered at once, in order, and keeps it charged until the next read', async () => {
    const ch = new Channel({ capacity: 10 });
    const drains: number[] = [];
    ch.on('drain', () => drains.push(ch.buffered));
    expect(ch.write(bytes(4, 1))).toBe(true);
    expect(ch.write(bytes(4, 2))).toBe(true);
    expect(ch.write(bytes(4, 3))).toBe(false);
    const first = await ch.readBatch();
    expect(first.done).toBe(false);
    expect(first.value?.map((c: Uint8Array) => c[0])).toEqual([1, 2, 3]);
    // The batch is in the reader's hands but still counted: no room, no drain.
    expect(ch.buffered).toBe(0);
    expect(ch.writable).toBe(false);
    expect(drains).toEqual([]);
    const ready = vi.fn();
    void ch.ready().then(ready);
    await Promise.resolve();
    expect(ready).not.toHaveBeenCalled();
    // Asking for more releases it: the producer may go on before the next chunk arrives.
    const next = ch.readBatch();
    expect(drains).toEqual([0]);
    expect(ch.writable).toBe(true);
    await Promise.resolve();
    expect(ready).toHaveBeenCalledTimes(1);
    expect(ch.write(bytes(2, 4))).toBe(true);
    expect((await next).value?.map((c: Uint8Array) => c[0])).toEqual([4]);
    ch.close();
    expect(await ch.readBatch()).toEqual({ value: undefined, done: true });
    expect(ch.metrics).toMatchObject({
      bytesIn: 14,
      bytesOut: 14,
      chunksOut: 4,
      peakBufferedBytes: 12,
    });
  });

  it('wakes a waiting reader once for everything written before it runs', async () => {
    const ch = new Channel({ capacity: 100 });
    const pending = ch.readBatch();
    for (let i = 0; i < 5; i++) ch.write(bytes(1, i));
    expect(ch.buffered).toBe(5);
    expect((await pending).value?.map((c: Uint8Array) => c[0])).toEqual([0, 1, 2, 3, 4]);
  });

  it('releases the batch when the channel ends, so a shared budget is whole again', async () => {
    const budget = new ByteBudget(8);
    const ch = new Channel({ budget });
    ch.write(bytes(5));
    const batch = await ch.readBatch();
    expect(batch.value).toHaveLength(1);
    expect(budget.used).toBe(5);
    ch.close();
    expect(ch.ended).toBe(true);
    expect(budget.used).toBe(0);
    // Closed with chunks left: the last batch is not charged at all.
    const other = new Channel({ budget });
    other.write(bytes(3));
    other.close();
    expect((await other.readBatch()).value).toHaveLength(1);
    expect(budget.used).toBe(0);
  });

  it('batches() ends on close, cancels when left early, and rejects after abort', async () => {
    const ch = new Channel({ capacity: 4 });
    const seen: number[] = [];
    const reading = (async () => {
      for await (const batch of ch.batches()) seen.push(batch.length);
    })();
    await ch.send(bytes(3));
    await ch.send(bytes(3));
    ch.close();
    await reading;
    expect(seen.reduce((a, b) => a + b, 0)).toBe(2);

    const left = new Channel({ capacity: 4 });
    left.write(bytes(2));
    for await (const _ of left.batches()) break;
    expect(left.closed).toBe(true);
    expect(() => left.write(bytes(1))).toThrow(ClosedError);

    const budget = new ByteBudget(100);
    const aborted = new Channel({ budget });
    aborted.write(bytes(7));
    await aborted.readBatch();
    const waiting = aborted.readBatch();
    aborted.abort(new Error('gone'));
    await expect(waiting).rejects.toBeInstanceOf(AbortedError);
    await expect(aborted.readBatch()).rejects.toBeInstanceOf(AbortedError);
    expect(budget.used).toBe(0);
  });

  it('stops waiting when its signal aborts, without aborting the channel', async () => {
    const ch = new Channel();
    const controller = new AbortController();
    const pending = ch.readBatch({ signal: controller.signal });
    controller.abort();
    await expect(pending).rejects.toBeInstanceOf(AbortedError);
    expect(ch.closed).toBe(false);
    ch.write(bytes(1));
    expect((await ch.readBatch()).value).toHaveLength(1);
  });

  it('a throttled batch holds what the bucket pays for, at least one chunk', async () => {
    let t = 0;
    const ch = new Channel({
      capacity: 100,
      throttle: {
        bytesPerSecond: 10,
        burst: 10,
        clock: () => t,
        sleep: async (ms) => {
          t += ms;
        },
      },
    });
    for (let i = 0; i < 4; i++) ch.write(bytes(4, i));
    const first = await ch.readBatch();
    expect(first.value?.map((c: Uint8Array) => c[0])).toEqual([0, 1]);
    const second = await ch.readBatch();
    expect(second.value?.length).toBeGreaterThanOrEqual(1);
    expect(second.value?.[0]?.[0]).toBe(2);
  });
});
