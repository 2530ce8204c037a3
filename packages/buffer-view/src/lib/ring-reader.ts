import type { RingMarker } from './byte-ring';
import { ByteView } from './byte-view';
import { recordCopy } from './copy-stats';
import { ReleasedError, RingOverrunError } from './errors';
import { Lease } from './lease';
import { checkLength, checkOffset } from './validate';

/**
 * @internal What a reader needs from its ring. The ring implements it with a
 * private object, so readers reach ring state without it becoming public API.
 */
export interface RingHost<M> {
  readonly capacity: number;
  /** `[memory, memory]` at starts `[0, capacity]`: a wrapped range is one window over the pair. */
  readonly segs: readonly Uint8Array[];
  readonly starts: readonly number[];
  /** Another thread writes (an attached ring), so every read must re-check after touching bytes. */
  readonly concurrent: boolean;
  head(): number;
  /** Oldest absolute offset whose bytes are not overwritten or being overwritten. */
  oldest(): number;
  ended(): boolean;
  newestMarker(): RingMarker<M> | undefined;
  markerAtOrAfter(offset: number): RingMarker<M> | undefined;
  detach(reader: RingReader<M>): void;
  /** A counter of writes and ends, read before checking state so a change in between is not missed. */
  version(): number;
  /** Resolves once something was written or the ring ended after `version()` returned `seen`. */
  change(seen: number, signal: AbortSignal | undefined): Promise<void>;
}

/**
 * Options of {@link RingReader.waitForData}.
 *
 * @example
 * ```ts
 * import type { RingWaitOptions } from 'buffer-view';
 * const options: RingWaitOptions = { signal: AbortSignal.timeout(30_000) };
 * await reader.waitForData(options);
 * ```
 */
export interface RingWaitOptions {
  /**
   * Stops waiting: the promise rejects with the signal's reason.
   * @default undefined
   */
  signal?: AbortSignal;
}

/**
 * A lease that stays valid while the bytes from `from` onwards are intact, so
 * a view handed out earlier throws {@link RingOverrunError} once the writer
 * has lapped it instead of showing the newer bytes now in that memory.
 */
class RingLease extends Lease {
  readonly #host: RingHost<unknown>;
  readonly #from: number;

  constructor(host: RingHost<unknown>, from: number) {
    super('ring view');
    this.#host = host;
    this.#from = from;
  }

  override get valid(): boolean {
    return this.#from >= this.#host.oldest();
  }

  override check(): void {
    const oldest = this.#host.oldest();
    if (this.#from < oldest) throw new RingOverrunError(this.#from, oldest);
  }
}

/**
 * One reader's cursor into a {@link ByteRing}: its own absolute offset, its own
 * pace. Readers never copy unless asked (`readInto`): {@link RingReader.read}
 * returns a view of ring memory.
 *
 * Views alias the ring. A view is valid until the writer has advanced
 * `capacity` bytes past the view's start; after that every access to it
 * throws {@link RingOverrunError} (the view checks on each use), and
 * {@link RingReader.isIntact} says whether it still holds. Raw arrays taken out
 * of a view (`toSegments()`, `asUint8Array()`) cannot check themselves: check
 * `isIntact(start)` after using them (for example after the socket write
 * that sent them completed). A *blocking* reader never gets lapped: the writer
 * gets {@link RingFullError} instead until the reader calls
 * {@link RingReader.release}.
 *
 * @example
 * ```ts
 * import { ByteRing, RingOverrunError } from 'buffer-view';
 * const ring = new ByteRing<'keyframe'>({ capacity: 8 * 2 ** 20 });
 * const viewer = ring.reader({ start: 'newest-marker' });
 * const chunk = viewer.read(64 * 1024);     // zero-copy, one or two segments
 * try { viewer.read(); } catch (err) {
 *   if (RingOverrunError.isInstance(err)) viewer.skipToNextMarker(); // rejoin at a keyframe
 * }
 * ```
 */
export class RingReader<M = unknown> {
  readonly #host: RingHost<M>;
  #offset: number;
  #hold: number;
  #closed = false;

  /**
   * Whether this reader holds the writer back instead of being lapped.
   *
   * @example
   * ```ts
   * if (reader.blocking) reader.release();
   * ```
   */
  readonly blocking: boolean;

  /** @internal Use {@link ByteRing.reader}. */
  constructor(host: RingHost<M>, start: number, blocking: boolean) {
    this.#host = host;
    this.#offset = start;
    this.#hold = start;
    this.blocking = blocking;
  }

  /**
   * Absolute offset of the next byte this reader reads.
   *
   * @example
   * ```ts
   * const before = reader.offset;
   * reader.read(100);
   * reader.offset - before; // up to 100
   * ```
   */
  get offset(): number {
    return this.#offset;
  }

