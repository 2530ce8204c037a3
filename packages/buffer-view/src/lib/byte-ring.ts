import { ByteView } from './byte-view';
import { recordAllocation } from './copy-stats';
import { InvalidArgumentError, InvalidLengthError, RingFullError } from './errors';
import { Lease } from './lease';
import { type RingHost, RingReader } from './ring-reader';
import { checkLength, checkOffset, MAX_OFFSET } from './validate';

/**
 * Options of {@link ByteRing}.
 *
 * @example
 * ```ts
 * import { ByteRing, type ByteRingOptions } from 'buffer-view';
 * const options: ByteRingOptions = { capacity: 32 * 2 ** 20, shared: true, maxMarkers: 1024 };
 * const ring = new ByteRing<number>(options);
 * ```
 */
export interface ByteRingOptions {
  /**
   * Bytes the ring holds. The ring is one `Uint8Array`, so at most 2^32.
   * There is no default: size it to the span readers may fall behind (for
   * live video, a few keyframe intervals at the stream's bitrate).
   */
  capacity: number;
  /**
   * Back the bytes, write offset, end flag and marker table with
   * `SharedArrayBuffer`s so {@link ByteRing.share} can hand the ring to worker
   * threads. Markers then carry numbers only.
   * @default false
   */
  shared?: boolean;
  /**
   * How many markers the ring remembers; older ones are forgotten first.
   * Markers the writer laps are dropped regardless.
   * @default 4096
   */
  maxMarkers?: number;
}

/**
 * A value attached to an absolute ring offset, for example "a keyframe
 * fragment starts here".
 *
 * @example
 * ```ts
 * import type { RingMarker } from 'buffer-view';
 * const marker: RingMarker<'keyframe'> = ring.mark('keyframe');
 * marker.offset; // where the next written byte will land
 * ```
 */
export interface RingMarker<M> {
  /** Absolute offset the marker points at. */
  readonly offset: number;
  /** What the writer attached. */
  readonly value: M;
}

/**
 * Where a new reader starts: `'oldest'` byte still held, `'newest'` (the write
 * offset: only bytes written from now on), `'newest-marker'` (the newest
 * marker, or the write offset when there is none yet) or an absolute offset.
 *
 * @example
 * ```ts
 * import type { RingStart } from 'buffer-view';
 * const start: RingStart = 'newest-marker'; // join a live stream at its newest keyframe
 * ```
 */
export type RingStart = 'oldest' | 'newest' | 'newest-marker' | number;

/**
 * Options of {@link ByteRing.reader}.
 *
 * @example
 * ```ts
 * import type { RingReaderOptions } from 'buffer-view';
 * const options: RingReaderOptions = { start: 'oldest', blocking: true };
 * const recorder = ring.reader(options);
 * ```
 */
export interface RingReaderOptions {
  /**
   * Where the reader's cursor starts.
   * @default 'newest'
   */
  start?: RingStart;
  /**
   * Hold the writer back instead of being lapped: bytes from the reader's
   * last {@link RingReader.release} point on cannot be overwritten, and the
   * writer gets {@link RingFullError} instead. Only in the writer's thread.
   * @default false
   */
  blocking?: boolean;
}

/**
 * A structured-clone-able description of a shared ring: post it to a worker
 * and call {@link ByteRing.attach} there. It holds only `SharedArrayBuffer`s
 * and numbers, so no memory is copied.
 *
 * @example
 * ```ts
 * import { ByteRing } from 'buffer-view';
 * const ring = new ByteRing({ capacity: 2 ** 24, shared: true });
 * worker.postMessage(ring.share());
 * ```
 */
