import { createCRC32, type IHasher } from 'hash-wasm';
import {
  ChecksumMismatchError,
  HttpError,
  InvalidArgumentError,
  OffsetConflictError,
  ProtocolError,
} from '../lib/errors';
import { type FetchLike, send } from '../lib/http';
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
 * Options of {@link gcs}.
 *
 * Authentication is a bearer token you obtain yourself (google-auth-library,
 * a metadata server, a token your backend hands out): this package does not
 * implement OAuth flows. A session URI needs no token at all, which is how a
 * browser uploads without credentials: your server starts the session (JSON
 * API, or XML API with a signed URL) and passes its URI as `sessionUri`.
 *
 * @example
 * ```ts
 * import type { GcsOptions } from 'chunked-uploader';
 * const options: GcsOptions = { bucket: 'media', name: 'videos/a.mp4', getAccessToken: () => auth.getAccessToken() };
 * ```
 */
export interface GcsOptions {
  /**
   * The bucket. Required unless `sessionUri` is given.
   * @default undefined
   */
  bucket?: string | undefined;
  /**
   * The object name, not URL-encoded (`videos/a.mp4`). Required unless
   * `sessionUri` is given.
   * @default undefined
   */
  name?: string | undefined;
  /**
   * Where the JSON API lives; point it at an emulator or a test server.
   * @default 'https://storage.googleapis.com'
   */
  endpoint?: string | undefined;
  /**
   * An OAuth 2.0 access token, sent as `Authorization: Bearer …`.
   * @default undefined (no Authorization header)
   */
  accessToken?: string | undefined;
  /**
   * Returns a current access token; called before every request, so it can
   * hand out refreshed tokens (cache them yourself). Wins over `accessToken`.
   * @default undefined
   */
  getAccessToken?: ((signal: AbortSignal) => string | Promise<string>) | undefined;
  /**
   * A resumable session URI created elsewhere (typically by your server, so
   * the client never holds credentials). `open` then uploads to it instead of
   * starting a session, and `bucket`, `name`, `contentType` and `metadata`
   * are ignored: they were fixed when the session was created.
   * @default undefined
   */
  sessionUri?: string | undefined;
  /**
   * The `fetch` to call.
   * @default globalThis.fetch
   */
  fetch?: FetchLike | undefined;
  /**
   * Server-side validation: with `'crc32c'` the protocol keeps a running
   * CRC32C of the bytes the server acknowledged and sends the whole object's
   * value as `x-goog-hash: crc32c=…` with the final chunk, so Cloud Storage
   * rejects a corrupted object (400) instead of storing it. MD5 is not sent:
   * Google documents MD5 validation as unsupported for uploads in chunks.
   * Either way `complete` reports the object's `md5` and `crc32c` for the
   * engine to compare with the source.
   * @default 'crc32c'
   */
  checksum?: 'crc32c' | false | undefined;
  /**
   * The object's media type.
   * @default the source's type, else left to Cloud Storage (`application/octet-stream`)
   */
  contentType?: string | undefined;
  /**
   * Custom object metadata, merged over the engine's (such as `filename`).
   * @default {}
   */
  metadata?: Record<string, string> | undefined;
}

const DEFAULT_ENDPOINT = 'https://storage.googleapis.com';
/** Google: every chunk but the last must be a multiple of 256 KiB. */
const CHUNK_MULTIPLE = 256 * 1024;
/** No documented ceiling; 4096 × 256 KiB keeps one request sane to retry. */
const MAX_CHUNK_SIZE = 4096 * CHUNK_MULTIPLE;
/** The reflected Castagnoli polynomial: CRC32 with it is CRC32C. */
const CRC32C_POLYNOMIAL = 0x82f63b78;
/** Statuses with which Cloud Storage says a session no longer exists (expired, cancelled). */
const GONE = [404, 410, 499];

interface Config {
  endpoint: string;
  fetch: FetchLike | undefined;
  token: ((signal: AbortSignal) => Promise<string | undefined>) | undefined;
  checksum: boolean;
}

