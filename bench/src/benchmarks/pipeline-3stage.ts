import { Buffer } from 'node:buffer';
import { Readable, Transform, Writable } from 'node:stream';
import { pipeline as nodePipeline } from 'node:stream/promises';
import { Channel, mapChunks, pipeline } from 'backpressure-stream';
import { Minipass } from 'minipass';
import {
  Readable as StreamxReadable,
  Transform as StreamxTransform,
  Writable as StreamxWritable,
  pipelinePromise as streamxPipeline,
} from 'streamx';
import { defineBenchmark } from '../harness/define';
import type { BenchCase } from '../harness/types';
import { KiB, MiB, randomBytes } from './util';

/** Bytes one operation moves through the three stages. */
const TOTAL = 16 * MiB;
/** Distinct pre-allocated chunks per size, reused round-robin. */
const POOL = 16;

const SIZES = [
  { label: '1 KiB', size: KiB },
  { label: '64 KiB', size: 64 * KiB },
] as const;

type Label = (typeof SIZES)[number]['label'];

interface State {
  chunks: Record<Label, Buffer[]>;
}

/** The same source for everyone: `TOTAL / size` chunks from the pool, in order. */
function count(size: number): number {
  return TOTAL / size;
}

function checked(label: string, bytes: number): number {
  if (bytes !== TOTAL)
    throw new Error(`pipeline-3stage: ${label} moved ${bytes} bytes, not ${TOTAL}`);
  return bytes;
}

/** Ours: `pipeline()` with an async generator source and pass-through, and an async function sink. */
async function oursGenerators(chunks: readonly Buffer[]): Promise<number> {
  const n = count((chunks[0] as Buffer).length);
  const { value } = await pipeline(
    async function* source() {
      for (let i = 0; i < n; i++) yield chunks[i % POOL] as Buffer;
    },
    async function* pass(input: AsyncIterable<Buffer>) {
      for await (const chunk of input) yield chunk;
    },
    async (input: AsyncIterable<Buffer>) => {
      let bytes = 0;
      for await (const chunk of input) bytes += chunk.byteLength;
      return bytes;
    },
  );
  return value;
}

/**
 * Ours, the fast path: a generator function source (synchronous: the
 * pipeline drains it in a loop while the link has room), a `mapChunks`
 * pass-through (called once per chunk, no await per chunk), and a sink that
 * reads its input in batches (one await per batch, every chunk still counted).
 */
async function oursBatched(chunks: readonly Buffer[]): Promise<number> {
  const n = count((chunks[0] as Buffer).length);
  const { value } = await pipeline(
    function* source() {
      for (let i = 0; i < n; i++) yield chunks[i % POOL] as Buffer;
    },
    mapChunks((chunk: Buffer) => chunk),
    async (input) => {
      let bytes = 0;
      for await (const batch of input.batches()) {
        for (const chunk of batch) bytes += chunk.byteLength;
      }
      return bytes;
    },
  );
  return value;
}

/** Ours, by hand: two bounded `Channel`s between three async loops, each honouring `write()`'s `false`. */
async function oursChannels(chunks: readonly Buffer[]): Promise<number> {
  const n = count((chunks[0] as Buffer).length);
  const a = new Channel<Buffer>();
  const b = new Channel<Buffer>();
  const produce = async () => {
    for (let i = 0; i < n; i++) {
      if (!a.write(chunks[i % POOL] as Buffer)) await a.ready();
    }
    a.close();
  };
  const pass = async () => {
    for await (const chunk of a) {
      if (!b.write(chunk)) await b.ready();
    }
    b.close();
  };
  const consume = async () => {
    let bytes = 0;
    for await (const chunk of b) bytes += chunk.byteLength;
    return bytes;
  };
  const [, , bytes] = await Promise.all([produce(), pass(), consume()]);
  return bytes;
}

/** The three Node stages: a Readable pushing until `push()` says stop, a pass-through Transform, a counting Writable. */
function nodeStages(chunks: readonly Buffer[]): {
  source: Readable;
  pass: Transform;
  sink: Writable;
  bytes: () => number;
} {
  const n = count((chunks[0] as Buffer).length);
  let i = 0;
  let bytes = 0;
  return {
    source: new Readable({
      read() {
        while (i < n) {
          if (!this.push(chunks[i++ % POOL])) return;
        }
        this.push(null);
      },
    }),
    pass: new Transform({
      transform(chunk: Buffer, _encoding, callback) {
        callback(null, chunk);
      },
    }),
    sink: new Writable({
      write(chunk: Buffer, _encoding, callback) {
        bytes += chunk.byteLength;
        callback();
      },
    }),
    bytes: () => bytes,
  };
}

