import { ByteRing, ByteView, type RingReader } from 'buffer-view';
import type { WaitOptions } from './channel';
import { Emitter, type EventMap } from './emitter';
import {
  AbortedError,
  abortError,
  type BackpressureError,
  BudgetExceededError,
  ClosedError,
  checkNumber,
  InvalidArgumentError,
} from './errors';
import {
  type BroadcastCoalesceOptions,
  BroadcastConsumer,
  type BroadcastConsumerMetrics,
  type BroadcastConsumerOptions,
  type BroadcastHost,
  type ConsumerLink,
  consumerCalls,
} from './fan-out-consumer';
import { ChunkIndex, type ChunkRecord } from './fan-out-index';
import { now, type StageMetrics, StallClock } from './metrics';

/**
 * Options of {@link Broadcast}.
 *
 * @example
 * ```ts
 * import { Broadcast, type BroadcastOptions } from 'backpressure-stream';
 * const options: BroadcastOptions = { capacity: 64 * 2 ** 20, maxChunk: 4 * 2 ** 20, name: 'live/cam1' };
 * const live = new Broadcast(options);
 * ```
 */
export interface BroadcastOptions {
  /**
   * Bytes of the ring that holds the stream: one copy of the data, shared by
   * every consumer, allocated once. There is no default: size it to the
   * largest consumer budget plus two chunks (for live video, a few keyframe
   * intervals at the stream's bitrate).
   */
  capacity: number;
  /**
   * The largest chunk `write()` accepts; at most a third of `capacity`.
   * @default Math.max(1, Math.floor(capacity / 4))
   */
  maxChunk?: number;
  /**
   * Aborts the broadcast when the signal aborts.
   * @default undefined
   */
  signal?: AbortSignal;
  /**
   * Name used in metrics and error messages.
   * @default 'broadcast'
   */
  name?: string;
}

/**
 * Options of {@link Broadcast.write}.
 *
 * @example
 * ```ts
 * live.write(fragment, { marker: isKeyframeFragment(fragment) });
 * ```
 */
export interface BroadcastWriteOptions {
  /**
   * Marks the chunk as a place a consumer may start or resume (for video: a
   * fragment that begins with a keyframe).
   * @default false
   */
  marker?: boolean;
}

/**
 * Options of {@link Broadcast.send}.
 *
 * @example
 * ```ts
 * await live.send(fragment, { marker: true, signal: AbortSignal.timeout(10_000) });
 * ```
 */
export interface BroadcastSendOptions extends BroadcastWriteOptions, WaitOptions {}

/**
 * Events of a {@link Broadcast}.
 *
 * @example
 * ```ts
 * live.on('stall', (consumer) => log.debug(`${consumer.name} holds the broadcaster back`));
 * live.on('leave', (consumer, err) => log.info({ viewer: consumer.name, reason: err?.code }, 'left'));
 * ```
 */
export interface BroadcastEvents extends EventMap {
  /** Every `'block'` consumer is under its budget again after a `write()` returned `false`. */
  drain: [];
  /** A `write()` returned `false`; the argument is a `'block'` consumer at its budget. */
  stall: [consumer: BroadcastConsumer];
  /** A consumer subscribed. */
  join: [consumer: BroadcastConsumer];
  /** A consumer left; `error` says why unless it ended or closed normally. */
  leave: [consumer: BroadcastConsumer, error: BackpressureError | undefined];
  /** The producer called `end()`. */
  end: [];
  /** The broadcast was aborted; the argument is the reason. */
  abort: [reason: unknown];
}

/**
 * What a {@link Broadcast} has done so far. `bufferedBytes` is what the most
 * demanding consumer keeps in the ring (the ring itself never grows);
 * `bytesOut`, `chunksOut` and `bytesDropped` add up every consumer, past and
 * present; `stalledMs` and `stalls` count the producer's waits.
 *
 * @example
 * ```ts
 * const m = live.metrics;
 * console.log(`${m.name}: ${m.consumers.length} viewers, ${m.bytesDropped} bytes dropped`);
 * for (const viewer of m.consumers) console.log(viewer.name, viewer.lag);
 * ```
 */
export interface BroadcastMetrics extends StageMetrics {
  /** A snapshot of every current consumer. */
  consumers: BroadcastConsumerMetrics[];
}

interface Waiter {
  resolve(): void;
  reject(error: unknown): void;
  cleanup(): void;
}

