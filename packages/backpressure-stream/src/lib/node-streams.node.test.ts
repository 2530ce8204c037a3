import { createReadStream, createWriteStream } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { finished, Readable, Writable } from 'node:stream';
import { pipeline as nodePipeline } from 'node:stream/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Channel } from './channel';
import { AbortedError, ClosedError } from './errors';
import {
  fromNodeReadable,
  fromNodeWritable,
  toNodeDuplex,
  toNodeReadable,
  toNodeWritable,
} from './node-streams.node.ts';

const bytes = (n: number, fill = 0) => new Uint8Array(n).fill(fill);
const tick = () => new Promise<void>((resolve) => setImmediate(resolve));
const settle = async (n = 10) => {
  for (let i = 0; i < n; i++) await tick();
};
const EVENTS = ['data', 'end', 'error', 'close', 'finish', 'drain', 'readable'] as const;
const listeners = (stream: NodeJS.EventEmitter) =>
  EVENTS.map((event) => stream.listenerCount(event)).reduce((a, b) => a + b, 0);
const finishedP = (stream: NodeJS.ReadableStream | NodeJS.WritableStream) =>
  new Promise<void>((resolve, reject) =>
    finished(stream, (error) => (error ? reject(error) : resolve())),
  );

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bp-node-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('toNodeWritable', () => {
  it('returns false at highWaterMark bytes and completes a callback only once the channel took the chunk', async () => {
    const channel = new Channel({ capacity: 100 });
    channel.write(bytes(100)); // full
    const writable = toNodeWritable(channel, { highWaterMark: 1000 });
    const done: number[] = [];
    expect(writable.write(bytes(400, 1), () => done.push(1))).toBe(true);
    expect(writable.write(bytes(400, 2), () => done.push(2))).toBe(true);
    expect(writable.write(bytes(200, 3), () => done.push(3))).toBe(false);
    expect(writable.writableLength).toBe(1000);
    let drains = 0;
    writable.on('drain', () => drains++);
    await settle();
    expect(done).toEqual([]);
    await channel.read(); // room for one more chunk
    await settle();
    expect(done).toEqual([1]);
    expect(channel.buffered).toBe(400);
    expect(writable.writableLength).toBe(600);
    expect(drains).toBe(0);
    await channel.read();
    await settle();
    await channel.read();
    await settle();
    expect(done).toEqual([1, 2, 3]);
    expect(drains).toBe(1);
  });

  it('works with stream.pipeline and stream.finished; end() closes the channel', async () => {
    const channel = new Channel({ capacity: 256 });
    const writable = toNodeWritable(channel, { highWaterMark: 512 });
    const source = Readable.from(Array.from({ length: 50 }, (_, i) => bytes(100, i)));
    const piping = nodePipeline(source, writable);
    const seen: number[] = [];
    for await (const chunk of channel) {
      seen.push(chunk[0] as number);
      await tick();
    }
    await piping;
    await finishedP(writable);
    expect(seen).toEqual(Array.from({ length: 50 }, (_, i) => i));
    expect(channel.ended).toBe(true);
    expect(channel.metrics.peakBufferedBytes).toBeLessThanOrEqual(256 + 100);
    expect(channel.listenerCount('abort')).toBe(0);
  });

  it('destroy(err) aborts the channel; a cancelled channel destroys the Writable and fails stream.pipeline', async () => {
    const channel = new Channel();
    const writable = toNodeWritable(channel);
    const boom = new Error('upstream failed');
    writable.on('error', () => {});
    writable.destroy(boom);
    await expect(channel.read()).rejects.toSatisfy(
      (e: unknown) => AbortedError.isInstance(e) && (e as Error).cause === boom,
    );

    const channel2 = new Channel({ capacity: 10 });
    const writable2 = toNodeWritable(channel2, { highWaterMark: 10 });
    const source = new Readable({
      read() {
        this.push(bytes(10));
      },
    });
    const piping = nodePipeline(source, writable2);
    await settle();
    channel2.cancel('reader left');
    await expect(piping).rejects.toBeInstanceOf(ClosedError);
    expect(writable2.destroyed && source.destroyed).toBe(true);
    expect(channel2.listenerCount('abort')).toBe(0);
  });
});

