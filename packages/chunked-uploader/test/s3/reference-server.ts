/**
 * A small S3 multipart server written from the S3 API Reference, for what
 * s3rver 3.7 does not do: it verifies Signature Version 4, checks
 * Content-MD5 and x-amz-checksum-crc32 (BadDigest), lists parts
 * (ListParts, with max-parts/part-number-marker paging), aborts uploads
 * (AbortMultipartUpload), validates the CompleteMultipartUpload part list
 * (InvalidPart, InvalidPartOrder, EntityTooSmall), computes S3's multipart
 * ETag and full-object/composite CRC32, and can inject faults (an error
 * status, an `<Error>` inside a 200, a response lost after the work is done)
 * and hold requests until several are in flight (to prove parallelism).
 *
 * Published behavior it follows (docs.aws.amazon.com/AmazonS3/latest/API/):
 * API_CreateMultipartUpload, API_UploadPart, API_ListParts,
 * API_CompleteMultipartUpload, API_AbortMultipartUpload, API_GetObject,
 * ErrorResponses, sig-v4-header-based-auth ("Signature Calculations for the
 * Authorization Header"), and the user guide's "Checking object integrity".
 *
 * Path-style only, in memory, one region. Not a product: a test peer.
 */
import { createHash, createHmac, randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { crc32 } from 'node:zlib';

/** The S3 operations this server knows. */
export type Operation =
  | 'CreateMultipartUpload'
  | 'UploadPart'
  | 'ListParts'
  | 'CompleteMultipartUpload'
  | 'AbortMultipartUpload'
  | 'GetObject'
  | 'HeadObject';

/** One request as the server saw it (after its body arrived). */
export interface RecordedRequest {
  operation: Operation | undefined;
  method: string;
  path: string;
  query: URLSearchParams;
  headers: Record<string, string | string[] | undefined>;
  bodyLength: number;
}

/** A one-shot fault for the next request of `operation` (matching `when`, if given). */
export type Fault = {
  operation: Operation;
  when?: (request: RecordedRequest) => boolean;
} & (
  | {
      kind: 'error';
      status: number;
      code: string;
      message: string;
      headers?: Record<string, string>;
    }
  /** Answer 200 with an `<Error>` body, as CompleteMultipartUpload may. */
  | { kind: 'error-in-200'; code: string; message: string }
  /** Do the work, then destroy the connection before answering. */
  | { kind: 'drop-after' }
);

/** Options of {@link startReferenceS3}. */
export interface ReferenceS3Options {
  /** Region the server signs for. @default 'us-east-1' */
  region?: string;
  /** Known credentials. @default [{ accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'secret' }] */
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string }[];
  /** Buckets that exist. @default ['test'] */
  buckets?: string[];
  /** ListParts page size when the request has no max-parts. @default 1000 (S3's) */
  listPageSize?: number;
}

interface StoredUploadPart {
  bytes: Buffer;
  etag: string;
  crc32: string;
  md5: Buffer;
}

interface Upload {
  bucket: string;
  key: string;
  contentType: string | undefined;
  metadata: Record<string, string>;
  checksumAlgorithm: 'CRC32' | undefined;
  checksumType: 'COMPOSITE' | 'FULL_OBJECT' | undefined;
  parts: Map<number, StoredUploadPart>;
}

interface StoredObject {
  bytes: Buffer;
  etag: string;
  contentType: string | undefined;
  metadata: Record<string, string>;
  checksumCrc32: string | undefined;
  checksumType: string | undefined;
}

class S3Error extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

const MIN_PART_SIZE = 5 * 2 ** 20;
const XMLNS = 'http://s3.amazonaws.com/doc/2006-03-01/';

