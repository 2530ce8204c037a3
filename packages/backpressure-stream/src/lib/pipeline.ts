import { ByteBudget } from './budget';
import { Channel, type ChannelOptions } from './channel';
import { AbortedError, ClosedError, InvalidArgumentError } from './errors';
import type { StageMetrics } from './metrics';
import {
  isNodeReadable,
  isNodeWritable,
  type NodeDuplexLike,
  type NodeReadableLike,
  type NodeWritableLike,
  runNodeStage,
} from './node-stage';
import { byteSize } from './size';
import { noop, quietStop, raceSignal, StageMeter, stopReason, throwIfFailed } from './stage-util';
import { runWebReadable, runWebWritable } from './web-stage';

/**
 * What every function stage of a {@link pipeline} is given besides its
 * input.
 *
 * @example
 * ```ts
 * import type { StageContext } from 'backpressure-stream';
 * async function* upper(source: AsyncIterable<Uint8Array>, { signal }: StageContext) {
 *   for await (const chunk of source) yield await transcode(chunk, { signal });
 * }
 * ```
 */
export interface StageContext {
  /**
   * Aborts when the stage must stop: the pipeline failed or was aborted
   * (the reason is the pipeline's error), or the stages after it stopped
   * reading (the reason is a {@link ClosedError}). Pass it to anything the
   * stage awaits that is not its `source`, or the pipeline cannot settle
   * until that returns.
   */
  readonly signal: AbortSignal;
}

/**
 * What a function transform or sink of a {@link pipeline} reads: an async
 * iterable of the chunks (one `await` per chunk), which can also be read in
 * batches with `batches()`: one array of everything the link before the
 * stage holds per `await`, so a stage that keeps up wakes once per batch
 * instead of once per chunk. A batch stays charged against the pipeline's
 * budget until the stage asks for the next one, so batching never lets
 * more into memory. Use one or the other, not both at once.
 *
 * @example
 * ```ts
 * import { pipeline, type StageInput } from 'backpressure-stream';
 * const count = async (input: StageInput<Uint8Array>) => {
 *   let bytes = 0;
 *   for await (const batch of input.batches()) for (const chunk of batch) bytes += chunk.byteLength;
 *   return bytes;
 * };
 * const { value } = await pipeline(source, count);
 * ```
 */
export interface StageInput<T> extends AsyncIterable<T> {
  /** The same chunks, in order, one array per step (see {@link Channel.readBatch}). */
  batches(): AsyncIterable<T[]>;
}

/**
 * A synchronous per-chunk transform stage made with {@link mapChunks}: the
 * pipeline runs it in a tight loop over whatever its input link holds, with
 * no `await` per chunk.
 *
 * @example
 * ```ts
 * import { mapChunks, type ChunkMapper } from 'backpressure-stream';
 * const invert: ChunkMapper<Uint8Array, Uint8Array> = mapChunks((chunk) => chunk.map((b) => 255 - b));
 * ```
 */
export interface ChunkMapper<I, O> {
  /** The function applied to every chunk, as given to {@link mapChunks}. */
  readonly mapChunk: (chunk: I) => O | undefined;
}

const mappers = new WeakSet<object>();

/**
 * A transform stage for {@link pipeline} from a synchronous function of one
 * chunk: it returns the chunk to pass on, or `undefined` to drop it (a
 * filter). The stage costs no link, no task and no `await`: the pipeline
 * fuses it into the link before it, so the function runs inside the
 * previous stage's write, on every chunk in order, and its results are
 * what that link holds, is measured by and charged to the budget for
 * (consecutive `mapChunks` stages compose into one link). Backpressure is
 * that link's: per chunk, as for any other stage. An async generator stage
 * costs promises and a microtask hop per chunk; this costs a call.
 *
 * The function must not return a promise (that chunk fails the pipeline
 * with {@link InvalidArgumentError}: use an async generator stage for
 * asynchronous work). If it throws, the pipeline fails with that error,
 * like any stage's.
 *
 * @example
 * ```ts
 * import { mapChunks, pipeline } from 'backpressure-stream';
 * await pipeline(
 *   source,
 *   mapChunks((chunk: Uint8Array) => (chunk.byteLength > 0 ? xor(chunk, key) : undefined)),
 *   sink,
 * );
 * ```
 */
export function mapChunks<I, O>(map: (chunk: I) => O | undefined): ChunkMapper<I, O> {
  if (typeof map !== 'function') {
    throw new InvalidArgumentError(`mapChunks needs a function, got ${describe(map)}`);
  }
  const mapper: ChunkMapper<I, O> = Object.freeze({ mapChunk: map });
  mappers.add(mapper);
  return mapper;
}

