import { read, readSync, readv, readvSync, write, writeSync, writev, writevSync } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import type { ByteView } from './byte-view';
import { InvalidArgumentError, TransferError, UnexpectedEofError } from './errors';
import {
  DEFAULT_IO_LIMITS,
  describe,
  describeCause,
  type FdLike,
  type IoLimits,
  IovCursor,
  isFileHandle,
  segmentsOf,
} from './iovec.node.ts';
import { checkOffset, MAX_OFFSET } from './validate';

/**
 * Memory a Node I/O function reads into or writes from, used as is (never
 * copied or joined): one `Uint8Array`, a {@link ByteView} with any number of
 * segments, or a list of `Uint8Array`s taken in order.
 *
 * @example
 * ```ts
 * import { ByteStore } from 'buffer-view';
 * import type { SegmentsLike } from 'buffer-view/node';
 * const region: SegmentsLike = ByteStore.alloc(3 * 2 ** 30).view(); // 12 segments of 256 MiB
 * ```
 */
export type SegmentsLike = Uint8Array | ByteView | readonly Uint8Array[];

/**
 * Options of {@link readFdInto} and {@link readFdIntoSync}.
 *
 * @example
 * ```ts
 * import type { ReadFdIntoOptions } from 'buffer-view/node';
 * const options: ReadFdIntoOptions = { exact: true, signal: AbortSignal.timeout(5000) };
 * ```
 */
export interface ReadFdIntoOptions {
  /**
   * Throw {@link UnexpectedEofError} when the file ends before the target is
   * full, instead of returning the shorter count.
   * @default false
   */
  exact?: boolean;
  /**
   * Stops the read between two syscalls, rejecting with `signal.reason`. A
   * syscall in flight always finishes first: the kernel is writing into the
   * target, so returning before it does would hand back memory still changing.
   * Bytes read before the abort stay in the target. Ignored by the sync form.
   * @default undefined (not abortable)
   */
  signal?: AbortSignal;
}

/**
 * Options of {@link writeFdGather}.
 *
 * @example
 * ```ts
 * import type { WriteFdGatherOptions } from 'buffer-view/node';
 * const options: WriteFdGatherOptions = { signal: request.signal };
 * ```
 */
export interface WriteFdGatherOptions {
  /**
   * Stops the write between two syscalls, rejecting with `signal.reason`; a
   * syscall in flight finishes first. Bytes written before the abort stay in
   * the file.
   * @default undefined (not abortable)
   */
  signal?: AbortSignal;
}

/**
 * Fills `target` from a file descriptor or `FileHandle`, straight into its
 * memory: `fs.readv` across its segments (`fs.read` when one is left), at most
 * 1024 buffers and 2 GiB - 4 KiB per syscall, looping on short reads until the
 * target is full or the file ends. Targets past 2 GiB, or spread over many
 * segments of a `ByteStore`, take as many syscalls as they need and
 * nothing is ever copied or allocated.
 *
 * `position` is the file offset to read from (the descriptor's own position
 * is left alone), or `null` to read from, and advance, the current position.
 * Resolves with the bytes read: less than `target`'s length only at end of
 * file (unless `exact`). Any failure rejects with {@link TransferError}
 * (`cause` is the system error, `transferred` the bytes already in place).
 *
 * @example
 * ```ts
 * import { open } from 'node:fs/promises';
 * import { ByteStore } from 'buffer-view';
 * import { readFdInto } from 'buffer-view/node';
 * const file = await open('movie.mp4');
 * const cache = ByteStore.alloc((await file.stat()).size); // may exceed 4 GiB
 * await readFdInto(file, cache.view(), 0, { exact: true });
 * await file.close();
 * ```
 */
export function readFdInto(
  fd: number | FileHandle,
  target: SegmentsLike,
  position: number | null,
  options: ReadFdIntoOptions = {},
): Promise<number> {
  return readFdIntoWith(DEFAULT_IO_LIMITS, fd, target, position, options);
}

