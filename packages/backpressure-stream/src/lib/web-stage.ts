import type { Channel } from './channel';
import { noop, type StageMeter, stopReason, throwIfFailed, Wakeup } from './stage-util';

/** @internal Options of {@link runWebReadable}. */
export interface WebReadableStageOptions<T> {
  /** Where the chunks go. */
  output: Channel<T>;
  /** Stops the stage: the stream is cancelled with the reason (none for a quiet stop). */
  signal: AbortSignal;
  /** Told about the stream's error at once. */
  onError(error: unknown): void;
}

/**
 * @internal Reads a web `ReadableStream` into `output`, waiting for room
 * before each read so at most one chunk beyond the channel's room is taken
 * from the stream. Cancels the stream when stopped or when a chunk cannot
 * be written, and always releases the reader's lock before settling.
 */
export async function runWebReadable<T>(
  stream: ReadableStream<T>,
  options: WebReadableStageOptions<T>,
): Promise<void> {
  const { output, signal } = options;
  const reader = stream.getReader();
  let cancelling: Promise<void> | undefined;
  const cancel = (reason: unknown) => {
    cancelling ??= reader.cancel(reason).catch(noop);
  };
  const onAbort = () => cancel(stopReason(signal));
  if (signal.aborted) onAbort();
  else signal.addEventListener('abort', onAbort, { once: true });
  try {
    while (!signal.aborted) {
      await output.ready();
      const next = await reader.read();
      if (next.done || signal.aborted) break;
      output.write(next.value);
    }
  } catch (error) {
    // A rejection caused by the stop itself (output aborted, read cut
    // short) is not this stage's error.
    if (!signal.aborted) {
      options.onError(error);
      cancel(error);
      throw error;
    }
  } finally {
    signal.removeEventListener('abort', onAbort);
    // The source's cancel() has run (its resources are released) before we settle.
    await cancelling;
    reader.releaseLock();
  }
  throwIfFailed(signal);
}

/** @internal Options of {@link runWebWritable}. */
export interface WebWritableStageOptions<T> {
  /** Where the chunks come from; the stream is closed once it ends. */
  input: Channel<T>;
  /** Stops the stage: the stream is aborted with the reason (none for a quiet stop). */
  signal: AbortSignal;
  /** Told about the stream's error at once. */
  onError(error: unknown): void;
  /** Counts the bytes of unfinished writes against the budget and gates writes on it. */
  meter?: StageMeter | undefined;
  /** Sizes chunks for the meter. */
  size: (chunk: T) => number;
}

/**
 * @internal Feeds a web `WritableStream` from `input`: waits for
 * `writer.ready` (the stream's own strategy) and for the meter's budget
 * before taking each chunk, closes the stream when `input` ends and
 * settles once the close completed (or the stream was aborted), with the
 * writer's lock released.
 */
export async function runWebWritable<T>(
  stream: WritableStream<T>,
  options: WebWritableStageOptions<T>,
): Promise<void> {
  const { input, signal, meter, size } = options;
  const writer = stream.getWriter();
  const wake = new Wakeup();
  const halt = new AbortController();
  let failed = false;
  let failure: unknown;
  let pending = 0;
  let inflight = 0;
  let aborting: Promise<void> | undefined;
  // Releasing the lock rejects a still-pending `writer.closed`: not an error.
  let released = false;
  const fail = (error: unknown) => {
    if (failed || released || signal.aborted) return;
    failed = true;
    failure = error;
    halt.abort();
    options.onError(error);
    wake.notify();
  };
  const onAbort = () => {
    halt.abort();
    aborting ??= writer.abort(stopReason(signal)).catch(noop);
    wake.notify();
  };
  if (signal.aborted) onAbort();
  else signal.addEventListener('abort', onAbort, { once: true });
  writer.closed.then(noop, fail);
  const offBudget = meter?.subscribe(wake.notify) ?? noop;
  const stopped = () => failed || signal.aborted;
  let watchedReady: Promise<void> | undefined;
  try {
    for (;;) {
      while (!stopped() && !((writer.desiredSize ?? 0) > 0 && (meter?.mayTake ?? true))) {
        meter?.stall.start();
        if (writer.ready !== watchedReady) {
          watchedReady = writer.ready;
          watchedReady.then(wake.notify, wake.notify);
        }
        await wake.wait();
      }
      meter?.stall.stop();
      if (stopped()) break;
      let next: IteratorResult<T>;
      try {
        next = await input.read({ signal: halt.signal });
      } catch (error) {
        // Aborted input while not stopping: nothing will tear this stage down but us.
        if (!stopped()) fail(error);
        break;
      }
      if (stopped()) break;
      if (next.done) {
        if (!input.ended) {
          // Cancelled input: nobody will feed this stage again.
          onAbort();
          break;
        }
        await writer.close();
        break;
      }
      const n = meter !== undefined ? size(next.value) : 0;
      if (meter !== undefined) {
        meter.bytesIn += n;
        meter.chunksIn++;
        pending += n;
        meter.set(pending);
      }
      inflight++;
      writer.write(next.value).then(
        () => {
          inflight--;
          if (meter !== undefined) {
            pending -= n;
            meter.bytesOut += n;
            meter.chunksOut++;
            meter.set(pending);
          }
          wake.notify();
        },
        (error: unknown) => {
          inflight--;
          fail(error);
        },
      );
    }
  } catch (error) {
    fail(error);
  } finally {
    signal.removeEventListener('abort', onAbort);
    offBudget();
    meter?.release();
    // Error the stream too (a no-op when the stream itself failed).
    if (failed) aborting ??= writer.abort(failure).catch(noop);
    // Settle after the sink's abort() ran (its resources released), unless a
    // write is still running: abort() waits for that write, and a write that
    // hangs (a stalled network) must not keep an aborted stage from settling.
    if (inflight === 0) await aborting;
    released = true;
    writer.releaseLock();
  }
  if (failed) throw failure;
  throwIfFailed(signal);
}
