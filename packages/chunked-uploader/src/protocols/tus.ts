import type { ChecksumAlgorithm } from '../lib/checksum';
import { InvalidArgumentError, ProtocolError } from '../lib/errors';
import type { FetchLike } from '../lib/http';
import type { JsonValue, OpenOptions, UploadProtocol } from '../lib/types';
import { ConcatSession } from './tus-concat-session';
import { discover, type TusServerInfo } from './tus-discovery';
import {
  assertWithinMaxSize,
  CoreSession,
  type SessionConfig,
  type TusSession,
} from './tus-session';
import { parseState } from './tus-state';
import { createUpload, encodeMetadata, headUpload, type TusContext } from './tus-wire';

/**
 * Options of {@link tus}.
 *
 * @example
 * ```ts
 * import { tus } from 'chunked-uploader';
 * const protocol = tus({
 *   endpoint: 'https://tus.example/files/',
 *   headers: async () => ({ authorization: `Bearer ${await getToken()}` }),
 *   checksum: ['sha256', 'sha1'],
 *   metadata: { album: 'holidays' },
 * });
 * ```
 */
export interface TusOptions {
  /**
   * The creation URL (where `POST` creates uploads and `OPTIONS` describes
   * the server). Relative URLs resolve against the page in browsers.
   */
  endpoint: string;
  /**
   * Extra headers on every request (authorization, tenancy). A function is
   * called before each request, so short-lived tokens can be refreshed.
   * @default {}
   */
  headers?:
    | Record<string, string>
    | (() => Record<string, string> | Promise<Record<string, string>>)
    | undefined;
  /**
   * The `fetch` to call.
   * @default globalThis.fetch
   */
  fetch?: FetchLike | undefined;
  /**
   * Per-request checksums (the checksum extension): the algorithm, or
   * algorithms in order of preference; the first the server lists in
   * `Tus-Checksum-Algorithm` is used, and none when it lists none of them
   * or does not advertise `checksum`. `'none'` never sends one. A chunk the
   * server finds damaged (460) fails with a retryable
   * `ChecksumMismatchError`, so the engine sends it once more.
   * @default 'sha1'
   */
  checksum?: ChecksumAlgorithm | readonly ChecksumAlgorithm[] | 'none' | undefined;
  /**
   * `'auto'`: when the server advertises `concatenation`, upload chunks as
   * parallel partial uploads and join them in `complete()`. `'off'`: one
   * upload, chunks in order. Servers may run their "upload finished" hooks
   * for every partial upload too; choose `'off'` if yours acts on those.
   * @default 'auto'
   */
  concatenation?: 'auto' | 'off' | undefined;
  /**
   * Parts on the wire at once with concatenation (the engine may use fewer).
   * @default 6
   */
  maxParallel?: number | undefined;
  /**
   * Most partial uploads one upload is split into with concatenation: the
   * final request lists every part URL in one `Upload-Concat` header, and
   * servers cap header sizes.
   * @default 100
   */
  maxParts?: number | undefined;
  /**
   * Send the first chunk in the creation `POST` when the server advertises
   * `creation-with-upload`, saving a round trip. The upload is then created
   * by the first `send()`, not by `open()`. The spec suggests
   * `Expect: 100-continue` with it, which `fetch` cannot send, so a server
   * that refuses the creation does so after receiving the first chunk.
   * @default true
   */
  creationWithUpload?: boolean | undefined;
  /**
   * `Upload-Metadata` pairs added to every upload; the engine's (`filename`)
   * and `filetype` (the content type) take precedence. Keys must be
   * printable ASCII without spaces or commas; values are sent as base64 of
   * their UTF-8 bytes, as the spec requires.
   * @default {}
   */
  metadata?: Record<string, string> | undefined;
}

/**
 * The tus protocol as the engine drives it, plus {@link TusProtocol.discover}.
 *
 * @example
 * ```ts
 * import { tus } from 'chunked-uploader';
 * const protocol: TusProtocol = tus({ endpoint: 'https://tus.example/files/' });
 * const session = await protocol.open({ size, fingerprint, metadata: { filename: 'a.mp4' }, contentType: 'video/mp4', signal });
 * ```
 */
