import { Checksum, type ChecksumAlgorithm } from '../lib/checksum';
import {
  ChecksumMismatchError,
  HttpError,
  InvalidArgumentError,
  OffsetConflictError,
  ProtocolError,
  UploadAbortedError,
} from '../lib/errors';
import { type FetchLike, integerHeader, send } from '../lib/http';

/**
 * @internal The protocol version this client speaks, sent as `Tus-Resumable`.
 *
 * @example
 * ```ts
 * headers['tus-resumable'] = TUS_VERSION; // '1.0.0'
 * ```
 */
export const TUS_VERSION = '1.0.0';

/**
 * @internal What every tus request needs from the protocol instance.
 *
 * @example
 * ```ts
 * const ctx: TusContext = { endpoint: 'http://127.0.0.1:1080/files/', fetch: undefined, headers: async () => ({}) };
 * ```
 */
export interface TusContext {
  /** The creation URL, absolute. */
  readonly endpoint: string;
  /** The `fetch` to call; `undefined` means the global one. */
  readonly fetch: FetchLike | undefined;
  /** The caller's extra headers (auth), resolved per request so tokens can rotate. */
  headers(): Promise<Record<string, string>>;
}

/**
 * @internal One tus request: {@link send} plus the caller's headers,
 * `Tus-Resumable`, and the 412 answer (version refused) as a `ProtocolError`.
 *
 * @example
 * ```ts
 * const res = await tusRequest(ctx, { method: 'HEAD', url, signal, ok: [200, 204] });
 * ```
 */
export async function tusRequest(
  ctx: TusContext,
  req: {
    method: string;
    url: string;
    headers?: Record<string, string>;
    body?: Uint8Array | undefined;
    signal: AbortSignal;
    ok: readonly number[];
    onBytesSent?: ((bytes: number) => void) | undefined;
  },
): Promise<Response> {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(await ctx.headers()))
    headers[name.toLowerCase()] = value;
  for (const [name, value] of Object.entries(req.headers ?? {}))
    headers[name.toLowerCase()] = value;
  // The spec exempts OPTIONS: a server must answer it whatever version the client speaks.
  if (req.method !== 'OPTIONS') headers['tus-resumable'] = TUS_VERSION;
  const response = await send({
    method: req.method,
    url: req.url,
    headers,
    body: req.body,
    signal: req.signal,
    ok: [...req.ok, 412],
    onBytesSent: req.onBytesSent,
    fetch: ctx.fetch,
  });
  if (response.status === 412 && !req.ok.includes(412)) {
    await release(response);
    throw new ProtocolError(
      `${req.method} ${req.url}: the server refused tus ${TUS_VERSION} (HTTP 412); it speaks ${
        response.headers.get('tus-version') ?? 'an unnamed version'
      }`,
    );
  }
  return response;
}

/**
 * @internal Reads what is left of a response body so the connection can be
 * reused (an unread body pins the socket in undici).
 *
 * @example
 * ```ts
 * await release(response);
 * ```
 */
export async function release(response: Response): Promise<void> {
  try {
    await response.arrayBuffer();
  } catch {
    // Nothing to reuse if the body already failed.
  }
}

/**
 * @internal `Upload-Metadata` from key/value pairs: keys as they are, values
 * base64 of their UTF-8 bytes, pairs separated by commas. Empty values are
 * sent as a bare key, which the spec allows. `undefined` when there is
 * nothing to send (servers reject an empty header).
 *
 * @example
 * ```ts
 * encodeMetadata({ filename: 'a.mp4', is_confidential: '' }); // 'filename YS5tcDQ=,is_confidential'
 * ```
 */
export function encodeMetadata(metadata: Record<string, string>): string | undefined {
  const pairs: string[] = [];
  for (const [key, value] of Object.entries(metadata)) {
    // The spec forbids spaces, commas and empty keys and wants ASCII; common
    // servers (tusd, @tus/server) reject the rest with a 400, so say it here.
    if (!/^[\x21-\x2b\x2d-\x7e]+$/.test(key)) {
      throw new InvalidArgumentError(
        `tus metadata key ${JSON.stringify(key)} is invalid: keys must be non-empty printable ASCII without spaces or commas`,
      );
    }
    pairs.push(value === '' ? key : `${key} ${base64(new TextEncoder().encode(value))}`);
  }
  return pairs.length === 0 ? undefined : pairs.join(',');
}

