import { MediaServerError } from '../errors.ts';

/**
 * The samples of one track, in decode order, reduced to what a seek index
 * needs. Columns of plain numbers instead of one object per sample keep a
 * long film's hundreds of thousands of samples small.
 *
 * @example
 * ```ts
 * const table = new SampleTable();
 * table.push({ cts: 1024, duration: 512, offset: 48, seekOffset: 48, sync: true });
 * table.length; // 1
 * ```
 */
export class SampleTable {
  /** Composition time in track timescale ticks, before any edit list. */
  readonly cts: number[] = [];
  /** Duration in track timescale ticks. */
  readonly duration: number[] = [];
  /** File offset of the sample's data. */
  readonly offset: number[] = [];
  /** File offset a reader starting at this sample must begin at: the data itself, or its `moof`. */
  readonly seekOffset: number[] = [];
  readonly sync: boolean[] = [];
  /** Decode time the next sample starts at when a fragment gives no `tfdt`. */
  nextDts = 0;

  get length(): number {
    return this.cts.length;
  }

  push(sample: {
    readonly cts: number;
    readonly duration: number;
    readonly offset: number;
    readonly seekOffset: number;
    readonly sync: boolean;
  }): void {
    this.cts.push(sample.cts);
    this.duration.push(sample.duration);
    this.offset.push(sample.offset);
    this.seekOffset.push(sample.seekOffset);
    this.sync.push(sample.sync);
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