type State = 'open' | 'ended' | 'aborted';

/**
 * Fan-out: one producer, any number of consumers joining and leaving at any
 * time, each with its own byte budget and {@link SlowConsumerPolicy}.
 *
 * The stream lives once, in a fixed-size buffer-view `ByteRing`: each chunk
 * is copied into it exactly once and every consumer receives it as a
 * zero-copy view, whole (chunks are never split or merged; each is one
 * contiguous segment). Memory is the ring, whatever the consumers do: unlike
 * `ReadableStream.prototype.tee()`, a slow consumer never makes anything
 * buffer without limit.
 *
 * - `write(chunk, { marker })` returns `false` only while a `'block'`
 *   consumer is at its budget; `'drain'` (or `await ready()`) says when to go
 *   on. Consumers with any other policy never slow the producer.
 * - `subscribe({ policy, budget, start })` adds a consumer; `start:
 *   'newest-marker'` joins at the newest keyframe.
 * - `end()` lets consumers read what is left; `abort(reason)` cuts them off
 *   with {@link DisconnectedError} (reason `'producer-aborted'`).
 *
 * @example
 * ```ts
 * import { Broadcast } from 'backpressure-stream';
 * const live = new Broadcast({ capacity: 32 * 2 ** 20, maxChunk: 2 * 2 ** 20 });
 *
 * // broadcaster: fMP4 fragments, keyframe fragments marked
 * for await (const fragment of ingest) {
 *   if (!live.write(fragment, { marker: startsWithKeyframe(fragment) })) await live.ready();
 * }
 * live.end();
 *
 * // each viewer: joins at a keyframe, skips ahead if its link is too slow
 * const viewer = live.subscribe({ policy: 'skip-to-marker', budget: 8 * 2 ** 20, start: 'newest-marker' });
 * await viewer.pipeTo(response);
 * ```
 */
