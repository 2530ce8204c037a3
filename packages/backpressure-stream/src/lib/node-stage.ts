// Node streams are handled here by duck typing: this file is part of the
// browser entry, so it must not import node:stream. Everything it touches
// (events, write/end/destroy, pause/resume, the length getters) has been
// public Node API since Node 14; `_readableState`/`_writableState` are only
// read, the same way Node's own `stream.finished` reads them.
import type { Channel } from './channel';
import {
  noop,
  prematureClose,
  type StageMeter,
  stopReason,
  throwIfFailed,
  Wakeup,
} from './stage-util';

/**
 * The parts of a Node `Readable` that backpressure-stream uses. Any
 * `stream.Readable` (and so any `Duplex`, `Transform`, `fs.ReadStream`,
 * `net.Socket`, HTTP request...) matches; it is duck-typed so the browser
 * entry never imports `node:stream`.
 *
 * @example
 * ```ts
 * import type { NodeReadableLike } from 'backpressure-stream';
 * import { createReadStream } from 'node:fs';
 * const source: NodeReadableLike = createReadStream('movie.mp4');
 * ```
 */
export interface NodeReadableLike {
  /** Pulls from the internal buffer (used only to recognise a Readable). */
  read(size?: number): unknown;
  /** Stops `'data'` events. */
  pause(): unknown;
  /** Restarts `'data'` events. */
  resume(): unknown;
  /** Adds an event listener. */
  on(event: string, listener: (...args: never[]) => void): unknown;
  /** Removes an event listener. */
  removeListener(event: string, listener: (...args: never[]) => void): unknown;
  /** Destroys the stream, with `error` if given. */
  destroy(error?: Error): unknown;
  /** Whether `destroy()` was called. */
  readonly destroyed?: boolean;
  /** Whether `'close'` was emitted. */
  readonly closed?: boolean;
  /** Whether `'end'` was emitted. */
  readonly readableEnded?: boolean;
  /** Bytes (or objects) in the internal read buffer. */
  readonly readableLength?: number;
  /** The error the stream was destroyed with, if any. */
  readonly errored?: unknown;
}

/**
 * The parts of a Node `Writable` that backpressure-stream uses. Any
 * `stream.Writable` (`fs.WriteStream`, `http.ServerResponse`, a socket...)
 * matches.
 *
 * @example
 * ```ts
 * import type { NodeWritableLike } from 'backpressure-stream';
 * import { createWriteStream } from 'node:fs';
 * const sink: NodeWritableLike = createWriteStream('copy.mp4');
 * ```
 */
export interface NodeWritableLike {
  /** Writes a chunk; `false` means wait for `'drain'`. */
  write(chunk: never, callback?: (error?: Error | null) => void): boolean;
  /** Ends the writable side. */
  end(): unknown;
  /** Adds an event listener. */
  on(event: string, listener: (...args: never[]) => void): unknown;
  /** Removes an event listener. */
  removeListener(event: string, listener: (...args: never[]) => void): unknown;
  /** Destroys the stream, with `error` if given. */
  destroy(error?: Error): unknown;
  /** Whether `destroy()` was called. */
  readonly destroyed?: boolean;
  /** Whether `'close'` was emitted. */
  readonly closed?: boolean;
  /** Bytes (or objects) written but not yet flushed. */
  readonly writableLength?: number;
  /** Whether `'finish'` was emitted. */
  readonly writableFinished?: boolean;
}

/**
 * A Node `Duplex` or `Transform` (for example `zlib.createGzip()`): both
 * {@link NodeReadableLike} and {@link NodeWritableLike}.
 *
 * @example
 * ```ts
 * import type { NodeDuplexLike } from 'backpressure-stream';
 * import { createGzip } from 'node:zlib';
 * const gzip: NodeDuplexLike = createGzip();
 * ```
 */
export interface NodeDuplexLike extends NodeReadableLike, NodeWritableLike {}

interface StreamState {
  autoDestroy?: boolean;
  emitClose?: boolean;
}