/**
 * The synchronous form of {@link readFdInto}, for a numeric descriptor: the
 * same splitting, looping and `exact` check, with `fs.readvSync`.
 *
 * @example
 * ```ts
 * import { openSync } from 'node:fs';
 * import { readFdIntoSync } from 'buffer-view/node';
 * const header = new Uint8Array(8);
 * readFdIntoSync(openSync('movie.mp4', 'r'), header, 0, { exact: true });
 * ```
 */
export function readFdIntoSync(
  fd: number,
  target: SegmentsLike,
  position: number | null,
  options: Omit<ReadFdIntoOptions, 'signal'> = {},
): number {
  return readFdIntoSyncWith(DEFAULT_IO_LIMITS, fd, target, position, options);
}

/**
 * Writes every segment of `view` to a file descriptor or `FileHandle` with
 * `fs.writev` (`fs.write` when one buffer is left), never joining them: at
 * most 1024 buffers and 2 GiB - 4 KiB per syscall, looping on partial writes
 * until every byte is written. `position` is the file offset, or `null` for
 * the current position (which then advances). Resolves with `view`'s length;
 * any failure rejects with {@link TransferError} saying how many bytes are
 * already in the file.
 *
 * @example
 * ```ts
 * import { open } from 'node:fs/promises';
 * import { writeFdGather } from 'buffer-view/node';
 * const out = await open('clip.mp4', 'w');
 * await writeFdGather(out, cache.viewAt(start, length), 0); // 3 000 segments, no concatenation
 * await out.close();
 * ```
 */
export function writeFdGather(
  fd: number | FileHandle,
  view: SegmentsLike,
  position: number | null,
  options: WriteFdGatherOptions = {},
): Promise<number> {
  return writeFdGatherWith(DEFAULT_IO_LIMITS, fd, view, position, options);
}

/**
 * The synchronous form of {@link writeFdGather}, for a numeric descriptor.
 *
 * @example
 * ```ts
 * import { openSync } from 'node:fs';
 * import { writeFdGatherSync } from 'buffer-view/node';
 * writeFdGatherSync(openSync('clip.mp4', 'w'), view, 0);
 * ```
 */
export function writeFdGatherSync(fd: number, view: SegmentsLike, position: number | null): number {
  return writeFdGatherSyncWith(DEFAULT_IO_LIMITS, fd, view, position);
}

/** @internal {@link readFdInto} with explicit per-syscall caps, so tests can shrink them. */
export async function readFdIntoWith(
  limits: IoLimits,
  fd: FdLike,
  target: SegmentsLike,
  position: number | null,
  options: ReadFdIntoOptions = {},
): Promise<number> {
  const cursor = start(fd, target, position);
  const expected = cursor.remaining;
  let done = 0;
  while (cursor.remaining > 0) {
    options.signal?.throwIfAborted();
    const bufs = cursor.next(limits);
    let n: number;
    try {
      n = await readOnce(fd, bufs, position === null ? null : position + done);
    } catch (cause) {
      throw new TransferError('read', done, expected, describeCause(cause), { cause });
    }
    if (n === 0) break;
    cursor.advance(n);
    done += n;
  }
  if (options.exact === true && done < expected) throw new UnexpectedEofError(expected, done);
  return done;
}

/** @internal {@link readFdIntoSync} with explicit per-syscall caps. */
export function readFdIntoSyncWith(
  limits: IoLimits,
  fd: number,
  target: SegmentsLike,
  position: number | null,
  options: Omit<ReadFdIntoOptions, 'signal'> = {},
): number {
  const cursor = start(fd, target, position);
  const expected = cursor.remaining;
  let done = 0;
  while (cursor.remaining > 0) {
    const bufs = cursor.next(limits);
    const at = position === null ? null : position + done;
    let n: number;
    try {
      const first = bufs[0] as Uint8Array;
      n =
        bufs.length === 1
          ? readSync(fd, first, 0, first.length, at)
          : readvSync(fd, bufs, at ?? undefined);
    } catch (cause) {
      throw new TransferError('read', done, expected, describeCause(cause), { cause });
    }
    if (n === 0) break;
    cursor.advance(n);
    done += n;
  }
  if (options.exact === true && done < expected) throw new UnexpectedEofError(expected, done);
  return done;
}

