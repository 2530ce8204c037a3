import { AwsV4Signer } from 'aws4fetch';
import { Checksum } from '../lib/checksum';
import {
  ChecksumMismatchError,
  HttpError,
  InvalidArgumentError,
  isRetryableStatus,
  ProtocolError,
} from '../lib/errors';
import { type FetchLike, parseRetryAfter, send } from '../lib/http';
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
import { childElements, childText, escapeXml, parseXml, type XmlElement } from './s3-xml';

/**
 * Credentials that sign S3 requests (Signature Version 4).
 *
 * @example
 * ```ts
 * import type { S3Credentials } from 'chunked-uploader';
 * const credentials: S3Credentials = { accessKeyId: 'AKIA...', secretAccessKey: '...' };
 * ```
 */
export interface S3Credentials {
  /** The access key ID. */
  accessKeyId: string;
  /** The secret access key. */
  secretAccessKey: string;
  /**
   * The session token of temporary credentials (STS), sent as
   * `x-amz-security-token`.
   * @default undefined
   */
  sessionToken?: string | undefined;
}

/**
 * How each part's integrity is checked by the server: `'md5'` sends
 * `Content-MD5`, `'crc32'` sends `x-amz-checksum-crc32` (and asks for a
 * full-object CRC32 the engine can compare with the source's), `'none'`
 * sends neither.
 *
 * @example
 * ```ts
 * import type { S3ChecksumMode } from 'chunked-uploader';
 * const mode: S3ChecksumMode = 'crc32';
 * ```
 */
export type S3ChecksumMode = 'md5' | 'crc32' | 'none';

/**
 * Options of {@link s3}.
 *
 * @example
 * ```ts
 * import { s3, type S3Options } from 'chunked-uploader';
 * const options: S3Options = {
 *   endpoint: 'http://127.0.0.1:9000', bucket: 'videos', key: 'raw/a.mp4',
 *   credentials: { accessKeyId: 'minio', secretAccessKey: 'minio123' },
 * };
 * const protocol = s3(options);
 * ```
 */
export interface S3Options {
  /**
   * The S3 endpoint: any S3-compatible server (MinIO, R2, Ceph, s3rver...).
   * A path after the host is kept as a prefix.
   * @default `https://s3.${region}.amazonaws.com`
   */
  endpoint?: string | undefined;
  /** The bucket. */
  bucket: string;
  /** The object key (`.` and `..` path segments are refused: URLs would collapse them). */
  key: string;
  /**
   * The region requests are signed for.
   * @default 'us-east-1'
   */
  region?: string | undefined;
  /**
   * Signing credentials, or a function returning them, called before every
   * request so temporary credentials can be refreshed (cache inside it).
   */
  credentials: S3Credentials | (() => S3Credentials | Promise<S3Credentials>);
  /**
   * Address the bucket in the path (`endpoint/bucket/key`) instead of the
   * host name (`bucket.endpoint/key`). Buckets whose names are not plain DNS
   * labels always use the path.
   * @default true with a custom `endpoint`, false for AWS
   */
  forcePathStyle?: boolean | undefined;
  /**
   * The `fetch` to send requests with.
   * @default globalThis.fetch
   */
  fetch?: FetchLike | undefined;
  /**
   * How the server checks each part: see {@link S3ChecksumMode}.
   * @default 'md5'
   */
  checksum?: S3ChecksumMode | undefined;
  /**
   * How many parts may be on the wire at once.
   * @default 4
   */
  maxParallel?: number | undefined;
  /**
   * The object's `Content-Type`.
   * @default the source's media type, when the engine knows it
   */
  contentType?: string | undefined;
  /**
   * User metadata, sent as `x-amz-meta-<name>` (names lowercased; values
   * outside printable ASCII are RFC 2047-encoded, as S3 itself returns them).
   * Merged over the metadata the engine passes, these winning.
   * @default {}
   */
  metadata?: Record<string, string> | undefined;
}

/**
 * What an S3 upload persists so a new process can resume it.
 *
 * @example
 * ```ts
 * import type { S3UploadState } from 'chunked-uploader';
 * const state: S3UploadState = {
 *   version: 1, endpoint: 'http://127.0.0.1:9000', bucket: 'videos', key: 'a.mp4',
 *   region: 'us-east-1', uploadId: 'VXBsb2FkIElE', checksum: 'md5',
 * };
 * ```
 */
