import { describe, expect, it } from 'vitest';
import * as main from './index';
import * as node from './node';

// An accidental addition or removal of a public name must show up in review.
describe('public API', () => {
  it('backpressure-stream exports exactly these names', () => {
    expect(Object.keys(main).sort()).toMatchInlineSnapshot(`
      [
        "AbortedError",
        "BackpressureError",
        "Broadcast",
        "BroadcastConsumer",
        "BudgetExceededError",
        "ByteBudget",
        "Channel",
        "ClosedError",
        "DisconnectedError",
        "Emitter",
        "InvalidArgumentError",
        "SinkChannel",
        "TokenBucket",
        "byteSize",
        "fromReadableStream",
        "fromWritableStream",
        "mapChunks",
        "pipeline",
        "throttle",
        "toReadableStream",
        "toWritableStream",
        "watchMetrics",
      ]
    `);
  });

  it('backpressure-stream/node exports exactly these names', () => {
    expect(Object.keys(node).sort()).toMatchInlineSnapshot(`
      [
        "fromNodeReadable",
        "fromNodeWritable",
        "toNodeDuplex",
        "toNodeReadable",
        "toNodeWritable",
      ]
    `);
  });
});
