import { describe, expect, it } from 'vitest';
import {
  Broadcast,
  Channel,
  ClosedError,
  DisconnectedError,
  pipeline,
  throttle,
  toReadableStream,
} from './index';

// Runs in real headless Chromium: the default entry must need nothing from Node.
describe('backpressure-stream in a browser', () => {
  it('runs without Node globals', () => {
    expect(typeof (globalThis as { process?: unknown }).process).toBe('undefined');
  });

  it('bounds a channel in bytes and signals the producer', async () => {
    const ch = new Channel({ capacity: 1024 });
    expect(ch.write(new Uint8Array(1000))).toBe(true);
    expect(ch.write(new Uint8Array(100))).toBe(false);
    let drained = false;
    ch.on('drain', () => {
      drained = true;
    });
    await ch.read();
    expect(drained).toBe(true);
    ch.close();
    expect(() => ch.write(new Uint8Array(1))).toThrow(ClosedError);
  });

  it('pipes a web stream through a throttle into a function sink within one budget', async () => {
    const source = toReadableStream(
      (async function* () {
        for (let i = 0; i < 64; i++) yield new Uint8Array(4096).fill(i);
      })(),
    );
    const result = await pipeline(
      source,
      throttle({ bytesPerSecond: 1e9 }),
      async (chunks) => {
        let total = 0;
        for await (const chunk of chunks) total += chunk.length;
        return total;
      },
      { budget: 16 * 1024 },
    );
    expect(result.value).toBe(64 * 4096);
    expect(result.peakBufferedBytes).toBeLessThanOrEqual(16 * 1024 + 3 * 4096);
  });

  it('fans out with a per-consumer policy', async () => {
    const live = new Broadcast({ capacity: 64 * 1024, maxChunk: 4096 });
    const slow = live.subscribe({ policy: 'disconnect', budget: 8192 });
    const fast = live.subscribe({ policy: 'block', budget: 32 * 1024 });
    const seen: number[] = [];
    const reading = (async () => {
      for await (const chunk of fast) seen.push(chunk.bytes.getUint8(0));
    })();
    for (let i = 0; i < 8; i++) {
      if (!live.write(new Uint8Array(2048).fill(i), { marker: i % 4 === 0 })) await live.ready();
    }
    live.end();
    await reading;
    expect(seen).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    await expect(slow.read()).rejects.toSatisfy((e: unknown) => DisconnectedError.isInstance(e));
  });
});