export type S3UploadState = {
  /** Format version of this state. */
  version: 1;
  /** The endpoint the upload was created on. */
  endpoint: string;
  /** The bucket. */
  bucket: string;
  /** The object key. */
  key: string;
  /** The signing region. */
  region: string;
  /** The multipart upload ID from CreateMultipartUpload. */
  uploadId: string;
  /** The checksum mode the upload was created with (S3 ties a CRC32 upload to CRC32 parts). */
  checksum: S3ChecksumMode;
};

const MiB = 2 ** 20;
/** S3's published multipart limits. */
const MIN_PART_SIZE = 5 * MiB;
const MAX_PART_SIZE = 5 * 2 ** 30;
const MAX_PARTS = 10_000;
const DEFAULT_MAX_PARALLEL = 4;

/** Every status, so `send()` hands us S3's error body instead of a truncated detail. */
const ANY_STATUS: readonly number[] = Array.from({ length: 500 }, (_, i) => i + 100);

/** S3 error codes that mean "try again", whatever the status says (a 200 with an `<Error>` body, a 400 RequestTimeout). */
const RETRYABLE_CODES = new Set([
  'InternalError',
  'ServiceUnavailable',
  'SlowDown',
  'RequestTimeout',
  'OperationAborted',
  'TooManyRequests',
]);

/** Codes with which S3 (`BadDigest`) and compatible servers reject a part whose checksum header disagrees with its bytes. */
const DIGEST_MISMATCH_CODES = new Set(['BadDigest', 'XAmzContentChecksumMismatch']);

/**
 * The S3 multipart upload protocol (CreateMultipartUpload, UploadPart,
 * ListParts, CompleteMultipartUpload, AbortMultipartUpload) for AWS and any
 * S3-compatible server, signed with Signature Version 4 (aws4fetch). Parts
 * are numbered, so they may be sent in parallel and in any order; a persisted
 * upload ID lets a new process resume from the parts S3 lists.
 *
 * Runs in Node and in browsers (in a browser, the bucket's CORS rules must
 * allow the methods and expose the `ETag` header).
 *
 * @example
 * ```ts
 * import { s3 } from 'chunked-uploader';
 * const protocol = s3({
 *   endpoint: 'http://127.0.0.1:9000',
 *   bucket: 'videos',
 *   key: 'uploads/a.mp4',
 *   credentials: { accessKeyId: 'minio', secretAccessKey: 'minio123' },
 *   checksum: 'crc32',
 * });
 * ```
 */
export function s3(options: S3Options): UploadProtocol {
  const client = createClient(options);
  return {
    name: 's3',
    target: client.objectUrl,
    async open(open: OpenOptions): Promise<ProtocolSession> {
      const headers: Record<string, string> = metadataHeaders({
        ...open.metadata,
        ...options.metadata,
      });
      const contentType = options.contentType ?? open.contentType;
      if (contentType !== undefined) headers['content-type'] = contentType;
      if (client.checksum === 'crc32') {
        headers['x-amz-checksum-algorithm'] = 'CRC32';
        // A full-object CRC32 is a digest of the bytes themselves, so the engine can check it.
        headers['x-amz-checksum-type'] = 'FULL_OBJECT';
      }
      const response = await call(client, {
        operation: 'CreateMultipartUpload',
        method: 'POST',
        query: [['uploads', '']],
        headers,
        signal: open.signal,
        ok: [200],
      });
      const root = await readXml(
        response,
        'CreateMultipartUpload',
        'InitiateMultipartUploadResult',
        {
          method: 'POST',
          url: withQuery(client.objectUrl, [['uploads', '']]),
        },
      );
      const uploadId = childText(root, 'UploadId');
      if (uploadId === undefined || uploadId === '') {
        throw new ProtocolError('S3 CreateMultipartUpload answered without an UploadId');
      }
      return new S3Session(client, uploadId, client.checksum);
    },
    async resume(state: JsonValue, open: OpenOptions): Promise<ProtocolSession | undefined> {
      const persisted = parseState(state);
      if (
        persisted === undefined ||
        persisted.endpoint !== client.endpoint ||
        persisted.bucket !== client.bucket ||
        persisted.key !== client.key
      ) {
        return undefined;
      }
      const resumed: S3Client = { ...client, checksum: persisted.checksum };
      // One part is enough to learn whether the upload still exists; acknowledged() lists them all.
      const outcome = await attempt(resumed, {
        operation: 'ListParts',
        method: 'GET',
        query: [
          ['uploadId', persisted.uploadId],
          ['max-parts', '1'],
        ],
        signal: open.signal,
        ok: [200],
      });
      if ('failure' in outcome) {
        if (isGoneUpload(outcome.failure)) return undefined;
        throw outcome.failure.error;
      }
      await discard(outcome.response);
      return new S3Session(resumed, persisted.uploadId, persisted.checksum);
    },
  };
}

