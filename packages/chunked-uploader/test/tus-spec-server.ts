/**
 * A small tus 1.0 server for tests, written from the published protocol
 * (https://tus.io/protocols/resumable-upload), not from any client's
 * behaviour. It exists because `@tus/server` 2.4.5 implements neither the
 * checksum nor the concatenation extension (its FileStore advertises
 * creation, creation-with-upload, creation-defer-length, termination and
 * expiration only). It implements the core protocol, creation,
 * creation-with-upload, creation-defer-length, checksum, termination and
 * concatenation, in memory; each rule it enforces quotes the spec.
 */
import { createHash, randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** One upload resource. */
export interface SpecUpload {
  readonly id: string;
  data: Buffer;
  length: number | undefined;
  metadata: string | undefined;
  /** `partial`, `final;…`, or undefined. */
  concat: string | undefined;
}

/** One request as the server saw it. */
export interface SpecRequest {
  method: string;
  path: string;
  headers: Record<string, string>;
  bodyLength: number;
  status: number;
}

/** The running server and the switches tests flip. */
export interface TusSpecServer {
  /** `http://127.0.0.1:<port>/files`: the creation URL. */
  readonly endpoint: string;
  readonly uploads: Map<string, SpecUpload>;
  readonly requests: SpecRequest[];
  /** Damage the next PATCH body (flip its first byte) before the checksum check: a corrupting network. */
  corruptNextPatch: boolean;
  /** Store at most this many bytes of the next PATCH (the spec lets a server keep fewer). */
  acceptAtMostOnNextPatch: number | undefined;
  /** The upload with this URL. */
  upload(url: string): SpecUpload;
  close(): Promise<void>;
}

/** What the server advertises. */
export interface TusSpecServerOptions {
  extensions?: string[];
  checksumAlgorithms?: string[];
  versions?: string[];
}

const ALGORITHMS: Record<string, string> = { md5: 'md5', sha1: 'sha1', sha256: 'sha256' };

/** Starts the server on 127.0.0.1, port 0. */
export async function startTusSpecServer(
  options: TusSpecServerOptions = {},
): Promise<TusSpecServer> {
  const extensions = options.extensions ?? [
    'creation',
    'creation-with-upload',
    'creation-defer-length',
    'checksum',
    'termination',
    'concatenation',
  ];
  const algorithms = options.checksumAlgorithms ?? ['md5', 'sha1', 'sha256'];
  const versions = options.versions ?? ['1.0.0'];
  const uploads = new Map<string, SpecUpload>();
  const requests: SpecRequest[] = [];

  const http = createServer(async (req, res) => {
    const body = await readBody(req);
    const headers: Record<string, string> = {};
    for (const [name, value] of Object.entries(req.headers)) {
      if (typeof value === 'string') headers[name] = value;
    }
    const record: SpecRequest = {
      method: req.method ?? '',
      path: req.url ?? '',
      headers,
      bodyLength: body.length,
      status: 0,
    };
    requests.push(record);
    const reply = (status: number, extra: Record<string, string> = {}, text = ''): undefined => {
      record.status = status;
      // "The Tus-Resumable header MUST be included in every request and response except for OPTIONS requests."
      res.writeHead(status, { 'tus-resumable': '1.0.0', ...extra });
      res.end(status === 204 || req.method === 'HEAD' ? undefined : text);
    };
    try {
      handle(req, res, body, headers, reply);
    } catch (error) {
      reply(500, {}, String(error));
    }
  });

  const server: TusSpecServer = {
    endpoint: '',
    uploads,
    requests,
    corruptNextPatch: false,
    acceptAtMostOnNextPatch: undefined,
    upload(url) {
      const found = uploads.get(idOf(url));
      if (found === undefined) throw new Error(`no upload at ${url}`);
      return found;
    },
    async close() {
      http.closeAllConnections();
      await new Promise<void>((resolve, reject) =>
        http.close((error) => (error ? reject(error) : resolve())),
      );
    },
  };

  function handle(
    req: IncomingMessage,
    _res: ServerResponse,
    body: Buffer,
    headers: Record<string, string>,
    reply: (status: number, extra?: Record<string, string>, text?: string) => undefined,
  ): undefined {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    if (req.method === 'OPTIONS') {
      // "A successful response … MUST contain the Tus-Version header. It MAY include the Tus-Extension and Tus-Max-Size headers."
      // "The Tus-Checksum-Algorithm header MUST be included in the response to an OPTIONS request."
      reply(204, {
        'tus-version': versions.join(','),
        'tus-extension': extensions.join(','),
        ...(extensions.includes('checksum')
          ? { 'tus-checksum-algorithm': algorithms.join(',') }
          : {}),
      });
      return;
    }
    // "If the version specified by the Client is not supported by the Server, it MUST respond with the 412 Precondition Failed status and MUST include the Tus-Version header"
    if (!versions.includes(headers['tus-resumable'] ?? '')) {
      reply(412, { 'tus-version': versions.join(',') });
      return;
    }
    if (req.method === 'POST' && path === '/files') return create(body, headers, reply);
    const id = path.startsWith('/files/') ? path.slice('/files/'.length) : '';
    const upload = uploads.get(id);
    if (upload === undefined) {
      reply(404, {}, 'not found');
      return;
    }
    if (req.method === 'HEAD') {
      const out: Record<string, string> = { 'cache-control': 'no-store' };
      // "The response to a HEAD request for a final upload SHOULD NOT contain the Upload-Offset header unless the concatenation has been successfully finished."
      out['upload-offset'] = String(upload.data.length);
      if (upload.length === undefined) out['upload-defer-length'] = '1';
      else out['upload-length'] = String(upload.length);
      if (upload.metadata !== undefined) out['upload-metadata'] = upload.metadata;
      if (upload.concat !== undefined) out['upload-concat'] = upload.concat;
      reply(200, out);
      return;
    }
    if (req.method === 'DELETE') {
      if (!extensions.includes('termination')) return reply(405);
      uploads.delete(id);
      reply(204);
      return;
    }
    if (req.method === 'PATCH') return patch(upload, body, headers, reply);
    reply(405);
  }

  function create(
    body: Buffer,
    headers: Record<string, string>,
    reply: (status: number, extra?: Record<string, string>, text?: string) => undefined,
  ): undefined {
    const concat = headers['upload-concat'];
    const id = randomUUID();
    if (concat?.startsWith('final;')) {
      if (!extensions.includes('concatenation')) return reply(400, {}, 'no concatenation');
      // "The Client MUST NOT include the Upload-Length header in the final upload creation."
      if (headers['upload-length'] !== undefined) return reply(400, {}, 'final with Upload-Length');
      const parts: SpecUpload[] = [];
      for (const ref of concat.slice('final;'.length).trim().split(' ')) {
        // "The partial uploads URLs MAY be absolute or relative"
        const part = uploads.get(idOf(new URL(ref, 'http://x/files/').href));
        if (part === undefined || part.concat !== 'partial')
          return reply(400, {}, `bad partial ${ref}`);
        // "This concatenation request SHOULD happen after all of the corresponding partial uploads are completed."
        if (part.length === undefined || part.data.length !== part.length) {
          return reply(400, {}, `partial ${ref} is unfinished`);
        }
        parts.push(part);
      }
      const data = Buffer.concat(parts.map((part) => part.data));
      uploads.set(id, {
        id,
        data,
        length: data.length,
        metadata: headers['upload-metadata'],
        concat,
      });
      reply(201, { location: `/files/${id}` });
      return;
    }
    if (concat !== undefined && concat !== 'partial') return reply(400, {}, 'bad Upload-Concat');
    const lengthHeader = headers['upload-length'];
    const defer = headers['upload-defer-length'];
    if ((lengthHeader === undefined) === (defer === undefined))
      return reply(400, {}, 'length xor defer');
    if (defer !== undefined && defer !== '1')
      return reply(400, {}, 'Upload-Defer-Length must be 1');
    const upload: SpecUpload = {
      id,
      data: Buffer.alloc(0),
      length: lengthHeader === undefined ? undefined : Number(lengthHeader),
      metadata: headers['upload-metadata'],
      concat,
    };
    if (body.length > 0) {
      // creation-with-upload: "The Client MUST include the Content-Type: application/offset+octet-stream header."
      if (!extensions.includes('creation-with-upload'))
        return reply(400, {}, 'no creation-with-upload');
      if (headers['content-type'] !== 'application/offset+octet-stream') return reply(415);
      const bad = checksumProblem(body, headers);
      if (bad !== undefined) return reply(bad, {}, 'checksum');
      upload.data = body;
    }
    uploads.set(id, upload);
    // "This URL MAY be absolute or relative."
    reply(201, {
      location: `/files/${id}`,
      ...(body.length > 0 ? { 'upload-offset': String(body.length) } : {}),
    });
  }

  function patch(
    upload: SpecUpload,
    received: Buffer,
    headers: Record<string, string>,
    reply: (status: number, extra?: Record<string, string>, text?: string) => undefined,
  ): undefined {
    // "All PATCH requests MUST use Content-Type: application/offset+octet-stream, otherwise the server SHOULD return a 415"
    if (headers['content-type'] !== 'application/offset+octet-stream') return reply(415);
    // "The Server MUST respond with the 403 Forbidden status to PATCH requests against a final upload URL"
    if (upload.concat?.startsWith('final;')) return reply(403);
    // "If the offsets do not match, the Server MUST respond with the 409 Conflict status without modifying the upload resource."
    if (Number(headers['upload-offset']) !== upload.data.length) return reply(409, {}, 'offset');
    let body = received;
    if (server.corruptNextPatch && body.length > 0) {
      server.corruptNextPatch = false;
      body = Buffer.from(body);
      body[0] = (body[0] as number) ^ 0xff;
    }
    // "In the first two cases the uploaded chunk MUST be discarded, and the upload and its offset MUST NOT be updated."
    const bad = checksumProblem(body, headers);
    if (bad !== undefined) return reply(bad, {}, 'checksum');
    const declared = headers['upload-length'];
    if (declared !== undefined) {
      // "Once set the length MUST NOT be changed."
      if (upload.length !== undefined) return reply(400, {}, 'length already set');
      upload.length = Number(declared);
    }
    if (upload.length !== undefined && upload.data.length + body.length > upload.length) {
      return reply(400, {}, 'beyond Upload-Length');
    }
    const keep = server.acceptAtMostOnNextPatch;
    server.acceptAtMostOnNextPatch = undefined;
    upload.data = Buffer.concat([upload.data, keep === undefined ? body : body.subarray(0, keep)]);
    // "It MUST include the Upload-Offset header containing the new offset."
    reply(204, { 'upload-offset': String(upload.data.length) });
  }

  function checksumProblem(body: Buffer, headers: Record<string, string>): number | undefined {
    const header = headers['upload-checksum'];
    if (header === undefined) return undefined;
    const [name = '', digest = ''] = header.split(' ');
    // "400 Bad Request if the checksum algorithm is not supported by the server"
    const algorithm = ALGORITHMS[name];
    if (!extensions.includes('checksum') || algorithm === undefined || !algorithms.includes(name))
      return 400;
    // "460 Checksum Mismatch if the checksums mismatch"
    return createHash(algorithm).update(body).digest('base64') === digest ? undefined : 460;
  }

  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  const { port } = http.address() as AddressInfo;
  (server as { endpoint: string }).endpoint = `http://127.0.0.1:${port}/files`;
  return server;
}

function idOf(url: string): string {
  return new URL(url).pathname.split('/').pop() ?? '';
}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}