/** The running server. */
export interface ReferenceS3 {
  /** `http://127.0.0.1:<port>` */
  readonly endpoint: string;
  /** Every request, in arrival order. */
  readonly requests: RecordedRequest[];
  /** Pending one-shot faults. */
  readonly faults: Fault[];
  /** Multipart uploads in progress, by upload ID. */
  readonly uploads: Map<string, Upload>;
  /** Stored objects, by `bucket/key`. */
  readonly objects: Map<string, StoredObject>;
  /** ListParts page size when the request has no max-parts. */
  listPageSize: number;
  /**
   * Holds answers to `operation` until `count` such requests have arrived,
   * then answers them all: a client that sends one at a time never gets there.
   */
  holdUntil(operation: Operation, count: number): void;
  /** Stops the server. */
  close(): Promise<void>;
}

/**
 * Starts the reference server on 127.0.0.1, port 0.
 */
export async function startReferenceS3(options: ReferenceS3Options = {}): Promise<ReferenceS3> {
  const region = options.region ?? 'us-east-1';
  const credentials = options.credentials ?? [
    { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'secret' },
  ];
  const buckets = new Set(options.buckets ?? ['test']);
  const sockets = new Set<Socket>();
  let barrier: { operation: Operation; count: number; waiting: (() => void)[] } | undefined;

  const state: Omit<ReferenceS3, 'endpoint' | 'close' | 'holdUntil'> = {
    requests: [],
    faults: [],
    uploads: new Map(),
    objects: new Map(),
    listPageSize: options.listPageSize ?? 1000,
  };

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = await readBody(req);
    const url = new URL(req.url ?? '/', 'http://placeholder');
    const rawPath = url.pathname;
    const segments = rawPath.split('/').slice(1).map(decodeURIComponent);
    const bucket = segments[0] ?? '';
    const key = segments.slice(1).join('/');
    const query = url.searchParams;
    const operation = operationOf(req.method ?? 'GET', query, key);
    const recorded: RecordedRequest = {
      operation,
      method: req.method ?? 'GET',
      path: rawPath,
      query,
      headers: { ...req.headers },
      bodyLength: body.length,
    };
    state.requests.push(recorded);

    if (barrier !== undefined && operation === barrier.operation) {
      const gate = barrier;
      await new Promise<void>((resolve) => {
        gate.waiting.push(resolve);
        if (gate.waiting.length >= gate.count) {
          if (barrier === gate) barrier = undefined;
          for (const release of gate.waiting) release();
        }
      });
    }

    const faultIndex = state.faults.findIndex(
      (fault) =>
        fault.operation === operation && (fault.when === undefined || fault.when(recorded)),
    );
    const fault = faultIndex === -1 ? undefined : state.faults.splice(faultIndex, 1)[0];
    if (fault?.kind === 'error') {
      sendError(res, new S3Error(fault.status, fault.code, fault.message), fault.headers);
      return;
    }
    if (fault?.kind === 'error-in-200') {
      // S3 writes whitespace while it works, then the outcome.
      res.writeHead(200, { 'content-type': 'application/xml' });
      res.end(`   \n${errorXml(fault.code, fault.message)}`);
      return;
    }

    try {
      verifySignature(req, rawPath, query, body, region, credentials);
      if (!buckets.has(bucket))
        throw new S3Error(404, 'NoSuchBucket', 'The specified bucket does not exist');
      if (operation === undefined)
        throw new S3Error(
          405,
          'MethodNotAllowed',
          'The specified method is not allowed against this resource.',
        );
      const answer = route(operation, bucket, key, query, req, body);
      if (fault?.kind === 'drop-after') {
        req.socket.destroy();
        return;
      }
      res.writeHead(answer.status, answer.headers);
      res.end(answer.body);
    } catch (err) {
      if (err instanceof S3Error) sendError(res, err);
      else {
        sendError(res, new S3Error(500, 'InternalError', String(err)));
      }
    }
  }

  function route(
    operation: Operation,
    bucket: string,
    key: string,
    query: URLSearchParams,
    req: IncomingMessage,
    body: Buffer,
  ): { status: number; headers: Record<string, string>; body?: string | Buffer } {
    switch (operation) {
      case 'CreateMultipartUpload': {
        const algorithm = header(req, 'x-amz-checksum-algorithm');
        if (algorithm !== undefined && algorithm.toUpperCase() !== 'CRC32') {
          throw new S3Error(
            400,
            'InvalidRequest',
            `This server only knows CRC32, not ${algorithm}`,
          );
        }
        const type = header(req, 'x-amz-checksum-type');
        if (type !== undefined && type !== 'COMPOSITE' && type !== 'FULL_OBJECT') {
          throw new S3Error(400, 'InvalidRequest', `Invalid x-amz-checksum-type ${type}`);
        }
        const uploadId = `${randomBytes(12).toString('base64url')}.~_${randomBytes(6).toString('hex')}`;
        state.uploads.set(uploadId, {
          bucket,
          key,
          contentType: header(req, 'content-type'),
          metadata: metadataOf(req),
          checksumAlgorithm: algorithm === undefined ? undefined : 'CRC32',
          checksumType:
            algorithm === undefined
              ? undefined
              : ((type as 'COMPOSITE' | 'FULL_OBJECT' | undefined) ?? 'COMPOSITE'),
          parts: new Map(),
        });
        const headers: Record<string, string> = { 'content-type': 'application/xml' };
        if (algorithm !== undefined) headers['x-amz-checksum-algorithm'] = 'CRC32';
        return {
          status: 200,
          headers,
          body: xml(
            `<InitiateMultipartUploadResult xmlns="${XMLNS}"><Bucket>${esc(bucket)}</Bucket><Key>${esc(key)}</Key><UploadId>${esc(uploadId)}</UploadId></InitiateMultipartUploadResult>`,
          ),
        };
      }
      case 'UploadPart': {
        const upload = uploadOf(query, bucket, key);
        const partNumber = Number(query.get('partNumber'));
        if (!Number.isInteger(partNumber) || partNumber < 1 || partNumber > 10_000) {
          throw new S3Error(
            400,
            'InvalidArgument',
            'Part number must be an integer between 1 and 10000, inclusive',
          );
        }
        const md5 = createHash('md5').update(body).digest();
        const contentMd5 = header(req, 'content-md5');
        if (contentMd5 !== undefined) {
          const given = Buffer.from(contentMd5, 'base64');
          if (given.length !== 16)
            throw new S3Error(400, 'InvalidDigest', 'The Content-MD5 you specified was invalid.');
          if (!given.equals(md5))
            throw new S3Error(
              400,
              'BadDigest',
              'The Content-MD5 you specified did not match what we received.',
            );
        }
        const crc = crc32Base64(body);
        const givenCrc = header(req, 'x-amz-checksum-crc32');
        if (givenCrc !== undefined && givenCrc !== crc) {
          throw new S3Error(
            400,
            'BadDigest',
            'The CRC32 you specified did not match the calculated checksum.',
          );
        }
        const sdkAlgorithm = header(req, 'x-amz-sdk-checksum-algorithm');
        if (sdkAlgorithm !== undefined && givenCrc === undefined) {
          throw new S3Error(
            400,
            'InvalidRequest',
            'x-amz-sdk-checksum-algorithm specified, but no corresponding x-amz-checksum-* or x-amz-trailer headers were found.',
          );
        }
        const etag = `"${md5.toString('hex')}"`;
        upload.parts.set(partNumber, { bytes: body, etag, crc32: crc, md5 });
        const headers: Record<string, string> = { etag };
        if (upload.checksumAlgorithm === 'CRC32' || givenCrc !== undefined)
          headers['x-amz-checksum-crc32'] = crc;
        return { status: 200, headers };
      }
      case 'ListParts': {
        const uploadId = query.get('uploadId') ?? '';
        const upload = uploadOf(query, bucket, key);
        const maxParts = query.has('max-parts')
          ? Number(query.get('max-parts'))
          : state.listPageSize;
        const marker = Number(query.get('part-number-marker') ?? '0');
        const numbers = [...upload.parts.keys()].sort((a, b) => a - b).filter((n) => n > marker);
        const page = numbers.slice(0, maxParts);
        const truncated = numbers.length > page.length;
        let parts = '';
        for (const n of page) {
          const part = upload.parts.get(n)!;
          parts +=
            `<Part><PartNumber>${n}</PartNumber><LastModified>2025-01-01T00:00:00.000Z</LastModified>` +
            `<ETag>${esc(part.etag)}</ETag><Size>${part.bytes.length}</Size>` +
            (upload.checksumAlgorithm === 'CRC32'
              ? `<ChecksumCRC32>${part.crc32}</ChecksumCRC32>`
              : '') +
            '</Part>';
        }
        return {
          status: 200,
          headers: { 'content-type': 'application/xml' },
          body: xml(
            `<ListPartsResult xmlns="${XMLNS}"><Bucket>${esc(bucket)}</Bucket><Key>${esc(key)}</Key><UploadId>${esc(uploadId)}</UploadId>` +
              `<PartNumberMarker>${marker}</PartNumberMarker>` +
              (truncated ? `<NextPartNumberMarker>${page.at(-1)}</NextPartNumberMarker>` : '') +
              `<MaxParts>${maxParts}</MaxParts><IsTruncated>${truncated}</IsTruncated>${parts}</ListPartsResult>`,
          ),
        };
      }
      case 'CompleteMultipartUpload': {
        const uploadId = query.get('uploadId') ?? '';
        const upload = uploadOf(query, bucket, key);
        const contentMd5 = header(req, 'content-md5');
        if (
          contentMd5 !== undefined &&
          Buffer.from(contentMd5, 'base64').compare(createHash('md5').update(body).digest()) !== 0
        ) {
          throw new S3Error(
            400,
            'BadDigest',
            'The Content-MD5 you specified did not match what we received.',
          );
        }
        const listed = parseCompleteBody(body.toString('utf8'));
        if (listed.length === 0) {
          throw new S3Error(
            400,
            'MalformedXML',
            'The XML you provided was not well-formed or did not validate against our published schema',
          );
        }
        const chosen: StoredUploadPart[] = [];
        let previous = 0;
        for (const [i, item] of listed.entries()) {
          if (item.partNumber <= previous) {
            throw new S3Error(
              400,
              'InvalidPartOrder',
              'The list of parts was not in ascending order. Parts must be ordered by part number.',
            );
          }
          previous = item.partNumber;
          const part = upload.parts.get(item.partNumber);
          if (
            part === undefined ||
            part.etag.replaceAll('"', '') !== item.etag.replaceAll('"', '')
          ) {
            throw new S3Error(
              400,
              'InvalidPart',
              "One or more of the specified parts could not be found. The part might not have been uploaded, or the specified entity tag might not have matched the part's entity tag.",
            );
          }
          if (upload.checksumAlgorithm === 'CRC32' && item.checksumCrc32 !== part.crc32) {
            throw new S3Error(
              400,
              'InvalidPart',
              `The upload was created using a crc32 checksum. The complete request must include the checksum for each part. It was missing for part ${item.partNumber} in the request.`,
            );
          }
          if (i < listed.length - 1 && part.bytes.length < MIN_PART_SIZE) {
            throw new S3Error(
              400,
              'EntityTooSmall',
              'Your proposed upload is smaller than the minimum allowed object size.',
            );
          }
          chosen.push(part);
        }
        const bytes = Buffer.concat(chosen.map((part) => part.bytes));
        const etag = `"${createHash('md5')
          .update(Buffer.concat(chosen.map((part) => part.md5)))
          .digest('hex')}-${chosen.length}"`;
        let checksumCrc32: string | undefined;
        if (upload.checksumAlgorithm === 'CRC32') {
          checksumCrc32 =
            upload.checksumType === 'FULL_OBJECT'
              ? crc32Base64(bytes)
              : `${crc32Base64(Buffer.concat(chosen.map((part) => Buffer.from(part.crc32, 'base64'))))}-${chosen.length}`;
        }
        state.objects.set(`${bucket}/${key}`, {
          bytes,
          etag,
          contentType: upload.contentType,
          metadata: upload.metadata,
          checksumCrc32,
          checksumType: upload.checksumType,
        });
        state.uploads.delete(uploadId);
        const location = `http://${header(req, 'host')}/${encodeURIComponent(bucket)}/${key.split('/').map(encodeURIComponent).join('/')}`;
        return {
          status: 200,
          headers: { 'content-type': 'application/xml' },
          // Leading whitespace: S3 keeps a slow completion alive that way.
          body: `  \n${xml(
            `<CompleteMultipartUploadResult xmlns="${XMLNS}"><Location>${esc(location)}</Location><Bucket>${esc(bucket)}</Bucket><Key>${esc(key)}</Key><ETag>${esc(etag)}</ETag>` +
              (checksumCrc32 === undefined
                ? ''
                : `<ChecksumCRC32>${checksumCrc32}</ChecksumCRC32><ChecksumType>${upload.checksumType}</ChecksumType>`) +
              '</CompleteMultipartUploadResult>',
          )}`,
        };
      }
      case 'AbortMultipartUpload': {
        uploadOf(query, bucket, key);
        state.uploads.delete(query.get('uploadId') ?? '');
        return { status: 204, headers: {} };
      }
      case 'GetObject':
      case 'HeadObject': {
        const object = state.objects.get(`${bucket}/${key}`);
        if (object === undefined)
          throw new S3Error(404, 'NoSuchKey', 'The specified key does not exist.');
        const headers: Record<string, string> = {
          etag: object.etag,
          'content-length': String(object.bytes.length),
        };
        if (object.contentType !== undefined) headers['content-type'] = object.contentType;
        for (const [name, value] of Object.entries(object.metadata))
          headers[`x-amz-meta-${name}`] = value;
        if (
          object.checksumCrc32 !== undefined &&
          header(req, 'x-amz-checksum-mode') === 'ENABLED'
        ) {
          headers['x-amz-checksum-crc32'] = object.checksumCrc32;
          if (object.checksumType !== undefined)
            headers['x-amz-checksum-type'] = object.checksumType;
        }
        return { status: 200, headers, body: operation === 'GetObject' ? object.bytes : '' };
      }
    }
  }

  function uploadOf(query: URLSearchParams, bucket: string, key: string): Upload {
    const upload = state.uploads.get(query.get('uploadId') ?? '');
    if (upload === undefined || upload.bucket !== bucket || upload.key !== key) {
      throw new S3Error(
        404,
        'NoSuchUpload',
        'The specified upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed.',
      );
    }
    return upload;
  }

  const server: Server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (!res.headersSent) sendError(res, new S3Error(500, 'InternalError', String(err)));
    });
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  return Object.assign(state, {
    endpoint: `http://127.0.0.1:${port}`,
    holdUntil(operation: Operation, count: number) {
      barrier = { operation, count, waiting: [] };
    },
    close: () =>
      new Promise<void>((resolve, reject) => {
        for (const socket of sockets) socket.destroy();
        server.close((err) => (err ? reject(err) : resolve()));
      }),
  });
}

