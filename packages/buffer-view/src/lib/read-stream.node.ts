import type { Readable } from 'node:stream';
import { recordAllocation, recordCopy } from './copy-stats';
import { InvalidArgumentError, OutOfRangeError, TransferError, UnexpectedEofError } from './errors';
import { describe, describeCause } from './iovec.node.ts';
import { type ReadTargetLike, toReadTarget } from './read-target.node.ts';
import { checkLength } from './validate';

/**
 * Byte sources {@link readStreamInto} reads: a Node `Readable` (or any
 * stream with `on`/`pause`/`resume`/`unshift`), a web `ReadableStream` of
 * `Uint8Array`s (byte streams are read with a BYOB reader), or any async
 * iterable of `Uint8Array`s.
 *
 * @example
 * ```ts
 * import { createReadStream } from 'node:fs';
 * import type { StreamSource } from 'buffer-view/node';
 * const sources: StreamSource[] = [createReadStream('a.mp4'), (await fetch(url)).body!];
 * ```
 */
export type StreamSource = Readable | ReadableStream<Uint8Array> | AsyncIterable<Uint8Array>;

/**
 * Options of {@link readStreamInto}.
 *
 * @example
 * ```ts
 * import type { ReadStreamIntoOptions } from 'buffer-view/node';
 * const options: ReadStreamIntoOptions = { exact: true, signal: req.signal, chunkSize: 1 << 20 };
 * ```
 */
export interface ReadStreamIntoOptions {
  /**
   * Reject with {@link UnexpectedEofError} when the source ends before a
   * fixed-size target is full. Needs a target with a known size.
   * @default false
   */
  exact?: boolean;
  /**
   * Stops reading and rejects with `signal.reason`, losing nothing that can
   * be kept: a Node stream is paused with unread bytes put back, a web
   * stream's lock is released (queued chunks stay in it), an async iterator
   * is closed with `return()`. Bytes already read stay in the target.
   * @default undefined (not abortable)
   */
  signal?: AbortSignal;
  /**
   * Size of the buffer a BYOB reader fills: one reusable bounce buffer for
   * targets that copy, or each fresh buffer a `ByteStore` adopts whole.
   * @default 65536
   */
  chunkSize?: number;
}

/**
 * Reads `source` into `target` with exactly one counted copy per byte: each
 * chunk is copied into the target's memory and nothing else is buffered.
 * A fixed region (`Uint8Array`, `ByteView`) is filled from its start and the
 * read stops when it is full; a `ByteStore` is appended to; a `ByteRing` is
 * written in place and, when blocking readers hold it full, reading waits
 * (backpressure reaches the source).
 *
 * A web byte stream (`type: 'bytes'`) is read with a BYOB reader, which
 * never over-reads a fixed region, and into a `ByteStore` without any copy:
 * the reader fills buffers this function allocates and the store adopts
 * them. (A BYOB read transfers the buffer it is given, detaching every other
 * view of it, so it can never read straight into a region or ring you hold.)
 *
 * When a fixed region fills before the source ends, bytes already taken
 * from the source are never dropped: a Node stream gets them back with
 * `unshift()` and stays usable; for sources that cannot take bytes back the
 * call rejects with {@link OutOfRangeError}. Resolves with the bytes read. A
 * failing or prematurely closed source rejects with {@link TransferError}
 * (the source's error is its `cause`, `transferred` the bytes in place).
 *
 * @example
 * ```ts
 * import { ByteStore } from 'buffer-view';
 * import { readStreamInto } from 'buffer-view/node';
 * const store = new ByteStore();
 * const res = await fetch('https://example.com/clip.mp4');
 * await readStreamInto(res.body!, store); // zero-copy when the body is a byte stream
 * ```
 */
