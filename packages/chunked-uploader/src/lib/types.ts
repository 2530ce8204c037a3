import type { ChecksumAlgorithm } from './checksum';

/**
 * A JSON value: what protocols persist so a new process can resume.
 *
 * @example
 * ```ts
 * import type { JsonValue } from 'chunked-uploader';
 * const session: JsonValue = { url: 'https://tus.example/files/abc', deferred: false };
 * ```
 */
export type JsonValue =
  | string
  | number
  | boolean
  | null
  | JsonValue[]
  | { [key: string]: JsonValue };

/**
 * Bytes to upload. Sources read into memory the engine owns (read-into:
 * pooled buffers, no allocation per chunk).
 *
 * @example
 * ```ts
 * import type { UploadSource } from 'chunked-uploader';
 * const source: UploadSource = {
 *   size: bytes.length, identity: 'demo', seekable: true,
 *   async read(offset, target) { const n = Math.min(target.length, bytes.length - offset); target.set(bytes.subarray(offset, offset + n)); return n; },
 * };
 * ```
 */
export interface UploadSource {
  /** Total bytes, or `undefined` while unknown (a stream); the engine learns it at the end. */
  readonly size: number | undefined;
  /**
   * What identifies the content for resuming: the same identity means the
   * same bytes (a path with size and modification time, a File's name,
   * size and lastModified). Part of the upload's fingerprint.
   */
  readonly identity: string;
  /** Whether `read` accepts any offset (files, Blobs) or only increasing ones (streams). */
  readonly seekable: boolean;
  /** A file name to send as metadata, when there is one. */
  readonly name?: string;
  /** A media type to send, when known. */
  readonly contentType?: string;
  /**
   * Fills `target` with the bytes from `offset` and returns how many it
   * wrote: fewer than `target.length` only at the end of the source.
   */
  read(offset: number, target: Uint8Array, signal?: AbortSignal): Promise<number>;
  /** Releases what the source holds (a file descriptor, a stream reader). */
  close?(): Promise<void>;
}

/**
 * The rules a protocol imposes on chunks.
 *
 * @example
 * ```ts
 * import type { ProtocolCapabilities } from 'chunked-uploader';
 * const s3: ProtocolCapabilities = {
 *   maxParallel: 16, chunkMultiple: 1, minChunkSize: 5 * 2 ** 20, maxChunkSize: 5 * 2 ** 30,
 *   maxChunks: 10_000, deferredLength: true, placement: 'part',
 * };
 * ```
 */
export interface ProtocolCapabilities {
  /** How many chunks may be on the wire at once (1 for offset-based protocols). */
  maxParallel: number;
  /** Every chunk but the last must be a multiple of this many bytes (GCS: 256 KiB). */
  chunkMultiple: number;
  /** Smallest chunk but the last (S3: 5 MiB). */
  minChunkSize: number;
  /** Largest chunk. */
  maxChunkSize: number;
  /** Most chunks one upload may have (S3: 10,000). */
  maxChunks: number;
  /** Whether an upload may start before its total size is known. */
  deferredLength: boolean;
  /**
   * `'offset'`: chunks must arrive in order, each at the server's offset
   * (tus core, GCS, HTTP). `'part'`: chunks are numbered parts that may
   * arrive in any order (S3 multipart, tus concatenation).
   */
  placement: 'offset' | 'part';
  /**
   * Whole-object digests the server reports when the upload completes
   * (`CompletionInfo.digests`), e.g. `['crc32c', 'md5']` for GCS. The engine
   * computes these while it reads the source, and only these, so hashing
   * costs nothing when the server cannot be checked.
   */
  digests?: ChecksumAlgorithm[];
}

/**
 * One chunk handed to a protocol. `bytes` is a view of a pooled buffer: it is
 * valid only until `send` settles, so protocols must not keep it.
 *
 * @example
 * ```ts
 * async send(chunk) {
 *   await fetch(url, { method: 'PATCH', body: chunk.bytes, headers: { 'Upload-Offset': String(chunk.offset) } });
 * }
 * ```
 */
export interface ChunkPayload {
  /** 0-based chunk index (S3 part number minus one). */
  readonly index: number;
  /** Where the chunk starts in the source. */
  readonly offset: number;
  /** The bytes: a zero-copy view of a pooled slab. */
  readonly bytes: Uint8Array;
  /** Whether this is the final chunk. */
  readonly last: boolean;
  /** The total size, when known (always known with the last chunk). */
  readonly totalSize: number | undefined;
}

/**
 * What the server said about one accepted chunk.
 *
 * @example
 * ```ts
 * const receipt: ChunkReceipt = { etag: '"9b2cf535f27731c974343645a3985328"' };
 * ```
 */
export interface ChunkReceipt {
  /** S3 part ETag. */
  etag?: string;
  /** A checksum the server reported for the chunk, if any. */
  checksum?: string;
  /** The server's offset after the chunk (offset protocols). */
  offset?: number;
}