/**
 * The first argument of {@link pipeline}: an async iterable or iterable of
 * chunks (async generators included), a web `ReadableStream`, a Node
 * `Readable`, a {@link Channel}, or a function of a {@link StageContext}
 * returning an (async) iterable, as in Node's `stream.pipeline`.
 *
 * @example
 * ```ts
 * import type { PipelineSource } from 'backpressure-stream';
 * const source: PipelineSource<Uint8Array> = async function* ({ signal }) {
 *   for (let i = 0; i < 10; i++) yield await fetchSegment(i, { signal });
 * };
 * ```
 */
export type PipelineSource<T> =
  | AsyncIterable<T>
  | Iterable<T>
  | ReadableStream<T>
  | Channel<T>
  | NodeReadableLike
  | ((context: StageContext) => AsyncIterable<T> | Iterable<T>);

/**
 * A WHATWG `TransformStream`, or anything with the same `{ writable, readable }` pair.
 *
 * @example
 * ```ts
 * import type { TransformStreamLike } from 'backpressure-stream';
 * const gzip: TransformStreamLike<Uint8Array, Uint8Array> = new CompressionStream('gzip');
 * ```
 */
export interface TransformStreamLike<I, O> {
  /** Where the pipeline writes the stage's input. */
  readonly writable: WritableStream<I>;
  /** Where the pipeline reads the stage's output. */
  readonly readable: ReadableStream<O>;
}

/**
 * A middle argument of {@link pipeline}: an async generator function
 * `(source, { signal }) => AsyncIterable` (its `source` is a
 * {@link StageInput}), a synchronous per-chunk function wrapped with
 * {@link mapChunks}, a web `TransformStream` (any `{ writable, readable }`
 * pair), or a Node `Duplex`/`Transform`.
 *
 * @example
 * ```ts
 * import type { PipelineTransform } from 'backpressure-stream';
 * const count: PipelineTransform<Uint8Array, Uint8Array> = async function* (source) {
 *   let n = 0;
 *   for await (const chunk of source) {
 *     n += chunk.byteLength;
 *     yield chunk;
 *   }
 *   console.log(n, 'bytes');
 * };
 * ```
 */
export type PipelineTransform<I, O> =
  | ((source: StageInput<I>, context: StageContext) => AsyncIterable<O>)
  | ChunkMapper<I, O>
  | TransformStreamLike<I, O>
  | NodeDuplexLike;

/**
 * The last stage argument of {@link pipeline}: a web `WritableStream`, a
 * Node `Writable`, a {@link Channel} (filled with `send()`, then closed), or
 * an async function `(source, { signal }) => result` whose result becomes
 * {@link PipelineResult.value} (its `source` is a {@link StageInput}, which
 * can also be read in batches).
 *
 * @example
 * ```ts
 * import type { PipelineSink } from 'backpressure-stream';
 * const total: PipelineSink<Uint8Array, number> = async (source) => {
 *   let n = 0;
 *   for await (const chunk of source) n += chunk.byteLength;
 *   return n;
 * };
 * ```
 */
export type PipelineSink<T, R> =
  | ((source: StageInput<T>, context: StageContext) => Promise<R> | R)
  | WritableStream<T>
  | Channel<T>
  | NodeWritableLike;

/**
 * Options of {@link pipeline}, passed as its last argument.
 *
 * @example
 * ```ts
 * import { pipeline, type PipelineOptions } from 'backpressure-stream';
 * const options: PipelineOptions = { budget: 4 * 2 ** 20, signal: AbortSignal.timeout(60_000) };
 * await pipeline(source, gzip, sink, options);
 * ```
 */
export interface PipelineOptions {
  /**
   * Aborting it tears every stage down and rejects with an
   * {@link AbortedError} whose `cause` is the signal's reason (the same
   * shape a {@link Channel} uses), so callers can tell an abort from a
   * stage's own error with `AbortedError.isInstance`.
   * @default undefined
   */
  signal?: AbortSignal;
  /**
   * The byte budget of the whole pipeline: one {@link ByteBudget} shared by
   * every channel between stages and every stage buffer the pipeline can
   * meter (a Node stream's `writableLength + readableLength`, a web
   * stream's unfinished writes). Pass a `ByteBudget` to share it with other
   * pipelines or read it live.
   * @default 1048576 (1 MiB)
   */
  budget?: number | ByteBudget;
  /**
   * Names the links in metrics (`name[0]`, `name[1]`...) and the pipeline in
   * error messages.
   * @default 'pipeline'
   */
  name?: string;
  /**
   * How big a chunk is, for the budget. The default counts bytes and
   * rejects anything else; pass one for object streams.
   * @default byteSize
   */
  size?(chunk: never): number;
}