export async function readStreamInto(
  source: StreamSource,
  target: ReadTargetLike,
  options: ReadStreamIntoOptions = {},
): Promise<number> {
  const { signal } = options;
  const chunkSize = options.chunkSize ?? 65536;
  checkLength('chunkSize', chunkSize);
  if (chunkSize === 0) throw new OutOfRangeError('chunkSize', 0, 1, Number.MAX_SAFE_INTEGER);
  const into = toReadTarget(target);
  const expected = into.expected;
  if (options.exact === true && expected === undefined) {
    throw new InvalidArgumentError(
      'exact reads need a fixed-size target (a Uint8Array, ByteView or region)',
    );
  }
  signal?.throwIfAborted();
  const src = openSource(source, chunkSize);
  let received = 0;
  let rest: Uint8Array | undefined;
  let ended = false;
  const abort = abortable(signal);

  const pull = async <T>(read: () => Promise<T>): Promise<T> => {
    try {
      return await abort.race(read());
    } catch (cause) {
      if (signal?.aborted === true && cause === signal.reason) throw cause;
      // A chunk of the wrong type is the caller's mistake, not a failed transfer.
      if (InvalidArgumentError.isInstance(cause)) throw cause;
      throw new TransferError('read', received, expected, describeCause(cause), { cause });
    }
  };
  const waitReady = async (): Promise<boolean> => {
    if (into.ready === undefined) return false;
    await abort.race(into.ready(signal));
    return true;
  };

  try {
    const readInto = src.readInto;
    if (readInto !== undefined && into.adopt !== undefined) {
      // Zero-copy: the BYOB reader fills buffers we own, which the target then adopts whole.
      while (!ended) {
        let buffer = new ArrayBuffer(chunkSize);
        recordAllocation(chunkSize);
        let filled = 0;
        while (filled < chunkSize && !ended) {
          const room = new Uint8Array(buffer, filled, chunkSize - filled);
          const got = await pull(() => readInto(room));
          // Each read transfers the buffer, even the one that reports the end: keep the one it came back in.
          if (got.value !== undefined) {
            buffer = got.value.buffer as ArrayBuffer;
            filled += got.value.length;
          }
          ended = got.done;
        }
        if (filled > 0) {
          into.adopt(new Uint8Array(buffer, 0, filled));
          received += filled;
        }
      }
    } else {
      for (;;) {
        if (rest === undefined || rest.length === 0) {
          if (into.ready === undefined && into.region().length === 0) break;
          // A fixed-size target asks for no more than its room, so a BYOB read never over-reads.
          const max = expected === undefined ? chunkSize : Math.max(1, expected - received);
          const got = await pull(() => src.next(max));
          if (got === null) {
            ended = true;
            break;
          }
          rest = got;
          continue;
        }
        const region = into.region();
        if (region.length === 0) {
          if (await waitReady()) continue;
          break;
        }
        const n = Math.min(region.length, rest.length);
        region.set(n === rest.length ? rest : rest.subarray(0, n));
        recordCopy(n);
        rest = rest.subarray(n);
        received += n;
        if (into.commit(n) === false && !(await waitReady())) break;
      }
    }
    if (rest !== undefined && rest.length > 0 && !src.giveBack(rest)) {
      throw new OutOfRangeError('source length (at least)', received + rest.length, 0, received);
    }
    if (ended && options.exact === true && expected !== undefined && received < expected) {
      throw new UnexpectedEofError(expected, received);
    }
    return received;
  } catch (error) {
    if (signal?.aborted === true) {
      if (rest !== undefined && rest.length > 0) src.giveBack(rest);
      src.cancel();
    }
    throw error;
  } finally {
    abort.dispose();
    src.release();
    into.close?.();
  }
}

/** One source, read a chunk at a time. */
interface ChunkSource {
  /** Next bytes (at most `max` for BYOB reads; whole chunks otherwise), or null at the end. */
  next(max: number): Promise<Uint8Array | null>;
  /** Set for a web byte stream: reads into `view`, transferring its buffer to the returned view's. */
  readonly readInto:
    | ((view: Uint8Array) => Promise<ReadableStreamReadResult<Uint8Array>>)
    | undefined;
  /** Puts unread bytes back; false when the source cannot take them. */
  giveBack(bytes: Uint8Array): boolean;
  /** Aborted: stop what is pending without losing what the source can keep. */
  cancel(): void;
  /** Reading is over: detach, leaving the source usable. */
  release(): void;
}

function openSource(source: StreamSource, chunkSize: number): ChunkSource {
  if (isNodeReadable(source)) return nodeSource(source);
  if (typeof (source as ReadableStream<Uint8Array>).getReader === 'function') {
    return webSource(source as ReadableStream<Uint8Array>, chunkSize);
  }
  if (typeof (source as AsyncIterable<Uint8Array>)[Symbol.asyncIterator] === 'function') {
    return iterableSource(source as AsyncIterable<Uint8Array>);
  }
  throw new InvalidArgumentError(
    `expected a Node Readable, a web ReadableStream or an async iterable of Uint8Arrays, got ${describe(source)}`,
  );
}

function isNodeReadable(source: unknown): source is Readable {
  const s = source as Partial<Readable> | null;
  return (
    typeof s === 'object' &&
    s !== null &&
    typeof s.on === 'function' &&
    typeof s.pause === 'function' &&
    typeof s.resume === 'function' &&
    typeof s.unshift === 'function'
  );
}

function toBytes(chunk: unknown): Uint8Array {
  if (chunk instanceof Uint8Array) return chunk;
  if (ArrayBuffer.isView(chunk))
    return new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength);
  throw new InvalidArgumentError(
    `expected the source to produce Uint8Array chunks, got ${describe(chunk)}${typeof chunk === 'string' ? ' (was setEncoding() called?)' : ''}`,
  );
}

/**
 * A Node stream read through 'data' events, one chunk at a time: `read()`
 * in paused mode (and so the stream's async iterator) joins buffered chunks
 * with a copy, while flowing mode hands over each chunk as it was pushed.
 */
