/** Slots a window is cut into: the window slides in steps of a tenth of its length. */
const SLOTS = 10;

/**
 * Bytes over a sliding time window, for the ingest bitrate ceiling and the
 * bitrate `/api/live` shows. Memory is fixed (ten counters) however long
 * the stream runs.
 *
 * @example
 * ```ts
 * const meter = new BitrateMeter(5000);
 * req.on('data', (chunk) => meter.add(chunk.length));
 * meter.bitsPerSecond(); // averaged over the last 5 s
 * ```
 */
export class BitrateMeter {
  readonly windowMs: number;
  readonly #slotMs: number;
  readonly #slots = new Float64Array(SLOTS);
  readonly #now: () => number;
  readonly #started: number;
  /** Index of the slot `#slots[#current % SLOTS]` counts into. */
  #current: number;

  constructor(windowMs: number, now: () => number = () => performance.now()) {
    this.windowMs = windowMs;
    this.#slotMs = windowMs / SLOTS;
    this.#now = now;
    this.#started = now();
    this.#current = Math.floor(this.#started / this.#slotMs);
  }

  /** Counts `bytes` as arriving now. */
  add(bytes: number): void {
    this.#advance();
    this.#slots[this.#current % SLOTS] = (this.#slots[this.#current % SLOTS] as number) + bytes;
  }

  /** Bytes counted over the last window. */
  windowBytes(): number {
    this.#advance();
    let total = 0;
    for (const n of this.#slots) total += n;
    return total;
  }

  /** Average bits per second over the last window (over the time since the start while that is shorter). */
  bitsPerSecond(): number {
    const span = Math.min(this.windowMs, Math.max(this.#slotMs, this.#now() - this.#started));
    return (this.windowBytes() * 8 * 1000) / span;
  }

  /** Zeroes the slots the clock has moved past since the last call. */
  #advance(): void {
    const slot = Math.floor(this.#now() / this.#slotMs);
    const passed = Math.min(SLOTS, slot - this.#current);
    for (let i = 1; i <= passed; i++) this.#slots[(this.#current + i) % SLOTS] = 0;
    if (slot > this.#current) this.#current = slot;
  }
}
