import { createReadStream } from 'node:fs';
import { basename } from 'node:path';
import { tus, Upload } from 'chunked-uploader';
import { fromFile } from 'chunked-uploader/node';
import { Upload as TusJsUpload } from 'tus-js-client';
import { defineBenchmark } from '../harness/define';
import type { BenchCase } from '../harness/types';
import { ensureUploadInput } from './upload-input';
import { UploadServer } from './upload-server';
import { GiB, MiB } from './util';

const FULL_SIZE = GiB;
const QUICK_SIZE = 64 * MiB;
const CHUNK = 8 * MiB;
const PREFETCH = 2;
/** "Peak RSS ≤ 64 MiB + (prefetch + 1) × chunk", over the client process's own floor. */
const RSS_ALLOWANCE = 64 * MiB + (PREFETCH + 1) * CHUNK;

interface State {
  input: string;
  quick: boolean;
  /** This case's tus server, started by its setup (in the case's own process). */
  server: UploadServer | undefined;
  /** Uploads so far. */
  runs: number;
  /** Process CPU time spent in runs, microseconds. */
  cpuMicros: number;
}

function serverOf(s: State): UploadServer {
  if (s.server === undefined) throw new Error('tus-upload: the tus server is not running');
  return s.server;
}

/** Ours: the engine over a file, core tus (one PATCH per chunk, in order). */
async function ours(s: State, chunkSize: number): Promise<string> {
  const job = new Upload(await fromFile(s.input), {
    protocol: tus({ endpoint: serverOf(s).endpoint }),
    chunkSize,
    prefetch: PREFETCH,
  });
  const { location } = await job.start();
  if (location === undefined) throw new Error('tus-upload: the upload reported no URL');
  return location;
}

/**
 * tus-js-client as its README says to use it in Node: an `fs.ReadStream`
 * (from which it reads each chunk with a fresh stream over the same path).
 */
function tusJsClient(s: State, chunkSize: number | undefined): Promise<string> {
  // Its type declarations list browser inputs only; its Node build takes a ReadStream.
  const file = createReadStream(s.input) as unknown as ConstructorParameters<typeof TusJsUpload>[0];
  return new Promise<string>((resolve, reject) => {
    const upload = new TusJsUpload(file, {
      endpoint: serverOf(s).endpoint,
      metadata: { filename: basename(s.input) },
      ...(chunkSize === undefined ? {} : { chunkSize }),
      onError: reject,
      onSuccess: () =>
        upload.url === null
          ? reject(new Error('tus-upload: tus-js-client reported no URL'))
          : resolve(upload.url),
    });
    upload.start();
  });
}

function uploadCase(
  name: string,
  role: BenchCase<State>['role'],
  description: string,
  upload: (s: State) => Promise<string>,
  extra: Partial<BenchCase<State>> = {},
): BenchCase<State> {
  return {
    name,
    role,
    description,
    // Own process: peak RSS is this client's alone; its server runs in a process of its own.
    isolate: true,
    ...extra,
    setup: async (s) => {
      s.server = await UploadServer.start({ kind: 'tus' });
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
      const cpu = process.cpuUsage();
      const location = await upload(s);
      const used = process.cpuUsage(cpu);
      s.runs++;
      s.cpuMicros += used.user + used.system;
      return location;
    },
    // Untimed: the server must hold an exact copy, or the run does not count.
    check: async (s, location) => {
      if (typeof location !== 'string') throw new Error(`tus-upload: ${name} returned no URL`);
      await serverOf(s).verify(location, s.input, s.quick);
    },
  };
}

/**
 * A 1 GiB file to `@tus/server` on loopback: ours against tus-js-client at
 * the same 8 MiB chunk size, and both as one request.
 */
export const tusUpload = defineBenchmark<State>({
  name: 'tus-upload',
  summary: '1 GiB to @tus/server on loopback, 8 MiB chunks: chunked-uploader vs tus-js-client',
  description:
    'A 1 GiB file of random bytes (64 MiB with `--quick`) uploaded to `@tus/server` 2.4 with `@tus/file-store` 2.1 ' +
    'storing into a temp dir, on 127.0.0.1. Ours is `new Upload(await fromFile(path), { protocol: tus({ endpoint }), ' +
    'chunkSize: 8 MiB, prefetch: 2 }).start()`: core tus (the server advertises neither checksum nor concatenation), ' +
    'the first chunk in the creation `POST` (creation-with-upload), then one `PATCH` per chunk, the next chunks read ' +
    'into pooled buffers while one is on the wire. The peer is tus-js-client 4.3 given an `fs.ReadStream` as its ' +
    'README says for Node, `chunkSize: 8 MiB`. Baselines: tus-js-client without `chunkSize` (the whole file in one ' +
    '`PATCH`, streamed from disk) and ours with one 1 GiB chunk (read whole into memory, then sent). Every client runs ' +
    "in a process of its own, so its peak RSS is that process's kernel high-water mark and baseline its RSS with the " +
    "modules loaded; each has its own server, started in a third process so the server's CPU and memory are never the " +
    "client's. A run is timed from `start()` to the upload's completion; after each run, untimed, the server compares " +
    'what it stored with the file (size and 16 sampled 64 KiB blocks; the whole SHA-256 with `--quick`) and deletes ' +
    'it, and a mismatch fails the case. Each client prints its CPU time per upload. The input is generated once under ' +
    '`os.tmpdir()` and reused. MiB/s of file uploaded.',
  unit: 'MiB/s',
  bytesPerOp: ({ quick }) => (quick ? QUICK_SIZE : FULL_SIZE),
  reference: 'tus-js-client, 8 MiB chunks',
  moduleUrl: import.meta.url,
  singleShot: { runs: 3 },
  setup: async ({ quick }) => ({
    input: await ensureUploadInput(quick ? QUICK_SIZE : FULL_SIZE),
    quick,
    server: undefined,
    runs: 0,
    cpuMicros: 0,
  }),
  cases: [
    uploadCase(
      'Upload, 8 MiB chunks, prefetch 2',
      'ours',
      '`new Upload(await fromFile(path), { protocol: tus({ endpoint }), chunkSize: 8 MiB, prefetch: 2 })`',
      (s) => ours(s, CHUNK),
    ),
    uploadCase(
      'tus-js-client, 8 MiB chunks',
      'peer',
      '`new tus.Upload(fs.createReadStream(path), { endpoint, chunkSize: 8 MiB })`: one `PATCH` per chunk, each read by a new stream',
      (s) => tusJsClient(s, CHUNK),
    ),
    uploadCase(
      'tus-js-client, one PATCH',
      'baseline',
      'the same without `chunkSize`: the whole file streamed in one `PATCH` (nothing to resume from if it fails midway)',
      (s) => tusJsClient(s, undefined),
    ),
    uploadCase(
      'Upload, whole file as one chunk',
      'baseline',
      'ours with `chunkSize` = the file size: one buffer of the whole file, read first and then sent (memory grows with the file)',
      (s) => ours(s, s.quick ? QUICK_SIZE : FULL_SIZE),
      { countCopies: true },
    ),
  ],
  targets: [
    {
      kind: 'ratio',
      case: 'Upload, 8 MiB chunks, prefetch 2',
      vs: 'tus-js-client, 8 MiB chunks',
      atLeast: 1.5,
    },
    {
      kind: 'limit',
      case: 'Upload, 8 MiB chunks, prefetch 2',
      metric: 'rssAboveBaselineBytes',
      atMost: RSS_ALLOWANCE,
      label: 'ours: peak RSS ≤ baseline + 64 MiB + (prefetch 2 + 1) × 8 MiB chunks',
    },
  ],
});
