import { getEventListeners } from 'node:events';
import { PassThrough, Readable, Transform, Writable } from 'node:stream';
import { describe, expect, it, vi } from 'vitest';
import { ByteBudget } from './budget';
import { Channel } from './channel';
import { AbortedError, ClosedError, InvalidArgumentError } from './errors';
import { mapChunks, type PipelineTransform, pipeline } from './pipeline';

const bytes = (n: number, fill = 0) => new Uint8Array(n).fill(fill);
const tick = () => new Promise<void>((resolve) => setImmediate(resolve));
const EVENTS = ['data', 'end', 'error', 'close', 'finish', 'drain', 'readable'] as const;
const listeners = (stream: NodeJS.EventEmitter) =>
  EVENTS.map((event) => stream.listenerCount(event)).reduce((a, b) => a + b, 0);

/** A Node Readable of `count` chunks of `size` bytes, chunk i filled with i. */
function nodeSource(count: number, size: number, options: { failAt?: Error; at?: number } = {}) {
  let i = 0;
  return new Readable({
    highWaterMark: size,
    read() {
      if (options.failAt !== undefined && i === options.at) {
        this.destroy(options.failAt);
        return;
      }
      if (i >= count) this.push(null);
      else this.push(bytes(size, i++ & 0xff));
    },
  });
}

function webSource(count: number, size: number, cancel?: (reason: unknown) => void) {
  let i = 0;
  return new ReadableStream<Uint8Array>({
    pull(controller) {
      if (i >= count) controller.close();
      else controller.enqueue(bytes(size, i++ & 0xff));
    },
    ...(cancel ? { cancel } : {}),
  });
}

/** A function sink that collects first bytes of each chunk, yielding to the event loop every `every` chunks. */
function firstBytes(every = 0) {
  return async (source: AsyncIterable<Uint8Array>) => {
    const seen: number[] = [];
    for await (const chunk of source) {
      seen.push(chunk[0] as number);
      if (every > 0 && seen.length % every === 0) await tick();
    }
    return seen;
  };
}

const range = (n: number) => Array.from({ length: n }, (_, i) => i & 0xff);

describe('pipeline: stage kinds', () => {
  it('runs an iterable through a generator into a function sink and returns its value and metrics', async () => {
    const chunks = range(20).map((i) => bytes(100, i));
    async function* double(source: AsyncIterable<Uint8Array>) {
      for await (const chunk of source) {
        yield chunk;
        yield chunk;
      }
    }
    const result = await pipeline(chunks, double, firstBytes(), { name: 'p' });
    expect(result.value).toEqual(range(20).flatMap((i) => [i, i]));
    expect(result.metrics.map((m) => m.name)).toEqual(['p[0]', 'p[1]']);
    expect(result.metrics[0]?.bytesOut).toBe(2000);
    expect(result.metrics[1]?.bytesOut).toBe(4000);
    expect(result.stages).toEqual([]);
  });

  it('mixes a Node Readable, a TransformStream, a Node Transform and a Channel sink', async () => {
    const source = nodeSource(50, 1000);
    const web = new TransformStream<Uint8Array, Uint8Array>();
    const node = new PassThrough();
    const out = new Channel({ capacity: 5000 });
    const reading = firstBytes(3)(out);
    const result = await pipeline(source, web, node, out, { budget: 4096 });
    expect(await reading).toEqual(range(50));
    expect(out.ended).toBe(true);
    expect(source.destroyed).toBe(true);
    expect(node.destroyed).toBe(true);
    expect(web.readable.locked).toBe(false);
    expect(web.writable.locked).toBe(false);
    expect(listeners(source) + listeners(node)).toBe(0);
    expect(result.stages.map((m) => m.name)).toEqual(['pipeline.stage1', 'pipeline.stage2']);
    expect(result.stages[1]?.bytesIn).toBe(50_000);
  });

  it('reads a web ReadableStream and a function source, and writes a WritableStream and a Node Writable', async () => {
    const written: number[] = [];
    const sink = new WritableStream<Uint8Array>({
      write: (chunk) => {
        written.push(chunk[0] as number);
      },
    });
    const source = webSource(30, 64);
    await pipeline(source, sink);
    expect(written).toEqual(range(30));
    expect(source.locked).toBe(false);
    expect(sink.locked).toBe(false);

    const got: number[] = [];
    let signalSeen: AbortSignal | undefined;
    const nodeSink = new Writable({
      highWaterMark: 100,
      write(chunk: Uint8Array, _enc, cb) {
        got.push(chunk[0] as number);
        setImmediate(cb);
      },
    });
    await pipeline(async function* ({ signal }) {
      signalSeen = signal;
      for (let i = 0; i < 10; i++) yield bytes(60, i);
    }, nodeSink);
    expect(got).toEqual(range(10));
    expect(signalSeen?.aborted).toBe(false);
    expect(nodeSink.closed).toBe(true);
    expect(listeners(nodeSink)).toBe(0);
  });

  it('reads a Channel source to its end and leaves nothing subscribed to the budget', async () => {
    const source = new Channel({ capacity: 256 });
    const producing = (async () => {
      for (let i = 0; i < 40; i++) await source.send(bytes(64, i));
      source.close();
    })();
    const budget = new ByteBudget(512);
    const result = await pipeline(
      source,
      async function* (s) {
        yield* s;
      },
      firstBytes(5),
      { budget },
    );
    await producing;
    expect(result.value).toEqual(range(40));
    expect(budget.listenerCount).toBe(0);
    expect(budget.used).toBe(0);
  });

  it('rejects stages it cannot use with InvalidArgumentError', async () => {
    await expect(pipeline([bytes(1)], { budget: 1 })).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(pipeline(42 as never, firstBytes())).rejects.toThrow(/stage 0 \(a number\)/);
    await expect(pipeline([bytes(1)], 'x' as never, firstBytes())).rejects.toThrow(
      /cannot be a pipeline transform/,
    );
    await expect(pipeline([{ not: 'bytes' }] as never, firstBytes())).rejects.toBeInstanceOf(
      InvalidArgumentError,
    );
  });
});

