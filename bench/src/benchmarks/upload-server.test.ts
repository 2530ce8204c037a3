import { randomFillSync } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { s3, tus, Upload } from 'chunked-uploader';
import { fromFile } from 'chunked-uploader/node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describeSizes } from './adaptive-chunk';
import { S3_BUCKET, S3_CREDENTIALS, UploadServer } from './upload-server';
import { MiB } from './util';

let dir: string;
let input: string;
let other: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'upload-server-test-'));
  input = join(dir, 'input.bin');
  other = join(dir, 'other.bin');
  await writeFile(input, randomFillSync(Buffer.alloc(2 * MiB + 12_345)));
  await writeFile(other, randomFillSync(Buffer.alloc(2 * MiB + 12_345)));
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function tusUpload(server: UploadServer, path: string): Promise<string> {
  const { location } = await new Upload(await fromFile(path), {
    protocol: tus({ endpoint: server.endpoint }),
    chunkSize: MiB,
  }).start();
  return location as string;
}

describe('UploadServer (tus)', () => {
  let server: UploadServer;

  beforeAll(async () => {
    server = await UploadServer.start({ kind: 'tus' });
  });

  afterAll(async () => {
    await server.close();
  });

  it('verifies an exact copy, then deletes it', async () => {
    const location = await tusUpload(server, input);
    await expect(server.verify(location, input, true)).resolves.toBe(2 * MiB + 12_345);
    await expect(server.verify(location, input, false)).rejects.toThrow(/ENOENT/);
  });

  it('refuses a copy of other bytes of the same size', async () => {
    const location = await tusUpload(server, other);
    await expect(server.verify(location, input, false)).rejects.toThrow(/sampled block/);
  });

  it('closes, and a closed server answers no more requests', async () => {
    const gone = await UploadServer.start({ kind: 'tus' });
    await gone.close();
    await gone.close();
    await expect(gone.verify('http://127.0.0.1/files/x', input, false)).rejects.toThrow();
  });
});

describe('UploadServer (tus behind a link model)', () => {
  it('delays every request and paces bodies', async () => {
    const server = await UploadServer.start({
      kind: 'tus',
      link: { latencyMs: 50, bytesPerSecond: 20e6 },
    });
    try {
      const started = performance.now();
      const location = await tusUpload(server, input);
      const ms = performance.now() - started;
      // OPTIONS, POST + 2 PATCHes, HEAD: 5 × 50 ms, and 2.1 MB at 20 MB/s is 105 ms more.
      expect(ms).toBeGreaterThan(300);
      await expect(server.verify(location, input, true)).resolves.toBe(2 * MiB + 12_345);
    } finally {
      await server.close();
    }
  });
});

describe('UploadServer (s3)', () => {
  it('runs s3rver with the bench bucket, and verifies an object by its key', async () => {
    const server = await UploadServer.start({ kind: 's3' });
    try {
      const key = 'verify-me.bin';
      await new Upload(await fromFile(input), {
        protocol: s3({
          endpoint: server.endpoint,
          bucket: S3_BUCKET,
          key,
          credentials: S3_CREDENTIALS,
        }),
      }).start();
      await expect(server.verify(key, input, true)).resolves.toBe(2 * MiB + 12_345);
      await expect(server.verify(key, input, true)).rejects.toThrow(/ENOENT/);
    } finally {
      await server.close();
    }
  });
});

describe('describeSizes', () => {
  it('lists chunk sizes in MiB with repeats folded', () => {
    expect(describeSizes([8, 8, 8, 16, 32, 32, 0.5].map((n) => n * MiB))).toBe(
      '8 ×3, 16, 32 ×2, 0.5',
    );
    expect(describeSizes([])).toBe('');
  });
});
