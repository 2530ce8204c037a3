import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, open, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ByteStore } from './byte-store';
import { ByteView } from './byte-view';
import { copyStats, resetCopyStats } from './copy-stats';
import { TransferError, UnexpectedEofError } from './errors';
import {
  readFdInto,
  readFdIntoSync,
  readFdIntoSyncWith,
  readFdIntoWith,
  writeFdGather,
  writeFdGatherSync,
  writeFdGatherSyncWith,
  writeFdGatherWith,
} from './fd-io.node.ts';
import { IovCursor, MAX_IO_BYTES } from './iovec.node.ts';

let dir: string;
const fds: number[] = [];

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'buffer-view-fd-'));
});

afterEach(async () => {
  for (const fd of fds.splice(0)) closeSync(fd);
  await rm(dir, { recursive: true, force: true });
});

function fixture(name: string, bytes: Uint8Array): string {
  const path = join(dir, name);
  writeFileSync(path, bytes);
  return path;
}

function openFd(path: string, flags = 'r'): number {
  const fd = openSync(path, flags);
  fds.push(fd);
  return fd;
}

/** A view over `total` bytes split into segments of the given sizes, cycling. */
function segmented(total: number, sizes: number[]): ByteView {
  const segs: Uint8Array[] = [];
  let left = total;
  for (let i = 0; left > 0; i++) {
    const n = Math.min(left, sizes[i % sizes.length] as number);
    segs.push(new Uint8Array(n));
    left -= n;
  }
  return ByteView.from(segs);
}

describe('IovCursor', () => {
  it('never hands one syscall more than maxBuffers buffers or maxBytes bytes, and covers every byte once', () => {
    const segs = [5, 1, 17, 3, 9, 2, 30].map((n, i) => new Uint8Array(n).fill(i + 1));
    const cursor = new IovCursor(segs);
    const seen: number[] = [];
    let calls = 0;
    while (cursor.remaining > 0) {
      const bufs = cursor.next({ maxBytes: 7, maxBuffers: 3 });
      const total = bufs.reduce((a, b) => a + b.length, 0);
      expect(bufs.length).toBeLessThanOrEqual(3);
      expect(total).toBeLessThanOrEqual(7);
      expect(total).toBeGreaterThan(0);
      // Move fewer bytes than offered, like a short read would.
      const moved = Math.max(1, total - 2);
      let left = moved;
      for (const b of bufs) {
        const take = Math.min(left, b.length);
        seen.push(...b.subarray(0, take));
        left -= take;
      }
      cursor.advance(moved);
      calls++;
    }
    const all = segs.flatMap((s) => [...s]);
    expect(seen).toEqual(all);
    expect(calls).toBeGreaterThan(all.length / 7);
  });

  it('uses the real Linux cap of 2 GiB - 4 KiB', () => {
    expect(MAX_IO_BYTES).toBe(2 ** 31 - 4096);
  });
});

