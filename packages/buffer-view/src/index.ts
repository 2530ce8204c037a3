/**
 * Zero-copy bytes for Node.js and browsers: views that never copy, segmented
 * stores past 4 GiB, in-place splices, a byte ring with markers, pooled slabs
 * and copy counters that prove it. Node-only I/O (read-into, gather-write)
 * lives in `buffer-view/node`.
 *
 * @packageDocumentation
 */

export type {
  ByteRingOptions,
  RingMarker,
  RingReaderOptions,
  RingStart,
  SharedRingHandle,
} from './lib/byte-ring';
export { ByteRing } from './lib/byte-ring';
export type { ByteStoreOptions } from './lib/byte-store';
export { ByteStore } from './lib/byte-store';
export type { BytesLike, Needle, ToTextOptions } from './lib/byte-view';
export { ByteView } from './lib/byte-view';
export type { CopyStats, MeasuredCopies } from './lib/copy-stats';
export { copyStats, measureCopies, resetCopyStats } from './lib/copy-stats';
export type { BufferViewErrorCode, BufferViewErrorOptions } from './lib/errors';
export {
  BufferViewError,
  DetachedBufferError,
  InvalidArgumentError,
  InvalidLengthError,
  NotContiguousError,
  OutOfRangeError,
  PoolExhaustedError,
  ReleasedError,
  RingFullError,
  RingOverrunError,
  StaleViewError,
  TransferError,
  UnexpectedEofError,
} from './lib/errors';
export type { RingWaitOptions } from './lib/ring-reader';
export { RingReader } from './lib/ring-reader';

export type { SlabAcquireOptions, SlabPoolOptions, SlabPoolStats } from './lib/slab-pool';
export { KeptView, Slab, SlabPool } from './lib/slab-pool';