/** Everything requests need, resolved once from the options. */
interface S3Client {
  readonly endpoint: string;
  readonly bucket: string;
  readonly key: string;
  readonly region: string;
  readonly objectUrl: string;
  readonly credentials: () => Promise<S3Credentials>;
  readonly fetch: FetchLike | undefined;
  readonly checksum: S3ChecksumMode;
  readonly maxParallel: number;
}

function createClient(options: S3Options): S3Client {
  const region = options.region ?? 'us-east-1';
  if (typeof region !== 'string' || region === '') {
    throw new InvalidArgumentError(
      `s3: region must be a non-empty string, got ${JSON.stringify(region)}`,
    );
  }
  if (typeof options.bucket !== 'string' || options.bucket === '' || options.bucket.includes('/')) {
    throw new InvalidArgumentError(
      `s3: bucket must be a non-empty name without "/", got ${JSON.stringify(options.bucket)}`,
    );
  }
  const key = options.key;
  if (typeof key !== 'string' || key === '') {
    throw new InvalidArgumentError(
      `s3: key must be a non-empty string, got ${JSON.stringify(key)}`,
    );
  }
  if (key.split('/').some((segment) => segment === '.' || segment === '..')) {
    throw new InvalidArgumentError(
      `s3: key ${JSON.stringify(key)} has a "." or ".." segment, which URLs collapse, so the request would address another object`,
    );
  }
  const endpointText = options.endpoint ?? `https://s3.${region}.amazonaws.com`;
  let endpoint: URL;
  try {
    endpoint = new URL(endpointText);
  } catch (cause) {
    throw new InvalidArgumentError(`s3: endpoint ${JSON.stringify(endpointText)} is not a URL`, {
      cause,
    });
  }
  if (endpoint.protocol !== 'http:' && endpoint.protocol !== 'https:') {
    throw new InvalidArgumentError(
      `s3: endpoint ${JSON.stringify(endpointText)} must be http: or https:`,
    );
  }
  if (endpoint.search !== '' || endpoint.hash !== '') {
    throw new InvalidArgumentError(
      `s3: endpoint ${JSON.stringify(endpointText)} must not have a query or fragment`,
    );
  }
  const checksum = options.checksum ?? 'md5';
  if (checksum !== 'md5' && checksum !== 'crc32' && checksum !== 'none') {
    throw new InvalidArgumentError(
      `s3: checksum must be 'md5', 'crc32' or 'none', got ${JSON.stringify(checksum)}`,
    );
  }
  const maxParallel = options.maxParallel ?? DEFAULT_MAX_PARALLEL;
  if (!Number.isSafeInteger(maxParallel) || maxParallel < 1) {
    throw new InvalidArgumentError(`s3: maxParallel must be an integer >= 1, got ${maxParallel}`);
  }
  const credentials = options.credentials;
  if (credentials === undefined || credentials === null) {
    throw new InvalidArgumentError('s3: credentials are required to sign requests');
  }
  const base = endpoint.pathname.replace(/\/+$/, '');
  const pathStyle =
    (options.forcePathStyle ?? options.endpoint !== undefined) || !isDnsLabel(options.bucket);
  const objectUrl = pathStyle
    ? `${endpoint.origin}${base}/${encodeSegment(options.bucket)}/${encodeKey(key)}`
    : `${endpoint.protocol}//${options.bucket}.${endpoint.host}${base}/${encodeKey(key)}`;
  return {
    endpoint: `${endpoint.origin}${base}`,
    bucket: options.bucket,
    key,
    region,
    objectUrl,
    credentials: async () =>
      typeof credentials === 'function' ? await credentials() : credentials,
    fetch: options.fetch,
    checksum,
    maxParallel: Math.min(maxParallel, MAX_PARTS),
  };
}

