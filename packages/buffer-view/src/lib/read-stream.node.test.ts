import { randomBytes } from 'node:crypto';
import { createReadStream, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { ByteRing } from './byte-ring';
import { ByteStore } from './byte-store';
import { ByteView } from './byte-view';
import { copyStats, resetCopyStats } from './copy-stats';
import { InvalidArgumentError, OutOfRangeError, TransferError, UnexpectedEofError } from './errors';
import { readStreamInto } from './read-stream.node.ts';
import { ringTarget, storeTarget } from './read-target.node.ts';

const dirs: string[] = [];
afterEach(async () => {
  for (const dir of dirs.splice(0)) await rm(dir, { recursive: true, force: true });
});

/** Random chunks of assorted sizes, and their concatenation. */
function chunks(sizes: number[]): { parts: Buffer[]; all: Buffer } {
  const parts = sizes.map((n) => randomBytes(n));
  return { parts, all: Buffer.concat(parts) };
}

/** A default (not byte) web stream of the given chunks. */
function webStream(parts: Uint8Array[]): ReadableStream<Uint8Array> {
  const queue = [...parts];
  return new ReadableStream<Uint8Array>({
    pull(controller) {
      const next = queue.shift();
      if (next === undefined) controller.close();
      else controller.enqueue(next);
    },
  });
}

/** A web byte stream serving `data` in pieces of at most `piece` bytes through BYOB requests. */
function byteStream(
  data: Uint8Array,
  piece: number,
): ReadableStream<Uint8Array> & { served: () => number } {
  let at = 0;
  const stream = new ReadableStream({
    type: 'bytes',
    pull(controller) {
      if (at === data.length) {
        controller.close();
        controller.byobRequest?.respond(0);
        return;
      }
      const request = controller.byobRequest;
      if (request?.view) {
        const view = new Uint8Array(
          request.view.buffer,
          request.view.byteOffset,
          request.view.byteLength,
        );
        const n = Math.min(view.length, piece, data.length - at);
        view.set(data.subarray(at, at + n));
        at += n;
        request.respond(n);
      } else {
        const n = Math.min(piece, data.length - at);
        controller.enqueue(data.slice(at, at + n));
        at += n;
      }
    },
  });
  return Object.assign(stream, { served: () => at });
}

describe('readStreamInto from a Node Readable', () => {
  it('copies each chunk once into a multi-segment region, exactly', async () => {
    const { parts, all } = chunks([100, 1, 5000, 77, 2048]);
    const region = ByteView.from([
      new Uint8Array(3000),
      new Uint8Array(1),
      new Uint8Array(all.length - 3001),
    ]);
    resetCopyStats();
    expect(await readStreamInto(Readable.from(parts), region, { exact: true })).toBe(all.length);
    expect(region.equals(all)).toBe(true);
    expect(copyStats()).toMatchObject({ bytesCopied: all.length, bytesAllocated: 0 });
  });

  it('reads a real file stream into a ByteStore', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'buffer-view-stream-'));
    dirs.push(dir);
    const data = randomBytes(3_000_001);
    writeFileSync(join(dir, 'f.bin'), data);
    const store = new ByteStore();
    const n = await readStreamInto(
      createReadStream(join(dir, 'f.bin'), { highWaterMark: 100_000 }),
      store,
    );
    expect(n).toBe(data.length);
    expect(store.length).toBe(data.length);
    expect(store.bytes.equals(data)).toBe(true);
  });

  it('stops when the region is full and puts the unread rest back into the stream', async () => {
    const { parts, all } = chunks([5, 10, 20]);
    const stream = Readable.from(parts);
    const head = new Uint8Array(8);
    expect(await readStreamInto(stream, head)).toBe(8);
    expect(Buffer.from(head).equals(all.subarray(0, 8))).toBe(true);
    const tail = new Uint8Array(100);
    expect(await readStreamInto(stream, tail)).toBe(27);
    expect(Buffer.from(tail.subarray(0, 27)).equals(all.subarray(8))).toBe(true);
  });

  it('fails with UnexpectedEofError on a short stream in exact mode', async () => {
    const err = await readStreamInto(Readable.from([randomBytes(10)]), new Uint8Array(20), {
      exact: true,
    }).catch((e: unknown) => e);
    expect(UnexpectedEofError.isInstance(err)).toBe(true);
    expect(err).toMatchObject({ expected: 20, received: 10 });
    expect(await readStreamInto(Readable.from([randomBytes(10)]), new Uint8Array(20))).toBe(10);
  });

  it("rejects with a TransferError whose cause is the stream's error, after keeping what arrived", async () => {
    const boom = new Error('disk on fire');
    const first = randomBytes(1000);
    let pushed = false;
    const stream = new Readable({
      read() {
        if (pushed) return;
        pushed = true;
        this.push(first);
        setImmediate(() => this.destroy(boom));
      },
    });
    const region = new Uint8Array(5000);
    const err = await readStreamInto(stream, region).catch((e: unknown) => e);
    expect(TransferError.isInstance(err)).toBe(true);
    expect(err).toMatchObject({
      operation: 'read',
      transferred: 1000,
      expected: 5000,
      cause: boom,
    });
    expect(Buffer.from(region.subarray(0, 1000)).equals(first)).toBe(true);
  });

  it('treats a stream destroyed without an error before its end as a failure, not an end', async () => {
    let pushed = false;
    const stream = new Readable({
      read() {
        if (pushed) return;
        pushed = true;
        this.push(randomBytes(10));
        setImmediate(() => this.destroy());
      },
    });
    const err = await readStreamInto(stream, new ByteStore()).catch((e: unknown) => e);
    expect(TransferError.isInstance(err)).toBe(true);
    expect(err).toMatchObject({ transferred: 10 });
  });

  it('aborts with the reason, leaving the stream paused with nothing lost', async () => {
    const stream = new Readable({ read() {} });
    stream.push(Buffer.from('abcdef'));
    const controller = new AbortController();
    const store = new ByteStore();
    const pending = readStreamInto(stream, store, { signal: controller.signal });
    setTimeout(() => controller.abort(new Error('enough')), 10);
    await expect(pending).rejects.toThrow('enough');
    expect(store.bytes.toText()).toBe('abcdef');
    stream.push(Buffer.from('ghi'));
    stream.push(null);
    expect(stream.isPaused()).toBe(true);
    const rest = new ByteStore();
    expect(await readStreamInto(stream, rest)).toBe(3);
    expect(rest.bytes.toText()).toBe('ghi');
  });

  it('refuses string chunks', async () => {
    const stream = Readable.from([Buffer.from('text')]).setEncoding('utf8');
    const err = await readStreamInto(stream, new ByteStore()).catch((e: unknown) => e);
    expect(InvalidArgumentError.isInstance(err)).toBe(true);
    expect((err as Error).message).toContain('setEncoding');
  });
});

