const kBufferViewError = Symbol.for('buffer-view.error');

/**
 * Every stable error code thrown by buffer-view.
 *
 * @example
 * ```ts
 * import { BufferViewError } from 'buffer-view';
 * try { view.view(0, 1e12); } catch (err) {
 *   if (BufferViewError.isInstance(err) && err.code === 'BUFFER_VIEW_OUT_OF_RANGE') console.log(err.limit);
 * }
 * ```
 */
export type BufferViewErrorCode =
  | 'BUFFER_VIEW_OUT_OF_RANGE'
  | 'BUFFER_VIEW_INVALID_LENGTH'
  | 'BUFFER_VIEW_INVALID_ARGUMENT'
  | 'BUFFER_VIEW_NOT_CONTIGUOUS'
  | 'BUFFER_VIEW_RING_OVERRUN'
  | 'BUFFER_VIEW_RING_FULL'
  | 'BUFFER_VIEW_RELEASED'
  | 'BUFFER_VIEW_DETACHED'
  | 'BUFFER_VIEW_STALE_VIEW'
  | 'BUFFER_VIEW_POOL_EXHAUSTED'
  | 'BUFFER_VIEW_UNEXPECTED_EOF'
  | 'BUFFER_VIEW_TRANSFER_FAILED';

/** Options every buffer-view error accepts. */
export interface BufferViewErrorOptions {
  /** The error that led to this one, if any. */
  cause?: unknown;
}

/**
 * Base class of every error buffer-view throws. Each subclass has a stable
 * {@link BufferViewError.code}; use {@link BufferViewError.isInstance} rather
 * than `instanceof` when two copies of the package may be loaded.
 *
 * @example
 * ```ts
 * import { BufferViewError, ByteView } from 'buffer-view';
 * try {
 *   ByteView.from(new Uint8Array(4)).getUint32(2);
 * } catch (err) {
 *   if (BufferViewError.isInstance(err)) console.error(err.code, err.message);
 * }
 * ```
 */
export class BufferViewError extends Error {
  /** Stable, machine-readable code. */
  readonly code: BufferViewErrorCode;

  /** @param message - what went wrong, naming the value and the limit. */
  constructor(message: string, code: BufferViewErrorCode, options: BufferViewErrorOptions = {}) {
    super(message, { cause: options.cause });
    this.name = 'BufferViewError';
    this.code = code;
  }

  /** @internal Brand that survives duplicated package copies. */
  get [kBufferViewError](): true {
    return true;
  }

  /**
   * True for any buffer-view error, from this copy of the package or another.
   *
   * @example
   * ```ts
   * if (BufferViewError.isInstance(err)) console.log(err.code);
   * ```
   */
  static isInstance(value: unknown): value is BufferViewError {
    return (
      typeof value === 'object' &&
      value !== null &&
      (value as { [kBufferViewError]?: unknown })[kBufferViewError] === true
    );
  }
}

/** Narrows `value` to an error of one code, across package copies. */
function hasCode(value: unknown, code: BufferViewErrorCode): boolean {
  return BufferViewError.isInstance(value) && value.code === code;
}

/**
 * An offset or index lies outside what the view, store or ring holds.
 *
 * @example
 * ```ts
 * import { ByteView, OutOfRangeError } from 'buffer-view';
 * try { ByteView.from(new Uint8Array(8)).view(4, 16); }
 * catch (err) { if (OutOfRangeError.isInstance(err)) console.log(err.value, err.limit); } // 16 8
 * ```
 */
export class OutOfRangeError extends BufferViewError {
  /** The offending value. */
  readonly value: number;
  /** The largest value that would have been accepted. */
  readonly limit: number;

  constructor(
    what: string,
    value: number,
    min: number,
    max: number,
    options: BufferViewErrorOptions = {},
  ) {
    super(
      `${what} ${value} is out of range: must be an integer >= ${min} and <= ${max}`,
      'BUFFER_VIEW_OUT_OF_RANGE',
      options,
    );
    this.name = 'OutOfRangeError';
    this.value = value;
    this.limit = max;
  }

  /** True for an {@link OutOfRangeError} from any copy of the package. */
  static override isInstance(value: unknown): value is OutOfRangeError {
    return hasCode(value, 'BUFFER_VIEW_OUT_OF_RANGE');
  }
}

