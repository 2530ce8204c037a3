/**
 * A real tus server for the Node entry's and the CLI's tests: `@tus/server`
 * with `@tus/file-store` in a temp dir on 127.0.0.1, port 0. It counts
 * every byte the store accepts (by wrapping the store's `write`, whose
 * result is the new offset), records each request with its
 * `Upload-Offset`, `Content-Length` and status, and can stall at a chosen
 * byte: the store stops taking the body there, so a client is caught in
 * the middle of a request at an exact offset, with no timing involved.
 */
import { createHash } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { createServer, type Server as HttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline, type Readable, Transform } from 'node:stream';
import { FileStore } from '@tus/file-store';
import { Server } from '@tus/server';

/** One request, as the front saw it. */
export interface RecordedRequest {
  method: string;
  path: string;
  uploadOffset: number | undefined;
  contentLength: number | undefined;
  /** The response status, once sent; `undefined` when the client went away first. */
  status: number | undefined;
}

/** The running server. */
export interface CountingTusServer {
  /** `http://127.0.0.1:<port>/files/`. */
  readonly endpoint: string;
  /** Where FileStore keeps uploads. */
  readonly directory: string;
  /** Every request, in arrival order. */
  readonly requests: RecordedRequest[];
  /** Bytes the store accepted, over all uploads and requests. */
  readonly bytesStored: number;
  /**
   * Resolves once the store took exactly `offset` bytes (over all uploads).
   * It drops the rest of that request's body and does not answer it: the
   * client waits in the middle of its request until it goes away.
   */
  stallAt(offset: number): Promise<void>;
  /** The ids of the uploads in the store. */
  uploads(): Promise<string[]>;
  /** Bytes stored so far, summed over uploads. */
  storedSize(): Promise<number>;
  /** sha256 (hex) of one upload's stored bytes. */
  sha256(id: string): Promise<string>;
  /** Resolves once every request has been answered (after a client was killed mid-request too). */
  idle(): Promise<void>;
  /** Closes the server and deletes the temp dir. */
  close(): Promise<void>;
}

/** Starts the server. */
export async function startCountingTusServer(): Promise<CountingTusServer> {
  const directory = await mkdtemp(join(tmpdir(), 'counting-tus-'));
  const store = new FileStore({ directory });
  let bytesStored = 0;
  // Bytes handed to the store, including those of writes still running.
  let bytesTaken = 0;
  let stall: { offset: number; reached: () => void } | undefined;
  // Lets the stalled request finish once its client is gone.
  let release: (() => void) | undefined;
  const write = store.write.bind(store);
  store.write = async (readable: Readable, id: string, offset: number) => {
    let stalled = false;
    const gate = new Transform({
      transform(chunk: Buffer, _encoding, callback) {
        if (stalled) return callback();
        const room = stall === undefined ? chunk.length : stall.offset - bytesTaken;
        if (room >= chunk.length) {
          bytesTaken += chunk.length;
          return callback(null, chunk);
        }
        stalled = true;
        bytesTaken += room;
        if (room > 0) this.push(chunk.subarray(0, room));
        const { reached } = stall as { reached: () => void };
        stall = undefined;
        reached();
        // The rest of the body is read and dropped, so the socket keeps being
        // read and a client that goes away is noticed.
        callback();
      },
      flush(callback) {
        if (!stalled) return callback();
        // No answer until the client is gone: it waits in the middle of its request.
        release = () => {
          release = undefined;
          callback();
        };
      },
    });
    const end = await write(
      pipeline(readable, gate, () => undefined),
      id,
      offset,
    );
    bytesStored += end - offset;
    return end;
  };
  const tusServer = new Server({ path: '/files', datastore: store });
  const requests: RecordedRequest[] = [];
  let active = 0;
  let onIdle: (() => void)[] = [];
  const number = (value: string | string[] | undefined) =>
    typeof value === 'string' ? Number(value) : undefined;
  const http: HttpServer = createServer((req, res) => {
    const record: RecordedRequest = {
      method: req.method ?? '',
      path: req.url ?? '',
      uploadOffset: number(req.headers['upload-offset']),
      contentLength: number(req.headers['content-length']),
      status: undefined,
    };
    requests.push(record);
    active++;
    res.on('finish', () => {
      record.status = res.statusCode;
    });
    // The request is over once the handler answers (calls end()), even when
    // the client is gone: then end()'s callback, and the promise handle()
    // returns, never settle.
    let over = false;
    const end = res.end.bind(res) as (...args: unknown[]) => typeof res;
    res.end = ((...args: unknown[]) => {
      if (!over) {
        over = true;
        active--;
        if (active === 0) {
          const waiting = onIdle;
          onIdle = [];
          for (const resolve of waiting) resolve();
        }
      }
      return end(...args);
    }) as typeof res.end;
    // A client killed mid-body leaves @tus/server waiting for the rest (and
    // holding the upload's lock) until the request errors; production servers
    // get that from their timeouts, this test server raises it at once.
    res.on('close', () => {
      if (!over) release?.();
      if (!req.complete && req.listenerCount('error') > 0) {
        req.emit('error', new Error('the client disconnected mid-body'));
      }
    });
    tusServer.handle(req, res).catch(() => undefined);
  });
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  const { port } = http.address() as AddressInfo;
  const uploads = async () => (await readdir(directory)).filter((name) => !name.endsWith('.json'));
  return {
    endpoint: `http://127.0.0.1:${port}/files/`,
    directory,
    requests,
    get bytesStored() {
      return bytesStored;
    },
    stallAt(offset) {
      return new Promise((resolve) => {
        stall = { offset, reached: resolve };
      });
    },
    uploads,
    async storedSize() {
      let total = 0;
      for (const id of await uploads()) {
        total += (await stat(join(directory, id)).catch(() => ({ size: 0 }))).size;
      }
      return total;
    },
    async sha256(id) {
      return createHash('sha256')
        .update(await readFile(join(directory, id)))
        .digest('hex');
    },
    idle() {
      return active === 0 ? Promise.resolve() : new Promise((resolve) => onIdle.push(resolve));
    },
    async close() {
      http.closeAllConnections();
      await new Promise<void>((resolve, reject) =>
        http.close((error) => (error ? reject(error) : resolve())),
      );
      await rm(directory, { recursive: true, force: true });
    },
  };
}
