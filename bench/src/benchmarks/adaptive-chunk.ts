import { type ChunkEvent, tus, Upload, type UploadOptions } from 'chunked-uploader';
import { fromFile } from 'chunked-uploader/node';
import { defineBenchmark } from '../harness/define';
import type { BenchCase, Target } from '../harness/types';
import { ensureUploadInput } from './upload-input';
import { type LinkModel, UploadServer } from './upload-server';
import { MiB } from './util';

const FULL_SIZE = 512 * MiB;
const QUICK_SIZE = 32 * MiB;
/** The link every case uploads over: 30 ms per request, 100 MB/s (800 Mbit/s) for bodies. */
const LINK: LinkModel = { latencyMs: 30, bytesPerSecond: 100e6 };
/** The sweep of fixed chunk sizes, in MiB. */
const SWEEP = [1, 8, 32, 100, 200];
const ADAPTIVE = { minChunkSize: MiB, maxChunkSize: 256 * MiB };
const ADAPTIVE_CASE = 'adaptive, 1–256 MiB';

interface State {
  input: string;
  quick: boolean;
  /** This case's tus server behind the link model, started by its setup (in the case's own process). */
  server: UploadServer | undefined;
  /** Chunk sizes of the last run, in order. */
  chunks: number[];
  runs: number;
}

function serverOf(s: State): UploadServer {
  if (s.server === undefined) throw new Error('adaptive-chunk: the tus server is not running');
  return s.server;
}

/** `8 ×3, 16, 8 ×60`: chunk sizes in MiB, repeats folded. */
export function describeSizes(lengths: readonly number[]): string {
  const parts: string[] = [];
  for (let i = 0; i < lengths.length; ) {
    let j = i;
    while (j < lengths.length && lengths[j] === lengths[i]) j++;
    const mib = Number(((lengths[i] as number) / MiB).toFixed(1));
    parts.push(j - i > 1 ? `${mib} ×${j - i}` : `${mib}`);
    i = j;
  }
  return parts.join(', ');
}

function uploadCase(
  name: string,
  role: BenchCase<State>['role'],
  description: string,
  options: Omit<UploadOptions, 'protocol'>,
): BenchCase<State> {
  return {
    name,
    role,
    description,
    // Own process: a case's buffers (up to 3 × 256 MiB) never sit beside another's.
    isolate: true,
    setup: async (s) => {
      s.server = await UploadServer.start({ kind: 'tus', link: LINK });
    },
    teardown: async (s) => {
      await s.server?.close();
      s.server = undefined;
    },
    run: async (s) => {
      const job = new Upload(await fromFile(s.input), {
        protocol: tus({ endpoint: serverOf(s).endpoint }),
        ...options,
      });
      const chunks: number[] = [];
      job.on('chunk', (chunk: ChunkEvent) => chunks.push(chunk.length));
      const { location } = await job.start();
      s.chunks = chunks;
      return location;
    },
    // Untimed: the server must hold an exact copy, or the run does not count.
    check: async (s, location) => {
      if (typeof location !== 'string') throw new Error(`adaptive-chunk: ${name} returned no URL`);
      await serverOf(s).verify(location, s.input, s.quick);
      s.runs++;
      if (options.adaptive !== undefined) {
        console.log(`  ${name}, run ${s.runs}: chunks of ${describeSizes(s.chunks)} MiB`);
      }
    },
  };
}

const cases: BenchCase<State>[] = [
  ...SWEEP.map((mib) =>
    uploadCase(
      `fixed ${mib} MiB`,
      'baseline',
      `\`chunkSize: ${mib} MiB\`${mib === 1 ? ': every request pays the latency for little data' : ''}`,
      { chunkSize: mib * MiB },
    ),
  ),
  uploadCase(
    ADAPTIVE_CASE,
    'ours',
    '`adaptive: { minChunkSize: 1 MiB, maxChunkSize: 256 MiB }`, starting from the default `chunkSize` (8 MiB)',
    { adaptive: ADAPTIVE },
  ),
];

/** Adaptive ≥ 0.9× every fixed size is adaptive ≥ 0.9× the best of the sweep, whichever that is. */
const targets: Target[] = SWEEP.map((mib) => ({
  kind: 'ratio',
  case: ADAPTIVE_CASE,
  vs: `fixed ${mib} MiB`,
  atLeast: 0.9,
  label: `adaptive ≥ 0.9× fixed ${mib} MiB (so ≥ 0.9× the best fixed size)`,
}));

/**
 * Adaptive chunk sizing against a bandwidth- and latency-limited tus
 * server, beside a sweep of fixed chunk sizes.
 */
export const adaptiveChunk = defineBenchmark<State>({
  name: 'adaptive-chunk',
  summary: 'tus over a 30 ms / 100 MB/s link: chunk sizes 1–200 MiB vs adaptive',
  description:
    'How the chunk size decides the throughput of a tus upload over a link with latency, and whether adaptive mode ' +
    'finds a good one by itself. A 512 MiB file of random bytes (32 MiB with `--quick`) uploaded with ' +
    '`new Upload(await fromFile(path), { protocol: tus({ endpoint }), … })` (`prefetch` 2, the default) to ' +
    "`@tus/server` with `@tus/file-store`, behind a link model in the server's process: every request waits " +
    `${LINK.latencyMs} ms before the server sees it (a round trip plus request overhead), then its body is paced to ` +
    `${LINK.bytesPerSecond / 1e6} MB/s (800 Mbit/s). Each request costs the latency once, so small chunks are ` +
    'latency-bound (1 MiB moves in about 10 ms but waits 30 ms) and the curve flattens once the body time dwarfs ' +
    'the latency. The sweep uses fixed `chunkSize`s of 1, 8, 32, 100 and 200 MiB; adaptive mode is ' +
    '`adaptive: { minChunkSize: 1 MiB, maxChunkSize: 256 MiB }`, which measures each chunk and climbs a ladder of ' +
    'doubling sizes while a larger chunk is at least 5 % faster; its chunk sizes per run are printed. Each case runs ' +
    'in a process of its own with its own server in a third process. A run is timed from `start()` to the ' +
    "upload's completion (the model delays the discovery `OPTIONS` and the final `HEAD` too); after each run, " +
    'untimed, the server compares the stored upload with the file and deletes it. The chart is the published sweep. ' +
    'MiB/s of file uploaded.',
  unit: 'MiB/s',
  bytesPerOp: ({ quick }) => (quick ? QUICK_SIZE : FULL_SIZE),
  reference: 'fixed 200 MiB',
  moduleUrl: import.meta.url,
  singleShot: { runs: 3 },
  setup: async ({ quick }) => ({
    input: await ensureUploadInput(quick ? QUICK_SIZE : FULL_SIZE),
    quick,
    server: undefined,
    chunks: [],
    runs: 0,
  }),
  cases,
  targets,
});
