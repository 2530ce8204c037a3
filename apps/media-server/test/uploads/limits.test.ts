import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { localStorage } from '../../src/storage/local.ts';
import type { VideoStorage } from '../../src/storage/types.ts';
import { startServer, type TestServer } from '../server.ts';
import {
  createUpload,
  errorBody,
  fetchSha256,
  headUpload,
  patchUpload,
  sha256,
  statusOf,
  tusUpload,
  type UploadFixtures,
  uploadFixtures,
} from './helpers.ts';

const KEY = 'k3y-for-the-upload-tests-0123456789';

let files: UploadFixtures;
let video: Buffer;
let limited: TestServer;
let keyed: TestServer;
let expiring: TestServer;

beforeAll(async () => {
  files = await uploadFixtures();
  video = await readFile(files.video);
  limited = await startServer({ UPLOAD_MAX_BYTES: '1MiB' });
  keyed = await startServer({ UPLOAD_KEY: KEY });
  expiring = await startServer({ UPLOAD_EXPIRY_MS: '1500' });
});

afterAll(async () => {
  await limited?.close();
  await keyed?.close();
  await expiring?.close();
});

describe('upload limits', () => {
  it('refuses an Upload-Length over UPLOAD_MAX_BYTES with 413 at creation, and advertises the limit', async () => {
    const options = await fetch(`${limited.url}/uploads`, { method: 'OPTIONS' });
    expect(options.headers.get('tus-max-size')).toBe(String(2 ** 20));
    const over = await createUpload(limited.url, 2 ** 20 + 1);
    expect(over.status).toBe(413);
    expect(over.headers.get('location')).toBeNull();
    expect(await readdir(join(limited.dir, 'uploads'))).toEqual([]);
    const within = await createUpload(limited.url, 2 ** 20);
    expect(within.status).toBe(201);
  });

  it('refuses a body that would run past Upload-Length', async () => {
    const created = await createUpload(limited.url, 10);
    const url = new URL(created.headers.get('location') ?? '', limited.url).href;
    const response = await patchUpload(url, 0, new Uint8Array(11));
    expect(response.status).toBe(413);
  });

  it('needs the upload key as a bearer token when UPLOAD_KEY is set', async () => {
    expect((await createUpload(keyed.url, 100)).status).toBe(401);
    const wrong = await createUpload(keyed.url, 100, { authorization: `Bearer ${KEY}x` });
    expect(wrong.status).toBe(401);
    expect(wrong.headers.get('www-authenticate')).toMatch(/^Bearer/);
    expect(((await wrong.json()) as { error: { code: string } }).error.code).toBe('UNAUTHORIZED');
    // Discovery stays open: a client learns the extensions before it has a key.
    expect((await fetch(`${keyed.url}/uploads`, { method: 'OPTIONS' })).status).toBe(204);

    const refused = await tusUpload(video, { endpoint: `${keyed.url}/uploads` });
    expect(refused.ok ? 0 : statusOf(refused.error)).toBe(401);
    expect(refused.ok ? undefined : errorBody(refused.error)?.code).toBe('UNAUTHORIZED');

    const done = await tusUpload(video, {
      endpoint: `${keyed.url}/uploads`,
      headers: { authorization: `Bearer ${KEY}` },
    });
    if (!done.ok) throw done.error;
    // Every request of the upload needs the key, not only the creation.
    expect((await headUpload(new URL(done.url, keyed.url).href)).status).toBe(401);
    const id = done.response.getHeader('video-id') ?? '';
    expect((await fetchSha256(`${keyed.url}/videos/${id}`)).sha256).toBe(sha256(video));
  });

  it('keeps the connection of a finished upload open while storing outlasts IDLE_TIMEOUT_MS', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'media-server-slow-'));
    const local = await localStorage(join(dir, 'videos'));
    // A library slower than the idle timeout, as S3 is for a large file.
    const slowPut: VideoStorage['putFile'] = async (id, path, meta) => {
      await new Promise((resolve) => setTimeout(resolve, 1500));
      return local.putFile(id, path, meta);
    };
    const slow: VideoStorage = { ...local, putFile: slowPut, moveFile: slowPut };
    const server = await startServer({ IDLE_TIMEOUT_MS: '300' }, { storage: slow, dir });
    try {
      const done = await tusUpload(video, { endpoint: `${server.url}/uploads` });
      if (!done.ok) throw done.error;
      const id = done.response.getHeader('video-id') ?? '';
      expect((await fetchSha256(`${server.url}/videos/${id}`)).sha256).toBe(sha256(video));
    } finally {
      await server.close();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('deletes an unfinished upload once it is older than UPLOAD_EXPIRY_MS', async () => {
    const created = await createUpload(expiring.url, video.byteLength);
    expect(created.status).toBe(201);
    expect(Date.parse(created.headers.get('upload-expires') ?? '')).toBeGreaterThan(0);
    const url = new URL(created.headers.get('location') ?? '', expiring.url).href;
    const id = url.split('/').pop() ?? '';
    expect((await patchUpload(url, 0, video.subarray(0, 100_000))).status).toBe(204);
    const dir = join(expiring.dir, 'uploads');
    expect((await readdir(dir)).sort()).toEqual([id, `${id}.json`]);
    // The periodic sweep (every second here) removes both files; nothing calls it by hand.
    await expect.poll(() => readdir(dir), { timeout: 15_000, interval: 200 }).toEqual([]);
    expect([404, 410]).toContain((await headUpload(url)).status);
    const metrics = await (await fetch(`${expiring.url}/metrics`)).text();
    expect(metrics).toMatch(/^media_uploads_total\{result="expired"\} 1$/m);
  });
});
