import type { ByteRing, ByteView, RingReader } from 'buffer-view';
import type { WaitOptions } from './channel';
import { Emitter, type EventMap } from './emitter';
import {
  AbortedError,
  abortError,
  type BackpressureError,
  ClosedError,
  DisconnectedError,
} from './errors';
import type { ChunkIndex, ChunkRecord } from './fan-out-index';
import { type StageMetrics, StallClock } from './metrics';

/**
 * What a {@link BroadcastConsumer} does when it falls more than its budget
 * behind the producer:
 *
 * - `'block'`: holds the producer back (its `write()` returns `false`) and
 *   never loses a byte. The slowest block consumer sets the pace.
 * - `'drop-oldest'`: loses whole chunks from the front of what it has not
 *   read yet until it is within budget again.
 * - `'skip-to-marker'`: jumps to the newest marked chunk (a keyframe) if that
 *   is within budget, else skips everything until the next marked chunk
 *   arrives, so it resumes where a decoder can start, never mid-GOP.
 * - `'disconnect'`: is cut off; its iteration rejects with
 *   {@link DisconnectedError} (reason `'lagged'`).
 *
 * Under every policy but `'block'` the producer never waits for the consumer.
 *
 * @example
 * ```ts
 * import type { SlowConsumerPolicy } from 'backpressure-stream';
 * const policy: SlowConsumerPolicy = viewer.isRecorder ? 'block' : 'skip-to-marker';
 * ```
 */
export type SlowConsumerPolicy = 'block' | 'drop-oldest' | 'skip-to-marker' | 'disconnect';

/**
 * Where a new consumer starts: `'newest'` (only chunks written from now on),
 * `'newest-marker'` (the newest marked chunk, such as the newest keyframe,
 * or else the next marked chunk written) or `'oldest'` (the oldest chunk
 * still in the ring). A start further back than the consumer's budget is
 * moved forward until it fits.
 *
 * @example
 * ```ts
 * import type { BroadcastStart } from 'backpressure-stream';
 * const start: BroadcastStart = 'newest-marker'; // a video viewer joins at a keyframe
 * ```
 */
export type BroadcastStart = 'newest' | 'newest-marker' | 'oldest';

/**
 * Options of {@link Broadcast.subscribe}.
 *
 * @example
 * ```ts
 * import type { BroadcastConsumerOptions } from 'backpressure-stream';
 * const viewer: BroadcastConsumerOptions = {
 *   policy: 'skip-to-marker',
 *   budget: 4 * 2 ** 20,
 *   start: 'newest-marker',
 *   name: `viewer ${id}`,
 * };
 * const consumer = broadcast.subscribe(viewer);
 * ```
 */
export interface BroadcastConsumerOptions {
  /**
   * What to do when the consumer falls more than `budget` bytes behind.
   * There is no default: pick per consumer (see {@link SlowConsumerPolicy}).
   */
  policy: SlowConsumerPolicy;
  /**
   * The most bytes this consumer may keep in the ring: chunks handed to it
   * and not yet released plus chunks not yet handed to it. The policy acts
   * on the chunks not yet handed out; a chunk the consumer still holds (in
   * use until its next `read`/iteration step or `release`) cannot be
   * dropped, so a consumer that holds one chunk while the producer writes a
   * whole ring past it is disconnected with reason `'lapped'` whatever its
   * policy: release chunks promptly (or use `pipeTo`, which releases on the
   * sink's write callback). `budget + 2 × maxChunk` must fit in the
   * broadcast's capacity; a larger budget throws {@link InvalidArgumentError}.
   * @default capacity - 2 * maxChunk (the largest that fits)
   */
  budget?: number;
  /**
   * Where the consumer starts reading.
   * @default 'newest'
   */
  start?: BroadcastStart;
  /**
   * `'skip-to-marker'` only: the most bytes one skip may pass over (what it
   * jumped plus what it waited through for a marker) before the consumer is
   * disconnected (reason `'lagged'`) instead, for example when the
   * producer stopped sending markers.
   * @default Infinity
   */
  maxSkip?: number;
  /**
   * Removes the consumer when it aborts: reads reject with
   * {@link AbortedError}.
   * @default undefined
   */
  signal?: AbortSignal;
  /**
   * Name used in metrics, events and error messages.
   * @default 'consumer-<n>'
   */
  name?: string;
}