describe('pipeline: one budget for the whole pipeline', () => {
  it('keeps every link together within the budget plus one chunk per link', async () => {
    const chunk = 4096;
    const budget = 64 * 1024;
    async function* pass(source: AsyncIterable<Uint8Array>) {
      for await (const c of source) yield c;
    }
    const result = await pipeline(nodeSource(200, chunk), pass, pass, pass, firstBytes(1), {
      budget,
    });
    expect(result.value).toEqual(range(200));
    expect(result.metrics).toHaveLength(4);
    // Filled (the slow sink made everything back up)...
    expect(result.peakBufferedBytes).toBeGreaterThanOrEqual(budget);
    // ...but bounded by one budget, not four.
    expect(result.peakBufferedBytes).toBeLessThanOrEqual(budget + 4 * chunk);
    for (const link of result.metrics) expect(link.bytesOut).toBe(200 * chunk);
  });

  it('counts objects with a size function', async () => {
    const frames = Array.from({ length: 50 }, (_, pts) => ({ pts }));
    async function* pass(source: AsyncIterable<{ pts: number }>) {
      yield* source;
    }
    const result = await pipeline(
      frames,
      pass,
      async (source: AsyncIterable<{ pts: number }>) => {
        const seen: number[] = [];
        for await (const frame of source) {
          seen.push(frame.pts);
          await tick();
        }
        return seen;
      },
      { budget: 4, size: (frame: { pts: number }) => (frame.pts >= 0 ? 1 : 0) },
    );
    expect(result.value).toEqual(frames.map((f) => f.pts));
    expect(result.peakBufferedBytes).toBeLessThanOrEqual(4 + 2);
    expect(result.peakBufferedBytes).toBeGreaterThanOrEqual(4);
  });

  it('charges Node Duplex buffers to the budget, where stream.pipeline adds up every highWaterMark', async () => {
    const chunk = 4096;
    const budget = 64 * 1024;
    const stages = 4;
    const makeStages = () =>
      Array.from({ length: stages }, () => new PassThrough({ highWaterMark: 64 * 1024 }));
    const held = (streams: PassThrough[]) =>
      streams.reduce((n, s) => n + s.writableLength + s.readableLength, 0);

    // Node's own pipeline with a slow sink: every stage fills both its buffers.
    const { pipeline: nodePipeline } = await import('node:stream/promises');
    const nodeStages = makeStages();
    let nodePeak = 0;
    await nodePipeline(
      nodeSource(400, chunk),
      ...(nodeStages as [PassThrough, PassThrough, PassThrough, PassThrough]),
      new Writable({
        write(_c, _e, cb) {
          nodePeak = Math.max(nodePeak, held(nodeStages));
          setImmediate(cb);
        },
      }),
    );

    // The same stages under one budget.
    const ourStages = makeStages();
    let ourPeak = 0;
    const result = await pipeline(
      nodeSource(400, chunk),
      ...(ourStages as [PassThrough, PassThrough, PassThrough, PassThrough]),
      new Writable({
        write(_c, _e, cb) {
          ourPeak = Math.max(ourPeak, held(ourStages));
          setImmediate(cb);
        },
      }),
      { budget },
    );
    // 5 links and 5 metered stages (4 duplexes + the sink), one chunk each.
    const bound = budget + 10 * chunk;
    expect(result.peakBufferedBytes).toBeLessThanOrEqual(bound);
    expect(ourPeak).toBeLessThanOrEqual(bound);
    expect(result.stages).toHaveLength(5);
    expect(Math.max(...result.stages.map((s) => s.peakBufferedBytes))).toBeGreaterThan(0);
    // Node: about 4 x (64 KiB writable + 64 KiB readable).
    expect(nodePeak).toBeGreaterThan(4 * budget);
    expect(nodePeak).toBeGreaterThan(3 * bound);
  });
});