/**
 * A length or size is negative, not an integer, or larger than allowed.
 *
 * @example
 * ```ts
 * import { ByteStore, InvalidLengthError } from 'buffer-view';
 * try { ByteStore.alloc(-1); } catch (err) { console.log(InvalidLengthError.isInstance(err)); } // true
 * ```
 */
export class InvalidLengthError extends BufferViewError {
  /** The offending length. */
  readonly value: number;
  /** The largest length that would have been accepted. */
  readonly limit: number;

  constructor(what: string, value: number, limit: number, options: BufferViewErrorOptions = {}) {
    super(
      `${what} ${value} is not a valid length: must be an integer >= 0 and <= ${limit}`,
      'BUFFER_VIEW_INVALID_LENGTH',
      options,
    );
    this.name = 'InvalidLengthError';
    this.value = value;
    this.limit = limit;
  }

  /** True for an {@link InvalidLengthError} from any copy of the package. */
  static override isInstance(value: unknown): value is InvalidLengthError {
    return hasCode(value, 'BUFFER_VIEW_INVALID_LENGTH');
  }
}

/**
 * An argument has the wrong type or shape (not a length or offset problem).
 *
 * @example
 * ```ts
 * import { ByteView, InvalidArgumentError } from 'buffer-view';
 * try { ByteView.from('text' as never); } catch (err) { console.log(InvalidArgumentError.isInstance(err)); }
 * ```
 */
export class InvalidArgumentError extends BufferViewError {
  constructor(message: string, options: BufferViewErrorOptions = {}) {
    super(message, 'BUFFER_VIEW_INVALID_ARGUMENT', options);
    this.name = 'InvalidArgumentError';
  }

  /** True for an {@link InvalidArgumentError} from any copy of the package. */
  static override isInstance(value: unknown): value is InvalidArgumentError {
    return hasCode(value, 'BUFFER_VIEW_INVALID_ARGUMENT');
  }
}

/**
 * A zero-copy conversion was asked of a view that spans several segments;
 * use a method whose name says it copies (`copy()`, `copyTo()`) instead.
 *
 * @example
 * ```ts
 * import { ByteView, NotContiguousError } from 'buffer-view';
 * const v = ByteView.from([new Uint8Array(2), new Uint8Array(2)]);
 * try { v.asUint8Array(); } catch (err) { console.log(NotContiguousError.isInstance(err)); } // true
 * ```
 */
export class NotContiguousError extends BufferViewError {
  /** How many segments the view spans. */
  readonly segmentCount: number;

  constructor(segmentCount: number, options: BufferViewErrorOptions = {}) {
    super(
      `view spans ${segmentCount} segments, so it cannot be returned as one array without a copy: call copy() or copyTo() to copy explicitly`,
      'BUFFER_VIEW_NOT_CONTIGUOUS',
      options,
    );
    this.name = 'NotContiguousError';
    this.segmentCount = segmentCount;
  }

  /** True for a {@link NotContiguousError} from any copy of the package. */
  static override isInstance(value: unknown): value is NotContiguousError {
    return hasCode(value, 'BUFFER_VIEW_NOT_CONTIGUOUS');
  }
}

/**
 * The ring's writer has overwritten bytes a reader had not read yet. The
 * reader's bytes are gone; it must rejoin (for example at the newest marker).
 *
 * @example
 * ```ts
 * import { RingOverrunError } from 'buffer-view';
 * try { reader.read(); } catch (err) {
 *   if (RingOverrunError.isInstance(err)) reader.seekToNewestMarker();
 * }
 * ```
 */
export class RingOverrunError extends BufferViewError {
  /** Absolute offset the reader was at. */
  readonly readerOffset: number;
  /** Oldest absolute offset the ring still holds. */
  readonly oldestOffset: number;

  constructor(readerOffset: number, oldestOffset: number, options: BufferViewErrorOptions = {}) {
    super(
      `ring reader at offset ${readerOffset} was overrun: the oldest byte still held is at offset ${oldestOffset} (${oldestOffset - readerOffset} bytes lost)`,
      'BUFFER_VIEW_RING_OVERRUN',
      options,
    );
    this.name = 'RingOverrunError';
    this.readerOffset = readerOffset;
    this.oldestOffset = oldestOffset;
  }