describe('toNodeReadable', () => {
  it('buffers highWaterMark bytes, where Readable.from counts chunks', async () => {
    const channel = new Channel({ capacity: 1_000_000 });
    for (let i = 0; i < 100; i++) channel.write(bytes(1000, i));
    const readable = toNodeReadable(channel, { highWaterMark: 4096 });
    readable.on('readable', () => {});
    await settle();
    expect(readable.readableLength).toBe(5000); // 5 chunks: the first that reaches 4096
    expect(channel.metrics.bytesOut).toBe(5000);
    readable.destroy();

    const channel2 = new Channel({ capacity: 1_000_000 });
    for (let i = 0; i < 100; i++) channel2.write(bytes(1000, i));
    // The same highWaterMark on Readable.from (object mode) means 4096 chunks.
    const objects = Readable.from(channel2, { highWaterMark: 4096 });
    objects.on('readable', () => {});
    await settle();
    expect(objects.readableObjectMode).toBe(true);
    expect(channel2.metrics.bytesOut).toBe(100_000); // everything
    objects.destroy();
  });

  it('streams a channel into a file with stream.pipeline', async () => {
    const channel = new Channel({ capacity: 64 * 1024 });
    const path = join(dir, 'from-channel.bin');
    const file = createWriteStream(path);
    const piping = nodePipeline(toNodeReadable(channel), file);
    const expected: number[] = [];
    for (let i = 0; i < 200; i++) {
      const chunk = bytes(1024, i);
      expected.push(...chunk);
      await channel.send(chunk);
    }
    channel.close();
    await piping;
    expect([...(await readFile(path))]).toEqual(expected);
    expect(file.closed).toBe(true);
  });

  it('destroy() cancels the channel, destroy(err) aborts it, and an aborted channel destroys the Readable', async () => {
    const channel = new Channel({ capacity: 10 });
    const writing = (async () => {
      for (;;) {
        await channel.send(bytes(10));
        await tick();
      }
    })();
    const readable = toNodeReadable(channel);
    readable.resume();
    await settle();
    readable.destroy();
    await expect(writing).rejects.toBeInstanceOf(ClosedError);

    const channel2 = new Channel();
    const boom = new Error('bad');
    const readable2 = toNodeReadable(channel2);
    readable2.on('error', () => {});
    readable2.destroy(boom);
    expect(channel2.aborted).toBe(true);

    const channel3 = new Channel();
    const readable3 = toNodeReadable(channel3);
    const done = finishedP(readable3);
    readable3.resume();
    channel3.abort('producer crashed');
    await expect(done).rejects.toSatisfy(
      (e: unknown) => AbortedError.isInstance(e) && (e as Error).cause === 'producer crashed',
    );
    expect(channel3.listenerCount('abort')).toBe(0);
  });

  it('an async generator source: destroy returns it, running its finally', async () => {
    let finallyRan = false;
    async function* gen() {
      try {
        for (let i = 0; ; i++) yield bytes(100, i);
      } finally {
        finallyRan = true;
      }
    }
    const readable = toNodeReadable(gen(), { highWaterMark: 1000 });
    const first = await new Promise<Uint8Array>((resolve) => readable.once('data', resolve));
    expect(first[0]).toBe(0);
    readable.pause();
    await settle();
    readable.destroy();
    await new Promise((resolve) => readable.once('close', resolve));
    expect(finallyRan).toBe(true);
  });
});