/**
 * One chunk as the producer wrote it, never split or merged.
 *
 * `bytes` is a zero-copy view of ring memory and is always one contiguous
 * segment, so `bytes.asUint8Array()` never throws. The chunk is *in use*
 * from the moment it is handed out until the consumer releases it (the
 * iterator does so when asked for the next chunk): until then its bytes are
 * never overwritten. After that the producer may reuse the memory; the view
 * then throws `RingOverrunError` instead of showing other bytes, but a raw
 * `Uint8Array` taken from it does not check.
 *
 * @example
 * ```ts
 * for await (const chunk of consumer) {
 *   if (chunk.marker) console.log(`keyframe at byte ${chunk.offset}, chunk #${chunk.sequence}`);
 *   await send(chunk.bytes.asUint8Array()); // still in use until the next iteration
 * }
 * ```
 */
export interface BroadcastChunk {
  /** The chunk's bytes, a view of ring memory. */
  readonly bytes: ByteView;
  /** Whether the producer wrote it with `{ marker: true }` (for example a keyframe). */
  readonly marker: boolean;
  /** Stream offset of its first byte: the bytes the producer wrote before it. */
  readonly offset: number;
  /** Its number in the producer's sequence of chunks: a gap means chunks were dropped or skipped. */
  readonly sequence: number;
}

/**
 * Events of a {@link BroadcastConsumer}. All are emitted synchronously inside
 * the producer's `write()` that caused them.
 *
 * @example
 * ```ts
 * consumer.on('drop', (bytes, chunks) => log.warn({ bytes, chunks }, 'viewer too slow'));
 * consumer.on('disconnect', () => socket.destroy()); // before the ring reuses its bytes
 * ```
 */
export interface BroadcastConsumerEvents extends EventMap {
  /** `'drop-oldest'` dropped whole chunks it had not read yet. */
  drop: [bytes: number, chunks: number];
  /** `'skip-to-marker'` skipped chunks (jumping to a marker, or waiting for one). */
  skip: [bytes: number, chunks: number];
  /**
   * The consumer was cut off. For `'lapped'` this fires before the producer
   * overwrites the chunks it still held: stop using them now (destroy a
   * socket that has them queued).
   */
  disconnect: [error: DisconnectedError];
  /** The producer ended and the consumer has read everything. */
  end: [];
  /**
   * The consumer left, for any reason; `error` says why unless it ended or
   * closed normally. Chunks it had in use are no longer protected from here on.
   */
  close: [error: BackpressureError | undefined];
}

/**
 * What one {@link BroadcastConsumer} has done so far. `capacity` is its
 * budget; `bufferedBytes` (what the budget bounds) is `lag + inUseBytes`. At
 * any time `bytesIn = bytesOut + bytesDropped + lag`.
 *
 * @example
 * ```ts
 * const m = consumer.metrics;
 * gauge.set({ viewer: m.name }, m.bufferedBytes);
 * if (m.bytesDropped > 0) log.info(`${m.name} lost ${m.chunksDropped} chunks in ${m.skips} skips`);
 * ```
 */
export interface BroadcastConsumerMetrics extends StageMetrics {
  /** The consumer's policy. */
  policy: SlowConsumerPolicy;
  /** Bytes written that the consumer has not been handed yet. */
  lag: number;
  /** Bytes handed to the consumer and not yet released. */
  inUseBytes: number;
  /** Chunks discarded by the policy or when it left. */
  chunksDropped: number;
  /** How many times `'skip-to-marker'` skipped. */
  skips: number;
}

/**
 * The minimum of a Node `Writable` (a socket, an HTTP response) that
 * {@link BroadcastConsumer.pipeTo} needs: `write(chunk, callback)` returning
 * `false` for backpressure, and `'drain'`, `'error'` and `'close'` events.
 *
 * @example
 * ```ts
 * import type { WritableLike } from 'backpressure-stream';
 * const sink: WritableLike = response; // http.ServerResponse, net.Socket, any Writable
 * await consumer.pipeTo(sink);
 * ```
 */
export interface WritableLike {
  /** Queues `chunk`; `callback` runs once the sink no longer needs its memory. */
  write(chunk: Uint8Array, callback: (error?: Error | null) => void): boolean;
  /** Subscribes to `'drain'`, `'error'` or `'close'`. */
  on(event: 'drain' | 'error' | 'close', listener: (error?: unknown) => void): unknown;
  /** Unsubscribes a listener added with `on`. */
  off(event: 'drain' | 'error' | 'close', listener: (error?: unknown) => void): unknown;
  /** Finishes the sink after the last chunk. */
  end?(): unknown;
  /** Tears the sink down, discarding what it has queued (called without an error). */
  destroy?(): unknown;
}

