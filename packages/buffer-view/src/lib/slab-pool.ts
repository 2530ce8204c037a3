import { ByteView } from './byte-view';
import { recordAllocation, recordCopy } from './copy-stats';
import {
  InvalidArgumentError,
  InvalidLengthError,
  PoolExhaustedError,
  ReleasedError,
} from './errors';
import { Lease } from './lease';
import { checkLength, checkOffset } from './validate';

/**
 * Options of {@link SlabPool}.
 *
 * @example
 * ```ts
 * import { SlabPool, type SlabPoolOptions } from 'buffer-view';
 * const options: SlabPoolOptions = { slabSize: 8 * 2 ** 20, preallocate: 2, maxSlabs: 8 };
 * const pool = new SlabPool(options);
 * ```
 */
export interface SlabPoolOptions {
  /**
   * Bytes per slab. Every slab has this size; there is no default because it
   * should match the I/O unit (an upload chunk, a file read).
   */
  slabSize: number;
  /**
   * Slabs allocated and pre-touched up front, so even the first `acquire()`
   * calls allocate nothing and take no page faults.
   * @default 0
   */
  preallocate?: number;
  /**
   * Fault every page of a new slab in when it is allocated, so the hot path
   * never takes a page fault. Turn off for slabs sized for the largest case
   * that are usually only partly used (an upload chunk that may grow): then
   * only the pages actually written become resident.
   * @default true
   */
  preTouch?: boolean;
  /**
   * Most slabs the pool owns at once (free plus in use). Past it `acquire()`
   * throws {@link PoolExhaustedError} and `acquireAsync()` waits.
   * @default Infinity
   */
  maxSlabs?: number;
  /**
   * Allocate slabs as `SharedArrayBuffer`s so worker threads can use them.
   * @default false
   */
  shared?: boolean;
  /**
   * Fill memory with `0xDD` when it returns to the pool, so raw arrays kept
   * past `release()` show an obvious pattern instead of plausible data.
   * @default false
   */
  debug?: boolean;
  /**
   * {@link Slab.keep} copies ranges shorter than `pinRatio * slabSize` out
   * of the slab (so a small view does not pin a whole slab) and pins the
   * slab for longer ones (where copying would cost more than it saves).
   * `0` always pins, `1` always copies.
   * @default 0.125
   */
  pinRatio?: number;
}

/**
 * Options of {@link SlabPool.acquireAsync}.
 *
 * @example
 * ```ts
 * import type { SlabAcquireOptions } from 'buffer-view';
 * const options: SlabAcquireOptions = { signal: request.signal };
 * const slab = await pool.acquireAsync(options);
 * ```
 */
export interface SlabAcquireOptions {
  /**
   * Stops waiting for a slab: the promise rejects with the signal's reason.
   * @default undefined
   */
  signal?: AbortSignal;
}

/**
 * Counters of a {@link SlabPool}, from {@link SlabPool.stats}.
 *
 * @example
 * ```ts
 * const { inUse, free, pinnedBytes } = pool.stats;
 * metrics.gauge('slabs_in_use', inUse);
 * ```
 */
export interface SlabPoolStats {
  /** Bytes per slab. */
  slabSize: number;
  /** Slabs the pool owns now (free plus in use). */
  slabs: number;
  /** Slabs ready for `acquire()` without allocating. */
  free: number;
  /** Slabs acquired and not yet back in the pool (including pinned ones). */
  inUse: number;
  /** Pending `acquireAsync()` calls. */
  waiting: number;
  /** Slabs allocated since the pool was made. */
  allocations: number;
  /** Acquires served by a slab that was used before. */
  reuses: number;
  /** Slab bytes allocated since the pool was made. */
  bytesAllocated: number;
  /** Slabs kept out of the pool by {@link Slab.keep} views. */
  pinnedSlabs: number;
  /** `pinnedSlabs * slabSize`: memory held by kept views. */
  pinnedBytes: number;
  /** Kept ranges that were copied out instead of pinning. */
  keptCopies: number;
  /** Bytes copied by those. */
  keptCopyBytes: number;
  /** Pins released by the garbage-collection backstop because a kept view was dropped unreleased. */
  reclaimedPins: number;
}

const MAX_SLAB = 2 ** 32;
const PAGE = 4096;
const POISON = 0xdd;

