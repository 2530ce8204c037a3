import { HttpError, InvalidArgumentError, OffsetConflictError, ProtocolError } from '../lib/errors';
import { type FetchLike, integerHeader, send } from '../lib/http';
import type {
  Acknowledged,
  ChunkPayload,
  ChunkReceipt,
  CompletionInfo,
  JsonValue,
  OpenOptions,
  ProtocolCapabilities,
  ProtocolSession,
  SendOptions,
  StoredPart,
  UploadProtocol,
} from '../lib/types';
import { contentRange, discardBody, parseStoredRange } from './gcs-range';

/**
 * Options of {@link httpPut}.
 *
 * @example
 * ```ts
 * import type { HttpPutOptions } from 'chunked-uploader';
 * const options: HttpPutOptions = { url: 'https://media.example/files/a.mp4', headers: { authorization: `Bearer ${token}` } };
 * ```
 */
export interface HttpPutOptions {
  /** The resource the chunks are written to. */
  url: string;
  /**
   * Extra request headers (authorization), or a function returning them,
   * called before every request so tokens can rotate.
   * @default {}
   */
  headers?:
    | Record<string, string>
    | ((signal: AbortSignal) => Record<string, string> | Promise<Record<string, string>>)
    | undefined;
  /**
   * The `HEAD` response header that holds the number of bytes stored.
   * `Content-Length` is the honest default (the length of what a `GET`
   * would return now); name another (`Upload-Offset`) for servers that
   * report the stored length apart from the representation (in browsers
   * the server must list it in `Access-Control-Expose-Headers`).
   * @default 'content-length'
   */
  offsetHeader?: string | undefined;
  /**
   * Whether the server accepts `Content-Range: bytes a-b/*` while the total
   * is unknown (RFC 9110 allows `*`; not every server does). Without it, an
   * upload of unknown length cannot start before its size is known.
   * @default true
   */
  deferredLength?: boolean | undefined;
  /**
   * The largest body one `PUT` may carry, for servers or proxies that cap
   * request sizes.
   * @default 1 GiB
   */
  maxChunkSize?: number | undefined;
  /**
   * The `Content-Type` sent with every chunk.
   * @default the source's type, else 'application/octet-stream'
   */
  contentType?: string | undefined;
  /**
   * The `fetch` to call.
   * @default globalThis.fetch
   */
  fetch?: FetchLike | undefined;
}

const DEFAULT_MAX_CHUNK = 2 ** 30;
/** HEAD answers that mean the resource is not there (never started, deleted, expired). */
const GONE = [404, 410];

interface Config {
  url: string;
  headers: (signal: AbortSignal) => Promise<Record<string, string>>;
  offsetHeader: string;
  capabilities: ProtocolCapabilities;
  contentType: string | undefined;
  fetch: FetchLike | undefined;
}

/**
 * Plain HTTP `PUT` of chunks to one URL with `Content-Range` (RFC 9110
 * §14.5, "partial PUT"). HTTP standardises no resumable protocol on top of
 * it, so this is what the server must do; anything else is refused as a
 * typed error:
 *
 * 1. `PUT url` with `Content-Range: bytes a-b/total` (`bytes a-b/*` while
 *    the total is unknown) writes the body at `a`. A chunk at `0` starts the
 *    resource over. An empty final chunk that only declares the total is
 *    sent as `bytes *` `/total` (GCS's form; RFC 9110 has no `a-b` for zero
 *    bytes). The server answers `200`, `201` or `204` once every byte of the
 *    chunk is stored, or `308` with `Range: bytes=0-N` when it kept only
 *    bytes `0..N` (no `Range`: none); the client then sends the rest.
 * 2. A chunk that does not start at the stored length gets `409 Conflict`
 *    (or `416`); the client reads the stored length with `HEAD` and throws
 *    `OffsetConflictError`, which the engine answers by continuing from the
 *    server's offset.
 * 3. `HEAD url` answers `200` with the stored length in `Content-Length`
 *    (or `offsetHeader`), or `404`/`410` when nothing is there.
 * 4. The answer to the final chunk (or a later `HEAD`) may carry
 *    `Repr-Digest: sha-256=:…:` (RFC 9530) or `Digest: sha-256=…`
 *    (RFC 3230), `ETag` and `Location`; `complete` reports them, and the
 *    engine compares the SHA-256 with the source's.
 * 5. `DELETE url` discards the resource (`terminate`).
 *
 * Metadata has no place in this protocol and is not sent. One chunk is on
 * the wire at a time: offsets must arrive in order.
 *
 * @example
 * ```ts
 * import { httpPut, upload } from 'chunked-uploader';
 * await upload(file, { protocol: httpPut({ url: 'https://media.example/files/a.mp4' }), chunkSize: 16 * 2 ** 20 });
 * ```
 */