/**
 * What a {@link pipeline} resolves with.
 *
 * @example
 * ```ts
 * const { value, metrics, peakBufferedBytes } = await pipeline(file, gzip, upload);
 * for (const link of metrics) console.log(link.name, link.peakBufferedBytes, link.stalledMs);
 * ```
 */
export interface PipelineResult<R> {
  /** What a function sink returned; `undefined` for other sinks. */
  value: R;
  /** One snapshot per link between consecutive stages, in order (`name[0]` follows the source). */
  metrics: StageMetrics[];
  /**
   * One snapshot per stage whose own buffers were metered (Node writables,
   * duplexes and transforms; web writables and transform streams), named
   * `name.stageN` after the stage's position.
   */
  stages: StageMetrics[];
  /** The most bytes buffered at once across the whole pipeline: the budget's peak. */
  peakBufferedBytes: number;
}

const DEFAULT_BUDGET = 1024 * 1024;

interface StageIO {
  input: Channel<unknown> | undefined;
  output: Channel<unknown> | undefined;
  signal: AbortSignal;
  onError(error: unknown): void;
  meter: StageMeter | undefined;
  size: (chunk: unknown) => number;
  label: string;
  /** The stage stopped reading its input before it ended. */
  abandon(): void;
}

interface StageRunner {
  kind: string;
  /** Whether the stage's own buffers are metered against the budget. */
  metered: boolean;
  run(io: StageIO): Promise<unknown>;
}

/**
 * Connects a source, any number of transforms and a sink, over any mix of
 * Node streams, web streams, async iterables and {@link Channel}s, and
 * resolves once every stage finished (the sink's result, when it is a
 * function, is {@link PipelineResult.value}).
 *
 * - **One budget.** Consecutive stages are joined by channels that share
 *   one {@link ByteBudget} (`options.budget`), and the buffers inside the
 *   stages the pipeline writes into are charged to the same budget: a Node
 *   Writable/Duplex/Transform counts `writableLength + readableLength`
 *   (re-measured after every write, write callback and chunk read out), a
 *   web WritableStream/TransformStream counts its unfinished writes. Every
 *   one of these holders (links and metered stages) is fed only while the
 *   budget has room, or while it holds nothing so the pipeline keeps
 *   moving; so the budget's peak ({@link PipelineResult.peakBufferedBytes})
 *   is at most `budget + holders × largest chunk`, instead of the sum of
 *   every stage's high-water marks. Not counted, because the pipeline
 *   cannot hold them back: a source's own read-ahead (a Node Readable's
 *   `highWaterMark`, a ReadableStream's queue), state kept inside a
 *   transform (zlib's window), the chunk a generator stage holds while it
 *   works, and what a TransformStream has enqueued but not yet been read
 *   (one transform's output with default strategies).
 * - **Errors and aborts both ways.** The first error (or an abort of
 *   `options.signal`) tears every stage down: Node streams are destroyed
 *   with the error, web streams cancelled or aborted with it, generators
 *   returned, channels aborted. The promise rejects with that first error
 *   as thrown (an abort rejects with {@link AbortedError}, `cause` = the
 *   signal's reason), and only after every stage settled: Node streams
 *   have emitted `'close'` (file descriptors released), readers' and
 *   writers' locks are released and every listener the pipeline added is
 *   removed.
 * - **Early exit.** A transform or function sink that stops reading (a
 *   `break` in `for await`, or returning) is not an error: the stages
 *   before it are stopped quietly (destroyed without an error, cancelled
 *   without a reason) and the pipeline resolves once the sink finished.
 *
 * A stage that awaits something that ignores its `signal` keeps the
 * pipeline from settling until that returns. A plain (async) iterable
 * source has no signal, so a `next()` that is still running when the
 * pipeline stops is abandoned: its `return()` runs when it yields.
 *
 * @example
 * ```ts
 * import { createReadStream, createWriteStream } from 'node:fs';
 * import { createGzip } from 'node:zlib';
 * import { pipeline } from 'backpressure-stream';
 *
 * const { peakBufferedBytes } = await pipeline(
 *   createReadStream('in.ts'),
 *   createGzip(),
 *   createWriteStream('in.ts.gz'),
 *   { budget: 256 * 1024, signal: AbortSignal.timeout(30_000) },
 * );
 * ```
 */
