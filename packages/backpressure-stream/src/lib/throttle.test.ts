import { describe, expect, it } from 'vitest';
import { Channel } from './channel';
import { AbortedError, InvalidArgumentError } from './errors';
import { TokenBucket, throttle } from './throttle';

/** A clock that only moves when the code under test sleeps: rates become exact arithmetic. */
function virtualTime() {
  let t = 0;
  const sleeps: number[] = [];
  return {
    clock: () => t,
    sleep: async (ms: number, signal?: AbortSignal) => {
      if (signal?.aborted) throw new AbortedError('throttle wait', { cause: signal.reason });
      sleeps.push(ms);
      t += ms;
    },
    advance: (ms: number) => {
      t += ms;
    },
    get now() {
      return t;
    },
    sleeps,
  };
}

describe('TokenBucket', () => {
  it('lets a burst through at once, then holds the sustained rate exactly', async () => {
    const time = virtualTime();
    const bucket = new TokenBucket({ bytesPerSecond: 1000, burst: 500, ...time });
    await bucket.take(500);
    expect(time.now).toBe(0);
    for (let i = 0; i < 10; i++) await bucket.take(100);
    // 1000 bytes after the burst at 1000 B/s: one second, give or take a rounding millisecond.
    expect(time.now).toBeGreaterThanOrEqual(999);
    expect(time.now).toBeLessThanOrEqual(1001);
    expect(bucket.waitedMs).toBe(time.now);
  });

  it('keeps the long-run rate for chunks larger than the burst by going into debt', async () => {
    const time = virtualTime();
    const bucket = new TokenBucket({ bytesPerSecond: 1000, burst: 100, ...time });
    await bucket.take(100);
    await bucket.take(5000);
    expect(bucket.available).toBeLessThan(0);
    await bucket.take(1);
    expect(time.now).toBeGreaterThanOrEqual(5000);
    expect(time.now).toBeLessThanOrEqual(5002);
  });

  it('refills only up to the burst after a quiet spell', () => {
    const time = virtualTime();
    const bucket = new TokenBucket({ bytesPerSecond: 1000, burst: 200, ...time });
    expect(bucket.tryTake(200)).toBe(true);
    expect(bucket.tryTake(1)).toBe(false);
    time.advance(60_000);
    expect(bucket.available).toBe(200);
    bucket.setRate(10, 50);
    expect(bucket.available).toBe(50);
    expect(bucket.bytesPerSecond).toBe(10);
  });

  it('stops waiting when its signal aborts', async () => {
    const bucket = new TokenBucket({ bytesPerSecond: 1, burst: 1 });
    await bucket.take(1);
    const controller = new AbortController();
    const waiting = bucket.take(1, { signal: controller.signal });
    controller.abort(new Error('viewer left'));
    await expect(waiting).rejects.toSatisfy(
      (e: unknown) => AbortedError.isInstance(e) && (e as Error).cause instanceof Error,
    );
  });

  it('rejects nonsense rates naming the value', () => {
    expect(() => new TokenBucket({ bytesPerSecond: 0 })).toThrow(InvalidArgumentError);
    expect(() => new TokenBucket({ bytesPerSecond: Number.NaN })).toThrow(/NaN/);
    expect(() => new TokenBucket({ bytesPerSecond: 10, burst: 0 })).toThrow(/burst 0/);
  });
});

describe('throttle transform', () => {
  it('passes every chunk through, in order, at the configured rate', async () => {
    const time = virtualTime();
    async function* source() {
      for (let i = 0; i < 20; i++) yield new Uint8Array(250).fill(i);
    }
    const out: number[] = [];
    for await (const chunk of throttle({ bytesPerSecond: 10_000, burst: 1000, ...time })(
      source(),
    )) {
      out.push(chunk[0] as number);
    }
    expect(out).toEqual(Array.from({ length: 20 }, (_, i) => i));
    // 5000 bytes, 1000 of them burst: 4000 bytes at 10 kB/s.
    expect(time.now).toBeGreaterThanOrEqual(399);
    expect(time.now).toBeLessThanOrEqual(402);
  });
});

describe('throttled channel', () => {
  it('paces the reader and pushes back on the producer through the buffer', async () => {
    const time = virtualTime();
    const ch = new Channel({
      capacity: 1000,
      throttle: { bytesPerSecond: 2000, burst: 500, ...time },
    });
    expect(ch.write(new Uint8Array(500))).toBe(true);
    expect(ch.write(new Uint8Array(500))).toBe(false);
    await ch.read();
    expect(time.now).toBe(0);
    expect(ch.buffered).toBe(500);
    await ch.read();
    expect(time.now).toBeGreaterThanOrEqual(249);
    expect(time.now).toBeLessThanOrEqual(251);
    expect(ch.tryRead()).toBeUndefined();
  });

  it('shares one bucket between channels', async () => {
    const time = virtualTime();
    const bucket = new TokenBucket({ bytesPerSecond: 1000, burst: 100, ...time });
    const a = new Channel({ throttle: bucket });
    const b = new Channel({ throttle: bucket });
    a.write(new Uint8Array(100));
    b.write(new Uint8Array(100));
    await a.read();
    expect(b.tryRead()).toBeUndefined();
    await b.read();
    expect(time.now).toBeGreaterThanOrEqual(100);
  });
});
