import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { startServer, type TestServer } from '../server.ts';
import {
  createUpload,
  errorBody,
  fetchSha256,
  headUpload,
  idOf,
  sha256,
  statusOf,
  tusUpload,
  uploadFixtures,
} from './helpers.ts';

const run = promisify(execFile);

/** Whether this process may mount a tmpfs (root, or CAP_SYS_ADMIN): then the disk really fills up. */
async function canMountTmpfs(): Promise<boolean> {
  const probe = await mkdtemp(join(tmpdir(), 'tmpfs-probe-'));
  try {
    await run('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', probe]);
    await run('umount', [probe]);
    return true;
  } catch {
    return false;
  } finally {
    await rm(probe, { recursive: true, force: true });
  }
}

const mountable = await canMountTmpfs();
const cleanups: (() => Promise<void>)[] = [];

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function serverOver(dir: string): Promise<TestServer> {
  const server = await startServer({}, { dir });
  cleanups.push(() => server.close());
  return server;
}

describe('a full staging disk', () => {
  it.skipIf(!mountable)(
    'answers 507 mid-upload on a tmpfs that fills up, keeps what was written, and resumes byte-identical once space is freed',
    async () => {
      const video = await readFile((await uploadFixtures()).video);
      const dir = await mkdtemp(join(tmpdir(), 'media-server-full-'));
      cleanups.push(() => rm(dir, { recursive: true, force: true }));
      const uploads = join(dir, 'uploads');
      await mkdir(uploads);
      // 4 MiB of which a filler takes 3: about 1 MiB is left for a 2.3 MB upload.
      await run('mount', ['-t', 'tmpfs', '-o', 'size=4m', 'tmpfs', uploads]);
      cleanups.push(async () => {
        await run('umount', [uploads]);
      });
      const filler = join(uploads, 'filler');
      await writeFile(filler, Buffer.alloc(3 * 2 ** 20, 1));
      const server = await serverOver(dir);

      // One PATCH with the whole file (tus-js-client's default chunk size).
      const failed = await tusUpload(video, {
        endpoint: `${server.url}/uploads`,
        metadata: { filename: 'full.mp4' },
      });
      if (failed.ok) throw new Error('the upload fitted on the full disk');
      expect(statusOf(failed.error)).toBe(507);
      expect(errorBody(failed.error)?.code).toBe('INSUFFICIENT_STORAGE');
      const url = new URL(failed.url ?? '', server.url).href;
      const head = await headUpload(url);
      expect(head.status).toBe(200);
      expect(head.offset).toBeGreaterThan(0);
      expect(head.offset).toBeLessThan(video.byteLength);
      expect((await stat(join(uploads, idOf(url)))).size).toBe(head.offset);

      await rm(filler);
      const resumed = await tusUpload(video, { uploadUrl: url });
      if (!resumed.ok) throw resumed.error;
      const id = resumed.response.getHeader('video-id') ?? '';
      expect(id).toBe(idOf(url));
      expect(await fetchSha256(`${server.url}/videos/${id}`)).toEqual({
        status: 200,
        sha256: sha256(video),
      });
    },
  );

  it('answers 507 when the kernel reports ENOSPC (/dev/full as the staged file), and the upload resumes afterwards', async () => {
    const video = await readFile((await uploadFixtures()).video);
    const dir = await mkdtemp(join(tmpdir(), 'media-server-devfull-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const server = await serverOver(dir);
    const created = await createUpload(server.url, video.byteLength);
    const url = new URL(created.headers.get('location') ?? '', server.url).href;
    const staged = join(dir, 'uploads', idOf(url));
    // Every write to /dev/full fails with ENOSPC, exactly as on a full filesystem.
    await rm(staged);
    await symlink('/dev/full', staged);

    const failed = await tusUpload(video, { uploadUrl: url });
    if (failed.ok) throw new Error('the upload was written to /dev/full');
    expect(statusOf(failed.error)).toBe(507);
    expect(errorBody(failed.error)?.message).toMatch(/disk is full/);
    expect(await headUpload(url)).toMatchObject({ status: 200, offset: 0 });

    await rm(staged);
    await writeFile(staged, '');
    const resumed = await tusUpload(video, { uploadUrl: url });
    if (!resumed.ok) throw resumed.error;
    const id = resumed.response.getHeader('video-id') ?? '';
    expect((await fetchSha256(`${server.url}/videos/${id}`)).sha256).toBe(sha256(video));
  });
});