export function pipeline<A, R = undefined>(
  source: PipelineSource<A>,
  sink: PipelineSink<A, R>,
  options?: PipelineOptions,
): Promise<PipelineResult<R>>;
/**
 * The same, with one transform between the source and the sink. See the first signature for the full behaviour.
 * @example
 * ```ts
 * await pipeline(request, createGunzip(), createWriteStream(path));
 * ```
 */
export function pipeline<A, B, R = undefined>(
  source: PipelineSource<A>,
  t1: PipelineTransform<A, B>,
  sink: PipelineSink<B, R>,
  options?: PipelineOptions,
): Promise<PipelineResult<R>>;
/**
 * The same, with two transforms. See the first signature for the full behaviour.
 * @example
 * ```ts
 * await pipeline(source, parse, encode, sink);
 * ```
 */
export function pipeline<A, B, C, R = undefined>(
  source: PipelineSource<A>,
  t1: PipelineTransform<A, B>,
  t2: PipelineTransform<B, C>,
  sink: PipelineSink<C, R>,
  options?: PipelineOptions,
): Promise<PipelineResult<R>>;
/**
 * The same, with three transforms. See the first signature for the full behaviour.
 * @example
 * ```ts
 * await pipeline(source, a, b, c, sink, { budget: 2 ** 20 });
 * ```
 */
export function pipeline<A, B, C, D, R = undefined>(
  source: PipelineSource<A>,
  t1: PipelineTransform<A, B>,
  t2: PipelineTransform<B, C>,
  t3: PipelineTransform<C, D>,
  sink: PipelineSink<D, R>,
  options?: PipelineOptions,
): Promise<PipelineResult<R>>;
/**
 * The same, with four transforms. See the first signature for the full behaviour.
 * @example
 * ```ts
 * await pipeline(source, a, b, c, d, sink, { signal });
 * ```
 */
export function pipeline<A, B, C, D, E, R = undefined>(
  source: PipelineSource<A>,
  t1: PipelineTransform<A, B>,
  t2: PipelineTransform<B, C>,
  t3: PipelineTransform<C, D>,
  t4: PipelineTransform<D, E>,
  sink: PipelineSink<E, R>,
  options?: PipelineOptions,
): Promise<PipelineResult<R>>;
/**
 * Any number of transforms, when the stages are built at run time (the result is untyped). See the first signature for the full behaviour.
 * @example
 * ```ts
 * const stages = [source, ...transforms, sink];
 * await pipeline(...stages, { name: 'ingest' });
 * ```
 */
export function pipeline(
  ...stages: (
    | PipelineSource<unknown>
    | PipelineTransform<unknown, unknown>
    | PipelineSink<unknown, unknown>
    | PipelineOptions
    | undefined
  )[]
): Promise<PipelineResult<unknown>>;
export function pipeline(...args: unknown[]): Promise<PipelineResult<unknown>> {
  try {
    return run(args);
  } catch (error) {
    return Promise.reject(error);
  }
}