/** One slab's memory; it outlives the {@link Slab} wrappers handed out over it. */
interface SlabMemory {
  readonly bytes: Uint8Array;
  /** Shared by every view of this memory: views only read the segment they were made for. */
  readonly segs: readonly Uint8Array[];
  readonly starts: readonly number[];
  /** Whether the current acquirer still holds it. */
  held: boolean;
  /** Kept views pinning it. */
  pins: number;
  /** Lease of kept views for the current acquisition, made on first pin. */
  keepLease: Lease | undefined;
}

/** @internal What a slab needs from its pool. */
interface SlabOwner {
  unhold(memory: SlabMemory): void;
  keep(memory: SlabMemory, start: number, end: number): KeptView;
}

interface Waiter {
  resolve(slab: Slab): void;
  reject(reason: unknown): void;
  signal: AbortSignal | undefined;
  onAbort: () => void;
}

/**
 * A pool of fixed-size, pre-touched slabs for steady-state zero-allocation
 * I/O: after warm-up, `acquire()` and `release()` only move slabs between
 * the pool and its users, which {@link copyStats} proves. Slabs are
 * refcounted; views of a released slab throw {@link ReleasedError} instead
 * of showing whatever the next user wrote there.
 *
 * Slab contents on acquire are whatever the previous user left (or `0xDD`
 * in debug mode): fill what you read before trusting it.
 *
 * @example
 * ```ts
 * import { SlabPool } from 'buffer-view';
 * import { readFdInto } from 'buffer-view/node';
 * const pool = new SlabPool({ slabSize: 8 * 2 ** 20, preallocate: 4, maxSlabs: 16 });
 * const slab = await pool.acquireAsync();
 * const n = await readFdInto(fd, slab.view(), position);
 * await upload(slab.view(0, n));
 * slab.release();
 * ```
 */
export class SlabPool {
  readonly #preTouch: boolean;
  readonly #free: SlabMemory[] = [];
  readonly #waiters: Waiter[] = [];
  readonly #owner: SlabOwner;
  readonly #registry: FinalizationRegistry<PinRecord>;
  #slabs = 0;
  #allocations = 0;
  #reuses = 0;
  #pinnedSlabs = 0;
  #keptCopies = 0;
  #keptCopyBytes = 0;
  #reclaimedPins = 0;

  /**
   * Bytes per slab.
   *
   * @example
   * ```ts
   * const slabsNeeded = Math.ceil(fileSize / pool.slabSize);
   * ```
   */
  readonly slabSize: number;
  /**
   * Most slabs the pool owns at once.
   *
   * @example
   * ```ts
   * const maxMemory = pool.maxSlabs * pool.slabSize;
   * ```
   */
  readonly maxSlabs: number;
  /**
   * Whether slabs are `SharedArrayBuffer`-backed.
   *
   * @example
   * ```ts
   * if (pool.shared) worker.postMessage(slab.bytes); // shared, not copied
   * ```
   */
  readonly shared: boolean;
  /**
   * Whether released memory is poisoned with `0xDD`.
   *
   * @example
   * ```ts
   * const pool = new SlabPool({ slabSize: 4096, debug: process.env.NODE_ENV !== 'production' });
   * ```
   */
  readonly debug: boolean;
  /**
   * Below this fraction of the slab size, {@link Slab.keep} copies instead of pinning.
   *
   * @example
   * ```ts
   * const copiesBelow = pool.pinRatio * pool.slabSize; // bytes
   * ```
   */
  readonly pinRatio: number;