function nodeSource(readable: Readable): ChunkSource {
  const queue: Uint8Array[] = [];
  let done = false;
  let stopped = false;
  let failure: { error: unknown } | undefined;
  let wake: (() => void) | undefined;
  const onData = (chunk: unknown): void => {
    try {
      queue.push(toBytes(chunk));
    } catch (error) {
      failure ??= { error };
    }
    readable.pause();
    wake?.();
  };
  const onEnd = (): void => {
    done = true;
    wake?.();
  };
  const onError = (error: unknown): void => {
    failure ??= { error };
    wake?.();
  };
  const onClose = (): void => {
    if (!done) failure ??= { error: new Error('the stream closed before it ended') };
    wake?.();
  };
  if (readable.readableEnded) done = true;
  else if (readable.destroyed) {
    failure = { error: readable.errored ?? new Error('the stream was destroyed before it ended') };
  }
  readable.pause();
  readable.on('data', onData);
  readable.on('end', onEnd);
  readable.on('error', onError);
  readable.on('close', onClose);
  return {
    readInto: undefined,
    async next() {
      for (;;) {
        const chunk = queue.shift();
        if (chunk !== undefined) return chunk;
        if (failure !== undefined) throw failure.error;
        if (done || stopped) return null;
        await new Promise<void>((resolve) => {
          wake = resolve;
          readable.resume();
        });
        wake = undefined;
      }
    },
    giveBack(bytes) {
      queue.unshift(bytes);
      return true;
    },
    cancel() {
      stopped = true;
      readable.pause();
      wake?.();
    },
    release() {
      stopped = true;
      readable.off('data', onData);
      readable.off('end', onEnd);
      readable.off('error', onError);
      readable.off('close', onClose);
      readable.pause();
      // Last chunk first: each unshift() goes in front of the one before.
      if (!readable.destroyed && !readable.readableEnded) {
        for (let i = queue.length - 1; i >= 0; i--) readable.unshift(queue[i] as Uint8Array);
      }
      queue.length = 0;
      wake?.();
    },
  };
}

function webSource(stream: ReadableStream<Uint8Array>, chunkSize: number): ChunkSource {
  if (stream.locked)
    throw new InvalidArgumentError('the ReadableStream is locked to another reader');
  let byob: ReadableStreamBYOBReader | undefined;
  try {
    byob = stream.getReader({ mode: 'byob' });
  } catch {
    // Not a byte stream: read its chunks as they come.
  }
  const reader = byob ?? stream.getReader();
  const release = (): void => {
    try {
      // Rejects a pending read; chunks still queued stay in the stream for the next reader.
      reader.releaseLock();
    } catch {
      // Already released.
    }
  };
  if (byob !== undefined) {
    const readInto = (view: Uint8Array): Promise<ReadableStreamReadResult<Uint8Array>> =>
      byob.read(view) as Promise<ReadableStreamReadResult<Uint8Array>>;
    // One bounce buffer, passed back and forth: each read transfers it and hands it back.
    let bounce: ArrayBuffer | undefined;
    return {
      readInto,
      async next(max) {
        if (bounce === undefined) {
          bounce = new ArrayBuffer(chunkSize);
          recordAllocation(chunkSize);
        }
        const { value, done } = await byob.read(
          new Uint8Array(bounce, 0, Math.min(max, chunkSize)),
        );
        if (value !== undefined) bounce = value.buffer as ArrayBuffer;
        return done || value === undefined ? null : (value as Uint8Array);
      },
      giveBack: () => false,
      cancel: release,
      release,
    };
  }
  const chunks = reader as ReadableStreamDefaultReader<Uint8Array>;
  return {
    readInto: undefined,
    async next() {
      const { value, done } = await chunks.read();
      return done ? null : toBytes(value);
    },
    giveBack: () => false,
    cancel: release,
    release,
  };
}

function iterableSource(iterable: AsyncIterable<Uint8Array>): ChunkSource {
  const iterator = iterable[Symbol.asyncIterator]();
  return {
    readInto: undefined,
    async next() {
      const { value, done } = await iterator.next();
      return done === true ? null : toBytes(value);
    },
    giveBack: () => false,
    cancel() {
      iterator.return?.()?.catch(() => {});
    },
    release() {},
  };
}

/** Races work against an abort signal, with one listener for the whole call. */
function abortable(signal: AbortSignal | undefined): {
  race<T>(work: Promise<T>): Promise<T>;
  dispose(): void;
} {
  if (signal === undefined) return { race: (work) => work, dispose() {} };
  let onAbort: (() => void) | undefined;
  const aborted = new Promise<never>((_, reject) => {
    onAbort = () => reject(signal.reason);
    if (signal.aborted) onAbort();
    else signal.addEventListener('abort', onAbort, { once: true });
  });
  aborted.catch(() => {});
  return {
    race(work) {
      // The loser may still settle later: keep its rejection from going unhandled.
      work.catch(() => {});
      return Promise.race([work, aborted]);
    },
    dispose() {
      if (onAbort !== undefined) signal.removeEventListener('abort', onAbort);
    },
  };
}
