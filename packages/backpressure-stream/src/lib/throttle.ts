import { abortError, checkNumber } from './errors';
import { now } from './metrics';
import { byteSize } from './size';

/**
 * Options of {@link TokenBucket} and {@link throttle}.
 *
 * @example
 * ```ts
 * import type { ThrottleOptions } from 'backpressure-stream';
 * const options: ThrottleOptions = { bytesPerSecond: 12_500_000, burst: 256 * 1024 }; // 100 Mbit/s
 * ```
 */
export interface ThrottleOptions<T = Uint8Array> {
  /** Sustained rate, in bytes (or `size` units) per second. */
  bytesPerSecond: number;
  /**
   * Bucket size: how much may pass at once after a quiet spell.
   * @default bytesPerSecond / 10 (100 ms worth), at least 1
   */
  burst?: number;
  /**
   * How big a chunk is, for {@link throttle}.
   * @default byteSize
   */
  size?: (chunk: T) => number;
  /** @internal Clock in milliseconds, for tests. */
  clock?: () => number;
  /** @internal Sleep, for tests. */
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
}

/**
 * Options of {@link TokenBucket.take}.
 *
 * @example
 * ```ts
 * await bucket.take(chunk.byteLength, { signal });
 * ```
 */
export interface TakeOptions {
  /**
   * Stops waiting (rejecting with {@link AbortedError}).
   * @default undefined
   */
  signal?: AbortSignal;
}

/**
 * A token bucket in bytes per second with a burst allowance. `take(n)`
 * waits until the bucket has tokens and then spends `n`, going into debt
 * for chunks larger than the burst so the long-run rate is exact whatever
 * the chunk sizes.
 *
 * @example
 * ```ts
 * import { TokenBucket } from 'backpressure-stream';
 * const bucket = new TokenBucket({ bytesPerSecond: 1_000_000 });
 * for (const chunk of chunks) {
 *   await bucket.take(chunk.byteLength);
 *   socket.write(chunk);
 * }
 * ```
 */
export class TokenBucket {
  #rate: number;
  #burst: number;
  #tokens: number;
  #last: number;
  readonly #clock: () => number;
  readonly #sleep: (ms: number, signal?: AbortSignal) => Promise<void>;
  #waitedMs = 0;

  /**
   * A full bucket.
   *
   * @example
   * ```ts
   * import { TokenBucket } from 'backpressure-stream';
   * const bucket = new TokenBucket({ bytesPerSecond: 100_000, burst: 16_384 });
   * ```
   */
  constructor(options: ThrottleOptions<never>) {
    this.#rate = checkRate(options.bytesPerSecond);
    this.#burst = checkBurst(options.burst ?? Math.max(1, options.bytesPerSecond / 10));
    this.#clock = options.clock ?? now;
    this.#sleep = options.sleep ?? sleep;
    this.#tokens = this.#burst;
    this.#last = this.#clock();
  }

  /** The sustained rate in bytes per second. */
  get bytesPerSecond(): number {
    return this.#rate;
  }

  /** The bucket size. */
  get burst(): number {
    return this.#burst;
  }

  /** Tokens available now (negative while in debt after a large chunk). */
  get available(): number {
    this.#refill();
    return this.#tokens;
  }

  /** Total milliseconds `take` has spent waiting. */
  get waitedMs(): number {
    return this.#waitedMs;
  }

  /**
   * Changes the rate (and optionally the burst) from now on, e.g. when a
   * viewer's measured bandwidth changes.
   *
   * @example
   * ```ts
   * bucket.setRate(2_000_000);
   * ```
   */
  setRate(bytesPerSecond: number, burst?: number): void {
    this.#refill();
    this.#rate = checkRate(bytesPerSecond);
    if (burst !== undefined) this.#burst = checkBurst(burst);
    this.#tokens = Math.min(this.#tokens, this.#burst);
  }

  /**
   * Spends `n` tokens if the bucket holds them (or is full, for `n` above
   * the burst), without waiting.
   *
   * @example
   * ```ts
   * if (!bucket.tryTake(chunk.byteLength)) queue.push(chunk);
   * ```
   */
  tryTake(n: number): boolean {
    checkNumber('token count', n, 0, Number.POSITIVE_INFINITY, false);
    this.#refill();
    if (this.#tokens < Math.min(n, this.#burst)) return false;
    this.#tokens -= n;
    return true;
  }

  /**
   * Waits until the bucket holds `n` tokens (or is full, for `n` above the
   * burst), then spends `n`.
   *
   * @example
   * ```ts
   * await bucket.take(chunk.byteLength, { signal });
   * ```
   */
  async take(n: number, options: TakeOptions = {}): Promise<void> {
    checkNumber('token count', n, 0, Number.POSITIVE_INFINITY, false);
    const { signal } = options;
    if (signal?.aborted) throw abortError('throttle wait', signal);
    // Wait for the chunk's full price, capped at the burst: a chunk larger than
    // the bucket goes out when the bucket is full and leaves it in debt.
    const need = Math.min(n, this.#burst);
    for (;;) {
      this.#refill();
      if (this.#tokens >= need) break;
      const ms = Math.max(1, Math.ceil(((need - this.#tokens) / this.#rate) * 1000));
      const before = this.#clock();
      await this.#sleep(ms, signal);
      this.#waitedMs += this.#clock() - before;
    }
    this.#tokens -= n;
  }

  #refill(): void {
    const t = this.#clock();
    const elapsed = t - this.#last;
    this.#last = t;
    if (elapsed > 0)
      this.#tokens = Math.min(this.#burst, this.#tokens + (elapsed / 1000) * this.#rate);
  }
}

/**
 * A pipeline transform that passes chunks through at most at
 * `bytesPerSecond` (with `burst`), holding one chunk at a time: upstream
 * backpressure does the rest, so memory stays flat however fast the source.
 *
 * @example
 * ```ts
 * import { pipeline, throttle } from 'backpressure-stream';
 * await pipeline(source, throttle({ bytesPerSecond: 1_000_000 }), sink);
 * ```
 */
export function throttle<T = Uint8Array>(
  options: ThrottleOptions<T>,
): (source: AsyncIterable<T>, context?: { signal?: AbortSignal }) => AsyncGenerator<T> {
  const size = options.size ?? (byteSize as (chunk: T) => number);
  return async function* throttled(source, context = {}) {
    const bucket = new TokenBucket(options as ThrottleOptions<never>);
    const takeOptions: TakeOptions = context.signal === undefined ? {} : { signal: context.signal };
    for await (const chunk of source) {
      await bucket.take(size(chunk), takeOptions);
      yield chunk;
    }
  };
}

function checkRate(rate: number): number {
  checkNumber('bytesPerSecond', rate, Number.MIN_VALUE, Number.MAX_VALUE, false);
  return rate;
}

function checkBurst(burst: number): number {
  checkNumber('burst', burst, 1, Number.MAX_VALUE, false);
  return burst;
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const onAbort = () => {
      clearTimeout(timer);
      reject(abortError('throttle wait', signal as AbortSignal));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
