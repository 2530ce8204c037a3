import { ByteRing } from './byte-ring';
import { ByteStore } from './byte-store';
import { ByteView } from './byte-view';
import { InvalidArgumentError, OutOfRangeError } from './errors';
import type { SegmentsLike } from './fd-io.node.ts';
import { describe, segmentsOf } from './iovec.node.ts';
import { checkLength } from './validate';

const EMPTY = new Uint8Array(0);

/**
 * Memory that socket receives and stream reads fill in place, one region at
 * a time: the reader asks for {@link ReadTarget.region}, lets the kernel (or
 * one copy) fill the start of it, and reports the count with
 * {@link ReadTarget.commit}. {@link regionTarget}, {@link storeTarget} and
 * {@link ringTarget} cover a fixed region, a growing `ByteStore` and a
 * `ByteRing`; implement the interface for anything else.
 *
 * @example
 * ```ts
 * import type { ReadTarget } from 'buffer-view/node';
 * // Counts bytes into one reused scratch buffer, e.g. to discard a body.
 * const scratch = new Uint8Array(64 * 1024);
 * let seen = 0;
 * const sink: ReadTarget = { region: () => scratch, commit: (n) => { seen += n; } };
 * ```
 */
export interface ReadTarget {
  /**
   * Where the next bytes land: non-empty while the target can take bytes,
   * empty when it cannot (full for now, or complete). A reader may fill any
   * prefix of it before the next call to `commit`, so the memory must stay
   * writable until then.
   */
  region(): Uint8Array;
  /**
   * `n` bytes (at most the last region's length) were written at the start
   * of the last region. Return `false` to pause until {@link ReadTarget.ready}.
   */
  // biome-ignore lint/suspicious/noConfusingVoidType: a commit that returns nothing (continue) must type-check
  commit(n: number): boolean | void;
  /**
   * Resolves once a paused or full target can take bytes again (rejecting
   * with `signal.reason` on abort). A target without it is complete as soon
   * as its region is empty or `commit` returns `false`.
   */
  ready?(signal?: AbortSignal): Promise<void>;
  /**
   * Takes ownership of `bytes` without copying them (a stream read hands over
   * whole buffers it allocated itself, for example from a BYOB reader).
   */
  adopt?(bytes: Uint8Array): void;
  /** Called once when reading into the target stops, however it stops. */
  close?(): void;
  /** Total bytes the target wants, when it has a fixed size; `exact` reads need it. */
  readonly expected?: number;
}

/**
 * What the read-into functions accept as a target: a {@link ReadTarget}, a
 * fixed region (`Uint8Array`, `ByteView` or list of `Uint8Array`s, wrapped
 * by {@link regionTarget}), a `ByteStore` ({@link storeTarget}: appended to)
 * or a `ByteRing` ({@link ringTarget}: written through reserve/commit).
 *
 * @example
 * ```ts
 * import type { ReadTargetLike } from 'buffer-view/node';
 * const into: ReadTargetLike = ByteStore.alloc(1024).view(); // a fixed 1 KiB region
 * ```
 */
export type ReadTargetLike = ReadTarget | SegmentsLike | ByteStore | ByteRing<unknown>;

/**
 * A {@link ReadTarget} over fixed memory, with its fill level; made by
 * {@link regionTarget}.
 *
 * @example
 * ```ts
 * import { regionTarget, type RegionTarget } from 'buffer-view/node';
 * const target: RegionTarget = regionTarget(new Uint8Array(188));
 * target.expected - target.filled; // bytes still wanted
 * ```
 */
export interface RegionTarget extends ReadTarget {
  /** The region's length. */
  readonly expected: number;
  /** Bytes filled so far (always from the region's start). */
  readonly filled: number;
}

/**
 * Options of {@link storeTarget}.
 *
 * @example
 * ```ts
 * import type { StoreTargetOptions } from 'buffer-view/node';
 * const options: StoreTargetOptions = { chunkSize: 1 << 20 }; // fewer, larger reads
 * ```
 */
