import { ByteView } from 'buffer-view';
import { InvalidArgumentError } from './errors';

/**
 * The default size function: the byte length of typed arrays, DataViews,
 * ArrayBuffers and buffer-view `ByteView`s. Anything else throws, because
 * guessing (counting an object as 1) would make a byte budget meaningless;
 * pass a `size` option for object streams.
 *
 * @example
 * ```ts
 * import { byteSize } from 'backpressure-stream';
 * byteSize(new Uint8Array(188)); // 188
 * ```
 */
export function byteSize(chunk: unknown): number {
  if (ArrayBuffer.isView(chunk)) return chunk.byteLength;
  if (chunk instanceof ByteView) return chunk.length;
  if (chunk instanceof ArrayBuffer) return chunk.byteLength;
  if (typeof SharedArrayBuffer !== 'undefined' && chunk instanceof SharedArrayBuffer) {
    return chunk.byteLength;
  }
  throw new InvalidArgumentError(
    `cannot measure a chunk of type ${describe(chunk)} in bytes: pass a size function (for example { size: () => 1 } to count objects)`,
  );
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (typeof value === 'object') return value.constructor?.name ?? 'object';
  return typeof value;
}