export interface SharedRingHandle {
  /** Identifies the object as a ring handle. */
  readonly kind: 'buffer-view/byte-ring';
  /** Layout version of the shared memory. */
  readonly version: 1;
  /** The ring's capacity in bytes. */
  readonly capacity: number;
  /** The ring's marker limit. */
  readonly maxMarkers: number;
  /** The ring's bytes. */
  readonly data: SharedArrayBuffer;
  /** Write offset, overwrite claim, marker count, end flag and change counter. */
  readonly control: SharedArrayBuffer;
  /** Marker table: `(offset, value)` pairs of float64. */
  readonly markers: SharedArrayBuffer;
}

const DEFAULT_MAX_MARKERS = 4096;
const MAX_CAPACITY = 2 ** 32;
const MAX_MARKERS = 2 ** 24;

// Control block layout: three int64 words, then two int32 words.
const HEAD = 0;
const CLAIM = 1;
const MARKER_TOTAL = 2;
const ENDED = 0;
const SEQ = 1;
const CONTROL_BYTES = 32;
const INT32_AT = 24;

/** How long one `Atomics.waitAsync` may sleep before re-checking: bounds what an abandoned wait holds. */
const WAIT_SLICE_MS = 250;

type ChangeListener = (writeOffset: number) => void;

/** Set only while {@link ByteRing.attach} runs the constructor. */
let attaching: SharedRingHandle | undefined;

/**
 * A byte ring: fixed capacity, absolute offsets that only grow (plain numbers
 * up to 2^53), one writer and any number of readers, each with its own
 * cursor. The writer never waits for non-blocking readers: it laps them, and
 * a lapped reader gets {@link RingOverrunError} on its next read instead of
 * newer bytes. Markers (for example keyframes) let a reader join or rejoin at
 * a point where decoding can start.
 *
 * Written bytes are copied once into the ring (counted); reading returns
 * zero-copy views. With `shared: true` the ring lives in `SharedArrayBuffer`s
 * and {@link ByteRing.attach} gives other threads read-only access.
 *
 * @example
 * ```ts
 * import { ByteRing } from 'buffer-view';
 * const ring = new ByteRing<'keyframe'>({ capacity: 16 * 2 ** 20 });
 * // broadcaster: each fMP4 fragment is written; keyframe fragments are marked first
 * ring.mark('keyframe');
 * ring.write(fragment);
 * // a viewer joins at the newest keyframe and reads at its own pace
 * const viewer = ring.reader({ start: 'newest-marker' });
 * const bytes = viewer.read(); // zero-copy view
 * ```
 */
export class ByteRing<M = unknown> {
  readonly #memory: Uint8Array;
  readonly #segs: readonly Uint8Array[];
  readonly #starts: readonly number[];
  readonly #markers: MarkerTable<M>;
  readonly #control: BigInt64Array | undefined;
  readonly #flags: Int32Array | undefined;
  readonly #handle: SharedRingHandle | undefined;
  readonly #attached: boolean;
  readonly #host: RingHost<M>;
  #head = 0;
  #claim = 0;
  #ended = false;
  #lastMarker = 0;
  #reservation: { lease: Lease; length: number } | undefined;
  #listeners: readonly ChangeListener[] = [];
  readonly #blocking = new Set<RingReader<M>>();

  /**
   * Bytes the ring holds.
   *
   * @example
   * ```ts
   * const fill = (ring.writeOffset - ring.oldestOffset) / ring.capacity;
   * ```
   */
  readonly capacity: number;
  /**
   * Markers the ring remembers at most.
   *
   * @example
   * ```ts
   * new ByteRing({ capacity: 1024, maxMarkers: 8 }).maxMarkers; // 8
   * ```
   */
  readonly maxMarkers: number;