export interface StoreTargetOptions {
  /**
   * Bytes the store grows by whenever the current reservation is full; what
   * a read has not filled is truncated away when reading stops.
   * @default 65536
   */
  chunkSize?: number;
}

/**
 * A {@link ReadTarget} that appends to a `ByteStore`; made by {@link storeTarget}.
 *
 * @example
 * ```ts
 * import { storeTarget, type StoreTarget } from 'buffer-view/node';
 * const target: StoreTarget = storeTarget(store);
 * const received = store.length - target.unfilled; // while a receive is running
 * ```
 */
export interface StoreTarget extends ReadTarget {
  /**
   * Bytes at the end of the store grown for reads but not filled yet (the
   * store's length counts them until reading stops and they are truncated).
   */
  readonly unfilled: number;
}

/**
 * Options of {@link ringTarget}.
 *
 * @example
 * ```ts
 * import type { RingTargetOptions } from 'buffer-view/node';
 * const options: RingTargetOptions = { maxRead: 16 * 1024, ready: () => once(archiver, 'released') };
 * ```
 */
export interface RingTargetOptions {
  /**
   * Most bytes reserved for one read. Non-blocking ring readers count a
   * reservation as overwritten from the moment it is made, so smaller
   * reservations lap them later.
   * @default 65536
   */
  maxRead?: number;
  /**
   * How a full ring (held back by a blocking reader) signals that it has room
   * again. The ring itself has no such event, so by default the target polls
   * `ring.writable()` every few milliseconds; pass your own wake-up (for
   * example one fired when your blocking reader calls `release()`).
   * @default polling every 1-16 ms
   */
  ready?: (signal?: AbortSignal) => Promise<void>;
}

/**
 * A target over fixed memory, filled from its start until full (then the
 * target is complete). Reads into it are exact: the kernel is never handed
 * more than the room left.
 *
 * @example
 * ```ts
 * import { regionTarget } from 'buffer-view/node';
 * const header = regionTarget(new Uint8Array(8));
 * await receiver.receive(header);
 * header.filled; // 8
 * ```
 */
export function regionTarget(region: SegmentsLike): RegionTarget {
  const segs = segmentsOf(region);
  let expected = 0;
  for (const seg of segs) expected += seg.length;
  let index = 0;
  let offset = 0;
  let filled = 0;
  return {
    expected,
    get filled() {
      return filled;
    },
    region() {
      const seg = segs[index];
      if (seg === undefined) return EMPTY;
      return offset === 0 ? seg : seg.subarray(offset);
    },
    commit(n: number) {
      const seg = segs[index];
      checkLength('committed byte count', n, seg === undefined ? 0 : seg.length - offset);
      if (seg === undefined) return;
      filled += n;
      offset += n;
      if (offset === seg.length) {
        index++;
        offset = 0;
      }
    },
  };
}

/**
 * A target that appends to `store`, growing it `chunkSize` bytes at a time
 * and letting reads land straight in the grown memory; when reading stops
 * the unfilled rest is truncated. Growth allocates (counted by the store);
 * receiving does not copy.
 *
 * @example
 * ```ts
 * import { ByteStore } from 'buffer-view';
 * import { connectInto, storeTarget } from 'buffer-view/node';
 * const body = new ByteStore();
 * await connectInto({ host, port }).receive(storeTarget(body, { chunkSize: 1 << 20 }));
 * ```
 */
