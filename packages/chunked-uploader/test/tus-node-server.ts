/**
 * A real tus server for tests: `@tus/server` with `@tus/file-store` in a
 * temp dir on 127.0.0.1, port 0. A thin front lets a test answer chosen
 * requests itself (a 503 with `Retry-After`) and records every request, so
 * tests can check what went over the wire. Everything else is the
 * reference server's own behaviour.
 */
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer, type Server as HttpServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FileStore } from '@tus/file-store';
import { Server } from '@tus/server';

/** One request as the front saw it. */
export interface SeenRequest {
  method: string;
  path: string;
  headers: Record<string, string>;
}

/** A canned answer for the next request with this method. */
export interface InjectedResponse {
  method: string;
  status: number;
  headers?: Record<string, string>;
}

/** The running server and the switches tests flip. */
export interface TusNodeServer {
  /** `http://127.0.0.1:<port>/files/`: the creation URL. */
  readonly endpoint: string;
  /** Where FileStore keeps uploads (one file per upload id). */
  readonly directory: string;
  /** Every request, in order. */
  readonly requests: SeenRequest[];
  /** Answers to give instead of the tus server, consumed in order. */
  readonly inject: InjectedResponse[];
  /** The stored bytes of an upload, by its URL. */
  stored(url: string): Promise<Buffer>;
  /** The sha256 (hex) of an upload's stored bytes. */
  storedSha256(url: string): Promise<string>;
  /** Closes the server and deletes the temp dir. */
  close(): Promise<void>;
}

/** Options passed through to `@tus/server` and `@tus/file-store`. */
export interface TusNodeServerOptions {
  maxSize?: number;
  relativeLocation?: boolean;
  expirationPeriodInMilliseconds?: number;
}

/** Starts `@tus/server` + `@tus/file-store` on loopback. */
export async function startTusNodeServer(
  options: TusNodeServerOptions = {},
): Promise<TusNodeServer> {
  const directory = await mkdtemp(join(tmpdir(), 'tus-node-server-'));
  const store = new FileStore({
    directory,
    ...(options.expirationPeriodInMilliseconds === undefined
      ? {}
      : { expirationPeriodInMilliseconds: options.expirationPeriodInMilliseconds }),
  });
  const tusServer = new Server({
    path: '/files',
    datastore: store,
    ...(options.maxSize === undefined ? {} : { maxSize: options.maxSize }),
    ...(options.relativeLocation === undefined
      ? {}
      : { relativeLocation: options.relativeLocation }),
  });
  const requests: SeenRequest[] = [];
  const inject: InjectedResponse[] = [];
  const http: HttpServer = createServer((req, res) => {
    const headers: Record<string, string> = {};
    for (const [name, value] of Object.entries(req.headers)) {
      if (typeof value === 'string') headers[name] = value;
    }
    requests.push({ method: req.method ?? '', path: req.url ?? '', headers });
    const canned = inject[0];
    if (canned !== undefined && canned.method === req.method) {
      inject.shift();
      drain(req).then(() => {
        res.writeHead(canned.status, { 'tus-resumable': '1.0.0', ...canned.headers });
        res.end(canned.status === 204 ? undefined : `injected ${canned.status}`);
      });
      return;
    }
    tusServer.handle(req, res);
  });
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  const { port } = http.address() as AddressInfo;
  const idOf = (url: string): string => new URL(url).pathname.split('/').pop() as string;
  const stored = (url: string): Promise<Buffer> => readFile(join(directory, idOf(url)));
  return {
    endpoint: `http://127.0.0.1:${port}/files/`,
    directory,
    requests,
    inject,
    stored,
    async storedSha256(url) {
      return createHash('sha256')
        .update(await stored(url))
        .digest('hex');
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

function drain(req: IncomingMessage): Promise<void> {
  return new Promise((resolve) => {
    req.resume();
    req.on('end', resolve);
    req.on('error', () => resolve());
  });
}
