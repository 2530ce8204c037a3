const kBackpressureError = Symbol.for('backpressure-stream.error');

/**
 * Every stable error code thrown by backpressure-stream.
 *
 * @example
 * ```ts
 * import { BackpressureError } from 'backpressure-stream';
 * if (BackpressureError.isInstance(err) && err.code === 'BACKPRESSURE_CLOSED') return;
 * ```
 */
export type BackpressureErrorCode =
  | 'BACKPRESSURE_CLOSED'
  | 'BACKPRESSURE_ABORTED'
  | 'BACKPRESSURE_DISCONNECTED'
  | 'BACKPRESSURE_BUDGET_EXCEEDED'
  | 'BACKPRESSURE_INVALID_ARGUMENT';

/** Options every backpressure-stream error accepts. */
export interface BackpressureErrorOptions {
  /** The error that led to this one, if any. */
  cause?: unknown;
}

/**
 * Base class of every error backpressure-stream throws, with a stable
 * {@link BackpressureError.code}. Use {@link BackpressureError.isInstance}
 * rather than `instanceof` when two copies of the package may be loaded.
 *
 * @example
 * ```ts
 * import { BackpressureError } from 'backpressure-stream';
 * try { channel.write(chunk); } catch (err) {
 *   if (BackpressureError.isInstance(err)) console.error(err.code, err.message);
 * }
 * ```
 */
export class BackpressureError extends Error {
  /** Stable, machine-readable code. */
  readonly code: BackpressureErrorCode;

  /** @param message - what went wrong, naming the value and the limit. */
  constructor(
    message: string,
    code: BackpressureErrorCode,
    options: BackpressureErrorOptions = {},
  ) {
    super(message, { cause: options.cause });
    this.name = 'BackpressureError';
    this.code = code;
  }

  /** @internal Brand that survives duplicated package copies. */
  get [kBackpressureError](): true {
    return true;
  }

  /**
   * True for any backpressure-stream error, from this copy of the package or another.
   *
   * @example
   * ```ts
   * if (BackpressureError.isInstance(err)) console.log(err.code);
   * ```
   */
  static isInstance(value: unknown): value is BackpressureError {
    return (
      typeof value === 'object' &&
      value !== null &&
      (value as { [kBackpressureError]?: unknown })[kBackpressureError] === true
    );
  }
}

function hasCode(value: unknown, code: BackpressureErrorCode): boolean {
  return BackpressureError.isInstance(value) && value.code === code;
}

/**
 * A write, send or read on a channel (or stage) that was already closed.
 *
 * @example
 * ```ts
 * import { Channel, ClosedError } from 'backpressure-stream';
 * const ch = new Channel();
 * ch.close();
 * try { ch.write(new Uint8Array(1)); } catch (err) { console.log(ClosedError.isInstance(err)); } // true
 * ```
 */
export class ClosedError extends BackpressureError {
  constructor(what: string, options: BackpressureErrorOptions = {}) {
    super(`${what} is closed`, 'BACKPRESSURE_CLOSED', options);
    this.name = 'ClosedError';
  }

  /** True for a {@link ClosedError} from any copy of the package. */
  static override isInstance(value: unknown): value is ClosedError {
    return hasCode(value, 'BACKPRESSURE_CLOSED');
  }
}

/**
 * An operation stopped because a channel, pipeline or signal was aborted.
 * The abort reason is the `cause`.
 *
 * @example
 * ```ts
 * import { AbortedError, Channel } from 'backpressure-stream';
 * const ch = new Channel();
 * ch.abort(new Error('viewer left'));
 * try { await ch.read(); } catch (err) { console.log(AbortedError.isInstance(err), (err as Error).cause); }
 * ```
 */
export class AbortedError extends BackpressureError {
  constructor(what: string, options: BackpressureErrorOptions = {}) {
    super(`${what} was aborted${describeReason(options.cause)}`, 'BACKPRESSURE_ABORTED', options);
    this.name = 'AbortedError';
  }

  /** True for an {@link AbortedError} from any copy of the package. */
  static override isInstance(value: unknown): value is AbortedError {
    return hasCode(value, 'BACKPRESSURE_ABORTED');
  }
}

/**
 * Why a fan-out consumer was disconnected.
 *
 * @example
 * ```ts
 * import type { DisconnectReason } from 'backpressure-stream';
 * const reason: DisconnectReason = 'lagged';
 * ```
 */
export type DisconnectReason = 'lagged' | 'lapped' | 'removed' | 'producer-aborted';