async function node(chunks: readonly Buffer[]): Promise<number> {
  const stages = nodeStages(chunks);
  await nodePipeline(stages.source, stages.pass, stages.sink);
  return stages.bytes();
}

/** Ours driving the very same Node stages (what `pipeline(createReadStream, createGzip(), …)` does). */
async function oursNodeStages(chunks: readonly Buffer[]): Promise<number> {
  const stages = nodeStages(chunks);
  await pipeline(stages.source, stages.pass, stages.sink);
  return stages.bytes();
}

async function web(chunks: readonly Buffer[]): Promise<number> {
  const n = count((chunks[0] as Buffer).length);
  let i = 0;
  let bytes = 0;
  await new ReadableStream<Buffer>({
    pull(controller) {
      while ((controller.desiredSize ?? 0) > 0 && i < n) controller.enqueue(chunks[i++ % POOL]);
      if (i >= n) controller.close();
    },
  })
    .pipeThrough(
      new TransformStream<Buffer, Buffer>({
        transform(chunk, controller) {
          controller.enqueue(chunk);
        },
      }),
    )
    .pipeTo(
      new WritableStream<Buffer>({
        write(chunk) {
          bytes += chunk.byteLength;
        },
      }),
    );
  return bytes;
}

async function streamx(chunks: readonly Buffer[]): Promise<number> {
  const n = count((chunks[0] as Buffer).length);
  let i = 0;
  let bytes = 0;
  await streamxPipeline(
    new StreamxReadable({
      read(callback) {
        while (i < n) {
          if (!this.push(chunks[i++ % POOL])) break;
        }
        if (i >= n) this.push(null);
        callback(null);
      },
    }),
    new StreamxTransform({
      transform(chunk, callback) {
        callback(null, chunk);
      },
    }),
    new StreamxWritable({
      write(chunk, callback) {
        bytes += (chunk as Buffer).byteLength;
        callback(null);
      },
    }),
  );
  return bytes;
}

/** minipass's pass-through stage: a Minipass whose `write` hands each chunk on unchanged. */
class PassThrough extends Minipass<Buffer, Buffer> {
  // biome-ignore lint/suspicious/noExplicitAny: Minipass#write has many overloads; this forwards them all
  override write(chunk: any, ...rest: any[]): boolean {
    return super.write(chunk, ...rest);
  }
}

async function minipass(chunks: readonly Buffer[]): Promise<number> {
  const n = count((chunks[0] as Buffer).length);
  const source = new Minipass<Buffer, Buffer>();
  const sink = new Minipass<Buffer, Buffer>();
  let bytes = 0;
  sink.on('data', (chunk: Buffer) => {
    bytes += chunk.byteLength;
  });
  const done = sink.promise();
  source.pipe(new PassThrough()).pipe(sink);
  for (let i = 0; i < n; i++) {
    if (!source.write(chunks[i % POOL] as Buffer)) {
      await new Promise((resolve) => source.once('drain', resolve));
    }
  }
  source.end();
  await done;
  return bytes;
}

type Contender = {
  name: string;
  role: BenchCase<State>['role'];
  description: string;
  move: (chunks: readonly Buffer[]) => Promise<number>;
};

/** Our fast path's name: the case the targets are on. */
const FAST = 'pipeline(), mapChunks + batches';

