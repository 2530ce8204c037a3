import type { ByteRing, ByteView, RingReader } from 'buffer-view';
import type { WaitOptions } from './channel';
import { Emitter, type EventMap, type Listener } from './emitter';
import {
  AbortedError,
  abortError,
  type BackpressureError,
  ClosedError,
  DisconnectedError,
  InvalidArgumentError,
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
 *   read yet until it is within budget again, and the chunk being written
 *   too if the chunks it has in use leave no room for it.
 * - `'skip-to-marker'`: jumps to the newest marked chunk (a keyframe) if that
 *   is within budget, else skips everything until the next marked chunk
 *   that fits beside the chunks it has in use, so it resumes where a decoder
 *   can start, never mid-GOP.
 * - `'disconnect'`: is cut off; its iteration rejects with
 *   {@link DisconnectedError} (reason `'lagged'`).
 *
 * So under every policy but `'block'` a consumer never keeps more than its
 * budget, with one exception: `'drop-oldest'` and `'skip-to-marker'` still
 * hand a consumer with nothing in use a chunk larger than its whole budget
 * (`'disconnect'` cuts it off). A `'block'` consumer may exceed it by up to
 * the chunk whose write returned `false`, as with a stream's high-water mark.
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
   * Wake-up coalescing, as network stacks batch interrupts: a reader waiting
   * for data is woken only once `minBytes` are pending for it, `maxWaitMs`
   * after the first pending byte arrived, or when something else happens
   * (the broadcast ends or aborts, the policy dropped or skipped chunks, a
   * skip or a `'newest-marker'` join resumes at a marker), and then reads
   * everything pending at once with {@link BroadcastConsumer.readBatch} (or
   * the next reads return at once). It trades a little latency for far
   * fewer wake-ups: with hundreds of consumers on one thread, waking each
   * of them for every chunk costs the producer more than the writes. It
   * never costs bytes: a waiting reader is also woken before the next chunk
   * could push it over its budget, so coalescing alone never makes a policy
   * drop, skip or disconnect. A reader that is busy when data arrives gets
   * it on its next call without waiting.
   * @default undefined (no coalescing: a waiting reader is woken by every chunk)
   */
  coalesce?: BroadcastCoalesceOptions;
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
 * When a waiting {@link BroadcastConsumer} is woken (its
 * `coalesce` option): once `minBytes` are pending for it or `maxWaitMs`
 * after the first of them arrived, whichever comes first. For live video,
 * a few milliseconds of delay are invisible to a player and spare the
 * server one wake-up per viewer per fragment.
 *
 * @example
 * ```ts
 * import type { BroadcastCoalesceOptions } from 'backpressure-stream';
 * const coalesce: BroadcastCoalesceOptions = { minBytes: 256 * 1024, maxWaitMs: 5 };
 * const viewer = live.subscribe({ policy: 'skip-to-marker', start: 'newest-marker', coalesce });
 * for await (const batch of viewer.batches()) recorder.append(batch); // copies them before the next step
 * ```
 */
export interface BroadcastCoalesceOptions {
  /**
   * Wake the reader once this many bytes are pending. Whatever the value,
   * the reader is woken before the next chunk (up to the broadcast's
   * `maxChunk`) could push it over its budget.
   * @default Infinity (only the time, the budget and events wake it)
   */
  minBytes?: number;
  /**
   * Wake the reader at the latest this many milliseconds after the first
   * byte it has not been handed arrived (timers fire late under load;
   * `Infinity` waits for `minBytes`, the budget or an event). `0` turns
   * coalescing off.
   * @default 5
   */
  maxWaitMs?: number;
}

/**
 * One chunk as the producer wrote it, never split or merged.
 *
 * `bytes` is a zero-copy view of ring memory and is always one contiguous
 * segment, so `bytes.asUint8Array()` never throws. Every consumer is
 * handed the same object for a chunk: treat it as read-only. The chunk is *in use*
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
 * The callback of {@link BroadcastConsumer.forEachBatch}: receives everything
 * pending for the consumer as one read-only array of chunks (the same
 * zero-copy chunks `read()` hands out). The chunks are in use while it runs
 * and, if it returns a promise, until that settles; no other batch is
 * delivered meanwhile. Throwing (or rejecting) ends the consumer.
 *
 * @example
 * ```ts
 * import type { BroadcastBatchHandler } from 'backpressure-stream';
 * const count: BroadcastBatchHandler = (batch) => {
 *   for (const chunk of batch) total += chunk.bytes.length;
 * };
 * await viewer.forEachBatch(count);
 * ```
 */
export type BroadcastBatchHandler = (batch: readonly BroadcastChunk[]) => void | PromiseLike<void>;

/**
 * @internal What a consumer needs from its broadcast; the broadcast implements
 * it with a private object so this state does not become public API.
 */
export interface BroadcastHost {
  readonly name: string;
  readonly capacity: number;
  readonly maxChunk: number;
  readonly ring: ByteRing<number>;
  readonly chunks: ChunkIndex;
  /** At most the lowest `trigger` of any link: a write that does not pass it visits none. */
  readonly schedule: { minTrigger: number };
  /** Data bytes written so far: the stream offset of the next chunk. */
  bytesIn(): number;
  ended(): boolean;
  join(consumer: BroadcastConsumer, hooks: ConsumerHooks): ConsumerLink;
  /** A block consumer released bytes: the producer may be able to continue. */
  released(consumer: BroadcastConsumer): void;
  leave(consumer: BroadcastConsumer, error: BackpressureError | undefined): void;
  /** The link's trigger dropped while `write()` runs: hand it the chunk being written too. */
  touch(link: ConsumerLink): void;
  /**
   * A coalescing reader with a time limit parked: from the next write on,
   * the broadcast's one timer calls `link.hooks.expire()` until it says the
   * reader no longer waits.
   */
  park(link: ConsumerLink): void;
  /**
   * A `forEachBatch()` consumer has a batch due: the broadcast calls its
   * `consumerCalls.flush()` from one microtask shared by every consumer due meanwhile, so
   * waking hundreds of them costs one job, not a promise chain each.
   */
  enqueue(link: ConsumerLink): void;
  /**
   * The consumer whose `forEachBatch()` handler is running synchronously, if
   * any: a `write()` it makes protects that batch first (see `ConsumerCalls.guard`).
   */
  inHandler: ConsumerLink | undefined;
}

/** @internal What the broadcast calls on each consumer; closures over the consumer's private state. */
export interface ConsumerHooks {
  readonly blocking: boolean;
  /** Block consumers: ring bytes the writer may fill without touching bytes this consumer holds. */
  free(): number;
  /**
   * Applies a deferred policy to the chunks written since it was last applied
   * (see `ConsumerLink`); the broadcast calls it on every consumer every few
   * hundred writes so it can forget old chunk records.
   */
  catchUp(): void;
  /** The chunk is in the ring: wake a waiting reader if it is time. */
  written(): void;
  /**
   * The broadcast's coalescing timer fired at `now`: hands a waiting reader
   * what is pending if it is due. Returns when it will be due (`NaN`: when
   * something arrives), or `undefined` once no reader waits.
   */
  expire(now: number): number | undefined;
  ended(): void;
  aborted(reason: unknown): void;
  /** A `'block'` consumer at its budget: the producer must wait. */
  full(): boolean;
}

/**
 * @internal The two calls `write()` makes on each of hundreds of consumers
 * at a wake-up, as functions every consumer shares (set inside the class,
 * which can reach its private methods): no closure per consumer to load on
 * the way.
 */
export interface ConsumerCalls {
  /**
   * Applies the policy to a chunk about to be written; may disconnect the
   * consumer. Returns whether `hooks.written()` must follow once the chunk is in.
   */
  prepare(consumer: BroadcastConsumer, incoming: ChunkRecord, reclaimFrom: number): boolean;
  /** A `forEachBatch()` consumer's batch is due (see `BroadcastHost.enqueue`): hand it over. */
  flush(consumer: BroadcastConsumer): void;
  /** Makes sure the next write calls into the consumer before it could lap a chunk the consumer holds. */
  guard(consumer: BroadcastConsumer): void;
}

/** @internal See {@link ConsumerCalls}. */
export const consumerCalls: ConsumerCalls = {
  prepare: () => true,
  flush: () => {},
  guard: () => {},
};
let callsInstalled = false;

/**
 * @internal The broadcast's record of one consumer. `write()` calls into a
 * consumer only when the ring's write offset after the write passes its
 * `trigger`: the first offset at which its policy might have to act, a chunk
 * it holds might be lapped, or a waiting reader is due to be woken. It keeps
 * a lower bound of every trigger (`BroadcastHost.enqueue`): a write that
 * does not pass it (most writes) does no work per consumer at all; one that
 * does compares each consumer's trigger once.
 *
 * A `'drop-oldest'` consumer that nobody waits on and nobody listens to
 * (no reader parked, no `'drop'` listener) defers its policy instead: what
 * it would have dropped write by write is worked out from the chunk records
 * when anything can observe it (a read, a release, its metrics, leaving, the
 * broadcast's periodic catch-up), with exactly the same outcome, so a
 * consumer that lags at its budget costs nothing per write.
 */
export interface ConsumerLink {
  readonly consumer: BroadcastConsumer;
  readonly hooks: ConsumerHooks;
  /** Ring offset; `-Infinity`: visit on every write; `Infinity`: never (left). */
  trigger: number;
  /**
   * Defers a `'drop-oldest'` policy (see above): the only kind of consumer
   * the periodic catch-up pass has anything to do for. Any other keeps
   * within its budget write by write, so its records from `next` on are
   * all it can need.
   */
  lazy: boolean;
  /** In this write's list of consumers to call `written()` on. */
  touched: boolean;
  /** In the broadcast's list of parked coalescing readers the timer serves (left lazily). */
  parked: boolean;
  /** Coalescing: the consumer's `maxWaitMs`; `Infinity` without a time limit. */
  readonly waitMs: number;
  gone: boolean;
}

/** @internal Options after {@link Broadcast.subscribe} validated them. */
export interface ResolvedConsumerOptions {
  name: string;
  policy: SlowConsumerPolicy;
  budget: number;
  start: BroadcastStart;
  maxSkip: number;
  coalesce: Readonly<Required<BroadcastCoalesceOptions>> | undefined;
  signal: AbortSignal | undefined;
}

type Settle = (value: IteratorResult<BroadcastChunk | BroadcastChunk[]> | Waiter) => void;

/**
 * A parked `read()` or `readBatch()`: plain data, so parking creates no
 * closure but the promise's. A batch waiter is also a thenable: it is woken
 * by resolving its promise with itself, so the batch is taken when the
 * reader actually runs (`then`, a microtask later), not when it is woken:
 * chunks written meanwhile join it, and chunks it has not yet been handed
 * stay under the policy instead of counting as in use.
 */
interface Waiter {
  /** A `readBatch()` (everything pending) rather than a `read()` (one chunk). */
  batch: boolean;
  /**
   * `forEachBatch()`: the handler. Such a waiter is woken through the
   * broadcast's shared microtask (`BroadcastHost.enqueue`) instead of its
   * own promise, and parks again after each batch until the consumer leaves.
   */
  push: BroadcastBatchHandler | undefined;
  /** Resolves with a chunk or, for a batch, an array of them (or the waiter, to take it later). */
  resolve: Settle;
  reject: (error: unknown) => void;
  signal: AbortSignal | undefined;
  onAbort: (() => void) | undefined;
  then: ((this: Waiter, resolve: Settle, reject: (error: unknown) => void) => void) | undefined;
}

function isThenable(value: unknown): value is PromiseLike<void> {
  return (
    (typeof value === 'object' || typeof value === 'function') &&
    value !== null &&
    typeof (value as { then?: unknown }).then === 'function'
  );
}

/** Detaches a waiter from its signal once it is settled. */
function unhook(waiter: Waiter): void {
  if (waiter.onAbort !== undefined) waiter.signal?.removeEventListener('abort', waiter.onAbort);
}

type Phase = 'open' | 'ended' | 'closed' | 'failed';

const DONE: IteratorResult<never> = { value: undefined, done: true };

/**
 * One reader of a {@link Broadcast}, with its own cursor, byte budget and
 * {@link SlowConsumerPolicy}. Iterate it (`for await`) to receive whole
 * chunks as written, as zero-copy views of the broadcast's ring, or iterate
 * {@link BroadcastConsumer.batches} to receive everything pending at once.
 *
 * **In use until next.** A chunk handed out is in use until the consumer
 * releases it: the iterators release what they handed out when asked for
 * more (or when the loop ends); {@link BroadcastConsumer.read} and
 * {@link BroadcastConsumer.readBatch} hand chunks out without releasing and
 * {@link BroadcastConsumer.release} releases explicitly. In-use bytes count
 * against the budget and are never overwritten: a `'block'` consumer holds
 * the producer back, and a non-blocking consumer whose in-use chunk the
 * producer would have to overwrite is disconnected with reason `'lapped'`
 * first ('disconnect' fires synchronously, before the overwrite).
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
   * Sets {@link consumerCalls}: from the first constructor call, not a static
   * block, which bundlers would keep (and with it this whole class) as a side
   * effect of importing the module.
   */
  static #installCalls(): void {
    consumerCalls.prepare = (consumer, incoming, reclaimFrom) =>
      consumer.#prepare(incoming, reclaimFrom);
    consumerCalls.flush = (consumer) => consumer.#runPush();
    consumerCalls.guard = (consumer) => consumer.#guardHeld();
    callsInstalled = true;
  }

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
  /**
   * Its wake-up coalescing with defaults filled in, or `undefined` when a
   * waiting reader is woken by every chunk.
   *
   * @example
   * ```ts
   * consumer.coalesce; // { minBytes: Infinity, maxWaitMs: 5 } for subscribe({ …, coalesce: {} })
   * ```
   */
  readonly coalesce: Readonly<Required<BroadcastCoalesceOptions>> | undefined;
  readonly #host: BroadcastHost;
  /** Block consumers only: the ring reader whose hold keeps the writer off our bytes. */
  readonly #reader: RingReader<number> | undefined;
  readonly #link: ConsumerLink;
  /** Sequence number of the next chunk to hand out; past the end while skipping the chunk being written. */
  #next: number;
  /** The policy has been applied to every chunk before this one (see {@link ConsumerLink}). */
  #settled: number;
  /** Waiting for a marked chunk: after joining at `'newest-marker'`, or after a skip found none in reach. */
  #awaiting: 'join' | 'skip' | undefined;
  #skipped = 0;
  /** Chunks handed out and not released, as `[from, to)` sequence ranges, flattened, oldest first. */
  #held: number[] = [];
  #heldBytes = 0;
  #phase: Phase = 'open';
  #error: BackpressureError | undefined;
  #waiters: Waiter[] = [];
  /**
   * `coalesce.minBytes`, or `NaN` without coalescing; with `#dropHeard`,
   * kept on the consumer itself so a wake-up reads no other object.
   */
  readonly #minBytes: number;
  /** `#threshold(#minBytes)` with nothing in use, worked out once: what a parked push consumer waits for. */
  readonly #restThreshold: number;
  /** A `'drop'` listener was ever added (then the policy is applied write by write). */
  #dropHeard = false;
  /** The `forEachBatch()` waiter, from the call until the consumer leaves (parked or not). */
  #pushing: Waiter | undefined;
  /** Set by the policy inside `prepare`: wake a waiting reader after this write, coalescing or not. */
  #wakeNow = false;
  #peak = 0;
  /**
   * While open, `bytesIn` is the broadcast's `bytesIn()` less `#inBase` (and
   * `chunksIn` its chunk count less `#chunkBase`): the consumer counts every
   * chunk written since it joined but those it ignored waiting to join at a
   * marker, so counting costs nothing per write. Frozen into `#bytesIn` /
   * `#chunksIn` when it leaves.
   */
  #inBase = 0;
  #chunkBase = 0;
  #bytesIn = 0;
  #chunksIn = 0;
  #bytesOut = 0;
  #chunksOut = 0;
  #bytesDropped = 0;
  #chunksDropped = 0;
  #skips = 0;
  readonly #stall = new StallClock();
  #detach: (() => void) | undefined;
  /** The `then` of this consumer's batch waiters (one function for all of them). */
  readonly #takeLater: NonNullable<Waiter['then']>;

  /** @internal Use {@link Broadcast.subscribe}. */
  constructor(host: BroadcastHost, options: ResolvedConsumerOptions) {
    super();
    if (!callsInstalled) BroadcastConsumer.#installCalls();
    this.#host = host;
    this.name = options.name;
    this.policy = options.policy;
    this.budget = options.budget;
    this.maxSkip = options.maxSkip;
    this.coalesce = options.coalesce;
    this.#minBytes = options.coalesce?.minBytes ?? Number.NaN;
    this.#restThreshold = Math.max(1, Math.min(this.#minBytes, this.budget - host.maxChunk + 1));
    const { chunks, ring } = host;
    const end = chunks.end;
    let next = end;
    if (options.start === 'oldest') {
      const oldest = chunks.firstFrom(ring.oldestOffset);
      next = oldest;
      while (next < end && !this.#fits(next)) next++;
      if (next > oldest && this.policy === 'skip-to-marker') {
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
    this.#settled = end;
    this.#inBase = next < end ? chunks.get(next).pos : host.bytesIn();
    this.#chunkBase = next;
    this.#peak = host.bytesIn() - this.#inBase;
    const blocking = this.policy === 'block';
    const consumer = this;
    this.#takeLater = function (this: Waiter, resolve, reject) {
      consumer.#runBatch(this, resolve, reject);
    };
    this.#reader = blocking
      ? ring.reader({ start: next < end ? chunks.get(next).at : 'newest', blocking: true })
      : undefined;
    this.#link = host.join(this, {
      blocking,
      free: () =>
        (this.#reader?.heldFrom ?? Number.POSITIVE_INFINITY) + ring.capacity - ring.writeOffset,
      catchUp: () => this.#catchUp(),
      written: () => this.#written(),
      expire: (at) => this.#expire(at),
      ended: () => {
        // Nothing holds a producer that has finished.
        this.#stall.stop();
        if (this.#waiters.length > 0 && this.#phase === 'open') {
          // Coalescing may have kept chunks back from a waiting reader: hand them over first.
          this.#deliver();
          if (this.#waiters.length > 0) this.#leave('ended', undefined);
        }
      },
      aborted: (reason) =>
        this.#leave(
          'failed',
          new DisconnectedError(this.name, 'producer-aborted', this.#buffered(), this.budget, {
            cause: reason,
          }),
        ),
      full: () => this.#phase === 'open' && blocking && this.#buffered() >= this.budget,
    });
    this.#retrigger();
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
   * Calls `listener` on every `event`; returns a function that unsubscribes.
   * Once a `'drop-oldest'` consumer has had a `'drop'` listener its policy
   * is applied write by write, so each event comes from the write that caused
   * it (without one, drops are worked out when they can be observed; see
   * {@link BroadcastConsumerMetrics}).
   *
   * @example
   * ```ts
   * const off = consumer.on('drop', (bytes, chunks) => log.warn({ bytes, chunks }, 'viewer too slow'));
   * ```
   */
  override on<K extends keyof BroadcastConsumerEvents>(
    event: K,
    listener: Listener<BroadcastConsumerEvents[K]>,
  ): () => void {
    if (event === 'drop' && this.#phase === 'open') {
      this.#catchUp();
      this.#dropHeard = true;
      const off = super.on(event, listener);
      this.#retrigger();
      return off;
    }
    return super.on(event, listener);
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
    this.#catchUp();
    this.#notePeak();
    const lag = this.#pending();
    const open = this.#phase === 'open';
    return {
      name: this.name,
      capacity: this.budget,
      bufferedBytes: lag + this.#heldBytes,
      peakBufferedBytes: this.#peak,
      bytesIn: open ? this.#host.bytesIn() - this.#inBase : this.#bytesIn,
      bytesOut: this.#bytesOut,
      chunksIn: open ? this.#host.chunks.end - this.#chunkBase : this.#chunksIn,
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
    if (this.#pushing !== undefined) return Promise.reject(this.#pushingError());
    this.#catchUp();
    const chunk = this.#take();
    if (chunk !== undefined) {
      this.#guardHeld();
      return Promise.resolve({ value: chunk, done: false });
    }
    return this.#wait(false, options.signal);
  }

  /**
   * Every chunk pending for the consumer, in order, as one array of the same
   * zero-copy chunks `read()` hands out (the array is the only allocation):
   * waits only when nothing is pending, and then, with `coalesce`, until
   * enough is (see {@link BroadcastConsumerOptions.coalesce}), so a reader
   * wakes once per batch instead of once per chunk. Like `read()` it does
   * not release what was handed out before, and the chunks count against
   * the budget until released; `{ done: true }` once the producer ended and
   * everything was read, or after `close()`; rejects with
   * {@link DisconnectedError} or {@link AbortedError} once the consumer was
   * cut off. The signal stops only this wait.
   *
   * @example
   * ```ts
   * const viewer = live.subscribe({ policy: 'drop-oldest', coalesce: { maxWaitMs: 5 } });
   * for (;;) {
   *   const { value: batch, done } = await viewer.readBatch();
   *   if (done) break;
   *   socket.cork();
   *   // Each chunk stays in use until the socket is done with its memory.
   *   for (const chunk of batch) socket.write(chunk.bytes.asUint8Array(), () => viewer.release(chunk));
   *   socket.uncork();
   *   if (socket.writableNeedDrain) await once(socket, 'drain');
   * }
   * ```
   */
  readBatch(options: WaitOptions = {}): Promise<IteratorResult<BroadcastChunk[]>> {
    if (this.#phase === 'failed') return Promise.reject(this.#error);
    if (this.#phase !== 'open') return Promise.resolve(DONE);
    if (this.#pushing !== undefined) return Promise.reject(this.#pushingError());
    this.#catchUp();
    const batch = this.#takeAll();
    if (batch !== undefined) {
      this.#guardHeld();
      return Promise.resolve({ value: batch, done: false });
    }
    return this.#wait(true, options.signal);
  }

  /**
   * Iterates the chunks in batches (see {@link BroadcastConsumer.readBatch}):
   * one array of everything pending per step. A batch stays in use until the
   * next step asks for another; leaving the loop closes the consumer.
   *
   * @example
   * ```ts
   * const viewer = live.subscribe({ policy: 'skip-to-marker', start: 'newest-marker', coalesce: { maxWaitMs: 5 } });
   * let bytes = 0;
   * for await (const batch of viewer.batches()) {
   *   // In use until the next step: done with the bytes (here, hashing them) before it.
   *   for (const chunk of batch) hash.update(chunk.bytes.asUint8Array());
   *   bytes += batch.length;
   * }
   * ```
   */
  batches(options: WaitOptions = {}): AsyncIterableIterator<BroadcastChunk[]> {
    const iterator: AsyncIterableIterator<BroadcastChunk[]> = {
      next: () => {
        this.release();
        return this.readBatch(options);
      },
      return: async (value?: unknown) => {
        this.close();
        return { value: value as BroadcastChunk[], done: true };
      },
      [Symbol.asyncIterator]: () => iterator,
    };
    return iterator;
  }

  /**
   * Push mode: calls `handler` with everything pending each time the
   * consumer is woken (per its `coalesce` option, as a waiting
   * `readBatch()` would be), until the broadcast ends; resolves then, or
   * after `close()`. The cheapest way to serve many consumers on one thread:
   * every consumer a `write()` wakes is served from one shared microtask,
   * with no promise per consumer per batch, and consumers woken at the same
   * point share one read-only batch array.
   *
   * The batch is in use while the handler runs and, if it returns a
   * promise, until that settles (then the next batch comes at once if
   * anything is pending); it is released afterwards. A handler that throws
   * or rejects ends the consumer and the returned promise rejects with its
   * error; a consumer cut off rejects it with {@link DisconnectedError} (or
   * {@link AbortedError}); the signal closes the consumer and rejects it
   * with {@link AbortedError}. While it runs, `read()` and `readBatch()`
   * reject with {@link InvalidArgumentError}, as does a second call.
   *
   * @example
   * ```ts
   * const viewer = live.subscribe({ policy: 'drop-oldest', budget: 4 * 2 ** 20, coalesce: { maxWaitMs: 5 } });
   * let bytes = 0;
   * await viewer.forEachBatch((batch) => {
   *   for (const chunk of batch) bytes += chunk.bytes.length; // in use until the handler returns
   * });
   * ```
   */
  forEachBatch(handler: BroadcastBatchHandler, options: WaitOptions = {}): Promise<void> {
    if (typeof handler !== 'function') {
      return Promise.reject(
        new InvalidArgumentError(
          `consumer ${this.name}: forEachBatch() needs a function, got ${handler === null ? 'null' : typeof handler}`,
        ),
      );
    }
    if (this.#phase === 'failed') return Promise.reject(this.#error);
    if (this.#phase !== 'open') return Promise.resolve();
    if (this.#pushing !== undefined || this.#waiters.length > 0) {
      return Promise.reject(this.#pushingError());
    }
    const signal = options.signal;
    if (signal?.aborted) return Promise.reject(abortError(`forEachBatch on ${this.name}`, signal));
    return new Promise<void>((resolve, reject) => {
      const waiter: Waiter = {
        batch: true,
        push: handler,
        resolve: () => resolve(),
        reject,
        signal,
        onAbort: undefined,
        // biome-ignore lint/suspicious/noThenProperty: not a thenable; the field exists on every waiter (see Waiter).
        then: undefined,
      };
      this.#pushing = waiter;
      if (signal !== undefined) {
        waiter.onAbort = () => {
          waiter.reject(abortError(`forEachBatch on ${this.name}`, signal));
          this.close();
        };
        signal.addEventListener('abort', waiter.onAbort, { once: true });
      }
      this.#catchUp();
      // What is pending already comes at once, but never from inside this call.
      if (this.#awaiting === undefined && this.#next < this.#host.chunks.end) {
        this.#host.enqueue(this.#link);
      } else {
        this.#park(waiter);
      }
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
    const held = this.#held;
    if (this.#phase !== 'open' || held.length === 0) return;
    // The policy so far applies with what was in use so far.
    this.#catchUp();
    this.#notePeak();
    const last = chunk === undefined ? Number.POSITIVE_INFINITY : chunk.sequence;
    let freed = 0;
    let i = 0;
    for (; i < held.length; i += 2) {
      const from = held[i] as number;
      const to = held[i + 1] as number;
      if (to - 1 <= last) {
        freed += this.#span(from, to);
        continue;
      }
      if (from <= last) {
        freed += this.#span(from, last + 1);
        held[i] = last + 1;
      }
      break;
    }
    if (i >= held.length) this.#held = [];
    else if (i > 0) held.splice(0, i);
    if (freed === 0) return;
    this.#heldBytes -= freed;
    // Its trigger can only have risen: left as it is, it errs early (see #retrigger).
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
    this.#catchUp();
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

  /** Parks a `read()` (one chunk) or `readBatch()` (everything) until a write hands it something. */
  #wait<T>(batch: boolean, signal: AbortSignal | undefined): Promise<IteratorResult<T>> {
    if (this.#host.ended()) {
      this.#leave('ended', undefined);
      return Promise.resolve(DONE);
    }
    const what = `read from ${this.name}`;
    if (signal?.aborted) return Promise.reject(abortError(what, signal));
    return new Promise<IteratorResult<T>>((resolve, reject) => {
      const waiter: Waiter = {
        batch,
        push: undefined,
        resolve: resolve as Settle,
        reject,
        signal,
        onAbort: undefined,
        // biome-ignore lint/suspicious/noThenProperty: a woken batch waiter is deliberately a thenable (see Waiter).
        then: batch ? this.#takeLater : undefined,
      };
      if (signal !== undefined) {
        const onAbort = () => {
          const i = this.#waiters.indexOf(waiter);
          if (i !== -1) this.#waiters.splice(i, 1);
          if (this.#waiters.length === 0) this.#retrigger();
          // Too late (does nothing) once a batch waiter was woken: it takes its batch.
          waiter.reject(abortError(what, signal));
        };
        waiter.onAbort = onAbort;
        signal.addEventListener('abort', onAbort, { once: true });
      }
      this.#park(waiter);
    });
  }

  #park(waiter: Waiter): void {
    const waiters = this.#waiters;
    waiters.push(waiter);
    if (waiters.length > 1) return;
    this.#retrigger();
    this.#host.touch(this.#link);
    if (this.#link.waitMs < Number.POSITIVE_INFINITY) this.#host.park(this.#link);
  }

  /** A woken batch waiter's reader runs: it takes everything pending now. */
  #runBatch(waiter: Waiter, resolve: Settle, reject: (error: unknown) => void): void {
    if (this.#phase === 'open') {
      this.#catchUp();
      const batch = this.#takeAll();
      if (batch !== undefined) {
        unhook(waiter);
        this.#guardHeld();
        resolve({ value: batch, done: false });
        return;
      }
      if (!this.#host.ended()) {
        // The policy dropped or skipped everything before the reader ran: wait again.
        waiter.resolve = resolve;
        waiter.reject = reject;
        this.#park(waiter);
        return;
      }
      this.#leave('ended', undefined);
    }
    unhook(waiter);
    if (this.#phase === 'failed') reject(this.#error);
    else resolve(DONE);
  }

  /**
   * A `forEachBatch()` batch is due (from the broadcast's shared microtask,
   * or once the previous handler's promise settled): hands everything
   * pending to the handler, again while more is pending, then parks.
   */
  #runPush(): void {
    const waiter = this.#pushing;
    const handler = waiter?.push;
    if (waiter === undefined || handler === undefined) return;
    // Runs for every consumer a write wakes: checks are inlined where they save a call.
    const chunks = this.#host.chunks;
    while (this.#phase === 'open') {
      if (this.#settled < chunks.end) this.#catchUp();
      const from = this.#takePending();
      if (from === undefined) {
        if (this.#host.ended()) this.#leave('ended', undefined);
        // Nothing pending (the policy may have dropped it since the wake-up): wait again.
        else this.#park(waiter);
        return;
      }
      const batch = chunks.sharedViews(from, this.#next);
      // The batch needs guarding against lapping only if a write can come while it is
      // held: from the handler itself (write() guards it then), or once it returned a
      // promise. Guarded always, it would lower the broadcast's lowest trigger for
      // nothing, and make a later write look at every consumer.
      const host = this.#host;
      host.inHandler = this.#link;
      let result: void | PromiseLike<void>;
      try {
        result = handler(batch);
      } catch (error) {
        host.inHandler = undefined;
        this.#pushFailed(waiter, error);
        return;
      }
      host.inHandler = undefined;
      if (isThenable(result)) {
        this.#guardHeld();
        result.then(
          () => {
            this.#releaseAll();
            this.#runPush();
          },
          (error: unknown) => this.#pushFailed(waiter, error),
        );
        return;
      }
      this.#releaseAll();
      // The usual end of a batch: nothing came meanwhile, so wait again at once.
      if (this.#phase === 'open' && this.#next >= chunks.end && !this.#host.ended()) {
        this.#park(waiter);
        return;
      }
    }
  }

  /** `release()` of everything, without its search: what a push handler's return does. */
  #releaseAll(): void {
    if (this.policy === 'block' || this.#phase !== 'open') {
      this.release();
      return;
    }
    const chunks = this.#host.chunks;
    const end = chunks.end;
    if (this.#settled < end) this.#catchUp();
    const next = this.#next;
    const buffered =
      this.#heldBytes + (next < end ? this.#host.bytesIn() - chunks.get(next).pos : 0);
    if (buffered > this.#peak) this.#peak = buffered;
    // Emptied in place, by pop() (setting length is a runtime call): this runs once per
    // batch per consumer, and the array almost always holds one range.
    const held = this.#held;
    while (held.length > 0) held.pop();
    this.#heldBytes = 0;
  }

  #pushFailed(waiter: Waiter, error: unknown): void {
    // Rejected first, so leaving (which settles it too) cannot resolve it.
    waiter.reject(error);
    this.#leave('closed', undefined);
  }

  #pushingError(): InvalidArgumentError {
    return new InvalidArgumentError(
      `consumer ${this.name} is read by forEachBatch() or has a read pending: one reader at a time`,
    );
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

  #notePeak(): void {
    const buffered = this.#buffered();
    if (buffered > this.#peak) this.#peak = buffered;
  }

  /** Data bytes of chunks `[from, to)`, all still in the index (or `to` its end). */
  #span(from: number, to: number): number {
    const chunks = this.#host.chunks;
    const end = to < chunks.end ? chunks.get(to).pos : this.#host.bytesIn();
    return end - chunks.get(from).pos;
  }

  /** Ring offset of the oldest byte this consumer still needs. */
  #pinnedAt(): number {
    const chunks = this.#host.chunks;
    if (this.#held.length > 0) return chunks.get(this.#held[0] as number).at;
    return this.#next < chunks.end ? chunks.get(this.#next).at : Number.POSITIVE_INFINITY;
  }

  /**
   * The pending bytes at which a waiting coalescing reader is woken:
   * `minBytes`, or less when the next chunk of up to `maxChunk` could
   * otherwise push it over its budget (so coalescing never costs bytes).
   */
  #threshold(minBytes: number): number {
    if (this.#heldBytes === 0) return this.#restThreshold;
    const room = this.budget - this.#heldBytes - this.#host.maxChunk + 1;
    return Math.max(1, Math.min(minBytes, room));
  }

  /**
   * Chunks were just taken (by any reader): of everything `#retrigger()`
   * weighs, only the lapping of the oldest chunk in use can have moved the
   * trigger down (the budget's and the coalescing triggers rise by what is
   * taken), so this is all it recomputes.
   */
  #guardHeld(): void {
    const held = this.#held;
    if (held.length === 0) return;
    const lapped = this.#host.chunks.get(held[0] as number).at + this.#host.capacity;
    const link = this.#link;
    if (lapped >= link.trigger) return;
    link.trigger = lapped;
    const schedule = this.#host.schedule;
    if (lapped < schedule.minTrigger) schedule.minTrigger = lapped;
  }

  /**
   * Sets the ring offset past which the next write must call into this
   * consumer (see {@link ConsumerLink}); anything earlier than necessary is
   * safe, only later is not. Ring offsets run ahead of stream offsets by
   * the padding at the ring's end, so distances in ring offsets are never
   * smaller than the bytes they hold and every trigger errs early.
   *
   * It must be called whenever the trigger may fall: a reader parks, a
   * `'drop'` listener is added, or the policy acted (inside a write, which
   * always calls it afterwards). Taking chunks can lower only its lapping
   * term, which `#guardHeld()` updates; releasing them only raises it, so
   * `release()` leaves it as it is.
   */
  #retrigger(): void {
    const link = this.#link;
    if (this.#phase !== 'open') {
      link.trigger = Number.POSITIVE_INFINITY;
      link.lazy = false;
      return;
    }
    const { chunks, ring } = this.#host;
    const pending = this.#next < chunks.end;
    const waiting = this.#waiters.length > 0;
    const minBytes = this.#minBytes;
    const schedule = this.#host.schedule;
    if (
      this.policy === 'block' ||
      this.#awaiting !== undefined ||
      // A reader waiting for data, woken by the next chunk (NaN: no coalescing).
      (waiting && Number.isNaN(minBytes))
    ) {
      // Called on every write, so always up to date.
      link.lazy = false;
      link.trigger = Number.NEGATIVE_INFINITY;
      schedule.minTrigger = Number.NEGATIVE_INFINITY;
      return;
    }
    const nextAt = pending ? chunks.get(this.#next).at : ring.writeOffset;
    // The policy acts once what it keeps would exceed the budget; a deferred one
    // (see ConsumerLink) waits for a reader, a listener or the catch-up pass.
    const lazy = this.policy === 'drop-oldest' && !waiting && !this.#dropHeard;
    // Deferring from now on: settled up to now first (within budget until now, so this
    // only moves `#settled`), as the catch-up pass did not visit it meanwhile.
    if (lazy && !link.lazy && this.#settled < chunks.end) this.#catchUp();
    link.lazy = lazy;
    let trigger = lazy ? Number.POSITIVE_INFINITY : nextAt + this.budget - this.#heldBytes;
    // A chunk in use is lapped once the writer passes it by a whole ring.
    const held = this.#held;
    if (held.length > 0) {
      trigger = Math.min(trigger, chunks.get(held[0] as number).at + this.#host.capacity);
    }
    if (waiting && !Number.isNaN(minBytes)) {
      trigger = Math.min(trigger, nextAt + this.#threshold(minBytes) - 1);
    }
    link.trigger = trigger;
    if (trigger < schedule.minTrigger) schedule.minTrigger = trigger;
  }

  /**
   * Applies the policy to a chunk about to be written (see `ConsumerHooks`);
   * returns whether the broadcast must call `#written()` once it is in.
   */
  #prepare(incoming: ChunkRecord, reclaimFrom: number): boolean {
    if (this.#phase !== 'open') return false;
    const n = incoming.length;
    // A deferred policy is worked out (#catchUp) only if the consumer is over budget:
    // within it, or waiting for a marker, that only moves `#settled`, which is set below.
    if (this.#awaiting === undefined) {
      // The usual case (a coalescing reader due for a wake-up): within budget and
      // clear of the writer, so the policy has nothing to do. Worked out once, inline:
      // with hundreds of consumers this runs for each of them at every wake-up.
      const chunks = this.#host.chunks;
      let pending = this.#pending();
      if (this.#heldBytes + pending > this.budget && this.#settled < chunks.end) {
        this.#catchUp();
        pending = this.#pending();
      }
      const next = this.#next;
      const buffered = this.#heldBytes + pending;
      if (buffered > this.#peak) this.#peak = buffered;
      const held = this.#held;
      if (
        this.policy === 'block' ||
        (buffered + n <= this.budget &&
          (held.length > 0
            ? chunks.get(held[0] as number).at
            : pending > 0
              ? chunks.get(next).at
              : reclaimFrom) >= reclaimFrom)
      ) {
        this.#settled = incoming.seq + 1;
        return (
          this.#pushing === undefined ||
          this.policy === 'block' ||
          !this.#wakePush(incoming, pending)
        );
      }
    }
    this.#notePeak();
    // What happens to the incoming chunk is counted last, once the consumer is sure to stay.
    let fate: 'offered' | 'skipped' | 'ignored' = 'offered';
    let event: ['drop' | 'skip', number, number] | undefined;
    if (this.#awaiting !== undefined) {
      // A skip resumes at a marker only if what it has in use leaves room for it.
      if (incoming.marker && !(this.#awaiting === 'skip' && this.#noRoomFor(n))) {
        this.#awaiting = undefined;
        this.#skipped = 0;
        // Resuming (or starting) at a marker: worth a wake-up of its own.
        this.#wakeNow = true;
      } else {
        this.#next = incoming.seq + 1;
        fate = this.#awaiting === 'skip' ? 'skipped' : 'ignored';
        if (fate === 'skipped') {
          if (this.#skipped + n > this.maxSkip) {
            this.#skippedTooFar(this.#skipped + n);
            return true;
          }
          this.#skipped += n;
          event = ['skip', n, 1];
        }
      }
    } else if (this.policy !== 'block' && this.#buffered() + n > this.budget) {
      if (this.policy === 'disconnect') {
        const lag = this.#buffered() + n;
        this.#leave('failed', new DisconnectedError(this.name, 'lagged', lag, this.budget));
        return true;
      }
      if (this.policy === 'drop-oldest') {
        const chunks = this.#host.chunks;
        const from = this.#next;
        const before = this.#bytesDropped;
        while (this.#next < chunks.end && this.#buffered() + n > this.budget) {
          this.#dropped(chunks.get(this.#next).length, 1);
          this.#next++;
        }
        let bytes = this.#bytesDropped - before;
        let dropped = this.#next - from;
        if (this.#noRoomFor(n)) {
          // What it has in use leaves no room: the incoming chunk goes too (counted below).
          this.#next = incoming.seq + 1;
          fate = 'skipped';
          bytes += n;
          dropped++;
        }
        event = ['drop', bytes, dropped];
      } else {
        const skip = this.#skip(incoming, reclaimFrom);
        if (skip === undefined) return true;
        if (skip.waiting) fate = 'skipped';
        event = ['skip', skip.bytes, skip.chunks];
      }
      this.#wakeNow = true;
    }
    if (this.policy !== 'block' && this.#pinnedAt() < reclaimFrom) {
      // Checked before the write: the chunks it holds must never change under it.
      const lag = this.#buffered() + (fate === 'offered' ? n : 0);
      this.#leave('failed', new DisconnectedError(this.name, 'lapped', lag, this.#host.capacity));
      return true;
    }
    if (fate === 'ignored') {
      // Not part of its stream: take it out of the count the broadcast's totals give.
      this.#inBase += n;
      this.#chunkBase++;
    }
    if (fate === 'skipped') this.#dropped(n, 1);
    this.#settled = incoming.seq + 1;
    if (event !== undefined) this.emit(event[0], event[1], event[2]);
    return true;
  }

  /**
   * `#written()` worked out ahead, for the usual wake-up: a waiting
   * `forEachBatch()` consumer with nothing in use, whose batch the incoming
   * chunk (`pending` bytes already wait) makes due. Queues the batch and
   * sets the trigger `#retrigger()` would once the waiter is off; returns
   * `false` (nothing done) in any other case.
   */
  #wakePush(incoming: ChunkRecord, pending: number): boolean {
    const waiters = this.#waiters;
    if (waiters.length !== 1 || this.#held.length > 0) return false;
    const minBytes = this.#minBytes;
    if (!Number.isNaN(minBytes) && pending + incoming.length < this.#threshold(minBytes)) {
      return false;
    }
    waiters.pop();
    const link = this.#link;
    this.#host.enqueue(link);
    if (this.policy === 'drop-oldest' && !this.#dropHeard) {
      link.trigger = Number.POSITIVE_INFINITY;
      link.lazy = true;
      return true;
    }
    const nextAt = pending > 0 ? this.#host.chunks.get(this.#next).at : incoming.at;
    const trigger = nextAt + this.budget - this.#heldBytes;
    link.trigger = trigger;
    const schedule = this.#host.schedule;
    if (trigger < schedule.minTrigger) schedule.minTrigger = trigger;
    return true;
  }

  /**
   * A deferred `'drop-oldest'` policy (see {@link ConsumerLink}): replays the
   * writes since it was last applied, dropping what each would have dropped
   * and noting the peak each would have left, so the outcome is exactly
   * that of applying it write by write. Cheap when nothing needs dropping.
   */
  #catchUp(): void {
    const chunks = this.#host.chunks;
    const end = chunks.end;
    const from = this.#settled;
    if (from >= end) return;
    this.#settled = end;
    let next = this.#next;
    if (this.policy !== 'drop-oldest' || this.#phase !== 'open' || next >= end) return;
    if (this.#awaiting !== undefined) return;
    const held = this.#heldBytes;
    const room = this.budget - held;
    // Within budget now, so within it after every write since: nothing was due.
    if (this.#host.bytesIn() - chunks.get(next).pos <= room) return;
    const first = next;
    let bytes = 0;
    if (this.#peak >= held + Math.max(room, this.#host.maxChunk)) {
      // After any write what it keeps is at most `room` (or, holding nothing, the one
      // chunk just written), so the peak cannot rise; and since each write needs at least
      // the drops of the one before it, only the last write's matter: a binary search, not
      // a replay. (A consumer lagging at its budget, such as a slow viewer, is always in
      // this case.) `end` stands for keeping nothing.
      const after = this.#host.bytesIn();
      let hi = end;
      while (next < hi) {
        const mid = (next + hi) >>> 1;
        if (after - chunks.get(mid).pos > room) next = mid + 1;
        else hi = mid;
      }
      // Holding nothing, it keeps the last chunk however large (see #noRoomFor).
      if (next === end && held === 0) next = end - 1;
      if (next === first) return;
      bytes = (next < end ? chunks.get(next).pos : after) - chunks.get(first).pos;
      this.#next = next;
      this.#dropped(bytes, next - first);
      this.emit('drop', bytes, next - first);
      return;
    }
    let peak = held + chunks.get(from).pos - chunks.get(next).pos;
    for (let seq = from; seq < end; seq++) {
      const record = chunks.get(seq);
      const after = record.pos + record.length;
      // What write `seq` did: drop from the front until it fits, the chunk written only
      // if what is in use leaves no room for it (see #noRoomFor).
      while (next < seq && after - chunks.get(next).pos > room) {
        bytes += chunks.get(next).length;
        next++;
      }
      if (next === seq && held > 0 && record.length > room) {
        bytes += record.length;
        next++;
      }
      const buffered = held + (next <= seq ? after - chunks.get(next).pos : 0);
      if (buffered > peak) peak = buffered;
    }
    if (peak > this.#peak) this.#peak = peak;
    if (next === first) return;
    this.#next = next;
    this.#dropped(bytes, next - first);
    this.emit('drop', bytes, next - first);
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
    let waiting = !incoming.marker || this.#noRoomFor(n);
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

  /**
   * Whether what the consumer has in use leaves no room within its budget
   * for a chunk of `n` bytes: `'drop-oldest'` and `'skip-to-marker'` then
   * lose that chunk too, so they never keep more than their budget. (A
   * consumer with nothing in use still gets a chunk larger than its whole
   * budget: otherwise it could never get one.)
   */
  #noRoomFor(n: number): boolean {
    return this.#heldBytes > 0 && this.#heldBytes + n > this.budget;
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
    if (this.#waiters.length > 0) {
      const minBytes = this.#minBytes;
      if (Number.isNaN(minBytes) || this.#wakeNow || this.#pending() >= this.#threshold(minBytes)) {
        this.#deliver();
      }
    }
    this.#wakeNow = false;
    if (this.policy === 'block') {
      if (this.#held.length === 0) this.#syncHold();
      if (this.#buffered() >= this.budget) this.#stall.start();
    }
    this.#retrigger();
  }

  #expire(at: number): number | undefined {
    if (this.#phase !== 'open' || this.#waiters.length === 0) return undefined;
    this.#catchUp();
    const chunks = this.#host.chunks;
    if (this.#awaiting !== undefined || this.#next >= chunks.end) return Number.NaN;
    const due = chunks.get(this.#next).time + this.#link.waitMs;
    if (due > at) return due;
    this.#deliver();
    this.#retrigger();
    return this.#waiters.length > 0 ? Number.NaN : undefined;
  }

  /** Hands waiting readers what is pending: one chunk per `read()`, everything to a `readBatch()`. */
  #deliver(): void {
    const waiters = this.#waiters;
    const chunks = this.#host.chunks;
    while (waiters.length > 0) {
      const waiter = waiters[0] as Waiter;
      if (waiter.batch) {
        if (this.#awaiting !== undefined || this.#next >= chunks.end) break;
        waiters.shift();
        // Taken when the reader runs (see Waiter); waiters behind it wait for the next write.
        if (waiter.push !== undefined) this.#host.enqueue(this.#link);
        else waiter.resolve(waiter);
        break;
      }
      const value = this.#take();
      if (value === undefined) break;
      waiters.shift();
      unhook(waiter);
      waiter.resolve({ value, done: false });
    }
  }

  #take(): BroadcastChunk | undefined {
    const chunks = this.#host.chunks;
    const seq = this.#next;
    if (this.#awaiting !== undefined || seq >= chunks.end) return undefined;
    const length = chunks.get(seq).length;
    this.#hold(seq, seq + 1, length);
    this.#next = seq + 1;
    this.#bytesOut += length;
    this.#chunksOut++;
    return chunks.view(seq);
  }

  #takeAll(): BroadcastChunk[] | undefined {
    const from = this.#takePending();
    return from === undefined ? undefined : this.#host.chunks.views(from, this.#next);
  }

  /** Hands out every pending chunk; returns the first one's sequence number, or `undefined` if none is pending. */
  #takePending(): number | undefined {
    const chunks = this.#host.chunks;
    const from = this.#next;
    const to = chunks.end;
    if (this.#awaiting !== undefined || from >= to) return undefined;
    const bytes = this.#host.bytesIn() - chunks.get(from).pos;
    this.#hold(from, to, bytes);
    this.#next = to;
    this.#bytesOut += bytes;
    this.#chunksOut += to - from;
    return from;
  }

  /** Records chunks `[from, to)` of `bytes` bytes as handed out. */
  #hold(from: number, to: number, bytes: number): void {
    const held = this.#held;
    const last = held.length - 1;
    if (last > 0 && held[last] === from) held[last] = to;
    else held.push(from, to);
    this.#heldBytes += bytes;
  }

  /**
   * Block consumers: moves the ring reader's hold up to the oldest byte still
   * needed, so the ring's own blocking check agrees with our accounting.
   */
  #syncHold(): void {
    const reader = this.#reader;
    if (reader === undefined) return;
    const chunks = this.#host.chunks;
    let target: number;
    if (this.#held.length > 0) target = chunks.get(this.#held[0] as number).at;
    else if (this.#next < chunks.end) target = chunks.get(this.#next).at;
    else target = this.#host.ring.writeOffset;
    if (target > reader.offset) reader.seek(target);
    reader.release(Math.min(target, reader.offset));
  }

  #leave(phase: Exclude<Phase, 'open'>, error: BackpressureError | undefined): void {
    if (this.#phase !== 'open') return;
    this.#catchUp();
    this.#notePeak();
    const pending = this.#pending();
    if (pending > 0) this.#dropped(pending, this.#host.chunks.end - this.#next);
    this.#bytesIn = this.#host.bytesIn() - this.#inBase;
    this.#chunksIn = this.#host.chunks.end - this.#chunkBase;
    this.#phase = phase;
    this.#error = error;
    this.#held = [];
    this.#heldBytes = 0;
    this.#reader?.close();
    this.#link.trigger = Number.POSITIVE_INFINITY;
    this.#stall.stop();
    this.#detach?.();
    this.#detach = undefined;
    const waiters = this.#waiters.splice(0);
    // A forEachBatch() waiter is not parked while its batch is due or its handler runs.
    if (this.#pushing !== undefined && !waiters.includes(this.#pushing))
      waiters.push(this.#pushing);
    for (const waiter of waiters) {
      unhook(waiter);
      if (error !== undefined) waiter.reject(error);
      else waiter.resolve(DONE);
    }
    this.#host.leave(this, error);
    if (DisconnectedError.isInstance(error)) this.emit('disconnect', error);
    if (phase === 'ended') this.emit('end');
    this.emit('close', error);
  }
}