  /**
   * A pool, optionally with slabs allocated and pre-touched up front.
   *
   * @example
   * ```ts
   * import { SlabPool } from 'buffer-view';
   * const pool = new SlabPool({ slabSize: 2 ** 20, preallocate: 8, maxSlabs: 64, debug: !isProduction });
   * ```
   */
  constructor(options: SlabPoolOptions) {
    const { slabSize } = options;
    checkLength('slabSize', slabSize, MAX_SLAB);
    if (slabSize === 0) throw new InvalidLengthError('slabSize', 0, MAX_SLAB);
    const maxSlabs = options.maxSlabs ?? Number.POSITIVE_INFINITY;
    if (maxSlabs !== Number.POSITIVE_INFINITY) {
      checkLength('maxSlabs', maxSlabs);
      if (maxSlabs === 0) throw new InvalidLengthError('maxSlabs', 0, Number.MAX_SAFE_INTEGER);
    }
    const preallocate = options.preallocate ?? 0;
    checkLength('preallocate', preallocate, Math.min(maxSlabs, Number.MAX_SAFE_INTEGER));
    const pinRatio = options.pinRatio ?? 0.125;
    if (!(pinRatio >= 0 && pinRatio <= 1)) {
      throw new InvalidArgumentError(`pinRatio ${pinRatio} must be a number from 0 to 1`);
    }
    this.slabSize = slabSize;
    this.maxSlabs = maxSlabs;
    this.shared = options.shared ?? false;
    if (this.shared && typeof SharedArrayBuffer === 'undefined') {
      throw new InvalidArgumentError(
        'shared: true needs SharedArrayBuffer, which browsers only offer to cross-origin isolated pages',
      );
    }
    this.debug = options.debug ?? false;
    this.#preTouch = options.preTouch ?? true;
    this.pinRatio = pinRatio;
    this.#registry = new FinalizationRegistry((pin) => {
      if (pin.released) return;
      this.#reclaimedPins++;
      this.#unpin(pin);
    });
    this.#owner = {
      unhold: (memory) => {
        memory.held = false;
        if (memory.pins === 0) this.#recycle(memory);
      },
      keep: (memory, start, end) => this.#keep(memory, start, end),
    };
    for (let i = 0; i < preallocate; i++) this.#free.push(this.#allocate());
  }

  /**
   * A slab with refcount 1: a free one if there is one, else a new one
   * (allocated and pre-touched) while the pool is below `maxSlabs`, else
   * {@link PoolExhaustedError}.
   *
   * @example
   * ```ts
   * const slab = pool.acquire();
   * try { fill(slab.bytes); } finally { slab.release(); }
   * ```
   */
  acquire(): Slab {
    const memory = this.#free.pop();
    if (memory !== undefined) {
      this.#reuses++;
      return this.#hand(memory);
    }
    if (this.#slabs >= this.maxSlabs) throw new PoolExhaustedError(this.maxSlabs);
    return this.#hand(this.#allocate());
  }

  /**
   * Like {@link SlabPool.acquire}, but at `maxSlabs` it waits (first come,
   * first served) for a slab to be released instead of throwing.
   *
   * @example
   * ```ts
   * const slab = await pool.acquireAsync({ signal: AbortSignal.timeout(5000) });
   * ```
   */
  acquireAsync(options: SlabAcquireOptions = {}): Promise<Slab> {
    const { signal } = options;
    if (signal?.aborted === true) return Promise.reject(signal.reason);
    if (this.#free.length > 0 || this.#slabs < this.maxSlabs) {
      try {
        return Promise.resolve(this.acquire());
      } catch (error) {
        return Promise.reject(error);
      }
    }
    return new Promise<Slab>((resolve, reject) => {
      const waiter: Waiter = {
        resolve,
        reject,
        signal,
        onAbort: () => {
          const index = this.#waiters.indexOf(waiter);
          if (index !== -1) this.#waiters.splice(index, 1);
          reject(signal?.reason);
        },
      };
      signal?.addEventListener('abort', waiter.onAbort, { once: true });
      this.#waiters.push(waiter);
    });
  }

  /**
   * A snapshot of the pool's counters.
   *
   * @example
   * ```ts
   * const before = pool.stats.allocations;
   * for (let i = 0; i < 1000; i++) pool.acquire().release();
   * pool.stats.allocations - before; // 0 once warm
   * ```
   */
  get stats(): SlabPoolStats {
    return {
      slabSize: this.slabSize,
      slabs: this.#slabs,
      free: this.#free.length,
      inUse: this.#slabs - this.#free.length,
      waiting: this.#waiters.length,
      allocations: this.#allocations,
      reuses: this.#reuses,
      bytesAllocated: this.#allocations * this.slabSize,
      pinnedSlabs: this.#pinnedSlabs,
      pinnedBytes: this.#pinnedSlabs * this.slabSize,
      keptCopies: this.#keptCopies,
      keptCopyBytes: this.#keptCopyBytes,
      reclaimedPins: this.#reclaimedPins,
    };
  }

  /**
   * Drops free slabs beyond `keepFree` so the garbage collector can return
   * their memory (for example after a traffic peak). Slabs in use are not
   * affected.
   *
   * @example
   * ```ts
   * setInterval(() => pool.trim(4), 60_000).unref();
   * ```
   */
  trim(keepFree = 0): void {
    checkLength('keepFree', keepFree);
    // The oldest free slabs are the coldest: acquire() takes from the end.
    const drop = Math.max(0, this.#free.length - keepFree);
    this.#free.splice(0, drop);
    this.#slabs -= drop;
  }

  #allocate(): SlabMemory {
    const size = this.slabSize;
    const bytes = this.shared ? new Uint8Array(new SharedArrayBuffer(size)) : new Uint8Array(size);
    // Fault every page in now, so the hot path never takes a page fault.
    if (this.#preTouch) for (let i = 0; i < size; i += PAGE) bytes[i] = 0;
    recordAllocation(size);
    this.#allocations++;
    this.#slabs++;
    return { bytes, segs: [bytes], starts: [0], held: false, pins: 0, keepLease: undefined };
  }

  #hand(memory: SlabMemory): Slab {
    memory.held = true;
    return new Slab(memory, this.#owner);
  }

  /** Memory nobody uses any more: revoke kept views, poison, and pass it on. */
  #recycle(memory: SlabMemory): void {
    memory.keepLease?.revoke('released');
    memory.keepLease = undefined;
    if (this.debug) memory.bytes.fill(POISON);
    const waiter = this.#waiters.shift();
    if (waiter === undefined) {
      this.#free.push(memory);
      return;
    }
    waiter.signal?.removeEventListener('abort', waiter.onAbort);
    this.#reuses++;
    waiter.resolve(this.#hand(memory));
  }

  #keep(memory: SlabMemory, start: number, end: number): KeptView {
    const length = end - start;
    if (length < this.pinRatio * this.slabSize || length === 0) {
      const copy = this.shared
        ? new Uint8Array(new SharedArrayBuffer(length))
        : new Uint8Array(length);
      copy.set(memory.bytes.subarray(start, end));
      recordAllocation(length);
      recordCopy(length);
      this.#keptCopies++;
      this.#keptCopyBytes += length;
      const lease = new Lease('kept slab view');
      const view = new ByteView({
        segs: [copy],
        starts: [0],
        first: 0,
        last: length === 0 ? 0 : 1,
        start: 0,
        length,
        lease,
      });
      return new KeptView(view, true, () => lease.revoke('released'));
    }
    if (memory.pins++ === 0) this.#pinnedSlabs++;
    memory.keepLease ??= new Lease('kept slab view');
    const view = new ByteView({
      segs: memory.segs,
      starts: memory.starts,
      first: 0,
      last: 1,
      start,
      length,
      lease: memory.keepLease,
    });
    const pin: PinRecord = { memory, released: false };
    const kept = new KeptView(view, false, () => {
      pin.released = true;
      this.#registry.unregister(pin);
      this.#unpin(pin);
    });
    // Backstop for a kept view dropped without release(): the view is the
    // target, so the slab returns only once nothing can read through it.
    this.#registry.register(view, pin, pin);
    return kept;
  }

  #unpin(pin: PinRecord): void {
    const memory = pin.memory;
    if (--memory.pins === 0) {
      this.#pinnedSlabs--;
      if (!memory.held) this.#recycle(memory);
    }
  }
}