export class Broadcast extends Emitter<BroadcastEvents> {
  readonly #ring: ByteRing<number>;
  /** Makes the one view of each chunk that every consumer is handed. */
  readonly #viewer: RingReader<number>;
  readonly #chunks = new ChunkIndex();
  readonly #consumers = new Map<BroadcastConsumer, ConsumerLink>();
  /** Every consumer's link, in join order: what `write()` walks. */
  #links: ConsumerLink[] = [];
  /** The `'block'` consumers' links: the only ones that can hold the producer back. */
  #blockers: ConsumerLink[] = [];
  /** Links that left while `write()` ran, to drop from the arrays once it is done. */
  #compact = false;
  /** Links to call `written()` on once the chunk is in: those whose `consumerCalls.prepare()` asked for it, or touched. */
  readonly #touched: ConsumerLink[] = [];
  /**
   * Coalescing readers that parked with a time limit (some may have been
   * woken since), and the one timer that serves them all: no timer per
   * consumer per batch.
   */
  #parked: ConsumerLink[] = [];
  #timer: ReturnType<typeof setTimeout> | undefined;
  /** `forEachBatch()` consumers with a batch due, served by one microtask (see BroadcastHost.enqueue). */
  #due: ConsumerLink[] = [];
  /** The other list, swapped with `#due` at each flush: neither is reallocated or grown again. */
  #spare: ConsumerLink[] = [];
  readonly #flush = () => {
    const due = this.#due;
    // Consumers woken while this runs (a handler may write) go to the other list.
    this.#due = this.#spare;
    try {
      for (let i = 0; i < due.length; i++) {
        const link = due[i] as ConsumerLink;
        if (!link.gone) consumerCalls.flush(link.consumer);
      }
    } finally {
      due.length = 0;
      this.#spare = due;
    }
  };
  #timerAt = Number.POSITIVE_INFINITY;
  /** The shortest `maxWaitMs` of any consumer so far: how soon after a write the timer must look. */
  #minWaitMs = Number.POSITIVE_INFINITY;
  /** See BroadcastHost.schedule. */
  readonly #schedule = { minTrigger: Number.NEGATIVE_INFINITY };
  /** When (in chunks written) every consumer next applies a deferred policy (see ConsumerLink). */
  #nextCatchUp = CATCH_UP_EVERY;
  /** Ring offset from which chunk records are kept: where the last catch-up left the ring. */
  #keepFrom = 0;
  readonly #host: BroadcastHost;
  readonly #name: string;
  /** The largest chunk `write()` accepts. */
  readonly maxChunk: number;
  #state: State = 'open';
  #reason: unknown;
  #writing = false;
  #needDrain = false;
  #writers: Waiter[] = [];
  #bytesIn = 0;
  #chunksIn = 0;
  #joined = 0;
  readonly #departed = { bytesOut: 0, chunksOut: 0, bytesDropped: 0, peak: 0 };
  readonly #stall = new StallClock();
  #detach: (() => void) | undefined;

  /**
   * A new broadcast with its ring allocated.
   *
   * @example
   * ```ts
   * import { Broadcast } from 'backpressure-stream';
   * const live = new Broadcast({ capacity: 16 * 2 ** 20, name: 'cam1', signal: shutdown.signal });
   * ```
   */
  constructor(options: BroadcastOptions) {
    super();
    const capacity = options?.capacity;
    checkNumber('broadcast capacity', capacity, 3, 2 ** 32);
    this.maxChunk = options.maxChunk ?? Math.max(1, Math.floor(capacity / 4));
    checkNumber('broadcast maxChunk', this.maxChunk, 1, Math.floor(capacity / 3));
    this.#name = options.name ?? 'broadcast';
    // Only the newest marker is ever a target (to join or to skip to), so the ring keeps one.
    this.#ring = new ByteRing<number>({ capacity, maxMarkers: 1 });
    this.#viewer = this.#ring.reader({ start: 'newest' });
    this.#host = {
      name: this.#name,
      capacity,
      maxChunk: this.maxChunk,
      ring: this.#ring,
      chunks: this.#chunks,
      schedule: this.#schedule,
      bytesIn: () => this.#bytesIn,
      ended: () => this.#state !== 'open',
      join: (consumer, hooks) => {
        const waitMs = consumer.coalesce?.maxWaitMs ?? Number.POSITIVE_INFINITY;
        const link: ConsumerLink = {
          consumer,
          hooks,
          trigger: Number.NEGATIVE_INFINITY,
          lazy: true,
          touched: false,
          parked: false,
          waitMs,
          gone: false,
        };
        if (waitMs < this.#minWaitMs) this.#minWaitMs = waitMs;
        this.#consumers.set(consumer, link);
        this.#links.push(link);
        this.#schedule.minTrigger = Number.NEGATIVE_INFINITY;
        if (hooks.blocking) this.#blockers.push(link);
        this.emit('join', consumer);
        return link;
      },
      released: () => this.#afterFree(),
      leave: (consumer, error) => this.#leave(consumer, error),
      touch: (link) => {
        if (!this.#writing || link.touched) return;
        link.touched = true;
        this.#touched.push(link);
      },
      park: (link) => {
        if (link.parked) return;
        link.parked = true;
        this.#parked.push(link);
      },
      inHandler: undefined,
      enqueue: (link) => {
        this.#due.push(link);
        if (this.#due.length === 1) queueMicrotask(this.#flush);
      },
    };
    const signal = options.signal;
    if (signal !== undefined) {
      if (signal.aborted) {
        this.abort(signal.reason);
      } else {
        const onAbort = () => this.abort(signal.reason);
        signal.addEventListener('abort', onAbort, { once: true });
        this.#detach = () => signal.removeEventListener('abort', onAbort);
      }
    }
  }

  /** The broadcast's name, from its options. */
  get name(): string {
    return this.#name;
  }

  /** Bytes of the ring: the memory the broadcast uses, whatever its consumers do. */
  get capacity(): number {
    return this.#ring.capacity;
  }

  /** The largest budget a consumer may have: `capacity - 2 × maxChunk`. */
  get maxBudget(): number {
    return this.#ring.capacity - 2 * this.maxChunk;
  }

  /** Whether a `write()` now would be accepted and return `true`. */
  get writable(): boolean {
    return this.#state === 'open' && !this.#full();
  }

  /** Whether the producer is finished (`end()` or `abort()`). */
  get closed(): boolean {
    return this.#state !== 'open';
  }

  /** Whether the broadcast was aborted (by `abort()` or its signal). */
  get aborted(): boolean {
    return this.#state === 'aborted';
  }

  /** The consumers subscribed right now. */
  get consumers(): BroadcastConsumer[] {
    return [...this.#consumers.keys()];
  }

  /** A snapshot of what the broadcast and each of its consumers have done so far. */
  get metrics(): BroadcastMetrics {
    const consumers = [...this.#consumers.keys()].map((consumer) => consumer.metrics);
    let buffered = 0;
    const totals = { ...this.#departed };
    for (const m of consumers) {
      buffered = Math.max(buffered, m.bufferedBytes);
      totals.peak = Math.max(totals.peak, m.peakBufferedBytes);
      totals.bytesOut += m.bytesOut;
      totals.chunksOut += m.chunksOut;
      totals.bytesDropped += m.bytesDropped;
    }
    return {
      name: this.#name,
      capacity: this.#ring.capacity,
      bufferedBytes: buffered,
      peakBufferedBytes: totals.peak,
      bytesIn: this.#bytesIn,
      bytesOut: totals.bytesOut,
      chunksIn: this.#chunksIn,
      chunksOut: totals.chunksOut,
      bytesDropped: totals.bytesDropped,
      stalledMs: this.#stall.totalMs,
      stalls: this.#stall.count,
      consumers,
    };
  }

  /**
   * Adds a consumer. Throws {@link InvalidArgumentError} for a budget that
   * cannot fit the ring (naming the numbers) and {@link AbortedError} once
   * the broadcast was aborted. After `end()` a consumer can still read what
   * the ring holds.
   *
   * @example
   * ```ts
   * const recorder = live.subscribe({ policy: 'block', start: 'oldest', name: 'recorder' });
   * const viewer = live.subscribe({ policy: 'drop-oldest', budget: 2 ** 20, signal: req.signal });
   * ```
   */
  subscribe(options: BroadcastConsumerOptions): BroadcastConsumer {
    if (this.#state === 'aborted') {
      throw new AbortedError(`cannot subscribe to ${this.#name}: it`, { cause: this.#reason });
    }
    if (this.#writing) {
      throw new InvalidArgumentError(
        `cannot subscribe to ${this.#name} from a listener while write() runs: defer it (queueMicrotask)`,
      );
    }
    const name = options?.name ?? `consumer-${++this.#joined}`;
    const policy = options?.policy;
    if (!POLICIES.includes(policy)) {
      throw new InvalidArgumentError(
        `consumer ${name}: policy ${String(policy)} is not one of ${POLICIES.join(', ')}`,
      );
    }
    const start = options.start ?? 'newest';
    if (!STARTS.includes(start)) {
      throw new InvalidArgumentError(
        `consumer ${name}: start ${String(start)} is not one of ${STARTS.join(', ')}`,
      );
    }
    const max = this.maxBudget;
    const budget = options.budget ?? max;
    checkNumber(`consumer ${name} budget`, budget, 1, Number.POSITIVE_INFINITY);
    if (budget > max) {
      throw new InvalidArgumentError(
        `consumer ${name}: budget ${budget} does not fit ${this.#name}: a consumer may keep its budget plus two chunks of up to maxChunk ${this.maxChunk} in a ring of ${this.capacity} bytes, so budget must be <= ${max} (raise capacity or lower maxChunk)`,
      );
    }
    const maxSkip = options.maxSkip ?? Number.POSITIVE_INFINITY;
    checkNumber(`consumer ${name} maxSkip`, maxSkip, 1, Number.POSITIVE_INFINITY);
    let coalesce: Required<BroadcastCoalesceOptions> | undefined;
    if (options.coalesce !== undefined) {
      const { minBytes = Number.POSITIVE_INFINITY, maxWaitMs = DEFAULT_MAX_WAIT_MS } =
        options.coalesce ?? {};
      checkNumber(`consumer ${name} coalesce.minBytes`, minBytes, 1, Number.POSITIVE_INFINITY);
      const inf = Number.POSITIVE_INFINITY;
      checkNumber(`consumer ${name} coalesce.maxWaitMs`, maxWaitMs, 0, inf, false);
      coalesce = { minBytes, maxWaitMs };
    }
    return new BroadcastConsumer(this.#host, {
      name,
      policy,
      budget,
      start,
      maxSkip,
      coalesce,
      signal: options.signal,
    });
  }

  /**
   * Copies `chunk` into the ring (once) and offers it to every consumer;
   * returns `false` when a `'block'` consumer is at its budget, so the
   * producer should wait for `'drain'` (or `await ready()`). Consumers with
   * other policies apply them here, synchronously, and never make it return
   * `false`. Empty chunks are ignored.
   *
   * Throws {@link InvalidArgumentError} for a chunk over `maxChunk`,
   * {@link ClosedError} after `end()`, {@link AbortedError} after `abort()`,
   * and {@link BudgetExceededError} (writing nothing) when the producer
   * ignored `false` so long that the write would overwrite bytes a `'block'`
   * consumer still holds.
   *
   * @example
   * ```ts
   * if (!live.write(fragment, { marker: keyframe })) await live.ready();
   * ```
   */
  write(chunk: Uint8Array | ByteView, options: BroadcastWriteOptions = {}): boolean {
    this.#assertOpen('write to');
    if (this.#writing) {
      throw new InvalidArgumentError(
        `cannot write to ${this.#name} from a listener while write() runs: defer it (queueMicrotask)`,
      );
    }
    const n = measure(chunk);
    if (n > this.maxChunk) {
      throw new InvalidArgumentError(
        `${this.#name}: chunk of ${n} bytes is larger than maxChunk ${this.maxChunk}`,
      );
    }
    if (n === 0) return !this.#full();
    const ring = this.#ring;
    const capacity = ring.capacity;
    const head = ring.writeOffset;
    // Chunks never wrap: one that would is preceded by padding up to the ring's end,
    // so every chunk is a single Uint8Array a socket can take as is.
    const slot = head % capacity;
    const pad = slot + n > capacity ? capacity - slot : 0;
    const at = head + pad;
    const end = at + n;
    const reclaimFrom = end - capacity;
    for (const { consumer, hooks } of this.#blockers) {
      const free = hooks.free();
      if (pad + n > free) {
        throw new BudgetExceededError(
          `${this.#name} (block consumer ${consumer.name} still holds its bytes)`,
          capacity - free + pad + n,
          capacity,
        );
      }
    }
    const incoming: ChunkRecord = {
      seq: this.#chunks.end,
      at,
      pos: this.#bytesIn,
      length: n,
      marker: options.marker === true,
      time: 0,
    };
    const links = this.#links;
    const touched = this.#touched;
    // Written from a forEachBatch() handler: the batch it holds must not be lapped.
    const inHandler = this.#host.inHandler;
    if (inHandler !== undefined && !inHandler.gone) consumerCalls.guard(inHandler.consumer);
    this.#writing = true;
    try {
      if (this.#chunksIn >= this.#nextCatchUp) {
        // Consumers that defer their policy are brought up to date now and then, so
        // chunk records need only be kept back to where the ring was at the last pass.
        this.#nextCatchUp = this.#chunksIn + CATCH_UP_EVERY;
        for (let i = 0; i < links.length; i++) {
          const link = links[i] as ConsumerLink;
          if (link.lazy) link.hooks.catchUp();
        }
        this.#keepFrom = ring.oldestOffset;
      }
      // Only consumers whose trigger the write passes have anything to do (a policy
      // to apply, a reader to wake; see ConsumerLink), and when the write passes no
      // trigger at all (most writes) it does not even look: no work per consumer.
      // Otherwise one comparison each. The array stays as it is meanwhile:
      // subscribing is refused while writing and a consumer that leaves is only
      // marked (its trigger becomes Infinity).
      const schedule = this.#schedule;
      if (end > schedule.minTrigger) {
        // Recomputed by the loop; triggers lowered meanwhile (by listeners, by the
        // consumers called) lower it again.
        schedule.minTrigger = Number.POSITIVE_INFINITY;
        for (let i = 0; i < links.length; i++) {
          const link = links[i] as ConsumerLink;
          const trigger = link.trigger;
          if (trigger < end) {
            // A listener the call runs may touch it too (see BroadcastHost.touch).
            if (consumerCalls.prepare(link.consumer, incoming, reclaimFrom) && !link.touched) {
              link.touched = true;
              touched.push(link);
            }
          } else if (trigger < schedule.minTrigger) {
            schedule.minTrigger = trigger;
          }
        }
      }
      // A listener may have ended or aborted the broadcast meanwhile.
      this.#assertOpen('write to');
      if (pad > 0) {
        ring.reserve(pad);
        ring.commit(pad);
      }
      if (incoming.marker) ring.mark(incoming.seq, at);
      // A parked coalescing reader is woken at the latest its maxWaitMs after its first pending chunk.
      if (this.#parked.length > 0) {
        incoming.time = now();
        if (this.#timer === undefined) this.#startTimer(incoming.time + this.#minWaitMs);
      }
      ring.write(chunk);
      const viewer = this.#viewer;
      viewer.seek(at);
      this.#chunks.push(incoming, {
        bytes: viewer.read(n),
        marker: incoming.marker,
        offset: incoming.pos,
        sequence: incoming.seq,
      });
      this.#bytesIn += n;
      this.#chunksIn++;
      this.#chunks.prune(Math.min(ring.oldestOffset, this.#keepFrom));
      for (let i = 0; i < touched.length; i++) (touched[i] as ConsumerLink).hooks.written();
    } finally {
      if (touched.length > 0) {
        for (const link of touched) link.touched = false;
        touched.length = 0;
      }
      this.#writing = false;
      if (this.#compact) this.#dropGone();
    }
    let slowest: BroadcastConsumer | undefined;
    for (const link of this.#blockers) {
      if (link.hooks.full()) {
        slowest = link.consumer;
        break;
      }
    }
    if (slowest === undefined) {
      this.#afterFree();
      return true;
    }
    this.#needDrain = true;
    this.#stall.start();
    this.emit('stall', slowest);
    return false;
  }

  /**
   * Waits until a `write()` would return `true`, then writes: the awaitable
   * write.
   *
   * @example
   * ```ts
   * for await (const fragment of ingest) await live.send(fragment, { marker: isKeyframe(fragment), signal });
   * ```
   */
  async send(chunk: Uint8Array | ByteView, options: BroadcastSendOptions = {}): Promise<void> {
    await this.ready(options);
    this.write(chunk, options);
  }

  /**
   * Resolves when a `write()` would return `true` (every `'block'` consumer
   * is under its budget, or has left); rejects if the broadcast ends or
   * aborts, or the signal fires, first.
   *
   * @example
   * ```ts
   * if (!live.write(fragment)) await live.ready({ signal });
   * ```
   */
  ready(options: WaitOptions = {}): Promise<void> {
    try {
      this.#assertOpen('write to');
    } catch (error) {
      return Promise.reject(error);
    }
    if (!this.#full()) return Promise.resolve();
    const signal = options.signal;
    if (signal?.aborted) return Promise.reject(abortError(`wait for ${this.#name}`, signal));
    this.#stall.start();
    return new Promise<void>((resolve, reject) => {
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
          const i = this.#writers.indexOf(waiter);
          if (i !== -1) this.#writers.splice(i, 1);
          reject(abortError(`wait for ${this.#name}`, signal));
        };
        signal.addEventListener('abort', onAbort, { once: true });
      }
      this.#writers.push(waiter);
    });
  }

  /**
   * Ends the stream: consumers read what they have not yet read, then their
   * iteration ends; writes afterwards throw {@link ClosedError}. Idempotent.
   *
   * @example
   * ```ts
   * ingest.on('end', () => live.end());
   * ```
   */
  end(): void {
    if (this.#state !== 'open') return;
    this.#state = 'ended';
    this.#ring.end();
    this.#settleWriters(new ClosedError(this.#name));
    this.#disarm();
    for (const link of [...this.#consumers.values()]) link.hooks.ended();
    this.emit('end');
  }

  /**
   * Stops the stream for everyone: each consumer's pending and later reads
   * reject with {@link DisconnectedError} (reason `'producer-aborted'`,
   * `cause` = `reason`), and so does the producer's `ready()` with
   * {@link AbortedError}. Idempotent; also cuts off readers after `end()`.
   *
   * @example
   * ```ts
   * ingest.on('error', (err) => live.abort(err));
   * ```
   */
  abort(reason?: unknown): void {
    if (this.#state === 'aborted') return;
    const wasOpen = this.#state === 'open';
    this.#state = 'aborted';
    this.#reason = reason;
    if (wasOpen) this.#ring.end();
    this.#settleWriters(new AbortedError(this.#name, { cause: reason }));
    this.#disarm();
    for (const link of [...this.#consumers.values()]) link.hooks.aborted(reason);
    this.emit('abort', reason);
  }

  /** Whether some `'block'` consumer is at its budget. */
  #full(): boolean {
    for (const link of this.#blockers) if (link.hooks.full()) return true;
    return false;
  }

  /** Bytes were freed (or a consumer left): let the producer go on if nothing holds it back. */
  #afterFree(): void {
    if (this.#state !== 'open' || this.#writing || this.#full()) return;
    this.#stall.stop();
    if (this.#writers.length > 0) {
      for (const writer of this.#writers.splice(0)) {
        writer.cleanup();
        writer.resolve();
      }
    }
    if (this.#needDrain) {
      this.#needDrain = false;
      this.emit('drain');
    }
  }

  #leave(consumer: BroadcastConsumer, error: BackpressureError | undefined): void {
    const link = this.#consumers.get(consumer);
    if (link === undefined) return;
    this.#consumers.delete(consumer);
    link.gone = true;
    link.trigger = Number.POSITIVE_INFINITY;
    this.#compact = true;
    if (!this.#writing) this.#dropGone();
    const m = consumer.metrics;
    this.#departed.bytesOut += m.bytesOut;
    this.#departed.chunksOut += m.chunksOut;
    this.#departed.bytesDropped += m.bytesDropped;
    this.#departed.peak = Math.max(this.#departed.peak, m.peakBufferedBytes);
    this.emit('leave', consumer, error);
    if (consumer.policy === 'block') this.#afterFree();
  }

  /** Removes the links of consumers that left from the arrays `write()` walks. */
  #dropGone(): void {
    this.#compact = false;
    this.#links = this.#links.filter((link) => !link.gone);
    if (this.#blockers.length > 0) this.#blockers = this.#blockers.filter((link) => !link.gone);
  }

  #startTimer(at: number): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timerAt = at;
    this.#timer = setTimeout(() => this.#onTimer(), Math.max(0, Math.ceil(at - now())));
  }

  /**
   * Wakes the parked coalescing readers that are due; keeps the others (and
   * those still waiting for a first chunk) for later. Started by a write
   * while readers are parked, so it only runs while data is flowing.
   */
  #onTimer(): void {
    this.#timer = undefined;
    this.#timerAt = Number.POSITIVE_INFINITY;
    const at = now() + TIMER_SLACK_MS;
    const parked = this.#parked;
    this.#parked = [];
    let next = Number.POSITIVE_INFINITY;
    for (const link of parked) {
      const due = link.gone ? undefined : link.hooks.expire(at);
      if (due === undefined) {
        link.parked = false;
        continue;
      }
      // Still flagged `parked`, so park() cannot have added it again meanwhile.
      this.#parked.push(link);
      if (due < next) next = due;
    }
    if (next < this.#timerAt) this.#startTimer(next);
  }

  /** The producer finished: consumers get what is left now, so no deadline is needed. */
  #disarm(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#timerAt = Number.POSITIVE_INFINITY;
    for (const link of this.#parked) link.parked = false;
    this.#parked = [];
  }

  #settleWriters(error: BackpressureError): void {
    this.#stall.stop();
    this.#needDrain = false;
    for (const writer of this.#writers.splice(0)) {
      writer.cleanup();
      writer.reject(error);
    }
    this.#detach?.();
    this.#detach = undefined;
  }

  #assertOpen(action: string): void {
    if (this.#state === 'open') return;
    if (this.#state === 'aborted') {
      throw new AbortedError(`cannot ${action} ${this.#name}: it`, { cause: this.#reason });
    }
    throw new ClosedError(`cannot ${action} ${this.#name}: it`);
  }
}

const POLICIES: readonly unknown[] = ['block', 'drop-oldest', 'skip-to-marker', 'disconnect'];
/**
 * Writes between two catch-up passes: how many chunk records beyond those
 * in the ring a broadcast keeps for consumers that defer their policy.
 */
const CATCH_UP_EVERY = 256;
/** `coalesce.maxWaitMs` when only `minBytes` (or nothing) is given. */
const DEFAULT_MAX_WAIT_MS = 5;
/** Deadlines this close are served by the timer that is firing: timers fire on whole milliseconds. */
const TIMER_SLACK_MS = 1;
const STARTS: readonly unknown[] = ['newest', 'newest-marker', 'oldest'];

function measure(chunk: unknown): number {
  if (chunk instanceof Uint8Array) return chunk.byteLength;
  if (chunk instanceof ByteView) return chunk.length;
  throw new InvalidArgumentError(
    `a broadcast chunk must be a Uint8Array or a ByteView, got ${chunk === null ? 'null' : typeof chunk}`,
  );
}
