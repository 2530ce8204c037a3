import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { tus, upload } from 'chunked-uploader';
import { fromFile } from 'chunked-uploader/node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ffprobeDuration } from '../media-fixtures.ts';
import { startServer, type TestServer } from '../server.ts';
import {
  createUpload,
  errorBody,
  fetchSha256,
  headUpload,
  idOf,
  listed,
  patchUpload,
  sha256,
  statusOf,
  tusUpload,
  type UploadFixtures,
  uploadFixtures,
} from './helpers.ts';

let server: TestServer;
let files: UploadFixtures;
let video: Buffer;

beforeAll(async () => {
  files = await uploadFixtures();
  video = await readFile(files.video);
  server = await startServer();
});

afterAll(async () => {
  await server?.close();
});

const staged = (): Promise<string[]> => readdir(join(server.dir, 'uploads'));

describe('tus uploads at /uploads', () => {
  it('resumes an interrupted tus-js-client upload and stores it byte-identical, with its duration', async () => {
    const endpoint = `${server.url}/uploads`;
    let firstUrl = '';
    // 256 KiB chunks: the abort lands between chunks that the server has fully stored.
    // An aborted tus-js-client upload neither succeeds nor fails, so this is not awaited.
    void tusUpload(video, {
      endpoint,
      chunkSize: 256 * 1024,
      metadata: { filename: 'card.mp4', title: 'Test card, resumed' },
      onStarted: (job) => {
        job.options.onProgress = (sent, total) => {
          if (sent >= total / 3 && job.url !== null && firstUrl === '') {
            firstUrl = job.url;
            void job.abort();
          }
        };
      },
    });
    await expect.poll(() => firstUrl).not.toBe('');
    const head = await headUpload(new URL(firstUrl, server.url).href);
    expect(head.status).toBe(200);
    expect(head.length).toBe(video.byteLength);
    expect(head.offset).toBeGreaterThan(0);
    expect(head.offset).toBeLessThan(video.byteLength);

    let resumedAt = -1;
    const second = await tusUpload(video, {
      uploadUrl: new URL(firstUrl, server.url).href,
      chunkSize: 256 * 1024,
      onStarted: (job) => {
        job.options.onProgress = (sent) => {
          if (resumedAt < 0) resumedAt = sent;
        };
      },
    });
    if (!second.ok) throw second.error;
    expect(resumedAt).toBeGreaterThanOrEqual(head.offset);
    const id = second.response.getHeader('video-id') ?? '';
    expect(id).toBe(idOf(firstUrl));

    const stored = await fetchSha256(`${server.url}/videos/${id}`);
    expect(stored).toEqual({ status: 200, sha256: sha256(video) });
    const row = await listed(server.url, id);
    expect(row?.title).toBe('Test card, resumed');
    expect(row?.size).toBe(video.byteLength);
    expect(row?.duration).toBeCloseTo(await ffprobeDuration(files.video), 1);
    // The duration was written into the metadata at upload time, not derived on listing.
    expect((await server.storage.stat(id))?.meta.duration).toBe(row?.duration);
    // The staged bytes are gone, the receipt still answers that the upload is complete.
    expect(await staged()).toEqual([`${id}.json`]);
    const after = await headUpload(new URL(firstUrl, server.url).href);
    expect(after).toEqual({ status: 200, offset: video.byteLength, length: video.byteLength });
    // A client that lost the answer to its final PATCH and sends it again learns the same outcome.
    const again = await patchUpload(
      new URL(firstUrl, server.url).href,
      video.byteLength,
      new Uint8Array(0),
    );
    expect(again.status).toBe(204);
    expect(again.headers.get('video-id')).toBe(id);
  });

  it('accepts an upload from chunked-uploader (tus protocol, Node file source)', async () => {
    const result = await upload(await fromFile(files.video), {
      protocol: tus({
        endpoint: `${server.url}/uploads/`,
        metadata: { title: 'From chunked-uploader' },
      }),
      chunkSize: 512 * 1024,
    });
    expect(result.bytes).toBe(video.byteLength);
    const id = idOf(result.location ?? '');
    expect((await fetchSha256(`${server.url}/videos/${id}`)).sha256).toBe(sha256(video));
    expect((await listed(server.url, id))?.title).toBe('From chunked-uploader');
  });

  it.each([
    ['a truncated MP4', 'truncated', 422, 'MEDIA_TRUNCATED'],
    ['random bytes', 'notVideo', 422, 'MEDIA_CORRUPT'],
  ] as const)('rejects %s with a clear error and removes it', async (_name, file, status, code) => {
    const before = await staged();
    const outcome = await tusUpload(await readFile(files[file]), {
      endpoint: `${server.url}/uploads`,
      metadata: { filename: 'bad.mp4' },
    });
    if (outcome.ok) throw new Error('the upload was accepted');
    expect(statusOf(outcome.error)).toBe(status);
    expect(errorBody(outcome.error)?.code).toBe(code);
    expect(errorBody(outcome.error)?.message).toMatch(/\w+ \w+ \w+/);
    const id = idOf(outcome.url ?? '');
    expect(id).not.toBe('');
    expect(await listed(server.url, id)).toBeUndefined();
    expect((await fetch(`${server.url}/videos/${id}`)).status).toBe(404);
    expect((await staged()).filter((name) => name.startsWith(id))).toEqual([]);
    expect(await staged()).toEqual(before);
    expect((await headUpload(new URL(outcome.url ?? '', server.url).href)).status).toBe(404);
  });

  it('terminates an unfinished upload with DELETE', async () => {
    let url = '';
    void tusUpload(video, {
      endpoint: `${server.url}/uploads`,
      chunkSize: 256 * 1024,
      onStarted: (job) => {
        job.options.onChunkComplete = () => {
          if (url === '' && job.url !== null) {
            url = new URL(job.url, server.url).href;
            void job.abort();
          }
        };
      },
    });
    await expect.poll(() => url).not.toBe('');
    const id = idOf(url);
    expect((await headUpload(url)).offset).toBeGreaterThan(0);
    const response = await fetch(url, { method: 'DELETE', headers: { 'tus-resumable': '1.0.0' } });
    expect(response.status).toBe(204);
    expect((await headUpload(url)).status).toBe(404);
    expect((await staged()).filter((name) => name.startsWith(id))).toEqual([]);
  });

  it('does not advertise the checksum extension, which @tus/server does not implement', async () => {
    const response = await fetch(`${server.url}/uploads`, { method: 'OPTIONS' });
    expect(response.status).toBe(204);
    const extensions = (response.headers.get('tus-extension') ?? '').split(',');
    expect(extensions).toEqual(
      expect.arrayContaining(['creation', 'creation-with-upload', 'termination', 'expiration']),
    );
    expect(extensions).not.toContain('checksum');
    expect(response.headers.get('tus-checksum-algorithm')).toBeNull();
    // So a wrong Upload-Checksum is not verified: the bytes are taken as they are (460 would
    // be the answer with the extension). Clients that follow the advertisement send none.
    const created = await createUpload(server.url, 4);
    const url = new URL(created.headers.get('location') ?? '', server.url).href;
    const patched = await patchUpload(url, 0, new Uint8Array([1, 2]), {
      'upload-checksum': 'sha1 AAAAAAAAAAAAAAAAAAAAAAAAAAA=',
    });
    expect(patched.status).toBe(204);
    expect(patched.headers.get('upload-offset')).toBe('2');
    await fetch(url, { method: 'DELETE', headers: { 'tus-resumable': '1.0.0' } });
  });

  it('counts stored and rejected uploads in /metrics', async () => {
    const text = await (await fetch(`${server.url}/metrics`)).text();
    expect(text).toMatch(/^media_uploads_total\{result="stored"\} [2-9]/m);
    expect(text).toMatch(/^media_uploads_total\{result="rejected"\} [2-9]/m);
  });
});
