/**
 * A partial-PUT server for tests, doing exactly what `httpPut`'s TSDoc
 * says the protocol expects of a server, on RFC 9110's `Content-Range`
 * (§14.4) and partial PUT (§14.5), with RFC 9530's `Repr-Digest`:
 *
 * 1. `PUT` with `Content-Range: bytes a-b/total|*` writes the body at `a`;
 *    `a = 0` starts the resource over; `bytes *\/total` with no body only
 *    declares the total. 201 when the resource becomes complete (with
 *    `Repr-Digest`, `ETag`, `Location`), 204 otherwise, or 308 with
 *    `Range: bytes=0-N` when it kept only part of the chunk.
 * 2. A chunk that does not start at the stored length: 409 Conflict.
 * 3. `HEAD`: 200 with the stored length in `Content-Length` (and in
 *    `X-Stored-Length`, for the `offsetHeader` option); 404 when absent.
 * 4. `DELETE`: 204, or 404 when absent.
 */
import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** One stored resource. */
export interface PutResource {
  chunks: Buffer[];
  length: number;
  total: number | undefined;
  complete: boolean;
  contentType: string | undefined;
}

/** One request as the server saw it. */
export interface PutRequest {
  method: string;
  path: string;
  contentRange: string | undefined;
  authorization: string | undefined;
  bodyLength: number;
  status: number;
}

/** The running server and the switches tests flip. */
export interface HttpPutServer {
  /** `http://127.0.0.1:<port>`. */
  readonly origin: string;
  readonly resources: Map<string, PutResource>;
  readonly requests: PutRequest[];
  /** Failures answered to the next requests, before anything is stored. */
  readonly failNext: { status: number; retryAfter?: string }[];
  /** When set, the next chunk keeps only this many bytes and answers 308. */
  acceptPartialNext: number | undefined;
  /** When false, completion answers carry no Repr-Digest (HEAD still does). */
  digestOnPut: boolean;
  /** The stored bytes at a path, joined. */
  bytes(path: string): Buffer;
  close(): Promise<void>;
}

/**
 * Starts the server on 127.0.0.1, port 0.
 *
 * @example
 * ```ts
 * const server = await startHttpPutServer();
 * const protocol = httpPut({ url: `${server.origin}/files/a.bin` });
 * await server.close();
 * ```
 */
export async function startHttpPutServer(): Promise<HttpPutServer> {
  const resources = new Map<string, PutResource>();
  const requests: PutRequest[] = [];
  const failNext: HttpPutServer['failNext'] = [];
  const state = { acceptPartialNext: undefined as number | undefined, digestOnPut: true };

  const server = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      if (!res.headersSent) res.writeHead(500).end(String(error));
    });
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const parts: Buffer[] = [];
    for await (const part of req) parts.push(part as Buffer);
    const body = Buffer.concat(parts);
    const path = new URL(req.url ?? '/', 'http://localhost').pathname;
    const record: PutRequest = {
      method: req.method ?? '',
      path,
      contentRange: header(req, 'content-range'),
      authorization: header(req, 'authorization'),
      bodyLength: body.length,
      status: 0,
    };
    requests.push(record);
    const reply = (status: number, headers: Record<string, string> = {}) => {
      record.status = status;
      res.writeHead(status, headers).end();
    };
    const failure = failNext.shift();
    if (failure !== undefined) {
      reply(failure.status, failure.retryAfter ? { 'retry-after': failure.retryAfter } : {});
      return;
    }
    const resource = resources.get(path);
    switch (req.method) {
      case 'HEAD': {
        if (resource === undefined) {
          reply(404);
          return;
        }
        const headers: Record<string, string> = {
          'content-length': String(resource.length),
          'x-stored-length': String(resource.length),
        };
        if (resource.complete) Object.assign(headers, describe(path, resource));
        reply(200, headers);
        return;
      }
      case 'DELETE':
        if (resource === undefined) {
          reply(404);
          return;
        }
        resources.delete(path);
        reply(204);
        return;
      case 'PUT':
        put(req, path, resource, body, reply);
        return;
      default: {
        reply(405, { allow: 'HEAD, PUT, DELETE' });
        return;
      }
    }
  }

  function put(
    req: IncomingMessage,
    path: string,
    existing: PutResource | undefined,
    body: Buffer,
    reply: (status: number, headers?: Record<string, string>) => void,
  ): void {
    // RFC 9110 §14.4: range-resp = incl-range "/" ( complete-length / "*" ), and
    // the "bytes */total" form for an empty chunk that only declares the total.
    const match = /^bytes (?:(\d+)-(\d+)|\*)\/(\d+|\*)$/.exec(header(req, 'content-range') ?? '');
    if (match === null) {
      reply(400); // RFC 9110 §14.5: a partial PUT we cannot apply.
      return;
    }
    const total = match[3] === '*' ? undefined : Number(match[3]);
    const first = match[1] === undefined ? undefined : Number(match[1]);
    const last = match[2] === undefined ? undefined : Number(match[2]);
    if (first === undefined && (body.length > 0 || total === undefined)) {
      reply(400);
      return;
    }
    if (first !== undefined && (last! < first || last! - first + 1 !== body.length)) {
      reply(400);
      return;
    }
    const start = first ?? total!;
    let resource = existing;
    if (start === 0 || resource === undefined) {
      if (start !== 0) {
        reply(409);
        return;
      }
      // A chunk at 0 starts the resource over, whatever was there.
      resource = {
        chunks: [],
        length: 0,
        total: undefined,
        complete: false,
        contentType: undefined,
      };
      resources.set(path, resource);
    }
    if (start !== resource.length) {
      reply(409);
      return;
    }
    if (total !== undefined) resource.total = total;
    resource.contentType = header(req, 'content-type');
    const keep =
      state.acceptPartialNext === undefined ? body : body.subarray(0, state.acceptPartialNext);
    const partial = state.acceptPartialNext !== undefined;
    state.acceptPartialNext = undefined;
    resource.chunks.push(Buffer.from(keep));
    resource.length += keep.length;
    if (partial) {
      const headers: Record<string, string> = {};
      if (resource.length > 0) headers.range = `bytes=0-${resource.length - 1}`;
      reply(308, headers);
      return;
    }
    if (resource.total !== undefined && resource.length === resource.total) {
      resource.complete = true;
      reply(201, state.digestOnPut ? describe(path, resource) : { location: path });
      return;
    }
    reply(204);
    return;
  }

  /** The headers of a complete resource: `Repr-Digest` (RFC 9530), a strong `ETag`, `Location`. */
  function describe(path: string, resource: PutResource): Record<string, string> {
    const data = Buffer.concat(resource.chunks);
    const sha256 = createHash('sha256').update(data).digest('base64');
    return {
      'repr-digest': `sha-512=:${createHash('sha512').update(data).digest('base64')}:, sha-256=:${sha256}:`,
      etag: `"${sha256.slice(0, 16)}"`,
      location: path,
    };
  }

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    origin,
    resources,
    requests,
    failNext,
    get acceptPartialNext() {
      return state.acceptPartialNext;
    },
    set acceptPartialNext(value) {
      state.acceptPartialNext = value;
    },
    get digestOnPut() {
      return state.digestOnPut;
    },
    set digestOnPut(value) {
      state.digestOnPut = value;
    },
    bytes: (path) => Buffer.concat(resources.get(path)?.chunks ?? []),
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