const CONTENDERS: readonly Contender[] = [
  {
    name: FAST,
    role: 'ours',
    description:
      '`pipeline(function* source, mapChunks((chunk) => chunk), async (input) => { for await (const batch of input.batches()) for (const chunk of batch) count })`: the fast path, one byte budget (default 1 MiB)',
    move: oursBatched,
  },
  {
    name: 'pipeline(), generators',
    role: 'ours',
    description:
      '`pipeline(async function* source, async function* pass, async (input) => count)`: one byte budget (default 1 MiB) for the whole pipeline',
    move: oursGenerators,
  },
  {
    name: 'Channels, hand-wired',
    role: 'ours',
    description:
      'three async loops joined by two `Channel`s (default 64 KiB each): `if (!ch.write(chunk)) await ch.ready()`, `for await (const chunk of ch)`',
    move: oursChannels,
  },
  {
    name: 'pipeline(), Node stages',
    role: 'ours',
    description:
      "our `pipeline()` driving the Node stages of the next row, as in the gzip guide's scenario",
    move: oursNodeStages,
  },
  {
    name: 'Node stream.pipeline',
    role: 'peer',
    description:
      '`stream/promises` `pipeline(Readable, Transform, Writable)`, byte mode, default high-water marks; the source pushes until `push()` returns `false`',
    move: node,
  },
  {
    name: 'web streams',
    role: 'peer',
    description:
      '`ReadableStream` (pull, enqueues while `desiredSize > 0`) `.pipeThrough(TransformStream)` `.pipeTo(WritableStream)`, default strategies',
    move: web,
  },
  {
    name: 'streamx',
    role: 'peer',
    description:
      'streamx 2.28 `pipelinePromise(Readable, Transform, Writable)`, default high-water marks; `_read` pushes until `push()` returns `false`',
    move: streamx,
  },
  {
    name: 'minipass',
    role: 'peer',
    description:
      "minipass 7.1: source `Minipass` written in a loop that awaits `'drain'` when `write()` returns `false`, `.pipe()`d through a pass-through subclass into a sink `Minipass` counting `'data'`",
    move: minipass,
  },
];

function casesFor(label: Label): BenchCase<State>[] {
  return CONTENDERS.map((c) => ({
    name: `${c.name} ${label}`,
    role: c.role,
    group: `${label} chunks`,
    reference: `Node stream.pipeline ${label}`,
    description: c.description,
    run: async (s: State) => checked(`${c.name} ${label}`, await c.move(s.chunks[label])),
  }));
}

/**
 * The same three stages (source, pass-through, counting sink) built with
 * our pipeline and channels, Node streams, web streams, streamx and minipass.
 */
export const pipeline3stage = defineBenchmark<State>({
  name: 'pipeline-3stage',
  summary: 'a 3-stage byte pipeline: ours vs Node stream.pipeline, web streams, streamx, minipass',
  description:
    'Three stages defined the same way for every library: a source emitting pre-allocated chunks (16 distinct ' +
    'Buffers of random bytes, reused round-robin), a pass-through transform that hands each chunk on unchanged, and a ' +
    'sink that counts bytes. One operation builds the pipeline and moves 16 MiB through it (16,384 chunks of 1 KiB, or ' +
    '256 of 64 KiB); the count is checked. Every library runs with its defaults: each would be tuned differently, so ' +
    'none is. Ours is `pipeline()` on its fast path (a `function*` source it drains synchronously while the link has ' +
    'room, a `mapChunks` pass-through called once per chunk and fused into the link, a sink reading `input.batches()` ' +
    'and counting every chunk: the targets are on this one), `pipeline()` over async generators (one promise hop per ' +
    'chunk per stage), two `Channel`s wired by hand, and `pipeline()` over the very Node stages of the Node row. MiB/s.',
  unit: 'MiB/s',
  bytesPerOp: TOTAL,
  reference: 'Node stream.pipeline 1 KiB',
  moduleUrl: import.meta.url,
  setup: () => {
    const chunks = {} as Record<Label, Buffer[]>;
    for (const { label, size } of SIZES) {
      chunks[label] = Array.from({ length: POOL }, () => Buffer.from(randomBytes(size).buffer));
    }
    return { chunks };
  },
  cases: SIZES.flatMap(({ label }) => casesFor(label)),
  // The targets are on our fast path (same three stages, same per-chunk work);
  // the generator and hand-wired rows stay for comparison.
  targets: [
    { kind: 'ratio', case: `${FAST} 1 KiB`, vs: 'Node stream.pipeline 1 KiB', atLeast: 1.2 },
    { kind: 'ratio', case: `${FAST} 64 KiB`, vs: 'Node stream.pipeline 64 KiB', atLeast: 1.0 },
    { kind: 'ratio', case: `${FAST} 1 KiB`, vs: 'web streams 1 KiB', atLeast: 5 },
    { kind: 'ratio', case: `${FAST} 64 KiB`, vs: 'web streams 64 KiB', atLeast: 5 },
  ],
});