/**
 * Google Cloud Storage resumable uploads, as Google's "Perform resumable
 * uploads" document describes the JSON API: a `POST …?uploadType=resumable`
 * starts a session whose URI comes back in `Location`; chunks are `PUT` to
 * it in order with `Content-Range: bytes a-b/total` (`bytes a-b/*` while the
 * total is unknown, the final chunk declaring it); `308 Resume Incomplete`
 * with `Range: bytes=0-N` says what is stored; `200`/`201` with the object
 * resource says the object exists; an empty `PUT` with `bytes *` `/total`
 * asks for the status; `DELETE` cancels (`499`).
 *
 * Every chunk but the last must be a multiple of 256 KiB
 * (`capabilities.chunkMultiple`). Google warns the server may persist fewer
 * bytes than a chunk carried; `send` then returns a receipt whose `offset` is
 * the server's, short of the chunk's end, and the engine sends the rest.
 * Sessions expire after a week: `resume` resolves `undefined` for an expired
 * or cancelled session (404, 410, 499). In browsers, the bucket's CORS
 * configuration must list `Range` (and `x-goog-hash` for XML API sessions)
 * among its response headers, or the client cannot read the server's offset.
 *
 * @example
 * ```ts
 * import { gcs, upload } from 'chunked-uploader';
 * const protocol = gcs({ bucket: 'media', name: 'videos/a.mp4', accessToken: process.env.GCS_TOKEN });
 * const { digests, verified } = await upload(file, { protocol }); // verified: ['crc32c', 'md5']
 * ```
 */
export function gcs(options: GcsOptions): UploadProtocol {
  const endpoint = (options.endpoint ?? DEFAULT_ENDPOINT).replace(/\/+$/, '');
  const { bucket, name, sessionUri } = options;
  if (sessionUri === undefined && (!bucket || !name)) {
    throw new InvalidArgumentError(
      `gcs() needs a bucket and an object name, or a sessionUri (got bucket ${JSON.stringify(bucket)}, name ${JSON.stringify(name)})`,
    );
  }
  const config: Config = {
    endpoint,
    fetch: options.fetch,
    token: tokenSource(options),
    checksum: (options.checksum ?? 'crc32c') === 'crc32c',
  };
  const target =
    sessionUri ??
    `${endpoint}/storage/v1/b/${encodeURIComponent(bucket!)}/o/${encodeURIComponent(name!)}`;

  return {
    name: 'gcs',
    target,
    async open(open: OpenOptions): Promise<ProtocolSession> {
      const crc = config.checksum ? await RunningCrc32c.create() : undefined;
      if (sessionUri !== undefined) return new GcsSession(config, sessionUri, open.size, crc);
      const uri = await initiate(config, bucket!, name!, options, open);
      return new GcsSession(config, uri, open.size, crc);
    },
    async resume(state: JsonValue, open: OpenOptions): Promise<ProtocolSession | undefined> {
      const saved = readState(state);
      const crc =
        config.checksum && saved.crc32c !== undefined
          ? await RunningCrc32c.restore(saved.crc32c.offset, saved.crc32c.state)
          : undefined;
      const session = new GcsSession(config, saved.sessionUri, open.size ?? saved.size, crc);
      try {
        await session.acknowledged(open.signal);
      } catch (err) {
        if (HttpError.isInstance(err) && GONE.includes(err.status)) return undefined;
        throw err;
      }
      return session;
    },
  };
}

function tokenSource(options: GcsOptions): Config['token'] {
  const { getAccessToken, accessToken } = options;
  if (getAccessToken !== undefined) return async (signal) => getAccessToken(signal);
  if (accessToken !== undefined) return async () => accessToken;
  return undefined;
}

async function authHeaders(config: Config, signal: AbortSignal): Promise<Record<string, string>> {
  const token = await config.token?.(signal);
  return token ? { authorization: `Bearer ${token}` } : {};
}