/**
 * A part the server has stored (part-placement protocols).
 *
 * @example
 * ```ts
 * const part: StoredPart = { index: 0, size: 8 * 2 ** 20, etag: '"abc"' };
 * ```
 */
export interface StoredPart {
  /** 0-based chunk index. */
  index: number;
  /** Bytes in the part. */
  size: number;
  /** The part's ETag (S3). */
  etag?: string;
  /** The part's checksum as the server reports it, if any. */
  checksum?: string;
}

/**
 * What the server has, which is the truth a resume starts from.
 *
 * @example
 * ```ts
 * const ack: Acknowledged = { placement: 'offset', offset: 16 * 2 ** 20 };
 * ```
 */
export type Acknowledged =
  | {
      /** Bytes `0 .. offset` are stored. */
      placement: 'offset';
      /** The server's offset. */
      offset: number;
    }
  | {
      /** These parts are stored. */
      placement: 'part';
      /** The stored parts. */
      parts: StoredPart[];
    };

/**
 * What the server said about the finished object.
 *
 * @example
 * ```ts
 * const done: CompletionInfo = { location: 'https://bucket.s3/key', digests: { crc32c: 'yZRlqg==' } };
 * ```
 */
export interface CompletionInfo {
  /** Where the object now lives, when the server says. */
  location?: string;
  /** The object's ETag, if any. */
  etag?: string;
  /**
   * Digests of the whole object the server reported, by algorithm name
   * (`md5`, `crc32c`, `sha256`...), base64 as the server sends them. The
   * engine compares each one it can compute with the source's.
   */
  digests?: Record<string, string>;
}

/**
 * What `open` gets from the engine.
 *
 * @example
 * ```ts
 * const session = await protocol.open({ size, fingerprint, metadata: { filename: 'a.mp4' }, signal });
 * ```
 */
export interface OpenOptions {
  /** Total bytes, or `undefined` when not known yet. */
  size: number | undefined;
  /** The upload's fingerprint (source identity + target). */
  fingerprint: string;
  /** Metadata to attach (tus Upload-Metadata, S3 x-amz-meta-*, GCS object metadata). */
  metadata: Record<string, string>;
  /** The media type, when known. */
  contentType: string | undefined;
  /** Aborts the requests `open` makes. */
  signal: AbortSignal;
}

/**
 * A wire protocol: how to create (or reattach to) an upload on a server.
 *
 * @example
 * ```ts
 * import { tus } from 'chunked-uploader';
 * const protocol: UploadProtocol = tus({ endpoint: 'http://127.0.0.1:1080/files/' });
 * ```
 */
export interface UploadProtocol {
  /** `'tus'`, `'s3'`, `'gcs'` or `'http'`: part of the fingerprint. */
  readonly name: string;
  /** Where uploads go: part of the fingerprint, so one file to two targets are two uploads. */
  readonly target: string;
  /** Starts a new upload on the server. */
  open(options: OpenOptions): Promise<ProtocolSession>;
  /**
   * Reattaches to an upload a previous process persisted. Resolves to
   * `undefined` when the server no longer has it (expired, deleted,
   * completed), so the engine starts fresh instead of failing.
   */
  resume(state: JsonValue, options: OpenOptions): Promise<ProtocolSession | undefined>;
}

/**
 * One upload on the server.
 *
 * @example
 * ```ts
 * const ack = await session.acknowledged(signal);
 * await session.send(chunk, { signal, onBytesSent: (n) => bar.tick(n) });
 * const info = await session.complete(parts, signal);
 * ```
 */
export interface ProtocolSession {
  /** The protocol's rules for this upload (they may depend on what the server advertised). */
  readonly capabilities: ProtocolCapabilities;
  /** JSON to persist so a new process can resume this upload. */
  readonly state: JsonValue;
  /** Asks the server what it has (HEAD, status query, ListParts). */
  acknowledged(signal: AbortSignal): Promise<Acknowledged>;
  /**
   * Uploads one chunk. Throws typed errors: `HttpError`/`NetworkError`
   * (with `retryable`), `OffsetConflictError`, `ChecksumMismatchError`.
   */
  send(chunk: ChunkPayload, options: SendOptions): Promise<ChunkReceipt>;
  /** Finishes the upload once every chunk is stored. */
  complete(parts: StoredPart[], signal: AbortSignal): Promise<CompletionInfo>;
  /** Deletes the upload on the server (tus termination, S3 abort, GCS cancel). */
  terminate(signal: AbortSignal): Promise<void>;
}

/**
 * Options of {@link ProtocolSession.send}.
 *
 * @example
 * ```ts
 * await session.send(chunk, { signal, onBytesSent: (n) => (sent += n) });
 * ```
 */
export interface SendOptions {
  /** Aborts the request. */
  signal: AbortSignal;
  /**
   * Called as body bytes leave (fine-grained where the platform streams
   * request bodies, once per chunk otherwise), with the bytes since the
   * last call.
   */
  onBytesSent?: (bytes: number) => void;
}
