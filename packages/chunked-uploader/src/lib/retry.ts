import { RetriesExhaustedError, UploadAbortedError, UploadError } from './errors';

/**
 * How failed requests are retried. One budget is shared by every chunk of
 * an upload, so twenty parts failing at once cannot turn into a retry
 * storm of twenty times the retries.
 *
 * @example
 * ```ts
 * import type { RetryOptions } from 'chunked-uploader';
 * const retry: RetryOptions = { retries: 20, minDelayMs: 500, maxDelayMs: 60_000 };
 * ```
 */
export interface RetryOptions {
  /**
   * Retries allowed for the whole upload, across all chunks.
   * @default 10
   */
  retries?: number;
  /**
   * Backoff cap of the first retry; doubles with each further retry of the same chunk.
   * @default 250
   */
  minDelayMs?: number;
  /**
   * Largest backoff cap; also the most a `Retry-After` is honoured for.
   * @default 30000
   */
  maxDelayMs?: number;
  /** @internal Random in [0, 1), for tests. */
  random?: () => number;
  /** @internal Sleep, for tests. */
  sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
}

/**
 * An event describing one retry, for logs and progress displays.
 *
 * @example
 * ```ts
 * upload.on('retry', (r: RetryEvent) => console.warn(`retry ${r.attempt} in ${r.delayMs} ms`, r.error));
 * ```
 */
export interface RetryEvent {
  /** The chunk being retried (-1 for session-level requests). */
  chunk: number;
  /** This chunk's attempt number (1 for the first retry). */
  attempt: number;
  /** The wait before the retry. */
  delayMs: number;
  /** Retries left in the shared budget after this one. */
  remaining: number;
  /** What failed. */
  error: UploadError;
}

/** @internal The shared budget with exponential backoff and full jitter. */
export class RetryBudget {
  #remaining: number;
  readonly #spentLimit: number;
  readonly #min: number;
  readonly #max: number;
  readonly #random: () => number;
  readonly #sleep: (ms: number, signal: AbortSignal) => Promise<void>;

  constructor(options: RetryOptions = {}) {
    this.#spentLimit = options.retries ?? 10;
    this.#remaining = this.#spentLimit;
    this.#min = options.minDelayMs ?? 250;
    this.#max = options.maxDelayMs ?? 30_000;
    this.#random = options.random ?? Math.random;
    this.#sleep = options.sleep ?? sleep;
  }

  get remaining(): number {
    return this.#remaining;
  }

  get spent(): number {
    return this.#spentLimit - this.#remaining;
  }

  /**
   * Runs `fn`, retrying retryable `UploadError`s while the shared budget
   * lasts. Non-retryable errors are thrown at once.
   */
  async run<T>(
    chunk: number,
    signal: AbortSignal,
    fn: (attempt: number) => Promise<T>,
    onRetry?: (event: RetryEvent) => void | Promise<void>,
  ): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await fn(attempt);
      } catch (error) {
        if (signal.aborted) throw new UploadAbortedError({ cause: signal.reason });
        if (!UploadError.isInstance(error) || !error.retryable) throw error;
        if (this.#remaining <= 0) throw new RetriesExhaustedError(this.spent, { cause: error });
        this.#remaining--;
        const delayMs = this.delay(attempt, error);
        await onRetry?.({
          chunk,
          attempt: attempt + 1,
          delayMs,
          remaining: this.#remaining,
          error,
        });
        await this.#sleep(delayMs, signal);
      }
    }
  }

  /** Full jitter: uniform in [0, min(max, min × 2^attempt)], or the server's Retry-After. */
  delay(attempt: number, error: UploadError): number {
    const retryAfter = (error as { retryAfterMs?: number }).retryAfterMs;
    if (typeof retryAfter === 'number') return Math.min(retryAfter, this.#max);
    const cap = Math.min(this.#max, this.#min * 2 ** attempt);
    return Math.floor(this.#random() * cap);
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) {
      reject(new UploadAbortedError({ cause: signal.reason }));
      return;
    }
    const onAbort = () => {
      clearTimeout(timer);
      reject(new UploadAbortedError({ cause: signal.reason }));
    };
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}
