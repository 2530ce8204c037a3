import { createReadStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { Agent, type IncomingMessage, request } from 'node:http';
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
  /** The whole input in memory: only the floor case loads it (in its setup, untimed). */
  memory: Buffer | undefined;
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

/** One request over `agent`; resolves with the response once its body has been read. */
function exchange(
  agent: Agent,
  url: string,
  method: string,
  headers: Record<string, string>,
  body?: Uint8Array,
): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method, agent, headers }, (res) => {
      res.resume();
      res.once('end', () => resolve(res)).once('error', reject);
    });
    req.once('error', reject);
    req.end(body);
  });
}

/**
 * The floor: the least a client can do per chunk. The whole file is already
 * in memory (read in the case's setup, untimed); a creation `POST`, then one
 * `PATCH` per `chunkSize` bytes, each written in one `write` over one
 * keep-alive connection, the next sent as soon as the previous is answered.
 * No reads, no retries, no progress, no checks beyond the status: what is
 * left is the server's own cost per request and the wire.
 */
async function floor(s: State, chunkSize: number): Promise<string> {
  const data = s.memory;
  if (data === undefined) throw new Error('tus-upload: the floor case has no input in memory');
  const endpoint = serverOf(s).endpoint;
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  try {
    const tusHeaders = { 'tus-resumable': '1.0.0' };
    const created = await exchange(agent, endpoint, 'POST', {
      ...tusHeaders,
      'upload-length': String(data.length),
      'content-length': '0',
    });
    const location = created.headers.location;
    if (created.statusCode !== 201 || location === undefined) {
      throw new Error(`tus-upload: the floor's POST got ${created.statusCode}`);
    }
    const url = new URL(location, endpoint).href;
    for (let offset = 0; offset < data.length; offset += chunkSize) {
      const body = data.subarray(offset, Math.min(data.length, offset + chunkSize));
      const res = await exchange(
        agent,
        url,
        'PATCH',
        {
          ...tusHeaders,
          'upload-offset': String(offset),
          'content-type': 'application/offset+octet-stream',
          'content-length': String(body.length),
        },
        body,
      );
      if (res.statusCode !== 204)
        throw new Error(`tus-upload: the floor's PATCH got ${res.statusCode}`);
    }
    return url;
  } finally {
    agent.destroy();
  }
}

/** The floor cases hold the file in memory, read in their setup (in their own process, untimed). */
const FLOOR: Partial<BenchCase<State>> = {
  countCopies: false,
  setup: async (s) => {
    s.memory = await readFile(s.input);
  },
};

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
      await extra.setup?.(s);
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
 * the same 8 MiB chunk size, both as one request, and the floor any client
 * at 8 MiB chunks is bound by (the server's own cost per `PATCH`).
 */
export const tusUpload = defineBenchmark<State>({
  name: 'tus-upload',
  summary: '1 GiB to @tus/server on loopback, 8 MiB chunks: chunked-uploader vs tus-js-client',
  description:
    'A 1 GiB file of random bytes (64 MiB with `--quick`) uploaded to `@tus/server` 2.4 with `@tus/file-store` 2.1 ' +
    'storing into a temp dir, on 127.0.0.1. Ours is `new Upload(await fromFile(path), { protocol: tus({ endpoint }), ' +
    'chunkSize: 8 MiB, prefetch: 2 }).start()`: core tus, the first chunk in the creation `POST` ' +
    '(creation-with-upload), then one `PATCH` per chunk, the next chunks read into pooled buffers while one is on the ' +
    'wire; it also sends one `OPTIONS` first and one `HEAD` at the end (the server confirms it holds every byte). ' +
    'Like for like: the server advertises neither checksum nor concatenation, so neither client hashes anything ' +
    '(our default `checksum: sha1` applies only where the server lists it), no state is written per chunk (the ' +
    'default in-memory store), and both keep their connection alive between requests. The peer is tus-js-client ' +
    '4.3 given an `fs.ReadStream` as its README says for Node, `chunkSize: 8 MiB` (a bodiless `POST`, then one ' +
    '`PATCH` per chunk over `node:http`, each streamed from the file). Baselines: tus-js-client without `chunkSize` (the whole ' +
    'file in one `PATCH`, streamed from disk), ours with one 1 GiB chunk (read whole into memory, then sent), and ' +
    'two floors: the file in memory before the run and sent with one `write` per `PATCH`, in 8 MiB `PATCH`es and in ' +
    "one, whose difference is the server's own cost of the extra requests. Every client runs in a process of its own, so its peak RSS is that process's kernel " +
    'high-water mark and baseline its RSS with the modules loaded; each has its own server, started in a third ' +
    "process so the server's CPU and memory are never the client's. A run is timed from `start()` to the upload's " +
    'completion; after each run, untimed, the server compares what it stored with the file (size and 16 sampled ' +
    '64 KiB blocks; the whole SHA-256 with `--quick`) and deletes it, and a mismatch fails the case. Each client ' +
    'prints its CPU time per upload. The input is generated once under `os.tmpdir()` and reused. MiB/s of file ' +
    'uploaded.',
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
    memory: undefined,
  }),
  cases: [
    uploadCase(
      'Upload, 8 MiB chunks, prefetch 2',
      'ours',
      '`new Upload(await fromFile(path), { protocol: tus({ endpoint }), chunkSize: 8 MiB, prefetch: 2 })`: requests through `fetch`',
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
    uploadCase(
      'Floor: 8 MiB PATCHes from memory',
      'baseline',
      "not a client: the file read into memory before the run, then a `POST` and one 8 MiB `PATCH` after another, each one `write` on a keep-alive `node:http` connection; no reads, retries or progress. What is left is the server's cost per request: no client at 8 MiB chunks can do better",
      (s) => floor(s, CHUNK),
      FLOOR,
    ),
    uploadCase(
      'Floor: one PATCH from memory',
      'baseline',
      'the same with the whole file in one `PATCH`: the gap to the row above is what 127 more requests cost the server',
      (s) => floor(s, s.quick ? QUICK_SIZE : FULL_SIZE),
      FLOOR,
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
