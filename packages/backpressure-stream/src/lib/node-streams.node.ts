import { Duplex, Readable, Writable } from 'node:stream';
import { Channel } from './channel';
import { AbortedError, ClosedError, checkNumber, InvalidArgumentError } from './errors';
import { runNodeStage } from './node-stage';
import { SinkChannel } from './sink-channel';
import { feedChannel, noop, quietStop } from './stage-util';

const DEFAULT_HIGH_WATER_MARK = 64 * 1024;

/**
 * Options of {@link toNodeReadable}.
 *
 * @example
 * ```ts
 * import { toNodeReadable, type ToNodeReadableOptions } from 'backpressure-stream/node';
 * const options: ToNodeReadableOptions = { highWaterMark: 256 * 1024 };
 * toNodeReadable(channel, options).pipe(res);
 * ```
 */
export interface ToNodeReadableOptions {
  /**
   * Bytes the Readable buffers ahead of its consumer. The stream is a byte
   * stream (not object mode, unlike `Readable.from`), so Node counts this in
   * bytes and reads from the source one chunk at a time while below it.
   * @default 65536
   */
  highWaterMark?: number;
  /**
   * Destroys the Readable with {@link AbortedError} (`cause` = the signal's
   * reason) when it aborts.
   * @default undefined
   */
  signal?: AbortSignal;
  /**
   * Used in error messages.
   * @default the channel's name, or 'readable'
   */
  name?: string;
}

/**
 * A Node `Readable` reading from a {@link Channel} or an (async) iterable of
 * bytes. It is a byte stream, so `highWaterMark` and `readableLength` are
 * in bytes (`Readable.from(iterable)` is in object mode and counts chunks),
 * and it reads one chunk at a time only while below the high-water mark.
 * Works with `stream.pipeline`, `stream.finished` and `.pipe()`.
 *
 * Destroying it cancels the channel (or aborts it with the error, if one
 * was given), or returns the iterator; aborting the channel destroys it
 * with {@link AbortedError}.
 *
 * @example
 * ```ts
 * import { pipeline } from 'node:stream/promises';
 * import { toNodeReadable } from 'backpressure-stream/node';
 * await pipeline(toNodeReadable(channel), res);
 * ```
 */
export function toNodeReadable(
  source: Channel<Uint8Array> | AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
  options: ToNodeReadableOptions = {},
): Readable {
  const highWaterMark = options.highWaterMark ?? DEFAULT_HIGH_WATER_MARK;
  checkNumber('highWaterMark', highWaterMark, 0, Number.POSITIVE_INFINITY);
  const channel = source instanceof Channel ? source : undefined;
  const name = options.name ?? channel?.name ?? 'readable';
  const { signal } = options;
  let iterator: AsyncIterator<Uint8Array> | Iterator<Uint8Array> | undefined;
  let iteratorDone = false;
  let pending: Promise<unknown> | undefined;
  let reading = false;
  let offAbort = noop;
  const onSignal = () => readable.destroy(new AbortedError(name, { cause: signal?.reason }));
  const detach = () => {
    offAbort();
    signal?.removeEventListener('abort', onSignal);
  };

  const readable = new Readable({
    highWaterMark,
    read() {
      if (reading) return;
      if (channel !== undefined) {
        // Take what is already buffered synchronously: no promise per chunk
        // while the producer is ahead.
        for (let chunk = channel.tryRead(); chunk !== undefined; chunk = channel.tryRead()) {
          if (!this.push(chunk)) return;
        }
        if (channel.ended) {
          this.push(null);
          return;
        }
        reading = true;
        channel.read().then(
          (next) => {
            reading = false;
            if (this.destroyed) return;
            this.push(next.done ? null : next.value);
          },
          (error: unknown) => {
            reading = false;
            this.destroy(error as Error);
          },
        );
        return;
      }
      iterator ??= iteratorOf(source as AsyncIterable<Uint8Array> | Iterable<Uint8Array>);
      reading = true;
      const next = Promise.resolve(iterator.next());
      pending = next;
      next.then(
        (result) => {
          reading = false;
          pending = undefined;
          if (result.done) iteratorDone = true;
          if (this.destroyed) return;
          this.push(result.done ? null : result.value);
        },
        (error: unknown) => {
          reading = false;
          pending = undefined;
          iteratorDone = true;
          this.destroy(error as Error);
        },
      );
    },
    destroy(error, callback) {
      detach();
      if (channel !== undefined) {
        if (!channel.ended) {
          if (error) channel.abort(error);
          else channel.cancel();
        }
        callback(error);
        return;
      }
      if (iterator === undefined || iteratorDone || typeof iterator.return !== 'function') {
        callback(error);
        return;
      }
      iteratorDone = true;
      const it = iterator;
      const close = () => Promise.resolve(it.return?.());
      if (pending !== undefined) {
        // return() would queue behind the running next(): do not hold 'close' for it.
        pending.then(close, close).catch(noop);
        callback(error);
        return;
      }
      close().then(
        () => callback(error),
        (returnError: unknown) => callback(error ?? (returnError as Error)),
      );
    },
  });
  if (channel !== undefined) {
    offAbort = channel.on('abort', (reason) => {
      if (channel.aborted) readable.destroy(new AbortedError(name, { cause: reason }));
    });
  }
  if (signal !== undefined) {
    if (signal.aborted) onSignal();
    else signal.addEventListener('abort', onSignal, { once: true });
  }
  return readable;
}

