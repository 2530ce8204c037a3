import { readdirSync } from 'node:fs';
import { connect } from 'node:net';
import { copyStats } from 'buffer-view';
import { afterEach, describe, expect, it } from 'vitest';
import { storeBytes } from './files.ts';
import { startServer, type TestServer } from './server.ts';

let server: TestServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

const download = async (url: string, headers: Record<string, string> = {}) =>
  new Uint8Array(await (await fetch(url, { headers })).arrayBuffer());
const openFds = () => readdirSync('/proc/self/fd').length;

/** Reads the start of a response over a raw socket, then vanishes mid-body. */
function readThenDisconnect(url: string, path: string, keep: number): Promise<void> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname, () => {
      socket.write(`GET ${path} HTTP/1.1\r\nhost: x\r\n\r\n`);
    });
    let got = 0;
    socket.on('data', (chunk: Buffer) => {
      got += chunk.byteLength;
      if (got >= keep) {
        socket.pause();
        socket.destroy();
        resolve();
      }
    });
    socket.on('error', reject);
  });
}

async function until(check: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 500; i++) {
    if (check()) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`timed out waiting for ${what}`);
}

describe('the video cache', () => {
  it('loads a file after CACHE_ADMIT_AFTER misses, then serves it from memory without copying', async () => {
    server = await startServer({ CACHE_ADMIT_AFTER: '2' });
    const { bytes } = await storeBytes(server.storage, server.dir, 'hot', 5 * 2 ** 20);
    const url = `${server.url}/videos/hot`;
    expect(Buffer.compare(await download(url), bytes)).toBe(0);
    expect(server.app.library.cache.stats.loads).toBe(0);
    expect(Buffer.compare(await download(url), bytes)).toBe(0);
    await server.app.library.cache.settled();
    expect(server.app.library.cache.stats).toMatchObject({
      entries: 1,
      loads: 1,
      bytes: bytes.byteLength,
    });
    const served = server.app.metrics.served.cache;
    const before = copyStats();
    const result = await download(url, { range: 'bytes=1000-3000000' });
    const after = copyStats();
    expect(Buffer.compare(result, bytes.subarray(1000, 3000001))).toBe(0);
    expect(server.app.metrics.served.cache - served).toBe(3000001 - 1000);
    // buffer-view counts every copy and allocation it makes: serving cached bytes made none.
    expect(after.bytesCopied - before.bytesCopied).toBe(0);
    expect(after.bytesAllocated - before.bytesAllocated).toBe(0);
    expect(server.app.library.cache.stats.hits).toBe(1);
  });

  it('evicts the least recently used file to stay within its budget', async () => {
    server = await startServer({
      CACHE_ADMIT_AFTER: '1',
      CACHE_BYTES: String(5 * 2 ** 20),
      CACHE_MAX_FILE_BYTES: String(3 * 2 ** 20),
    });
    const size = 2 * 2 ** 20;
    for (const id of ['a', 'b', 'c']) await storeBytes(server.storage, server.dir, id, size);
    const cache = server.app.library.cache;
    for (const id of ['a', 'b']) {
      await download(`${server.url}/videos/${id}`);
      await cache.settled();
    }
    await download(`${server.url}/videos/a`); // a is now the most recently used
    await download(`${server.url}/videos/c`);
    await cache.settled();
    expect(cache.stats).toMatchObject({ entries: 2, evictions: 1, bytes: 2 * size });
    const hits = cache.stats.hits;
    await download(`${server.url}/videos/a`);
    expect(cache.stats.hits).toBe(hits + 1);
    await download(`${server.url}/videos/b`);
    expect(cache.stats.hits).toBe(hits + 1);
  });

  it('never admits a file larger than CACHE_MAX_FILE_BYTES', async () => {
    server = await startServer({
      CACHE_ADMIT_AFTER: '1',
      CACHE_BYTES: '4MiB',
      CACHE_MAX_FILE_BYTES: '1MiB',
    });
    await storeBytes(server.storage, server.dir, 'big', 2 * 2 ** 20);
    await download(`${server.url}/videos/big`);
    await server.app.library.cache.settled();
    expect(server.app.library.cache.stats).toMatchObject({ entries: 0, loads: 0, bytes: 0 });
  });
});

describe('client disconnects mid-response', () => {
  it('leak no read buffers and no file descriptors (cold reads)', async () => {
    server = await startServer({ CACHE_ADMIT_AFTER: '1000', READ_BUFFERS: '4' });
    await storeBytes(server.storage, server.dir, 'cold', 24 * 2 ** 20);
    const fds = openFds();
    for (let i = 0; i < 8; i++) await readThenDisconnect(server.url, '/videos/cold', 300_000);
    const pool = server.app.library.pool;
    await until(
      () => pool.stats.inUse === 0 && openFds() <= fds,
      'buffers and descriptors to come back',
    );
    // The pool is bounded: 8 abandoned responses could not have taken more than READ_BUFFERS slabs.
    expect(pool.stats.slabs).toBeLessThanOrEqual(4);
    // And the server still serves every byte right afterwards.
    const whole = await download(`${server.url}/videos/cold`, { range: 'bytes=0-1048575' });
    expect(whole.byteLength).toBe(2 ** 20);
  });

  it('release their cache pins, so cached bytes can be evicted again', async () => {
    server = await startServer({ CACHE_ADMIT_AFTER: '1' });
    await storeBytes(server.storage, server.dir, 'warm', 24 * 2 ** 20);
    await download(`${server.url}/videos/warm`);
    const cache = server.app.library.cache;
    await cache.settled();
    expect(cache.stats.entries).toBe(1);
    for (let i = 0; i < 5; i++) await readThenDisconnect(server.url, '/videos/warm', 300_000);
    await until(() => cache.stats.pins === 0, 'pins to be released');
    expect(cache.stats.hits).toBe(5);
  });
});
