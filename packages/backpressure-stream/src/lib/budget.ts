import { checkNumber } from './errors';

/**
 * One byte budget shared by several channels, so a whole pipeline is
 * bounded by a single number instead of per-stage high-water marks that add
 * up. A channel with a budget reports "full" once the budget is used up, but
 * always accepts a chunk while it is itself empty, so the pipeline can make
 * progress: the bound is `limit` plus one chunk per channel.
 *
 * @example
 * ```ts
 * import { ByteBudget, Channel } from 'backpressure-stream';
 * const budget = new ByteBudget(8 * 2 ** 20);
 * const a = new Channel({ budget });
 * const b = new Channel({ budget }); // a and b together hold about 8 MiB at most
 * ```
 */
export class ByteBudget {
  /** The shared limit. */
  readonly limit: number;
  #used = 0;
  #peak = 0;
  readonly #listeners = new Set<() => void>();

  /**
   * @param limit - bytes the channels sharing this budget may hold together.
   */
  constructor(limit: number) {
    checkNumber('budget limit', limit, 1, Number.POSITIVE_INFINITY);
    this.limit = limit;
  }

  /** Bytes held right now by every channel sharing the budget. */
  get used(): number {
    return this.#used;
  }

  /** Most bytes ever held at once. */
  get peak(): number {
    return this.#peak;
  }

  /** Whether the channels sharing the budget may accept more. */
  get exhausted(): boolean {
    return this.#used >= this.limit;
  }

  /** @internal */
  take(n: number): void {
    this.#used += n;
    if (this.#used > this.#peak) this.#peak = this.#used;
  }

  /** @internal */
  give(n: number): void {
    this.#used -= n;
    if (n === 0 || this.#listeners.size === 0) return;
    // A snapshot only when there is more than one: a listener may unsubscribe while being called.
    if (this.#listeners.size === 1) for (const listener of this.#listeners) listener();
    else for (const listener of [...this.#listeners]) listener();
  }

  /** @internal Calls `listener` whenever bytes are given back; returns an unsubscribe function. */
  subscribe(listener: () => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** @internal How many channels are listening (for leak tests). */
  get listenerCount(): number {
    return this.#listeners.size;
  }
}
