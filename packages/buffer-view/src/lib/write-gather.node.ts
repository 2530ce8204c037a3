import type { Writable } from 'node:stream';
import { TransferError } from './errors';
import type { SegmentsLike } from './fd-io.node.ts';
import { describeCause, MAX_IOVECS, segmentsOf } from './iovec.node.ts';

/**
 * Writes every segment of `view` to a Node writable (a `net.Socket`, an HTTP
 * response, any `stream.Writable`) as its own chunk inside `cork()`/
 * `uncork()`, so a socket sends them with one `writev` and nothing is ever
 * joined or copied. Segments go in corked batches of at most 1024 (the
 * kernel's iovec limit per `writev`), uncorking between batches. Returns the
 * last `write()`'s result: `false` means wait for `'drain'` before writing
 * more. Write errors surface as the stream's `'error'` event; use
 * {@link writeGatherAsync} to await them. The segments' memory must not
 * change until it is flushed.
 *
 * @example
 * ```ts
 * import { writeGather } from 'buffer-view/node';
 * const chunk = cache.viewAt(offset, 20 * 2 ** 20); // spans several segments
 * if (!writeGather(res, chunk)) await once(res, 'drain');
 * ```
 */
export function writeGather(writable: Writable, view: SegmentsLike): boolean {
  return gather(writable, segmentsOf(view), undefined);
}

/**
 * {@link writeGather}, resolving with the byte count once every segment has
 * been flushed (the stream's callback for the last one ran: for a socket,
 * the kernel took the bytes). Rejects with {@link TransferError} when the
 * stream fails or is destroyed first: `cause` is the stream's error and
 * `transferred` counts the segments flushed before it, so a disconnect
 * mid-transfer never passes as success. (Node runs a destroyed socket's
 * pending write callbacks with no error; this function checks for that.)
 * While it waits it listens for the stream's `'error'`, so a failure it
 * reports is not also an uncaught exception.
 *
 * @example
 * ```ts
 * import { writeGatherAsync } from 'buffer-view/node';
 * await writeGatherAsync(socket, ByteView.concat([header, payload]));
 * ```
 */
export function writeGatherAsync(writable: Writable, view: SegmentsLike): Promise<number> {
  const segs = segmentsOf(view);
  let total = 0;
  for (const seg of segs) total += seg.length;
  if (segs.length === 0) return Promise.resolve(0);
  return new Promise<number>((resolve, reject) => {
    let index = 0;
    let flushed = 0;
    let settled = false;
    const cleanup = (): void => {
      writable.off('error', fail);
      writable.off('close', onClose);
    };
    function fail(cause: unknown): void {
      if (settled) return;
      settled = true;
      cleanup();
      reject(new TransferError('write', flushed, total, describeCause(cause), { cause }));
    }
    const destroyedError = (): unknown =>
      writable.errored ?? new Error('the stream was destroyed before every segment was flushed');
    const onClose = (): void => fail(destroyedError());
    // Node runs one stream's write callbacks in write order, so the k-th call is for segment k.
    const onWritten = (error?: Error | null): void => {
      if (settled) return;
      if (error !== undefined && error !== null) {
        fail(error);
        return;
      }
      // A socket destroyed mid-write calls pending callbacks with no error at all; they did not flush.
      if (writable.destroyed) {
        fail(destroyedError());
        return;
      }
      flushed += (segs[index] as Uint8Array).length;
      index++;
      if (index === segs.length) {
        settled = true;
        cleanup();
        resolve(total);
      }
    };
    if (writable.destroyed) {
      fail(destroyedError());
      return;
    }
    // Listening also keeps a failure reported here from being an uncaught 'error' event.
    writable.on('error', fail);
    writable.on('close', onClose);
    try {
      gather(writable, segs, onWritten);
    } catch (error) {
      fail(error);
    }
  });
}

function gather(
  writable: Writable,
  segs: readonly Uint8Array[],
  callback: ((error?: Error | null) => void) | undefined,
): boolean {
  if (segs.length === 0) return !writable.writableNeedDrain;
  let ok = true;
  for (let start = 0; start < segs.length; start += MAX_IOVECS) {
    const end = Math.min(segs.length, start + MAX_IOVECS);
    writable.cork();
    try {
      for (let k = start; k < end; k++) {
        ok = callback === undefined ? writable.write(segs[k]) : writable.write(segs[k], callback);
      }
    } finally {
      writable.uncork();
    }
  }
  return ok;
}