/**
 * Options of {@link BroadcastConsumer.pipeTo}.
 *
 * @example
 * ```ts
 * await consumer.pipeTo(socket, { signal: AbortSignal.timeout(3_600_000), end: false });
 * ```
 */
export interface BroadcastPipeOptions {
  /**
   * Stops piping: the consumer leaves, the sink is destroyed if it still
   * has chunks queued (they would no longer be protected) and the promise
   * rejects with {@link AbortedError}.
   * @default undefined
   */
  signal?: AbortSignal;
  /**
   * Call `sink.end()` once the broadcast ended and every chunk was written.
   * @default true
   */
  end?: boolean;
}

/**
 * @internal What a consumer needs from its broadcast; the broadcast implements
 * it with a private object so this state does not become public API.
 */
export interface BroadcastHost {
  readonly name: string;
  readonly capacity: number;
  readonly ring: ByteRing<number>;
  readonly chunks: ChunkIndex;
  /** Data bytes written so far: the stream offset of the next chunk. */
  bytesIn(): number;
  ended(): boolean;
  join(consumer: BroadcastConsumer, hooks: ConsumerHooks): void;
  /** A block consumer released bytes: the producer may be able to continue. */
  released(consumer: BroadcastConsumer): void;
  leave(consumer: BroadcastConsumer, error: BackpressureError | undefined): void;
}

/** @internal What the broadcast calls on each consumer; closures over the consumer's private state. */
export interface ConsumerHooks {
  readonly blocking: boolean;
  /** Block consumers: ring bytes the writer may fill without touching bytes this consumer holds. */
  free(): number;
  /** Applies the policy to a chunk about to be written; may disconnect the consumer. */
  prepare(incoming: ChunkRecord, reclaimFrom: number): void;
  /** The chunk is in the ring: hand it to a waiting reader. */
  written(): void;
  ended(): void;
  aborted(reason: unknown): void;
  buffered(): number;
  full(): boolean;
}

/** @internal Options after {@link Broadcast.subscribe} validated them. */
export interface ResolvedConsumerOptions {
  name: string;
  policy: SlowConsumerPolicy;
  budget: number;
  start: BroadcastStart;
  maxSkip: number;
  signal: AbortSignal | undefined;
}

interface Waiter {
  resolve(value: IteratorResult<BroadcastChunk>): void;
  reject(error: unknown): void;
  cleanup(): void;
}

type Phase = 'open' | 'ended' | 'closed' | 'failed';

const DONE: IteratorResult<BroadcastChunk> = { value: undefined, done: true };

/**
 * One reader of a {@link Broadcast}, with its own cursor, byte budget and
 * {@link SlowConsumerPolicy}. Iterate it (`for await`) to receive whole
 * chunks as written, as zero-copy views of the broadcast's ring.
 *
 * **In use until next.** A chunk handed out is in use until the consumer
 * releases it: the iterator releases the previous chunk when asked for the
 * next one (or when the loop ends); {@link BroadcastConsumer.read} hands
 * chunks out without releasing and {@link BroadcastConsumer.release} releases
 * explicitly. In-use bytes count against the budget and are never
 * overwritten: a `'block'` consumer holds the producer back, and a
 * non-blocking consumer whose in-use chunk the producer would have to
 * overwrite is disconnected with reason `'lapped'` first ('disconnect' fires
 * synchronously, before the overwrite).
 *
 * @example
 * ```ts
 * const viewer = broadcast.subscribe({ policy: 'skip-to-marker', budget: 4 * 2 ** 20, start: 'newest-marker' });
 * viewer.on('skip', (bytes) => metrics.skipped.inc(bytes));
 * try {
 *   for await (const chunk of viewer) await write(socket, chunk.bytes.asUint8Array());
 * } catch (err) {
 *   if (DisconnectedError.isInstance(err)) log.info(`viewer dropped: ${err.reason}`);
 * }
 * ```
 */