type AnyNodeStream = Partial<NodeReadableLike> &
  Partial<NodeWritableLike> & {
    _readableState?: StreamState;
    _writableState?: StreamState;
  };

const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null;

/** @internal Whether `value` looks like a Node Readable (or Duplex). */
export function isNodeReadable(value: unknown): value is NodeReadableLike {
  return (
    isObject(value) &&
    typeof value.read === 'function' &&
    typeof value.pause === 'function' &&
    typeof value.resume === 'function' &&
    typeof value.on === 'function' &&
    typeof value.destroy === 'function'
  );
}

/** @internal Whether `value` looks like a Node Writable (or Duplex). */
export function isNodeWritable(value: unknown): value is NodeWritableLike {
  return (
    isObject(value) &&
    typeof value.write === 'function' &&
    typeof value.end === 'function' &&
    typeof value.on === 'function' &&
    typeof value.destroy === 'function'
  );
}

/**
 * Whether a `'close'` event is still coming. Streams that are not Node
 * core streams (no state object) are not waited for: they may never emit it.
 */
function closeExpected(stream: AnyNodeStream, destroyed: boolean): boolean {
  // Not `stream.closed`: Node sets it before emitting 'error' and 'close' on
  // the next tick, and our error listener must still be there for that.
  const state = stream._readableState ?? stream._writableState;
  if (state === undefined || state.emitClose === false) return false;
  return destroyed || state.autoDestroy !== false;
}

/** @internal Options of {@link runNodeStage}. */
export interface NodeStageOptions<T> {
  /** Where to put what the stream's readable side emits. */
  output?: Channel<T> | undefined;
  /** What to write into the stream's writable side (then `end()` it). */
  input?: Channel<T> | undefined;
  /** Stops the stage: the stream is destroyed with the reason (none for a quiet stop). */
  signal: AbortSignal;
  /** Told about the stream's own error at once, before the stage settles. */
  onError(error: unknown): void;
  /** Counts `writableLength + readableLength` against the pipeline budget, and gates writes on it. */
  meter?: StageMeter | undefined;
  /** Sizes chunks for the meter's byte counts. */
  size?: ((chunk: T) => number) | undefined;
  /** For error messages. */
  label: string;
}

/**
 * @internal Runs one Node stream as a stage: its readable side is read
 * into `output` with pause/resume (so at most one chunk beyond the
 * channel's room is taken), its writable side is fed from `input`
 * honouring `write()` returning `false` and the meter's budget, and the
 * promise settles only once the stream is finished and closed (file
 * descriptors released), rejecting with the stream's error or the stop
 * reason. Every listener it adds is removed before it settles.
 */
