import { afterEach, describe, expect, it, vi } from 'vitest';
import { Channel } from './channel';
import { watchMetrics } from './metrics-watch';

afterEach(() => {
  vi.useRealTimers();
});

describe('watchMetrics', () => {
  it('emits a snapshot of every source at each interval, following sources that change', () => {
    vi.useFakeTimers();
    const a = new Channel({ name: 'a', capacity: 10 });
    const sources = [a];
    const seen: string[][] = [];
    const stop = watchMetrics(
      () => sources,
      (all) => seen.push(all.map((m) => `${m.name}:${m.bufferedBytes}`)),
      { intervalMs: 100 },
    );
    a.write(new Uint8Array(4));
    vi.advanceTimersByTime(100);
    const b = new Channel({ name: 'b' });
    b.write(new Uint8Array(7));
    sources.push(b);
    vi.advanceTimersByTime(100);
    stop();
    vi.advanceTimersByTime(1000);
    expect(seen).toEqual([['a:4'], ['a:4', 'b:7']]);
  });

  it('stops when its signal aborts and leaves no listener behind', () => {
    vi.useFakeTimers();
    const controller = new AbortController();
    const removeSpy = vi.spyOn(controller.signal, 'removeEventListener');
    let calls = 0;
    watchMetrics([new Channel()], () => calls++, { intervalMs: 50, signal: controller.signal });
    vi.advanceTimersByTime(120);
    controller.abort();
    vi.advanceTimersByTime(500);
    expect(calls).toBe(2);
    expect(removeSpy).toHaveBeenCalled();
    expect(() => watchMetrics([], () => undefined, { intervalMs: 0 })).toThrow(/intervalMs 0/);
  });
});
