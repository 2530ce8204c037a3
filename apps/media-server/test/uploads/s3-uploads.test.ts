import type { EventEmitter } from 'node:events';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import S3rver from 's3rver';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.ts';
import { s3Storage } from '../../src/storage/s3.ts';
import { startServer, type TestServer } from '../server.ts';
import { fetchSha256, listed, sha256, tusUpload, uploadFixtures } from './helpers.ts';

interface S3Notification {
  Records: { eventName: string; s3: { object: { key: string } } }[];
}

let s3: S3rver;
let s3Dir: string;
let server: TestServer;
/** `eventName key` of every S3 event s3rver emitted. */
const events: string[] = [];

beforeAll(async () => {
  s3Dir = await mkdtemp(join(tmpdir(), 's3rver-uploads-'));
  s3 = new S3rver({
    port: 0,
    address: '127.0.0.1',
    silent: true,
    directory: s3Dir,
    configureBuckets: [{ name: 'media' }],
  });
  // s3rver's typings (test/s3rver.d.ts) leave out that it is an EventEmitter of S3 notifications.
  (s3 as unknown as EventEmitter).on('event', (event: S3Notification) => {
    for (const record of event.Records) events.push(`${record.eventName} ${record.s3.object.key}`);
  });
  const { port } = await s3.run();
  const env = {
    S3_BUCKET: 'media',
    S3_ENDPOINT: `http://127.0.0.1:${port}`,
    S3_ACCESS_KEY_ID: 'S3RVER',
    S3_SECRET_ACCESS_KEY: 'S3RVER',
    S3_PREFIX: 'up/',
  };
  const config = loadConfig([], { ...env, DATA_DIR: s3Dir });
  if (config.storage.kind !== 's3') throw new Error('expected S3 storage from the environment');
  server = await startServer(env, { storage: s3Storage(config.storage) });
});

afterAll(async () => {
  await server?.close();
  await s3?.close();
  await rm(s3Dir, { recursive: true, force: true });
});

describe('uploads with S3 storage (against s3rver)', () => {
  it('lands a finished upload in the bucket by multipart upload and plays it back byte-identical', async () => {
    const video = await readFile((await uploadFixtures()).long);
    const done = await tusUpload(video, {
      endpoint: `${server.url}/uploads`,
      chunkSize: 4 * 2 ** 20,
      metadata: { filename: 'long card.mp4' },
    });
    if (!done.ok) throw done.error;
    const id = done.response.getHeader('video-id') ?? '';

    const object = await server.storage.stat(id);
    expect(object?.size).toBe(video.byteLength);
    // s3rver reports CompleteMultipartUpload as ObjectCreated:Post (a plain PUT would be :Put).
    expect(events).toContain(`ObjectCreated:Post up/videos/${id}.mp4`);
    expect(events).not.toContain(`ObjectCreated:Put up/videos/${id}.mp4`);
    expect(object?.meta.title).toBe('long card');
    expect(object?.meta.duration).toBeCloseTo(18, 1);
    expect(await fetchSha256(`${server.url}/videos/${id}`)).toEqual({
      status: 200,
      sha256: sha256(video),
    });
    expect((await listed(server.url, id))?.duration).toBeCloseTo(18, 1);
    // Only the receipt stays in staging; the bytes went to the bucket.
    expect(await readdir(join(server.dir, 'uploads'))).toEqual([`${id}.json`]);
  });
});
