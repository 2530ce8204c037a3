/**
 * A small Cloud Storage resumable-upload server for tests, written from
 * Google's published documents, not from any client's behaviour:
 *
 * - "Perform resumable uploads"
 *   (https://cloud.google.com/storage/docs/performing-resumable-uploads)
 * - "Resumable uploads" (https://cloud.google.com/storage/docs/resumable-uploads)
 * - "Data validation and change detection"
 *   (https://cloud.google.com/storage/docs/data-validation)
 *
 * Each rule it enforces cites the document in a comment. Where the documents
 * leave a choice open, the comment says what this server chose.
 */
import { createHash, randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** "Chunk size … should be a multiple of 256 KiB (256 x 1024 bytes), unless it's the last chunk". */
export const GCS_CHUNK_MULTIPLE = 256 * 1024;

/** One request as the server saw it, for assertions. */
export interface RecordedRequest {
  method: string;
  uploadId: string | undefined;
  contentRange: string | undefined;
  googHash: string | undefined;
  authorization: string | undefined;
  bodyLength: number;
  status: number;
}

/** A failure to inject into the next session request. */
export interface InjectedFailure {
  status: number;
  retryAfter?: string;
}

/** One resumable session. */
export interface GcsSession {
  readonly id: string;
  readonly bucket: string;
  readonly name: string;
  /** The JSON resource sent when the session was started (contentType, metadata). */
  readonly resource: Record<string, unknown>;
  /** Bytes persisted so far. */
  readonly stored: Buffer[];
  storedLength: number;
  /** The total, once a request declared it. */
  total: number | undefined;
  /** The finished object's resource, once the upload completed. */
  object: Record<string, unknown> | undefined;
  /** Set by `expire` (404 or 410) or by a DELETE (499). */
  goneStatus: number | undefined;
}

/** The running server and the switches tests flip. */
export interface GcsResumableServer {
  /** `http://127.0.0.1:<port>`: pass as the protocol's `endpoint`. */
  readonly endpoint: string;
  readonly sessions: Map<string, GcsSession>;
  readonly requests: RecordedRequest[];
  /** When set, initiation requires `Authorization: Bearer <token>`. */
  requiredToken: string | undefined;
  /** Failures answered to the next session requests (PUT/DELETE), in order, before anything is stored. */
  readonly failNext: InjectedFailure[];
  /** When set, the next chunk persists only this many of its bytes (then resets). */
  acceptPartialNext: number | undefined;
  /** When set, the next chunk is stored with one byte flipped (corruption in transit). */
  corruptNext: boolean;
  /** Finish objects the XML API way: empty body, `x-goog-hash` and `ETag` headers. */
  xmlFinalize: boolean;
  /** The session whose URI this is. */
  session(uri: string): GcsSession;
  /** The persisted bytes of a session, joined. */
  bytes(uri: string): Buffer;
  /** Makes a session expire: later requests get `status` (the documents name 404 and 410). */
  expire(uri: string, status?: 404 | 410): void;
  close(): Promise<void>;
}

const UPLOAD_PATH = /^\/upload\/storage\/v1\/b\/([^/]+)\/o$/;

/**
 * Starts the server on 127.0.0.1, port 0.
 *
 * @example
 * ```ts
 * const server = await startGcsResumableServer();
 * const protocol = gcs({ endpoint: server.endpoint, bucket: 'b', name: 'o' });
 * await server.close();
 * ```
 */
export async function startGcsResumableServer(): Promise<GcsResumableServer> {
  const sessions = new Map<string, GcsSession>();
  const requests: RecordedRequest[] = [];
  const state = {
    requiredToken: undefined as string | undefined,
    failNext: [] as InjectedFailure[],
    acceptPartialNext: undefined as number | undefined,
    corruptNext: false,
    xmlFinalize: false,
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      if (!res.headersSent) res.writeHead(500).end(String(error));
    });
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = await readBody(req);
    const url = new URL(req.url ?? '/', 'http://localhost');
    const uploadId = url.searchParams.get('upload_id') ?? undefined;
    const record: RecordedRequest = {
      method: req.method ?? '',
      uploadId,
      contentRange: header(req, 'content-range'),
      googHash: header(req, 'x-goog-hash'),
      authorization: header(req, 'authorization'),
      bodyLength: body.length,
      status: 0,
    };
    requests.push(record);
    const reply = (status: number, headers: Record<string, string> = {}, text = '') => {
      record.status = status;
      res.writeHead(status, statusText(status), headers).end(text);
    };
    const match = UPLOAD_PATH.exec(url.pathname);
    if (match === null || url.searchParams.get('uploadType') !== 'resumable') {
      reply(404, {}, 'not found');
      return;
    }
    if (uploadId === undefined) {
      if (req.method !== 'POST') {
        reply(405);
        return;
      }
      initiate(req, url, decodeURIComponent(match[1]!), body, reply);
      return;
    }
    const session = sessions.get(uploadId);
    if (session === undefined) {
      reply(404, {}, 'no such upload');
      return;
    }
    if (session.goneStatus !== undefined) {
      // "Resumable upload" page: a session expires after a week; afterwards
      // requests fail with 404 or 410 and the upload must start over. After
      // a cancel, "subsequent attempts to query or upload … result in a 4xx".
      reply(session.goneStatus, {}, 'upload session is no longer active');
      return;
    }
    const failure = state.failNext.shift();
    if (failure !== undefined) {
      reply(
        failure.status,
        failure.retryAfter ? { 'retry-after': failure.retryAfter } : {},
        'injected',
      );
      return;
    }
    if (req.method === 'DELETE') {
      // "Cancel an upload": DELETE on the session URI; "if successful, the
      // response contains a 499 status code".
      session.goneStatus = 499;
      reply(499);
      return;
    }
    if (req.method !== 'PUT') {
      reply(405);
      return;
    }
    put(req, session, body, reply);
  }

  /**
   * "Initiate a resumable upload session": POST to
   * `/upload/storage/v1/b/BUCKET/o?uploadType=resumable&name=OBJECT`, an
   * optional JSON body of object metadata; a 200 whose `Location` header is
   * the session URI.
   */
  function initiate(
    req: IncomingMessage,
    url: URL,
    bucket: string,
    body: Buffer,
    reply: (status: number, headers?: Record<string, string>, text?: string) => void,
  ): void {
    if (
      state.requiredToken !== undefined &&
      header(req, 'authorization') !== `Bearer ${state.requiredToken}`
    ) {
      reply(
        401,
        {},
        jsonError(401, 'Anonymous caller does not have storage.objects.create access.'),
      );
      return;
    }
    let resource: Record<string, unknown> = {};
    if (body.length > 0) {
      try {
        resource = JSON.parse(body.toString('utf8')) as Record<string, unknown>;
      } catch {
        reply(400, {}, jsonError(400, 'Parse Error'));
        return;
      }
    }
    // "OBJECT_NAME … not required if you included name in the object metadata file".
    const name =
      url.searchParams.get('name') ?? (typeof resource.name === 'string' ? resource.name : '');
    if (name === '') {
      reply(400, {}, jsonError(400, 'Required object name'));
      return;
    }
    // The optional X-Upload-Content-Type header sets the type when the body does not.
    const type = header(req, 'x-upload-content-type');
    if (resource.contentType === undefined && type !== undefined) resource.contentType = type;
    const declared = header(req, 'x-upload-content-length');
    const id = randomUUID().replaceAll('-', '');
    sessions.set(id, {
      id,
      bucket,
      name,
      resource,
      stored: [],
      storedLength: 0,
      total: declared === undefined ? undefined : Number(declared),
      object: undefined,
      goneStatus: undefined,
    });
    const location = `${endpoint}/upload/storage/v1/b/${encodeURIComponent(bucket)}/o?uploadType=resumable&name=${encodeURIComponent(name)}&upload_id=${id}`;
    reply(200, { location, 'content-length': '0' });
  }

  function put(
    req: IncomingMessage,
    session: GcsSession,
    body: Buffer,
    reply: (status: number, headers?: Record<string, string>, text?: string) => void,
  ): void {
    const range = parseContentRange(header(req, 'content-range'));
    if (range === undefined) {
      reply(
        400,
        {},
        jsonError(400, `Failed to parse Content-Range header: ${header(req, 'content-range')}`),
      );
      return;
    }
    if (range.total !== undefined) {
      if (session.total !== undefined && session.total !== range.total) {
        reply(
          400,
          {},
          jsonError(400, `total size changed from ${session.total} to ${range.total}`),
        );
        return;
      }
      session.total = range.total;
    }
    if (session.object !== undefined) {
      finished(session, reply);
      return;
    }
    if (range.first === undefined) {
      // "Check the status of a resumable upload": an empty PUT with
      // `Content-Range: bytes */OBJECT_SIZE` (or `*/*`). All bytes in and the
      // total known: the object is created by this request.
      if (body.length !== 0) {
        reply(400, {}, jsonError(400, 'a status check carries no body'));
        return;
      }
      if (session.total !== undefined && session.storedLength === session.total) {
        finalize(req, session, reply);
        return;
      }
      incomplete(session, reply);
      return;
    }
    const length = range.last! - range.first + 1;
    if (body.length !== length) {
      reply(
        400,
        {},
        jsonError(400, `Content-Range covers ${length} bytes but the body has ${body.length}`),
      );
      return;
    }
    if (range.first !== session.storedLength) {
      // The documents say to continue from the byte after the Range's end;
      // this server refuses any other start (an overlap included) with 400.
      reply(
        400,
        {},
        jsonError(
          400,
          `Invalid request. According to the Content-Range header, the upload offset is ${range.first} byte(s), which does not match the ${session.storedLength} byte(s) already uploaded.`,
        ),
      );
      return;
    }
    const end = range.first + length;
    const final = session.total !== undefined && end === session.total;
    if (session.total !== undefined && end > session.total) {
      reply(
        400,
        {},
        jsonError(400, `chunk ends at ${end}, past the declared total ${session.total}`),
      );
      return;
    }
    if (!final && length % GCS_CHUNK_MULTIPLE !== 0) {
      // "The chunk size should be a multiple of 256 KiB … unless it's the
      // last chunk that completes the upload." This server refuses others.
      reply(
        400,
        {},
        jsonError(
          400,
          `Invalid request. The chunk size ${length} is not a multiple of 256 KiB (262144 bytes).`,
        ),
      );
      return;
    }
    let accepted = body;
    if (state.acceptPartialNext !== undefined) {
      // "Cloud Storage might not persist all the bytes you send in a request":
      // the 308's Range then ends before the chunk does, and the client
      // resumes from there.
      accepted = body.subarray(0, Math.min(state.acceptPartialNext, body.length));
      state.acceptPartialNext = undefined;
    }
    if (state.corruptNext && accepted.length > 0) {
      accepted = Buffer.from(accepted);
      accepted[0]! ^= 0xff;
      state.corruptNext = false;
    }
    session.stored.push(Buffer.from(accepted));
    session.storedLength += accepted.length;
    if (final && session.storedLength === session.total) {
      finalize(req, session, reply);
      return;
    }
    // "308 Resume Incomplete … Range: bytes=0-LAST_BYTE".
    incomplete(session, reply);
  }

  /** "If the response does not include a Range header, Cloud Storage has not received any bytes." */
  function incomplete(
    session: GcsSession,
    reply: (status: number, headers?: Record<string, string>, text?: string) => void,
  ): void {
    const headers: Record<string, string> = { 'content-length': '0' };
    if (session.storedLength > 0) headers.range = `bytes=0-${session.storedLength - 1}`;
    reply(308, headers);
  }

  /**
   * Creates the object: "200 OK or 201 Created, along with any metadata
   * associated with the resource". With `x-goog-hash` on the request the
   * server validates first ("Data validation": a mismatch is rejected with
   * 400 and no object is stored).
   */
  function finalize(
    req: IncomingMessage,
    session: GcsSession,
    reply: (status: number, headers?: Record<string, string>, text?: string) => void,
  ): void {
    const data = Buffer.concat(session.stored);
    const md5 = createHash('md5').update(data).digest('base64');
    const crc32c = crc32cOf(data);
    for (const [algorithm, provided] of googHash(header(req, 'x-goog-hash'))) {
      const calculated = algorithm === 'md5' ? md5 : crc32c;
      if (provided !== calculated) {
        reply(
          400,
          { 'content-type': 'application/json; charset=UTF-8' },
          jsonError(
            400,
            `Provided ${algorithm.toUpperCase()} "${provided}" doesn't match calculated ${algorithm.toUpperCase()} "${calculated}".`,
          ),
        );
        return;
      }
    }
    const generation = String(Date.now());
    const etag = createHash('md5')
      .update(`${session.id}/${generation}`)
      .digest('base64')
      .slice(0, 12);
    session.object = {
      kind: 'storage#object',
      id: `${session.bucket}/${session.name}/${generation}`,
      selfLink: `${endpoint}/storage/v1/b/${encodeURIComponent(session.bucket)}/o/${encodeURIComponent(session.name)}`,
      mediaLink: `${endpoint}/download/storage/v1/b/${encodeURIComponent(session.bucket)}/o/${encodeURIComponent(session.name)}?generation=${generation}&alt=media`,
      name: session.name,
      bucket: session.bucket,
      generation,
      contentType: session.resource.contentType ?? 'application/octet-stream',
      size: String(data.length),
      md5Hash: md5,
      crc32c,
      etag,
      ...(session.resource.metadata === undefined ? {} : { metadata: session.resource.metadata }),
    };
    finished(session, reply);
  }

  function finished(
    session: GcsSession,
    reply: (status: number, headers?: Record<string, string>, text?: string) => void,
  ): void {
    const object = session.object!;
    if (state.xmlFinalize) {
      // XML API sessions finish with an empty body and the hashes as headers.
      reply(200, {
        'x-goog-hash': `crc32c=${String(object.crc32c)},md5=${String(object.md5Hash)}`,
        etag: `"${String(object.etag)}"`,
        'content-length': '0',
      });
      return;
    }
    reply(200, { 'content-type': 'application/json; charset=UTF-8' }, JSON.stringify(object));
  }

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  const idOf = (uri: string): string => {
    const id = new URL(uri).searchParams.get('upload_id');
    if (id === null || !sessions.has(id)) throw new Error(`no session for ${uri}`);
    return id;
  };

  return {
    endpoint,
    sessions,
    requests,
    get requiredToken() {
      return state.requiredToken;
    },
    set requiredToken(value) {
      state.requiredToken = value;
    },
    failNext: state.failNext,
    get acceptPartialNext() {
      return state.acceptPartialNext;
    },
    set acceptPartialNext(value) {
      state.acceptPartialNext = value;
    },
    get corruptNext() {
      return state.corruptNext;
    },
    set corruptNext(value) {
      state.corruptNext = value;
    },
    get xmlFinalize() {
      return state.xmlFinalize;
    },
    set xmlFinalize(value) {
      state.xmlFinalize = value;
    },
    session: (uri) => sessions.get(idOf(uri))!,
    bytes: (uri) => Buffer.concat(sessions.get(idOf(uri))!.stored),
    expire(uri, status = 410) {
      sessions.get(idOf(uri))!.goneStatus = status;
    },
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.closeAllConnections();
        server.close((error) => (error ? reject(error) : resolve()));
      }),
  };
}