/** Bucket names that can be a host label (and match a wildcard TLS certificate: no dots). */
function isDnsLabel(bucket: string): boolean {
  return /^[a-z0-9](?:[a-z0-9-]{1,61}[a-z0-9])$/.test(bucket);
}

/** RFC 3986 percent-encoding, as SigV4 canonicalizes (encodeURIComponent leaves `!'()*` alone). */
function encodeSegment(text: string): string {
  return encodeURIComponent(text).replace(
    /[!'()*]/g,
    (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
  );
}

function encodeKey(key: string): string {
  return key.split('/').map(encodeSegment).join('/');
}

function metadataHeaders(metadata: Record<string, string>): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(metadata)) {
    if (!/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(name)) {
      throw new InvalidArgumentError(
        `s3: metadata name ${JSON.stringify(name)} is not a valid header name`,
      );
    }
    headers[`x-amz-meta-${name.toLowerCase()}`] = /^[\x20-\x7e]*$/.test(value)
      ? value
      : `=?UTF-8?B?${base64(new TextEncoder().encode(value))}?=`;
  }
  return headers;
}

function base64(bytes: Uint8Array): string {
  let text = '';
  for (const byte of bytes) text += String.fromCharCode(byte);
  return btoa(text);
}

function parseState(state: JsonValue): S3UploadState | undefined {
  if (typeof state !== 'object' || state === null || Array.isArray(state)) return undefined;
  const { version, endpoint, bucket, key, region, uploadId, checksum } = state;
  if (
    version !== 1 ||
    typeof endpoint !== 'string' ||
    typeof bucket !== 'string' ||
    typeof key !== 'string' ||
    typeof region !== 'string' ||
    typeof uploadId !== 'string' ||
    uploadId === '' ||
    (checksum !== 'md5' && checksum !== 'crc32' && checksum !== 'none')
  ) {
    return undefined;
  }
  return { version, endpoint, bucket, key, region, uploadId, checksum };
}

/** One upload on S3: an upload ID and the parts sent under it. */
class S3Session implements ProtocolSession {
  readonly capabilities: ProtocolCapabilities;
  readonly state: S3UploadState;
  readonly #client: S3Client;
  readonly #uploadId: string;
  readonly #checksum: S3ChecksumMode;
  /** What the server said about parts, so `complete` can fill in what a caller's list lacks. */
  readonly #known = new Map<number, { etag: string; checksum: string | undefined }>();

  constructor(client: S3Client, uploadId: string, checksum: S3ChecksumMode) {
    this.#client = client;
    this.#uploadId = uploadId;
    this.#checksum = checksum;
    this.capabilities = {
      maxParallel: client.maxParallel,
      chunkMultiple: 1,
      minChunkSize: MIN_PART_SIZE,
      maxChunkSize: MAX_PART_SIZE,
      maxChunks: MAX_PARTS,
      deferredLength: true,
      placement: 'part',
    };
    // Only a CRC32 upload reports a digest of the bytes; a multipart ETag is no MD5 of the object.
    if (checksum === 'crc32') this.capabilities.digests = ['crc32'];
    this.state = {
      version: 1,
      endpoint: client.endpoint,
      bucket: client.bucket,
      key: client.key,
      region: client.region,
      uploadId,
      checksum,
    };
  }