interface PinRecord {
  readonly memory: SlabMemory;
  released: boolean;
}

/**
 * One acquisition of a slab's memory, refcounted: {@link SlabPool.acquire}
 * returns it with refcount 1, {@link Slab.retain} adds one, and
 * {@link Slab.release} gives one back; at 0 the memory returns to the pool
 * (unless {@link Slab.keep} views pin it). Every acquisition is a new `Slab`
 * object, so a stale reference to an earlier one stays dead even though the
 * memory is reused.
 *
 * @example
 * ```ts
 * const slab = pool.acquire();
 * const n = await readFdInto(fd, slab.view(), 0);
 * parser.push(slab.view(0, n));  // views check the slab on every use
 * slab.release();                // parser's view now throws ReleasedError
 * ```
 */
export class Slab {
  readonly #memory: SlabMemory;
  readonly #owner: SlabOwner;
  readonly #lease = new Lease('slab');
  #refs = 1;

  /**
   * Bytes in the slab.
   *
   * @example
   * ```ts
   * const n = await readFdInto(fd, slab.view(0, slab.size), position);
   * ```
   */
  readonly size: number;

  /** @internal Use {@link SlabPool.acquire}. */
  constructor(memory: SlabMemory, owner: SlabOwner) {
    this.#memory = memory;
    this.#owner = owner;
    this.size = memory.bytes.length;
  }

  /**
   * The slab's memory as one `Uint8Array`, for APIs that want a raw array
   * (`fs.read`, `socket.read`). Throws {@link ReleasedError} once released.
   * The array itself cannot check: do not keep it past `release()` (debug
   * pools poison released memory with `0xDD` so such bugs show).
   *
   * @example
   * ```ts
   * const { bytesRead } = await handle.read(slab.bytes, 0, slab.size, position);
   * ```
   */
  get bytes(): Uint8Array {
    this.#lease.check();
    return this.#memory.bytes;
  }