/**
 * Options of {@link fromNodeReadable} and {@link fromNodeWritable}.
 *
 * @example
 * ```ts
 * import { fromNodeReadable, type FromNodeOptions } from 'backpressure-stream/node';
 * const options: FromNodeOptions = { capacity: 1024 * 1024, name: 'upload' };
 * const channel = fromNodeReadable(req, options);
 * ```
 */
export interface FromNodeOptions {
  /**
   * Bytes the channel holds before its writer must wait.
   * @default 65536
   */
  capacity?: number;
  /**
   * Aborts the channel, and so destroys the stream, when it aborts.
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
 * A {@link Channel} filled from a Node `Readable` with pause/resume: the
 * stream is paused as soon as the channel is full and resumed on its
 * `'drain'`, so the channel never holds more than `capacity` plus one
 * chunk (the Readable's own buffer, up to its `highWaterMark`, comes on
 * top).
 *
 * The channel closes when the stream ends and is aborted with the stream's
 * error (or a premature-close {@link AbortedError}). Cancelling the channel
 * destroys the stream without an error, aborting it destroys the stream
 * with the reason; either way every listener added to the stream is
 * removed once it has closed.
 *
 * @example
 * ```ts
 * import { createReadStream } from 'node:fs';
 * import { fromNodeReadable } from 'backpressure-stream/node';
 * for await (const chunk of fromNodeReadable(createReadStream(path), { capacity: 2 ** 20 })) {
 *   await upload(chunk);
 * }
 * ```
 */
export function fromNodeReadable<T = Uint8Array>(
  readable: Readable,
  options: FromNodeOptions = {},
): Channel<T> {
  const channel = new Channel<T>(channelOptions(options));
  return feedChannel(channel, (signal, onError) =>
    runNodeStage<T>(readable, { output: channel, signal, onError, label: channel.name }),
  );
}

/**
 * Options of {@link toNodeWritable}.
 *
 * @example
 * ```ts
 * import { toNodeWritable, type ToNodeWritableOptions } from 'backpressure-stream/node';
 * const options: ToNodeWritableOptions = { highWaterMark: 16 * 1024 };
 * req.pipe(toNodeWritable(channel, options));
 * ```
 */
export interface ToNodeWritableOptions {
  /**
   * Bytes the Writable buffers in front of the channel before `write()`
   * returns `false`. The chunk being handed to the channel counts until the
   * channel accepted it.
   * @default 65536
   */
  highWaterMark?: number;
  /**
   * Destroys the Writable with {@link AbortedError} when it aborts.
   * @default undefined
   */
  signal?: AbortSignal;
  /**
   * Used in error messages.
   * @default the channel's name
   */
  name?: string;
}

/**
 * A Node `Writable` that writes into a {@link Channel}. A write's callback
 * runs only once the channel accepted the chunk (it waits for room), so
 * `write()` returns `false` once `highWaterMark` bytes are waiting and
 * `'drain'` follows the channel's reader. `end()` closes the channel;
 * destroying the Writable aborts the channel (with the error, if any);
 * aborting or cancelling the channel destroys the Writable with
 * {@link AbortedError} or {@link ClosedError}. Works with `stream.pipeline`,
 * `stream.finished` and `.pipe()`.
 *
 * @example
 * ```ts
 * import { pipeline } from 'node:stream/promises';
 * import { Channel } from 'backpressure-stream';
 * import { toNodeWritable } from 'backpressure-stream/node';
 * const channel = new Channel({ capacity: 1024 * 1024 });
 * const done = pipeline(req, toNodeWritable(channel));
 * for await (const chunk of channel) await store(chunk);
 * await done;
 * ```
 */
export function toNodeWritable<T extends Uint8Array = Uint8Array>(
  channel: Channel<T>,
  options: ToNodeWritableOptions = {},
): Writable {
  if (!(channel instanceof Channel)) {
    throw new InvalidArgumentError(`toNodeWritable: expected a Channel, got ${typeof channel}`);
  }
  const highWaterMark = options.highWaterMark ?? DEFAULT_HIGH_WATER_MARK;
  checkNumber('highWaterMark', highWaterMark, 0, Number.POSITIVE_INFINITY);
  const name = options.name ?? channel.name;
  const { signal } = options;
  let offAbort = noop;
  const onSignal = () => writable.destroy(new AbortedError(name, { cause: signal?.reason }));
  const detach = () => {
    offAbort();
    signal?.removeEventListener('abort', onSignal);
  };
  const writable = new Writable({
    highWaterMark,
    write(chunk: T, _encoding, callback) {
      if (channel.writable) {
        // Room now: no promise, and the callback completes at once.
        try {
          channel.write(chunk);
        } catch (error) {
          callback(error as Error);
          return;
        }
        callback();
        return;
      }
      channel.send(chunk).then(
        () => callback(),
        (error: unknown) => callback(error as Error),
      );
    },
    final(callback) {
      detach();
      channel.close();
      callback();
    },
    destroy(error, callback) {
      detach();
      if (!channel.closed) {
        channel.abort(error ?? 'the Writable was destroyed before end()');
      }
      callback(error);
    },
  });
  offAbort = channel.on('abort', (reason) => {
    writable.destroy(
      channel.aborted
        ? new AbortedError(name, { cause: reason })
        : new ClosedError(`${name} (cancelled by its reader)`, { cause: reason }),
    );
  });
  if (signal !== undefined) {
    if (signal.aborted) onSignal();
    else signal.addEventListener('abort', onSignal, { once: true });
  }
  return writable;
}

/**
 * A {@link SinkChannel} whose contents are written into a Node `Writable`
 * honouring `write()` returning `false` and `'drain'`: a chunk leaves the
 * channel only when the Writable has room. `close()` the channel to `end()`
 * the Writable; `finished` resolves after `'finish'` and `'close'` (for a
 * file, the descriptor is closed). Aborting the channel destroys the
 * Writable with the reason; a Writable error aborts the channel with it.
 *
 * @example
 * ```ts
 * import { createWriteStream } from 'node:fs';
 * import { fromNodeWritable } from 'backpressure-stream/node';
 * const out = fromNodeWritable(createWriteStream('out.bin'), { capacity: 1024 * 1024 });
 * for await (const chunk of source) await out.send(chunk);
 * out.close();
 * await out.finished;
 * ```
 */
export function fromNodeWritable<T = Uint8Array>(
  writable: Writable,
  options: FromNodeOptions = {},
): SinkChannel<T> {
  return new SinkChannel<T>(channelOptions(options), (channel) => {
    const control = new AbortController();
    const off = channel.on('abort', (reason) =>
      control.abort(reason ?? new AbortedError(channel.name)),
    );
    if (channel.closed) control.abort(new AbortedError(channel.name));
    return runNodeStage<T>(writable, {
      input: channel,
      signal: control.signal,
      onError: (error) => channel.abort(error),
      label: channel.name,
    }).finally(off);
  });
}

/**
 * Options of {@link toNodeDuplex}.
 *
 * @example
 * ```ts
 * import { toNodeDuplex, type ToNodeDuplexOptions } from 'backpressure-stream/node';
 * const options: ToNodeDuplexOptions = { readableHighWaterMark: 64 * 1024 };
 * ```
 */
export interface ToNodeDuplexOptions {
  /**
   * Bytes buffered on the readable side.
   * @default 65536
   */
  readableHighWaterMark?: number;
  /**
   * Bytes buffered on the writable side before `write()` returns `false`.
   * @default 65536
   */
  writableHighWaterMark?: number;
  /**
   * Bytes the channel between the writable side and the transform holds.
   * @default 1 (one chunk: the writable side's buffer does the buffering)
   */
  capacity?: number;
  /**
   * Used in error messages and as the input channel's name.
   * @default 'duplex'
   */
  name?: string;
}

/**
 * A Node `Duplex` running an async generator transform
 * `(source, { signal }) => AsyncIterable`: what is written goes to the
 * transform's `source`, what it yields is read out. Both sides are byte
 * streams (`Duplex.from(generator)` is in object mode and counts chunks),
 * so the high-water marks are in bytes. Destroying the Duplex aborts the
 * transform's signal and input and returns the generator (its `finally`
 * has run by `'close'`); a transform that throws destroys the Duplex with
 * the error.
 *
 * @example
 * ```ts
 * import { pipeline } from 'node:stream/promises';
 * import { toNodeDuplex } from 'backpressure-stream/node';
 * const upper = toNodeDuplex(async function* (source) {
 *   for await (const chunk of source) yield Buffer.from(chunk.toString().toUpperCase());
 * });
 * await pipeline(process.stdin, upper, process.stdout);
 * ```
 */
export function toNodeDuplex(
  transform: (
    source: AsyncIterable<Uint8Array>,
    context: { signal: AbortSignal },
  ) => AsyncIterable<Uint8Array>,
  options: ToNodeDuplexOptions = {},
): Duplex {
  if (typeof transform !== 'function') {
    throw new InvalidArgumentError(`toNodeDuplex: expected a function, got ${typeof transform}`);
  }
  const name = options.name ?? 'duplex';
  const input = new Channel<Uint8Array>({ capacity: options.capacity ?? 1, name });
  const control = new AbortController();
  let iterator: AsyncIterator<Uint8Array> | undefined;
  let pending: Promise<unknown> | undefined;
  let done = false;
  const duplex = new Duplex({
    readableHighWaterMark: options.readableHighWaterMark ?? DEFAULT_HIGH_WATER_MARK,
    writableHighWaterMark: options.writableHighWaterMark ?? DEFAULT_HIGH_WATER_MARK,
    write(chunk: Uint8Array, _encoding, callback) {
      if (input.writable) {
        input.write(chunk);
        callback();
        return;
      }
      input.send(chunk).then(
        () => callback(),
        (error: unknown) => callback(error as Error),
      );
    },
    final(callback) {
      input.close();
      callback();
    },
    read() {
      if (pending !== undefined || done) return;
      iterator ??= transform(input.values(), { signal: control.signal })[Symbol.asyncIterator]();
      const next = iterator.next();
      pending = next;
      next.then(
        (result) => {
          pending = undefined;
          if (result.done) {
            done = true;
            // The transform wants no more input: writers must learn it.
            if (!input.ended) input.cancel();
          }
          if (this.destroyed) return;
          this.push(result.done ? null : result.value);
        },
        (error: unknown) => {
          pending = undefined;
          done = true;
          this.destroy(error as Error);
        },
      );
    },
    destroy(error, callback) {
      if (!control.signal.aborted) control.abort(error ?? quietStop(name));
      if (!input.ended) {
        if (error) input.abort(error);
        else input.cancel();
      }
      if (iterator === undefined || done) {
        callback(error);
        return;
      }
      done = true;
      const it = iterator;
      // The aborted input and signal end a running next(); then return()
      // runs the generator's finally before 'close'.
      Promise.resolve(pending)
        .catch(noop)
        .then(() => it.return?.())
        .then(
          () => callback(error),
          (returnError: unknown) => callback(error ?? (returnError as Error)),
        );
    },
  });
  return duplex;
}

function channelOptions(options: FromNodeOptions): {
  capacity?: number;
  signal?: AbortSignal;
  name?: string;
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
    'toNodeReadable: expected a Channel, an async iterable or an iterable',
  );
}