export class BroadcastConsumer
  extends Emitter<BroadcastConsumerEvents>
  implements AsyncIterable<BroadcastChunk>
{
  /**
   * The consumer's name, from its options.
   *
   * @example
   * ```ts
   * log.info(`${consumer.name} joined`);
   * ```
   */
  readonly name: string;
  /**
   * The consumer's slow-consumer policy.
   *
   * @example
   * ```ts
   * if (consumer.policy === 'block') recorders++;
   * ```
   */
  readonly policy: SlowConsumerPolicy;
  /**
   * The most bytes the consumer may keep in the ring (in use plus not yet handed out).
   *
   * @example
   * ```ts
   * const fill = consumer.metrics.bufferedBytes / consumer.budget;
   * ```
   */
  readonly budget: number;
  /**
   * `'skip-to-marker'`: the most bytes one skip may pass over.
   *
   * @example
   * ```ts
   * consumer.maxSkip; // Infinity unless set
   * ```
   */
  readonly maxSkip: number;
  readonly #host: BroadcastHost;
  readonly #reader: RingReader<number>;
  /** Sequence number of the next chunk to hand out; past the end while skipping the chunk being written. */
  #next: number;
  /** Waiting for a marked chunk: after joining at `'newest-marker'`, or after a skip found none in reach. */
  #awaiting: 'join' | 'skip' | undefined;
  #skipped = 0;
  #held: ChunkRecord[] = [];
  #heldBytes = 0;
  #phase: Phase = 'open';
  #error: BackpressureError | undefined;
  #waiters: Waiter[] = [];
  #peak = 0;
  #bytesIn = 0;
  #chunksIn = 0;
  #bytesOut = 0;
  #chunksOut = 0;
  #bytesDropped = 0;
  #chunksDropped = 0;
  #skips = 0;
  readonly #stall = new StallClock();
  #detach: (() => void) | undefined;

  /** @internal Use {@link Broadcast.subscribe}. */
  constructor(host: BroadcastHost, options: ResolvedConsumerOptions) {
    super();
    this.#host = host;
    this.name = options.name;
    this.policy = options.policy;
    this.budget = options.budget;
    this.maxSkip = options.maxSkip;
    const { chunks, ring } = host;
    const end = chunks.end;
    let next = end;
    if (options.start === 'oldest') {
      next = chunks.first;
      while (next < end && !this.#fits(next)) next++;
      if (next > chunks.first && this.policy === 'skip-to-marker') {
        // Moved forward mid-stream: start at a marker, as a skip would.
        const marker = ring.newestMarker();
        if (marker !== undefined && marker.value >= next) next = marker.value;
        else this.#awaiting = 'join';
      }
    } else if (options.start === 'newest-marker') {
      const marker = ring.newestMarker();
      if (marker !== undefined && this.#fits(marker.value)) next = marker.value;
      else this.#awaiting = 'join';
    }
    if (this.#awaiting !== undefined) next = end;
    this.#next = next;
    if (next < end) {
      this.#bytesIn = host.bytesIn() - chunks.get(next).pos;
      this.#chunksIn = end - next;
      this.#peak = this.#bytesIn;
    }
    this.#reader = ring.reader({
      start: next < end ? chunks.get(next).at : 'newest',
      blocking: this.policy === 'block',
    });
    host.join(this, {
      blocking: this.policy === 'block',
      free: () =>
        (this.#reader.heldFrom ?? Number.POSITIVE_INFINITY) + ring.capacity - ring.writeOffset,
      prepare: (incoming, reclaimFrom) => this.#prepare(incoming, reclaimFrom),
      written: () => this.#written(),
      ended: () => {
        // Nothing holds a producer that has finished.
        this.#stall.stop();
        if (this.#waiters.length > 0 && this.#phase === 'open') this.#leave('ended', undefined);
      },
      aborted: (reason) =>
        this.#leave(
          'failed',
          new DisconnectedError(this.name, 'producer-aborted', this.#buffered(), this.budget, {
            cause: reason,
          }),
        ),
      buffered: () => this.#buffered(),
      full: () =>
        this.#phase === 'open' && this.policy === 'block' && this.#buffered() >= this.budget,
    });
    const signal = options.signal;
    if (signal !== undefined) {
      const onAbort = () =>
        this.#leave('failed', new AbortedError(`consumer ${this.name}`, { cause: signal.reason }));
      if (signal.aborted) {
        onAbort();
      } else {
        signal.addEventListener('abort', onAbort, { once: true });
        this.#detach = () => signal.removeEventListener('abort', onAbort);
      }
    }
  }

  /**
   * Whether the consumer has left: it read to the end, closed, was
   * disconnected, or its signal or the producer aborted.
   *
   * @example
   * ```ts
   * if (!consumer.closed) consumer.close();
   * ```
   */
  get closed(): boolean {
    return this.#phase !== 'open';
  }

  /**
   * Why the consumer was cut off ({@link DisconnectedError} or
   * {@link AbortedError}), or `undefined`.
   *
   * @example
   * ```ts
   * if (DisconnectedError.isInstance(consumer.error)) console.log(consumer.error.reason);
   * ```
   */
  get error(): BackpressureError | undefined {
    return this.#error;
  }

  /**
   * A snapshot of what the consumer has done so far.
   *
   * @example
   * ```ts
   * const { lag, bytesDropped, stalledMs } = consumer.metrics;
   * ```
   */
  get metrics(): BroadcastConsumerMetrics {
    const lag = this.#pending();
    return {
      name: this.name,
      capacity: this.budget,
      bufferedBytes: lag + this.#heldBytes,
      peakBufferedBytes: this.#peak,
      bytesIn: this.#bytesIn,
      bytesOut: this.#bytesOut,
      chunksIn: this.#chunksIn,
      chunksOut: this.#chunksOut,
      bytesDropped: this.#bytesDropped,
      stalledMs: this.#stall.totalMs,
      stalls: this.#stall.count,
      policy: this.policy,
      lag,
      inUseBytes: this.#heldBytes,
      chunksDropped: this.#chunksDropped,
      skips: this.#skips,
    };
  }

  /**
   * The next chunk, without releasing chunks handed out before (use
   * {@link BroadcastConsumer.release}); `{ done: true }` once the producer
   * ended and everything was read, or after `close()`. Rejects with
   * {@link DisconnectedError} or {@link AbortedError} once the consumer was
   * cut off. The signal stops only this wait.
   *
   * @example
   * ```ts
   * const { value: chunk, done } = await consumer.read({ signal });
   * if (!done) socket.write(chunk.bytes.asUint8Array(), () => consumer.release(chunk));
   * ```
   */
  read(options: WaitOptions = {}): Promise<IteratorResult<BroadcastChunk>> {
    if (this.#phase === 'failed') return Promise.reject(this.#error);
    if (this.#phase !== 'open') return Promise.resolve(DONE);
    const chunk = this.#take();
    if (chunk !== undefined) return Promise.resolve({ value: chunk, done: false });
    if (this.#host.ended()) {
      this.#leave('ended', undefined);
      return Promise.resolve(DONE);
    }
    const signal = options.signal;
    if (signal?.aborted) return Promise.reject(abortError(`read from ${this.name}`, signal));
    return new Promise((resolve, reject) => {
      let onAbort: (() => void) | undefined;
      const waiter: Waiter = {
        resolve,
        reject,
        cleanup: () => {
          if (onAbort !== undefined) signal?.removeEventListener('abort', onAbort);
        },
      };
      if (signal !== undefined) {
        onAbort = () => {
          const i = this.#waiters.indexOf(waiter);
          if (i !== -1) this.#waiters.splice(i, 1);
          reject(abortError(`read from ${this.name}`, signal));
        };
        signal.addEventListener('abort', onAbort, { once: true });
      }
      this.#waiters.push(waiter);
    });
  }

  /**
   * Ends the use of chunks handed out: every chunk up to and including
   * `chunk` (default: all of them). Their bytes no longer count against the
   * budget and the producer may overwrite them. Releasing a chunk twice, or
   * after leaving, does nothing.
   *
   * @example
   * ```ts
   * socket.write(chunk.bytes.asUint8Array(), () => consumer.release(chunk));
   * ```
   */
  release(chunk?: BroadcastChunk): void {
    if (this.#phase !== 'open' || this.#held.length === 0) return;
    const last = chunk === undefined ? Number.POSITIVE_INFINITY : chunk.sequence;
    let freed = 0;
    while (this.#held.length > 0 && (this.#held[0] as ChunkRecord).seq <= last) {
      freed += (this.#held.shift() as ChunkRecord).length;
    }
    if (freed === 0) return;
    this.#heldBytes -= freed;
    if (this.policy !== 'block') return;
    this.#syncHold();
    if (this.#buffered() < this.budget) this.#stall.stop();
    this.#host.released(this);
  }

  /**
   * Leaves the broadcast quietly: pending reads resolve `{ done: true }`,
   * chunks in use are released and a `'block'` consumer stops holding the
   * producer back. Breaking out of `for await` calls it. Idempotent.
   *
   * @example
   * ```ts
   * socket.on('close', () => consumer.close());
   * ```
   */
  close(): void {
    this.#leave('closed', undefined);
  }

  /**
   * Removes the consumer with a reason: its reads reject with
   * {@link DisconnectedError} (reason `'removed'`, `cause` = `cause`), for
   * example when a server kicks a viewer.
   *
   * @example
   * ```ts
   * consumer.disconnect(new Error('session expired'));
   * ```
   */
  disconnect(cause?: unknown): void {
    if (this.#phase !== 'open') return;
    this.#leave(
      'failed',
      new DisconnectedError(this.name, 'removed', this.#buffered(), this.budget, { cause }),
    );
  }

  /**
   * Iterates the chunks. Each chunk stays in use until the next iteration
   * asks for another; leaving the loop closes the consumer.
   *
   * @example
   * ```ts
   * for await (const chunk of consumer) await sendFragment(chunk.bytes);
   * ```
   */
  [Symbol.asyncIterator](): AsyncIterator<BroadcastChunk> {
    return {
      next: () => {
        this.release();
        return this.read();
      },
      return: async (value?: unknown) => {
        this.close();
        return { value: value as BroadcastChunk, done: true };
      },
    };
  }

  /**
   * Writes every chunk to a Node-like writable (a socket, an HTTP response),
   * honouring its backpressure, and keeps each chunk in use exactly until
   * the sink's write callback says it is done with the memory. Resolves once
   * the broadcast ended and every chunk was written (then calls `sink.end()`
   * unless `end: false`). If the consumer is cut off while the sink still has
   * chunks queued, the sink is destroyed synchronously, before the ring can
   * reuse those bytes, and the promise rejects with the reason (a
   * {@link DisconnectedError}, say). A sink that errors or closes makes the
   * consumer leave.
   *
   * @example
   * ```ts
   * import { createServer } from 'node:http';
   * createServer((req, res) => {
   *   const viewer = live.subscribe({ policy: 'skip-to-marker', start: 'newest-marker' });
   *   viewer.pipeTo(res).catch((err) => log.info({ err }, 'viewer left'));
   * });
   * ```
   */
  async pipeTo(sink: WritableLike, options: BroadcastPipeOptions = {}): Promise<void> {
    const { signal } = options;
    let failure: { error: unknown } | undefined;
    let inFlight = 0;
    // One wait at a time: for 'drain' after write() returned false, or for the last callbacks.
    let waiting: { resolve: () => void; on: 'drain' | 'flushed' } | undefined;
    const wake = (on?: 'drain' | 'flushed') => {
      if (waiting === undefined || (on !== undefined && waiting.on !== on)) return;
      const { resolve } = waiting;
      waiting = undefined;
      resolve();
    };
    const wait = (on: 'drain' | 'flushed') =>
      new Promise<void>((resolve) => {
        waiting = { resolve, on };
      });
    const fail = (error: unknown, destroy: boolean) => {
      if (failure !== undefined) return;
      failure = { error };
      // Chunks the sink still has queued stop being protected once we leave. No error
      // argument: a Node stream would emit it as 'error' after our listener is gone;
      // the reason reaches the caller through the returned promise instead.
      if (destroy && inFlight > 0) sink.destroy?.();
      this.close();
      wake();
    };
    const onError = (error?: unknown) => fail(error, false);
    const onClose = () => fail(new ClosedError(`the sink of consumer ${this.name}`), false);
    const onDrain = () => wake('drain');
    const onAbort = () => fail(abortError(`pipe ${this.name}`, signal as AbortSignal), true);
    const offClose = this.on('close', (error) => {
      // Left for a reason other than our own fail() or the broadcast's end: this runs
      // synchronously (inside the producer's write() for a disconnect), before the
      // ring can reuse bytes the sink still has queued.
      if (failure !== undefined || (error === undefined && this.#host.ended())) return;
      fail(error ?? new ClosedError(`consumer ${this.name} (closed while piping)`), true);
    });
    sink.on('error', onError);
    sink.on('close', onClose);
    sink.on('drain', onDrain);
    if (signal?.aborted) onAbort();
    else signal?.addEventListener('abort', onAbort, { once: true });
    try {
      while (failure === undefined) {
        const result = await this.read();
        if (result.done === true || failure !== undefined) break;
        const chunk = result.value;
        inFlight++;
        const ok = sink.write(chunk.bytes.asUint8Array(), (error) => {
          inFlight--;
          if (error !== undefined && error !== null) fail(error, false);
          else this.release(chunk);
          if (inFlight === 0) wake('flushed');
        });
        if (!ok && failure === undefined) await wait('drain');
      }
      while (failure === undefined && inFlight > 0) await wait('flushed');
    } catch (error) {
      fail(error, true);
    } finally {
      offClose();
      sink.off('error', onError);
      sink.off('close', onClose);
      sink.off('drain', onDrain);
      signal?.removeEventListener('abort', onAbort);
    }
    if (failure !== undefined) throw failure.error;
    if (options.end !== false) sink.end?.();
  }

  #fits(seq: number): boolean {
    return this.#host.bytesIn() - this.#host.chunks.get(seq).pos <= this.budget;
  }

  /** Bytes written that this consumer has not been handed yet. */
  #pending(): number {
    if (this.#phase !== 'open') return 0;
    const chunks = this.#host.chunks;
    return this.#next < chunks.end ? this.#host.bytesIn() - chunks.get(this.#next).pos : 0;
  }

  #buffered(): number {
    return this.#heldBytes + this.#pending();
  }

  /** Ring offset of the oldest byte this consumer still needs. */
  #pinnedAt(): number {
    if (this.#held.length > 0) return (this.#held[0] as ChunkRecord).at;
    const chunks = this.#host.chunks;
    return this.#next < chunks.end ? chunks.get(this.#next).at : Number.POSITIVE_INFINITY;
  }

  #prepare(incoming: ChunkRecord, reclaimFrom: number): void {
    if (this.#phase !== 'open') return;
    const n = incoming.length;
    // What happens to the incoming chunk is counted last, once the consumer is sure to stay.
    let fate: 'offered' | 'skipped' | 'ignored' = 'offered';
    let event: ['drop' | 'skip', number, number] | undefined;
    if (this.#awaiting !== undefined) {
      if (incoming.marker) {
        this.#awaiting = undefined;
        this.#skipped = 0;
      } else {
        this.#next = incoming.seq + 1;
        fate = this.#awaiting === 'skip' ? 'skipped' : 'ignored';
        if (fate === 'skipped') {
          if (this.#skipped + n > this.maxSkip) {
            this.#skippedTooFar(this.#skipped + n);
            return;
          }
          this.#skipped += n;
          event = ['skip', n, 1];
        }
      }
    } else if (this.policy !== 'block' && this.#buffered() + n > this.budget) {
      if (this.policy === 'disconnect') {
        const lag = this.#buffered() + n;
        this.#leave('failed', new DisconnectedError(this.name, 'lagged', lag, this.budget));
        return;
      }
      if (this.policy === 'drop-oldest') {
        const chunks = this.#host.chunks;
        const from = this.#next;
        const before = this.#bytesDropped;
        while (this.#next < chunks.end && this.#buffered() + n > this.budget) {
          this.#dropped(chunks.get(this.#next).length, 1);
          this.#next++;
        }
        event = ['drop', this.#bytesDropped - before, this.#next - from];
      } else {
        const skip = this.#skip(incoming, reclaimFrom);
        if (skip === undefined) return;
        if (skip.waiting) fate = 'skipped';
        event = ['skip', skip.bytes, skip.chunks];
      }
    }
    if (this.policy !== 'block' && this.#pinnedAt() < reclaimFrom) {
      // Checked before the write: the chunks it holds must never change under it.
      const lag = this.#buffered() + (fate === 'offered' ? n : 0);
      this.#leave('failed', new DisconnectedError(this.name, 'lapped', lag, this.#host.capacity));
      return;
    }
    if (fate !== 'ignored') {
      this.#bytesIn += n;
      this.#chunksIn++;
    }
    if (fate === 'skipped') this.#dropped(n, 1);
    if (event !== undefined) this.emit(event[0], event[1], event[2]);
  }

  /**
   * `'skip-to-marker'` over budget: jump to the newest marker in reach, or
   * skip everything (the incoming chunk too) and wait for the next one.
   * Accounts for the chunks already written; the caller handles the incoming one.
   */
  #skip(
    incoming: ChunkRecord,
    reclaimFrom: number,
  ): { bytes: number; chunks: number; waiting: boolean } | undefined {
    const { chunks, ring } = this.#host;
    const n = incoming.length;
    const from = this.#next;
    let to = chunks.end;
    let waiting = !incoming.marker;
    if (waiting) {
      const marker = ring.newestMarker();
      if (marker !== undefined && marker.value > from) {
        const record = chunks.get(marker.value);
        const lag = this.#heldBytes + this.#host.bytesIn() - record.pos + n;
        if (record.at >= reclaimFrom && lag <= this.budget) {
          to = marker.value;
          waiting = false;
        }
      }
    }
    const toPos = to < chunks.end ? chunks.get(to).pos : this.#host.bytesIn();
    const jumped = toPos - (from < chunks.end ? chunks.get(from).pos : toPos);
    const bytes = jumped + (waiting ? n : 0);
    if (bytes > this.maxSkip) {
      this.#skippedTooFar(bytes);
      return undefined;
    }
    this.#skips++;
    this.#dropped(jumped, to - from);
    if (waiting) {
      this.#awaiting = 'skip';
      this.#skipped = bytes;
      this.#next = incoming.seq + 1;
    } else {
      this.#next = to;
    }
    return { bytes, chunks: to - from + (waiting ? 1 : 0), waiting };
  }

  #skippedTooFar(bytes: number): void {
    this.#leave('failed', new DisconnectedError(this.name, 'lagged', bytes, this.maxSkip));
  }

  #dropped(bytes: number, chunks: number): void {
    this.#bytesDropped += bytes;
    this.#chunksDropped += chunks;
  }

  #written(): void {
    if (this.#phase !== 'open') return;
    while (this.#waiters.length > 0) {
      const chunk = this.#take();
      if (chunk === undefined) break;
      const waiter = this.#waiters.shift() as Waiter;
      waiter.cleanup();
      waiter.resolve({ value: chunk, done: false });
    }
    const buffered = this.#buffered();
    if (buffered > this.#peak) this.#peak = buffered;
    if (this.policy !== 'block') return;
    if (this.#held.length === 0) this.#syncHold();
    if (buffered >= this.budget) this.#stall.start();
  }

  #take(): BroadcastChunk | undefined {
    const chunks = this.#host.chunks;
    if (this.#awaiting !== undefined || this.#next >= chunks.end) return undefined;
    const record = chunks.get(this.#next);
    const reader = this.#reader;
    if (reader.offset !== record.at) reader.seek(record.at);
    const bytes = reader.read(record.length);
    this.#held.push(record);
    this.#heldBytes += record.length;
    this.#next++;
    this.#bytesOut += record.length;
    this.#chunksOut++;
    return { bytes, marker: record.marker, offset: record.pos, sequence: record.seq };
  }

  /**
   * Block consumers: moves the ring reader's hold up to the oldest byte still
   * needed, so the ring's own blocking check agrees with our accounting.
   */
  #syncHold(): void {
    const reader = this.#reader;
    const chunks = this.#host.chunks;
    let target: number;
    if (this.#held.length > 0) target = (this.#held[0] as ChunkRecord).at;
    else if (this.#next < chunks.end) target = chunks.get(this.#next).at;
    else target = this.#host.ring.writeOffset;
    if (target > reader.offset) reader.seek(target);
    reader.release(Math.min(target, reader.offset));
  }

  #leave(phase: Exclude<Phase, 'open'>, error: BackpressureError | undefined): void {
    if (this.#phase !== 'open') return;
    const pending = this.#pending();
    if (pending > 0) this.#dropped(pending, this.#host.chunks.end - this.#next);
    this.#phase = phase;
    this.#error = error;
    this.#held = [];
    this.#heldBytes = 0;
    this.#reader.close();
    this.#stall.stop();
    this.#detach?.();
    this.#detach = undefined;
    for (const waiter of this.#waiters.splice(0)) {
      waiter.cleanup();
      if (error !== undefined) waiter.reject(error);
      else waiter.resolve(DONE);
    }
    this.#host.leave(this, error);
    if (DisconnectedError.isInstance(error)) this.emit('disconnect', error);
    if (phase === 'ended') this.emit('end');
    this.emit('close', error);
  }
}