function operationOf(method: string, query: URLSearchParams, key: string): Operation | undefined {
  if (key === '') return undefined;
  if (method === 'POST' && query.has('uploads')) return 'CreateMultipartUpload';
  if (method === 'PUT' && query.has('uploadId') && query.has('partNumber')) return 'UploadPart';
  if (method === 'GET' && query.has('uploadId')) return 'ListParts';
  if (method === 'POST' && query.has('uploadId')) return 'CompleteMultipartUpload';
  if (method === 'DELETE' && query.has('uploadId')) return 'AbortMultipartUpload';
  if (method === 'GET' && [...query.keys()].length === 0) return 'GetObject';
  if (method === 'HEAD' && [...query.keys()].length === 0) return 'HeadObject';
  return undefined;
}

function header(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value.join(',') : value;
}

function metadataOf(req: IncomingMessage): Record<string, string> {
  const metadata: Record<string, string> = {};
  for (const [name, value] of Object.entries(req.headers)) {
    if (name.startsWith('x-amz-meta-') && typeof value === 'string')
      metadata[name.slice(11)] = value;
  }
  return metadata;
}

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

function crc32Base64(bytes: Buffer): string {
  const out = Buffer.alloc(4);
  out.writeUInt32BE(crc32(bytes));
  return out.toString('base64');
}

