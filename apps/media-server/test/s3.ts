import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import S3rver from 's3rver';
import { loadConfig } from '../src/config.ts';
import { s3Storage } from '../src/storage/s3.ts';
import type { VideoStorage } from '../src/storage/types.ts';

/** A real S3 peer (s3rver) on a loopback port with one bucket, `media`. */
export interface TestS3 {
  readonly s3: S3rver;
  /** The environment that points the server at the bucket under `prefix`. */
  readonly env: Record<string, string>;
  /** A fresh storage client for that environment (one per server instance, as in production). */
  storage(): VideoStorage;
  close(): Promise<void>;
}

/** Starts s3rver in a temp directory; keys go under `prefix` (e.g. `lib/`). */
export async function startS3(prefix: string): Promise<TestS3> {
  const dir = await mkdtemp(join(tmpdir(), 's3rver-'));
  const s3 = new S3rver({
    port: 0,
    address: '127.0.0.1',
    silent: true,
    directory: dir,
    configureBuckets: [{ name: 'media' }],
  });
  const { port } = await s3.run();
  const env = {
    S3_BUCKET: 'media',
    S3_ENDPOINT: `http://127.0.0.1:${port}`,
    S3_ACCESS_KEY_ID: 'S3RVER',
    S3_SECRET_ACCESS_KEY: 'S3RVER',
    S3_PREFIX: prefix,
  };
  return {
    s3,
    env,
    storage() {
      const config = loadConfig([], { ...env, DATA_DIR: dir });
      if (config.storage.kind !== 's3') throw new Error('expected S3 storage from the environment');
      return s3Storage(config.storage);
    },
    async close() {
      await s3.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
