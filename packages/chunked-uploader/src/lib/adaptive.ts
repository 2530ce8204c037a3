import { InvalidArgumentError } from './errors';

/**
 * Options of adaptive chunk sizing.
 *
 * @example
 * ```ts
 * await upload(file, { protocol, adaptive: { minChunkSize: 2 ** 20, maxChunkSize: 128 * 2 ** 20 } });
 * ```
 */
export interface AdaptiveOptions {
  /**
   * Smallest chunk to try (raised to the protocol's minimum and multiple).
   * @default 1 MiB
   */
  minChunkSize?: number;
  /**
   * Largest chunk to try; with `prefetch` and `parallel` it sets the memory
   * cap (`maxChunkSize × (prefetch + parallel)`).
   * @default 64 MiB
   */
  maxChunkSize?: number;
  /**
   * Where to start.
   * @default the upload's `chunkSize`
   */
  initialChunkSize?: number;
  /**
   * How much better a larger chunk must do to be worth it (0.05 = 5 %).
   * @default 0.05
   */
  threshold?: number;
  /**
   * After settling, try a neighbouring size every this many chunks, so a
   * change in the network is noticed.
   * @default 16
   */
  probeEvery?: number;
}

/**
 * A snapshot of what the adaptive controller measured, for logs and charts.
 *
 * @example
 * ```ts
 * upload.on('chunk', (c) => console.log(c.length, c.bytesPerSecond));
 * ```
 */
export interface AdaptiveSample {
  /** Chunk size tried. */
  size: number;
  /** Smoothed throughput at that size, bytes per second. */
  bytesPerSecond: number;
}

/**
 * @internal Hill-climbs over a ladder of chunk sizes (doubling from the
 * minimum), measuring each chunk's throughput: it grows while a larger
 * chunk is clearly faster, settles on the best measured size, and
 * periodically probes a neighbour.
 */
export class AdaptiveChunkSize {
  readonly #ladder: number[];
  readonly #threshold: number;
  readonly #probeEvery: number;
  readonly #rates = new Map<number, number>();
  #step: number;
  #growing = true;
  #sinceProbe = 0;
  #probeUp = true;
  #settled: number;

  constructor(
    min: number,
    max: number,
    initial: number,
    multiple: number,
    options: AdaptiveOptions = {},
  ) {
    if (!(min > 0) || max < min) {
      throw new InvalidArgumentError(
        `adaptive chunk sizes: min ${min} and max ${max} must satisfy 0 < min <= max`,
      );
    }
    const round = (n: number) => Math.max(multiple, Math.floor(n / multiple) * multiple);
    const ladder: number[] = [];
    const top = round(max);
    for (let size = round(min); size < top; size = round(size * 2)) ladder.push(size);
    ladder.push(top);
    this.#ladder = ladder;
    this.#threshold = options.threshold ?? 0.05;
    this.#probeEvery = options.probeEvery ?? 16;
    let start = 0;
    while (start + 1 < this.#ladder.length && (this.#ladder[start + 1] as number) <= initial)
      start++;
    this.#step = start;
    this.#settled = start;
  }

  /** The largest size it may choose: what a buffer must hold. */
  get largest(): number {
    return this.#ladder[this.#ladder.length - 1] as number;
  }

  /** The size the next chunk should have. */
  get size(): number {
    return this.#ladder[this.#step] as number;
  }

  /** Every size measured so far with its smoothed throughput. */
  get samples(): AdaptiveSample[] {
    return [...this.#rates].map(([size, bytesPerSecond]) => ({ size, bytesPerSecond }));
  }

  /**
   * Records a chunk planned at `size` that carried `bytes` and was
   * acknowledged `ms` after it started. Chunks are planned before earlier
   * ones are measured (prefetch), so a measurement is filed under the size
   * it was planned at, and only one for the current size moves the climb.
   */
  record(size: number, bytes: number, ms: number): void {
    if (ms <= 0 || bytes <= 0) return;
    // A short final chunk says little about its size's throughput.
    if (bytes < size / 2) return;
    const rate = (bytes / ms) * 1000;
    const old = this.#rates.get(size);
    this.#rates.set(size, old === undefined ? rate : old * 0.5 + rate * 0.5);
    if (size !== this.size) return;
    if (this.#growing) {
      const prev =
        this.#step > 0 ? this.#rates.get(this.#ladder[this.#step - 1] as number) : undefined;
      const better = prev === undefined || rate > prev * (1 + this.#threshold);
      if (better && this.#step + 1 < this.#ladder.length) {
        this.#step++;
      } else {
        this.#growing = false;
        this.#settle();
      }
      return;
    }
    if (this.#step !== this.#settled) {
      this.#settle();
      return;
    }
    if (++this.#sinceProbe >= this.#probeEvery) {
      this.#sinceProbe = 0;
      const next = this.#step + (this.#probeUp ? 1 : -1);
      this.#probeUp = !this.#probeUp;
      if (next >= 0 && next < this.#ladder.length) this.#step = next;
    }
  }

  #settle(): void {
    let best = this.#step;
    let bestRate = -1;
    for (let i = 0; i < this.#ladder.length; i++) {
      const rate = this.#rates.get(this.#ladder[i] as number);
      if (rate !== undefined && rate > bestRate * (1 + (i > best ? this.#threshold : 0))) {
        best = i;
        bestRate = rate;
      }
    }
    this.#step = best;
    this.#settled = best;
  }
}
