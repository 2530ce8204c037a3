import { randomBytes } from 'node:crypto';
import { appendFile, mkdtemp, open, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { copyStats } from 'buffer-view';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { MemoryProtocol } from '../../test/memory-protocol';
import { SourceError } from './errors';
import { fromFile, guessContentType } from './file-source.node.ts';
import { MemoryStateStore } from './state-store';
import { Upload } from './upload';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'file-source-'));
});
afterEach(async () => {
  vi.restoreAllMocks();
  await rm(dir, { recursive: true, force: true });
});

async function file(bytes: Uint8Array, name = 'clip.mp4'): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, bytes);
  return path;
}

describe('fromFile', () => {
  it('reads the exact bytes at any offset, short only at the end', async () => {
    const bytes = randomBytes(1_000_003);
    const source = await fromFile(await file(bytes));
    try {
      expect(source.size).toBe(bytes.length);
      expect(source.seekable).toBe(true);
      for (const offset of [0, 1, 65_535, 500_000, 999_000]) {
        const target = new Uint8Array(4096);
        const n = await source.read(offset, target);
        const expected = bytes.subarray(offset, offset + 4096);
        expect(n).toBe(expected.length);
        expect(Buffer.from(target.subarray(0, n)).equals(expected)).toBe(true);
      }
      const tail = new Uint8Array(100);
      expect(await source.read(bytes.length - 3, tail)).toBe(3);
      expect(Buffer.from(tail.subarray(0, 3)).equals(bytes.subarray(-3))).toBe(true);
      expect(await source.read(bytes.length, tail)).toBe(0);
    } finally {
      await source.close();
    }
  });

  it('reads straight into the target it is given: no buffer of its own, nothing copied or allocated by buffer-view', async () => {
    const bytes = randomBytes(3 * 65_536);
    const path = await file(bytes);
    const source = await fromFile(path);
    const probe = await open(path, 'r');
    const proto = Object.getPrototypeOf(probe) as {
      read: (...args: unknown[]) => unknown;
      readv: (...args: unknown[]) => unknown;
    };
    await probe.close();
    const into: ArrayBufferLike[] = [];
    const read = proto.read;
    const readv = proto.readv;
    vi.spyOn(proto, 'read').mockImplementation(function (this: unknown, ...args: unknown[]) {
      into.push((args[0] as Uint8Array).buffer);
      return read.apply(this, args);
    });
    vi.spyOn(proto, 'readv').mockImplementation(function (this: unknown, ...args: unknown[]) {
      for (const b of args[0] as Uint8Array[]) into.push(b.buffer);
      return readv.apply(this, args);
    });
    const slab = new Uint8Array(new ArrayBuffer(4 * 65_536));
    const target = slab.subarray(1000, 1000 + 2 * 65_536);
    const before = copyStats();
    const n = await source.read(65_536, target);
    const after = copyStats();
    await source.close();
    expect(n).toBe(2 * 65_536);
    expect(Buffer.from(target).equals(bytes.subarray(65_536, 3 * 65_536))).toBe(true);
    // Every read syscall wrote into the caller's memory, and only there.
    expect(into.length).toBeGreaterThan(0);
    expect(into.every((buffer) => buffer === slab.buffer)).toBe(true);
    expect(slab.subarray(0, 1000).every((b) => b === 0)).toBe(true);
    expect(after.bytesCopied - before.bytesCopied).toBe(0);
    expect(after.bytesAllocated - before.bytesAllocated).toBe(0);
  });

  it('fails a read once the file changed (size or mtime), naming the file', async () => {
    const path = await file(randomBytes(10_000));
    const grown = await fromFile(path);
    await grown.read(0, new Uint8Array(100));
    await appendFile(path, 'more');
    const error = await grown.read(100, new Uint8Array(100)).catch((e: unknown) => e);
    expect(SourceError.isInstance(error)).toBe(true);
    expect((error as Error).message).toContain(path);
    expect((error as Error).message).toContain('changed');
    await grown.close();

    const touched = await fromFile(path);
    await utimes(path, new Date(), new Date(Date.now() + 60_000));
    await expect(touched.read(0, new Uint8Array(10))).rejects.toSatisfy(SourceError.isInstance);
    await touched.close();
  });

  it('fails an upload whose file is modified while it uploads, before the server has it all', async () => {
    const chunk = 64 * 1024;
    const path = await file(randomBytes(16 * chunk));
    const protocol = new MemoryProtocol();
    protocol.onSend = async (payload) => {
      if (payload.index === 1) await appendFile(path, 'edited');
    };
    const job = new Upload(await fromFile(path), {
      protocol,
      chunkSize: chunk,
      prefetch: 1,
      stateStore: new MemoryStateStore(),
    });
    const error = await job.start().catch((e: unknown) => e);
    expect(SourceError.isInstance(error)).toBe(true);
    expect((error as Error).message).toContain('changed during the upload');
    expect(protocol.upload().completed).toBe(false);
    expect(protocol.upload().bytes.length).toBeLessThan(16 * chunk);
  });

  it('has an identity of path, size and mtime: stable while unchanged, new after a change', async () => {
    const path = await file(randomBytes(1000));
    const identity = async () => {
      const source = await fromFile(path);
      await source.close();
      return source.identity;
    };
    const first = await identity();
    expect(first).toContain(path);
    expect(await identity()).toBe(first);
    await utimes(path, new Date(), new Date(Date.now() - 3_600_000));
    const touched = await identity();
    expect(touched).not.toBe(first);
    await appendFile(path, 'x');
    const grown = await identity();
    expect(grown).not.toBe(touched);
    expect(grown).not.toBe(first);
  });

  it('names the source after the file and guesses common media types', async () => {
    const source = await fromFile(await file(new Uint8Array(1), 'Holiday.MOV'));
    expect(source.name).toBe('Holiday.MOV');
    expect(source.contentType).toBe('video/quicktime');
    await source.close();
    const other = await fromFile(await file(new Uint8Array(1), 'notes.xyz'), { name: 'n.txt' });
    expect(other.name).toBe('n.txt');
    expect(other.contentType).toBeUndefined();
    await other.close();
    expect(guessContentType('a.mp4')).toBe('video/mp4');
    expect(guessContentType('a.jpeg')).toBe('image/jpeg');
    expect(guessContentType('a.flac')).toBe('audio/flac');
  });

  it('refuses what it cannot upload with a SourceError, and reads after close()', async () => {
    await expect(fromFile(join(dir, 'missing.mp4'))).rejects.toSatisfy(SourceError.isInstance);
    await expect(fromFile(dir)).rejects.toThrow(/not a regular file/);
    const source = await fromFile(await file(new Uint8Array(10)));
    await source.close();
    await source.close();
    await expect(source.read(0, new Uint8Array(1))).rejects.toSatisfy(SourceError.isInstance);
  });
});