  /** True for a {@link RingOverrunError} from any copy of the package. */
  static override isInstance(value: unknown): value is RingOverrunError {
    return hasCode(value, 'BUFFER_VIEW_RING_OVERRUN');
  }
}

/**
 * A write would overwrite bytes that a blocking ring reader still holds.
 *
 * @example
 * ```ts
 * import { RingFullError } from 'buffer-view';
 * try { ring.write(chunk); } catch (err) { if (RingFullError.isInstance(err)) await drained(); }
 * ```
 */
export class RingFullError extends BufferViewError {
  /** Bytes the write needed. */
  readonly requested: number;
  /** Bytes that could be written without overwriting held data. */
  readonly free: number;

  constructor(requested: number, free: number, options: BufferViewErrorOptions = {}) {
    super(
      `ring write of ${requested} bytes does not fit: only ${free} bytes are free before data a blocking reader still holds`,
      'BUFFER_VIEW_RING_FULL',
      options,
    );
    this.name = 'RingFullError';
    this.requested = requested;
    this.free = free;
  }

  /** True for a {@link RingFullError} from any copy of the package. */
  static override isInstance(value: unknown): value is RingFullError {
    return hasCode(value, 'BUFFER_VIEW_RING_FULL');
  }
}

/**
 * Memory was used after it was released back to its pool.
 *
 * @example
 * ```ts
 * import { ReleasedError, SlabPool } from 'buffer-view';
 * const pool = new SlabPool({ slabSize: 1024, debug: true });
 * const slab = pool.acquire();
 * slab.release();
 * try { slab.bytes; } catch (err) { console.log(ReleasedError.isInstance(err)); } // true
 * ```
 */
export class ReleasedError extends BufferViewError {
  constructor(what: string, options: BufferViewErrorOptions = {}) {
    super(`${what} was used after it was released`, 'BUFFER_VIEW_RELEASED', options);
    this.name = 'ReleasedError';
  }

  /** True for a {@link ReleasedError} from any copy of the package. */
  static override isInstance(value: unknown): value is ReleasedError {
    return hasCode(value, 'BUFFER_VIEW_RELEASED');
  }
}

/**
 * The ArrayBuffer behind a view was detached (transferred to a worker or by
 * `ArrayBuffer.prototype.transfer`), so its bytes are no longer reachable.
 *
 * @example
 * ```ts
 * import { ByteView, DetachedBufferError } from 'buffer-view';
 * const bytes = new Uint8Array(8);
 * const view = ByteView.from(bytes);
 * structuredClone(bytes.buffer, { transfer: [bytes.buffer] });
 * try { view.getUint8(0); } catch (err) { console.log(DetachedBufferError.isInstance(err)); } // true
 * ```
 */
export class DetachedBufferError extends BufferViewError {
  constructor(options: BufferViewErrorOptions = {}) {
    super(
      'the ArrayBuffer behind this view was detached (transferred); its bytes are gone',
      'BUFFER_VIEW_DETACHED',
      options,
    );
    this.name = 'DetachedBufferError';
  }

  /** True for a {@link DetachedBufferError} from any copy of the package. */
  static override isInstance(value: unknown): value is DetachedBufferError {
    return hasCode(value, 'BUFFER_VIEW_DETACHED');
  }
}

/**
 * A view was used after its store moved the bytes it aliased (for example
 * after `compact()`), so reading it would show bytes the store no longer has.
 *
 * @example
 * ```ts
 * import { ByteStore, StaleViewError } from 'buffer-view';
 * const store = ByteStore.from([new Uint8Array(2), new Uint8Array(2)]);
 * const v = store.view();
 * store.compact();
 * try { v.getUint8(0); } catch (err) { console.log(StaleViewError.isInstance(err)); } // true
 * ```
 */
export class StaleViewError extends BufferViewError {
  constructor(reason: string, options: BufferViewErrorOptions = {}) {
    super(`view is stale: ${reason}; take a new view`, 'BUFFER_VIEW_STALE_VIEW', options);
    this.name = 'StaleViewError';
  }

