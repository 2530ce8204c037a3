import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import S3rver from 's3rver';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.ts';
import { s3Storage } from '../src/storage/s3.ts';
import type { VideoStorage } from '../src/storage/types.ts';
import { storeBytes } from './files.ts';
import { startServer, type TestServer } from './server.ts';

let s3: S3rver;
let s3Dir: string;
let env: Record<string, string>;
let first: TestServer;
let second: TestServer;

function storageFor(): VideoStorage {
  const config = loadConfig([], { ...env, DATA_DIR: s3Dir });
  if (config.storage.kind !== 's3') throw new Error('expected S3 storage from the environment');
  return s3Storage(config.storage);
}

beforeAll(async () => {
  s3Dir = await mkdtemp(join(tmpdir(), 's3rver-'));
  s3 = new S3rver({
    port: 0,
    address: '127.0.0.1',
    silent: true,
    directory: s3Dir,
    configureBuckets: [{ name: 'media' }],
  });
  const { port } = await s3.run();
  env = {
    S3_BUCKET: 'media',
    S3_ENDPOINT: `http://127.0.0.1:${port}`,
    S3_ACCESS_KEY_ID: 'S3RVER',
    S3_SECRET_ACCESS_KEY: 'S3RVER',
    S3_PREFIX: 'lib/',
  };
  first = await startServer({ ...env, CACHE_ADMIT_AFTER: '2' }, { storage: storageFor() });
  second = await startServer({ ...env, CACHE_ADMIT_AFTER: '1000' }, { storage: storageFor() });
});

afterAll(async () => {
  await first?.close();
  await second?.close();
  await s3?.close();
  await rm(s3Dir, { recursive: true, force: true });
});

describe('S3-compatible storage (against s3rver)', () => {
  it('stores through multipart upload and two instances serve the same library', async () => {
    // 20 MiB: three 8 MiB multipart parts, so the chunked-uploader path is the one under test.
    const { bytes } = await storeBytes(first.storage, first.dir, 'shared', 20 * 2 ** 20 + 17);
    for (const instance of [first, second]) {
      const list = (await (await fetch(`${instance.url}/api/videos`)).json()) as {
        id: string;
        size: number;
      }[];
      expect(list.map((v) => [v.id, v.size])).toEqual([['shared', bytes.byteLength]]);
      const response = await fetch(`${instance.url}/videos/shared`, {
        headers: { range: 'bytes=8388600-8388700' },
      });
      expect(response.status).toBe(206);
      const got = new Uint8Array(await response.arrayBuffer());
      expect(Buffer.compare(got, bytes.subarray(8388600, 8388701))).toBe(0);
    }
    const a = await fetch(`${first.url}/videos/shared`, { method: 'HEAD' });
    const b = await fetch(`${second.url}/videos/shared`, { method: 'HEAD' });
    expect(a.headers.get('etag')).toBe(b.headers.get('etag'));
  });

  it('loads a hot file into the cache with ranged GETs and serves identical bytes from memory', async () => {
    const { bytes } = await storeBytes(first.storage, first.dir, 'hot', 9 * 2 ** 20 + 5);
    const url = `${first.url}/videos/hot`;
    for (let i = 0; i < 2; i++) await (await fetch(url)).arrayBuffer();
    await first.app.library.cache.settled();
    expect(first.app.library.cache.stats.entries).toBe(1);
    const before = first.app.metrics.served.cache;
    const whole = new Uint8Array(await (await fetch(url)).arrayBuffer());
    expect(Buffer.compare(whole, bytes)).toBe(0);
    expect(first.app.metrics.served.cache - before).toBe(bytes.byteLength);
  });

  it('detects an object replaced while it is read instead of mixing versions', async () => {
    const { video } = await storeBytes(first.storage, first.dir, 'swap', 1024 * 1024);
    const source = await first.storage.open(video);
    await storeBytes(first.storage, first.dir, 'swap', 1024 * 1024);
    await expect(source.readInto(new Uint8Array(1000), 0)).rejects.toMatchObject({
      code: 'CONFLICT',
    });
  });

  it('reports missing videos as 404 and keeps ids out of key space', async () => {
    expect((await fetch(`${second.url}/videos/none`)).status).toBe(404);
    expect(await first.storage.stat('../lib/videos/shared')).toBeUndefined();
  });
});