/**
 * A fan-out consumer was cut off: it fell further behind than its policy
 * allows (`'lagged'`), the producer overwrote bytes it still held
 * (`'lapped'`), it was removed, or the producer aborted.
 *
 * @example
 * ```ts
 * import { DisconnectedError } from 'backpressure-stream';
 * try { for await (const chunk of consumer) send(chunk); }
 * catch (err) { if (DisconnectedError.isInstance(err)) log(err.reason, err.lag, err.limit); }
 * ```
 */
export class DisconnectedError extends BackpressureError {
  /** Why the consumer was disconnected. */
  readonly reason: DisconnectReason;
  /** How far behind the producer the consumer was, in bytes. */
  readonly lag: number;
  /** The lag the consumer's policy allowed, in bytes. */
  readonly limit: number;

  constructor(
    consumer: string,
    reason: DisconnectReason,
    lag: number,
    limit: number,
    options: BackpressureErrorOptions = {},
  ) {
    super(
      `consumer ${consumer} disconnected (${reason}): ${lag} bytes behind, limit ${limit}`,
      'BACKPRESSURE_DISCONNECTED',
      options,
    );
    this.name = 'DisconnectedError';
    this.reason = reason;
    this.lag = lag;
    this.limit = limit;
  }

  /** True for a {@link DisconnectedError} from any copy of the package. */
  static override isInstance(value: unknown): value is DisconnectedError {
    return hasCode(value, 'BACKPRESSURE_DISCONNECTED');
  }
}

/**
 * A write would take buffered bytes past a hard limit: the producer ignored
 * `write()` returning `false` for too long.
 *
 * @example
 * ```ts
 * import { BudgetExceededError, Channel } from 'backpressure-stream';
 * const ch = new Channel({ capacity: 1024, limit: 4096 });
 * try { while (true) ch.write(new Uint8Array(1024)); }
 * catch (err) { if (BudgetExceededError.isInstance(err)) console.log(err.requested, err.limit); }
 * ```
 */
export class BudgetExceededError extends BackpressureError {
  /** Bytes buffered after the write would have been. */
  readonly requested: number;
  /** The hard limit. */
  readonly limit: number;

  constructor(
    what: string,
    requested: number,
    limit: number,
    options: BackpressureErrorOptions = {},
  ) {
    super(
      `${what} would buffer ${requested} bytes, over its limit of ${limit}: wait for write() to return true or for 'drain'`,
      'BACKPRESSURE_BUDGET_EXCEEDED',
      options,
    );
    this.name = 'BudgetExceededError';
    this.requested = requested;
    this.limit = limit;
  }

  /** True for a {@link BudgetExceededError} from any copy of the package. */
  static override isInstance(value: unknown): value is BudgetExceededError {
    return hasCode(value, 'BACKPRESSURE_BUDGET_EXCEEDED');
  }
}

/**
 * An argument has the wrong type, shape or range.
 *
 * @example
 * ```ts
 * import { Channel, InvalidArgumentError } from 'backpressure-stream';
 * try { new Channel({ capacity: -1 }); } catch (err) { console.log(InvalidArgumentError.isInstance(err)); }
 * ```
 */
export class InvalidArgumentError extends BackpressureError {
  constructor(message: string, options: BackpressureErrorOptions = {}) {
    super(message, 'BACKPRESSURE_INVALID_ARGUMENT', options);
    this.name = 'InvalidArgumentError';
  }

  /** True for an {@link InvalidArgumentError} from any copy of the package. */
  static override isInstance(value: unknown): value is InvalidArgumentError {
    return hasCode(value, 'BACKPRESSURE_INVALID_ARGUMENT');
  }
}

function describeReason(reason: unknown): string {
  if (reason === undefined) return '';
  if (reason instanceof Error) return `: ${reason.message}`;
  return `: ${String(reason)}`;
}

/** @internal Throws unless `value` is a number in `[min, max]` (integers when `integer`). */
export function checkNumber(
  what: string,
  value: number,
  min: number,
  max: number,
  integer = true,
): void {
  if (
    typeof value !== 'number' ||
    Number.isNaN(value) ||
    (integer && !Number.isInteger(value) && value !== Number.POSITIVE_INFINITY) ||
    value < min ||
    value > max
  ) {
    throw new InvalidArgumentError(
      `${what} ${value} is out of range: must be >= ${min} and <= ${max}`,
    );
  }
}

/** @internal The error a pending operation rejects with when `signal` aborts. */
export function abortError(what: string, signal: AbortSignal): AbortedError {
  return new AbortedError(what, { cause: signal.reason });
}