describe('readFdInto', () => {
  it('fills a single Uint8Array from a position without moving the descriptor', async () => {
    const data = randomBytes(10_000);
    const fd = openFd(fixture('a.bin', data));
    const target = new Uint8Array(4000);
    expect(await readFdInto(fd, target, 1234)).toBe(4000);
    expect(Buffer.from(target).equals(data.subarray(1234, 5234))).toBe(true);
    // position null reads from the descriptor's own position, which was left at 0.
    const head = new Uint8Array(10);
    expect(await readFdInto(fd, head, null)).toBe(10);
    expect(Buffer.from(head).equals(data.subarray(0, 10))).toBe(true);
    expect(await readFdInto(fd, head, null)).toBe(10);
    expect(Buffer.from(head).equals(data.subarray(10, 20))).toBe(true);
  });

  it('fills every segment of a multi-segment store region in place, copying nothing', async () => {
    const data = randomBytes(1 << 20);
    const fd = openFd(fixture('b.bin', data));
    const store = ByteStore.alloc(data.length, { segmentSize: 1000 });
    const region = store.view();
    expect(region.segmentCount).toBe(Math.ceil(data.length / 1000));
    resetCopyStats();
    expect(await readFdInto(fd, region, 0, { exact: true })).toBe(data.length);
    expect(copyStats().bytesCopied).toBe(0);
    expect(copyStats().bytesAllocated).toBe(0);
    expect(region.equals(data)).toBe(true);
  });

  it('splits reads at the per-call byte and iovec caps and loops until full', async () => {
    const data = randomBytes(50_000);
    const fd = openFd(fixture('c.bin', data));
    const region = segmented(data.length, [1, 700, 13, 5000, 2]);
    const n = await readFdIntoWith({ maxBytes: 997, maxBuffers: 3 }, fd, region, 0, {
      exact: true,
    });
    expect(n).toBe(data.length);
    expect(region.equals(data)).toBe(true);
    const again = segmented(data.length, [3, 1]);
    expect(readFdIntoSyncWith({ maxBytes: 5, maxBuffers: 2 }, fd, again, 0)).toBe(data.length);
    expect(again.equals(data)).toBe(true);
  });

  it('returns a short count at end of file, and throws UnexpectedEofError in exact mode', async () => {
    const data = randomBytes(300);
    const fd = openFd(fixture('d.bin', data));
    const target = segmented(1000, [128]);
    expect(await readFdInto(fd, target, 100)).toBe(200);
    expect(target.view(0, 200).equals(data.subarray(100))).toBe(true);
    expect(target.view(200).equals(new Uint8Array(800))).toBe(true);

    const err = await readFdInto(fd, target, 100, { exact: true }).catch((e: unknown) => e);
    expect(UnexpectedEofError.isInstance(err)).toBe(true);
    expect(err).toMatchObject({ expected: 1000, received: 200 });
    expect(() => readFdIntoSync(fd, target, 250, { exact: true })).toThrow(
      'source ended after 50 of 1000 expected bytes',
    );
    expect(await readFdInto(fd, new Uint8Array(10), 300)).toBe(0);
  });

  it('reads from a FileHandle with readv and read', async () => {
    const data = randomBytes(70_000);
    const file = await open(fixture('e.bin', data), 'r');
    try {
      const region = segmented(data.length - 5, [4096, 33]);
      expect(await readFdInto(file, region, 5, { exact: true })).toBe(data.length - 5);
      expect(region.equals(data.subarray(5))).toBe(true);
      const one = new Uint8Array(100);
      expect(await readFdInto(file, one, null)).toBe(100);
      expect(Buffer.from(one).equals(data.subarray(0, 100))).toBe(true);
    } finally {
      await file.close();
    }
  });

  it('loops over the short reads a pipe delivers until the target is full', async () => {
    const fifo = join(dir, 'fifo');
    execFileSync('mkfifo', [fifo]);
    const reader = await open(fifo, 'r+'); // r+ so opening does not wait for a writer
    const writer = await open(fifo, 'w');
    try {
      const pieces = [randomBytes(1000), randomBytes(5), randomBytes(70_000), randomBytes(3)];
      const target = segmented(70_000 + 1008, [4096, 1]);
      const pending = readFdInto(reader, target, null, { exact: true });
      for (const piece of pieces) {
        await writer.write(piece);
        await new Promise((r) => setTimeout(r, 5));
      }
      expect(await pending).toBe(target.length);
      expect(target.equals(Buffer.concat(pieces))).toBe(true);
    } finally {
      await writer.close();
      await reader.close();
    }
  });

  it('stops between syscalls when aborted, rejecting with the reason and keeping what it read', async () => {
    const data = randomBytes(1 << 16).fill(7);
    const fd = openFd(fixture('f.bin', data));
    const target = new Uint8Array(data.length);
    const controller = new AbortController();
    const reason = new Error('stop');
    // One byte per syscall so the read is still going when the abort lands.
    const pending = readFdIntoWith({ maxBytes: 1, maxBuffers: 1 }, fd, target, 0, {
      signal: controller.signal,
    });
    setTimeout(() => controller.abort(reason), 5);
    await expect(pending).rejects.toBe(reason);
    expect(target[0]).toBe(7);
    expect(target[target.length - 1]).toBe(0);
    await expect(readFdInto(fd, target, 0, { signal: AbortSignal.abort(reason) })).rejects.toBe(
      reason,
    );
  });

  it('reports a failing descriptor as a TransferError with the system error as cause', async () => {
    const err = await readFdInto(openFd(dir), new Uint8Array(8), 0).catch((e: unknown) => e);
    expect(TransferError.isInstance(err)).toBe(true);
    expect(err).toMatchObject({ operation: 'read', transferred: 0, expected: 8 });
    expect((err as TransferError).cause).toMatchObject({ code: 'EISDIR' });
    expect(() => readFdIntoSync(openFd(dir), new Uint8Array(8), 0)).toThrow(/EISDIR/);
    await expect(readFdInto(-1 as number, new Uint8Array(1), 0)).rejects.toThrow();
    await expect(readFdInto(0, new Uint8Array(1), -1)).rejects.toThrow(
      'file position -1 is out of range',
    );
  });
});

