import { Channel } from './channel';
import { AbortedError, ClosedError, checkNumber, InvalidArgumentError } from './errors';
import { SinkChannel } from './sink-channel';
import { byteSize } from './size';
import { feedChannel, noop } from './stage-util';
import { runWebReadable, runWebWritable } from './web-stage';

/**
 * Options of {@link toReadableStream}.
 *
 * @example
 * ```ts
 * import { toReadableStream, type ToReadableStreamOptions } from 'backpressure-stream';
 * const options: ToReadableStreamOptions = { highWaterMark: 256 * 1024, signal };
 * const body = toReadableStream(channel, options);
 * ```
 */
export interface ToReadableStreamOptions {
  /**
   * Bytes the stream may queue ahead of its reader: it pulls from the
   * source while fewer than this many bytes are queued (a byte-length
   * strategy, not a chunk count as `Readable.toWeb` uses).
   * @default 65536
   */
  highWaterMark?: number;
  /**
   * `'bytes'` makes a byte stream, so BYOB readers (`getReader({ mode:
   * 'byob' })`) can read into their own buffers. Every chunk is then copied
   * once (into the reader's buffer, or a fresh one for default readers),
   * because `enqueue()` on a byte stream would detach the chunk's whole
   * `ArrayBuffer`, which the source may still share with other views.
   * @default undefined (a default stream: chunks pass through without a copy)
   */
  type?: 'bytes';
  /**
   * Aborting it errors the stream with {@link AbortedError} (`cause` = the
   * signal's reason) and cancels the source.
   * @default undefined
   */
  signal?: AbortSignal;
  /**
   * Used in error messages.
   * @default the channel's name, or 'stream'
   */
  name?: string;
}

/**
 * A web `ReadableStream` reading from a {@link Channel} or an (async)
 * iterable of bytes, with backpressure counted in bytes: the stream pulls
 * one chunk at a time and only while less than `highWaterMark` bytes are
 * queued, so its `desiredSize` is in bytes and memory stays within the
 * high-water mark plus one chunk.
 *
 * Cancelling the stream cancels the channel with the same reason (its
 * writer's next write fails with {@link ClosedError}) or returns the
 * iterator (running a generator's `finally`); aborting the channel errors
 * the stream with {@link AbortedError}.
 *
 * @example
 * ```ts
 * import { Channel, toReadableStream } from 'backpressure-stream';
 * const channel = new Channel({ capacity: 1024 * 1024 });
 * const response = new Response(toReadableStream(channel, { highWaterMark: 64 * 1024 }));
 * ```
 */
