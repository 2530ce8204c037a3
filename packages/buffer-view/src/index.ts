/**
 * Zero-copy bytes for Node.js and browsers: views that never copy, segmented
 * stores past 4 GiB, in-place splices, a byte ring with markers, pooled slabs
 * and copy counters that prove it. Node-only I/O (read-into, gather-write)
 * lives in `buffer-view/node`.
 *
 * @packageDocumentation
 */

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
  UnexpectedEofError,
} from './lib/errors';

// --- ring: ByteRing, RingReader and their types (src/lib/byte-ring*.ts) ---
// --- end ring ---

// --- pool: SlabPool, Slab and their types (src/lib/slab-pool.ts) ---
// --- end pool ---
