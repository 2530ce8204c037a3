import { ByteStore, type ByteView } from 'buffer-view';
import type { StoredObject } from '../storage/types.ts';

/**
 * A hold on one cached file: its bytes stay accounted for (and are never
 * evicted from under a response) until `release()`.
 */
export interface CachePin {
  readonly size: number;
  /** A zero-copy view of `[start, end)`. */
  view(start: number, end: number): ByteView;
  /** Idempotent. */
  release(): void;
}

/** Options of {@link VideoCache}. */
export interface VideoCacheOptions {
  /** Bytes the cache may hold, pinned and loading entries included. */
  readonly budgetBytes: number;
  /** Largest file admitted. @default budgetBytes / 2 */
  readonly maxEntryBytes?: number;
  /** Misses on one file version before it is loaded. @default 2 */
  readonly admitAfter?: number;
  /** Segment size of cached stores. @default 64 MiB */
  readonly segmentSize?: number;
}

/** Cache figures for `/metrics` and the web page. */
export interface VideoCacheStats {
  readonly budgetBytes: number;
  /** Bytes held: resident entries, loads in flight, and evicted entries still pinned by responses. */
  readonly bytes: number;
  readonly entries: number;
  readonly pins: number;
  readonly hits: number;
  readonly misses: number;
  readonly evictions: number;
  readonly loads: number;
  readonly loadFailures: number;
  /** Admissions declined because pinned bytes left no room. */
  readonly declined: number;
}

interface Entry {
  readonly key: string;
  readonly id: string;
  readonly size: number;
  readonly store: ByteStore;
  pins: number;
  evicted: boolean;
}

/** Loads one file version whole into `store`'s preallocated segments. */
export type CacheLoader = (target: ByteStore, signal: AbortSignal) => Promise<void>;

/**
 * The hot-file cache: whole files in segmented {@link ByteStore}s, LRU under
 * one byte budget, handed out as zero-copy views behind pins. Keys include
 * the ETag, so a replaced file is a different entry and stale bytes are never
 * served. A file is loaded after `admitAfter` misses, in the background; the
 * misses themselves are served by cold reads.
 *
 * @example
 * ```ts
 * const cache = new VideoCache({ budgetBytes: 512 * 2 ** 20 });
 * const pin = cache.get(video);
 * if (pin) { res.end(pin.view(0, 100).copy()); pin.release(); }
 * else cache.noteMiss(video, (store, signal) => fill(store, signal));
 * ```
 */
export class VideoCache {
  readonly #budget: number;
  readonly #maxEntry: number;
  readonly #admitAfter: number;
  readonly #segmentSize: number;
  readonly #entries = new Map<string, Entry>();
  readonly #missCounts = new Map<string, number>();
  readonly #loading = new Map<string, AbortController>();
  readonly #inFlight = new Set<Promise<void>>();
  #bytes = 0;
  #pins = 0;
  #hits = 0;
  #misses = 0;
  #evictions = 0;
  #loads = 0;
  #loadFailures = 0;
  #declined = 0;