/**
 * @internal Decodes an `Upload-Metadata` header (values as UTF-8 text; a
 * bare key decodes to `''`). Malformed pairs are skipped: metadata is
 * informative, never a reason to fail an upload.
 *
 * @example
 * ```ts
 * decodeMetadata('filename YS5tcDQ=,flag'); // { filename: 'a.mp4', flag: '' }
 * ```
 */
export function decodeMetadata(header: string | null): Record<string, string> {
  const out: Record<string, string> = {};
  if (header === null) return out;
  for (const pair of header.split(',')) {
    const [key, value = '', ...rest] = pair.trim().split(' ');
    if (!key || rest.length > 0) continue;
    try {
      const text = atob(value);
      const bytes = new Uint8Array(text.length);
      for (let i = 0; i < text.length; i++) bytes[i] = text.charCodeAt(i);
      out[key] = new TextDecoder().decode(bytes);
    } catch {
      // Not base64: skip the pair.
    }
  }
  return out;
}

/**
 * @internal `Upload-Expires` (an RFC 7231 date) as a `Date`, or `undefined`
 * when absent or unparseable.
 *
 * @example
 * ```ts
 * parseExpires('Wed, 25 Jun 2014 16:00:00 GMT')?.toISOString(); // '2014-06-25T16:00:00.000Z'
 * ```
 */
export function parseExpires(value: string | null): Date | undefined {
  if (value === null) return undefined;
  const ms = Date.parse(value);
  return Number.isNaN(ms) ? undefined : new Date(ms);
}

/**
 * @internal A comma-separated header as a lowercase list (`Tus-Extension`,
 * `Tus-Version`, `Tus-Checksum-Algorithm`).
 *
 * @example
 * ```ts
 * parseList('creation, Termination'); // ['creation', 'termination']
 * ```
 */
export function parseList(value: string | null): string[] {
  if (value === null) return [];
  return value
    .split(',')
    .map((item) => item.trim().toLowerCase())
    .filter((item) => item.length > 0);
}

/**
 * @internal What a `HEAD` on an upload says.
 *
 * @example
 * ```ts
 * const head: UploadHead = { offset: 70, length: 100, deferred: false, expires: undefined, concat: null };
 * ```
 */
export interface UploadHead {
  /** `Upload-Offset`; `undefined` only for a final upload whose concatenation is not finished. */
  offset: number | undefined;
  /** `Upload-Length`, when the server knows it. */
  length: number | undefined;
  /** Whether the server still waits for the length (`Upload-Defer-Length: 1`). */
  deferred: boolean;
  /** `Upload-Expires`. */
  expires: Date | undefined;
  /** `Upload-Concat` as the server echoes it. */
  concat: string | null;
}

/** Statuses a server answers for an upload it no longer has (deleted, expired, or not ours). */
const GONE = [403, 404, 410] as const;

/**
 * @internal `HEAD` an upload. Resolves `undefined` for 403/404/410 when
 * `gone: 'undefined'` (resume: the state is stale), throws `HttpError`
 * otherwise. A missing `Upload-Offset` is a `ProtocolError` unless
 * `requireOffset` is false (a final upload may omit it until concatenated).
 *
 * @example
 * ```ts
 * const head = await headUpload(ctx, url, signal, { gone: 'undefined' });
 * if (head === undefined) return undefined; // expired or terminated
 * ```
 */
export async function headUpload<G extends 'throw' | 'undefined' = 'throw'>(
  ctx: TusContext,
  url: string,
  signal: AbortSignal,
  options: { gone?: G; requireOffset?: boolean } = {},
): Promise<G extends 'undefined' ? UploadHead | undefined : UploadHead> {
  const tolerateGone = options.gone === 'undefined';
  const response = await tusRequest(ctx, {
    method: 'HEAD',
    url,
    signal,
    ok: tolerateGone ? [200, 204, ...GONE] : [200, 204],
  });
  await release(response);
  if ((GONE as readonly number[]).includes(response.status)) {
    return undefined as G extends 'undefined' ? UploadHead | undefined : UploadHead;
  }
  const offset = integerHeader(response, 'upload-offset');
  if (offset === undefined && options.requireOffset !== false) {
    throw new ProtocolError(`HEAD ${url}: the response has no valid Upload-Offset header`);
  }
  return {
    offset,
    length: integerHeader(response, 'upload-length'),
    deferred: response.headers.get('upload-defer-length')?.trim() === '1',
    expires: parseExpires(response.headers.get('upload-expires')),
    concat: response.headers.get('upload-concat'),
  };
}

