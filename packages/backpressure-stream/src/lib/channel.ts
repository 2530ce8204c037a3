import type { ByteBudget } from './budget';
import { Emitter, type EventMap } from './emitter';
import {
  AbortedError,
  abortError,
  BudgetExceededError,
  ClosedError,
  checkNumber,
  InvalidArgumentError,
} from './errors';
import { type StageMetrics, StallClock } from './metrics';
import { byteSize } from './size';
import { type ThrottleOptions, TokenBucket } from './throttle';

function noop(): void {}

/**
 * Options of {@link Channel}.
 *
 * @example
 * ```ts
 * import { Channel, type ChannelOptions } from 'backpressure-stream';
 * const options: ChannelOptions<Uint8Array> = { capacity: 1024 * 1024, name: 'ingest' };
 * const ch = new Channel(options);
 * ```
 */
export interface ChannelOptions<T> {
  /**
   * The high-water mark, in the unit of `size` (bytes by default): `write()`
   * returns `false` once this much is buffered.
   * @default 65536
   */
  capacity?: number;
  /**
   * How big a chunk is. The default measures bytes (`byteLength` of typed
   * arrays and DataViews, `length` of buffer-view `ByteView`s) and rejects
   * anything else; pass `() => 1` to count objects instead.
   * @default byteSize
   */
  size?: (chunk: T) => number;
  /**
   * A hard ceiling: a `write()` that would buffer more throws
   * {@link BudgetExceededError} instead of letting memory grow because a
   * producer ignored `false`.
   * @default Infinity
   */
  limit?: number;
  /**
   * A budget shared with other channels (see {@link ByteBudget}).
   * @default undefined
   */
  budget?: ByteBudget;
  /**
   * Aborts the channel when the signal aborts.
   * @default undefined
   */
  signal?: AbortSignal;
  /**
   * Limit the rate at which the reader gets chunks: a {@link TokenBucket}
   * (shareable between channels) or options for a new one. The producer
   * feels it as ordinary backpressure.
   * @default undefined (no limit)
   */
  throttle?: TokenBucket | ThrottleOptions<never>;
  /**
   * Name used in metrics and error messages.
   * @default 'channel'
   */
  name?: string;
}

/**
 * Options of blocking channel calls.
 *
 * @example
 * ```ts
 * await channel.send(chunk, { signal: AbortSignal.timeout(5000) });
 * ```
 */
export interface WaitOptions {
  /**
   * Stops waiting (rejecting with {@link AbortedError}) without aborting the
   * channel itself.
   * @default undefined
   */
  signal?: AbortSignal;
}

/**
 * Events of a {@link Channel}.
 *
 * @example
 * ```ts
 * channel.on('stall', (buffered) => log.debug({ buffered }, 'producer must wait'));
 * ```
 */
export interface ChannelEvents extends EventMap {
  /** Buffered data fell below capacity after a `write()` returned `false`. */
  drain: [];
  /** A `write()` returned `false`: the producer should wait. */
  stall: [bufferedBytes: number];
  /** The writer closed the channel and the reader has taken everything. */
  end: [];
  /** The channel was aborted or cancelled; the argument is the reason. */
  abort: [reason: unknown];
}

interface Waiter<V> {
  resolve(value: V): void;
  reject(error: unknown): void;
  cleanup(): void;
}

type State = 'open' | 'closed' | 'aborted' | 'cancelled';

const DEFAULT_CAPACITY = 64 * 1024;

/**
 * A bounded, async-iterable queue with byte-accurate backpressure: the
 * primitive every other part of this package is built on.
 *
 * - `write(chunk)` accepts the chunk and returns `false` once `capacity` is
 *   buffered; `'drain'` fires when there is room again. `send(chunk)` is the
 *   awaitable form that waits for room first.
 * - `for await (const chunk of channel)` reads; breaking out of the loop
 *   cancels the channel, so the producer learns the consumer left.
 * - `close()` ends it after the buffered data is read; `abort(reason)` drops
 *   the data and rejects everyone waiting with {@link AbortedError}.
 * - Every blocking call takes an `AbortSignal`.
 *
 * @example
 * ```ts
 * import { Channel } from 'backpressure-stream';
 * const ch = new Channel({ capacity: 1024 * 1024 });
 *
 * // producer: respects backpressure
 * for await (const chunk of source) {
 *   if (!ch.write(chunk)) await ch.ready();
 * }
 * ch.close();
 *
 * // consumer
 * for await (const chunk of ch) await socketWrite(chunk);
 * ```
 */