function run(args: unknown[]): Promise<PipelineResult<unknown>> {
  const last = args[args.length - 1];
  const options: PipelineOptions = isOptions(last) ? (last ?? {}) : {};
  const given = isOptions(last) ? args.slice(0, -1) : args;
  const name = options.name ?? 'pipeline';
  if (given.length < 2) {
    throw new InvalidArgumentError(
      `${name}: needs at least a source and a sink, got ${given.length} stage(s)`,
    );
  }
  // mapChunks stages run inside the link before them: `maps[k]` is link k's function.
  const stages: unknown[] = [];
  const positions: number[] = [];
  const maps: (((chunk: unknown) => unknown) | undefined)[] = [];
  let pending: ((chunk: unknown) => unknown) | undefined;
  for (const [i, stage] of given.entries()) {
    if (i > 0 && i < given.length - 1 && isMapper(stage)) {
      pending = compose(pending, stage.mapChunk);
      continue;
    }
    if (i > 0) maps.push(pending);
    pending = undefined;
    stages.push(stage);
    positions.push(i);
  }
  const runners = stages.map((stage, i) =>
    classify(stage, positions[i] as number, given.length, name),
  );
  const budget =
    options.budget instanceof ByteBudget
      ? options.budget
      : new ByteBudget(options.budget ?? DEFAULT_BUDGET);
  const size = (options.size as ((chunk: unknown) => number) | undefined) ?? byteSize;
  const links = stages.slice(1).map((_, i) => {
    const linkOptions = {
      // The budget is the real limit; a link's own capacity never binds first.
      capacity: budget.limit,
      budget,
      size,
      name: `${name}[${i}]`,
    };
    const map = maps[i];
    return map === undefined ? new Channel<unknown>(linkOptions) : new MappedLink(map, linkOptions);
  });
  const meters = runners.map((runner, i) =>
    runner.metered ? new StageMeter(`${name}.stage${i}`, budget.limit, budget) : undefined,
  );
  const controllers = stages.map(() => new AbortController());
  const timers: ReturnType<typeof setTimeout>[] = [];
  let failed = false;
  let firstError: unknown;

  const fail = (error: unknown) => {
    if (failed) return;
    failed = true;
    firstError = error;
    // Stages first, so that when a link's abort reaches a stage, the stage
    // already knows it is being torn down and treats it as no error of its own.
    for (const controller of controllers) {
      if (!controller.signal.aborted) controller.abort(error);
    }
    for (const link of links) link.abort(error);
  };
  // Stage `i` wants no more input: stop the stages before it, quietly.
  const stopBefore = (i: number) => {
    const link = links[i - 1];
    if (failed || link === undefined || link.ended) return;
    link.cancel();
  };
  const offLinks = links.map((link, i) =>
    link.on('abort', () => {
      // Cancelled by its reader (an abort is `fail` tearing everything down).
      if (failed || link.aborted) return;
      const controller = controllers[i] as AbortController;
      if (!controller.signal.aborted) {
        controller.abort(quietStop(`${name} stage ${positions[i]} (${runners[i]?.kind})`));
      }
      stopBefore(i);
    }),
  );
  const userSignal = options.signal;
  const onUserAbort = () => fail(new AbortedError(name, { cause: userSignal?.reason }));
  if (userSignal?.aborted) onUserAbort();
  else userSignal?.addEventListener('abort', onUserAbort, { once: true });

  const tasks = runners.map((runner, i) => {
    const io: StageIO = {
      input: links[i - 1],
      output: links[i],
      signal: (controllers[i] as AbortController).signal,
      onError: fail,
      meter: meters[i],
      size,
      label: `${name} stage ${positions[i]} (${runner.kind})`,
      abandon: () => {
        // Deferred one macrotask: a stage that leaves its loop because it
        // is throwing must fail the pipeline (tearing the stages before it
        // down with its error) before they are stopped as if all was well.
        timers.push(setTimeout(() => stopBefore(i), 0));
      },
    };
    let started: Promise<unknown>;
    try {
      started = runner.run(io);
    } catch (error) {
      started = Promise.reject(error);
    }
    return started.then(
      (value) => {
        links[i]?.close();
        stopBefore(i);
        return value;
      },
      (error: unknown) => {
        fail(error);
        return undefined;
      },
    );
  });

  return Promise.all(tasks).then((values) => {
    for (const timer of timers) clearTimeout(timer);
    for (const off of offLinks) off();
    userSignal?.removeEventListener('abort', onUserAbort);
    if (failed) throw firstError;
    return {
      value: values[values.length - 1],
      metrics: links.map((link) => link.metrics),
      stages: meters.filter((m) => m !== undefined).map((m) => m.metrics),
      peakBufferedBytes: budget.peak,
    };
  });
}

function isMapper(value: unknown): value is ChunkMapper<unknown, unknown> {
  return typeof value === 'object' && value !== null && mappers.has(value);
}

function compose(
  first: ((chunk: unknown) => unknown) | undefined,
  then: (chunk: unknown) => unknown,
): (chunk: unknown) => unknown {
  if (first === undefined) return then;
  return (chunk) => {
    const mid = first(chunk);
    return mid === undefined ? undefined : then(mid);
  };
}

/** A link with {@link mapChunks} stages fused in: what is written is mapped, then buffered. */
class MappedLink extends Channel<unknown> {
  readonly #map: (chunk: unknown) => unknown;

  constructor(map: (chunk: unknown) => unknown, options: ChannelOptions<unknown>) {
    super(options);
    this.#map = map;
  }

  override write(chunk: unknown): boolean {
    // A closed link throws its own error without running the map.
    if (this.closed) return super.write(chunk);
    const out = this.#map(chunk);
    if (out === undefined) return this.writable;
    if (isThenable(out)) {
      (out as Promise<unknown>).then(undefined, noop);
      throw new InvalidArgumentError(
        `${this.name}: a mapChunks function returned a promise: it must be synchronous (use an async generator stage for asynchronous work)`,
      );
    }
    return super.write(out);
  }
}

