import type { FileHandle } from 'node:fs/promises';
import { ByteView } from './byte-view';
import { InvalidArgumentError } from './errors';

/**
 * @internal Most bytes one read or write syscall moves: Linux stops every
 * read/write at 2 GiB - 4 KiB (MAX_RW_COUNT), `fs.read` turns lengths of
 * 2^31 and more into garbage with `length |= 0`, and libuv reports results as
 * 32-bit integers, so larger requests are split here instead.
 */
export const MAX_IO_BYTES = 0x7ffff000;

/** @internal IOV_MAX on Linux and macOS: more buffers per readv/writev fail or are cut. */
export const MAX_IOVECS = 1024;

/** @internal Per-syscall caps; tests shrink them to exercise the splitting. */
export interface IoLimits {
  /** Most bytes per syscall. */
  maxBytes: number;
  /** Most buffers per readv/writev. */
  maxBuffers: number;
}

/** @internal The caps real I/O uses. */
export const DEFAULT_IO_LIMITS: IoLimits = { maxBytes: MAX_IO_BYTES, maxBuffers: MAX_IOVECS };

/** @internal What the fd functions accept as a file: a raw descriptor or a `FileHandle`. */
export type FdLike = number | FileHandle;

/** @internal True for a `fs/promises` FileHandle (duck-typed so any copy of Node's class works). */
export function isFileHandle(fd: FdLike): fd is FileHandle {
  return typeof fd === 'object' && fd !== null && typeof fd.readv === 'function';
}

/**
 * @internal The non-empty segments of a region, as zero-copy subarrays.
 * Segments are kept as given: merging neighbours would need a copy.
 */
export function segmentsOf(input: Uint8Array | ByteView | readonly Uint8Array[]): Uint8Array[] {
  if (input instanceof ByteView) return input.toSegments();
  if (input instanceof Uint8Array) return input.length === 0 ? [] : [input];
  if (Array.isArray(input)) {
    const out: Uint8Array[] = [];
    for (const seg of input as readonly unknown[]) {
      if (!(seg instanceof Uint8Array)) {
        throw new InvalidArgumentError(
          `expected every segment to be a Uint8Array, got ${describe(seg)}`,
        );
      }
      if (seg.length > 0) out.push(seg);
    }
    return out;
  }
  throw new InvalidArgumentError(
    `expected a Uint8Array, a ByteView or an array of Uint8Arrays, got ${describe(input)}`,
  );
}

/**
 * @internal A position inside a list of segments that hands out the next
 * syscall's worth of buffers (zero-copy subarrays) and advances by however
 * many bytes the syscall actually moved.
 */
export class IovCursor {
  readonly #segs: readonly Uint8Array[];
  #index = 0;
  #offset = 0;
  /** Bytes not yet moved. */
  remaining: number;

  constructor(segs: readonly Uint8Array[]) {
    this.#segs = segs;
    let total = 0;
    for (const seg of segs) total += seg.length;
    this.remaining = total;
  }

  /** The next buffers to hand to one syscall: at most `maxBuffers`, at most `maxBytes` in all. */
  next(limits: IoLimits): Uint8Array[] {
    const out: Uint8Array[] = [];
    let budget = limits.maxBytes;
    let k = this.#index;
    let offset = this.#offset;
    while (k < this.#segs.length && out.length < limits.maxBuffers && budget > 0) {
      const seg = this.#segs[k] as Uint8Array;
      const take = Math.min(seg.length - offset, budget);
      out.push(offset === 0 && take === seg.length ? seg : seg.subarray(offset, offset + take));
      budget -= take;
      k++;
      offset = 0;
    }
    return out;
  }

  /** Moves past `n` bytes the last syscall moved (a short count leaves the rest for the next one). */
  advance(n: number): void {
    this.remaining -= n;
    while (n > 0) {
      const seg = this.#segs[this.#index] as Uint8Array;
      const left = seg.length - this.#offset;
      if (n < left) {
        this.#offset += n;
        return;
      }
      n -= left;
      this.#index++;
      this.#offset = 0;
    }
  }
}

/** @internal A short, human description of an error-like value, for messages. */
export function describeCause(cause: unknown): string {
  if (cause instanceof Error) {
    const code = (cause as { code?: unknown }).code;
    return typeof code === 'string' && !cause.message.includes(code)
      ? `${code}: ${cause.message}`
      : cause.message;
  }
  return String(cause);
}

/** @internal Type name of a value, for messages. */
export function describe(value: unknown): string {
  if (value === null) return 'null';
  if (typeof value === 'object') return value.constructor?.name ?? 'object';
  return typeof value;
}
