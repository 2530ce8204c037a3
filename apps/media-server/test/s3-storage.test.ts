import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { storeBytes } from './files.ts';
import { startS3, type TestS3 } from './s3.ts';
import { startServer, type TestServer } from './server.ts';

let s3: TestS3;
let first: TestServer;
let second: TestServer;

beforeAll(async () => {
  s3 = await startS3('lib/');
  first = await startServer({ ...s3.env, CACHE_ADMIT_AFTER: '2' }, { storage: s3.storage() });
  second = await startServer({ ...s3.env, CACHE_ADMIT_AFTER: '1000' }, { storage: s3.storage() });
});

afterAll(async () => {
  await first?.close();
  await second?.close();
  await s3?.close();
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
