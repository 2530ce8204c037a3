/** What the server knows about one stored video without reading its bytes. */
export interface StoredObject {
  /** The video id: `[A-Za-z0-9_-]{1,64}`, never a path. */
  readonly id: string;
  readonly size: number;
  /** Last modification time in milliseconds since the epoch. */
  readonly mtimeMs: number;
  /** A strong validator for the exact bytes (quoted, as it goes in an ETag header). */
  readonly etag: string;
}

/**
 * Random access to one stored object's bytes. Implementations fill the
 * caller's buffer (read-into) so cold reads can use pooled memory.
 */
export interface RangeSource {
  readonly object: StoredObject;
  /**
   * Reads `target.byteLength` bytes starting at `offset` into `target` and
   * resolves with the count read (less only at end of object).
   */
  readInto(target: Uint8Array, offset: number, signal?: AbortSignal): Promise<number>;
  /** Releases descriptors or connections. Idempotent. */
  close(): Promise<void>;
}

/** Descriptive metadata kept beside each video. */
export interface VideoMeta {
  readonly title: string;
  readonly contentType: string;
  /** ISO 8601 creation time. */
  readonly created: string;
  /** Seconds, when known at store time (filled in lazily otherwise). */
  readonly duration?: number | undefined;
}

/** A stored video: its object facts plus metadata. */
export interface StoredVideo extends StoredObject {
  readonly meta: VideoMeta;
}

/**
 * Where the library lives. Implementations never map an id to anything but
 * their own namespace: ids are checked with {@link assertVideoId} first.
 */
export interface VideoStorage {
  readonly kind: 'local' | 's3';
  /** Human-readable location for logs (`/srv/data/videos`, `s3://bucket/prefix`). */
  readonly location: string;
  list(signal?: AbortSignal): Promise<StoredVideo[]>;
  /** The video, or `undefined` when there is none with that id. */
  stat(id: string, signal?: AbortSignal): Promise<StoredVideo | undefined>;
  /** Random access to the bytes of exactly the version `stat` described. */
  open(video: StoredObject): Promise<RangeSource>;
  /**
   * Stores a complete local file as video `id`. Readers never see a partial
   * object: it appears whole or not at all.
   */
  putFile(id: string, path: string, meta: VideoMeta, signal?: AbortSignal): Promise<StoredVideo>;
  /**
   * {@link VideoStorage.putFile} for a file the storage may take: it is
   * renamed into place when it lies on the same filesystem (a finished
   * upload of many GiB is not copied), and is gone afterwards whether the
   * call succeeds or fails.
   */
  moveFile?(id: string, path: string, meta: VideoMeta, signal?: AbortSignal): Promise<StoredVideo>;
  delete(id: string): Promise<void>;
}

const VIDEO_ID = /^[A-Za-z0-9_-]{1,64}$/;

/** True for a well-formed video id: 1-64 of `A-Z a-z 0-9 _ -`, so it can never name a path. */
export function isVideoId(id: string): boolean {
  return VIDEO_ID.test(id);
}
