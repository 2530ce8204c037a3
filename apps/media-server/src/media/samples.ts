import { MediaServerError } from '../errors.ts';

/**
 * Receives one sample of a walk in decode order: composition time and
 * duration in track timescale ticks, the file offset of its data, the offset
 * a reader starting at it must begin at (its data, or its `moof`), and
 * whether it is a sync sample. Plain arguments rather than an object, so a
 * walk over millions of samples allocates nothing.
 *
 * @example
 * ```ts
 * let syncCount = 0;
 * const visit: SampleVisitor = (_cts, _duration, _offset, _seekOffset, sync) => {
 *   if (sync) syncCount++;
 * };
 * ```
 */
export type SampleVisitor = (
  cts: number,
  duration: number,
  offset: number,
  seekOffset: number,
  sync: boolean,
) => void;

/**
 * Samples that can be walked in decode order without being held one object
 * each.
 *
 * @example
 * ```ts
 * const count = (source: SampleSource) => source.length;
 * ```
 */
export interface SampleSource {
  readonly length: number;
  forEach(visit: SampleVisitor): void;
}

const INITIAL_CAPACITY = 256;

/**
 * The samples of one track in decode order: those the `moov` lists, kept in
 * the compact form of its tables (see `StblSamples`), then those fragments
 * add, appended to typed columns (29 bytes a sample).
 *
 * @example
 * ```ts
 * const samples = new TrackSamples(undefined, 0);
 * samples.push(1024, 512, 48, 0, true);
 * samples.length; // 1
 * samples.forEach((cts, duration, offset, seekOffset, sync) => console.log(cts, sync));
 * ```
 */
export class TrackSamples implements SampleSource {
  readonly #moov: SampleSource | undefined;
  #count = 0;
  #cts = new Float64Array(0);
  #duration = new Uint32Array(0);
  #offset = new Float64Array(0);
  #seekOffset = new Float64Array(0);
  #sync = new Uint8Array(0);
  /** Decode time the next sample starts at when a fragment gives no `tfdt`. */
  nextDts: number;

  /** `moov` samples (if any) come first; `nextDts` is where they end. */
  constructor(moov: SampleSource | undefined, nextDts: number) {
    this.#moov = moov;
    this.nextDts = nextDts;
  }

  get length(): number {
    return (this.#moov?.length ?? 0) + this.#count;
  }

  /** Appends a fragment's sample; `duration` is a 32-bit field in every box that carries it. */
  push(cts: number, duration: number, offset: number, seekOffset: number, sync: boolean): void {
    if (this.#count === this.#cts.length) this.#grow();
    const i = this.#count++;
    this.#cts[i] = cts;
    this.#duration[i] = duration;
    this.#offset[i] = offset;
    this.#seekOffset[i] = seekOffset;
    this.#sync[i] = sync ? 1 : 0;
  }

  forEach(visit: SampleVisitor): void {
    this.#moov?.forEach(visit);
    for (let i = 0; i < this.#count; i++) {
      visit(
        this.#cts[i]!,
        this.#duration[i]!,
        this.#offset[i]!,
        this.#seekOffset[i]!,
        this.#sync[i] === 1,
      );
    }
  }

  #grow(): void {
    // 1.5× keeps the slack of a long fragmented film small while staying amortized O(1).
    const capacity = Math.max(INITIAL_CAPACITY, Math.ceil(this.#cts.length * 1.5));
    const grown = <T extends Float64Array | Uint32Array | Uint8Array>(
      old: T,
      make: (n: number) => T,
    ) => {
      const next = make(capacity);
      next.set(old);
      return next;
    };
    this.#cts = grown(this.#cts, (n) => new Float64Array(n));
    this.#duration = grown(this.#duration, (n) => new Uint32Array(n));
    this.#offset = grown(this.#offset, (n) => new Float64Array(n));
    this.#seekOffset = grown(this.#seekOffset, (n) => new Float64Array(n));
    this.#sync = grown(this.#sync, (n) => new Uint8Array(n));
  }
}

/**
 * Caps the samples an index may hold across all tracks, checked before any
 * table is built, so a corrupt count cannot exhaust memory.
 *
 * @example
 * ```ts
 * const budget = new SampleBudget(2_000_000);
 * budget.take(300, 'track 1'); // throws MEDIA_UNSUPPORTED once the total passes 2,000,000
 * ```
 */
export class SampleBudget {
  readonly limit: number;
  #used = 0;

  constructor(limit: number) {
    this.limit = limit;
  }

  get used(): number {
    return this.#used;
  }

  /** Reserves `count` samples; `where` names them for the error. */
  take(count: number, where: string): void {
    if (this.#used + count > this.limit) {
      throw new MediaServerError(
        'MEDIA_UNSUPPORTED',
        `${where} brings the sample count to ${this.#used + count}, more than the index limit of ${this.limit} samples`,
      );
    }
    this.#used += count;
  }
}