export function httpPut(options: HttpPutOptions): UploadProtocol {
  let url: string;
  try {
    url = new URL(options.url).href;
  } catch (cause) {
    throw new InvalidArgumentError(
      `httpPut() needs an absolute url, got ${JSON.stringify(options.url)}`,
      {
        cause,
      },
    );
  }
  const maxChunkSize = options.maxChunkSize ?? DEFAULT_MAX_CHUNK;
  if (!Number.isSafeInteger(maxChunkSize) || maxChunkSize < 1) {
    throw new InvalidArgumentError(
      `httpPut() maxChunkSize must be a positive integer, got ${maxChunkSize}`,
    );
  }
  const extra = options.headers;
  const config: Omit<Config, 'contentType'> = {
    url,
    headers: async (signal) => (typeof extra === 'function' ? await extra(signal) : { ...extra }),
    offsetHeader: (options.offsetHeader ?? 'content-length').toLowerCase(),
    capabilities: {
      maxParallel: 1,
      chunkMultiple: 1,
      minChunkSize: 1,
      maxChunkSize,
      maxChunks: Number.POSITIVE_INFINITY,
      deferredLength: options.deferredLength ?? true,
      placement: 'offset',
      digests: ['sha256'],
    },
    fetch: options.fetch,
  };
  const withType = (open: OpenOptions): Config => ({
    ...config,
    capabilities: { ...config.capabilities },
    contentType: options.contentType ?? open.contentType,
  });

  return {
    name: 'http',
    target: url,
    async open(open: OpenOptions): Promise<ProtocolSession> {
      return new HttpPutSession(withType(open), open.size, true);
    },
    async resume(state: JsonValue, open: OpenOptions): Promise<ProtocolSession | undefined> {
      const saved =
        state !== null && typeof state === 'object' && !Array.isArray(state) ? state : {};
      if (saved.url !== url) {
        throw new InvalidArgumentError(
          `not an HTTP PUT upload state for ${url}: ${JSON.stringify(state)}`,
        );
      }
      const size = typeof saved.size === 'number' ? saved.size : undefined;
      const session = new HttpPutSession(withType(open), open.size ?? size, false);
      return (await session.exists(open.signal)) ? session : undefined;
    },
  };
}

class HttpPutSession implements ProtocolSession {
  readonly capabilities: ProtocolCapabilities;
  readonly #config: Config;
  #size: number | undefined;
  /** The answer that finished the resource, when this session saw it. */
  #finished: CompletionInfo | undefined;
  /**
   * A new upload starts at 0 whatever the URL holds now: until the server
   * has acknowledged a chunk of ours, `HEAD` may describe an older resource
   * and must not be taken for our progress.
   */
  #fresh: boolean;

  constructor(config: Config, size: number | undefined, fresh: boolean) {
    this.#config = config;
    this.capabilities = config.capabilities;
    this.#size = size;
    this.#fresh = fresh;
  }

