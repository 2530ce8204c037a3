import { PassThrough, Readable, Transform, Writable } from 'node:stream';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ByteBudget } from './budget';
import { mapChunks, type PipelineTransform, pipeline, type StageInput } from './pipeline';

const tick = () => new Promise<void>((resolve) => setImmediate(resolve));
const ticks = async (n: number) => {
  for (let i = 0; i < n; i++) await tick();
};

type Kind = 'generator' | 'duplex' | 'web' | 'map';

/** An identity stage of the given kind; `delays` slow a generator down per chunk. */
function stage(kind: Kind, delays: number[]): PipelineTransform<Uint8Array, Uint8Array> {
  if (kind === 'duplex') return new PassThrough({ highWaterMark: 1024 });
  if (kind === 'web') return new TransformStream<Uint8Array, Uint8Array>();
  if (kind === 'map') return mapChunks((chunk: Uint8Array) => chunk);
  return async function* (source: AsyncIterable<Uint8Array>) {
    let i = 0;
    for await (const chunk of source) {
      await ticks(delays[i++ % delays.length] ?? 0);
      yield chunk;
    }
  };
}

function concat(chunks: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.byteLength, 0));
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.byteLength;
  }
  return out;
}

describe('pipeline property: one budget bounds every link, output equals input', () => {
  it('holds for random chunk sizes, delays, budgets and stage kinds', async () => {
    await fc.assert(
      fc.asyncProperty(
        // Chunks from 1 byte to the budget's size and beyond (budgets go down to 1 byte).
        fc.array(fc.integer({ min: 1, max: 300 }), { minLength: 1, maxLength: 200, size: 'max' }),
        fc.integer({ min: 1, max: 8192 }),
        // The consumer is usually the slower side, so that buffers fill up.
        fc.array(fc.nat(1), { minLength: 1, maxLength: 20 }),
        fc.array(fc.nat(4), { minLength: 1, maxLength: 20 }),
        fc.array(fc.constantFrom<Kind>('generator', 'duplex', 'web', 'map'), { maxLength: 4 }),
        fc.array(fc.nat(2), { minLength: 1, maxLength: 10 }),
        // A consumer that starts late lets every buffer fill to its bound first.
        fc.nat(40),
        // The fast paths: a synchronous source the pipeline drains in a loop, a sink reading batches.
        fc.boolean(),
        fc.boolean(),
        async (
          sizes,
          limit,
          producerDelays,
          consumerDelays,
          kinds,
          stageDelays,
          lateStart,
          syncSource,
          batched,
        ) => {
          let seed = sizes.length;
          const input = sizes.map((n) =>
            Uint8Array.from({ length: n }, () => {
              seed = (seed * 1103515245 + 12345) & 0x7fffffff;
              return seed & 0xff;
            }),
          );
          // What the pipeline really holds, whatever its own accounting says.
          let produced = 0;
          let consumed = 0;
          let maxInFlight = 0;
          async function* asyncSource() {
            for (let i = 0; i < input.length; i++) {
              await ticks(producerDelays[i % producerDelays.length] ?? 0);
              const chunk = input[i] as Uint8Array;
              produced += chunk.byteLength;
              maxInFlight = Math.max(maxInFlight, produced - consumed);
              yield chunk;
            }
          }
          function* syncSourceFn() {
            for (const chunk of input) {
              produced += chunk.byteLength;
              maxInFlight = Math.max(maxInFlight, produced - consumed);
              yield chunk;
            }
          }
          const source = syncSource ? syncSourceFn : asyncSource;
          const sink = async (chunks: StageInput<Uint8Array>) => {
            const got: Uint8Array[] = [];
            await ticks(lateStart);
            if (batched) {
              for await (const batch of chunks.batches()) {
                expect(batch.length).toBeGreaterThan(0);
                for (const chunk of batch) {
                  got.push(chunk.slice());
                  consumed += chunk.byteLength;
                }
                await ticks(consumerDelays[got.length % consumerDelays.length] ?? 0);
              }
              return got;
            }
            for await (const chunk of chunks) {
              // Copy: a Node stream may hand out views the producer reuses.
              got.push(chunk.slice());
              consumed += chunk.byteLength;
              await ticks(consumerDelays[got.length % consumerDelays.length] ?? 0);
            }
            return got;
          };
          const budget = new ByteBudget(limit);
          const stages = kinds.map((kind) => stage(kind, stageDelays));
          const result = await pipeline(
            ...([source, ...stages, sink] as [typeof source, typeof sink]),
            { budget },
          );
          const output = concat(result.value);
          expect(output).toEqual(concat(input));
          const maxChunk = Math.max(...sizes);
          // Every link and every metered stage (Node duplexes and web
          // transforms) may hold one chunk beyond the budget.
          const holders = result.metrics.length + result.stages.length;
          expect(result.peakBufferedBytes).toBeLessThanOrEqual(limit + holders * maxChunk);
          // Plus one chunk in hand per stage (the source's, each generator's,
          // a web transform's output queue) and the one just produced.
          expect(maxInFlight).toBeLessThanOrEqual(limit + (holders + stages.length + 2) * maxChunk);
          expect(budget.used).toBe(0);
          expect(budget.listenerCount).toBe(0);
        },
      ),
      { numRuns: 60, endOnFailure: true },
    );
  });

  it('a failure anywhere rejects with that error and releases every stage', async () => {
    type SourceKind = 'generator' | 'node' | 'web';
    type SinkKind = 'function' | 'node' | 'web';
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom<SourceKind>('generator', 'node', 'web'),
        fc.array(fc.constantFrom<Kind>('generator', 'duplex', 'web', 'map'), { maxLength: 3 }),
        fc.constantFrom<SinkKind>('function', 'node', 'web'),
        fc.nat(),
        fc.integer({ min: 0, max: 39 }),
        fc.integer({ min: 1, max: 2000 }),
        async (sourceKind, kinds, sinkKind, where, failAt, limit) => {
          const boom = new Error('boom');
          const failing = where % (kinds.length + 2); // 0: source, last: sink
          const count = 40;
          const nodes: (Readable | Writable)[] = [];
          const webs: (ReadableStream | WritableStream)[] = [];
          let generators = 0;
          let finallies = 0;
          const tracked = <T>(gen: () => AsyncGenerator<T>) =>
            async function* () {
              generators++;
              try {
                yield* gen();
              } finally {
                finallies++;
              }
            };
          const fails = (position: number, i: number) => position === failing && i === failAt;

          let source: unknown;
          if (sourceKind === 'generator') {
            source = tracked(async function* () {
              for (let i = 0; i < count; i++) {
                if (fails(0, i)) throw boom;
                yield new Uint8Array(100).fill(i);
              }
            })();
          } else if (sourceKind === 'node') {
            let i = 0;
            const r = new Readable({
              highWaterMark: 100,
              read() {
                if (fails(0, i)) this.destroy(boom);
                else this.push(i < count ? new Uint8Array(100).fill(i++) : null);
              },
            });
            nodes.push(r);
            source = r;
          } else {
            let i = 0;
            const r = new ReadableStream<Uint8Array>({
              pull(controller) {
                if (fails(0, i)) controller.error(boom);
                else if (i < count) controller.enqueue(new Uint8Array(100).fill(i++));
                else controller.close();
              },
            });
            webs.push(r);
            source = r;
          }
          const transforms = kinds.map((kind, k) => {
            const position = k + 1;
            let i = 0;
            if (kind === 'duplex') {
              const t = new Transform({
                transform(chunk, _e, cb) {
                  cb(fails(position, i++) ? boom : null, chunk);
                },
              });
              nodes.push(t);
              return t;
            }
            if (kind === 'map') {
              return mapChunks((chunk: Uint8Array) => {
                if (fails(position, i++)) throw boom;
                return chunk;
              });
            }
            if (kind === 'web') {
              const t = new TransformStream<Uint8Array, Uint8Array>({
                transform(chunk, controller) {
                  if (fails(position, i++)) throw boom;
                  controller.enqueue(chunk);
                },
              });
              webs.push(t.readable, t.writable);
              return t;
            }
            return (input: AsyncIterable<Uint8Array>) =>
              tracked(async function* () {
                for await (const chunk of input) {
                  if (fails(position, i++)) throw boom;
                  yield chunk;
                }
              })();
          });
          const last = kinds.length + 1;
          let sink: unknown;
          let i = 0;
          if (sinkKind === 'function') {
            sink = async (input: AsyncIterable<Uint8Array>) => {
              for await (const _ of input) {
                if (fails(last, i++)) throw boom;
                await tick();
              }
            };
          } else if (sinkKind === 'node') {
            const w = new Writable({
              write(_c, _e, cb) {
                setImmediate(() => cb(fails(last, i++) ? boom : null));
              },
            });
            nodes.push(w);
            sink = w;
          } else {
            const w = new WritableStream<Uint8Array>({
              async write() {
                await tick();
                if (fails(last, i++)) throw boom;
              },
            });
            webs.push(w);
            sink = w;
          }
          const budget = new ByteBudget(limit);
          const stages = [source, ...transforms, sink] as Parameters<typeof pipeline>;
          await expect(pipeline(...stages, { budget })).rejects.toBe(boom);
          for (const stream of nodes) {
            expect(stream.destroyed).toBe(true);
            for (const event of ['data', 'end', 'error', 'close', 'finish', 'drain']) {
              expect(stream.listenerCount(event)).toBe(0);
            }
          }
          for (const stream of webs) expect(stream.locked).toBe(false);
          expect(finallies).toBe(generators);
          expect(budget.used).toBe(0);
          expect(budget.listenerCount).toBe(0);
        },
      ),
      { numRuns: 80, endOnFailure: true },
    );
  });
});