export interface TusProtocol extends UploadProtocol {
  /** `'tus'`. */
  readonly name: 'tus';
  /** The endpoint, absolute. */
  readonly target: string;
  /**
   * What the server supports (`OPTIONS` on the endpoint), asked once per
   * protocol instance; a failed attempt is asked again next time.
   *
   * @example
   * ```ts
   * const { extensions, maxSize, checksumAlgorithms } = await protocol.discover();
   * ```
   */
  discover(signal?: AbortSignal): Promise<TusServerInfo>;
  /**
   * Starts an upload: discovery, then the creation `POST` (deferred to the
   * first chunk with creation-with-upload, and per part with
   * concatenation). Throws `InvalidArgumentError` naming both numbers when
   * the size exceeds `Tus-Max-Size`, before anything is uploaded.
   *
   * @example
   * ```ts
   * const session = await protocol.open({ size: 1e9, fingerprint, metadata: {}, contentType: undefined, signal });
   * ```
   */
  open(options: OpenOptions): Promise<TusSession>;
  /**
   * Reattaches to a persisted `state` (or a bare upload URL from any tus
   * client) after a `HEAD`. Resolves `undefined`, so the engine starts over,
   * when the server no longer has the upload (404, 410, 403), when
   * `Upload-Length` differs from `options.size` (other content), when the
   * persisted `Upload-Expires` has passed, or when the state is not ours.
   *
   * @example
   * ```ts
   * const session = (await protocol.resume(saved, openOptions)) ?? (await protocol.open(openOptions));
   * ```
   */
  resume(state: JsonValue, options: OpenOptions): Promise<TusSession | undefined>;
}

const CHECKSUM_ALGORITHMS: readonly string[] = ['md5', 'sha1', 'sha256', 'crc32', 'crc32c'];

/**
 * The tus 1.0 protocol (tus.io/protocols/resumable-upload): core, creation,
 * creation-with-upload, creation-defer-length, checksum, termination,
 * concatenation and expiration. Runs wherever `fetch` does.
 *
 * @example
 * ```ts
 * import { tus } from 'chunked-uploader';
 * const protocol = tus({ endpoint: 'http://127.0.0.1:1080/files/', headers: { authorization: 'Bearer …' } });
 * const session = await protocol.open({ size: bytes.length, fingerprint: 'demo', metadata: { filename: 'a.mp4' }, contentType: 'video/mp4', signal });
 * await session.send({ index: 0, offset: 0, bytes, last: true, totalSize: bytes.length }, { signal });
 * const { location } = await session.complete([], signal);
 * ```
 */
