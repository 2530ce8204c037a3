/**
 * Where an upload stands. `bytesSent` and `bytesAcknowledged` only ever
 * grow: a failed request does not take sent bytes back, the retry counts
 * again only once it passes where the failed one got to.
 *
 * @example
 * ```ts
 * upload.on('progress', (p: UploadProgress) => {
 *   bar.update(p.bytesAcknowledged / (p.bytesTotal ?? p.bytesSent));
 * });
 * ```
 */
export interface UploadProgress {
  /** Total bytes, or `undefined` while the source's size is unknown. */
  bytesTotal: number | undefined;
  /** Bytes handed to the network (acknowledged plus in flight). */
  bytesSent: number;
  /** Bytes the server confirmed it stored. */
  bytesAcknowledged: number;
  /** Recent acknowledged throughput in bytes per second (smoothed). */
  bytesPerSecond: number;
  /** Estimated milliseconds left, when the total and a rate are known. */
  etaMs: number | undefined;
  /** Bytes the server already had when this run started (a resume). */
  bytesResumed: number;
}

/** @internal Keeps the counters monotonic and the rate smoothed. */
export class ProgressTracker {
  #total: number | undefined;
  #acked = 0;
  #sentHigh = 0;
  #inFlight = new Map<number, number>();
  #resumed = 0;
  #rate = 0;
  #lastAt: number;
  #lastAcked = 0;
  readonly #now: () => number;

  constructor(total: number | undefined, now: () => number = () => performance.now()) {
    this.#total = total;
    this.#now = now;
    this.#lastAt = now();
  }

  setTotal(total: number): void {
    this.#total = total;
  }

  resumedAt(bytes: number): void {
    this.#resumed = bytes;
    this.#acked = bytes;
    this.#lastAcked = bytes;
    this.#sentHigh = Math.max(this.#sentHigh, bytes);
  }

  sent(chunk: number, bytes: number): void {
    this.#inFlight.set(chunk, (this.#inFlight.get(chunk) ?? 0) + bytes);
    this.#bumpSent();
  }

  failed(chunk: number): void {
    this.#inFlight.delete(chunk);
  }

  acknowledged(chunk: number, bytes: number): void {
    this.#inFlight.delete(chunk);
    this.#acked += bytes;
    this.#bumpSent();
    const t = this.#now();
    const dt = t - this.#lastAt;
    if (dt >= 50) {
      const instant = ((this.#acked - this.#lastAcked) / dt) * 1000;
      // An exponentially weighted average: steady enough for an ETA, quick to follow a change.
      this.#rate = this.#rate === 0 ? instant : this.#rate * 0.7 + instant * 0.3;
      this.#lastAt = t;
      this.#lastAcked = this.#acked;
    }
  }

  #bumpSent(): void {
    let inFlight = 0;
    for (const n of this.#inFlight.values()) inFlight += n;
    this.#sentHigh = Math.max(this.#sentHigh, this.#acked + inFlight);
  }

  snapshot(): UploadProgress {
    const total = this.#total;
    const left = total === undefined ? undefined : total - this.#acked;
    return {
      bytesTotal: total,
      bytesSent: total === undefined ? this.#sentHigh : Math.min(total, this.#sentHigh),
      bytesAcknowledged: this.#acked,
      bytesPerSecond: this.#rate,
      etaMs: left === undefined || this.#rate <= 0 ? undefined : (left / this.#rate) * 1000,
      bytesResumed: this.#resumed,
    };
  }
}