function isOptions(value: unknown): value is PipelineOptions | undefined {
  if (value === undefined) return true;
  if (typeof value !== 'object' || value === null) return false;
  const proto = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) return false;
  return !('readable' in value && 'writable' in value) && !isIterable(value);
}

function isIterable(value: object): boolean {
  return Symbol.asyncIterator in value || Symbol.iterator in value;
}

const hasMethod = (value: unknown, method: string): boolean =>
  typeof value === 'object' &&
  value !== null &&
  typeof (value as Record<string, unknown>)[method] === 'function';

function isWebPair(
  value: unknown,
): value is { writable: WritableStream<unknown>; readable: ReadableStream<unknown> } {
  if (typeof value !== 'object' || value === null) return false;
  const { readable, writable } = value as { readable?: unknown; writable?: unknown };
  return hasMethod(readable, 'getReader') && hasMethod(writable, 'getWriter');
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (typeof value === 'object') return value.constructor?.name ?? 'object';
  return typeof value;
}

function classify(stage: unknown, i: number, count: number, name: string): StageRunner {
  const position = i === 0 ? 'source' : i === count - 1 ? 'sink' : 'transform';
  const runner =
    position === 'source'
      ? sourceRunner(stage)
      : position === 'sink'
        ? sinkRunner(stage)
        : transformRunner(stage);
  if (runner === undefined) {
    throw new InvalidArgumentError(
      `${name}: stage ${i} (a ${describe(stage)}) cannot be a pipeline ${position}: expected ${
        position === 'source'
          ? 'an (async) iterable, a ReadableStream, a Node Readable, a Channel or a function returning an iterable'
          : position === 'sink'
            ? 'a WritableStream, a Node Writable, a Channel or an async function'
            : 'an async generator function, a TransformStream or a Node Duplex'
      }`,
    );
  }
  return runner;
}

function sourceRunner(stage: unknown): StageRunner | undefined {
  if (stage instanceof Channel) {
    const channel = stage as Channel<unknown>;
    return {
      kind: 'Channel',
      metered: false,
      run: async ({ output, signal }) => {
        const onAbort = () => {
          const reason = stopReason(signal);
          // Quietly: we were its reader and left. Failing: its writer must learn why.
          if (reason === undefined) channel.cancel();
          else channel.abort(reason);
        };
        if (signal.aborted) onAbort();
        else signal.addEventListener('abort', onAbort, { once: true });
        try {
          await pumpInto(output as Channel<unknown>, signal, () => channel.read());
        } finally {
          signal.removeEventListener('abort', onAbort);
        }
        throwIfFailed(signal);
      },
    };
  }
  if (hasMethod(stage, 'getReader')) {
    return {
      kind: 'ReadableStream',
      metered: false,
      run: ({ output, signal, onError }) =>
        runWebReadable(stage as ReadableStream<unknown>, {
          output: output as Channel<unknown>,
          signal,
          onError,
        }),
    };
  }
  if (isNodeReadable(stage)) {
    return {
      kind: 'Node Readable',
      metered: false,
      run: ({ output, signal, onError, label }) =>
        runNodeStage(stage, { output, signal, onError, label }),
    };
  }
  if (typeof stage === 'function') {
    return {
      kind: 'function',
      metered: false,
      run: async ({ output, signal }) => {
        if (signal.aborted) throwIfFailed(signal);
        const iterable = (stage as (context: StageContext) => unknown)({ signal });
        const iterator = getIterator(iterable, 'the source function');
        await pumpIterator(iterator, output as Channel<unknown>, signal, true);
      },
    };
  }
  if (typeof stage === 'object' && stage !== null && isIterable(stage)) {
    return {
      kind: Symbol.asyncIterator in stage ? 'AsyncIterable' : 'Iterable',
      metered: false,
      run: async ({ output, signal }) => {
        const iterator = getIterator(stage, 'the source');
        // A plain iterable has no signal to stop it: race its next().
        await pumpIterator(iterator, output as Channel<unknown>, signal, false);
      },
    };
  }
  return undefined;
}