describe('pipeline: errors and aborts propagate both ways', () => {
  it('a throwing generator destroys a Node source and aborts a web sink with its error', async () => {
    const boom = new Error('boom');
    const source = nodeSource(1000, 100);
    let finallyRan = false;
    async function* failing(s: AsyncIterable<Uint8Array>) {
      try {
        let n = 0;
        for await (const chunk of s) {
          if (++n === 5) throw boom;
          yield chunk;
        }
      } finally {
        finallyRan = true;
      }
    }
    const abort = vi.fn();
    const sink = new WritableStream<Uint8Array>({ abort });
    await expect(pipeline(source, failing, sink, { budget: 1000 })).rejects.toBe(boom);
    expect(finallyRan).toBe(true);
    expect(source.destroyed).toBe(true);
    expect(source.errored).toBe(boom);
    expect(listeners(source)).toBe(0);
    expect(abort).toHaveBeenCalledWith(boom);
    expect(sink.locked).toBe(false);
  });

  it('a Node source error reaches a generator, a TransformStream, a Duplex and a Node sink', async () => {
    const boom = new Error('disk gone');
    const source = nodeSource(100, 50, { failAt: boom, at: 10 });
    let finallyRan = false;
    async function* gen(s: AsyncIterable<Uint8Array>) {
      try {
        yield* s;
      } finally {
        finallyRan = true;
      }
    }
    const web = new TransformStream<Uint8Array, Uint8Array>();
    const duplex = new PassThrough();
    const sink = new Writable({
      write(_c, _e, cb) {
        setImmediate(cb);
      },
    });
    await expect(pipeline(source, gen, web, duplex, sink)).rejects.toBe(boom);
    expect(finallyRan).toBe(true);
    expect(web.readable.locked || web.writable.locked).toBe(false);
    // The TransformStream was aborted with the error: it is errored now.
    await expect(web.writable.getWriter().closed).rejects.toBe(boom);
    expect(duplex.destroyed && sink.destroyed).toBe(true);
    expect(duplex.errored).toBe(boom);
    expect(sink.errored).toBe(boom);
    expect(sink.closed).toBe(true);
    expect(listeners(source) + listeners(duplex) + listeners(sink)).toBe(0);
  });

  it('a web source error aborts a Channel sink, whose reader sees the cause', async () => {
    const boom = new Error('network');
    let i = 0;
    const source = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (i++ === 5) controller.error(boom);
        else controller.enqueue(bytes(10));
      },
    });
    const out = new Channel({ capacity: 1000 });
    await expect(pipeline(source, out)).rejects.toBe(boom);
    expect(out.aborted).toBe(true);
    await expect(out.read()).rejects.toSatisfy(
      (e: unknown) => AbortedError.isInstance(e) && (e as Error).cause === boom,
    );
    expect(source.locked).toBe(false);
  });

  it('a failing web sink cancels a web source with the error', async () => {
    const boom = new Error('write failed');
    const cancel = vi.fn();
    const source = webSource(1_000_000, 10, cancel);
    let writes = 0;
    const sink = new WritableStream<Uint8Array>({
      write() {
        if (++writes === 3) throw boom;
      },
    });
    await expect(pipeline(source, sink)).rejects.toBe(boom);
    expect(cancel).toHaveBeenCalledWith(boom);
    expect(source.locked).toBe(false);
  });

  it('a failing Node sink destroys a Node Duplex and a Node source', async () => {
    const boom = new Error('EPIPE');
    const source = nodeSource(1000, 100);
    const duplex = new PassThrough();
    let writes = 0;
    const sink = new Writable({
      write(_c, _e, cb) {
        cb(++writes === 4 ? boom : null);
      },
    });
    await expect(pipeline(source, duplex, sink, { budget: 1000 })).rejects.toBe(boom);
    expect(source.destroyed && duplex.destroyed && sink.destroyed).toBe(true);
    expect(duplex.errored).toBe(boom);
    expect(listeners(source) + listeners(duplex) + listeners(sink)).toBe(0);
  });

  it('a function sink that throws stops a generator source, running its finally', async () => {
    const boom = new Error('parse error');
    let finallyRan = false;
    async function* source() {
      try {
        for (let i = 0; ; i++) yield bytes(10, i);
      } finally {
        finallyRan = true;
      }
    }
    await expect(
      pipeline(source(), async (s: AsyncIterable<Uint8Array>) => {
        for await (const chunk of s) if (chunk[0] === 3) throw boom;
      }),
    ).rejects.toBe(boom);
    expect(finallyRan).toBe(true);
  });

  it('a TransformStream that throws and a Node Duplex that errors each fail the pipeline', async () => {
    const boom = new Error('bad frame');
    const cancel = vi.fn();
    let n = 0;
    const web = new TransformStream<Uint8Array, Uint8Array>({
      transform(chunk, controller) {
        if (++n === 3) throw boom;
        controller.enqueue(chunk);
      },
    });
    await expect(pipeline(webSource(100, 10, cancel), web, firstBytes())).rejects.toBe(boom);
    expect(cancel).toHaveBeenCalledWith(boom);

    const boom2 = new Error('zlib: bad header');
    let m = 0;
    const duplex = new Transform({
      transform(chunk, _e, cb) {
        cb(++m === 3 ? boom2 : null, chunk);
      },
    });
    const source = nodeSource(100, 10);
    await expect(pipeline(source, duplex, firstBytes(), { budget: 100 })).rejects.toBe(boom2);
    expect(source.destroyed).toBe(true);
    expect(source.errored).toBe(boom2);
    expect(listeners(source) + listeners(duplex)).toBe(0);
  });

  it('an aborted Channel source rejects with AbortedError; a cancelled Channel sink with ClosedError', async () => {
    const source = new Channel({ capacity: 100 });
    source.write(bytes(10));
    const running = pipeline(source, firstBytes());
    source.abort(new Error('producer died'));
    await expect(running).rejects.toSatisfy(
      (e: unknown) => AbortedError.isInstance(e) && /producer died/.test((e as Error).message),
    );

    const out = new Channel({ capacity: 10 });
    let finallyRan = false;
    async function* endless() {
      try {
        for (;;) yield bytes(10);
      } finally {
        finallyRan = true;
      }
    }
    const result = pipeline(endless(), out);
    await out.read();
    out.cancel('viewer left');
    await expect(result).rejects.toBeInstanceOf(ClosedError);
    expect(finallyRan).toBe(true);
  });

  it('options.signal rejects with AbortedError (cause: the reason) and tears every stage down', async () => {
    const controller = new AbortController();
    const source = nodeSource(1_000_000, 100);
    const duplex = new PassThrough();
    const abort = vi.fn();
    const sink = new WritableStream<Uint8Array>({
      write: () => new Promise((resolve) => setTimeout(resolve, 1)),
      abort,
    });
    const running = pipeline(source, duplex, sink, { signal: controller.signal });
    for (let i = 0; i < 5; i++) await tick();
    const reason = new Error('shutdown');
    controller.abort(reason);
    const error = await running.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(AbortedError.isInstance(error)).toBe(true);
    expect((error as Error).cause).toBe(reason);
    expect(source.destroyed && duplex.destroyed).toBe(true);
    // Its abort() runs once the write in flight settles.
    await vi.waitFor(() => expect(abort).toHaveBeenCalledWith(error));
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(0);
    expect(listeners(source) + listeners(duplex)).toBe(0);

    // Already aborted: nothing runs, everything is released.
    const pre = nodeSource(10, 10);
    let started = false;
    await expect(
      pipeline(
        pre,
        async () => {
          started = true;
        },
        { signal: AbortSignal.abort('too late') },
      ),
    ).rejects.toSatisfy(
      (e: unknown) => AbortedError.isInstance(e) && (e as Error).cause === 'too late',
    );
    expect(started).toBe(false);
    expect(pre.destroyed).toBe(true);
  });

  it('a sink that returns early is not an error: the stages before it stop quietly', async () => {
    const source = nodeSource(1_000_000, 100);
    let finallyRan = false;
    async function* gen(s: AsyncIterable<Uint8Array>) {
      try {
        yield* s;
      } finally {
        finallyRan = true;
      }
    }
    const budget = new ByteBudget(1000);
    const result = await pipeline(
      source,
      gen,
      async (s: AsyncIterable<Uint8Array>) => {
        for await (const chunk of s) if (chunk[0] === 9) return 'found';
        return 'missing';
      },
      { budget },
    );
    expect(result.value).toBe('found');
    expect(finallyRan).toBe(true);
    expect(source.destroyed).toBe(true);
    expect(source.errored).toBe(null);
    expect(listeners(source)).toBe(0);
    expect(budget.used).toBe(0);
    expect(budget.listenerCount).toBe(0);
  });

  it('a transform that stops early ends the output and cancels a web source without a reason', async () => {
    const cancel = vi.fn();
    async function* firstThree(s: AsyncIterable<Uint8Array>) {
      let n = 0;
      for await (const chunk of s) {
        yield chunk;
        if (++n === 3) return;
      }
    }
    const result = await pipeline(webSource(1_000_000, 10, cancel), firstThree, firstBytes());
    expect(result.value).toEqual([0, 1, 2]);
    expect(cancel).toHaveBeenCalledWith(undefined);
  });

  it('stages that end their output early (a Channel source, a TransformStream, a Duplex) stop what feeds them', async () => {
    // A sink that leaves: the Channel source is cancelled, so its producer learns it.
    const source = new Channel({ capacity: 100 });
    const producing = (async () => {
      for (let i = 0; ; i++) {
        await source.send(bytes(10, i));
        await tick();
      }
    })();
    const r1 = await pipeline(source, async (s: AsyncIterable<Uint8Array>) => {
      for await (const chunk of s) if (chunk[0] === 4) return chunk[0];
    });
    expect(r1.value).toBe(4);
    await expect(producing).rejects.toBeInstanceOf(ClosedError);

    // A TransformStream that terminates after two chunks.
    const cancel = vi.fn();
    let n = 0;
    const two = new TransformStream<Uint8Array, Uint8Array>({
      transform(chunk, controller) {
        controller.enqueue(chunk);
        if (++n === 2) controller.terminate();
      },
    });
    const r2 = await pipeline(webSource(1_000_000, 10, cancel), two, firstBytes());
    expect(r2.value).toEqual([0, 1]);
    expect(cancel).toHaveBeenCalledTimes(1);

    // A Node Transform that ends its readable side after three chunks.
    let m = 0;
    const three = new Transform({
      transform(chunk, _e, cb) {
        if (++m <= 3) this.push(chunk);
        if (m === 3) this.push(null);
        cb();
      },
    });
    const nodeIn = nodeSource(1_000_000, 10);
    const r3 = await pipeline(nodeIn, three, firstBytes(), { budget: 100 });
    expect(r3.value).toEqual([0, 1, 2]);
    expect(nodeIn.destroyed && three.destroyed).toBe(true);
    expect(nodeIn.errored).toBe(null);
    expect(listeners(nodeIn) + listeners(three)).toBe(0);
  });
});

