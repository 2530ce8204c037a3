import { HttpError, NetworkError, UploadAbortedError } from './errors';

/**
 * The `fetch` the protocols call: the global one by default, or any
 * compatible function (a proxy-aware undici `fetch`, a test double).
 *
 * @example
 * ```ts
 * import type { FetchLike } from 'chunked-uploader';
 * const withAuth: FetchLike = (url, init) => fetch(url, { ...init, headers: { ...init?.headers, authorization: token } });
 * ```
 */
export type FetchLike = (input: string, init?: RequestInit) => Promise<Response>;

/** @internal One request as the protocols describe it. */
export interface HttpRequest {
  method: string;
  url: string;
  headers?: Record<string, string>;
  body?: Uint8Array | undefined;
  signal: AbortSignal;
  /** Statuses that count as success; anything else throws `HttpError`. */
  ok: readonly number[];
  onBytesSent?: ((bytes: number) => void) | undefined;
  fetch?: FetchLike | undefined;
}

/** Bytes handed to the platform per pull of a streamed body: small enough for smooth progress. */
const BODY_SLICE = 256 * 1024;

// Only Node's fetch (undici) streams request bodies over HTTP/1.1; browsers need HTTP/2 for it.
const streamsRequestBodies =
  typeof process !== 'undefined' && typeof process.versions?.node === 'string';

/**
 * @internal Sends one request and returns the response when its status is
 * in `ok`; otherwise throws a typed error: `HttpError` (retryable for 408,
 * 429 and 5xx, with `Retry-After`), `NetworkError` when there was no
 * response, `UploadAbortedError` when the signal aborted.
 */
export async function send(req: HttpRequest): Promise<Response> {
  const doFetch = req.fetch ?? globalThis.fetch;
  const headers: Record<string, string> = { ...req.headers };
  let body: BodyInit | undefined;
  let streamed = false;
  if (req.body !== undefined) {
    headers['content-length'] ??= String(req.body.byteLength);
    if (req.onBytesSent !== undefined && streamsRequestBodies && req.body.byteLength > BODY_SLICE) {
      body = countingBody(req.body, req.onBytesSent);
      streamed = true;
    } else {
      body = req.body as BodyInit;
    }
  }
  let response: Response;
  try {
    const init: RequestInit & { duplex?: 'half' } = {
      method: req.method,
      headers,
      signal: req.signal,
    };
    if (body !== undefined) init.body = body;
    if (streamed) init.duplex = 'half';
    response = await doFetch(req.url, init);
  } catch (cause) {
    if (req.signal.aborted) throw new UploadAbortedError({ cause: req.signal.reason });
    throw new NetworkError(req.method, req.url, { cause });
  }
  if (req.body !== undefined && !streamed) req.onBytesSent?.(req.body.byteLength);
  if (!req.ok.includes(response.status)) {
    const detail = await readDetail(response);
    throw new HttpError(req.method, req.url, response.status, detail, {
      retryAfterMs: parseRetryAfter(response.headers.get('retry-after')),
    });
  }
  return response;
}

/** A request body that hands out zero-copy slices and counts what the platform pulled. */
function countingBody(
  bytes: Uint8Array,
  onBytesSent: (n: number) => void,
): ReadableStream<Uint8Array> {
  let at = 0;
  return new ReadableStream<Uint8Array>(
    {
      pull(controller) {
        if (at >= bytes.length) {
          controller.close();
          return;
        }
        const end = Math.min(bytes.length, at + BODY_SLICE);
        const slice = bytes.subarray(at, end);
        // Report the previous slice as sent: the platform asked for more only after taking it.
        controller.enqueue(slice);
        onBytesSent(end - at);
        at = end;
      },
    },
    { highWaterMark: 0 },
  );
}

async function readDetail(response: Response): Promise<string> {
  try {
    const text = (await response.text()).trim();
    return text.length > 200 ? `${text.slice(0, 200)}…` : text;
  } catch {
    return '';
  }
}

/**
 * @internal `Retry-After` in milliseconds: delta-seconds or an HTTP date;
 * `undefined` when absent or unparseable.
 */
export function parseRetryAfter(
  value: string | null,
  now: number = Date.now(),
): number | undefined {
  if (value === null) return undefined;
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000;
  const date = Date.parse(trimmed);
  if (Number.isNaN(date)) return undefined;
  return Math.max(0, date - now);
}

/** @internal Reads a non-negative integer header, or `undefined` when absent or malformed. */
export function integerHeader(response: Response, name: string): number | undefined {
  const value = response.headers.get(name);
  if (value === null || !/^\d+$/.test(value.trim())) return undefined;
  const n = Number(value.trim());
  return Number.isSafeInteger(n) ? n : undefined;
}