  async acknowledged(signal: AbortSignal): Promise<Acknowledged> {
    const byIndex = new Map<number, StoredPart>();
    let marker: number | undefined;
    for (;;) {
      const query: [string, string][] = [['uploadId', this.#uploadId]];
      if (marker !== undefined) query.push(['part-number-marker', String(marker)]);
      const response = await call(this.#client, {
        operation: 'ListParts',
        method: 'GET',
        query,
        signal,
        ok: [200],
      });
      const root = await readXml(response, 'ListParts', 'ListPartsResult', {
        method: 'GET',
        url: this.#url(query),
      });
      let last = marker ?? 0;
      for (const element of childElements(root, 'Part')) {
        const part = parsePart(element);
        byIndex.set(part.index, part);
        last = Math.max(last, part.index + 1);
      }
      if (childText(root, 'IsTruncated') !== 'true') break;
      const next = integer(childText(root, 'NextPartNumberMarker')) ?? last;
      // A marker that does not move forward would page forever.
      if (next <= (marker ?? 0)) {
        throw new ProtocolError(
          `S3 ListParts said the list is truncated but its NextPartNumberMarker (${next}) does not advance past ${marker ?? 0}`,
        );
      }
      marker = next;
    }
    const parts = [...byIndex.values()].sort((a, b) => a.index - b.index);
    for (const part of parts) {
      if (part.etag !== undefined)
        this.#known.set(part.index, { etag: part.etag, checksum: part.checksum });
    }
    return { placement: 'part', parts };
  }

  async send(chunk: ChunkPayload, options: SendOptions): Promise<ChunkReceipt> {
    const { index, bytes } = chunk;
    if (!Number.isSafeInteger(index) || index < 0 || index >= MAX_PARTS) {
      throw new InvalidArgumentError(
        `s3: chunk index ${index} is outside S3's part numbers 1..${MAX_PARTS}`,
      );
    }
    if (bytes.byteLength > MAX_PART_SIZE) {
      throw new InvalidArgumentError(
        `s3: part ${index + 1} has ${bytes.byteLength} bytes, more than S3's ${MAX_PART_SIZE}-byte limit`,
      );
    }
    // S3 would only refuse it at CompleteMultipartUpload (EntityTooSmall), after every other part was sent.
    if (!chunk.last && bytes.byteLength < MIN_PART_SIZE) {
      throw new InvalidArgumentError(
        `s3: part ${index + 1} has ${bytes.byteLength} bytes; every part but the last needs at least ${MIN_PART_SIZE}`,
      );
    }
    const partNumber = index + 1;
    const headers: Record<string, string> = {};
    let sent: { algorithm: 'md5' | 'crc32'; value: string } | undefined;
    if (this.#checksum === 'md5') {
      sent = { algorithm: 'md5', value: (await Checksum.of('md5', bytes)).base64() };
      headers['content-md5'] = sent.value;
    } else if (this.#checksum === 'crc32') {
      sent = { algorithm: 'crc32', value: (await Checksum.of('crc32', bytes)).base64() };
      headers['x-amz-checksum-crc32'] = sent.value;
      headers['x-amz-sdk-checksum-algorithm'] = 'CRC32';
    }
    const outcome = await attempt(this.#client, {
      operation: 'UploadPart',
      method: 'PUT',
      query: [
        ['partNumber', String(partNumber)],
        ['uploadId', this.#uploadId],
      ],
      headers,
      body: bytes,
      signal: options.signal,
      ok: [200],
      onBytesSent: options.onBytesSent,
    });
    if ('failure' in outcome) {
      const { failure } = outcome;
      if (
        sent !== undefined &&
        failure.code !== undefined &&
        DIGEST_MISMATCH_CODES.has(failure.code)
      ) {
        // The digest was taken of these very bytes, so they changed on the way: sending again may succeed.
        throw new ChecksumMismatchError(
          `S3 part ${partNumber}`,
          sent.algorithm,
          sent.value,
          undefined,
          {
            cause: failure.error,
            retryable: true,
          },
        );
      }
      throw failure.error;
    }
    const { response } = outcome;
    await discard(response);
    const etag = response.headers.get('etag');
    if (etag === null || etag === '') {
      throw new ProtocolError(
        `S3 UploadPart ${partNumber} answered without an ETag header (in a browser, the bucket's CORS rules must expose ETag)`,
      );
    }
    let checksum: string | undefined;
    if (sent?.algorithm === 'crc32') {
      const reported = response.headers.get('x-amz-checksum-crc32');
      if (reported !== null && reported !== sent.value) {
        throw new ChecksumMismatchError(`S3 part ${partNumber}`, 'crc32', sent.value, reported, {
          retryable: true,
        });
      }
      checksum = reported ?? sent.value;
    }
    this.#known.set(index, { etag, checksum });
    return checksum === undefined ? { etag } : { etag, checksum };
  }

  async complete(parts: StoredPart[], signal: AbortSignal): Promise<CompletionInfo> {
    const ordered = this.#completedParts(parts);
    let xml =
      '<?xml version="1.0" encoding="UTF-8"?>\n<CompleteMultipartUpload xmlns="http://s3.amazonaws.com/doc/2006-03-01/">';
    for (const part of ordered) {
      xml += `<Part><PartNumber>${part.partNumber}</PartNumber><ETag>${escapeXml(part.etag)}</ETag>`;
      if (part.checksum !== undefined)
        xml += `<ChecksumCRC32>${escapeXml(part.checksum)}</ChecksumCRC32>`;
      xml += '</Part>';
    }
    xml += '</CompleteMultipartUpload>';
    const body = new TextEncoder().encode(xml);
    const outcome = await attempt(this.#client, {
      operation: 'CompleteMultipartUpload',
      method: 'POST',
      query: [['uploadId', this.#uploadId]],
      headers: {
        'content-type': 'application/xml',
        // The payload is not signed (UNSIGNED-PAYLOAD), so this is what protects the part list.
        'content-md5': (await Checksum.of('md5', body)).base64(),
      },
      body,
      signal,
      ok: [200],
    });
    if ('failure' in outcome) {
      // A retry after a response lost on the way finds the upload gone because it completed.
      if (isGoneUpload(outcome.failure)) {
        const done = await this.#alreadyCompleted(ordered, signal);
        if (done !== undefined) return done;
      }
      throw outcome.failure.error;
    }
    // S3 answers 200 at once and may report a failure in the body minutes later.
    const root = await readXml(
      outcome.response,
      'CompleteMultipartUpload',
      'CompleteMultipartUploadResult',
      {
        method: 'POST',
        url: this.#url([['uploadId', this.#uploadId]]),
      },
    );
    const digests: Record<string, string> = {};
    const crc32 = childText(root, 'ChecksumCRC32');
    if (crc32 !== undefined && isFullObjectChecksum(crc32, childText(root, 'ChecksumType'))) {
      digests.crc32 = crc32;
    }
    const info: CompletionInfo = {
      location: childText(root, 'Location') ?? this.#client.objectUrl,
      digests,
    };
    const etag = childText(root, 'ETag');
    if (etag !== undefined) info.etag = etag;
    return info;
  }

  async terminate(signal: AbortSignal): Promise<void> {
    const outcome = await attempt(this.#client, {
      operation: 'AbortMultipartUpload',
      method: 'DELETE',
      query: [['uploadId', this.#uploadId]],
      signal,
      ok: [200, 204],
    });
    if ('failure' in outcome) {
      if (isGoneUpload(outcome.failure)) return;
      throw outcome.failure.error;
    }
    await discard(outcome.response);
  }

  #url(query: [string, string][]): string {
    return withQuery(this.#client.objectUrl, query);
  }

  /** The caller's parts in ascending order, each with an ETag, refusing gaps: a gap would silently drop bytes. */
  #completedParts(
    parts: StoredPart[],
  ): { partNumber: number; etag: string; checksum: string | undefined }[] {
    if (parts.length === 0) {
      throw new InvalidArgumentError(
        's3: complete needs at least one part (send an empty last part for an empty file)',
      );
    }
    const sorted = [...parts].sort((a, b) => a.index - b.index);
    return sorted.map((part, position) => {
      if (part.index !== position) {
        throw new InvalidArgumentError(
          part.index < position
            ? `s3: part ${part.index + 1} is listed twice`
            : `s3: part ${position + 1} is missing: complete got parts up to ${(sorted.at(-1)?.index ?? 0) + 1} without it`,
        );
      }
      const known = this.#known.get(part.index);
      const etag = part.etag ?? known?.etag;
      if (etag === undefined) {
        throw new InvalidArgumentError(
          `s3: part ${part.index + 1} has no ETag (use the one send() or acknowledged() gave)`,
        );
      }
      const checksum = this.#checksum === 'crc32' ? (part.checksum ?? known?.checksum) : undefined;
      return { partNumber: part.index + 1, etag, checksum };
    });
  }

  /**
   * Whether the object now at the key is the one these parts make: S3's
   * multipart ETag is the MD5 of the parts' binary MD5s, `-` their count.
   * Only decidable when every part ETag is a plain MD5 (not with SSE-KMS).
   */
  async #alreadyCompleted(
    parts: { etag: string }[],
    signal: AbortSignal,
  ): Promise<CompletionInfo | undefined> {
    const expected = await multipartEtag(parts.map((part) => part.etag));
    if (expected === undefined) return undefined;
    const outcome = await attempt(this.#client, {
      operation: 'HeadObject',
      method: 'HEAD',
      query: [],
      headers: this.#checksum === 'crc32' ? { 'x-amz-checksum-mode': 'ENABLED' } : {},
      signal,
      ok: [200],
    });
    if ('failure' in outcome) return undefined;
    const { response } = outcome;
    await discard(response);
    const etag = response.headers.get('etag');
    if (etag === null || unquote(etag) !== expected) return undefined;
    const digests: Record<string, string> = {};
    const crc32 = response.headers.get('x-amz-checksum-crc32');
    if (
      crc32 !== null &&
      isFullObjectChecksum(crc32, response.headers.get('x-amz-checksum-type') ?? undefined)
    ) {
      digests.crc32 = crc32;
    }
    return { location: this.#client.objectUrl, etag, digests };
  }
}

function parsePart(element: XmlElement): StoredPart {
  const partNumber = integer(childText(element, 'PartNumber'));
  const size = integer(childText(element, 'Size'));
  if (partNumber === undefined || partNumber < 1 || partNumber > MAX_PARTS || size === undefined) {
    throw new ProtocolError(
      `S3 ListParts listed a part without a valid PartNumber and Size (PartNumber ${JSON.stringify(childText(element, 'PartNumber'))}, Size ${JSON.stringify(childText(element, 'Size'))})`,
    );
  }
  const part: StoredPart = { index: partNumber - 1, size };
  const etag = childText(element, 'ETag');
  if (etag !== undefined && etag !== '') part.etag = etag;
  const checksum = childText(element, 'ChecksumCRC32');
  if (checksum !== undefined && checksum !== '') part.checksum = checksum;
  return part;
}

function integer(text: string | undefined): number | undefined {
  if (text === undefined || !/^\d+$/.test(text)) return undefined;
  const n = Number(text);
  return Number.isSafeInteger(n) ? n : undefined;
}

/** A composite (checksum-of-checksums) value ends in `-<parts>` and is no digest of the bytes. */
function isFullObjectChecksum(value: string, type: string | undefined): boolean {
  if (type !== undefined) return type === 'FULL_OBJECT';
  return !/-\d+$/.test(value);
}

function unquote(etag: string): string {
  return etag.replace(/^(?:W\/)?"|"$/g, '');
}

async function multipartEtag(etags: string[]): Promise<string | undefined> {
  const joined = new Uint8Array(etags.length * 16);
  for (const [i, etag] of etags.entries()) {
    const hex = unquote(etag).toLowerCase();
    if (!/^[0-9a-f]{32}$/.test(hex)) return undefined;
    for (let j = 0; j < 16; j++)
      joined[i * 16 + j] = Number.parseInt(hex.slice(j * 2, j * 2 + 2), 16);
  }
  return `${(await Checksum.of('md5', joined)).hex()}-${etags.length}`;
}

/** One S3 operation as the session describes it. */
interface S3Request {
  /** The S3 operation name, for error messages. */
  operation: string;
  method: string;
  query: [string, string][];
  headers?: Record<string, string>;
  body?: Uint8Array;
  signal: AbortSignal;
  ok: readonly number[];
  onBytesSent?: ((bytes: number) => void) | undefined;
}

/** An S3 error answer: the status, the `<Error>` Code, and the typed error to throw. */
interface S3Failure {
  status: number;
  code: string | undefined;
  error: HttpError;
}

function withQuery(url: string, query: [string, string][]): string {
  if (query.length === 0) return url;
  const search = query
    .map(([name, value]) =>
      value === '' ? encodeSegment(name) : `${encodeSegment(name)}=${encodeSegment(value)}`,
    )
    .join('&');
  return `${url}?${search}`;
}

/**
 * Signs and sends one request. Resolves with the response when its status
 * is in `ok`, and with the S3 failure otherwise (so callers can tolerate
 * NoSuchUpload or map BadDigest); network failures and aborts still throw
 * `NetworkError` and `UploadAbortedError` from `send()`.
 */
async function attempt(
  client: S3Client,
  req: S3Request,
): Promise<{ response: Response } | { failure: S3Failure }> {
  const url = withQuery(client.objectUrl, req.query);
  const { accessKeyId, secretAccessKey, sessionToken } = await client.credentials();
  // service 's3' makes aws4fetch sign UNSIGNED-PAYLOAD: hashing every part with SHA-256 would cost
  // a second pass over it, and Content-MD5 or CRC32 already guards the bytes.
  const signer = new AwsV4Signer({
    method: req.method,
    url,
    headers: req.headers ?? {},
    accessKeyId,
    secretAccessKey,
    ...(sessionToken === undefined ? {} : { sessionToken }),
    service: 's3',
    region: client.region,
  });
  const signed = await signer.sign();
  const headers: Record<string, string> = {};
  signed.headers.forEach((value, name) => {
    headers[name] = value;
  });
  const response = await send({
    method: req.method,
    url: signed.url.toString(),
    headers,
    body: req.body,
    signal: req.signal,
    ok: ANY_STATUS,
    onBytesSent: req.onBytesSent,
    fetch: client.fetch,
  });
  if (req.ok.includes(response.status)) return { response };
  let text = '';
  try {
    text = await response.text();
  } catch {
    // The status alone still makes a useful error.
  }
  return {
    failure: failureOf(
      req.operation,
      req.method,
      url,
      response.status,
      text,
      response.headers.get('retry-after'),
    ),
  };
}

/** Like {@link attempt}, but throws the failure. */
async function call(client: S3Client, req: S3Request): Promise<Response> {
  const outcome = await attempt(client, req);
  if ('failure' in outcome) throw outcome.failure.error;
  return outcome.response;
}

function failureOf(
  operation: string,
  method: string,
  url: string,
  status: number,
  body: string,
  retryAfter: string | null,
): S3Failure {
  let code: string | undefined;
  let message: string | undefined;
  if (body.trim() !== '') {
    try {
      const root = parseXml(body);
      if (root.name === 'Error') {
        code = childText(root, 'Code');
        message = childText(root, 'Message');
      }
    } catch {
      // Not S3 XML (a proxy's HTML page): quote it below instead.
    }
  }
  let detail: string;
  if (code !== undefined) detail = message ? `${code}: ${message}` : code;
  else {
    const text = body.trim();
    detail = text.length > 200 ? `${text.slice(0, 200)}…` : text;
  }
  const error = new HttpError(method, url, status, `S3 ${operation}${detail ? ` ${detail}` : ''}`, {
    retryable: isRetryableStatus(status) || (code !== undefined && RETRYABLE_CODES.has(code)),
    retryAfterMs: parseRetryAfter(retryAfter),
  });
  return { status, code, error };
}

/** 404 for the upload itself (not for the bucket): it expired, was aborted or completed. */
function isGoneUpload(failure: S3Failure): boolean {
  return failure.status === 404 && failure.code !== 'NoSuchBucket';
}

/**
 * Reads an XML answer whose root must be `expected`. An `<Error>` root in a
 * 200 (CompleteMultipartUpload's late failure) becomes an `HttpError`.
 */
async function readXml(
  response: Response,
  operation: string,
  expected: string,
  request: { method: string; url: string },
): Promise<XmlElement> {
  const text = await response.text();
  let root: XmlElement;
  try {
    root = parseXml(text);
  } catch (cause) {
    throw new ProtocolError(`S3 ${operation} answered with malformed XML`, { cause });
  }
  if (root.name === 'Error') {
    throw failureOf(operation, request.method, request.url, response.status, text, null).error;
  }
  if (root.name !== expected) {
    throw new ProtocolError(
      `S3 ${operation} answered with <${root.name}> where <${expected}> was expected`,
    );
  }
  return root;
}

/** Frees the connection of a response whose body we do not need. */
async function discard(response: Response): Promise<void> {
  try {
    await response.arrayBuffer();
  } catch {
    // Nothing to free.
  }
}