export function tus(options: TusOptions): TusProtocol {
  const endpoint = resolveEndpoint(options.endpoint);
  const checksum = checksumPreference(options.checksum ?? 'sha1');
  const concatenation = options.concatenation ?? 'auto';
  if (concatenation !== 'auto' && concatenation !== 'off') {
    throw new InvalidArgumentError(
      `tus concatenation must be 'auto' or 'off', got ${JSON.stringify(concatenation)}`,
    );
  }
  const maxParallel = positiveInteger('maxParallel', options.maxParallel ?? 6);
  const maxParts = positiveInteger('maxParts', options.maxParts ?? 100);
  const creationWithUpload = options.creationWithUpload ?? true;
  const defaults = { ...options.metadata };
  const extraHeaders = options.headers ?? {};
  const ctx: TusContext = {
    endpoint,
    fetch: options.fetch,
    headers: async () => (typeof extraHeaders === 'function' ? await extraHeaders() : extraHeaders),
  };

  let discovery: Promise<TusServerInfo> | undefined;
  const discoverOnce = (
    signal: AbortSignal = new AbortController().signal,
  ): Promise<TusServerInfo> => {
    discovery ??= discover(ctx, signal).catch((error: unknown) => {
      discovery = undefined;
      throw error;
    });
    return discovery;
  };

  const configure = (info: TusServerInfo, metadata: string | undefined): SessionConfig => {
    const list = checksum ?? [];
    return {
      ctx,
      info,
      checksum: info.extensions.includes('checksum')
        ? list.find((algorithm) => info.checksumAlgorithms.includes(algorithm))
        : undefined,
      creationWithUpload: creationWithUpload && info.extensions.includes('creation-with-upload'),
      metadata,
      maxParallel,
      maxParts,
    };
  };
  const useConcatenation = (info: TusServerInfo): boolean =>
    concatenation === 'auto' &&
    info.extensions.includes('concatenation') &&
    info.extensions.includes('creation');
  const metadataOf = (open: OpenOptions): string | undefined => {
    const pairs: Record<string, string> = { ...defaults };
    if (open.contentType !== undefined) pairs.filetype = open.contentType;
    return encodeMetadata({ ...pairs, ...open.metadata });
  };

  return {
    name: 'tus',
    target: endpoint,
    discover: discoverOnce,

    async open(open) {
      // Invalid metadata fails before any request.
      const metadata = metadataOf(open);
      const info = await discoverOnce(open.signal);
      if (!info.extensions.includes('creation')) {
        throw new ProtocolError(
          `${endpoint} does not advertise the creation extension (Tus-Extension: ${info.extensions.join(',') || 'none'}), so no upload can be created`,
        );
      }
      if (open.size !== undefined) assertWithinMaxSize(info, open.size, endpoint);
      const config = configure(info, metadata);
      if (useConcatenation(info)) return new ConcatSession(config, { parts: [], final: undefined });
      if (open.size === undefined && !info.extensions.includes('creation-defer-length')) {
        throw new ProtocolError(
          `${endpoint} does not support creation-defer-length, so an upload of unknown size cannot start`,
        );
      }
      const init = {
        url: undefined,
        expires: undefined,
        length: open.size,
        deferred: open.size === undefined,
      };
      // With creation-with-upload the POST waits for the first chunk so it can carry it.
      if (config.creationWithUpload && open.size !== 0) return new CoreSession(config, init);
      const created = await createUpload(ctx, { length: open.size, metadata, signal: open.signal });
      return new CoreSession(config, { ...init, url: created.url, expires: created.expires });
    },

    async resume(state, open) {
      const parsed = parseState(state);
      if (parsed === undefined) return undefined;
      // The spec asks clients to check Upload-Expires before resuming; a stale upload is not worth a request.
      if (parsed.expires !== null && Date.parse(parsed.expires) <= Date.now()) return undefined;
      const metadata = metadataOf(open);
      if (parsed.mode === 'concatenation') {
        if (concatenation === 'off') return undefined;
        const info = await discoverOnce(open.signal);
        if (!useConcatenation(info)) return undefined;
        const session = new ConcatSession(configure(info, metadata), {
          parts: parsed.parts,
          final: parsed.final ?? undefined,
        });
        if (parsed.parts.length === 0 && parsed.final === null) return session;
        await session.acknowledged(open.signal);
        // Everything the state named is gone: it describes nothing the server has.
        return session.state.parts.length === 0 && session.url === undefined ? undefined : session;
      }
      if (parsed.url === null) return undefined;
      const head = await headUpload(ctx, parsed.url, open.signal, { gone: 'undefined' });
      if (head === undefined) return undefined;
      // A partial or final upload cannot be appended to as one plain upload.
      if (head.concat !== null) return undefined;
      if (open.size !== undefined && head.length !== undefined && head.length !== open.size)
        return undefined;
      if (open.size !== undefined && head.offset !== undefined && head.offset > open.size)
        return undefined;
      const info = await discoverOnce(open.signal);
      return new CoreSession(configure(info, metadata), {
        url: parsed.url,
        expires: head.expires ?? (parsed.expires === null ? undefined : new Date(parsed.expires)),
        length: head.length ?? open.size,
        deferred: head.length === undefined,
      });
    },
  };
}

function resolveEndpoint(endpoint: string): string {
  const base = (globalThis as { location?: { href?: string } }).location?.href;
  let url: URL;
  try {
    url = new URL(endpoint, base);
  } catch (cause) {
    throw new InvalidArgumentError(`tus endpoint ${JSON.stringify(endpoint)} is not a URL`, {
      cause,
    });
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new InvalidArgumentError(
      `tus endpoint ${JSON.stringify(endpoint)} must be http(s), got ${url.protocol}`,
    );
  }
  return url.href;
}

function checksumPreference(
  value: NonNullable<TusOptions['checksum']>,
): readonly ChecksumAlgorithm[] | undefined {
  if (value === 'none') return undefined;
  const list: readonly string[] = typeof value === 'string' ? [value] : value;
  for (const algorithm of list) {
    if (!CHECKSUM_ALGORITHMS.includes(algorithm)) {
      throw new InvalidArgumentError(
        `tus checksum ${JSON.stringify(algorithm)} is not one of ${CHECKSUM_ALGORITHMS.join(', ')} or 'none'`,
      );
    }
  }
  return list as readonly ChecksumAlgorithm[];
}

function positiveInteger(name: string, value: number): number {
  if (!Number.isSafeInteger(value) || value < 1) {
    throw new InvalidArgumentError(`tus ${name} must be a positive integer, got ${value}`);
  }
  return value;
}