/**
 * @internal How to compute the `Upload-Checksum` of a body, or `undefined`
 * when the checksum extension is not in use.
 *
 * @example
 * ```ts
 * const header = await checksumHeader('sha1', bytes); // 'sha1 Kq5sNclPz7QV2+lfQIuc6R7oRu0='
 * ```
 */
export async function checksumHeader(
  algorithm: ChecksumAlgorithm | undefined,
  bytes: Uint8Array,
): Promise<string | undefined> {
  if (algorithm === undefined) return undefined;
  return `${algorithm} ${(await Checksum.of(algorithm, bytes)).base64()}`;
}

/**
 * @internal The result of a creation `POST`.
 *
 * @example
 * ```ts
 * const created: Created = { url: 'http://127.0.0.1:1080/files/abc', offset: 5, expires: undefined };
 * ```
 */
export interface Created {
  /** The upload URL, resolved against the endpoint. */
  url: string;
  /** `Upload-Offset` after the bytes sent with the POST (creation-with-upload), else `undefined`. */
  offset: number | undefined;
  /** `Upload-Expires`, when the server said. */
  expires: Date | undefined;
}

/**
 * @internal Creates an upload (`POST` on the endpoint): `Upload-Length`, or
 * `Upload-Defer-Length: 1` when `length` is `undefined`, or no length at all
 * for a final concatenation; with `body` it is creation-with-upload.
 *
 * @example
 * ```ts
 * const { url } = await createUpload(ctx, { length: 100, metadata: 'filename YS5tcDQ=', signal });
 * ```
 */
export async function createUpload(
  ctx: TusContext,
  req: {
    length: number | undefined;
    metadata: string | undefined;
    concat?: string | undefined;
    body?: Uint8Array | undefined;
    checksum?: ChecksumAlgorithm | undefined;
    signal: AbortSignal;
    onBytesSent?: ((bytes: number) => void) | undefined;
  },
): Promise<Created> {
  const headers: Record<string, string> = {};
  const isFinal = req.concat?.startsWith('final;') === true;
  // A final upload's length is the sum of its parts: the spec forbids sending one.
  if (!isFinal) {
    if (req.length === undefined) headers['upload-defer-length'] = '1';
    else headers['upload-length'] = String(req.length);
  }
  if (req.metadata !== undefined) headers['upload-metadata'] = req.metadata;
  if (req.concat !== undefined) headers['upload-concat'] = req.concat;
  let sum: string | undefined;
  if (req.body !== undefined) {
    headers['content-type'] = 'application/offset+octet-stream';
    sum = await checksumHeader(req.checksum, req.body);
    if (sum !== undefined) headers['upload-checksum'] = sum;
  }
  const response = await tusRequest(ctx, {
    method: 'POST',
    url: ctx.endpoint,
    headers,
    body: req.body,
    signal: req.signal,
    ok: sum === undefined ? [201] : [201, 460],
    onBytesSent: req.onBytesSent,
  });
  await release(response);
  if (response.status === 460) throw checksumMismatch('POST', ctx.endpoint, 0, sum as string);
  const location = response.headers.get('location');
  if (location === null || location.trim() === '') {
    throw new ProtocolError(`POST ${ctx.endpoint}: the 201 response has no Location header`);
  }
  let url: string;
  try {
    // The spec allows a relative Location; it is relative to the request URL.
    url = new URL(location.trim(), ctx.endpoint).href;
  } catch (cause) {
    throw new ProtocolError(
      `POST ${ctx.endpoint}: Location ${JSON.stringify(location)} is not a URL`,
      {
        cause,
      },
    );
  }
  const offset = integerHeader(response, 'upload-offset');
  if (req.body !== undefined && offset === undefined) {
    throw new ProtocolError(
      `POST ${ctx.endpoint}: the server took a body (creation-with-upload) but sent no valid Upload-Offset`,
    );
  }
  return { url, offset, expires: parseExpires(response.headers.get('upload-expires')) };
}

/**
 * @internal Appends `bytes` at `offset` with `PATCH` requests until the
 * server holds all of them: a server may store fewer bytes than sent (the
 * spec asks it to keep as many as it can), and then the rest follows at the
 * offset it reported. `declareLength` adds `Upload-Length` (deferred length).
 *
 * Throws `OffsetConflictError` on 409 (with the server's offset from a
 * `HEAD` when it answers) and when the server stored nothing;
 * `ChecksumMismatchError` (retryable) on 460; `ProtocolError` when the
 * server reports more bytes than it could have received.
 *
 * @example
 * ```ts
 * const { offset } = await patchUpload(ctx, url, { offset: 0, bytes, signal });
 * ```
 */
