import type { ServerResponse } from 'node:http';
import type { Slab, SlabPool } from 'buffer-view';
import type { RangeSource } from '../storage/types.ts';

/** Most bytes handed to the socket in one write, so a disconnect stops a response quickly. */
const WRITE_PIECE = 1 << 20;

/**
 * Resolves when the response can take more (`drain`) or will never take more
 * (`close`); the result says which.
 */
export function writable(res: ServerResponse): Promise<boolean> {
  if (res.destroyed || res.writableEnded) return Promise.resolve(false);
  if (!res.writableNeedDrain) return Promise.resolve(true);
  return new Promise((resolve) => {
    const done = (ok: boolean) => () => {
      res.off('drain', onDrain);
      res.off('close', onClose);
      resolve(ok);
    };
    const onDrain = done(true);
    const onClose = done(false);
    res.on('drain', onDrain);
    res.on('close', onClose);
  });
}

/**
 * Writes the segments of zero-copy views (cached bytes) to the response,
 * waiting for `drain` whenever the socket's buffer is full. The socket keeps
 * references, never copies. Resolves false when the client went away.
 */
export async function writeSegments(
  res: ServerResponse,
  segments: Iterable<Uint8Array>,
): Promise<boolean> {
  for (const segment of segments) {
    for (let at = 0; at < segment.byteLength; at += WRITE_PIECE) {
      if (res.destroyed) return false;
      const ok = res.write(segment.subarray(at, Math.min(segment.byteLength, at + WRITE_PIECE)));
      if (!ok && !(await writable(res))) return false;
    }
  }
  return !res.destroyed;
}

/**
 * Streams ranges of a stored file to one response through pooled slabs:
 * each slab is filled by read-into and handed to the socket, and goes back
 * to the pool when the socket is done with it. At most two slabs per
 * response are in flight; when the pool is exhausted the response waits for
 * a free slab instead of allocating. One writer serves every part of a
 * multipart response.
 */
export class SlabWriter {
  readonly #res: ServerResponse;
  readonly #pool: SlabPool;
  readonly #inFlight = new Set<Slab>();
  #wake: (() => void) | undefined;

  constructor(res: ServerResponse, pool: SlabPool) {
    this.#res = res;
    this.#pool = pool;
    // Canceled socket writes complete before the response's 'close', so what is left is no longer read.
    res.once('close', () => {
      setImmediate(() => {
        for (const slab of this.#inFlight) this.#settle(slab);
      });
      this.#wake?.();
    });
  }

  /** Writes `[start, end)` of `source`; resolves false when the client went away. */
  async write(
    source: RangeSource,
    start: number,
    end: number,
    signal: AbortSignal,
  ): Promise<boolean> {
    const res = this.#res;
    let position = start;
    while (position < end) {
      while (this.#inFlight.size >= 2 && !res.destroyed) await this.#oneSettles();
      if (res.destroyed) return false;
      const slab = await this.#pool.acquireAsync({ signal });
      const length = Math.min(slab.bytes.byteLength, end - position);
      let read: number;
      try {
        read = await source.readInto(slab.bytes.subarray(0, length), position, signal);
      } catch (error) {
        slab.release();
        throw error;
      }
      if (read !== length) {
        slab.release();
        throw new Error(
          `stored file ${source.object.id} ended at ${position + read}, expected ${end} bytes`,
        );
      }
      if (res.destroyed) {
        slab.release();
        return false;
      }
      this.#inFlight.add(slab);
      const ok = res.write(slab.bytes.subarray(0, length), () => this.#settle(slab));
      position += length;
      if (!ok && !(await writable(res))) return false;
    }
    return !res.destroyed;
  }

  #settle(slab: Slab): void {
    if (!this.#inFlight.delete(slab)) return;
    slab.release();
    this.#wake?.();
  }

  #oneSettles(): Promise<void> {
    return new Promise((resolve) => {
      this.#wake = () => {
        this.#wake = undefined;
        resolve();
      };
    });
  }
}