function esc(text: string): string {
  return text
    .replaceAll('&', '&amp;')
    .replaceAll('<', '&lt;')
    .replaceAll('>', '&gt;')
    .replaceAll('"', '&quot;')
    .replaceAll("'", '&apos;');
}

function unesc(text: string): string {
  return text
    .replaceAll('&quot;', '"')
    .replaceAll('&apos;', "'")
    .replaceAll('&lt;', '<')
    .replaceAll('&gt;', '>')
    .replaceAll('&#34;', '"')
    .replaceAll('&amp;', '&');
}

function xml(body: string): string {
  return `<?xml version="1.0" encoding="UTF-8"?>\n${body}`;
}

function errorXml(code: string, message: string): string {
  return xml(
    `<Error><Code>${esc(code)}</Code><Message>${esc(message)}</Message><RequestId>REQ</RequestId></Error>`,
  );
}

function sendError(res: ServerResponse, err: S3Error, headers: Record<string, string> = {}): void {
  res.writeHead(err.status, { 'content-type': 'application/xml', ...headers });
  res.end(errorXml(err.code, err.message));
}

/** The request's parts, read with patterns independent of the client's XML parser. */
function parseCompleteBody(
  text: string,
): { partNumber: number; etag: string; checksumCrc32: string | undefined }[] {
  if (!/<CompleteMultipartUpload[\s>]/.test(text)) return [];
  const parts: { partNumber: number; etag: string; checksumCrc32: string | undefined }[] = [];
  for (const match of text.matchAll(/<Part>([\s\S]*?)<\/Part>/g)) {
    const inner = match[1] ?? '';
    const partNumber = Number(/<PartNumber>\s*(\d+)\s*<\/PartNumber>/.exec(inner)?.[1]);
    const etag = /<ETag>([\s\S]*?)<\/ETag>/.exec(inner)?.[1];
    const crc = /<ChecksumCRC32>([\s\S]*?)<\/ChecksumCRC32>/.exec(inner)?.[1];
    if (!Number.isInteger(partNumber) || etag === undefined) {
      throw new S3Error(
        400,
        'MalformedXML',
        'The XML you provided was not well-formed or did not validate against our published schema',
      );
    }
    parts.push({
      partNumber,
      etag: unesc(etag.trim()),
      checksumCrc32: crc === undefined ? undefined : unesc(crc.trim()),
    });
  }
  return parts;
}

