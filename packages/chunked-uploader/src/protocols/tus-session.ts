import type { ChecksumAlgorithm } from '../lib/checksum';
import { InvalidArgumentError, OffsetConflictError, ProtocolError } from '../lib/errors';
import type {
  Acknowledged,
  ChunkPayload,
  ChunkReceipt,
  CompletionInfo,
  JsonValue,
  ProtocolCapabilities,
  ProtocolSession,
  SendOptions,
  StoredPart,
} from '../lib/types';
import type { TusServerInfo } from './tus-discovery';
import type { CoreState } from './tus-state';
import {
  createUpload,
  deleteUpload,
  headUpload,
  patchUpload,
  type TusContext,
  type UploadHead,
} from './tus-wire';

/**
 * One tus upload: a {@link ProtocolSession} plus what tus adds (the upload
 * URL, its expiry, and whether it runs as one upload or as concatenated
 * partial uploads).
 *
 * @example
 * ```ts
 * import { tus } from 'chunked-uploader';
 * const session = await tus({ endpoint: 'https://tus.example/files/' }).open(openOptions);
 * await session.send(chunk, { signal });
 * console.log(session.url, session.expires?.toISOString());
 * ```
 */
export interface TusSession extends ProtocolSession {
  /**
   * `'core'`: one upload, chunks appended in order with `PATCH`.
   * `'concatenation'`: each chunk is a partial upload, joined by
   * `complete()` into a final upload (the concatenation extension).
   */
  readonly mode: 'core' | 'concatenation';
  /**
   * The upload URL: in core mode once the upload exists (with
   * creation-with-upload, after the first chunk); in concatenation mode the
   * final upload's, once `complete()` created it.
   */
  readonly url: string | undefined;
  /**
   * When the server will drop the unfinished upload (`Upload-Expires`, the
   * expiration extension), if it said. Persisted in `state`, and a resume
   * after this instant starts over without asking the server, as the spec
   * advises.
   */
  readonly expires: Date | undefined;
  /**
   * What to persist for a resume: `{ v: 1, mode, … }`. It changes as the
   * upload goes on (with creation-with-upload the URL appears with the
   * first chunk; every concatenation part adds an entry), so persist it
   * again after chunks, not only after `open()`.
   */
  readonly state: JsonValue;
}

/**
 * @internal What both session kinds share: how to reach the server and what
 * it supports.
 *
 * @example
 * ```ts
 * const config: SessionConfig = { ctx, info, checksum: 'sha1', creationWithUpload: true, metadata: undefined, maxParallel: 6, maxParts: 100 };
 * ```
 */
export interface SessionConfig {
  readonly ctx: TusContext;
  readonly info: TusServerInfo;
  /** The checksum algorithm agreed with the server, or `undefined` for none. */
  readonly checksum: ChecksumAlgorithm | undefined;
  /** Whether to send the first bytes with the creation `POST` (enabled and advertised). */
  readonly creationWithUpload: boolean;
  /** The `Upload-Metadata` header value, if any. */
  readonly metadata: string | undefined;
  /** Parts on the wire at once (concatenation). */
  readonly maxParallel: number;
  /** Most partial uploads one final upload joins (concatenation). */
  readonly maxParts: number;
}

/**
 * @internal Refuses, before any byte leaves, an upload larger than the
 * server's `Tus-Max-Size`.
 *
 * @example
 * ```ts
 * assertWithinMaxSize(info, 5 * 2 ** 30, 'https://tus.example/files/');
 * ```
 */
export function assertWithinMaxSize(info: TusServerInfo, size: number, endpoint: string): void {
  if (info.maxSize !== undefined && size > info.maxSize) {
    throw new InvalidArgumentError(
      `upload of ${size} bytes exceeds the server's Tus-Max-Size of ${info.maxSize} bytes (${endpoint})`,
    );
  }
}

/**
 * @internal A core tus upload: one resource, bytes appended in order at the
 * server's offset.
 *
 * @example
 * ```ts
 * const session = new CoreSession(config, { url: undefined, expires: undefined, length: 100, deferred: false });
 * await session.send(chunk, { signal });
 * ```
 */
export class CoreSession implements TusSession {
  /** Always `'core'`. */
  readonly mode = 'core' as const;
  /** One chunk at a time, each at the server's offset. */
  readonly capabilities: ProtocolCapabilities;
  readonly #config: SessionConfig;
  #url: string | undefined;
  #expires: Date | undefined;
  /** The total size once known (at open, or declared later). */
  #length: number | undefined;
  /** Whether the server still waits for `Upload-Length` (creation-defer-length). */
  #deferred: boolean;

  /** @param init - an existing upload (resume) or none yet (creation happens with the first chunk). */
  constructor(
    config: SessionConfig,
    init: {
      url: string | undefined;
      expires: Date | undefined;
      length: number | undefined;
      deferred: boolean;
    },
  ) {
    this.#config = config;
    this.#url = init.url;
    this.#expires = init.expires;
    this.#length = init.length;
    this.#deferred = init.deferred;
    this.capabilities = {
      maxParallel: 1,
      chunkMultiple: 1,
      minChunkSize: 1,
      maxChunkSize: config.info.maxSize ?? Number.MAX_SAFE_INTEGER,
      maxChunks: Number.MAX_SAFE_INTEGER,
      deferredLength: config.info.extensions.includes('creation-defer-length'),
      placement: 'offset',
    };
  }

  /** The upload URL, once the upload exists. */
  get url(): string | undefined {
    return this.#url;
  }