  /**
   * References held on this acquisition (0 once released).
   *
   * @example
   * ```ts
   * slab.retain();
   * slab.refCount; // 2
   * ```
   */
  get refCount(): number {
    return this.#refs;
  }

  /**
   * Whether the refcount reached 0.
   *
   * @example
   * ```ts
   * slab.release();
   * slab.released; // true
   * ```
   */
  get released(): boolean {
    return this.#refs === 0;
  }

  /**
   * A zero-copy view of bytes `start .. end` that throws
   * {@link ReleasedError} once this slab is released.
   *
   * @example
   * ```ts
   * const chunk = slab.view(0, bytesRead);
   * ```
   */
  view(start = 0, end: number = this.size): ByteView {
    this.#lease.check();
    checkOffset('slab view start', start, 0, this.size);
    checkOffset('slab view end', end, start, this.size);
    if (end === start) return ByteView.empty();
    return new ByteView({
      segs: this.#memory.segs,
      starts: this.#memory.starts,
      first: 0,
      last: 1,
      start,
      length: end - start,
      lease: this.#lease,
    });
  }

  /**
   * Adds a reference, for a second owner that will call `release()` too.
   *
   * @example
   * ```ts
   * queue.push(slab.retain()); // the consumer releases its reference
   * ```
   */
  retain(): this {
    this.#lease.check();
    this.#refs++;
    return this;
  }

  /**
   * Gives back one reference; at 0 the slab's views are revoked and its
   * memory goes back to the pool. Releasing more often than acquired plus
   * retained throws {@link ReleasedError}.
   *
   * @example
   * ```ts
   * slab.release();
   * ```
   */
  release(): void {
    this.#lease.check();
    if (--this.#refs > 0) return;
    this.#lease.revoke('released');
    this.#owner.unhold(this.#memory);
  }

  /**
   * A view of `start .. end` that outlives this slab's release, until the
   * returned {@link KeptView} is released. Short ranges (below
   * `pinRatio * slabSize`) are copied out, counted in {@link copyStats}, so
   * the slab can go back to the pool at once; longer ones pin the slab
   * (shown in `stats.pinnedBytes`) until every kept view of it is
   * released. Release kept views explicitly; as a backstop, a kept view that
   * is garbage-collected unreleased unpins its slab (counted in
   * `stats.reclaimedPins`).
   *
   * @example
   * ```ts
   * const moov = slab.keep(moovStart, moovEnd); // cache the header, recycle the slab
   * slab.release();
   * cache.set(key, moov);                      // later: cache eviction calls moov.release()
   * ```
   */
  keep(start: number, end: number): KeptView {
    this.#lease.check();
    checkOffset('keep start', start, 0, this.size);
    checkOffset('keep end', end, start, this.size);
    return this.#owner.keep(this.#memory, start, end);
  }
}

/**
 * A view returned by {@link Slab.keep}, and the handle that lets it go.
 * Its `view` stays valid until {@link KeptView.release}, whether the bytes
 * were copied out or the slab is pinned, so misuse shows on either path.
 *
 * @example
 * ```ts
 * const kept = slab.keep(0, 1024);
 * kept.view.getUint32(0);
 * kept.release(); // kept.view now throws ReleasedError
 * ```
 */
export class KeptView {
  readonly #unkeep: () => void;
  #released = false;

  /**
   * The kept bytes.
   *
   * @example
   * ```ts
   * socket.write(kept.view.asUint8Array());
   * ```
   */
  readonly view: ByteView;
  /**
   * Whether the range was copied out (true) or pins its slab (false).
   *
   * @example
   * ```ts
   * if (!kept.copied) log.debug('kept view pins a slab');
   * ```
   */
  readonly copied: boolean;

  /** @internal Use {@link Slab.keep}. */
  constructor(view: ByteView, copied: boolean, unkeep: () => void) {
    this.view = view;
    this.copied = copied;
    this.#unkeep = unkeep;
  }

  /**
   * Whether {@link KeptView.release} was called.
   *
   * @example
   * ```ts
   * if (!kept.released) kept.release();
   * ```
   */
  get released(): boolean {
    return this.#released;
  }

  /**
   * Lets the bytes go: a pinned slab returns to the pool once its last kept
   * view is released. Releasing twice throws {@link ReleasedError}.
   *
   * @example
   * ```ts
   * cache.on('evict', (kept) => kept.release());
   * ```
   */
  release(): void {
    if (this.#released) throw new ReleasedError('kept slab view');
    this.#released = true;
    this.#unkeep();
  }
}