/** @internal {@link writeFdGather} with explicit per-syscall caps. */
export async function writeFdGatherWith(
  limits: IoLimits,
  fd: FdLike,
  view: SegmentsLike,
  position: number | null,
  options: WriteFdGatherOptions = {},
): Promise<number> {
  const cursor = start(fd, view, position);
  const expected = cursor.remaining;
  let done = 0;
  while (cursor.remaining > 0) {
    options.signal?.throwIfAborted();
    const bufs = cursor.next(limits);
    let n: number;
    try {
      n = await writeOnce(fd, bufs, position === null ? null : position + done);
    } catch (cause) {
      throw new TransferError('write', done, expected, describeCause(cause), { cause });
    }
    // A regular file never takes 0 of a non-empty write; looping on it would spin forever.
    if (n === 0)
      throw new TransferError(
        'write',
        done,
        expected,
        'the file took 0 bytes of a non-empty write',
      );
    cursor.advance(n);
    done += n;
  }
  return done;
}

/** @internal {@link writeFdGatherSync} with explicit per-syscall caps. */
export function writeFdGatherSyncWith(
  limits: IoLimits,
  fd: number,
  view: SegmentsLike,
  position: number | null,
): number {
  const cursor = start(fd, view, position);
  const expected = cursor.remaining;
  let done = 0;
  while (cursor.remaining > 0) {
    const bufs = cursor.next(limits);
    const at = position === null ? null : position + done;
    let n: number;
    try {
      const first = bufs[0] as Uint8Array;
      n =
        bufs.length === 1
          ? writeSync(fd, first, 0, first.length, at)
          : writevSync(fd, bufs, at ?? undefined);
    } catch (cause) {
      throw new TransferError('write', done, expected, describeCause(cause), { cause });
    }
    if (n === 0)
      throw new TransferError(
        'write',
        done,
        expected,
        'the file took 0 bytes of a non-empty write',
      );
    cursor.advance(n);
    done += n;
  }
  return done;
}

/** Validates the arguments every fd function shares and returns a cursor over the segments. */
function start(fd: FdLike, region: SegmentsLike, position: number | null): IovCursor {
  if (!(typeof fd === 'number' || isFileHandle(fd))) {
    throw new InvalidArgumentError(
      `expected a file descriptor number or a FileHandle, got ${describe(fd)}`,
    );
  }
  const cursor = new IovCursor(segmentsOf(region));
  if (position !== null) checkOffset('file position', position, 0, MAX_OFFSET - cursor.remaining);
  return cursor;
}

function readOnce(fd: FdLike, bufs: Uint8Array[], position: number | null): Promise<number> {
  const first = bufs[0] as Uint8Array;
  if (isFileHandle(fd)) {
    return bufs.length === 1
      ? fd.read(first, 0, first.length, position).then((r) => r.bytesRead)
      : fd.readv(bufs, position ?? undefined).then((r) => r.bytesRead);
  }
  return new Promise((resolve, reject) => {
    const done = (err: Error | null, n: number) => (err === null ? resolve(n) : reject(err));
    if (bufs.length === 1) read(fd, first, 0, first.length, position, done);
    else readv(fd, bufs, position, done);
  });
}

function writeOnce(fd: FdLike, bufs: Uint8Array[], position: number | null): Promise<number> {
  const first = bufs[0] as Uint8Array;
  if (isFileHandle(fd)) {
    return bufs.length === 1
      ? fd.write(first, 0, first.length, position).then((r) => r.bytesWritten)
      : fd.writev(bufs, position ?? undefined).then((r) => r.bytesWritten);
  }
  return new Promise((resolve, reject) => {
    const done = (err: Error | null, n: number) => (err === null ? resolve(n) : reject(err));
    if (bufs.length === 1) write(fd, first, 0, first.length, position, done);
    else writev(fd, bufs, position, done);
  });
}
