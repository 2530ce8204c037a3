import { Buffer } from 'node:buffer';
import { ByteView } from './byte-view';
import { recordAllocation } from './copy-stats';

/**
 * The view as a Node `Buffer` over the same memory (no copy). Throws
 * `NotContiguousError` when the view spans several segments; use
 * {@link toBufferCopy} to copy on purpose, or pass the view to
 * `writeGather()` and keep it in pieces.
 *
 * @example
 * ```ts
 * import { ByteView } from 'buffer-view';
 * import { toBuffer } from 'buffer-view/node';
 * const buf = toBuffer(ByteView.fromText('moov')); // shares memory with the view
 * buf.toString('hex'); // '6d6f6f76'
 * ```
 */
export function toBuffer(view: ByteView): Buffer {
  const bytes = view.asUint8Array();
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/**
 * The view's bytes copied into one new `Buffer` (counted in `copyStats()`).
 *
 * @example
 * ```ts
 * import { toBufferCopy } from 'buffer-view/node';
 * const owned = toBufferCopy(store.view(0, 188)); // survives later writes to the store
 * ```
 */
export function toBufferCopy(view: ByteView): Buffer {
  const out = Buffer.allocUnsafe(view.length);
  recordAllocation(view.length);
  view.copyTo(out);
  return out;
}

/**
 * A view over a Buffer's memory (no copy): a Buffer is a Uint8Array, so this
 * is `ByteView.from(buffer)`, kept for symmetry with {@link toBuffer}.
 *
 * @example
 * ```ts
 * import { fromBuffer } from 'buffer-view/node';
 * const view = fromBuffer(Buffer.from('ftyp'));
 * ```
 */
export function fromBuffer(buffer: Buffer): ByteView {
  return ByteView.from(buffer);
}
