/**
 * What one stage of a pipeline, one channel or one fan-out consumer has
 * done so far. Sizes are in the stage's size unit: bytes unless a `size`
 * function says otherwise.
 *
 * @example
 * ```ts
 * const m: StageMetrics = channel.metrics;
 * console.log(`${m.name}: ${m.bufferedBytes}/${m.capacity} buffered, peak ${m.peakBufferedBytes}`);
 * ```
 */
export interface StageMetrics {
  /** The stage's name (for logs and Prometheus labels). */
  name: string;
  /** The high-water mark. */
  capacity: number;
  /** Held right now. */
  bufferedBytes: number;
  /** Most ever held at once. */
  peakBufferedBytes: number;
  /** Accepted from the producer. */
  bytesIn: number;
  /** Handed to the consumer. */
  bytesOut: number;
  /** Chunks accepted. */
  chunksIn: number;
  /** Chunks handed out. */
  chunksOut: number;
  /** Discarded by a policy or an abort instead of being delivered. */
  bytesDropped: number;
  /** Total milliseconds producers spent stalled on this stage (full, waiting for room). */
  stalledMs: number;
  /** How many times a producer was told to wait (`write()` returned `false` or `send` blocked). */
  stalls: number;
}

/** @internal Tracks stall intervals: a stall starts when the stage fills and ends when it drains. */
export class StallClock {
  #since: number | undefined;
  #total = 0;
  count = 0;

  start(): void {
    if (this.#since !== undefined) return;
    this.#since = now();
    this.count++;
  }

  stop(): void {
    if (this.#since === undefined) return;
    this.#total += now() - this.#since;
    this.#since = undefined;
  }

  get totalMs(): number {
    return this.#since === undefined ? this.#total : this.#total + (now() - this.#since);
  }
}

/** @internal Monotonic milliseconds in Node and browsers. */
export function now(): number {
  return performance.now();
}
