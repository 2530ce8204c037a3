import { createReadStream } from 'node:fs';
import { S3Client } from '@aws-sdk/client-s3';
import { Upload as S3Upload } from '@aws-sdk/lib-storage';
import { s3, Upload } from 'chunked-uploader';
import { fromFile } from 'chunked-uploader/node';
import { defineBenchmark } from '../harness/define';
import type { BenchCase } from '../harness/types';
import { ensureUploadInput } from './upload-input';
import { S3_BUCKET, S3_CREDENTIALS, UploadServer } from './upload-server';
import { MiB } from './util';

const FULL_SIZE = 256 * MiB;
const QUICK_SIZE = 32 * MiB;
const PART = 8 * MiB;
const PARALLEL = 4;
const REGION = 'us-east-1';

interface State {
  input: string;
  quick: boolean;
  /** This case's s3rver, started by its setup (in the case's own process). */
  server: UploadServer | undefined;
  /** Uploads so far: each run writes its own key. */
  runs: number;
  /** Process CPU time spent in runs, microseconds. */
  cpuMicros: number;
}

function serverOf(s: State): UploadServer {
  if (s.server === undefined) throw new Error('s3-upload: s3rver is not running');
  return s.server;
}

/** Ours: the engine over a file, S3 multipart, 4 parts on the wire. */
async function ours(s: State, key: string): Promise<void> {
  const job = new Upload(await fromFile(s.input), {
    protocol: s3({
      endpoint: serverOf(s).endpoint,
      bucket: S3_BUCKET,
      key,
      region: REGION,
      credentials: S3_CREDENTIALS,
    }),
    chunkSize: PART,
    parallel: PARALLEL,
  });
  await job.start();
}

/** The AWS SDK's own multipart uploader, over a file stream as its docs show. */
async function libStorage(s: State, key: string): Promise<void> {
  const client = new S3Client({
    endpoint: serverOf(s).endpoint,
    region: REGION,
    credentials: S3_CREDENTIALS,
    forcePathStyle: true,
  });
  try {
    const upload = new S3Upload({
      client,
      params: { Bucket: S3_BUCKET, Key: key, Body: createReadStream(s.input) },
      partSize: PART,
      queueSize: PARALLEL,
    });
    await upload.done();
  } finally {
    client.destroy();
  }
}

function uploadCase(
  name: string,
  role: BenchCase<State>['role'],
  description: string,
  upload: (s: State, key: string) => Promise<void>,
): BenchCase<State> {
  const slug = name.replace(/[^a-z0-9]+/gi, '-').toLowerCase();
  return {
    name,
    role,
    description,
    // Own process: peak RSS is this client's alone; s3rver runs in a process of its own.
    isolate: true,
    setup: async (s) => {
      s.server = await UploadServer.start({ kind: 's3' });
    },
    teardown: async (s) => {
      await s.server?.close();
      s.server = undefined;
      if (s.runs > 0) {
        console.log(
          `  ${name}: client CPU ${(s.cpuMicros / s.runs / 1e6).toFixed(2)} s per upload`,
        );
      }
    },
    run: async (s) => {
      const key = `${slug}-${++s.runs}.bin`;
      const cpu = process.cpuUsage();
      await upload(s, key);
      const used = process.cpuUsage(cpu);
      s.cpuMicros += used.user + used.system;
      return key;
    },
    // Untimed: s3rver must hold an exact copy, or the run does not count.
    check: async (s, key) => {
      if (typeof key !== 'string') throw new Error(`s3-upload: ${name} returned no key`);
      await serverOf(s).verify(key, s.input, s.quick);
    },
  };
}

/**
 * S3 multipart uploads of a 256 MiB file to s3rver: ours against
 * `@aws-sdk/lib-storage` with the same part size and concurrency.
 */
export const s3Upload = defineBenchmark<State>({
  name: 's3-upload',
  summary:
    '256 MiB S3 multipart to s3rver, 8 MiB parts × 4 in flight: chunked-uploader vs lib-storage',
  description:
    'A 256 MiB file of random bytes (32 MiB with `--quick`) uploaded to s3rver 3.7 (an S3 emulator storing into a ' +
    'temp dir) on 127.0.0.1 as an S3 multipart upload in 8 MiB parts, 4 on the wire at once. Ours is ' +
    '`new Upload(await fromFile(path), { protocol: s3({ endpoint, bucket, key, credentials }), chunkSize: 8 MiB, ' +
    'parallel: 4 }).start()` (parts read into pooled buffers, `prefetch` 2, each sent with its `Content-MD5`, ' +
    'the default, signed with `UNSIGNED-PAYLOAD`). The peer is `@aws-sdk/lib-storage` 3.1169 `new Upload({ client, ' +
    'params: { Bucket, Key, Body: fs.createReadStream(path) }, partSize: 8 MiB, queueSize: 4 }).done()` with an ' +
    '`S3Client` on the same endpoint, in its defaults (each part buffered from the stream, sent with a CRC32 ' +
    'checksum header and its SHA-256 in the signature). Every client runs in a process of its own, so its peak RSS ' +
    "is that process's kernel high-water mark (baseline: its RSS with both clients' modules loaded); each has its " +
    'own s3rver in a third process. A run is timed from the start to `CompleteMultipartUpload` answering; s3rver ' +
    'assembles the object from the stored parts within that request, the same work for both. After each run, untimed, ' +
    'the server compares the object with the file (size and 16 sampled 64 KiB blocks; the whole SHA-256 with ' +
    '`--quick`) and deletes it; a mismatch fails the case. Each client prints its CPU time per upload. MiB/s of file uploaded.',
  unit: 'MiB/s',
  bytesPerOp: ({ quick }) => (quick ? QUICK_SIZE : FULL_SIZE),
  reference: '@aws-sdk/lib-storage Upload',
  moduleUrl: import.meta.url,
  singleShot: { runs: 5 },
  setup: async ({ quick }) => ({
    input: await ensureUploadInput(quick ? QUICK_SIZE : FULL_SIZE),
    quick,
    server: undefined,
    runs: 0,
    cpuMicros: 0,
  }),
  cases: [
    uploadCase(
      'Upload, s3(), 8 MiB parts × 4',
      'ours',
      '`new Upload(await fromFile(path), { protocol: s3({ … }), chunkSize: 8 MiB, parallel: 4 })`',
      ours,
    ),
    uploadCase(
      '@aws-sdk/lib-storage Upload',
      'peer',
      '`new Upload({ client, params: { Bucket, Key, Body: fs.createReadStream(path) }, partSize: 8 MiB, queueSize: 4 })`',
      libStorage,
    ),
  ],
  targets: [
    {
      kind: 'ratio',
      case: 'Upload, s3(), 8 MiB parts × 4',
      vs: '@aws-sdk/lib-storage Upload',
      atLeast: 1,
    },
    {
      kind: 'ratio',
      case: 'Upload, s3(), 8 MiB parts × 4',
      vs: '@aws-sdk/lib-storage Upload',
      metric: 'peakRssBytes',
      atMost: 1,
      label: "ours: peak RSS ≤ lib-storage's",
    },
  ],
});