function header(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value.join(',') : value;
}

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const part of req) parts.push(part as Buffer);
  return Buffer.concat(parts);
}

/**
 * `bytes FIRST-LAST/TOTAL`, `bytes FIRST-LAST/*` ("if you don't know the
 * total size … use `*`"), `bytes *\/TOTAL` and `bytes *\/*` (status check).
 */
function parseContentRange(
  value: string | undefined,
): { first: number | undefined; last: number | undefined; total: number | undefined } | undefined {
  if (value === undefined) return undefined;
  const match = /^bytes (?:(\d+)-(\d+)|\*)\/(\d+|\*)$/.exec(value.trim());
  if (match === null) return undefined;
  const first = match[1] === undefined ? undefined : Number(match[1]);
  const last = match[2] === undefined ? undefined : Number(match[2]);
  if (first !== undefined && last !== undefined && last < first) return undefined;
  return { first, last, total: match[3] === '*' ? undefined : Number(match[3]) };
}

/** `x-goog-hash: crc32c=…,md5=…`. */
function googHash(value: string | undefined): [string, string][] {
  if (value === undefined) return [];
  return value.split(',').flatMap((part): [string, string][] => {
    const at = part.indexOf('=');
    return at > 0 ? [[part.slice(0, at).trim().toLowerCase(), part.slice(at + 1).trim()]] : [];
  });
}

function statusText(status: number): string {
  if (status === 308) return 'Resume Incomplete';
  if (status === 499) return 'Client Closed Request';
  return '';
}

function jsonError(code: number, message: string): string {
  return JSON.stringify({
    error: { code, message, errors: [{ message, domain: 'global', reason: 'invalid' }] },
  });
}

/** A table CRC32C, so the server does not share the client's hash-wasm code path. */
const CRC32C_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0x82f63b78 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

/** Base64 of the big-endian CRC32C, as the object resource's `crc32c` field carries it. */
function crc32cOf(data: Uint8Array): string {
  let crc = 0xffffffff;
  for (const byte of data) crc = CRC32C_TABLE[(crc ^ byte) & 0xff]! ^ (crc >>> 8);
  crc = (crc ^ 0xffffffff) >>> 0;
  const out = Buffer.alloc(4);
  out.writeUInt32BE(crc);
  return out.toString('base64');
}