describe('readStreamInto from a web ReadableStream', () => {
  it('reads a default stream chunk by chunk and leaves it unlocked', async () => {
    const { parts, all } = chunks([300, 1, 4000]);
    const stream = webStream(parts);
    const region = new Uint8Array(all.length);
    expect(await readStreamInto(stream, region, { exact: true })).toBe(all.length);
    expect(Buffer.from(region).equals(all)).toBe(true);
    expect(stream.locked).toBe(false);
  });

  it('rejects rather than drop bytes a default stream sent past a full region', async () => {
    const stream = webStream([randomBytes(10), randomBytes(10)]);
    const err = await readStreamInto(stream, new Uint8Array(15)).catch((e: unknown) => e);
    expect(OutOfRangeError.isInstance(err)).toBe(true);
    expect(err).toMatchObject({ value: 20, limit: 15 });
  });

  it('reads a byte stream with BYOB and never over-reads a fixed region', async () => {
    const data = randomBytes(10_000);
    const stream = byteStream(data, 999);
    const region = ByteView.from([new Uint8Array(1234), new Uint8Array(766)]);
    expect(await readStreamInto(stream, region, { exact: true })).toBe(2000);
    expect(region.equals(data.subarray(0, 2000))).toBe(true);
    expect(stream.served()).toBe(2000);
    const rest = new Uint8Array(8000);
    expect(await readStreamInto(stream, rest, { exact: true })).toBe(8000);
    expect(Buffer.from(rest).equals(data.subarray(2000))).toBe(true);
  });

  it('reads a byte stream into a ByteStore with no copy at all', async () => {
    const data = randomBytes(300_000);
    const store = ByteStore.from(new Uint8Array([1, 2]));
    resetCopyStats();
    const n = await readStreamInto(byteStream(data, 7000), storeTarget(store), {
      chunkSize: 65536,
    });
    expect(n).toBe(data.length);
    expect(store.view(2).equals(data)).toBe(true);
    expect(store.view(0, 2).equals(new Uint8Array([1, 2]))).toBe(true);
    expect(copyStats().bytesCopied).toBe(0);
    expect(copyStats().allocations).toBe(
      Math.ceil(data.length / 65536) + (data.length % 65536 === 0 ? 1 : 0),
    );
  });

  it('cannot read BYOB straight into memory a caller holds: a read detaches the whole buffer', async () => {
    const mine = new Uint8Array(16);
    const reader = byteStream(randomBytes(8), 8).getReader({ mode: 'byob' });
    const { value } = await reader.read(mine.subarray(0, 8));
    expect(value?.length).toBe(8);
    expect(mine.length).toBe(0); // detached: why BYOB reads go through buffers this package owns
  });

  it("rejects with a TransferError whose cause is the stream's error", async () => {
    const boom = new Error('upstream failed');
    let sent = false;
    const stream = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (!sent) {
          sent = true;
          controller.enqueue(new Uint8Array(64));
        } else controller.error(boom);
      },
    });
    const err = await readStreamInto(stream, new ByteStore()).catch((e: unknown) => e);
    expect(err).toMatchObject({
      code: 'BUFFER_VIEW_TRANSFER_FAILED',
      transferred: 64,
      cause: boom,
    });
  });

  it('aborts with the reason and releases the lock, keeping queued chunks in the stream', async () => {
    let controller!: ReadableStreamDefaultController<Uint8Array>;
    const stream = new ReadableStream<Uint8Array>({
      start(c) {
        controller = c;
      },
    });
    const abort = new AbortController();
    const pending = readStreamInto(stream, new ByteStore(), { signal: abort.signal });
    abort.abort(new Error('stop'));
    await expect(pending).rejects.toThrow('stop');
    expect(stream.locked).toBe(false);
    controller.enqueue(new Uint8Array([9, 9]));
    controller.close();
    const rest = new Uint8Array(2);
    expect(await readStreamInto(stream, rest)).toBe(2);
    expect([...rest]).toEqual([9, 9]);
  });
});