  constructor(options: VideoCacheOptions) {
    this.#budget = options.budgetBytes;
    this.#maxEntry = Math.min(
      options.maxEntryBytes ?? Math.floor(options.budgetBytes / 2),
      options.budgetBytes,
    );
    this.#admitAfter = options.admitAfter ?? 2;
    this.#segmentSize = options.segmentSize ?? 64 * 2 ** 20;
  }

  /** A pin on the cached bytes of exactly this version, or `undefined` (a miss, counted). */
  get(object: StoredObject): CachePin | undefined {
    const key = keyOf(object);
    const entry = this.#entries.get(key);
    if (entry === undefined) {
      this.#misses++;
      return undefined;
    }
    this.#hits++;
    // Re-inserting moves the entry to the young end of the Map's insertion order.
    this.#entries.delete(key);
    this.#entries.set(key, entry);
    return this.#pin(entry);
  }

  /**
   * Records a miss for `object` and, once it has missed `admitAfter` times and
   * fits, starts loading it with `load` in the background.
   */
  noteMiss(object: StoredObject, load: CacheLoader): void {
    const key = keyOf(object);
    if (this.#entries.has(key) || this.#loading.has(key)) return;
    if (object.size > this.#maxEntry || object.size === 0) return;
    const count = (this.#missCounts.get(key) ?? 0) + 1;
    if (count < this.#admitAfter) {
      this.#missCounts.set(key, count);
      if (this.#missCounts.size > 10_000)
        this.#missCounts.delete(this.#missCounts.keys().next().value as string);
      return;
    }
    this.#missCounts.delete(key);
    if (!this.#makeRoom(object.size)) {
      this.#declined++;
      return;
    }
    this.#bytes += object.size;
    const controller = new AbortController();
    this.#loading.set(key, controller);
    this.#loads++;
    const store = ByteStore.alloc(object.size, { segmentSize: this.#segmentSize });
    const loaded: Promise<void> = load(store, controller.signal).then(
      () => {
        this.#loading.delete(key);
        if (controller.signal.aborted) {
          this.#bytes -= object.size;
          return;
        }
        this.#entries.set(key, {
          key,
          id: object.id,
          size: object.size,
          store,
          pins: 0,
          evicted: false,
        });
      },
      () => {
        this.#loading.delete(key);
        this.#bytes -= object.size;
        this.#loadFailures++;
      },
    );
    this.#inFlight.add(loaded);
    void loaded.finally(() => this.#inFlight.delete(loaded));
  }

  /** Drops every version of video `id` (after a delete or replace). Pinned bytes go when their pins do. */
  invalidate(id: string): void {
    for (const entry of [...this.#entries.values()]) if (entry.id === id) this.#evict(entry);
    for (const [key, controller] of this.#loading)
      if (key.startsWith(`${id}\0`)) controller.abort();
  }

  /** Resolves once no load is in flight (tests and shutdown). */
  async settled(): Promise<void> {
    while (this.#inFlight.size > 0) await Promise.all(this.#inFlight);
  }

  /** Stops loads in flight and drops every unpinned entry. */
  clear(): void {
    for (const controller of this.#loading.values()) controller.abort();
    for (const entry of [...this.#entries.values()]) this.#evict(entry);
  }

  get stats(): VideoCacheStats {
    return {
      budgetBytes: this.#budget,
      bytes: this.#bytes,
      entries: this.#entries.size,
      pins: this.#pins,
      hits: this.#hits,
      misses: this.#misses,
      evictions: this.#evictions,
      loads: this.#loads,
      loadFailures: this.#loadFailures,
      declined: this.#declined,
    };
  }

  #pin(entry: Entry): CachePin {
    entry.pins++;
    this.#pins++;
    let released = false;
    return {
      size: entry.size,
      view: (start, end) => entry.store.view(start, end),
      release: () => {
        if (released) return;
        released = true;
        entry.pins--;
        this.#pins--;
        if (entry.evicted && entry.pins === 0) this.#bytes -= entry.size;
      },
    };
  }

  /** Evicts least recently used unpinned entries until `size` more bytes fit; false when pins prevent it. */
  #makeRoom(size: number): boolean {
    if (this.#bytes + size <= this.#budget) return true;
    let evictable = 0;
    for (const entry of this.#entries.values()) if (entry.pins === 0) evictable += entry.size;
    if (this.#bytes - evictable + size > this.#budget) return false;
    for (const entry of [...this.#entries.values()]) {
      if (this.#bytes + size <= this.#budget) break;
      if (entry.pins === 0) this.#evict(entry);
    }
    return true;
  }

  #evict(entry: Entry): void {
    this.#entries.delete(entry.key);
    entry.evicted = true;
    this.#evictions++;
    if (entry.pins === 0) this.#bytes -= entry.size;
  }
}

function keyOf(object: StoredObject): string {
  return `${object.id}\0${object.etag}`;
}