/** Starts a session (JSON API) and returns its URI. */
async function initiate(
  config: Config,
  bucket: string,
  name: string,
  options: GcsOptions,
  open: OpenOptions,
): Promise<string> {
  const url = `${config.endpoint}/upload/storage/v1/b/${encodeURIComponent(bucket)}/o?uploadType=resumable&name=${encodeURIComponent(name)}`;
  const contentType = options.contentType ?? open.contentType;
  const metadata = { ...open.metadata, ...options.metadata };
  const resource: Record<string, unknown> = { name };
  if (contentType !== undefined) resource.contentType = contentType;
  if (Object.keys(metadata).length > 0) resource.metadata = metadata;
  const headers: Record<string, string> = {
    ...(await authHeaders(config, open.signal)),
    'content-type': 'application/json; charset=UTF-8',
  };
  if (contentType !== undefined) headers['x-upload-content-type'] = contentType;
  if (open.size !== undefined) headers['x-upload-content-length'] = String(open.size);
  const response = await send({
    method: 'POST',
    url,
    headers,
    body: new TextEncoder().encode(JSON.stringify(resource)),
    signal: open.signal,
    ok: [200, 201],
    fetch: config.fetch,
  });
  const location = response.headers.get('location');
  await discardBody(response);
  if (location === null || location === '') {
    throw new ProtocolError(`POST ${url} started no session: the answer has no Location header`);
  }
  return new URL(location, url).href;
}

interface SavedState {
  sessionUri: string;
  size: number | undefined;
  crc32c: { offset: number; state: string } | undefined;
}

function readState(state: JsonValue): SavedState {
  const record = state !== null && typeof state === 'object' && !Array.isArray(state) ? state : {};
  const { sessionUri, size, crc32c } = record;
  if (typeof sessionUri !== 'string' || (size !== null && typeof size !== 'number')) {
    throw new InvalidArgumentError(
      `not a GCS upload state: expected { sessionUri: string, size: number | null }, got ${JSON.stringify(state)}`,
    );
  }
  let crc: SavedState['crc32c'];
  if (crc32c !== null && typeof crc32c === 'object' && !Array.isArray(crc32c)) {
    const { offset, state: saved } = crc32c;
    if (typeof offset === 'number' && typeof saved === 'string') crc = { offset, state: saved };
  }
  return { sessionUri, size: size ?? undefined, crc32c: crc };
}

class GcsSession implements ProtocolSession {
  readonly capabilities: ProtocolCapabilities = {
    maxParallel: 1,
    chunkMultiple: CHUNK_MULTIPLE,
    minChunkSize: CHUNK_MULTIPLE,
    maxChunkSize: MAX_CHUNK_SIZE,
    maxChunks: Number.POSITIVE_INFINITY,
    deferredLength: true,
    placement: 'offset',
    digests: ['crc32c', 'md5'],
  };
  readonly #config: Config;
  readonly #uri: string;
  #size: number | undefined;
  #crc: RunningCrc32c | undefined;
  /** What the server said when the object came to exist (the last chunk, or a status check after it). */
  #finished: CompletionInfo | undefined;

  constructor(
    config: Config,
    uri: string,
    size: number | undefined,
    crc: RunningCrc32c | undefined,
  ) {
    this.#config = config;
    this.#uri = uri;
    this.#size = size;
    this.#crc = crc;
  }