export function storeTarget(store: ByteStore, options: StoreTargetOptions = {}): StoreTarget {
  const chunkSize = options.chunkSize ?? 65536;
  checkLength('chunkSize', chunkSize);
  if (chunkSize === 0) throw new OutOfRangeError('chunkSize', 0, 1, Number.MAX_SAFE_INTEGER);
  let segs: Uint8Array[] = [];
  let index = 0;
  let offset = 0;
  let unfilled = 0;
  const trim = (): void => {
    if (unfilled > 0) store.truncate(store.length - unfilled);
    segs = [];
    index = 0;
    offset = 0;
    unfilled = 0;
  };
  return {
    get unfilled() {
      return unfilled;
    },
    region() {
      if (index === segs.length) {
        segs = store.grow(chunkSize).toSegments();
        index = 0;
        offset = 0;
        unfilled = chunkSize;
      }
      const seg = segs[index] as Uint8Array;
      return offset === 0 ? seg : seg.subarray(offset);
    },
    commit(n: number) {
      const seg = segs[index];
      checkLength('committed byte count', n, seg === undefined ? 0 : seg.length - offset);
      if (seg === undefined) return;
      unfilled -= n;
      offset += n;
      if (offset === seg.length) {
        index++;
        offset = 0;
      }
    },
    adopt(bytes: Uint8Array) {
      // Adopted bytes go after everything received so far, so the grown-but-empty tail must go first.
      trim();
      store.append(bytes);
    },
    close: trim,
  };
}

/**
 * A target that writes into `ring` in place: each read fills a
 * `ring.reserve()` (never across the wrap, so one contiguous run) and is
 * published with `ring.commit()`. No memory is allocated or copied per read.
 * When blocking readers hold the ring full, the target pauses until
 * `ring.writable()` is positive again.
 *
 * @example
 * ```ts
 * import { ByteRing } from 'buffer-view';
 * import { connectInto, ringTarget } from 'buffer-view/node';
 * const ring = new ByteRing({ capacity: 32 * 2 ** 20 });
 * const rx = connectInto({ host: 'encoder.local', port: 9000 });
 * await rx.receive(ringTarget(ring)); // until the encoder closes the connection
 * ```
 */
export function ringTarget(ring: ByteRing<unknown>, options: RingTargetOptions = {}): ReadTarget {
  const maxRead = options.maxRead ?? 65536;
  checkLength('maxRead', maxRead);
  if (maxRead === 0) throw new OutOfRangeError('maxRead', 0, 1, Number.MAX_SAFE_INTEGER);
  if (ring.readOnly) {
    throw new InvalidArgumentError(
      'cannot read into a ByteRing attached from a handle: it is read-only',
    );
  }
  return {
    region() {
      if (ring.ended) throw new InvalidArgumentError('cannot read into a ByteRing after end()');
      const toWrap = ring.capacity - (ring.writeOffset % ring.capacity);
      const n = Math.min(ring.writable(), maxRead, toWrap);
      return n === 0 ? EMPTY : ring.reserve(n).asUint8Array();
    },
    commit(n: number) {
      ring.commit(n);
    },
    ready:
      options.ready ?? ((signal) => pollUntil(() => ring.ended || ring.writable() > 0, signal)),
  };
}

/** @internal Wraps whatever the read-into functions accept as a {@link ReadTarget}. */
export function toReadTarget(target: ReadTargetLike): ReadTarget {
  if (target instanceof ByteStore) return storeTarget(target);
  if (target instanceof ByteRing) return ringTarget(target);
  if (target instanceof Uint8Array || target instanceof ByteView || Array.isArray(target)) {
    return regionTarget(target as SegmentsLike);
  }
  const t = target as Partial<ReadTarget> | null;
  if (
    typeof t === 'object' &&
    t !== null &&
    typeof t.region === 'function' &&
    typeof t.commit === 'function'
  ) {
    return t as ReadTarget;
  }
  throw new InvalidArgumentError(
    `expected a Uint8Array, ByteView, Uint8Array[], ByteStore, ByteRing or ReadTarget, got ${describe(target)}`,
  );
}

/** Resolves once `test()` is true, checking every 1 ms and backing off to 16 ms. */
function pollUntil(test: () => boolean, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    let delay = 1;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    const check = (): void => {
      if (test()) {
        signal?.removeEventListener('abort', onAbort);
        resolve();
        return;
      }
      timer = setTimeout(check, delay);
      delay = Math.min(16, delay * 2);
    };
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    signal?.addEventListener('abort', onAbort, { once: true });
    check();
  });
}
