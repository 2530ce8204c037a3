import { describe, expect, it, vi } from 'vitest';
import { ByteBudget } from './budget';
import type { Channel } from './channel';
import { AbortedError } from './errors';
import { pipeline } from './pipeline';
import { fromReadableStream, toReadableStream, toWritableStream } from './web-streams';

const bytes = (n: number, fill = 0) => new Uint8Array(n).fill(fill);
const settle = async (n = 10) => {
  for (let i = 0; i < n; i++) await new Promise<void>((resolve) => setTimeout(resolve, 0));
};

describe('web adapters and pipeline in a real browser', () => {
  it('toReadableStream pulls by bytes, and a Response can read it', async () => {
    let pulled = 0;
    const stream = toReadableStream(
      (function* () {
        for (let i = 0; i < 100; i++) {
          pulled++;
          yield bytes(1000, i);
        }
      })(),
      { highWaterMark: 4096 },
    );
    await settle();
    expect(pulled).toBe(5);
    const body = await new Response(stream).arrayBuffer();
    expect(body.byteLength).toBe(100_000);
  });

  it("serves a BYOB reader with type: 'bytes'", async () => {
    const stream = toReadableStream([Uint8Array.from({ length: 25 }, (_, i) => i)], {
      type: 'bytes',
    });
    const reader = stream.getReader({ mode: 'byob' });
    const first = await reader.read(new Uint8Array(16));
    expect(first.value?.byteLength).toBe(16);
    const second = await reader.read(new Uint8Array(16));
    expect([...(second.value ?? [])]).toEqual([16, 17, 18, 19, 20, 21, 22, 23, 24]);
  });

  it('pipes a fetch-like body through a TransformStream and a generator under one budget', async () => {
    const source = new Response(new Blob([bytes(300_000, 7)])).body as ReadableStream<Uint8Array>;
    const budget = new ByteBudget(32 * 1024);
    let total = 0;
    let largest = 0;
    const result = await pipeline(
      source,
      new TransformStream<Uint8Array, Uint8Array>(),
      async function* (chunks: AsyncIterable<Uint8Array>) {
        for await (const chunk of chunks) yield chunk;
      },
      new WritableStream<Uint8Array>({
        async write(chunk) {
          total += chunk.byteLength;
          largest = Math.max(largest, chunk.byteLength);
          await new Promise((resolve) => setTimeout(resolve, 0));
        },
      }),
      { budget },
    );
    expect(total).toBe(300_000);
    expect(source.locked).toBe(false);
    // 3 links and 2 metered stages (the TransformStream, the sink), one chunk each.
    expect(result.peakBufferedBytes).toBeLessThanOrEqual(budget.limit + 5 * largest);
    expect(budget.used).toBe(0);
  });

  it('an abort signal cancels the source and rejects with AbortedError', async () => {
    const cancel = vi.fn();
    const source = new ReadableStream<Uint8Array>({
      pull: (controller) => controller.enqueue(bytes(100)),
      cancel,
    });
    const controller = new AbortController();
    const running = pipeline(
      source,
      toWritableStream(
        async (chunks: AsyncIterable<Uint8Array>) => {
          for await (const _ of chunks) await new Promise((resolve) => setTimeout(resolve, 1));
        },
        { highWaterMark: 1 },
      ),
      { signal: controller.signal },
    );
    await settle();
    controller.abort('user left');
    const error = await running.catch((e: unknown) => e);
    expect(AbortedError.isInstance(error)).toBe(true);
    expect(cancel).toHaveBeenCalledTimes(1);
    expect(cancel.mock.calls[0]?.[0]).toBe(error);
    expect(source.locked).toBe(false);
  });

  it('fromReadableStream keeps the channel within capacity plus one chunk', async () => {
    let pulls = 0;
    const stream = new ReadableStream<Uint8Array>(
      {
        pull(controller) {
          pulls++;
          controller.enqueue(bytes(1000));
        },
      },
      { highWaterMark: 0 },
    );
    const channel: Channel = fromReadableStream(stream, { capacity: 4096 });
    await settle();
    expect(channel.buffered).toBe(5000);
    expect(pulls).toBeLessThanOrEqual(6);
    channel.cancel();
    await settle(2);
    expect(stream.locked).toBe(false);
  });
});