describe('writeFdGather', () => {
  it('writes a view of 3000 small segments to a file intact, without concatenating', async () => {
    const segs = Array.from({ length: 3000 }, (_, i) => randomBytes(1 + (i % 37)));
    const view = ByteView.from(segs);
    const path = join(dir, 'out.bin');
    const fd = openFd(path, 'w');
    resetCopyStats();
    expect(await writeFdGather(fd, view, 0)).toBe(view.length);
    expect(copyStats()).toMatchObject({ bytesCopied: 0, copies: 0, bytesAllocated: 0 });
    expect(readFileSync(path).equals(Buffer.concat(segs))).toBe(true);
  });

  it('splits at the byte and iovec caps, at a position, and appends with position null', async () => {
    const segs = Array.from({ length: 100 }, () => randomBytes(50));
    const path = join(dir, 'caps.bin');
    await writeFile(path, new Uint8Array(10));
    const fd = openFd(path, 'r+');
    expect(await writeFdGatherWith({ maxBytes: 77, maxBuffers: 4 }, fd, segs, 10)).toBe(5000);
    expect(writeFdGatherSyncWith({ maxBytes: 3, maxBuffers: 2 }, fd, segs.slice(0, 3), null)).toBe(
      150,
    );
    const file = readFileSync(path);
    // position null writes at the descriptor's own position, still 0.
    expect(file.subarray(0, 150).equals(Buffer.concat(segs.slice(0, 3)))).toBe(true);
    expect(file.subarray(10).length).toBe(5000);
    expect(file.subarray(150).equals(Buffer.concat(segs).subarray(140))).toBe(true);
  });

  it('writes through a FileHandle and synchronously', async () => {
    const segs = [randomBytes(10), randomBytes(20_000), randomBytes(1)];
    const path = join(dir, 'fh.bin');
    const file = await open(path, 'w');
    try {
      expect(await writeFdGather(file, ByteView.from(segs), 3)).toBe(20_011);
      expect(await writeFdGather(file, segs[0] as Uint8Array, 0)).toBe(10);
    } finally {
      await file.close();
    }
    const expected = Buffer.concat([new Uint8Array(3), ...segs]);
    expected.set(segs[0] as Uint8Array, 0);
    expect(readFileSync(path).equals(expected)).toBe(true);
    const syncPath = join(dir, 'sync.bin');
    expect(writeFdGatherSync(openFd(syncPath, 'w'), segs, 0)).toBe(20_011);
    expect(readFileSync(syncPath).equals(Buffer.concat(segs))).toBe(true);
  });

  it('rejects with a TransferError when the descriptor cannot be written', async () => {
    const fd = openFd(fixture('ro.bin', new Uint8Array(4)), 'r');
    const err = await writeFdGather(fd, [new Uint8Array(4)], 0).catch((e: unknown) => e);
    expect(TransferError.isInstance(err)).toBe(true);
    expect(err).toMatchObject({ operation: 'write', transferred: 0, expected: 4 });
    expect((err as TransferError).cause).toMatchObject({ code: 'EBADF' });
    await expect(
      writeFdGather(fd, [new Uint8Array(4)], 0, { signal: AbortSignal.abort() }),
    ).rejects.toMatchObject({
      name: 'AbortError',
    });
  });
});

describe('I/O past the 2 GiB per-call limit', () => {
  // Just past 2^31 so every path needs a second syscall, while touching as little memory as possible.
  const SIZE = 2 ** 31 + 2 ** 16;
  const marks = [0, MAX_IO_BYTES - 1, MAX_IO_BYTES, 2 ** 31 - 1, 2 ** 31, SIZE - 1];

  it('reads a sparse file larger than 2 GiB into one segment and into many', async () => {
    const path = join(dir, 'sparse.bin');
    await writeFile(path, new Uint8Array(0));
    await truncate(path, SIZE); // sparse: no disk blocks, reads as zeros
    const file = await open(path, 'r+');
    for (const [i, at] of marks.entries()) await file.write(Uint8Array.of(i + 1), 0, 1, at);
    await file.close();
    const fd = openFd(path);

    // One 2 GiB+ segment: fs.read alone would turn the length into a negative number.
    const store = ByteStore.alloc(SIZE, { segmentSize: 2 ** 32 });
    expect(store.segmentCount).toBe(1);
    expect(await readFdInto(fd, store.view(), 0, { exact: true })).toBe(SIZE);
    for (const [i, at] of marks.entries()) expect(store.bytes.getUint8(at)).toBe(i + 1);
    expect(store.bytes.getUint8(1234)).toBe(0);

    // The same memory as nine 256 MiB segments: one readv cannot take them all.
    const big = store.view().asUint8Array();
    for (const at of marks) big[at] = 0;
    const segs: Uint8Array[] = [];
    for (let at = 0; at < SIZE; at += 2 ** 28)
      segs.push(big.subarray(at, Math.min(SIZE, at + 2 ** 28)));
    expect(segs.length).toBe(9);
    expect(readFdIntoSync(fd, segs, 0, { exact: true })).toBe(SIZE);
    for (const [i, at] of marks.entries()) expect(big[at]).toBe(i + 1);
  });
});