function transformRunner(stage: unknown): StageRunner | undefined {
  if (typeof stage === 'function') {
    return {
      kind: 'generator',
      metered: false,
      run: async ({ input, output, signal, abandon }) => {
        const source = linkSource(input as Channel<unknown>, abandon);
        const result = (stage as (s: StageInput<unknown>, c: StageContext) => unknown)(source, {
          signal,
        });
        const iterator = getIterator(result, 'a transform function');
        await pumpIterator(iterator, output as Channel<unknown>, signal, true);
      },
    };
  }
  if (isNodeReadable(stage) && isNodeWritable(stage)) {
    return {
      kind: 'Node Duplex',
      metered: true,
      run: ({ input, output, signal, onError, meter, size, label }) =>
        runNodeStage(stage, { input, output, signal, onError, meter, size, label }),
    };
  }
  if (isWebPair(stage)) {
    return {
      kind: 'TransformStream',
      metered: true,
      run: (io) => runWebPair(stage, io),
    };
  }
  return undefined;
}

function sinkRunner(stage: unknown): StageRunner | undefined {
  if (stage instanceof Channel) {
    const channel = stage as Channel<unknown>;
    return {
      kind: 'Channel',
      metered: false,
      run: async ({ input, signal, label }) => {
        const from = input as Channel<unknown>;
        const onAbort = () => channel.abort(stopReason(signal));
        if (signal.aborted) onAbort();
        else signal.addEventListener('abort', onAbort, { once: true });
        try {
          for (;;) {
            await channel.ready();
            const next = await from.read();
            if (signal.aborted) break;
            if (next.done) {
              if (from.ended) channel.close();
              else channel.abort(new ClosedError(`${label}: its input was cancelled, so it`));
              break;
            }
            channel.write(next.value);
          }
        } catch (error) {
          if (!signal.aborted) throw error;
        } finally {
          signal.removeEventListener('abort', onAbort);
        }
        throwIfFailed(signal);
      },
    };
  }
  if (hasMethod(stage, 'getWriter')) {
    return {
      kind: 'WritableStream',
      metered: true,
      run: ({ input, signal, onError, meter, size }) =>
        runWebWritable(stage as WritableStream<unknown>, {
          input: input as Channel<unknown>,
          signal,
          onError,
          meter,
          size,
        }),
    };
  }
  if (isNodeWritable(stage)) {
    return {
      kind: 'Node Writable',
      metered: true,
      run: ({ input, signal, onError, meter, size, label }) =>
        runNodeStage(stage, { input, signal, onError, meter, size, label }),
    };
  }
  if (typeof stage === 'function') {
    return {
      kind: 'function',
      metered: false,
      run: async ({ input, signal, abandon }) => {
        throwIfFailed(signal);
        const source = linkSource(input as Channel<unknown>, abandon);
        return await (stage as (s: StageInput<unknown>, c: StageContext) => unknown)(source, {
          signal,
        });
      },
    };
  }
  return undefined;
}

/**
 * The input a function stage iterates. Leaving the loop does not cancel the
 * link at once (see `abandon`), so that a stage that is throwing fails the
 * pipeline before the stages before it are stopped as if all was well.
 */
function linkSource(link: Channel<unknown>, abandon: () => void): StageInput<unknown> {
  let left = false;
  const leave = async (value?: unknown): Promise<IteratorResult<never>> => {
    if (!left && !link.ended) {
      left = true;
      abandon();
    }
    return { value: value as never, done: true };
  };
  const iterator: AsyncIterableIterator<unknown> = {
    next: () => link.read(),
    return: leave,
    [Symbol.asyncIterator]: () => iterator,
  };
  const batches: AsyncIterableIterator<unknown[]> = {
    next: () => link.readBatch(),
    return: leave,
    [Symbol.asyncIterator]: () => batches,
  };
  return { [Symbol.asyncIterator]: () => iterator, batches: () => batches };
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return (
    (typeof value === 'object' || typeof value === 'function') &&
    value !== null &&
    typeof (value as { then?: unknown }).then === 'function'
  );
}

/** A synchronous iterator (from an `Iterable`): the pump may drain it without awaiting. */
const syncIterators = new WeakSet<object>();

function isSyncIterator(iterator: object): boolean {
  return syncIterators.has(iterator);
}

function getIterator(value: unknown, what: string): AsyncIterator<unknown> | Iterator<unknown> {
  if (typeof value === 'object' && value !== null) {
    const asyncIterator = (value as Partial<AsyncIterable<unknown>>)[Symbol.asyncIterator];
    if (typeof asyncIterator === 'function') return asyncIterator.call(value);
    const iterator = (value as Partial<Iterable<unknown>>)[Symbol.iterator];
    if (typeof iterator === 'function') {
      const it = iterator.call(value) as Iterator<unknown>;
      if ((typeof it === 'object' || typeof it === 'function') && it !== null)
        syncIterators.add(it);
      return it;
    }
  }
  throw new InvalidArgumentError(
    `${what} returned a ${describe(value)}: expected an async iterable or an iterable`,
  );
}