  /**
   * How far behind the writer this reader is, in bytes (`writeOffset - offset`).
   * More than `capacity` means it was lapped.
   *
   * @example
   * ```ts
   * if (reader.lag > ring.capacity / 2) console.warn('viewer falling behind');
   * ```
   */
  get lag(): number {
    return this.#host.head() - this.#offset;
  }

  /**
   * Bytes {@link RingReader.read} can return now: 0 when closed or lapped.
   *
   * @example
   * ```ts
   * if (reader.available >= 8) header = reader.read(8);
   * ```
   */
  get available(): number {
    if (this.#closed || this.lapped) return 0;
    return Math.max(0, this.#host.head() - this.#offset);
  }

  /**
   * Whether the writer has overwritten bytes this reader had not read yet.
   *
   * @example
   * ```ts
   * if (reader.lapped) reader.seekToNewestMarker();
   * ```
   */
  get lapped(): boolean {
    return this.#offset < this.#host.oldest();
  }

  /**
   * Whether the writer called `end()` and this reader has read every byte.
   *
   * @example
   * ```ts
   * while (!reader.ended) { await reader.waitForData(); send(reader.read()); }
   * ```
   */
  get ended(): boolean {
    return this.#host.ended() && this.#offset >= this.#host.head();
  }

  /**
   * Whether {@link RingReader.close} was called.
   *
   * @example
   * ```ts
   * reader.close();
   * reader.closed; // true
   * ```
   */
  get closed(): boolean {
    return this.#closed;
  }

  /**
   * For an open blocking reader, the oldest absolute offset it still holds
   * (its last release point): the writer may not overwrite bytes from here
   * on. `undefined` for non-blocking or closed readers.
   *
   * @example
   * ```ts
   * const held = reader.offset - (reader.heldFrom ?? reader.offset); // bytes pinned
   * ```
   */
  get heldFrom(): number | undefined {
    return this.blocking && !this.#closed ? this.#hold : undefined;
  }

  /**
   * A zero-copy view of up to `max` unread bytes (one segment, or two where
   * the range wraps), advancing the cursor past them. Returns an empty view
   * when nothing is available. Throws {@link RingOverrunError} (and does not
   * move) when the writer has lapped this reader: it never returns
   * overwritten bytes. See the class notes for how long the view is valid.
   *
   * @example
   * ```ts
   * const view = reader.read(64 * 1024);
   * for (const bytes of view.segments()) socket.write(bytes);
   * ```
   */
  read(max: number = Number.POSITIVE_INFINITY): ByteView {
    const view = this.peek(max);
    this.#offset += view.length;
    return view;
  }

  /**
   * Like {@link RingReader.read} without advancing.
   *
   * @example
   * ```ts
   * const header = reader.peek(8);
   * if (header.length === 8 && header.getUint32(0) <= reader.available) reader.read(header.getUint32(0));
   * ```
   */
  peek(max: number = Number.POSITIVE_INFINITY): ByteView {
    const n = this.#readable(max);
    if (n === 0) return ByteView.empty();
    const capacity = this.#host.capacity;
    const start = this.#offset % capacity;
    const view = new ByteView({
      segs: this.#host.segs,
      starts: this.#host.starts,
      first: 0,
      last: start + n > capacity ? 2 : 1,
      start,
      length: n,
      lease: new RingLease(this.#host as RingHost<unknown>, this.#offset),
    });
    // A writer in another thread may have lapped us while the view was built.
    if (this.#host.concurrent) this.#checkIntact(this.#offset);
    return view;
  }

  /**
   * Copies up to `target.length` unread bytes into `target` and advances past
   * them; returns how many were copied (0 when nothing is available). This is
   * the read to use from another thread: it checks *after* copying that the
   * writer did not overwrite the bytes meanwhile (seqlock style) and throws
   * {@link RingOverrunError} if it did, so a returned count always means
   * correct bytes. The copy is counted in {@link copyStats}.
   *
   * @example
   * ```ts
   * const ring = ByteRing.attach(handle);          // in a worker
   * const reader = ring.reader({ start: 'oldest' });
   * const buf = new Uint8Array(64 * 1024);
   * const n = reader.readInto(buf);                // buf[0..n) are exactly the ring's bytes
   * ```
   */
  readInto(target: Uint8Array): number {
    const n = this.#readable(target.length);
    if (n === 0) return 0;
    const capacity = this.#host.capacity;
    const memory = this.#host.segs[0] as Uint8Array;
    const start = this.#offset % capacity;
    const first = Math.min(n, capacity - start);
    target.set(memory.subarray(start, start + first), 0);
    if (first < n) target.set(memory.subarray(0, n - first), first);
    recordCopy(n);
    this.#checkIntact(this.#offset);
    this.#offset += n;
    return n;
  }

  /**
   * Whether the bytes from absolute offset `fromOffset` onwards have not been
   * overwritten since they were written: use it to validate a view (or raw
   * arrays taken from one) handed out earlier before trusting it.
   *
   * @example
   * ```ts
   * const start = reader.offset;
   * const view = reader.read();
   * await writeToSocket(view.toSegments());
   * if (!reader.isIntact(start)) throw new Error('sent bytes were overwritten mid-write');
   * ```
   */
  isIntact(fromOffset: number): boolean {
    return fromOffset >= this.#host.oldest();
  }

  /**
   * Moves the cursor to an absolute offset between the ring's oldest held
   * byte and its write offset. A blocking reader seeking backwards holds from
   * the new offset; seeking forwards keeps its hold until
   * {@link RingReader.release}.
   *
   * @example
   * ```ts
   * reader.seek(ring.oldestOffset); // replay everything still held
   * ```
   */
  seek(offset: number): void {
    this.#checkOpen();
    checkOffset('seek offset', offset, this.#host.oldest(), this.#host.head());
    this.#moveTo(offset);
  }

  /**
   * Moves to the newest marker still in the ring (for live video: the newest
   * keyframe) and returns it; stays put and returns `undefined` if there is none.
   *
   * @example
   * ```ts
   * const keyframe = reader.seekToNewestMarker();
   * ```
   */
  seekToNewestMarker(): RingMarker<M> | undefined {
    this.#checkOpen();
    const marker = this.#host.newestMarker();
    if (marker !== undefined) this.#moveTo(marker.offset);
    return marker;
  }

  /**
   * Moves to the first marker after the cursor (for a lapped reader: the
   * oldest marker still held, which loses the least data) and returns it;
   * stays put and returns `undefined` if there is none yet.
   *
   * @example
   * ```ts
   * if (reader.lapped) reader.skipToNextMarker(); // resume at the next keyframe
   * ```
   */
  skipToNextMarker(): RingMarker<M> | undefined {
    this.#checkOpen();
    const marker = this.#host.markerAtOrAfter(this.#offset + 1);
    if (marker !== undefined) this.#moveTo(marker.offset);
    return marker;
  }

  /**
   * Blocking readers: lets the writer overwrite bytes before absolute offset
   * `upTo` (default: the cursor). Call it once views of those bytes are no
   * longer used (for example after the socket write completed). A no-op for
   * non-blocking readers, which hold nothing.
   *
   * @example
   * ```ts
   * const view = reader.read();
   * socket.write(view.asUint8Array(), () => reader.release());
   * ```
   */
  release(upTo: number = this.#offset): void {
    this.#checkOpen();
    if (!this.blocking) return;
    checkOffset('release offset', upTo, this.#hold, this.#offset);
    this.#hold = upTo;
  }

  /**
   * Resolves once {@link RingReader.read} has something to do: bytes are
   * available, the ring ended, or this reader was lapped (so `read()` throws).
   * Works across threads for attached rings.
   *
   * @example
   * ```ts
   * for (;;) {
   *   await reader.waitForData({ signal });
   *   if (reader.ended) break;
   *   sink.write(reader.read().copy());
   * }
   * ```
   */
  async waitForData(options: RingWaitOptions = {}): Promise<void> {
    const { signal } = options;
    for (;;) {
      signal?.throwIfAborted();
      this.#checkOpen();
      const seen = this.#host.version();
      if (this.available > 0 || this.lapped || this.#host.ended()) return;
      await this.#host.change(seen, signal);
    }
  }

  /**
   * Detaches from the ring: a closed blocking reader no longer holds the
   * writer back, and reading from a closed reader throws {@link ReleasedError}.
   * Calling it twice is harmless.
   *
   * @example
   * ```ts
   * socket.on('close', () => reader.close());
   * ```
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#host.detach(this);
  }

  /** Bytes a read of at most `max` would take; throws if closed or lapped. */
  #readable(max: number): number {
    this.#checkOpen();
    if (max !== Number.POSITIVE_INFINITY) checkLength('read size', max);
    // Head first: bytes below it were published before we look at the oldest bound.
    const head = this.#host.head();
    this.#checkIntact(this.#offset);
    return Math.max(0, Math.min(max, head - this.#offset));
  }

  #checkIntact(from: number): void {
    const oldest = this.#host.oldest();
    if (from < oldest) throw new RingOverrunError(from, oldest);
  }

  #checkOpen(): void {
    if (this.#closed) throw new ReleasedError('ring reader (closed)');
  }

  /** Moves without range checks: a marker found a moment ago may already be lapped, which the next read reports. */
  #moveTo(offset: number): void {
    this.#offset = offset;
    if (this.blocking && offset < this.#hold) this.#hold = offset;
  }
}
