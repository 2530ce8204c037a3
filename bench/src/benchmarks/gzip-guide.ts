import { Buffer } from 'node:buffer';
import { once } from 'node:events';
import { createReadStream, createWriteStream } from 'node:fs';
import { open, rename, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { finished, pipeline as nodePipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import { pipeline } from 'backpressure-stream';
import { defineBenchmark } from '../harness/define';
import type { BenchCase } from '../harness/types';
import { GiB, MiB, seededRandom } from './util';

const FULL_SIZE = 2 * GiB;
const QUICK_SIZE = 64 * MiB;
/** The file is written in blocks of this size, each generated afresh. */
const BLOCK = 64 * MiB;
/** Our pipeline's one budget for everything it buffers between and inside stages. */
const BUDGET = MiB;
/** "Peak RSS ≤ 100 MB", read strictly: 10^8 bytes (95.4 MiB). */
const RSS_TARGET = 100e6;
/** First bytes of the input: a file with them and the right size is reused. */
const MAGIC = 'streaming-primitives bench: gzip-guide input v1\n';

interface State {
  input: string;
  size: number;
}

function sizeLabel(size: number): string {
  return size >= GiB ? `${size / GiB}GiB` : `${size / MiB}MiB`;
}

/** Where the input lives: one file per size, reused across runs while it checks out. */
export function inputPath(size: number): string {
  return join(tmpdir(), `streaming-primitives-bench-gzip-input-${sizeLabel(size)}.txt`);
}

function outputPath(caseName: string): string {
  const slug = caseName.replace(/[^a-z0-9]+/gi, '-').toLowerCase();
  return join(tmpdir(), `streaming-primitives-bench-gzip-${process.pid}-${slug}.gz`);
}

/**
 * `size` bytes of log-like text: lines of words from a 4096-word vocabulary
 * (skewed towards the common ones) with numbers sprinkled in. gzip shrinks it
 * about 2.3× at its default level: compressible, but not trivially.
 */
function textBlock(size: number, seed: number): Buffer {
  const random = seededRandom(seed);
  const words: string[] = [];
  for (let i = 0; i < 4096; i++) {
    let word = '';
    const n = 2 + Math.floor(random() * 9);
    for (let j = 0; j < n; j++) word += String.fromCharCode(97 + Math.floor(random() * 26));
    words.push(word);
  }
  const block = Buffer.allocUnsafe(size);
  let at = 0;
  while (at < size) {
    let line = '';
    const count = 6 + Math.floor(random() * 10);
    for (let j = 0; j < count; j++) {
      line += `${words[Math.floor(random() * random() * 4096)]} `;
      if (random() < 0.1) line += `${Math.floor(random() * 1e6)} `;
    }
    at += block.write(`${line}\n`, at, 'latin1');
  }
  return block;
}

async function isReusable(path: string, size: number): Promise<boolean> {
  try {
    if ((await stat(path)).size !== size) return false;
    const file = await open(path);
    try {
      const head = Buffer.alloc(MAGIC.length);
      await file.read(head, 0, head.length, 0);
      return head.toString('latin1') === MAGIC;
    } finally {
      await file.close();
    }
  } catch {
    return false;
  }
}

/** Writes the input once (a few seconds for 2 GiB); later runs and child processes reuse it. */
async function ensureInput(size: number): Promise<string> {
  const path = inputPath(size);
  if (await isReusable(path, size)) return path;
  const partial = `${path}.${process.pid}.partial`;
  const out = createWriteStream(partial);
  for (let written = 0, k = 0; written < size; written += BLOCK, k++) {
    const block = textBlock(Math.min(BLOCK, size - written), 0x91e + k);
    if (written === 0) block.write(MAGIC, 0, 'latin1');
    if (!out.write(block)) await once(out, 'drain');
  }
  out.end();
  await finished(out);
  await rename(partial, path);
  return path;
}

/** The gzip trailer's last 4 bytes are the input size mod 2^32: proof every byte went through. */
async function checkOutput(path: string, size: number): Promise<void> {
  const file = await open(path);
  try {
    const { size: outSize } = await file.stat();
    const tail = Buffer.alloc(4);
    await file.read(tail, 0, 4, outSize - 4);
    if (tail.readUInt32LE(0) !== size % 2 ** 32) {
      throw new Error(`gzip-guide: ${path} does not hold all ${size} input bytes`);
    }
  } finally {
    await file.close();
  }
}

/** Reads with `'data'` and writes without ever looking at `write()`'s return value: the guide's bad example. */
async function ignoringBackpressure(input: string, output: string): Promise<void> {
  const source = createReadStream(input);
  const gzip = createGzip();
  const sink = createWriteStream(output);
  source.on('data', (chunk) => gzip.write(chunk));
  source.on('end', () => gzip.end());
  gzip.on('data', (chunk) => sink.write(chunk));
  gzip.on('end', () => sink.end());
  await Promise.all([finished(source), finished(gzip), finished(sink)]);
}

function gzipCase(
  name: string,
  role: BenchCase<State>['role'],
  description: string,
  gzip: (input: string, output: string) => Promise<unknown>,
): BenchCase<State> {
  const output = outputPath(name);
  return {
    name,
    role,
    description,
    isolate: true,
    run: async (s) => {
      await gzip(s.input, output);
      await checkOutput(output, s.size);
    },
    teardown: () => rm(output, { force: true }),
  };
}

/**
 * Node's backpressure guide, run through the package: gzip a 2 GiB file to
 * disk with our pipeline, Node's `stream.pipeline`, and the same streams
 * wired without honouring backpressure; peak RSS of each in its own process.
 */
export const gzipGuide = defineBenchmark<State>({
  name: 'gzip-guide',
  summary: "Node's backpressure guide: gzip 2 GiB to disk, peak RSS with and without backpressure",
  description:
    "The scenario of Node's backpressure guide: gzip a 2 GiB file (log-like text, about 2.3× compressible; 64 MiB " +
    'with `--quick`) from disk to disk. Ours is `pipeline(createReadStream(in), createGzip(), createWriteStream(out), ' +
    "{ budget: 1 MiB })`; beside it Node's own `stream.pipeline` over the same three streams, and the same streams " +
    "wired without backpressure (`'data'` → `gzip.write()` and `'data'` → `out.write()`, return values ignored), so " +
    'the file is read faster than gzip can take it and piles up in memory. Each case runs once, in a process of its ' +
    "own, so its peak RSS is that process's kernel high-water mark; baseline is the same process before the run " +
    '(Node, the tsx loader and the modules: the floor under any case). The input is generated once under ' +
    '`os.tmpdir()` and reused while its size and header check out; the output is checked through the gzip trailer ' +
    'and deleted. MiB/s of input compressed.',
  unit: 'MiB/s',
  bytesPerOp: ({ quick }) => (quick ? QUICK_SIZE : FULL_SIZE),
  reference: 'Node stream.pipeline',
  moduleUrl: import.meta.url,
  singleShot: { runs: 1 },
  setup: async ({ quick }) => {
    const size = quick ? QUICK_SIZE : FULL_SIZE;
    return { input: await ensureInput(size), size };
  },
  cases: [
    gzipCase(
      'pipeline(), budget 1 MiB',
      'ours',
      '`pipeline(createReadStream(in), createGzip(), createWriteStream(out), { budget: 1 MiB })`',
      (input, output) =>
        pipeline(createReadStream(input), createGzip(), createWriteStream(output), {
          budget: BUDGET,
        }),
    ),
    gzipCase(
      'Node stream.pipeline',
      'peer',
      '`stream/promises` `pipeline(createReadStream(in), createGzip(), createWriteStream(out))`',
      (input, output) =>
        nodePipeline(createReadStream(input), createGzip(), createWriteStream(output)),
    ),
    gzipCase(
      'ignoring backpressure',
      'baseline',
      "the same streams, `'data'` handlers calling `gzip.write()` and `out.write()` without checking their return value",
      ignoringBackpressure,
    ),
  ],
  targets: [
    {
      kind: 'limit',
      case: 'pipeline(), budget 1 MiB',
      metric: 'peakRssBytes',
      atMost: RSS_TARGET,
      label: 'ours: peak RSS ≤ 100 MB (10^8 bytes)',
    },
  ],
});
