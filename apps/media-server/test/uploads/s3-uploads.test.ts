import type { EventEmitter } from 'node:events';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startS3, type TestS3 } from '../s3.ts';
import { startServer, type TestServer } from '../server.ts';
import { fetchSha256, listed, sha256, tusUpload, uploadFixtures } from './helpers.ts';

interface S3Notification {
  Records: { eventName: string; s3: { object: { key: string } } }[];
}

let s3: TestS3;
let server: TestServer;
/** `eventName key` of every S3 event s3rver emitted. */
const events: string[] = [];

beforeAll(async () => {
  s3 = await startS3('up/');
  // s3rver's typings (types/s3rver.d.ts at the repository root) leave out that it is an EventEmitter of S3 notifications.
  (s3.s3 as unknown as EventEmitter).on('event', (event: S3Notification) => {
    for (const record of event.Records) events.push(`${record.eventName} ${record.s3.object.key}`);
  });
  server = await startServer(s3.env, { storage: s3.storage() });
});

afterAll(async () => {
  await server?.close();
  await s3?.close();
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