export function toReadableStream(
  source: Channel<Uint8Array> | AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
  options: ToReadableStreamOptions = {},
): ReadableStream<Uint8Array> {
  const highWaterMark = options.highWaterMark ?? 64 * 1024;
  checkNumber('highWaterMark', highWaterMark, 0, Number.POSITIVE_INFINITY);
  const channel = source instanceof Channel ? source : undefined;
  const name = options.name ?? channel?.name ?? 'stream';
  const { signal } = options;

  let pull: () => Promise<IteratorResult<Uint8Array>>;
  let stop: (reason: unknown) => void;
  if (channel !== undefined) {
    pull = () => channel.read();
    stop = (reason) => channel.cancel(reason);
  } else {
    const iterator = iteratorOf(source as AsyncIterable<Uint8Array> | Iterable<Uint8Array>);
    let finished = false;
    pull = async () => {
      try {
        const next = await iterator.next();
        if (next.done) finished = true;
        return next;
      } catch (error) {
        finished = true;
        throw error;
      }
    };
    stop = () => {
      if (finished) return;
      finished = true;
      // Queued behind a running next() if there is one: it runs when that yields.
      Promise.resolve(iterator.return?.()).catch(noop);
    };
  }

  let offAbort = noop;
  let onSignal = noop;
  const cleanup = () => {
    offAbort();
    signal?.removeEventListener('abort', onSignal);
  };
  const start = (error: (reason: unknown) => void) => {
    if (channel !== undefined) {
      offAbort = channel.on('abort', (reason) => {
        // Only an abort errors the stream; a cancel came from this stream.
        if (!channel.aborted) return;
        cleanup();
        error(new AbortedError(name, { cause: reason }));
      });
    }
    if (signal !== undefined) {
      onSignal = () => {
        cleanup();
        error(new AbortedError(name, { cause: signal.reason }));
        stop(signal.reason);
      };
      if (signal.aborted) onSignal();
      else signal.addEventListener('abort', onSignal, { once: true });
    }
  };
  const cancel = (reason: unknown) => {
    cleanup();
    stop(reason);
  };

  if (options.type === 'bytes') {
    let rest: Uint8Array | undefined;
    return new ReadableStream(
      {
        type: 'bytes',
        start: (controller) => start((e) => controller.error(e)),
        pull: async (controller) => {
          try {
            let chunk = rest;
            rest = undefined;
            // Skip empty chunks: a byte stream cannot enqueue them, and a pull
            // that enqueues nothing is not called again.
            while (chunk === undefined || chunk.byteLength === 0) {
              const next = await pull();
              if (next.done) {
                cleanup();
                controller.close();
                controller.byobRequest?.respond(0);
                return;
              }
              chunk = next.value;
            }
            const request = controller.byobRequest;
            const view = request?.view;
            if (request && view) {
              const target = new Uint8Array(view.buffer, view.byteOffset, view.byteLength);
              const n = Math.min(target.byteLength, chunk.byteLength);
              target.set(chunk.subarray(0, n));
              if (n < chunk.byteLength) rest = chunk.subarray(n);
              request.respond(n);
            } else {
              controller.enqueue(chunk.slice());
            }
          } catch (error) {
            cleanup();
            controller.error(error);
          }
        },
        cancel,
      },
      { highWaterMark },
    );
  }

  return new ReadableStream<Uint8Array>(
    {
      start: (controller) => start((e) => controller.error(e)),
      pull: async (controller) => {
        try {
          const next = await pull();
          if (next.done) {
            cleanup();
            controller.close();
          } else {
            controller.enqueue(next.value);
          }
        } catch (error) {
          // Also reached when the stream was cancelled while pulling: error() is then a no-op.
          cleanup();
          controller.error(error);
        }
      },
      cancel,
    },
    { highWaterMark, size: byteSize },
  );
}

/**
 * Options of {@link fromReadableStream} and {@link fromWritableStream}.
 *
 * @example
 * ```ts
 * import { fromReadableStream, type FromStreamOptions } from 'backpressure-stream';
 * const options: FromStreamOptions = { capacity: 512 * 1024, name: 'upload' };
 * const channel = fromReadableStream(request.body!, options);
 * ```
 */
export interface FromStreamOptions {
  /**
   * Bytes the channel holds before its writer must wait.
   * @default 65536
   */
  capacity?: number;
  /**
   * Aborts the channel (and so cancels or aborts the stream) when it aborts.
   * @default undefined
   */
  signal?: AbortSignal;
  /**
   * The channel's name, for metrics and error messages.
   * @default 'channel'
   */
  name?: string;
}

/**
 * A {@link Channel} filled from a web `ReadableStream`, with the channel's
 * byte capacity as the backpressure: the stream is read only when the
 * channel has room, so the channel never holds more than `capacity` plus
 * one chunk (the stream's own queue, bounded by its strategy, comes on
 * top).
 *
 * When the stream ends the channel closes; when it errors the channel is
 * aborted with the error. Cancelling the channel (a `break` in `for await`)
 * or aborting it cancels the stream with the same reason. The reader's
 * lock is released in every case.
 *
 * @example
 * ```ts
 * import { fromReadableStream } from 'backpressure-stream';
 * const res = await fetch(url);
 * for await (const chunk of fromReadableStream(res.body!, { capacity: 1024 * 1024 })) {
 *   await save(chunk);
 * }
 * ```
 */