export class Channel<T = Uint8Array> extends Emitter<ChannelEvents> implements AsyncIterable<T> {
  readonly #capacity: number;
  readonly #limit: number;
  readonly #size: (chunk: T) => number;
  readonly #budget: ByteBudget | undefined;
  readonly #name: string;
  readonly #bucket: TokenBucket | undefined;
  #queue: T[] = [];
  #sizes: number[] = [];
  #head = 0;
  #buffered = 0;
  #peak = 0;
  #state: State = 'open';
  #reason: unknown;
  #readers: Waiter<IteratorResult<T>>[] = [];
  /** `readBatch()` calls waiting for a chunk to arrive (they take what is buffered once they run). */
  #batchReaders: Waiter<void>[] = [];
  #writers: Waiter<void>[] = [];
  /** Bytes of the last batch handed out by `readBatch()`: still charged until the reader asks again. */
  #lent = 0;
  #needDrain = false;
  #bytesIn = 0;
  #bytesOut = 0;
  #chunksIn = 0;
  #chunksOut = 0;
  #dropped = 0;
  readonly #stall = new StallClock();
  #detach: (() => void)[] = [];

  /**
   * A new, open channel.
   *
   * @example
   * ```ts
   * import { Channel } from 'backpressure-stream';
   * const frames = new Channel<{ pts: number; data: Uint8Array }>({
   *   capacity: 4 * 2 ** 20,
   *   size: (frame) => frame.data.byteLength,
   * });
   * ```
   */
  constructor(options: ChannelOptions<T> = {}) {
    super();
    this.#capacity = options.capacity ?? DEFAULT_CAPACITY;
    this.#limit = options.limit ?? Number.POSITIVE_INFINITY;
    checkNumber('channel capacity', this.#capacity, 1, Number.POSITIVE_INFINITY);
    checkNumber('channel limit', this.#limit, this.#capacity, Number.POSITIVE_INFINITY);
    this.#size = options.size ?? (byteSize as (chunk: T) => number);
    this.#budget = options.budget;
    this.#name = options.name ?? 'channel';
    const throttle = options.throttle;
    this.#bucket =
      throttle === undefined || throttle instanceof TokenBucket
        ? throttle
        : new TokenBucket(throttle);
    if (this.#budget !== undefined) {
      this.#detach.push(this.#budget.subscribe(() => this.#afterFree()));
    }
    const signal = options.signal;
    if (signal !== undefined) {
      if (signal.aborted) {
        this.abort(signal.reason);
      } else {
        const onAbort = () => this.abort(signal.reason);
        signal.addEventListener('abort', onAbort, { once: true });
        this.#detach.push(() => signal.removeEventListener('abort', onAbort));
      }
    }
  }

  /** The high-water mark. */
  get capacity(): number {
    return this.#capacity;
  }

  /** Size of the chunks waiting to be read. */
  get buffered(): number {
    return this.#buffered;
  }

  /** Whether a `write()` now would return `true`. */
  get writable(): boolean {
    return this.#state === 'open' && this.#hasRoom();
  }

  /** Whether the writer side is finished (closed, aborted or cancelled). */
  get closed(): boolean {
    return this.#state !== 'open';
  }

  /** Whether the channel was closed and everything in it has been read. */
  get ended(): boolean {
    return this.#state === 'closed' && this.#buffered === 0 && this.#head === this.#queue.length;
  }

  /** Whether the channel was aborted (by `abort()` or its signal). */
  get aborted(): boolean {
    return this.#state === 'aborted';
  }

  /** The channel's name, as given in its options. */
  get name(): string {
    return this.#name;
  }

  /** A snapshot of what the channel has done so far. */
  get metrics(): StageMetrics {
    return {
      name: this.#name,
      capacity: this.#capacity,
      bufferedBytes: this.#buffered,
      peakBufferedBytes: this.#peak,
      bytesIn: this.#bytesIn,
      bytesOut: this.#bytesOut,
      chunksIn: this.#chunksIn,
      chunksOut: this.#chunksOut,
      bytesDropped: this.#dropped,
      stalledMs: this.#stall.totalMs,
      stalls: this.#stall.count,
    };
  }

  /**
   * Accepts `chunk`; returns `false` when the producer should wait for
   * `'drain'` (or `await ready()`) before writing more. Throws
   * {@link ClosedError} after `close()`/`cancel()`, {@link AbortedError}
   * after `abort()`, and {@link BudgetExceededError} past `limit`.
   *
   * @example
   * ```ts
   * if (!channel.write(chunk)) await channel.ready();
   * ```
   */
  write(chunk: T): boolean {
    this.#assertOpen('write to');
    const n = this.#measure(chunk);
    if (this.#buffered + n > this.#limit) {
      throw new BudgetExceededError(this.#name, this.#buffered + n, this.#limit);
    }
    this.#bytesIn += n;
    this.#chunksIn++;
    const reader = this.#readers.shift();
    if (reader !== undefined) {
      this.#bytesOut += n;
      this.#chunksOut++;
      reader.cleanup();
      reader.resolve({ value: chunk, done: false });
      return this.#hasRoom();
    }
    this.#queue.push(chunk);
    this.#sizes.push(n);
    this.#buffered += n;
    this.#budget?.take(n);
    if (this.#buffered + this.#lent > this.#peak) this.#peak = this.#buffered + this.#lent;
    if (this.#batchReaders.length > 0) this.#settle(this.#batchReaders);
    if (this.#hasRoom()) return true;
    this.#needDrain = true;
    this.#stall.start();
    this.emit('stall', this.#buffered);
    return false;
  }

  /**
   * Waits for room, then writes: the awaitable write. Memory stays within
   * `capacity` plus one chunk per concurrent sender.
   *
   * @example
   * ```ts
   * for await (const chunk of file) await channel.send(chunk, { signal });
   * ```
   */
  async send(chunk: T, options: WaitOptions = {}): Promise<void> {
    await this.ready(options);
    this.write(chunk);
  }

  /**
   * Resolves when a `write()` would return `true`; rejects if the channel
   * closes, aborts or the signal fires first.
   *
   * @example
   * ```ts
   * if (!channel.write(chunk)) await channel.ready({ signal });
   * ```
   */
  ready(options: WaitOptions = {}): Promise<void> {
    try {
      this.#assertOpen('write to');
    } catch (error) {
      return Promise.reject(error);
    }
    if (this.#hasRoom()) return Promise.resolve();
    this.#stall.start();
    return this.#wait(this.#writers, options.signal, 'wait for room in');
  }

  /**
   * The next chunk, or `{ done: true }` once the channel is closed and
   * drained (or cancelled). Rejects with {@link AbortedError} after `abort()`.
   *
   * @example
   * ```ts
   * const { value, done } = await channel.read({ signal });
   * ```
   */
  read(options: WaitOptions = {}): Promise<IteratorResult<T>> {
    if (this.#lent > 0) this.#releaseLent();
    if (this.#bucket !== undefined) return this.#readThrottled(this.#bucket, options);
    return this.#readNow(options);
  }

  #readNow(options: WaitOptions): Promise<IteratorResult<T>> {
    if (this.#head < this.#queue.length) {
      return Promise.resolve({ value: this.#take(), done: false });
    }
    if (this.#state === 'aborted') {
      return Promise.reject(new AbortedError(this.#name, { cause: this.#reason }));
    }
    if (this.#state !== 'open') return Promise.resolve({ value: undefined, done: true });
    return this.#wait(this.#readers, options.signal, 'read from');
  }

  async #readThrottled(bucket: TokenBucket, options: WaitOptions): Promise<IteratorResult<T>> {
    // Pay for the chunk before taking it, so it stays counted as buffered while we wait.
    for (;;) {
      if (this.#head < this.#queue.length) {
        await bucket.take(this.#sizes[this.#head] as number, options);
        if (this.#head < this.#queue.length) return { value: this.#take(), done: false };
        continue;
      }
      const result = await this.#readNow(options);
      if (result.done) return result;
      await bucket.take(this.#measure(result.value), options);
      return result;
    }
  }

  /**
   * The next chunk if one is buffered, else `undefined`, without waiting.
   *
   * @example
   * ```ts
   * let chunk;
   * while ((chunk = channel.tryRead()) !== undefined) batch.push(chunk);
   * ```
   */
  tryRead(): T | undefined {
    if (this.#lent > 0) this.#releaseLent();
    if (this.#head === this.#queue.length) return undefined;
    if (this.#bucket !== undefined && !this.#bucket.tryTake(this.#sizes[this.#head] as number)) {
      return undefined;
    }
    return this.#take();
  }

  /**
   * Every chunk buffered now, in order, as one array: waits only when the
   * channel is empty, so a reader that falls behind wakes once per batch
   * instead of once per chunk. `{ done: true }` once the channel is closed
   * and drained (or cancelled); rejects with {@link AbortedError} after
   * `abort()`. With a throttle, a batch holds what the bucket pays for now
   * (at least one chunk).
   *
   * Backpressure is unchanged: the batch stays charged against `capacity`
   * (and the budget) until the reader asks for more (`readBatch`, `read`,
   * `tryRead`, the next iteration step) or the channel ends, so a reader
   * working through a batch holds the producer back exactly as if the
   * chunks were still buffered, and memory stays within `capacity` plus one
   * chunk. (`buffered` no longer counts them; `metrics.peakBufferedBytes`
   * does.)
   *
   * @example
   * ```ts
   * for (;;) {
   *   const { value: batch, done } = await channel.readBatch({ signal });
   *   if (done) break;
   *   socket.cork();
   *   for (const chunk of batch) socket.write(chunk);
   *   socket.uncork();
   * }
   * ```
   */
  async readBatch(options: WaitOptions = {}): Promise<IteratorResult<T[]>> {
    for (;;) {
      if (this.#lent > 0) this.#releaseLent();
      if (this.#head < this.#queue.length) {
        const bucket = this.#bucket;
        if (bucket === undefined) return { value: this.#takeBatch(undefined), done: false };
        // Pay for the first chunk before taking it, so it stays counted while we wait.
        await bucket.take(this.#sizes[this.#head] as number, options);
        if (this.#head < this.#queue.length) return { value: this.#takeBatch(bucket), done: false };
        continue;
      }
      if (this.#state === 'aborted') throw new AbortedError(this.#name, { cause: this.#reason });
      if (this.#state !== 'open') return { value: undefined, done: true };
      await this.#wait(this.#batchReaders, options.signal, 'read from');
    }
  }

  /**
   * Iterates the chunks in batches (see {@link Channel.readBatch}): one
   * array of everything buffered per step. Leaving the loop early cancels
   * the channel, as with `for await (const chunk of channel)`.
   *
   * @example
   * ```ts
   * let bytes = 0;
   * for await (const batch of channel.batches()) {
   *   for (const chunk of batch) bytes += chunk.byteLength;
   * }
   * ```
   */
  batches(options: WaitOptions = {}): AsyncIterableIterator<T[]> {
    const iterator: AsyncIterableIterator<T[]> = {
      next: () => this.readBatch(options),
      return: async (value?: unknown) => {
        if (!this.ended && this.#state !== 'aborted') this.cancel();
        return { value: value as T[], done: true };
      },
      [Symbol.asyncIterator]: () => iterator,
    };
    return iterator;
  }

  /**
   * Ends the writer side: later writes throw {@link ClosedError}, readers get
   * what is buffered and then `done`. Idempotent.
   *
   * @example
   * ```ts
   * channel.close();
   * ```
   */
  close(): void {
    if (this.#state !== 'open') return;
    this.#state = 'closed';
    this.#stall.stop();
    if (this.#writers.length > 0) {
      const error = new ClosedError(this.#name);
      for (const writer of this.#writers.splice(0)) {
        writer.cleanup();
        writer.reject(error);
      }
    }
    if (this.#head === this.#queue.length) this.#finish();
  }

  /**
   * Drops everything buffered and fails every pending and later call with
   * {@link AbortedError} (whose `cause` is `reason`). Idempotent.
   *
   * @example
   * ```ts
   * req.on('close', () => channel.abort(new Error('client went away')));
   * ```
   */
  abort(reason?: unknown): void {
    if (this.#state === 'aborted' || this.#state === 'cancelled') return;
    this.#state = 'aborted';
    this.#reason = reason;
    this.#discard();
    const error = new AbortedError(this.#name, { cause: reason });
    const waiters = [
      ...this.#readers.splice(0),
      ...this.#batchReaders.splice(0),
      ...this.#writers.splice(0),
    ];
    for (const waiter of waiters) {
      waiter.cleanup();
      waiter.reject(error);
    }
    this.#teardown();
    this.emit('abort', reason);
  }

  /**
   * The reader's way out: drops what is buffered, ends pending reads, and
   * makes writers fail with {@link ClosedError} so the producer stops.
   * Breaking out of `for await` calls this.
   *
   * @example
   * ```ts
   * for await (const chunk of channel) {
   *   if (done(chunk)) break; // cancels the channel
   * }
   * ```
   */
  cancel(reason?: unknown): void {
    if (this.#state === 'aborted' || this.#state === 'cancelled') return;
    const wasOpen = this.#state === 'open';
    this.#state = 'cancelled';
    this.#reason = reason;
    this.#discard();
    const error = new ClosedError(`${this.#name} (cancelled by its reader)`, { cause: reason });
    for (const writer of this.#writers.splice(0)) {
      writer.cleanup();
      writer.reject(error);
    }
    for (const reader of this.#readers.splice(0)) {
      reader.cleanup();
      reader.resolve({ value: undefined, done: true });
    }
    this.#settle(this.#batchReaders);
    this.#teardown();
    if (wasOpen || reason !== undefined) this.emit('abort', reason);
  }

  /**
   * Iterates the chunks; leaving the loop early cancels the channel.
   *
   * @example
   * ```ts
   * for await (const chunk of channel) handle(chunk);
   * ```
   */
  [Symbol.asyncIterator](): AsyncIterator<T> {
    return this.values();
  }

  /**
   * An async iterator over the chunks, with a signal that stops the
   * iteration (rejecting with {@link AbortedError}) without aborting the
   * channel.
   *
   * @example
   * ```ts
   * for await (const chunk of channel.values({ signal })) handle(chunk);
   * ```
   */
  values(options: WaitOptions = {}): AsyncIterableIterator<T> {
    const iterator: AsyncIterableIterator<T> = {
      next: () => this.read(options),
      return: async (value?: unknown) => {
        if (!this.ended && this.#state !== 'aborted') this.cancel();
        return { value: value as T, done: true };
      },
      [Symbol.asyncIterator]: () => iterator,
    };
    return iterator;
  }

  #measure(chunk: T): number {
    const n = this.#size(chunk);
    if (typeof n !== 'number' || !(n >= 0) || !Number.isFinite(n)) {
      throw new InvalidArgumentError(
        `${this.#name}: size function returned ${String(n)} for a chunk: expected a finite number >= 0`,
      );
    }
    return n;
  }

  #hasRoom(): boolean {
    const held = this.#buffered + this.#lent;
    if (held >= this.#capacity) return false;
    const budget = this.#budget;
    return budget === undefined || held === 0 || !budget.exhausted;
  }

  /**
   * Takes chunks from the head: all of them, or (throttled) the first, paid
   * for already, and then as many as the bucket pays for now. They stay
   * charged as lent until the reader asks again, unless the channel ended.
   */
  #takeBatch(bucket: TokenBucket | undefined): T[] {
    const queue = this.#queue;
    const sizes = this.#sizes;
    const head = this.#head;
    const end = queue.length;
    let i = head;
    let bytes = 0;
    if (bucket === undefined) {
      for (; i < end; i++) bytes += sizes[i] as number;
    } else {
      bytes += sizes[i++] as number;
      for (; i < end && bucket.tryTake(sizes[i] as number); i++) bytes += sizes[i] as number;
    }
    let batch: T[];
    if (i === end) {
      batch = head === 0 ? queue : queue.slice(head);
      this.#queue = [];
      this.#sizes = [];
      this.#head = 0;
    } else {
      batch = queue.slice(head, i);
      // Drop the references now so taken chunks are collectable before the queue compacts.
      for (let j = head; j < i; j++) queue[j] = undefined as T;
      this.#head = i;
    }
    this.#buffered -= bytes;
    this.#bytesOut += bytes;
    this.#chunksOut += batch.length;
    this.#lent += bytes;
    if (this.#state === 'closed' && this.#head === this.#queue.length) this.#finish();
    return batch;
  }

  #releaseLent(): void {
    const n = this.#lent;
    this.#lent = 0;
    this.#budget?.give(n);
    this.#afterFree();
  }

  /** Resolves every waiter of `list`. */
  #settle(list: Waiter<void>[]): void {
    const waiters = list.splice(0);
    for (const waiter of waiters) {
      waiter.cleanup();
      waiter.resolve();
    }
  }

  #take(): T {
    const chunk = this.#queue[this.#head] as T;
    const n = this.#sizes[this.#head] as number;
    // Drop the reference now so a consumed chunk is collectable before the queue compacts.
    this.#queue[this.#head] = undefined as T;
    this.#head++;
    if (this.#head > 1024 && this.#head * 2 > this.#queue.length) {
      this.#queue = this.#queue.slice(this.#head);
      this.#sizes = this.#sizes.slice(this.#head);
      this.#head = 0;
    }
    this.#buffered -= n;
    this.#bytesOut += n;
    this.#chunksOut++;
    this.#budget?.give(n);
    this.#afterFree();
    if (this.#state === 'closed' && this.#head === this.#queue.length) this.#finish();
    return chunk;
  }

  #afterFree(): void {
    if (this.#state !== 'open' || !this.#hasRoom()) return;
    this.#stall.stop();
    if (this.#writers.length > 0) this.#settle(this.#writers);
    if (this.#needDrain) {
      this.#needDrain = false;
      this.emit('drain');
    }
  }

  #discard(): void {
    this.#stall.stop();
    const n = this.#buffered;
    const lent = this.#lent;
    this.#dropped += n;
    this.#buffered = 0;
    this.#lent = 0;
    this.#queue = [];
    this.#sizes = [];
    this.#head = 0;
    this.#budget?.give(n + lent);
  }

  #finish(): void {
    for (const reader of this.#readers.splice(0)) {
      reader.cleanup();
      reader.resolve({ value: undefined, done: true });
    }
    this.#settle(this.#batchReaders);
    // Nothing more will be written: a batch still out holds nobody back.
    this.#budget?.give(this.#lent);
    this.#lent = 0;
    this.#teardown();
    this.emit('end');
  }

  #teardown(): void {
    for (const detach of this.#detach.splice(0)) detach();
  }

  #assertOpen(action: string): void {
    if (this.#state === 'open') return;
    if (this.#state === 'aborted') {
      throw new AbortedError(`cannot ${action} ${this.#name}: it`, { cause: this.#reason });
    }
    if (this.#state === 'cancelled') {
      throw new ClosedError(`cannot ${action} ${this.#name}: its reader cancelled it, so it`, {
        cause: this.#reason,
      });
    }
    throw new ClosedError(`cannot ${action} ${this.#name}: it`);
  }

  #wait<V>(list: Waiter<V>[], signal: AbortSignal | undefined, action: string): Promise<V> {
    if (signal?.aborted) return Promise.reject(abortError(`${action} ${this.#name}`, signal));
    if (signal === undefined) {
      // No signal, no closures of our own: this runs once per wait on hot paths.
      return new Promise<V>((resolve, reject) => {
        list.push({ resolve, reject, cleanup: noop });
      });
    }
    return new Promise<V>((resolve, reject) => {
      let onAbort: (() => void) | undefined;
      const waiter: Waiter<V> = {
        resolve,
        reject,
        cleanup: () => {
          if (onAbort !== undefined) signal?.removeEventListener('abort', onAbort);
        },
      };
      if (signal !== undefined) {
        onAbort = () => {
          const i = list.indexOf(waiter);
          if (i !== -1) list.splice(i, 1);
          reject(abortError(`${action} ${this.#name}`, signal));
        };
        signal.addEventListener('abort', onAbort, { once: true });
      }
      list.push(waiter);
    });
  }
}