  get state(): JsonValue {
    return { url: this.#config.url, size: this.#size ?? null };
  }

  async acknowledged(signal: AbortSignal): Promise<Acknowledged> {
    if (this.#fresh) return { placement: 'offset', offset: 0 };
    return { placement: 'offset', offset: (await this.#head(signal))?.offset ?? 0 };
  }

  /** Whether the server still has the resource (`HEAD` is not 404/410). */
  async exists(signal: AbortSignal): Promise<boolean> {
    return (await this.#head(signal)) !== undefined;
  }

  async send(chunk: ChunkPayload, options: SendOptions): Promise<ChunkReceipt> {
    const { offset, bytes } = chunk;
    const end = offset + bytes.length;
    const total = chunk.totalSize ?? (chunk.last ? end : this.#size);
    if (total !== undefined) this.#size = total;
    let response: Response;
    try {
      response = await send({
        method: 'PUT',
        url: this.#config.url,
        headers: {
          ...(await this.#config.headers(options.signal)),
          'content-type': this.#config.contentType ?? 'application/octet-stream',
          'content-range': contentRange(offset, bytes.length, total),
        },
        body: bytes,
        signal: options.signal,
        onBytesSent: options.onBytesSent,
        ok: [200, 201, 204, 308],
        fetch: this.#config.fetch,
      });
    } catch (err) {
      if (HttpError.isInstance(err) && (err.status === 409 || err.status === 416)) {
        const stored = await this.#head(options.signal).then(
          (head) => head?.offset ?? 0,
          () => undefined,
        );
        throw new OffsetConflictError(offset, stored, { cause: err });
      }
      throw err;
    }
    if (response.status === 308) {
      const stored = parseStoredRange(response.headers.get('range'), this.#config.url);
      await discardBody(response);
      if (stored < offset) throw new OffsetConflictError(offset, stored);
      this.#fresh = false;
      if (stored > end) {
        throw new ProtocolError(
          `${this.#config.url} reports ${stored} bytes stored after a chunk that ended at ${end}`,
        );
      }
      return { offset: stored };
    }
    this.#fresh = false;
    if (total === end) this.#finished = readFinished(response, this.#config.url);
    await discardBody(response);
    return { offset: end };
  }

  async complete(_parts: StoredPart[], signal: AbortSignal): Promise<CompletionInfo> {
    const finished = this.#finished;
    if (finished?.digests !== undefined) return finished;
    // The final answer carried no digest (or this run never saw it): HEAD
    // describes the same representation and may carry Repr-Digest.
    const head = await this.#head(signal);
    if (head === undefined || (this.#size !== undefined && head.offset !== this.#size)) {
      throw new ProtocolError(
        `${this.#config.url} is not finished: the server stores ${head?.offset ?? 0} of ${this.#size ?? 'an unknown number of'} bytes`,
      );
    }
    return { ...head.info, ...finished };
  }

  async terminate(signal: AbortSignal): Promise<void> {
    const response = await send({
      method: 'DELETE',
      url: this.#config.url,
      headers: await this.#config.headers(signal),
      signal,
      ok: [200, 202, 204, ...GONE],
      fetch: this.#config.fetch,
    });
    await discardBody(response);
  }

  /** `HEAD`: the stored length and what describes the resource; `undefined` when it is not there. */
  async #head(signal: AbortSignal): Promise<{ offset: number; info: CompletionInfo } | undefined> {
    const response = await send({
      method: 'HEAD',
      url: this.#config.url,
      headers: await this.#config.headers(signal),
      signal,
      ok: [200, 204, ...GONE],
      fetch: this.#config.fetch,
    });
    await discardBody(response);
    if (GONE.includes(response.status)) return undefined;
    const offset = integerHeader(response, this.#config.offsetHeader);
    if (offset === undefined) {
      throw new ProtocolError(
        `HEAD ${this.#config.url} did not report the stored length in ${this.#config.offsetHeader}`,
      );
    }
    return { offset, info: readFinished(response, this.#config.url) };
  }
}

/** `ETag`, `Location` and the SHA-256 from `Repr-Digest` (RFC 9530) or `Digest` (RFC 3230). */
function readFinished(response: Response, url: string): CompletionInfo {
  const info: CompletionInfo = {};
  const etag = response.headers.get('etag');
  if (etag !== null) info.etag = etag;
  const location = response.headers.get('location');
  if (location !== null) info.location = new URL(location, url).href;
  const sha256 =
    reprDigest(response.headers.get('repr-digest')) ?? legacyDigest(response.headers.get('digest'));
  if (sha256 !== undefined) info.digests = { sha256 };
  return info;
}

/**
 * @internal The `sha-256` member of an RFC 9530 `Repr-Digest` (a structured
 * field dictionary of byte sequences), as plain base64.
 *
 * @example
 * ```ts
 * reprDigest('sha-512=:YMA…==:, sha-256=:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=:');
 * // '47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU='
 * ```
 */
export function reprDigest(value: string | null): string | undefined {
  if (value === null) return undefined;
  for (const member of value.split(',')) {
    const match = /^\s*sha-256\s*=\s*:([A-Za-z0-9+/]*={0,2}):/.exec(member);
    if (match?.[1]) return match[1];
  }
  return undefined;
}

/** `Digest: SHA-256=base64` (RFC 3230; algorithm names are case-insensitive there). */
function legacyDigest(value: string | null): string | undefined {
  if (value === null) return undefined;
  for (const member of value.split(',')) {
    const match = /^\s*sha-256\s*=\s*([A-Za-z0-9+/]+={0,2})\s*$/i.exec(member);
    if (match?.[1]) return match[1];
  }
  return undefined;
}