export async function patchUpload(
  ctx: TusContext,
  url: string,
  req: {
    offset: number;
    bytes: Uint8Array;
    declareLength?: number | undefined;
    checksum?: ChecksumAlgorithm | undefined;
    signal: AbortSignal;
    onBytesSent?: ((bytes: number) => void) | undefined;
  },
): Promise<{ offset: number; expires: Date | undefined }> {
  const end = req.offset + req.bytes.length;
  let at = req.offset;
  let expires: Date | undefined;
  let declare = req.declareLength;
  do {
    const body = req.bytes.subarray(at - req.offset);
    const headers: Record<string, string> = {
      'content-type': 'application/offset+octet-stream',
      'upload-offset': String(at),
    };
    if (declare !== undefined) headers['upload-length'] = String(declare);
    const sum = await checksumHeader(req.checksum, body);
    if (sum !== undefined) headers['upload-checksum'] = sum;
    const response = await tusRequest(ctx, {
      method: 'PATCH',
      url,
      headers,
      body,
      signal: req.signal,
      ok: [200, 204, 409, 460],
      onBytesSent: req.onBytesSent,
    });
    await release(response);
    if (response.status === 409) {
      const conflict = new HttpError('PATCH', url, 409, 'Upload-Offset does not match the server', {
        retryable: true,
      });
      let serverOffset: number | undefined;
      let cause: unknown = conflict;
      try {
        serverOffset = (await headUpload(ctx, url, req.signal)).offset;
      } catch (error) {
        // Keep both: the 409 explains the failure, the HEAD error why the offset is unknown.
        cause = new AggregateError([conflict, error], 'the HEAD after a 409 failed too');
        if (UploadAbortedError.isInstance(error)) throw error;
      }
      throw new OffsetConflictError(at, serverOffset, { cause });
    }
    if (response.status === 460) throw checksumMismatch('PATCH', url, at, sum as string);
    expires = parseExpires(response.headers.get('upload-expires')) ?? expires;
    const next = integerHeader(response, 'upload-offset');
    if (next === undefined) {
      throw new ProtocolError(`PATCH ${url}: the response has no valid Upload-Offset header`);
    }
    if (next > end || next < at) {
      throw new ProtocolError(
        `PATCH ${url}: sent bytes ${at}..${end} but the server reports Upload-Offset ${next}`,
      );
    }
    if (next === at && at < end) {
      // No progress: looping would spin; the engine re-reads the offset and decides.
      throw new OffsetConflictError(at, next, {
        cause: new ProtocolError(`PATCH ${url}: the server stored none of ${end - at} bytes`),
      });
    }
    at = next;
    // The length is declared once stored; repeating it on a follow-up PATCH is a 400 on some servers.
    declare = undefined;
  } while (at < end);
  return { offset: at, expires };
}

function checksumMismatch(
  method: string,
  url: string,
  offset: number,
  sum: string,
): ChecksumMismatchError {
  const [algorithm = '', digest = ''] = sum.split(' ');
  return new ChecksumMismatchError(
    `${method} ${url} at offset ${offset}`,
    algorithm,
    digest,
    undefined,
    {
      // The bytes were damaged on the way (the source is read again on retry), so one resend is worth it.
      retryable: true,
      cause: new HttpError(method, url, 460, 'Checksum Mismatch', { retryable: true }),
    },
  );
}

/**
 * @internal Terminates an upload (`DELETE`, termination extension); an
 * upload that is already gone (404/410) counts as terminated.
 *
 * @example
 * ```ts
 * await deleteUpload(ctx, url, signal);
 * ```
 */
export async function deleteUpload(
  ctx: TusContext,
  url: string,
  signal: AbortSignal,
): Promise<void> {
  const response = await tusRequest(ctx, {
    method: 'DELETE',
    url,
    signal,
    ok: [200, 204, 404, 410],
  });
  await release(response);
}

/**
 * @internal Runs `task` over `items` with at most `limit` in flight, so
 * thousands of parts never become thousands of simultaneous requests.
 *
 * @example
 * ```ts
 * const heads = await mapLimit(urls, 8, (url) => headUpload(ctx, url, signal));
 * ```
 */
export async function mapLimit<T, R>(
  items: readonly T[],
  limit: number,
  task: (item: T) => Promise<R>,
): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      out[i] = await task(items[i] as T);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

function base64(bytes: Uint8Array): string {
  let text = '';
  for (const byte of bytes) text += String.fromCharCode(byte);
  return btoa(text);
}