describe('readStreamInto from an async iterable', () => {
  it('reads a generator into a ByteStore', async () => {
    const { parts, all } = chunks([1, 2, 3, 40_000]);
    async function* gen() {
      yield* parts;
    }
    const store = new ByteStore();
    expect(await readStreamInto(gen(), store)).toBe(all.length);
    expect(store.bytes.equals(all)).toBe(true);
  });

  it('wraps a throwing iterator in a TransferError', async () => {
    const boom = new Error('generator broke');
    async function* gen() {
      yield new Uint8Array(5);
      throw boom;
    }
    await expect(readStreamInto(gen(), new ByteStore())).rejects.toMatchObject({
      transferred: 5,
      cause: boom,
    });
  });

  it('closes the iterator on abort', async () => {
    let finished = false;
    async function* gen() {
      try {
        yield new Uint8Array(1);
        await new Promise(() => {});
      } finally {
        finished = true;
      }
    }
    const iterator = gen();
    await expect(
      readStreamInto(iterator, new ByteStore(), { signal: AbortSignal.timeout(20) }),
    ).rejects.toMatchObject({ name: 'TimeoutError' });
    expect(finished).toBe(false); // still suspended in the never-settling await: return() is queued behind it
  });

  it('rejects an unknown source or target', async () => {
    await expect(readStreamInto(42 as never, new ByteStore())).rejects.toSatisfy(
      InvalidArgumentError.isInstance,
    );
    await expect(readStreamInto(Readable.from([]), 'x' as never)).rejects.toSatisfy(
      InvalidArgumentError.isInstance,
    );
    await expect(
      readStreamInto(Readable.from([]), new ByteStore(), { exact: true }),
    ).rejects.toThrow('fixed-size target');
  });
});

describe('readStreamInto a ByteRing', () => {
  it('wraps around a small ring and waits while a blocking reader holds it full', async () => {
    const { parts, all } = chunks(Array.from({ length: 50 }, (_, i) => 1000 + i * 37));
    const ring = new ByteRing({ capacity: 4096 });
    const reader = ring.reader({ start: 'oldest', blocking: true });
    const out: Uint8Array[] = [];
    let waits = 0;
    const target = ringTarget(ring, {
      ready: async () => {
        waits++;
        await new Promise((r) => setTimeout(r, 1));
        out.push(reader.read().copy());
        reader.release();
      },
    });
    resetCopyStats();
    expect(await readStreamInto(Readable.from(parts), target)).toBe(all.length);
    out.push(reader.read().copy());
    expect(Buffer.concat(out).equals(all)).toBe(true);
    expect(ring.writeOffset).toBe(all.length);
    expect(waits).toBeGreaterThan(all.length / 4096 - 1);
    // One copy into the ring per byte, plus the test's own read().copy() per byte.
    expect(copyStats().bytesCopied).toBe(2 * all.length);
  });

  it('polls a full ring by default until its blocking reader releases', async () => {
    const { parts, all } = chunks([3000, 3000, 3000]);
    const ring = new ByteRing({ capacity: 4000 });
    const reader = ring.reader({ start: 'oldest', blocking: true });
    const out: Uint8Array[] = [];
    const drainer = setInterval(() => {
      out.push(reader.read().copy());
      reader.release();
    }, 5);
    try {
      expect(await readStreamInto(Readable.from(parts), ring)).toBe(all.length);
    } finally {
      clearInterval(drainer);
    }
    out.push(reader.read().copy());
    expect(Buffer.concat(out).equals(all)).toBe(true);
  });

  it('accepts a ByteRing directly (writing through reserve/commit)', async () => {
    const ring = new ByteRing({ capacity: 1000 });
    const reader = ring.reader({ start: 'oldest' });
    expect(
      await readStreamInto(Readable.from([Buffer.from('hello '), Buffer.from('ring')]), ring),
    ).toBe(10);
    expect(reader.read().toText()).toBe('hello ring');
  });
});
