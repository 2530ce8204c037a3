import { Buffer } from 'node:buffer';
import { once } from 'node:events';
import { createReadStream, createWriteStream } from 'node:fs';
import { open, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { finished, pipeline as nodePipeline } from 'node:stream/promises';
import { crc32, createGzip } from 'node:zlib';
import { pipeline } from 'backpressure-stream';
import { readFdInto } from 'buffer-view/node';
import { defineBenchmark } from '../harness/define';
import type { BenchCase } from '../harness/types';
import { GiB, MiB, seededRandom } from './util';

const FULL_SIZE = 2 * GiB;
const QUICK_SIZE = 64 * MiB;
/** The file is written in blocks of this size, each generated afresh. */
const BLOCK = 64 * MiB;
/** Our pipeline's one budget for everything it buffers between and inside stages. */
const BUDGET = MiB;
/** A read of the pooled source: what `fs.createReadStream` reads at a time. */
const READ_CHUNK = 64 * 1024;
/**
 * Buffers the pooled source cycles through. A buffer is read into again
 * only after POOL - 1 later chunks were read, and no pipeline here can
 * still hold it then: ours holds at most `budget + holders × chunk` (4
 * holders: two links and two metered stages; see `pipeline()`) plus the
 * chunk the source is yielding, 21 chunks; Node's (from an async iterable)
 * its readable's 16 objects plus gzip's 16 KiB writable buffer. The output's
 * CRC-32 is checked, so a buffer reused too early would fail the run.
 */
const POOL = Math.ceil(BUDGET / READ_CHUNK) + 16;
/** "Peak RSS ≤ 100 MB", read strictly: 10^8 bytes (95.4 MiB). */
const RSS_TARGET = 100e6;
/** First bytes of the input: a file with them and the right size is reused. */
const MAGIC = 'streaming-primitives bench: gzip-guide input v1\n';

interface State {
  input: string;
  size: number;
  /** CRC-32 of the input, as the gzip trailer must state it. */
  crc: number;
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

/** CRC-32 of the input, computed once (8 MiB at a time) and kept beside it. */
async function inputCrc(path: string): Promise<number> {
  const sidecar = `${path}.crc32`;
  try {
    const [saved, input] = await Promise.all([readFile(sidecar, 'utf8'), stat(path)]);
    const [crc, mtime] = saved.split(' ').map(Number);
    if (mtime === input.mtimeMs && crc !== undefined && Number.isInteger(crc)) return crc;
  } catch {
    // Not computed yet.
  }
  const file = await open(path);
  let crc = 0;
  try {
    const buffer = new Uint8Array(8 * MiB);
    for (;;) {
      const n = await readFdInto(file, buffer, null);
      if (n === 0) break;
      crc = crc32(buffer.subarray(0, n), crc);
    }
  } finally {
    await file.close();
  }
  await writeFile(sidecar, `${crc} ${(await stat(path)).mtimeMs}`);
  return crc;
}

/**
 * The gzip trailer: CRC-32 of the uncompressed data, then its size mod 2^32.
 * Both must be the input's: proof every byte went through, unaltered.
 */
async function checkOutput(path: string, size: number, crc: number): Promise<void> {
  const file = await open(path);
  try {
    const { size: outSize } = await file.stat();
    const tail = Buffer.alloc(8);
    await file.read(tail, 0, 8, outSize - 8);
    if (tail.readUInt32LE(4) !== size % 2 ** 32) {
      throw new Error(`gzip-guide: ${path} does not hold all ${size} input bytes`);
    }
    if (tail.readUInt32LE(0) !== crc) {
      throw new Error(`gzip-guide: ${path} holds different bytes than the input (CRC-32)`);
    }
  } finally {
    await file.close();
  }
}

/**
 * The input as 64 KiB chunks read with buffer-view's `readFdInto` into a
 * fixed pool of buffers (see POOL), instead of a fresh 64 KiB buffer per
 * read as `fs.createReadStream` allocates: 2 GiB of garbage that V8 only
 * collects once enough of it piles up outside its heap.
 */
async function* pooledReads(path: string): AsyncGenerator<Uint8Array> {
  const file = await open(path);
  const memory = new Uint8Array(POOL * READ_CHUNK);
  try {
    for (let k = 0; ; k++) {
      const slot = (k % POOL) * READ_CHUNK;
      const buffer = memory.subarray(slot, slot + READ_CHUNK);
      const n = await readFdInto(file, buffer, null);
      if (n === 0) return;
      yield n === READ_CHUNK ? buffer : buffer.subarray(0, n);
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
    // Plain node on the built packages: the floor under the target is Node's own, not tsx's.
    runtime: 'built',
    run: async (s) => {
      await gzip(s.input, output);
      await checkOutput(output, s.size, s.crc);
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
    'with `--quick`) from disk to disk. Ours is `pipeline(source, createGzip(), createWriteStream(out), { budget: 1 MiB })` ' +
    "with two sources: the guide's `createReadStream(in)`, and 64 KiB reads with buffer-view's `readFdInto` into a " +
    'pool of 32 buffers, where `createReadStream` allocates a fresh 64 KiB buffer for every read: 2 GiB of garbage ' +
    "outside V8's heap, which V8 collects only once tens of MiB of it have piled up. Beside them Node's own " +
    "`stream.pipeline` over the same two sources, and the guide's streams wired without backpressure (`'data'` → " +
    "`gzip.write()` and `'data'` → `out.write()`, return values ignored), so the file is read faster than gzip can " +
    'take it and piles up in memory. Each case runs once, in a process of its own running plain `node` on the built ' +
    "packages (no TypeScript loader), so its peak RSS is that process's kernel high-water mark; baseline is the same " +
    'process before the run (Node and the modules: the floor under any case). The input is generated once under ' +
    '`os.tmpdir()` and reused while its size and header check out; the output is checked through the gzip trailer ' +
    "(the input's CRC-32 and size) and deleted. MiB/s of input compressed.",
  unit: 'MiB/s',
  bytesPerOp: ({ quick }) => (quick ? QUICK_SIZE : FULL_SIZE),
  reference: 'Node stream.pipeline',
  moduleUrl: import.meta.url,
  singleShot: { runs: 1 },
  setup: async ({ quick }) => {
    const size = quick ? QUICK_SIZE : FULL_SIZE;
    const input = await ensureInput(size);
    return { input, size, crc: await inputCrc(input) };
  },
  cases: [
    gzipCase(
      'pipeline(), pooled reads',
      'ours',
      "`pipeline(pooledReads(in), createGzip(), createWriteStream(out), { budget: 1 MiB })`, reading with buffer-view's `readFdInto` into 32 reused 64 KiB buffers",
      (input, output) =>
        pipeline(pooledReads(input), createGzip(), createWriteStream(output), { budget: BUDGET }),
    ),
    gzipCase(
      'pipeline(), createReadStream',
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
      'Node stream.pipeline, pooled reads',
      'peer',
      '`stream/promises` `pipeline(pooledReads(in), createGzip(), createWriteStream(out))`: the same pooled source',
      (input, output) => nodePipeline(pooledReads(input), createGzip(), createWriteStream(output)),
    ),
    gzipCase(
      'ignoring backpressure',
      'baseline',
      "the guide's streams, `'data'` handlers calling `gzip.write()` and `out.write()` without checking their return value",
      ignoringBackpressure,
    ),
  ],
  targets: [
    {
      kind: 'limit',
      case: 'pipeline(), pooled reads',
      metric: 'peakRssBytes',
      atMost: RSS_TARGET,
      label: 'ours: peak RSS ≤ 100 MB (10^8 bytes)',
    },
  ],
});