export function runNodeStage<T>(
  stream: AnyNodeStream,
  options: NodeStageOptions<T>,
): Promise<void> {
  const { input, output, signal, meter, label } = options;
  const size = options.size;
  const wake = new Wakeup();
  const listeners: [string, (...args: never[]) => void][] = [];
  const listen = (event: string, listener: (...args: never[]) => void) => {
    stream.on?.(event, listener);
    listeners.push([event, listener]);
  };
  let failed = false;
  let failure: unknown;
  let stopping = false;
  let closed = stream.closed === true;
  let readDone = output === undefined;
  let writeDone = input === undefined;
  let ended = false; // end() was called on the writable side
  let needDrain = false;
  // Cuts a pending read of `input` short when the stage stops for a reason
  // that does not also end the input channel.
  const halt = new AbortController();

  const measure = () => {
    if (meter === undefined) return;
    const held =
      (input !== undefined ? (stream.writableLength ?? 0) : 0) +
      (output !== undefined ? (stream.readableLength ?? 0) : 0);
    meter.set(held);
  };
  const fail = (error: unknown) => {
    if (failed || stopping) return;
    failed = true;
    failure = error;
    halt.abort();
    options.onError(error);
    wake.notify();
  };
  const stop = (reason: unknown) => {
    if (stopping) return;
    stopping = true;
    halt.abort();
    if (stream.destroyed !== true) stream.destroy?.(reason as Error);
    wake.notify();
  };
  const onAbort = () => stop(stopReason(signal));

  listen('error', (error: unknown) => fail(error));
  listen('close', () => {
    closed = true;
    if (!(readDone && writeDone)) fail(prematureClose(label));
    wake.notify();
  });
  let offOutputDrain = noop;
  if (output !== undefined) {
    if (stream.readableEnded === true) readDone = true;
    listen('end', () => {
      readDone = true;
      measure();
      wake.notify();
    });
    listen('data', (chunk: T) => {
      if (stopping || failed) return;
      try {
        if (meter !== undefined && size !== undefined) {
          meter.bytesOut += size(chunk);
          meter.chunksOut++;
        }
        if (!output.write(chunk)) stream.pause?.();
      } catch (error) {
        // A chunk the link cannot measure, or a link torn down under us.
        if (!signal.aborted) fail(error);
      }
      measure();
    });
    offOutputDrain = output.on('drain', () => {
      if (!stopping && !failed) stream.resume?.();
    });
  }
  let offBudget = noop;
  if (input !== undefined) {
    if (stream.writableFinished === true) writeDone = true;
    listen('finish', () => {
      writeDone = true;
      wake.notify();
    });
    listen('drain', () => {
      needDrain = false;
      measure();
      wake.notify();
    });
    if (meter !== undefined) offBudget = meter.subscribe(wake.notify);
  }
  if (stream.destroyed === true && !(readDone && writeDone)) {
    fail(stream.errored ?? prematureClose(label));
  }
  if (signal.aborted) onAbort();
  else signal.addEventListener('abort', onAbort, { once: true });

  const afterWrite = () => {
    measure();
    wake.notify();
  };

  const writeLoop = async (from: Channel<T>): Promise<void> => {
    for (;;) {
      while (!stopping && !failed && (needDrain || (meter !== undefined && !meter.mayTake))) {
        meter?.stall.start();
        await wake.wait();
      }
      meter?.stall.stop();
      if (stopping || failed || (readDone && output !== undefined)) return;
      let next: IteratorResult<T>;
      try {
        next = await from.read({ signal: halt.signal });
      } catch (error) {
        // Either the stage is stopping (halted, or the pipeline is failing
        // and its signal is tearing this stage down) or the input was
        // aborted under it, which is this stage's failure.
        if (!stopping && !signal.aborted) fail(error);
        return;
      }
      if (stopping || failed) return;
      if (next.done) {
        if (from.ended) {
          ended = true;
          stream.end?.();
        } else {
          // The input was cancelled: nobody will feed this stage again.
          stop(undefined);
        }
        return;
      }
      if (meter !== undefined && size !== undefined) {
        meter.bytesIn += size(next.value);
        meter.chunksIn++;
      }
      try {
        needDrain = stream.write?.(next.value as never, afterWrite) === false;
      } catch (error) {
        // Node throws synchronously for a chunk type it cannot write.
        fail(error);
        return;
      }
      measure();
    }
  };

  const run = async () => {
    const writing = input !== undefined ? writeLoop(input) : Promise.resolve();
    if (output !== undefined && !readDone && !stopping) stream.resume?.();
    while (!(readDone && writeDone) && !stopping && !failed) {
      // The readable side ended while input was still coming: the stage
      // wants no more, so release it like a generator that returned early.
      if (output !== undefined && readDone && !ended && input !== undefined) {
        stop(undefined);
        break;
      }
      await wake.wait();
    }
    await writing;
    if (!closed && closeExpected(stream, stopping || failed)) {
      while (!closed) await wake.wait();
    }
  };

  return run().finally(() => {
    signal.removeEventListener('abort', onAbort);
    offOutputDrain();
    offBudget();
    for (const [event, listener] of listeners) stream.removeListener?.(event, listener);
    measure();
    meter?.release();
    if (failed) throw failure;
    throwIfFailed(signal);
  });
}
