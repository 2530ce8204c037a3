import { createReadStream, createWriteStream, existsSync, readdirSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createGunzip, createGzip, gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ByteBudget } from './budget';
import { pipeline } from './pipeline';

let dir: string;
let big: string;
const SIZE = 8 * 1024 * 1024;

/** Open descriptors of this process, where Linux tells us. */
const openFds = () => (existsSync('/proc/self/fd') ? readdirSync('/proc/self/fd').length : 0);

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bp-pipeline-'));
  big = join(dir, 'big.txt');
  // Compressible but not trivially so: log-like lines with varying numbers.
  const lines: string[] = [];
  let seed = 7;
  let size = 0;
  while (size < SIZE) {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    const line = `frame ${lines.length} pts=${seed % 90000} size=${seed % 65536} key=${seed % 7 === 0}\n`;
    lines.push(line);
    size += line.length;
  }
  await writeFile(big, lines.join('').slice(0, SIZE));
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('pipeline with real fs and zlib streams', () => {
  it('fs → gzip → fs writes a file gunzip verifies, within one budget', async () => {
    const out = join(dir, 'out.gz');
    const input = createReadStream(big);
    const output = createWriteStream(out);
    const budget = new ByteBudget(256 * 1024);
    const result = await pipeline(input, createGzip(), output, { budget });
    expect(gunzipSync(await readFile(out)).equals(await readFile(big))).toBe(true);
    expect(input.closed && output.closed).toBe(true);
    expect(result.metrics[0]?.bytesOut).toBe(SIZE);
    // 2 links and 2 metered stages (gzip, the file), one 64 KiB read chunk each.
    expect(result.peakBufferedBytes).toBeLessThanOrEqual(256 * 1024 + 4 * 64 * 1024);
    expect(budget.used).toBe(0);
    expect(budget.listenerCount).toBe(0);
  });

  it('decompresses back through gunzip into a function sink', async () => {
    const out = join(dir, 'round.gz');
    await pipeline(createReadStream(big), createGzip(), createWriteStream(out));
    const result = await pipeline(
      createReadStream(out),
      createGunzip(),
      async (source: AsyncIterable<Uint8Array>) => {
        let n = 0;
        for await (const chunk of source) n += chunk.byteLength;
        return n;
      },
      { budget: 64 * 1024 },
    );
    expect(result.value).toBe(SIZE);
  });

  it('a transform that throws after 1 MiB rejects and leaves no descriptor open', async () => {
    const before = openFds();
    const boom = new Error('quota exceeded');
    const input = createReadStream(big);
    const gzip = createGzip();
    const output = createWriteStream(join(dir, 'partial.gz'));
    let seen = 0;
    let finallyRan = false;
    async function* failAfterOneMiB(source: AsyncIterable<Uint8Array>) {
      try {
        for await (const chunk of source) {
          seen += chunk.byteLength;
          if (seen > 1024 * 1024) throw boom;
          yield chunk;
        }
      } finally {
        finallyRan = true;
      }
    }
    await expect(
      pipeline(input, failAfterOneMiB, gzip, output, { budget: 128 * 1024 }),
    ).rejects.toBe(boom);
    expect(finallyRan).toBe(true);
    expect(input.destroyed && input.closed).toBe(true);
    expect(gzip.destroyed).toBe(true);
    expect(output.destroyed && output.closed).toBe(true);
    expect(output.errored).toBe(boom);
    expect(openFds()).toBe(before);
    // Stopped early: the source was not read to the end.
    expect(input.bytesRead).toBeLessThan(SIZE);
  });

  it('destroying the source mid-way rejects with its error and closes the destination file', async () => {
    const before = openFds();
    const gone = new Error('source gone');
    const input = createReadStream(big, { highWaterMark: 16 * 1024 });
    const output = createWriteStream(join(dir, 'cut.gz'));
    let n = 0;
    async function* watch(source: AsyncIterable<Uint8Array>) {
      for await (const chunk of source) {
        if (++n === 10) input.destroy(gone);
        yield chunk;
      }
    }
    await expect(pipeline(input, watch, createGzip(), output)).rejects.toBe(gone);
    expect(output.closed).toBe(true);
    expect(output.errored).toBe(gone);
    expect(openFds()).toBe(before);
  });
});
