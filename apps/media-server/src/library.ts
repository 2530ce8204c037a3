import type { ByteStore, SlabPool } from 'buffer-view';
import type { CachePin, VideoCache } from './cache/video-cache.ts';
import { MediaServerError } from './errors.ts';
import type { Logger } from './log.ts';
import { buildSeekIndex, type SeekIndex } from './media/seek-index.ts';
import type { RangeSource, StoredObject, StoredVideo, VideoStorage } from './storage/types.ts';

/** One row of `GET /api/videos`. */
export interface VideoSummary {
  readonly id: string;
  readonly title: string;
  readonly size: number;
  /** Seconds; `null` when the file could not be indexed (corrupt or unsupported). */
  readonly duration: number | null;
  readonly contentType: string;
  readonly created: string;
}

/** Where a response's bytes come from: pinned cache memory or the storage. */
export type BodySource =
  | { readonly kind: 'cache'; readonly pin: CachePin }
  | { readonly kind: 'storage'; readonly source: RangeSource };

/** Piece size when loading a file into the cache, so S3 loads are many modest ranged GETs. */
const LOAD_PIECE = 8 * 2 ** 20;
const INDEX_ENTRIES = 256;

/**
 * The video library: storage plus the hot-file cache plus the seek indexes
 * (built once per file version, kept in a small LRU).
 *
 * @example
 * ```ts
 * const library = new Library(storage, cache, pool, log);
 * const video = await library.stat('sample');
 * ```
 */
export class Library {
  readonly storage: VideoStorage;
  readonly cache: VideoCache;
  readonly #pool: SlabPool;
  readonly #log: Logger;
  readonly #indexes = new Map<string, Promise<SeekIndex>>();

  constructor(storage: VideoStorage, cache: VideoCache, pool: SlabPool, log: Logger) {
    this.storage = storage;
    this.cache = cache;
    this.#pool = pool;
    this.#log = log;
  }

  stat(id: string, signal?: AbortSignal): Promise<StoredVideo | undefined> {
    return this.storage.stat(id, signal);
  }

  /** Every video, newest first, with durations from metadata or the seek index. */
  async list(signal?: AbortSignal): Promise<VideoSummary[]> {
    const videos = await this.storage.list(signal);
    const rows = await Promise.all(
      videos.map(async (video): Promise<VideoSummary> => {
        let duration: number | null = video.meta.duration ?? null;
        if (duration === null) {
          try {
            duration = (await this.seekIndex(video)).duration;
          } catch {
            duration = null;
          }
        }
        return {
          id: video.id,
          title: video.meta.title,
          size: video.size,
          duration,
          contentType: video.meta.contentType,
          created: video.meta.created,
        };
      }),
    );
    return rows.sort((a, b) => b.created.localeCompare(a.created) || a.id.localeCompare(b.id));
  }

  /** The seek index of exactly this version of the file. */
  seekIndex(video: StoredObject): Promise<SeekIndex> {
    const key = `${video.id}\0${video.etag}`;
    let index = this.#indexes.get(key);
    if (index !== undefined) {
      this.#indexes.delete(key);
      this.#indexes.set(key, index);
      return index;
    }
    index = this.#buildIndex(video);
    this.#indexes.set(key, index);
    // A failed build is not cached forever: storage errors may be transient, corrupt files cheap to re-reject.
    index.catch(() => setTimeout(() => this.#indexes.delete(key), 10_000).unref());
    if (this.#indexes.size > INDEX_ENTRIES)
      this.#indexes.delete(this.#indexes.keys().next().value as string);
    return index;
  }

  /**
   * A source for the body: a pin on cached bytes (a hit), or storage access
   * (a miss, which also counts toward loading the file into the cache).
   */
  async body(video: StoredObject): Promise<BodySource> {
    const pin = this.cache.get(video);
    if (pin !== undefined) return { kind: 'cache', pin };
    this.cache.noteMiss(video, (store, signal) => this.#load(video, store, signal));
    return { kind: 'storage', source: await this.storage.open(video) };
  }

  /** Forgets everything derived from video `id` (after it was replaced or deleted). */
  invalidate(id: string): void {
    this.cache.invalidate(id);
    for (const key of [...this.#indexes.keys()])
      if (key.startsWith(`${id}\0`)) this.#indexes.delete(key);
  }

  async #buildIndex(video: StoredObject): Promise<SeekIndex> {
    const pin = this.cache.get(video);
    if (pin !== undefined) {
      try {
        return await buildSeekIndex(async (offset, length) => {
          const end = Math.min(video.size, offset + length);
          return end <= offset ? new Uint8Array(0) : pin.view(offset, end).copy();
        }, video.size);
      } finally {
        pin.release();
      }
    }
    const source = await this.storage.open(video);
    try {
      return await buildSeekIndex(async (offset, length) => {
        const target = new Uint8Array(Math.max(0, Math.min(length, video.size - offset)));
        const read = await source.readInto(target, offset);
        return target.subarray(0, read);
      }, video.size);
    } finally {
      await source.close();
    }
  }

  async #load(video: StoredObject, store: ByteStore, signal: AbortSignal): Promise<void> {
    const source = await this.storage.open(video);
    try {
      let offset = 0;
      for (const segment of store.bytes.segments()) {
        for (let at = 0; at < segment.byteLength; at += LOAD_PIECE) {
          const piece = segment.subarray(at, Math.min(segment.byteLength, at + LOAD_PIECE));
          const read = await source.readInto(piece, offset, signal);
          if (read !== piece.byteLength) {
            throw new MediaServerError(
              'STORAGE_FAILED',
              `video ${video.id} is shorter than its stored size`,
            );
          }
          offset += read;
        }
      }
      this.#log.debug('cached', { id: video.id, bytes: video.size });
    } catch (error) {
      if (!signal.aborted) this.#log.warn('cache load failed', { id: video.id, error });
      throw error;
    } finally {
      await source.close();
    }
  }

  /** The pool cold reads draw from (exposed for stats). */
  get pool(): SlabPool {
    return this.#pool;
  }
}