  /**
   * The session URI, the size once known and the running CRC32C. The CRC
   * part moves with every acknowledged chunk; a state read earlier still
   * resumes, and the resumed session then skips the final `x-goog-hash`
   * unless the server is still at the offset that state was read at.
   */
  get state(): JsonValue {
    const state: { [key: string]: JsonValue } = { sessionUri: this.#uri, size: this.#size ?? null };
    if (this.#crc !== undefined)
      state.crc32c = { offset: this.#crc.offset, state: this.#crc.save() };
    return state;
  }

  async acknowledged(signal: AbortSignal): Promise<Acknowledged> {
    return { placement: 'offset', offset: await this.#status(signal) };
  }

  async send(chunk: ChunkPayload, options: SendOptions): Promise<ChunkReceipt> {
    const { offset, bytes } = chunk;
    const end = offset + bytes.length;
    const total = chunk.totalSize ?? (chunk.last ? end : this.#size);
    if (total !== undefined) this.#size = total;
    const headers: Record<string, string> = {
      ...(await authHeaders(this.#config, options.signal)),
      'content-range': contentRange(offset, bytes.length, total),
    };
    // The running CRC covers bytes 0..crc.offset; a chunk from anywhere else
    // (after an interruption stored an unknown part) can no longer extend it.
    if (this.#crc !== undefined && this.#crc.offset !== offset) this.#crc = undefined;
    let expectedCrc: string | undefined;
    if (this.#crc !== undefined && total === end) {
      expectedCrc = this.#crc.digestWith(bytes);
      headers['x-goog-hash'] = `crc32c=${expectedCrc}`;
    }
    let response: Response;
    try {
      response = await send({
        method: 'PUT',
        url: this.#uri,
        headers,
        body: bytes,
        signal: options.signal,
        onBytesSent: options.onBytesSent,
        ok: [200, 201, 308],
        fetch: this.#config.fetch,
      });
    } catch (err) {
      throw await this.#explain(err, offset, expectedCrc, options.signal);
    }
    if (response.status !== 308) {
      this.#finished = (await readFinished(response)).info;
      this.#crc = undefined;
      return { offset: end };
    }
    const stored = parseStoredRange(response.headers.get('range'), this.#uri);
    await discardBody(response);
    if (stored < offset) throw new OffsetConflictError(offset, stored);
    if (stored > end) {
      throw new ProtocolError(
        `${this.#uri} reports ${stored} bytes stored after a chunk that ended at ${end}`,
      );
    }
    // Google warns the server may keep only part of a chunk: the receipt's
    // offset is then short of `end` and the engine resends from there.
    this.#crc?.advance(bytes.subarray(0, stored - offset));
    return { offset: stored };
  }

  async complete(_parts: StoredPart[], signal: AbortSignal): Promise<CompletionInfo> {
    if (this.#finished === undefined) {
      // Resumed after the final chunk landed, or the last answer was lost: ask.
      const stored = await this.#status(signal);
      if (this.#finished === undefined) {
        throw new ProtocolError(
          `${this.#uri} is not finished: the server stores ${stored} of ${this.#size ?? 'an unknown number of'} bytes`,
        );
      }
    }
    return this.#finished;
  }

  async terminate(signal: AbortSignal): Promise<void> {
    const response = await send({
      method: 'DELETE',
      url: this.#uri,
      headers: await authHeaders(this.#config, signal),
      body: new Uint8Array(0),
      signal,
      // 499 is Google's "cancelled"; 404/410: already gone, which is what we wanted.
      ok: [499, 200, 204, ...GONE],
      fetch: this.#config.fetch,
    });
    await discardBody(response);
  }

  /** The status check: an empty PUT with `Content-Range: bytes *` `/total` (or `/*`). */
  async #status(signal: AbortSignal): Promise<number> {
    const response = await send({
      method: 'PUT',
      url: this.#uri,
      headers: {
        ...(await authHeaders(this.#config, signal)),
        'content-range': contentRange(0, 0, this.#size),
      },
      body: new Uint8Array(0),
      signal,
      ok: [200, 201, 308],
      fetch: this.#config.fetch,
    });
    if (response.status === 308) {
      const stored = parseStoredRange(response.headers.get('range'), this.#uri);
      await discardBody(response);
      return stored;
    }
    const finished = await readFinished(response);
    this.#finished = finished.info;
    this.#size ??= finished.size;
    return finished.size ?? this.#size ?? 0;
  }

  /** Turns a failed chunk into the most precise error the server's answers allow. */
  async #explain(
    err: unknown,
    offset: number,
    expectedCrc: string | undefined,
    signal: AbortSignal,
  ): Promise<unknown> {
    if (!HttpError.isInstance(err) || err.status !== 400) return err;
    const detail = err.message.slice(err.message.indexOf(`HTTP ${err.status}`));
    if (expectedCrc !== undefined && /crc32c|checksum|hash/i.test(detail)) {
      const actual = calculatedCrc32c(detail);
      return new ChecksumMismatchError('GCS object', 'crc32c', expectedCrc, actual, { cause: err });
    }
    // Cloud Storage answers 400 both to a malformed chunk and to one that
    // does not start where the stored bytes end; only the status tells which.
    let stored: number;
    try {
      stored = await this.#status(signal);
    } catch {
      return err;
    }
    return stored === offset ? err : new OffsetConflictError(offset, stored, { cause: err });
  }
}

interface Finished {
  info: CompletionInfo;
  size: number | undefined;
}

/**
 * Reads the answer that finished the object: the JSON API's object resource
 * (`md5Hash`, `crc32c`, `etag`, `size`), or, for a session started with the
 * XML API (signed URLs), an empty body with `x-goog-hash` and `ETag` headers.
 */
async function readFinished(response: Response): Promise<Finished> {
  let resource: Record<string, unknown> = {};
  try {
    const text = await response.text();
    const parsed: unknown = text.trim().startsWith('{') ? JSON.parse(text) : undefined;
    if (parsed !== null && typeof parsed === 'object') resource = parsed as Record<string, unknown>;
  } catch {
    // Not JSON: the headers below are all there is.
  }
  const digests: Record<string, string> = {};
  for (const [key, value] of parseGoogHash(response.headers.get('x-goog-hash')))
    digests[key] = value;
  if (typeof resource.md5Hash === 'string') digests.md5 = resource.md5Hash;
  if (typeof resource.crc32c === 'string') digests.crc32c = resource.crc32c;
  const info: CompletionInfo = {};
  const etag = typeof resource.etag === 'string' ? resource.etag : response.headers.get('etag');
  if (etag) info.etag = etag;
  const location = resource.selfLink ?? resource.mediaLink;
  if (typeof location === 'string') info.location = location;
  if (Object.keys(digests).length > 0) info.digests = digests;
  const size = Number(resource.size);
  return { info, size: Number.isSafeInteger(size) ? size : undefined };
}

/** `x-goog-hash: crc32c=n03x6A==,md5=Ojk9c3dhfxgoKVVHYwFbHQ==` (also sent as two headers, joined by fetch). */
function parseGoogHash(value: string | null): [string, string][] {
  if (value === null) return [];
  const pairs: [string, string][] = [];
  for (const part of value.split(',')) {
    const at = part.indexOf('=');
    if (at <= 0) continue;
    const key = part.slice(0, at).trim().toLowerCase();
    if (key === 'md5' || key === 'crc32c') pairs.push([key, part.slice(at + 1).trim()]);
  }
  return pairs;
}

/**
 * A CRC32C over bytes `0 .. offset` that the server has acknowledged,
 * saved as hash-wasm state so it can extend by a chunk, be rolled back to a
 * partial acceptance, and survive a restart inside the persisted state.
 */
class RunningCrc32c {
  #hasher: IHasher;
  #state: Uint8Array;
  #offset: number;

  private constructor(hasher: IHasher, state: Uint8Array, offset: number) {
    this.#hasher = hasher;
    this.#state = state;
    this.#offset = offset;
  }

  static async create(): Promise<RunningCrc32c> {
    const hasher = await createCRC32(CRC32C_POLYNOMIAL);
    hasher.init();
    return new RunningCrc32c(hasher, hasher.save(), 0);
  }

  /** `undefined` when the saved state is not one this hash-wasm build can load. */
  static async restore(offset: number, state: string): Promise<RunningCrc32c | undefined> {
    try {
      const hasher = await createCRC32(CRC32C_POLYNOMIAL);
      const bytes = fromBase64(state);
      hasher.load(bytes);
      return new RunningCrc32c(hasher, bytes, offset);
    } catch {
      return undefined;
    }
  }

  get offset(): number {
    return this.#offset;
  }

  save(): string {
    return toBase64(this.#state);
  }

  /** The CRC32C of everything acknowledged plus `bytes`, base64; the running state is unchanged. */
  digestWith(bytes: Uint8Array): string {
    this.#hasher.load(this.#state);
    this.#hasher.update(bytes);
    return toBase64(this.#hasher.digest('binary'));
  }

  /** Extends the running state by bytes the server has just acknowledged. */
  advance(bytes: Uint8Array): void {
    this.#hasher.load(this.#state);
    this.#hasher.update(bytes);
    this.#state = this.#hasher.save();
    this.#offset += bytes.length;
  }
}

function toBase64(bytes: Uint8Array): string {
  let text = '';
  for (const byte of bytes) text += String.fromCharCode(byte);
  return btoa(text);
}

function fromBase64(text: string): Uint8Array {
  const binary = atob(text);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

/**
 * The server's CRC32C from a Cloud Storage 400 message (`Provided CRC32C "…"
 * doesn't match calculated CRC32C "…"`, often JSON-escaped). Base64 may
 * start with `/`, so only spaces, a colon, backslashes and quotes are skipped.
 *
 * @internal
 */
export function calculatedCrc32c(detail: string): string | undefined {
  return /calculated crc32c[\s:\\"]*([A-Za-z0-9+/]+=*)/i.exec(detail)?.[1];
}
