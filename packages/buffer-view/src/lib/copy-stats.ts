/**
 * What buffer-view has copied and allocated in this thread since the last
 * {@link resetCopyStats}. Every byte the package copies or allocates is
 * counted, so a test can prove an operation was zero-copy.
 *
 * @example
 * ```ts
 * import { copyStats } from 'buffer-view';
 * const { bytesCopied, copies } = copyStats();
 * ```
 */
export interface CopyStats {
  /** Bytes copied from one place in memory to another by this package. */
  bytesCopied: number;
  /** Number of copy operations. */
  copies: number;
  /** Bytes of new backing memory this package allocated. */
  bytesAllocated: number;
  /** Number of allocations. */
  allocations: number;
}

const counters: CopyStats = { bytesCopied: 0, copies: 0, bytesAllocated: 0, allocations: 0 };

/**
 * A snapshot of the copy and allocation counters.
 *
 * @example
 * ```ts
 * import { ByteView, copyStats, resetCopyStats } from 'buffer-view';
 * resetCopyStats();
 * ByteView.from(new Uint8Array(1 << 20)).view(10, 1000);
 * console.log(copyStats().bytesCopied); // 0
 * ```
 */
export function copyStats(): CopyStats {
  return { ...counters };
}

/**
 * Sets every counter back to zero.
 *
 * @example
 * ```ts
 * import { resetCopyStats } from 'buffer-view';
 * resetCopyStats();
 * ```
 */
export function resetCopyStats(): void {
  counters.bytesCopied = 0;
  counters.copies = 0;
  counters.bytesAllocated = 0;
  counters.allocations = 0;
}

/**
 * What {@link measureCopies} returns.
 *
 * @example
 * ```ts
 * import { type MeasuredCopies, measureCopies } from 'buffer-view';
 * const measured: MeasuredCopies<number> = measureCopies(() => 42);
 * ```
 */
export interface MeasuredCopies<T> {
  /** What the measured function returned. */
  result: T;
  /** What it copied and allocated. */
  stats: CopyStats;
}

/**
 * Runs `fn` and returns its result with what it copied and allocated.
 *
 * @example
 * ```ts
 * import { ByteView, measureCopies } from 'buffer-view';
 * const { stats } = measureCopies(() => ByteView.from(new Uint8Array(64)).copy());
 * console.log(stats.bytesCopied); // 64
 * ```
 */
export function measureCopies<T>(fn: () => T): MeasuredCopies<T> {
  const before = copyStats();
  const result = fn();
  const after = copyStats();
  return {
    result,
    stats: {
      bytesCopied: after.bytesCopied - before.bytesCopied,
      copies: after.copies - before.copies,
      bytesAllocated: after.bytesAllocated - before.bytesAllocated,
      allocations: after.allocations - before.allocations,
    },
  };
}

/** @internal Every copying code path calls this. */
export function recordCopy(bytes: number): void {
  counters.bytesCopied += bytes;
  counters.copies += 1;
}

/** @internal Every allocating code path calls this. */
export function recordAllocation(bytes: number): void {
  counters.bytesAllocated += bytes;
  counters.allocations += 1;
}