  /**
   * An empty ring, or (with `shared: true`) one that worker threads can read.
   *
   * @example
   * ```ts
   * import { ByteRing } from 'buffer-view';
   * const ring = new ByteRing({ capacity: 8 * 2 ** 20, maxMarkers: 256 });
   * ```
   */
  constructor(options: ByteRingOptions) {
    const handle = attaching;
    attaching = undefined;
    const capacity = handle?.capacity ?? options.capacity;
    const maxMarkers = handle?.maxMarkers ?? options.maxMarkers ?? DEFAULT_MAX_MARKERS;
    checkLength('ring capacity', capacity, MAX_CAPACITY);
    if (capacity === 0) throw new InvalidLengthError('ring capacity', 0, MAX_CAPACITY);
    checkLength('maxMarkers', maxMarkers, MAX_MARKERS);
    if (maxMarkers === 0) throw new InvalidLengthError('maxMarkers', 0, MAX_MARKERS);
    this.capacity = capacity;
    this.maxMarkers = maxMarkers;
    this.#attached = handle !== undefined;

    if (handle !== undefined) {
      this.#handle = handle;
      this.#memory = new Uint8Array(handle.data);
      this.#control = new BigInt64Array(handle.control, 0, 3);
      this.#flags = new Int32Array(handle.control, INT32_AT, 2);
      this.#markers = new MarkerTable<M>(maxMarkers, handle.markers, this.#control, true);
    } else if (options.shared === true) {
      if (typeof SharedArrayBuffer === 'undefined') {
        throw new InvalidArgumentError(
          'shared: true needs SharedArrayBuffer, which browsers only offer to cross-origin isolated pages',
        );
      }
      // One extra marker slot: the one the writer may be filling while another thread reads.
      const markers = new SharedArrayBuffer((maxMarkers + 1) * 16);
      const control = new SharedArrayBuffer(CONTROL_BYTES);
      const data = new SharedArrayBuffer(capacity);
      recordAllocation(capacity);
      recordAllocation(markers.byteLength + CONTROL_BYTES);
      this.#handle = {
        kind: 'buffer-view/byte-ring',
        version: 1,
        capacity,
        maxMarkers,
        data,
        control,
        markers,
      };
      this.#memory = new Uint8Array(data);
      this.#control = new BigInt64Array(control, 0, 3);
      this.#flags = new Int32Array(control, INT32_AT, 2);
      this.#markers = new MarkerTable<M>(maxMarkers, markers, this.#control, false);
    } else {
      this.#memory = new Uint8Array(capacity);
      recordAllocation(capacity);
      recordAllocation(maxMarkers * 8);
      this.#markers = new MarkerTable<M>(maxMarkers, undefined, undefined, false);
    }
    this.#segs = [this.#memory, this.#memory];
    this.#starts = [0, capacity];
    this.#host = {
      capacity,
      segs: this.#segs,
      starts: this.#starts,
      concurrent: this.#attached,
      head: () => this.#loadHead(),
      oldest: () => this.oldestOffset,
      ended: () => this.ended,
      newestMarker: () => this.newestMarker(),
      markerAtOrAfter: (offset) => this.markerAtOrAfter(offset),
      detach: (reader) => {
        this.#blocking.delete(reader);
      },
      version: () => (this.#flags !== undefined ? Atomics.load(this.#flags, SEQ) : 0),
      change: (seen, signal) => this.#change(seen, signal),
    };
  }

  /**
   * A read-only view of a shared ring made in another thread from
   * {@link ByteRing.share}. Its readers work as usual (and detect being
   * lapped by the other thread's writer, even mid-read); writing, marking and
   * ending throw, and blocking readers are not available.
   *
   * @example
   * ```ts
   * import { parentPort } from 'node:worker_threads';
   * import { ByteRing } from 'buffer-view';
   * parentPort.once('message', (handle) => {
   *   const reader = ByteRing.attach(handle).reader({ start: 'newest-marker' });
   * });
   * ```
   */
  static attach(handle: SharedRingHandle): ByteRing<number> {
    const valid =
      typeof handle === 'object' &&
      handle !== null &&
      handle.kind === 'buffer-view/byte-ring' &&
      handle.version === 1 &&
      isShared(handle.data) &&
      isShared(handle.control) &&
      isShared(handle.markers) &&
      handle.data.byteLength === handle.capacity &&
      handle.control.byteLength === CONTROL_BYTES &&
      handle.markers.byteLength === (handle.maxMarkers + 1) * 16;
    if (!valid) {
      throw new InvalidArgumentError(
        'expected a SharedRingHandle made by ByteRing.prototype.share()',
      );
    }
    attaching = handle;
    try {
      return new ByteRing<number>({ capacity: handle.capacity });
    } finally {
      attaching = undefined;
    }
  }

  /**
   * Absolute offset one past the last byte published: total bytes ever written.
   *
   * @example
   * ```ts
   * ring.write(new Uint8Array(10));
   * ring.writeOffset; // 10, and it keeps growing past capacity
   * ```
   */
  get writeOffset(): number {
    return this.#loadHead();
  }

  /**
   * Oldest absolute offset whose bytes the ring still holds:
   * `max(0, writeOffset - capacity)`, or less while a {@link ByteRing.reserve}
   * hands ring memory out for filling.
   *
   * @example
   * ```ts
   * const replay = ring.reader({ start: ring.oldestOffset });
   * ```
   */
  get oldestOffset(): number {
    const claim =
      this.#control !== undefined && this.#attached ? loadWord(this.#control, CLAIM) : this.#claim;
    return Math.max(0, claim - this.capacity);
  }

  /**
   * Whether the writer called {@link ByteRing.end}.
   *
   * @example
   * ```ts
   * if (ring.ended && reader.available === 0) socket.end();
   * ```
   */
  get ended(): boolean {
    if (this.#flags !== undefined && this.#attached) return Atomics.load(this.#flags, ENDED) !== 0;
    return this.#ended;
  }

  /**
   * Whether the ring lives in `SharedArrayBuffer`s.
   *
   * @example
   * ```ts
   * if (ring.shared) worker.postMessage(ring.share());
   * ```
   */
  get shared(): boolean {
    return this.#handle !== undefined;
  }

  /**
   * Whether this ring was made by {@link ByteRing.attach} and so cannot write.
   *
   * @example
   * ```ts
   * ByteRing.attach(handle).readOnly; // true
   * ```
   */
  get readOnly(): boolean {
    return this.#attached;
  }

  /**
   * Copies `bytes` into the ring (exactly one copy, counted) and publishes
   * them, overwriting the oldest bytes once the ring is full. All or nothing:
   * it throws {@link RingFullError} (writing nothing) if it would overwrite
   * bytes a blocking reader still holds, and {@link InvalidLengthError} for a
   * chunk larger than the ring. Listeners from {@link ByteRing.onWrite} run
   * before it returns.
   *
   * @example
   * ```ts
   * req.on('data', (chunk) => ring.write(chunk));
   * ```
   */
  write(bytes: Uint8Array | ByteView): void {
    this.#checkWriter();
    const n = bytes.length;
    checkLength('ring write length', n, Math.min(this.capacity, MAX_OFFSET - this.#head));
    const free = this.writable();
    if (n > free) throw new RingFullError(n, free);
    this.#dropReservation();
    if (n === 0) return;
    this.#announce(this.#head + n);
    this.#window(this.#head, n).write(bytes);
    this.#publish(this.#head + n);
  }

  /**
   * Bytes {@link ByteRing.write} (or `reserve`) accepts now without
   * {@link RingFullError}: the capacity, less what blocking readers hold. 0
   * for a read-only or ended ring.
   *
   * @example
   * ```ts
   * if (ring.writable() < chunk.length) await drained();
   * ```
   */
  writable(): number {
    if (this.#attached || this.#ended) return 0;
    let free = Math.min(this.capacity, MAX_OFFSET - this.#head);
    for (const reader of this.#blocking) {
      const held = reader.heldFrom;
      if (held !== undefined) free = Math.min(free, held + this.capacity - this.#head);
    }
    return Math.max(0, free);
  }

  /**
   * The next `n` bytes of ring memory (one segment, or two at the wrap), for
   * filling in place, for example by a socket read-into; then publish what
   * was filled with {@link ByteRing.commit}. Bytes readers had there count as
   * overwritten from this call on. The view is revoked (throws
   * {@link ReleasedError}) by `commit`, the next `reserve` or `write`, or `end`.
   *
   * @example
   * ```ts
   * const region = ring.reserve(64 * 1024);
   * const n = await readInto(source, region);
   * ring.commit(n);
   * ```
   */
  reserve(n: number): ByteView {
    this.#checkWriter();
    checkLength('ring reserve size', n, Math.min(this.capacity, MAX_OFFSET - this.#head));
    const free = this.writable();
    if (n > free) throw new RingFullError(n, free);
    this.#dropReservation();
    const lease = new Lease('ring reservation');
    this.#reservation = { lease, length: n };
    if (n === 0) return ByteView.empty();
    this.#announce(this.#head + n);
    return this.#window(this.#head, n, lease);
  }

  /**
   * Publishes the first `n` bytes of the last {@link ByteRing.reserve}
   * (which may be fewer than reserved) and revokes the reservation.
   *
   * @example
   * ```ts
   * ring.commit(bytesRead);
   * ```
   */
  commit(n: number): void {
    this.#checkWriter();
    const reservation = this.#reservation;
    if (reservation === undefined) {
      throw new InvalidArgumentError(
        'ByteRing.commit() needs a reserve() first (or the reservation was dropped)',
      );
    }
    checkLength('ring commit size', n, reservation.length);
    this.#dropReservation();
    if (n > 0) this.#publish(this.#head + n);
  }

  /**
   * Attaches `value` at an absolute offset (default: the write offset, so it
   * points at the next byte written). Offsets must not decrease from one
   * marker to the next and must lie in `[oldestOffset, writeOffset]`. On a
   * shared ring values must be numbers (they live in a float64 table).
   *
   * @example
   * ```ts
   * if (isKeyframeFragment(fragment)) ring.mark('keyframe');
   * ring.write(fragment);
   * ```
   */
  mark(value: M, offset: number = this.#head): RingMarker<M> {
    this.#checkWriter();
    checkOffset('marker offset', offset, Math.max(this.oldestOffset, this.#lastMarker), this.#head);
    if (this.#handle !== undefined && typeof value !== 'number') {
      throw new InvalidArgumentError(`markers of a shared ring carry numbers, got ${typeof value}`);
    }
    this.#markers.push(offset, value);
    this.#lastMarker = offset;
    return { offset, value };
  }

  /**
   * The newest marker still inside the ring.
   *
   * @example
   * ```ts
   * const keyframe = ring.newestMarker(); // where a new viewer should start
   * ```
   */
  newestMarker(): RingMarker<M> | undefined {
    return this.#markers.atOrAfter(this.oldestOffset, true);
  }

  /**
   * The first marker still inside the ring at or after absolute `offset`.
   *
   * @example
   * ```ts
   * const next = ring.markerAtOrAfter(reader.offset);
   * ```
   */
  markerAtOrAfter(offset: number): RingMarker<M> | undefined {
    return this.#markers.atOrAfter(Math.max(offset, this.oldestOffset), false);
  }

  /**
   * Every marker still inside the ring, oldest first (markers the writer has
   * lapped are gone).
   *
   * @example
   * ```ts
   * ring.markers().map((m) => m.offset); // keyframe offsets a viewer can seek to
   * ```
   */
  markers(): RingMarker<M>[] {
    return this.#markers.list(this.oldestOffset);
  }

  /**
   * A new reader with its own cursor.
   *
   * @example
   * ```ts
   * const live = ring.reader({ start: 'newest-marker' });
   * const archiver = ring.reader({ start: 'oldest', blocking: true }); // never lapped
   * ```
   */
  reader(options: RingReaderOptions = {}): RingReader<M> {
    const blocking = options.blocking ?? false;
    if (blocking && this.#attached) {
      throw new InvalidArgumentError(
        'blocking ring readers must live in the thread that writes the ring',
      );
    }
    const start = options.start ?? 'newest';
    const head = this.#loadHead();
    let offset: number;
    if (start === 'oldest') offset = this.oldestOffset;
    else if (start === 'newest') offset = head;
    else if (start === 'newest-marker') offset = this.newestMarker()?.offset ?? head;
    else if (typeof start === 'number') {
      checkOffset('reader start offset', start, this.oldestOffset, head);
      offset = start;
    } else {
      throw new InvalidArgumentError(`unknown reader start ${String(start)}`);
    }
    const reader = new RingReader<M>(this.#host, offset, blocking);
    if (blocking) this.#blocking.add(reader);
    return reader;
  }

  /**
   * Calls `listener` synchronously after every write, commit and `end()`,
   * with the write offset (a fan-out uses it to wake readers). Returns a
   * function that unsubscribes. A listener that throws does not undo the
   * write: its error is rethrown in a microtask. Only the writer's thread
   * is notified; other threads use {@link RingReader.waitForData}.
   *
   * @example
   * ```ts
   * const off = ring.onWrite(() => wakeViewers());
   * // later
   * off();
   * ```
   */
  onWrite(listener: (writeOffset: number) => void): () => void {
    this.#listeners = [...this.#listeners, listener];
    let subscribed = true;
    return () => {
      if (!subscribed) return;
      subscribed = false;
      this.#listeners = this.#listeners.filter((l) => l !== listener);
    };
  }

  /**
   * Marks the stream finished: readers that drain everything see
   * {@link RingReader.ended}; writing afterwards throws. Calling it twice is
   * harmless.
   *
   * @example
   * ```ts
   * req.on('end', () => ring.end());
   * ```
   */
  end(): void {
    if (this.#attached) this.#checkWriter();
    if (this.#ended) return;
    this.#dropReservation();
    this.#ended = true;
    if (this.#flags !== undefined) Atomics.store(this.#flags, ENDED, 1);
    this.#signal();
  }

  /**
   * A structured-clone-able handle for {@link ByteRing.attach} in another
   * thread. Needs `shared: true`.
   *
   * @example
   * ```ts
   * import { Worker } from 'node:worker_threads';
   * const worker = new Worker(new URL('./viewer.js', import.meta.url), { workerData: ring.share() });
   * ```
   */
  share(): SharedRingHandle {
    if (this.#handle === undefined) {
      throw new InvalidArgumentError('ByteRing.share() needs a ring created with { shared: true }');
    }
    return this.#handle;
  }

  #checkWriter(): void {
    if (this.#attached) {
      throw new InvalidArgumentError(
        'this ByteRing was attached from a handle and is read-only: write in the thread that created it',
      );
    }
    if (this.#ended) throw new InvalidArgumentError('cannot write to a ByteRing after end()');
  }

  #loadHead(): number {
    return this.#control !== undefined && this.#attached
      ? loadWord(this.#control, HEAD)
      : this.#head;
  }

  /** A window of ring memory from absolute `offset`, wrapping through the second segment. */
  #window(offset: number, n: number, lease?: Lease): ByteView {
    const start = offset % this.capacity;
    return new ByteView({
      segs: this.#segs,
      starts: this.#starts,
      first: 0,
      last: start + n > this.capacity ? 2 : 1,
      start,
      length: n,
      lease,
    });
  }

  /**
   * Declares bytes up to `end - capacity` overwritten *before* touching them,
   * so a reader in another thread that re-checks after reading sees the loss.
   */
  #announce(end: number): void {
    if (end <= this.#claim) return;
    this.#claim = end;
    if (this.#control !== undefined) Atomics.store(this.#control, CLAIM, BigInt(end));
    this.#markers.prune(this.oldestOffset);
  }

  #publish(head: number): void {
    this.#head = head;
    if (this.#control !== undefined) Atomics.store(this.#control, HEAD, BigInt(head));
    this.#signal();
  }

  #signal(): void {
    if (this.#flags !== undefined) {
      Atomics.add(this.#flags, SEQ, 1);
      Atomics.notify(this.#flags, SEQ);
    }
    const head = this.#head;
    for (const listener of this.#listeners) {
      try {
        listener(head);
      } catch (error) {
        queueMicrotask(() => {
          throw error;
        });
      }
    }
  }

  #dropReservation(): void {
    if (this.#reservation === undefined) return;
    this.#reservation.lease.revoke('released');
    this.#reservation = undefined;
  }

  #change(seen: number, signal: AbortSignal | undefined): Promise<void> {
    const flags = this.#flags;
    if (this.#attached && flags !== undefined) return waitShared(flags, seen, signal);
    return new Promise<void>((resolve, reject) => {
      const done = (): void => {
        off();
        signal?.removeEventListener('abort', abort);
        resolve();
      };
      const abort = (): void => {
        off();
        reject(signal?.reason);
      };
      const off = this.onWrite(done);
      signal?.addEventListener('abort', abort, { once: true });
    });
  }
}

/**
 * Markers in a circular table. Offsets are non-decreasing by insertion, so
 * lookups are binary searches. In shared mode the table is a float64
 * `SharedArrayBuffer` of `(offset, value)` pairs and a total count in the
 * control block; readers in other threads read it seqlock style (read, then
 * re-check the count, retry if a slot they read was being reused).
 */
class MarkerTable<M> {
  readonly #slots: number;
  readonly #window: number;
  readonly #offsets: Float64Array;
  readonly #pairs: Float64Array | undefined;
  readonly #values: (M | undefined)[] | undefined;
  readonly #control: BigInt64Array | undefined;
  readonly #concurrent: boolean;
  #total = 0;
  #live = 0;

  constructor(
    maxMarkers: number,
    shared: SharedArrayBuffer | undefined,
    control: BigInt64Array | undefined,
    concurrent: boolean,
  ) {
    this.#window = maxMarkers;
    this.#control = control;
    this.#concurrent = concurrent;
    if (shared !== undefined) {
      this.#slots = maxMarkers + 1;
      this.#pairs = new Float64Array(shared);
      this.#offsets = this.#pairs;
    } else {
      this.#slots = maxMarkers;
      this.#offsets = new Float64Array(maxMarkers);
      this.#values = [];
    }
  }

  push(offset: number, value: M): void {
    const k = this.#total;
    const slot = k % this.#slots;
    if (this.#pairs !== undefined) {
      this.#pairs[2 * slot] = offset;
      this.#pairs[2 * slot + 1] = value as number;
    } else {
      this.#offsets[slot] = offset;
      (this.#values as (M | undefined)[])[slot] = value;
    }
    this.#total = k + 1;
    if (this.#control !== undefined) Atomics.store(this.#control, MARKER_TOTAL, BigInt(k + 1));
  }

  /** Forgets markers below `oldest` so their values can be collected (writer only). */
  prune(oldest: number): void {
    const values = this.#values;
    let k = Math.max(this.#live, this.#total - this.#window);
    while (k < this.#total && this.#offsetOf(k) < oldest) {
      if (values !== undefined) values[k % this.#slots] = undefined;
      k++;
    }
    this.#live = k;
  }

  /** First marker at or after `from` (or, with `newest`, the last marker if it is at or after `from`). */
  atOrAfter(from: number, newest: boolean): RingMarker<M> | undefined {
    return this.#snapshot((lo, hi) => {
      if (newest) return hi > lo && this.#offsetOf(hi - 1) >= from ? this.#at(hi - 1) : undefined;
      const k = this.#search(lo, hi, from);
      return k < hi ? this.#at(k) : undefined;
    });
  }

  list(from: number): RingMarker<M>[] {
    return this.#snapshot((lo, hi) => {
      const out: RingMarker<M>[] = [];
      for (let k = this.#search(lo, hi, from); k < hi; k++) out.push(this.#at(k));
      return out;
    });
  }

  /** Runs `read` over the indexes `[lo, hi)` still in the table, retrying if the writer reused one meanwhile. */
  #snapshot<T>(read: (lo: number, hi: number) => T): T {
    for (;;) {
      const hi = this.#loadTotal();
      const lo = Math.max(this.#concurrent ? 0 : this.#live, hi - this.#window);
      const result = read(lo, hi);
      // The writer fills slot (total % slots) before bumping total, which reuses index total - window - 1.
      if (!this.#concurrent || lo >= this.#loadTotal() - this.#window) return result;
    }
  }

  /** Index of the first marker in `[lo, hi)` whose offset is >= `from`, or `hi`. */
  #search(lo: number, hi: number, from: number): number {
    while (lo < hi) {
      const mid = lo + Math.floor((hi - lo) / 2);
      if (this.#offsetOf(mid) < from) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  #offsetOf(k: number): number {
    const slot = k % this.#slots;
    return (this.#pairs !== undefined ? this.#pairs[2 * slot] : this.#offsets[slot]) as number;
  }

  #at(k: number): RingMarker<M> {
    const slot = k % this.#slots;
    if (this.#pairs !== undefined) {
      return { offset: this.#pairs[2 * slot] as number, value: this.#pairs[2 * slot + 1] as M };
    }
    return { offset: this.#offsets[slot] as number, value: (this.#values as M[])[slot] as M };
  }

  #loadTotal(): number {
    return this.#concurrent && this.#control !== undefined
      ? loadWord(this.#control, MARKER_TOTAL)
      : this.#total;
  }
}

function noop(): void {}

function loadWord(control: BigInt64Array, index: number): number {
  return Number(Atomics.load(control, index));
}

function isShared(value: unknown): value is SharedArrayBuffer {
  return typeof SharedArrayBuffer !== 'undefined' && value instanceof SharedArrayBuffer;
}

/**
 * Sleeps until the writer's change counter moves past `seen`. Waits in
 * bounded slices so an abandoned wait does not linger; falls back to polling
 * where `Atomics.waitAsync` is missing.
 */
async function waitShared(
  flags: Int32Array,
  seen: number,
  signal: AbortSignal | undefined,
): Promise<void> {
  let stop: (() => void) | undefined;
  const aborted =
    signal === undefined
      ? undefined
      : new Promise<void>((resolve) => {
          stop = resolve;
          signal.addEventListener('abort', stop, { once: true });
        });
  try {
    while (Atomics.load(flags, SEQ) === seen) {
      signal?.throwIfAborted();
      let sleep: Promise<unknown>;
      let keepAlive: ReturnType<typeof setTimeout> | undefined;
      if (typeof Atomics.waitAsync === 'function') {
        const result = Atomics.waitAsync(flags, SEQ, seen, WAIT_SLICE_MS);
        if (!result.async) continue;
        sleep = result.value;
        // Node does not count a pending waitAsync as pending work: without a
        // timer a worker whose only job is this wait would exit mid-await.
        keepAlive = setTimeout(noop, WAIT_SLICE_MS + 50);
      } else {
        sleep = new Promise((resolve) => setTimeout(resolve, 1));
      }
      try {
        await (aborted === undefined ? sleep : Promise.race([sleep, aborted]));
      } finally {
        clearTimeout(keepAlive);
      }
    }
    signal?.throwIfAborted();
  } finally {
    if (stop !== undefined) signal?.removeEventListener('abort', stop);
  }
}