  /** `Upload-Expires`, if the server sent one. */
  get expires(): Date | undefined {
    return this.#expires;
  }

  /** `{ v: 1, mode: 'core', url, expires }`. */
  get state(): CoreState {
    return {
      v: 1,
      mode: 'core',
      url: this.#url ?? null,
      expires: this.#expires?.toISOString() ?? null,
    };
  }

  /** `HEAD` → `Upload-Offset` (0 before the upload exists). */
  async acknowledged(signal: AbortSignal): Promise<Acknowledged> {
    if (this.#url === undefined) return { placement: 'offset', offset: 0 };
    const head = await headUpload(this.#config.ctx, this.#url, signal);
    this.#absorb(head);
    return { placement: 'offset', offset: head.offset as number };
  }

  /**
   * `PATCH` at `chunk.offset` (or, for the first chunk with
   * creation-with-upload, the creation `POST`), declaring `Upload-Length`
   * on the first request that knows it when the length was deferred.
   */
  async send(chunk: ChunkPayload, options: SendOptions): Promise<ChunkReceipt> {
    const { ctx, checksum } = this.#config;
    const end = chunk.offset + chunk.bytes.length;
    assertWithinMaxSize(this.#config.info, chunk.totalSize ?? end, ctx.endpoint);
    const length = this.#length ?? chunk.totalSize;
    if (this.#url === undefined) {
      if (chunk.offset !== 0) {
        throw new OffsetConflictError(chunk.offset, 0, {
          cause: new ProtocolError(
            'the upload does not exist yet, so the first chunk must start at 0',
          ),
        });
      }
      const created = await createUpload(ctx, {
        length,
        metadata: this.#config.metadata,
        body: chunk.bytes.length > 0 ? chunk.bytes : undefined,
        checksum,
        signal: options.signal,
        onBytesSent: options.onBytesSent,
      });
      this.#url = created.url;
      this.#expires = created.expires ?? this.#expires;
      this.#length = length;
      this.#deferred = length === undefined;
      const stored = created.offset ?? 0;
      if (stored > end) {
        throw new ProtocolError(
          `POST ${ctx.endpoint}: sent ${end} bytes but the server reports Upload-Offset ${stored}`,
        );
      }
      if (stored === end) return { offset: end };
      // The server kept only part of the body: the rest follows at its offset.
      return this.#patch(chunk, stored, options);
    }
    return this.#patch(chunk, chunk.offset, options);
  }

  async #patch(chunk: ChunkPayload, from: number, options: SendOptions): Promise<ChunkReceipt> {
    const url = this.#url as string;
    // Declared on the first PATCH that knows it, as creation-defer-length requires.
    const declareLength = this.#deferred ? (chunk.totalSize ?? this.#length) : undefined;
    const result = await patchUpload(this.#config.ctx, url, {
      offset: from,
      bytes: chunk.bytes.subarray(from - chunk.offset),
      declareLength,
      checksum: this.#config.checksum,
      signal: options.signal,
      onBytesSent: options.onBytesSent,
    });
    if (declareLength !== undefined) {
      this.#length = declareLength;
      this.#deferred = false;
    }
    this.#expires = result.expires ?? this.#expires;
    return { offset: result.offset };
  }

  /**
   * Verifies with `HEAD` that the server holds every byte (`Upload-Offset`
   * equals `Upload-Length`). Core tus has nothing to finish and no
   * whole-object digest, so it returns the URL and no digests.
   */
  async complete(_parts: StoredPart[], signal: AbortSignal): Promise<CompletionInfo> {
    const { ctx } = this.#config;
    if (this.#url === undefined) {
      // Nothing was sent (an empty source): the upload still has to exist.
      const created = await createUpload(ctx, {
        length: this.#length ?? 0,
        metadata: this.#config.metadata,
        signal,
      });
      this.#url = created.url;
      this.#expires = created.expires ?? this.#expires;
      this.#length ??= 0;
      this.#deferred = false;
    }
    const url = this.#url;
    const head = await headUpload(ctx, url, signal);
    this.#absorb(head);
    if (head.length === undefined) {
      throw new ProtocolError(
        `HEAD ${url}: the upload is complete on our side but its length was never declared`,
      );
    }
    if (this.#length !== undefined && head.length !== this.#length) {
      throw new ProtocolError(
        `HEAD ${url}: Upload-Length is ${head.length}, the source has ${this.#length} bytes`,
      );
    }
    if (head.offset !== head.length) {
      throw new OffsetConflictError(head.length, head.offset, {
        cause: new ProtocolError(
          `HEAD ${url}: the server holds ${head.offset} of ${head.length} bytes`,
        ),
      });
    }
    return { location: url };
  }

  /** `DELETE` (termination extension); an upload already gone counts as terminated. */
  async terminate(signal: AbortSignal): Promise<void> {
    if (this.#url === undefined) return;
    const { ctx, info } = this.#config;
    if (info.advertised && !info.extensions.includes('termination')) {
      throw new ProtocolError(
        `${ctx.endpoint} does not support the termination extension: ${this.#url} stays until it expires`,
      );
    }
    await deleteUpload(ctx, this.#url, signal);
  }

  #absorb(head: UploadHead): void {
    this.#expires = head.expires ?? this.#expires;
    if (head.length !== undefined) {
      // Only fills a gap: a length we declared stays what complete() checks the server against.
      this.#length ??= head.length;
      this.#deferred = false;
    } else if (head.deferred) {
      this.#deferred = true;
    }
  }
}
