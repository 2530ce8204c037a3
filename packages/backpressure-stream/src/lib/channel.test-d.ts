import { describe, expectTypeOf, it } from 'vitest';
import {
  type BackpressureErrorCode,
  Broadcast,
  type BroadcastChunk,
  Channel,
  type PipelineResult,
  pipeline,
  type SlowConsumerPolicy,
  type StageMetrics,
} from '../index';

describe('public types', () => {
  it('channels carry their chunk type through reads and iteration', async () => {
    const frames = new Channel<{ pts: number }>({ size: () => 1 });
    expectTypeOf(frames.write).parameter(0).toEqualTypeOf<{ pts: number }>();
    expectTypeOf(await frames.read()).toEqualTypeOf<IteratorResult<{ pts: number }>>();
    expectTypeOf(frames.metrics).toEqualTypeOf<StageMetrics>();
    // @ts-expect-error a byte channel does not accept strings
    new Channel().write('text');
  });

  it('pipeline infers the sink result', async () => {
    const result = await pipeline(
      [new Uint8Array(1)],
      async (chunks: AsyncIterable<Uint8Array>) => {
        let n = 0;
        for await (const c of chunks) n += c.length;
        return n;
      },
    );
    expectTypeOf(result).toEqualTypeOf<PipelineResult<number>>();
  });

  it('fan-out policies are a closed set', () => {
    expectTypeOf<SlowConsumerPolicy>().toEqualTypeOf<
      'block' | 'drop-oldest' | 'skip-to-marker' | 'disconnect'
    >();
    const live = new Broadcast({ capacity: 1 << 20 });
    const consumer = live.subscribe({ policy: 'drop-oldest', budget: 1 << 16 });
    expectTypeOf(consumer.read).returns.resolves.toEqualTypeOf<IteratorResult<BroadcastChunk>>();
    // @ts-expect-error unknown policy
    live.subscribe({ policy: 'buffer-forever' });
    expectTypeOf<'BACKPRESSURE_DISCONNECTED'>().toExtend<BackpressureErrorCode>();
  });
});