/** Moves chunks from `pull` into `output`, waiting for room before each pull. */
async function pumpInto(
  output: Channel<unknown>,
  signal: AbortSignal,
  pull: () => Promise<IteratorResult<unknown>>,
): Promise<void> {
  try {
    while (!signal.aborted) {
      if (!output.writable) await output.ready();
      const next = await pull();
      if (next.done || signal.aborted) return;
      output.write(next.value);
    }
  } catch (error) {
    // Rejections caused by the stop itself (an aborted link or source) are not this stage's.
    if (!signal.aborted) throw error;
  }
}

/**
 * Moves an iterator's values into `output`, one pull per unit of room, and
 * closes the iterator (`return()`, which runs a generator's `finally`)
 * unless it finished or threw. With `awaitNext`, a running `next()` is
 * awaited (the stage was given the signal, and its input is aborted with
 * the pipeline); without, it is raced against the signal and abandoned.
 */
async function pumpIterator(
  iterator: AsyncIterator<unknown> | Iterator<unknown>,
  output: Channel<unknown>,
  signal: AbortSignal,
  awaitNext: boolean,
): Promise<void> {
  let nextPending = false;
  let finished = false;
  let failed = false;
  let failure: unknown;
  const sync = isSyncIterator(iterator);
  try {
    // A synchronous iterator is drained in a plain loop while the output has room.
    while (sync && !signal.aborted) {
      if (!output.writable) {
        await output.ready();
        continue;
      }
      nextPending = true;
      const next = (iterator as Iterator<unknown>).next();
      nextPending = false;
      if (next.done) {
        finished = true;
        break;
      }
      output.write(next.value);
    }
    while (!sync && !signal.aborted) {
      if (!output.writable) await output.ready();
      nextPending = true;
      const pending = Promise.resolve(iterator.next());
      const next = awaitNext ? await pending : await raceSignal(pending, signal);
      nextPending = false;
      if (next.done) {
        finished = true;
        break;
      }
      if (signal.aborted) break;
      output.write(next.value);
    }
  } catch (error) {
    // A next() that rejected on its own means the iterator is finished.
    if (nextPending && (awaitNext || !signal.aborted)) {
      nextPending = false;
      finished = true;
    }
    if (!signal.aborted) {
      failed = true;
      failure = error;
    }
  }
  if (!finished && typeof iterator.return === 'function') {
    try {
      const closing = Promise.resolve(iterator.return());
      if (nextPending) closing.catch(noop);
      else await closing;
    } catch (error) {
      if (!failed && !signal.aborted) {
        failed = true;
        failure = error;
      }
    }
  }
  if (failed) throw failure;
  throwIfFailed(signal);
}

async function runWebPair(
  pair: { writable: WritableStream<unknown>; readable: ReadableStream<unknown> },
  io: StageIO,
): Promise<void> {
  const { signal } = io;
  // One signal for both halves, so that when the readable half ends early
  // the writable half can be stopped without stopping the whole stage.
  const local = new AbortController();
  const onAbort = () => local.abort(signal.reason);
  if (signal.aborted) onAbort();
  else signal.addEventListener('abort', onAbort, { once: true });
  // A TransformStream's error reaches both halves, and `terminate()` ends the
  // readable half while failing the writable one: so a writable-half error
  // counts only if the readable half has not ended by the next macrotask.
  let readEnded = false;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const writing = runWebWritable(pair.writable, {
    input: io.input as Channel<unknown>,
    signal: local.signal,
    onError: (error) => {
      timer = setTimeout(() => {
        if (!readEnded) io.onError(error);
      }, 0);
    },
    meter: io.meter,
    size: io.size,
  });
  const reading = runWebReadable(pair.readable, {
    output: io.output as Channel<unknown>,
    signal: local.signal,
    onError: io.onError,
  }).then(() => {
    readEnded = !local.signal.aborted;
    if (!local.signal.aborted) local.abort(quietStop(io.label));
  });
  const [wrote, read] = await Promise.allSettled([writing, reading]);
  clearTimeout(timer);
  signal.removeEventListener('abort', onAbort);
  if (read.status === 'rejected') throw read.reason;
  if (wrote.status === 'rejected' && !readEnded) throw wrote.reason;
  throwIfFailed(signal);
}