export function fromReadableStream<T = Uint8Array>(
  stream: ReadableStream<T>,
  options: FromStreamOptions = {},
): Channel<T> {
  const channel = new Channel<T>(channelOptions(options));
  return feedChannel(channel, (signal, onError) =>
    runWebReadable(stream, { output: channel, signal, onError }),
  );
}

/**
 * Options of {@link toWritableStream}.
 *
 * @example
 * ```ts
 * import { toWritableStream, type ToWritableStreamOptions } from 'backpressure-stream';
 * const options: ToWritableStreamOptions = { highWaterMark: 16 * 1024 };
 * await response.body!.pipeTo(toWritableStream(channel, options));
 * ```
 */
export interface ToWritableStreamOptions {
  /**
   * Bytes the stream may queue in front of the channel. The default keeps
   * the channel the only buffer: `writer.ready` resolves exactly when the
   * channel accepted the previous chunk (0 would leave `ready` pending
   * forever, which stalls `pipeTo`).
   * @default 1
   */
  highWaterMark?: number;
  /**
   * For a function target: the capacity of the channel it reads from.
   * @default 1 (one chunk: the stream's queue does the buffering)
   */
  capacity?: number;
  /**
   * Aborting it errors the stream with {@link AbortedError} and aborts the
   * channel with the signal's reason.
   * @default undefined
   */
  signal?: AbortSignal;
  /**
   * Used in error messages.
   * @default the channel's name, or 'stream'
   */
  name?: string;
}

/**
 * A web `WritableStream` that writes into a {@link Channel}, or into an
 * async function that consumes an iterable. A write completes only once the
 * channel accepted the chunk, so the stream's backpressure (`ready`,
 * `desiredSize` in bytes, `pipeTo` pacing) follows the channel's byte
 * capacity. Closing the stream closes the channel (and waits for the
 * function target to return); aborting it aborts the channel with the
 * reason; aborting or cancelling the channel errors the stream.
 *
 * @example
 * ```ts
 * import { Channel, toWritableStream } from 'backpressure-stream';
 * const channel = new Channel({ capacity: 4 * 2 ** 20 });
 * void upload.pipeTo(toWritableStream(channel));
 * for await (const chunk of channel) await store(chunk);
 * ```
 */
export function toWritableStream<T = Uint8Array>(
  target: Channel<T> | ((source: AsyncIterable<T>, context: { signal: AbortSignal }) => unknown),
  options: ToWritableStreamOptions = {},
): WritableStream<T> {
  const highWaterMark = options.highWaterMark ?? 1;
  checkNumber('highWaterMark', highWaterMark, 0, Number.POSITIVE_INFINITY);
  const { signal } = options;
  let channel: Channel<T>;
  let consume:
    | ((source: AsyncIterable<T>, context: { signal: AbortSignal }) => unknown)
    | undefined;
  if (target instanceof Channel) {
    channel = target;
  } else if (typeof target === 'function') {
    consume = target;
    channel = new Channel<T>({ capacity: options.capacity ?? 1, name: options.name ?? 'stream' });
  } else {
    throw new InvalidArgumentError(
      `toWritableStream: expected a Channel or a function, got ${typeof target}`,
    );
  }
  const name = options.name ?? channel.name;
  const control = new AbortController();
  let task: Promise<unknown> = Promise.resolve();
  let offAbort = noop;
  let onSignal = noop;
  const cleanup = () => {
    offAbort();
    signal?.removeEventListener('abort', onSignal);
  };
  return new WritableStream<T>(
    {
      start: (controller) => {
        offAbort = channel.on('abort', (reason) => {
          cleanup();
          controller.error(
            channel.aborted
              ? new AbortedError(name, { cause: reason })
              : new ClosedError(`${name} (cancelled by its reader)`, { cause: reason }),
          );
        });
        if (consume !== undefined) {
          const run = consume;
          task = Promise.resolve()
            .then(() => run(deferredCancel(channel), { signal: control.signal }))
            .then(
              () => {
                // The consumer returned without reading everything: it left.
                if (!channel.closed) channel.cancel();
              },
              (error: unknown) => {
                cleanup();
                controller.error(error);
                channel.abort(error);
                throw error;
              },
            );
          task.catch(noop);
        }
        if (signal !== undefined) {
          onSignal = () => {
            cleanup();
            controller.error(new AbortedError(name, { cause: signal.reason }));
            channel.abort(signal.reason);
            control.abort(signal.reason);
          };
          if (signal.aborted) onSignal();
          else signal.addEventListener('abort', onSignal, { once: true });
        }
      },
      write: (chunk) => channel.send(chunk),
      close: async () => {
        cleanup();
        channel.close();
        await task;
      },
      abort: (reason) => {
        cleanup();
        channel.abort(reason);
        control.abort(reason);
      },
    },
    { highWaterMark, size: byteSize },
  );
}

