import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type CountingTusServer, startCountingTusServer } from '../../test/counting-tus-server';
import { tus } from '../protocols/tus';
import { SourceError } from './errors';
import { fromFile } from './file-source.node.ts';
import { FileStateStore } from './file-state-store.node.ts';
import { fromNodeReadable } from './node-readable-source.node.ts';
import { MemoryStateStore } from './state-store';
import type { ProtocolSession, UploadProtocol } from './types';
import { Upload } from './upload';

const MiB = 2 ** 20;
let dir: string;
let running: CountingTusServer | undefined;
let file: string;
let bytes: Buffer;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'file-upload-'));
  bytes = randomBytes(32 * MiB);
  file = join(dir, 'movie.mp4');
  await writeFile(file, bytes);
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});
afterEach(async () => {
  await running?.close();
  running = undefined;
});

async function start(): Promise<CountingTusServer> {
  running = await startCountingTusServer();
  return running;
}

const sha256 = (data: Uint8Array) => createHash('sha256').update(data).digest('hex');

/** Records the memory of every chunk the engine hands the protocol. */
function recording(inner: UploadProtocol) {
  const buffers = new Set<ArrayBufferLike>();
  let chunks = 0;
  let largest = 0;
  const wrap = (session: ProtocolSession): ProtocolSession => ({
    get capabilities() {
      return session.capabilities;
    },
    get state() {
      return session.state;
    },
    acknowledged: (signal) => session.acknowledged(signal),
    send: (chunk, options) => {
      buffers.add(chunk.bytes.buffer);
      largest = Math.max(largest, chunk.bytes.buffer.byteLength);
      chunks++;
      return session.send(chunk, options);
    },
    complete: (parts, signal) => session.complete(parts, signal),
    terminate: (signal) => session.terminate(signal),
  });
  const protocol: UploadProtocol = {
    name: inner.name,
    target: inner.target,
    open: async (options) => wrap(await inner.open(options)),
    resume: async (state, options) => {
      const session = await inner.resume(state, options);
      return session === undefined ? undefined : wrap(session);
    },
  };
  return {
    protocol,
    stats: () => ({ buffers: buffers.size, chunks, largest }),
  };
}

describe('fromFile + FileStateStore + tus against @tus/server', () => {
  it('uploads 32 MiB in 4 MiB chunks through a bounded set of pooled slabs, byte for byte', async () => {
    const server = await start();
    const store = new FileStateStore({ directory: join(dir, 'state-1') });
    const { protocol, stats } = recording(tus({ endpoint: server.endpoint }));
    const result = await new Upload(await fromFile(file), {
      protocol,
      chunkSize: 4 * MiB,
      prefetch: 2,
      parallel: 1,
      stateStore: store,
    }).start();

    expect(result.bytes).toBe(bytes.length);
    const ids = await server.uploads();
    expect(ids).toHaveLength(1);
    expect(await server.sha256(ids[0] as string)).toBe(sha256(bytes));
    expect(server.bytesStored).toBe(bytes.length);
    // 8 chunks went through at most prefetch + parallel = 3 slabs of one chunk each.
    const { buffers, chunks, largest } = stats();
    expect(chunks).toBe(8);
    expect(buffers).toBeLessThanOrEqual(3);
    expect(largest).toBe(4 * MiB);
    // A finished upload leaves no state behind.
    expect(await readdir(join(dir, 'state-1')).catch(() => [])).toEqual([]);
  });

  it('resumes in a new Upload from the state file, sending only what the server lacks', async () => {
    const server = await start();
    const stateDir = join(dir, 'state-2');
    // creation-with-upload would create the upload with the first chunk, after
    // the engine saved its state; creating it up front makes the URL part of that state.
    const protocol = () => tus({ endpoint: server.endpoint, creationWithUpload: false });
    const first = new Upload(await fromFile(file), {
      protocol: protocol(),
      chunkSize: 2 * MiB,
      stateStore: new FileStateStore({ directory: stateDir }),
    });
    first.on('chunk', (chunk) => {
      if (chunk.index === 4) first.abort('stop');
    });
    await expect(first.start()).rejects.toThrow(/aborted/);
    await server.idle();
    const stored = await server.storedSize();
    expect(stored).toBeGreaterThanOrEqual(10 * MiB);
    expect(stored).toBeLessThan(bytes.length);
    expect(await readdir(stateDir)).toHaveLength(1);

    const second = new Upload(await fromFile(file), {
      protocol: protocol(),
      chunkSize: 2 * MiB,
      stateStore: new FileStateStore({ directory: stateDir }),
    });
    let resumedAt = -1;
    second.on('resumed', (n) => {
      resumedAt = n;
    });
    const result = await second.start();
    expect(resumedAt).toBe(stored);
    expect(result.resumedFrom).toBe(stored);
    const ids = await server.uploads();
    expect(ids).toHaveLength(1);
    expect(await server.sha256(ids[0] as string)).toBe(sha256(bytes));
    expect(server.bytesStored).toBe(bytes.length);
    expect(server.requests.filter((r) => r.status === 409)).toEqual([]);
  });
});

describe('fromNodeReadable', () => {
  it('uploads a Node stream of unknown length (deferred length) byte for byte', async () => {
    const server = await start();
    const source = fromNodeReadable(createReadStream(file, { highWaterMark: 100_000 }), {
      name: 'movie.mp4',
      contentType: 'video/mp4',
    });
    expect(source.size).toBeUndefined();
    expect(source.seekable).toBe(false);
    const result = await new Upload(source, {
      protocol: tus({ endpoint: server.endpoint }),
      chunkSize: 3 * MiB,
      stateStore: new MemoryStateStore(),
    }).start();
    expect(result.bytes).toBe(bytes.length);
    const ids = await server.uploads();
    expect(await server.sha256(ids[0] as string)).toBe(sha256(bytes));
  });

  it('reads sequentially into the target, across chunk edges', async () => {
    const source = fromNodeReadable(
      Readable.from([Buffer.from('hel'), Buffer.from('lo wo'), Buffer.from('rld')]),
      { size: 11, identity: 'greeting' },
    );
    expect(source.identity).toBe('greeting');
    const target = new Uint8Array(4);
    expect(await source.read(0, target)).toBe(4);
    expect(Buffer.from(target).toString()).toBe('hell');
    expect(await source.read(4, target)).toBe(4);
    expect(Buffer.from(target).toString()).toBe('o wo');
    expect(await source.read(8, target)).toBe(3);
    expect(Buffer.from(target.subarray(0, 3)).toString()).toBe('rld');
  });

  it('refuses a Readable that yields strings, and destroys the stream on close()', async () => {
    const text = Readable.from([Buffer.from('abc')]);
    text.setEncoding('utf8');
    await expect(fromNodeReadable(text).read(0, new Uint8Array(3))).rejects.toSatisfy(
      SourceError.isInstance,
    );
    const stream = new Readable({ read() {} });
    stream.push(Buffer.from('abc'));
    const source = fromNodeReadable(stream);
    await source.read(0, new Uint8Array(2));
    await source.close?.();
    expect(stream.destroyed).toBe(true);
  });
});
