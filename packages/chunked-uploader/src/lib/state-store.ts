import type { JsonValue } from './types';

/**
 * What the engine persists per upload, keyed by fingerprint.
 *
 * @example
 * ```ts
 * const state: UploadState = await store.get(fingerprint);
 * console.log(state?.protocol, state?.session);
 * ```
 */
export interface UploadState {
  /** Layout version. */
  version: 1;
  /** The upload's fingerprint (source identity, size, protocol, target). */
  fingerprint: string;
  /** Protocol name. */
  protocol: string;
  /** The source's size when the upload started, if known. */
  size: number | undefined;
  /** Chunk size the upload was planned with (part numbers depend on it). */
  chunkSize: number;
  /** The protocol's own state (upload URL, UploadId, session URI…). */
  session: JsonValue;
  /** When the upload started (ms since the epoch). */
  createdAt: number;
  /** When the state was last written. */
  updatedAt: number;
}

/**
 * Where upload state lives between runs: a file in Node
 * (`FileStateStore` from `chunked-uploader/node`), `localStorage` in browsers,
 * or memory.
 *
 * @example
 * ```ts
 * import type { StateStore } from 'chunked-uploader';
 * const redisStore: StateStore = {
 *   get: async (k) => JSON.parse((await redis.get(k)) ?? 'null') ?? undefined,
 *   set: async (k, v) => void (await redis.set(k, JSON.stringify(v))),
 *   delete: async (k) => void (await redis.del(k)),
 * };
 * ```
 */
export interface StateStore {
  /** The state saved under `fingerprint`, if any. */
  get(fingerprint: string): Promise<UploadState | undefined>;
  /** Saves (replaces) the state under `fingerprint`. */
  set(fingerprint: string, state: UploadState): Promise<void>;
  /** Forgets `fingerprint` (after completion, or when the state turned out stale). */
  delete(fingerprint: string): Promise<void>;
}

/**
 * Keeps state in memory: resumes within one process only.
 *
 * @example
 * ```ts
 * import { MemoryStateStore } from 'chunked-uploader';
 * const store = new MemoryStateStore();
 * ```
 */
export class MemoryStateStore implements StateStore {
  readonly #map = new Map<string, UploadState>();

  /** The state saved under `fingerprint`, if any. */
  async get(fingerprint: string): Promise<UploadState | undefined> {
    const state = this.#map.get(fingerprint);
    return state === undefined ? undefined : structuredClone(state);
  }

  /** Saves the state. */
  async set(fingerprint: string, state: UploadState): Promise<void> {
    this.#map.set(fingerprint, structuredClone(state));
  }

  /** Forgets the state. */
  async delete(fingerprint: string): Promise<void> {
    this.#map.delete(fingerprint);
  }
}

/**
 * Keeps state in `localStorage` (browsers), so a reloaded page resumes.
 * Entries are namespaced by `prefix`; unreadable entries are treated as
 * absent rather than failing the upload.
 *
 * @example
 * ```ts
 * import { LocalStorageStateStore, upload, tus } from 'chunked-uploader';
 * await upload(file, { protocol: tus({ endpoint: '/uploads/' }), stateStore: new LocalStorageStateStore() });
 * ```
 */
export class LocalStorageStateStore implements StateStore {
  readonly #prefix: string;
  readonly #storage: Storage;

  /**
   * @param prefix - key prefix for this application's uploads.
   * @param storage - the Storage to use (`localStorage` by default; `sessionStorage` works too).
   */
  constructor(prefix = 'chunked-uploader:', storage: Storage = globalThis.localStorage) {
    this.#prefix = prefix;
    this.#storage = storage;
  }

  /** The state saved under `fingerprint`, if any. */
  async get(fingerprint: string): Promise<UploadState | undefined> {
    const raw = this.#storage.getItem(this.#prefix + fingerprint);
    if (raw === null) return undefined;
    try {
      const state = JSON.parse(raw) as UploadState;
      return state.version === 1 ? state : undefined;
    } catch {
      return undefined;
    }
  }

  /** Saves the state. */
  async set(fingerprint: string, state: UploadState): Promise<void> {
    this.#storage.setItem(this.#prefix + fingerprint, JSON.stringify(state));
  }

  /** Forgets the state. */
  async delete(fingerprint: string): Promise<void> {
    this.#storage.removeItem(this.#prefix + fingerprint);
  }
}

/** @internal The default store: localStorage where it exists, else memory. */
export function defaultStateStore(): StateStore {
  try {
    if (typeof globalThis.localStorage !== 'undefined') return new LocalStorageStateStore();
  } catch {
    // Accessing localStorage throws in some sandboxed contexts.
  }
  return new MemoryStateStore();
}