/**
 * A {@link SinkChannel} whose contents are pumped into a web
 * `WritableStream`: write into the channel (`write()` returns `false` at
 * `capacity`, or `await send()`), `close()` it, and await `finished`. A
 * chunk is taken from the channel only when `writer.ready` says the stream
 * has room, so the channel's bytes are the backpressure.
 *
 * Aborting the channel aborts the stream with the same reason; if the stream
 * errors, the channel is aborted with the error (its writer's next call
 * throws {@link AbortedError} with that `cause`) and `finished` rejects.
 *
 * @example
 * ```ts
 * import { fromWritableStream } from 'backpressure-stream';
 * const out = fromWritableStream(await fileHandle.createWritable());
 * for (const part of parts) if (!out.write(part)) await out.ready();
 * out.close();
 * await out.finished;
 * ```
 */
export function fromWritableStream<T = Uint8Array>(
  stream: WritableStream<T>,
  options: FromStreamOptions = {},
): SinkChannel<T> {
  return new SinkChannel<T>(channelOptions(options), (channel) => {
    const control = new AbortController();
    const off = channel.on('abort', (reason) =>
      control.abort(reason ?? new AbortedError(channel.name)),
    );
    if (channel.closed) control.abort(new AbortedError(channel.name));
    return runWebWritable(stream, {
      input: channel,
      signal: control.signal,
      onError: (error) => channel.abort(error),
      size: byteSize as (chunk: T) => number,
    }).finally(off);
  });
}

/**
 * The channel as an iterable whose early exit does not cancel the channel at
 * once: the function's result decides (a throw errors the stream with its
 * error, a return cancels the channel), so a throwing consumer's error is
 * not masked by a "cancelled" one.
 */
function deferredCancel<T>(channel: Channel<T>): AsyncIterable<T> {
  const iterator: AsyncIterableIterator<T> = {
    next: () => channel.read(),
    return: async (value?: unknown) => ({ value: value as T, done: true }),
    [Symbol.asyncIterator]: () => iterator,
  };
  return iterator;
}

function channelOptions<T>(options: FromStreamOptions): {
  capacity?: number;
  signal?: AbortSignal;
  name?: string;
  size?: (chunk: T) => number;
} {
  const result: { capacity?: number; signal?: AbortSignal; name?: string } = {};
  if (options.capacity !== undefined) result.capacity = options.capacity;
  if (options.signal !== undefined) result.signal = options.signal;
  if (options.name !== undefined) result.name = options.name;
  return result;
}

function iteratorOf<T>(source: AsyncIterable<T> | Iterable<T>): AsyncIterator<T> | Iterator<T> {
  const asyncIterator = (source as Partial<AsyncIterable<T>>)[Symbol.asyncIterator];
  if (typeof asyncIterator === 'function') return asyncIterator.call(source);
  const iterator = (source as Partial<Iterable<T>>)[Symbol.iterator];
  if (typeof iterator === 'function') return iterator.call(source);
  throw new InvalidArgumentError(
    'toReadableStream: expected a Channel, an async iterable or an iterable',
  );
}