describe('pipeline fast paths: mapChunks, synchronous sources, batches', () => {
  const chunk = (n: number, fill: number) => new Uint8Array(n).fill(fill);

  it('runs mapChunks stages inside the link before them, in order, dropping undefined', async () => {
    const seen: number[] = [];
    const result = await pipeline(
      function* () {
        for (let i = 0; i < 10; i++) yield chunk(4, i);
      },
      mapChunks((c: Uint8Array) => (c[0] === 3 ? undefined : c)),
      mapChunks((c: Uint8Array) => {
        seen.push(c[0] as number);
        return c.map((b) => b * 2);
      }),
      async (input) => {
        const out: number[] = [];
        for await (const c of input) out.push(c[0] as number);
        return out;
      },
    );
    expect(seen).toEqual([0, 1, 2, 4, 5, 6, 7, 8, 9]);
    expect(result.value).toEqual([0, 2, 4, 8, 10, 12, 14, 16, 18]);
    // Fused: one link between the source and the sink.
    expect(result.metrics).toHaveLength(1);
    expect(result.metrics[0]).toMatchObject({ chunksIn: 9, bytesIn: 36, chunksOut: 9 });
  });

  it('keeps backpressure per chunk through a synchronous source and a batched sink', async () => {
    const budget = new ByteBudget(1000);
    let produced = 0;
    let consumed = 0;
    let maxInFlight = 0;
    const result = await pipeline(
      function* () {
        for (let i = 0; i < 200; i++) {
          produced += 100;
          maxInFlight = Math.max(maxInFlight, produced - consumed);
          yield chunk(100, i);
        }
      },
      mapChunks((c: Uint8Array) => c),
      async (input) => {
        const sizes: number[] = [];
        for await (const batch of input.batches()) {
          sizes.push(batch.length);
          await new Promise((r) => setImmediate(r));
          for (const c of batch) consumed += c.byteLength;
        }
        return sizes;
      },
      { budget },
    );
    expect(result.value.reduce((a, b) => a + b, 0)).toBe(200);
    // Batches, not one wake-up per chunk: the source filled the budget between reads.
    expect(Math.max(...result.value)).toBeGreaterThanOrEqual(10);
    expect(result.peakBufferedBytes).toBeLessThanOrEqual(1000 + 100);
    expect(maxInFlight).toBeLessThanOrEqual(1000 + 2 * 100);
    expect(budget.used).toBe(0);
  });

  it('fails with the error a mapChunks function throws, and stops the source', async () => {
    const boom = new Error('boom');
    let finallyRan = false;
    await expect(
      pipeline(
        function* () {
          try {
            for (let i = 0; ; i++) yield chunk(1, i);
          } finally {
            finallyRan = true;
          }
        },
        mapChunks((c: Uint8Array) => {
          if (c[0] === 5) throw boom;
          return c;
        }),
        async (input) => {
          for await (const _ of input.batches()) await new Promise((r) => setImmediate(r));
        },
      ),
    ).rejects.toBe(boom);
    expect(finallyRan).toBe(true);
  });

  it('rejects a mapChunks function that returns a promise, and a non-function', async () => {
    await expect(
      pipeline(
        [chunk(1, 1)],
        mapChunks(async (c: Uint8Array) => c) as unknown as PipelineTransform<
          Uint8Array,
          Uint8Array
        >,
        async (input) => {
          for await (const _ of input) {
          }
        },
      ),
    ).rejects.toThrow(/must be synchronous/);
    expect(() => mapChunks(42 as never)).toThrow(InvalidArgumentError);
    // Not a source or a sink.
    await expect(pipeline(mapChunks((c) => c) as never, async () => {})).rejects.toBeInstanceOf(
      InvalidArgumentError,
    );
  });

  it('a batched sink that stops early stops the stages before it quietly', async () => {
    let pulled = 0;
    const result = await pipeline(
      function* () {
        for (;;) {
          pulled++;
          yield chunk(10, 0);
        }
      },
      async (input) => {
        for await (const batch of input.batches()) return batch.length;
        return 0;
      },
      { budget: 100 },
    );
    expect(result.value).toBeGreaterThan(0);
    expect(pulled).toBeLessThan(100);
  });
});