// --- Signature Version 4, as "Signature Calculations for the Authorization Header" describes it ---

/** UriEncode from the SigV4 docs: every byte but A-Z a-z 0-9 - _ . ~ is %XX (uppercase hex). */
function uriEncode(text: string): string {
  let out = '';
  for (const byte of Buffer.from(text, 'utf8')) {
    const c = String.fromCharCode(byte);
    out += /[A-Za-z0-9\-_.~]/.test(c) ? c : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

function hmac(key: Buffer | string, data: string): Buffer {
  return createHmac('sha256', key).update(data, 'utf8').digest();
}

function verifySignature(
  req: IncomingMessage,
  rawPath: string,
  query: URLSearchParams,
  body: Buffer,
  region: string,
  credentials: { accessKeyId: string; secretAccessKey: string; sessionToken?: string }[],
): void {
  const authorization = header(req, 'authorization');
  if (authorization === undefined) throw new S3Error(403, 'AccessDenied', 'Access Denied');
  const match =
    /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/([^/]+)\/aws4_request, ?SignedHeaders=([^,]+), ?Signature=([0-9a-f]{64})$/.exec(
      authorization,
    );
  if (match === null)
    throw new S3Error(
      400,
      'AuthorizationHeaderMalformed',
      'The authorization header is malformed.',
    );
  const [, accessKeyId, date, scopeRegion, service, signedHeadersText, signature] =
    match as unknown as string[];
  const account = credentials.find((c) => c.accessKeyId === accessKeyId);
  if (account === undefined) {
    throw new S3Error(
      403,
      'InvalidAccessKeyId',
      'The AWS Access Key Id you provided does not exist in our records.',
    );
  }
  if (scopeRegion !== region || service !== 's3') {
    throw new S3Error(
      400,
      'AuthorizationHeaderMalformed',
      `The authorization header is malformed; the region '${scopeRegion}' is wrong; expecting '${region}'`,
    );
  }
  const amzDate = header(req, 'x-amz-date');
  if (amzDate === undefined || !amzDate.startsWith(date ?? '')) {
    throw new S3Error(
      403,
      'AccessDenied',
      'AWS authentication requires a valid Date or x-amz-date header',
    );
  }
  const payloadHash = header(req, 'x-amz-content-sha256');
  if (payloadHash === undefined) {
    throw new S3Error(
      400,
      'InvalidRequest',
      'Missing required header for this request: x-amz-content-sha256',
    );
  }
  if (
    payloadHash !== 'UNSIGNED-PAYLOAD' &&
    payloadHash !== createHash('sha256').update(body).digest('hex')
  ) {
    throw new S3Error(
      400,
      'XAmzContentSHA256Mismatch',
      "The provided 'x-amz-content-sha256' header does not match what was computed.",
    );
  }
  const signedHeaders = (signedHeadersText ?? '').split(';');
  if (!signedHeaders.includes('host'))
    throw new S3Error(403, 'AccessDenied', 'host must be a signed header');
  for (const name of Object.keys(req.headers)) {
    if ((name.startsWith('x-amz-') || name === 'content-md5') && !signedHeaders.includes(name)) {
      throw new S3Error(
        403,
        'AccessDenied',
        `There were headers present in the request which were not signed: ${name}`,
      );
    }
  }
  if (
    account.sessionToken !== undefined &&
    header(req, 'x-amz-security-token') !== account.sessionToken
  ) {
    throw new S3Error(403, 'InvalidToken', 'The provided token is malformed or otherwise invalid.');
  }
  const canonicalUri = rawPath
    .split('/')
    .map((segment) => uriEncode(decodeURIComponent(segment)))
    .join('/');
  const canonicalQuery = [...query.entries()]
    .map(([name, value]) => [uriEncode(name), uriEncode(value)] as const)
    .sort(([a, av], [b, bv]) => (a < b ? -1 : a > b ? 1 : av < bv ? -1 : av > bv ? 1 : 0))
    .map(([name, value]) => `${name}=${value}`)
    .join('&');
  const canonicalHeaders = signedHeaders
    .map((name) => `${name}:${(header(req, name) ?? '').trim().replace(/\s+/g, ' ')}\n`)
    .join('');
  const canonicalRequest = [
    req.method,
    canonicalUri,
    canonicalQuery,
    canonicalHeaders,
    signedHeaders.join(';'),
    payloadHash,
  ].join('\n');
  const scope = `${date}/${region}/s3/aws4_request`;
  const stringToSign = [
    'AWS4-HMAC-SHA256',
    amzDate,
    scope,
    createHash('sha256').update(canonicalRequest, 'utf8').digest('hex'),
  ].join('\n');
  const signingKey = hmac(
    hmac(hmac(hmac(`AWS4${account.secretAccessKey}`, date ?? ''), region), 's3'),
    'aws4_request',
  );
  const expected = createHmac('sha256', signingKey).update(stringToSign, 'utf8').digest('hex');
  if (expected !== signature) {
    throw new S3Error(
      403,
      'SignatureDoesNotMatch',
      'The request signature we calculated does not match the signature you provided. Check your key and signing method.',
    );
  }
}