describe('fromNodeReadable', () => {
  it('pauses the Readable when the channel is full: capacity plus one chunk', async () => {
    let produced = 0;
    const readable = new Readable({
      highWaterMark: 1000,
      read() {
        produced++;
        this.push(bytes(1000, produced));
      },
    });
    const channel = fromNodeReadable(readable, { capacity: 4096 });
    await settle();
    expect(channel.buffered).toBe(5000);
    expect(readable.isPaused()).toBe(true);
    // What was read from the Readable: the channel plus its own 1000-byte buffer.
    expect(produced * 1000).toBeLessThanOrEqual(5000 + 2 * 1000);
    const seen: number[] = [];
    for await (const chunk of channel) {
      seen.push(chunk[0] as number);
      if (seen.length === 20) break;
    }
    expect(seen).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    await settle();
    expect(readable.destroyed).toBe(true);
    expect(readable.errored).toBe(null);
    expect(listeners(readable)).toBe(0);
  });

  it('reads a file to its end, then closes; leaving early closes the file', async () => {
    const path = join(dir, 'in.bin');
    const data = Uint8Array.from({ length: 300_000 }, (_, i) => (i * 7) & 0xff);
    await writeFile(path, data);
    const file = createReadStream(path);
    const got: Uint8Array[] = [];
    for await (const chunk of fromNodeReadable(file, { capacity: 64 * 1024 })) got.push(chunk);
    expect(Buffer.concat(got).equals(Buffer.from(data))).toBe(true);
    await settle();
    expect(file.closed).toBe(true);
    expect(listeners(file)).toBe(0);

    const file2 = createReadStream(path, { highWaterMark: 1024 });
    for await (const _ of fromNodeReadable(file2)) break;
    await new Promise<void>((resolve) => {
      if (file2.closed) resolve();
      else file2.once('close', () => resolve());
    });
    expect(file2.closed).toBe(true);
    expect(file2.destroyed).toBe(true);
  });

  it('a Readable error aborts the channel; aborting the channel destroys the Readable with the reason', async () => {
    const boom = new Error('ECONNRESET');
    let n = 0;
    const readable = new Readable({
      read() {
        if (++n === 3) this.destroy(boom);
        else this.push(bytes(10));
      },
    });
    const channel = fromNodeReadable(readable);
    await expect(
      (async () => {
        for await (const _ of channel);
      })(),
    ).rejects.toSatisfy((e: unknown) => AbortedError.isInstance(e) && (e as Error).cause === boom);

    const readable2 = new Readable({
      read() {
        this.push(bytes(10));
      },
    });
    const reason = new Error('shutdown');
    const channel2 = fromNodeReadable(readable2, { capacity: 100 });
    await settle();
    channel2.abort(reason);
    await new Promise((resolve) => readable2.once('close', resolve));
    expect(readable2.errored).toBe(reason);
    await settle(2);
    expect(listeners(readable2)).toBe(0);
  });
});

describe('fromNodeWritable', () => {
  it('writes with backpressure into a file; finished resolves after the file closed', async () => {
    const path = join(dir, 'out.bin');
    const file = createWriteStream(path, { highWaterMark: 1024 });
    const out = fromNodeWritable(file, { capacity: 4096 });
    const expected: number[] = [];
    let falses = 0;
    for (let i = 0; i < 100; i++) {
      const chunk = bytes(512, i);
      expected.push(...chunk);
      if (!out.write(chunk)) {
        falses++;
        expect(out.buffered).toBeGreaterThanOrEqual(4096);
        expect(out.buffered).toBeLessThan(4096 + 512);
        await out.ready();
      }
    }
    out.close();
    await out.finished;
    expect(falses).toBeGreaterThan(0);
    expect(file.closed).toBe(true);
    expect([...(await readFile(path))]).toEqual(expected);
    expect(listeners(file)).toBe(0);
  });

  it('a Writable error aborts the channel and rejects finished', async () => {
    const boom = new Error('ENOSPC');
    const writable = new Writable({
      write(_c, _e, cb) {
        cb(boom);
      },
    });
    const out = fromNodeWritable(writable);
    out.write(bytes(10));
    await expect(out.finished).rejects.toBe(boom);
    await expect(out.send(bytes(1))).rejects.toSatisfy(
      (e: unknown) => AbortedError.isInstance(e) && (e as Error).cause === boom,
    );
    expect(writable.destroyed).toBe(true);
  });
});

describe('toNodeDuplex', () => {
  it('runs a generator as a byte Duplex inside stream.pipeline', async () => {
    const upper = toNodeDuplex(
      async function* (source) {
        for await (const chunk of source) yield Buffer.from(chunk).map((b) => b - 32);
      },
      { writableHighWaterMark: 100 },
    );
    expect(upper.writableObjectMode).toBe(false);
    const out: Buffer[] = [];
    await nodePipeline(
      Readable.from([Buffer.from('hello '), Buffer.from('world')]),
      upper,
      new Writable({
        write(chunk: Buffer, _e, cb) {
          out.push(chunk);
          cb();
        },
      }),
    );
    expect(Buffer.concat(out).toString()).toBe('HELLO\u0000WORLD');
  });

  it('destroying it aborts the transform: its finally has run by close', async () => {
    let finallyRan = false;
    let signal: AbortSignal | undefined;
    const duplex = toNodeDuplex(async function* (source, context) {
      signal = context.signal;
      try {
        for await (const chunk of source) yield chunk;
      } finally {
        finallyRan = true;
      }
    });
    duplex.resume();
    duplex.write(bytes(10));
    await settle();
    const boom = new Error('stop');
    duplex.on('error', () => {});
    duplex.destroy(boom);
    await new Promise((resolve) => duplex.once('close', resolve));
    expect(finallyRan).toBe(true);
    expect(signal?.aborted).toBe(true);
    expect(signal?.reason).toBe(boom);
  });
});
