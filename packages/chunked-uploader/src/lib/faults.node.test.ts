import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server as HttpServer } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FileStore } from '@tus/file-store';
import { Server } from '@tus/server';
import { afterEach, describe, expect, it } from 'vitest';
import { startTusNodeServer, type TusNodeServer } from '../../test/tus-node-server';
import { tus } from '../protocols/tus';
import { RetriesExhaustedError } from './errors';
import { fromFile } from './file-source.node';
import { MemoryStateStore } from './state-store';
import { Upload } from './upload';

const MiB = 2 ** 20;
const fastRetry = { retries: 30, minDelayMs: 20, maxDelayMs: 200 };
const cleanups: (() => Promise<void>)[] = [];

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function tempFile(bytes: number): Promise<{ path: string; sha256: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'faults-'));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  const data = randomBytes(bytes);
  const path = join(dir, 'source.bin');
  await writeFile(path, data);
  return { path, sha256: createHash('sha256').update(data).digest('hex') };
}

/**
 * @tus/server with a FileStore in `directory`; `onBytes` sees every byte that
 * arrives on a connection (observed on the socket, so the request stream is
 * left for the tus server to read).
 */
async function listenTus(
  directory: string,
  port: number,
  onBytes: (bytes: number, socket: Socket) => void,
): Promise<HttpServer> {
  const tusServer = new Server({ path: '/files', datastore: new FileStore({ directory }) });
  const http = createServer((req, res) => {
    tusServer.handle(req, res);
  });
  http.on('connection', (socket) => {
    socket.on('data', (chunk: Buffer) => onBytes(chunk.length, socket));
  });
  await new Promise<void>((resolve) => http.listen(port, '127.0.0.1', resolve));
  return http;
}

function kill(http: HttpServer): Promise<void> {
  http.closeAllConnections();
  return new Promise((resolve) => http.close(() => resolve()));
}

describe('faults against a real tus server', () => {
  it('finishes byte-identical when the server is killed mid-upload and restarted', async () => {
    const source = await tempFile(24 * MiB);
    const directory = await mkdtemp(join(tmpdir(), 'tus-restart-'));
    cleanups.push(() => rm(directory, { recursive: true, force: true }));
    let received = 0;
    let killed = false;
    let server = await listenTus(directory, 0, () => undefined);
    const port = (server.address() as AddressInfo).port;
    await kill(server);
    const restart = async () => {
      server = await listenTus(directory, port, () => undefined);
    };
    server = await listenTus(directory, port, (n) => {
      received += n;
      if (!killed && received > 7 * MiB) {
        killed = true;
        // The process "dies" with a PATCH half-received, then comes back on the same store.
        void kill(server).then(() => setTimeout(() => void restart(), 100));
      }
    });
    cleanups.push(() => kill(server));
    const job = new Upload(await fromFile(source.path), {
      protocol: tus({ endpoint: `http://127.0.0.1:${port}/files/`, creationWithUpload: false }),
      chunkSize: 2 * MiB,
      stateStore: new MemoryStateStore(),
      retry: fastRetry,
    });
    const result = await job.start();
    expect(killed).toBe(true);
    expect(result.retries).toBeGreaterThan(0);
    expect(result.bytes).toBe(24 * MiB);
    const id = new URL(result.location ?? '').pathname.split('/').pop() as string;
    const stored = await readFile(join(directory, id));
    expect(createHash('sha256').update(stored).digest('hex')).toBe(source.sha256);
  });

  it('completes a chunk the server half-stored when the connection resets mid-body', async () => {
    const source = await tempFile(8 * MiB);
    const directory = await mkdtemp(join(tmpdir(), 'tus-reset-'));
    cleanups.push(() => rm(directory, { recursive: true, force: true }));
    let seen = 0;
    let reset = false;
    const server = await listenTus(directory, 0, (n, socket) => {
      seen += n;
      if (!reset && seen > 3 * MiB) {
        reset = true;
        socket.destroy();
      }
    });
    cleanups.push(() => kill(server));
    const port = (server.address() as AddressInfo).port;
    const patches: string[] = [];
    const result = await new Upload(await fromFile(source.path), {
      protocol: tus({
        endpoint: `http://127.0.0.1:${port}/files/`,
        creationWithUpload: false,
        fetch: (url, init) => {
          if (init?.method === 'PATCH')
            patches.push((init.headers as Record<string, string>)['upload-offset'] ?? '');
          return fetch(url, init);
        },
      }),
      chunkSize: 2 * MiB,
      stateStore: new MemoryStateStore(),
      retry: fastRetry,
    }).start();
    expect(reset).toBe(true);
    const id = new URL(result.location ?? '').pathname.split('/').pop() as string;
    const stored = await readFile(join(directory, id));
    expect(createHash('sha256').update(stored).digest('hex')).toBe(source.sha256);
    // After the reset the client asked the server and continued from a non-chunk-aligned offset.
    expect(patches.some((offset) => Number(offset) % (2 * MiB) !== 0)).toBe(true);
  });

  it('rides out a storm of 503s within the budget, and gives up cleanly (resumable) beyond it', async () => {
    const source = await tempFile(4 * MiB);
    const server: TusNodeServer = await startTusNodeServer();
    cleanups.push(() => server.close());
    for (let i = 0; i < 5; i++)
      server.inject.push({ method: 'PATCH', status: 503, headers: { 'retry-after': '0' } });
    const store = new MemoryStateStore();
    const options = {
      protocol: tus({ endpoint: server.endpoint, creationWithUpload: false }),
      chunkSize: MiB,
      stateStore: store,
      retry: { ...fastRetry, retries: 6 },
    };
    const first = await new Upload(await fromFile(source.path), options).start();
    expect(first.retries).toBe(5);
    expect(await server.storedSha256(first.location ?? '')).toBe(source.sha256);

    const other = await tempFile(4 * MiB);
    for (let i = 0; i < 20; i++) server.inject.push({ method: 'PATCH', status: 503 });
    await expect(
      new Upload(await fromFile(other.path), {
        ...options,
        retry: { ...fastRetry, retries: 3 },
      }).start(),
    ).rejects.toSatisfy((e: unknown) => RetriesExhaustedError.isInstance(e));
    server.inject.length = 0;
    // The state survived the failure: the same file resumes into the same upload.
    const resumed = await new Upload(await fromFile(other.path), options).start();
    expect(await server.storedSha256(resumed.location ?? '')).toBe(other.sha256);
    const posts = server.requests.filter((r) => r.method === 'POST').length;
    expect(posts).toBe(2);
  });
});