  /** True for a {@link StaleViewError} from any copy of the package. */
  static override isInstance(value: unknown): value is StaleViewError {
    return hasCode(value, 'BUFFER_VIEW_STALE_VIEW');
  }
}

/**
 * A pool had no free slab and was not allowed to allocate another.
 *
 * @example
 * ```ts
 * import { PoolExhaustedError, SlabPool } from 'buffer-view';
 * const pool = new SlabPool({ slabSize: 1024, maxSlabs: 1 });
 * pool.acquire();
 * try { pool.acquire(); } catch (err) { console.log(PoolExhaustedError.isInstance(err)); } // true
 * ```
 */
export class PoolExhaustedError extends BufferViewError {
  /** The pool's slab limit. */
  readonly limit: number;

  constructor(limit: number, options: BufferViewErrorOptions = {}) {
    super(
      `slab pool exhausted: all ${limit} slabs are in use (maxSlabs = ${limit})`,
      'BUFFER_VIEW_POOL_EXHAUSTED',
      options,
    );
    this.name = 'PoolExhaustedError';
    this.limit = limit;
  }

  /** True for a {@link PoolExhaustedError} from any copy of the package. */
  static override isInstance(value: unknown): value is PoolExhaustedError {
    return hasCode(value, 'BUFFER_VIEW_POOL_EXHAUSTED');
  }
}

/**
 * A read-into ended before the region it was asked to fill was full.
 *
 * @example
 * ```ts
 * import { UnexpectedEofError } from 'buffer-view';
 * import { readFdInto } from 'buffer-view/node';
 * try { await readFdInto(fd, region, 0, { exact: true }); }
 * catch (err) { if (UnexpectedEofError.isInstance(err)) console.log(err.expected, err.received); }
 * ```
 */
export class UnexpectedEofError extends BufferViewError {
  /** Bytes the caller asked for. */
  readonly expected: number;
  /** Bytes that arrived before the end. */
  readonly received: number;

  constructor(expected: number, received: number, options: BufferViewErrorOptions = {}) {
    super(
      `source ended after ${received} of ${expected} expected bytes`,
      'BUFFER_VIEW_UNEXPECTED_EOF',
      options,
    );
    this.name = 'UnexpectedEofError';
    this.expected = expected;
    this.received = received;
  }

  /** True for an {@link UnexpectedEofError} from any copy of the package. */
  static override isInstance(value: unknown): value is UnexpectedEofError {
    return hasCode(value, 'BUFFER_VIEW_UNEXPECTED_EOF');
  }
}

/**
 * A read-into or gather-write failed part-way: the socket, stream or file
 * reported an error (kept as `cause`), closed early, or stopped taking bytes.
 * {@link TransferError.transferred} says exactly how many bytes landed before
 * the failure, so nothing is silently truncated.
 *
 * @example
 * ```ts
 * import { TransferError } from 'buffer-view';
 * import { writeGatherAsync } from 'buffer-view/node';
 * try { await writeGatherAsync(socket, view); }
 * catch (err) { if (TransferError.isInstance(err)) console.log(err.transferred, err.cause); }
 * ```
 */
export class TransferError extends BufferViewError {
  /** Which way the bytes were moving. */
  readonly operation: 'read' | 'write';
  /** Bytes moved before the failure. */
  readonly transferred: number;
  /** Bytes the operation meant to move, or `undefined` when open-ended. */
  readonly expected: number | undefined;

  constructor(
    operation: 'read' | 'write',
    transferred: number,
    expected: number | undefined,
    reason: string,
    options: BufferViewErrorOptions = {},
  ) {
    super(
      `${operation} failed after ${transferred}${expected === undefined ? '' : ` of ${expected}`} bytes: ${reason}`,
      'BUFFER_VIEW_TRANSFER_FAILED',
      options,
    );
    this.name = 'TransferError';
    this.operation = operation;
    this.transferred = transferred;
    this.expected = expected;
  }

  /** True for a {@link TransferError} from any copy of the package. */
  static override isInstance(value: unknown): value is TransferError {
    return hasCode(value, 'BUFFER_VIEW_TRANSFER_FAILED');
  }
}
