import type { BroadcastChunk } from './fan-out-consumer';

/**
 * @internal Where one written chunk lives: its ring offset (`at`), its stream
 * offset (`pos`: data bytes written before it, padding excluded), its length,
 * whether the producer marked it and when it was written.
 */
export interface ChunkRecord {
  readonly seq: number;
  readonly at: number;
  readonly pos: number;
  readonly length: number;
  readonly marker: boolean;
  /**
   * When it was written (`performance.now()`), if a coalescing reader was
   * waiting then (only they need it), else 0.
   */
  time: number;
}

/**
 * @internal The chunk boundaries of a {@link Broadcast}'s ring, by sequence
 * number, and the one {@link BroadcastChunk} every consumer is handed for
 * each. The ring only knows bytes; this side index is what lets consumers
 * receive whole chunks exactly as written, and drop or skip whole chunks.
 * Records are pruned once the writer has lapped them and no consumer's
 * deferred policy (see `Broadcast`'s catch-up pass) may still need them, so
 * it holds the records of the chunks still in the ring plus at most the
 * last few hundred before them.
 */
export class ChunkIndex {
  #records: ChunkRecord[] = [];
  /** Parallel to `#records`, so a batch is one `slice()`. */
  #views: BroadcastChunk[] = [];
  #head = 0;
  #first = 0;
  /** The last `sharedViews()` answer. */
  #shared: { from: number; to: number; views: readonly BroadcastChunk[] } = {
    from: 0,
    to: 0,
    views: [],
  };

  /** Sequence number of the oldest record still held. */
  get first(): number {
    return this.#first;
  }

  /** Sequence number of the oldest chunk that starts at ring offset `offset` or later (`end` if none). */
  firstFrom(offset: number): number {
    const end = this.end;
    let seq = this.#first;
    while (seq < end && this.get(seq).at < offset) seq++;
    return seq;
  }

  /** Sequence number the next chunk written will get. */
  get end(): number {
    return this.#first + this.#records.length - this.#head;
  }

  /** The record of chunk `seq`, which must be in `[first, end)`. */
  get(seq: number): ChunkRecord {
    return this.#records[this.#head + seq - this.#first] as ChunkRecord;
  }

  /** The chunk `seq` as handed to consumers; `seq` must be in `[first, end)`. */
  view(seq: number): BroadcastChunk {
    return this.#views[this.#head + seq - this.#first] as BroadcastChunk;
  }

  /** Chunks `[from, to)` as handed to consumers, in a new array. */
  views(from: number, to: number): BroadcastChunk[] {
    const base = this.#head - this.#first;
    return this.#views.slice(base + from, base + to);
  }

  /**
   * Chunks `[from, to)` in an array shared with every caller asking
   * for the same range before another range is asked for: consumers woken
   * at the same point (the usual case in fan-out) share one array.
   */
  sharedViews(from: number, to: number): readonly BroadcastChunk[] {
    const last = this.#shared;
    // Sequence numbers never name another chunk, so the range alone identifies the answer.
    if (last.from === from && last.to === to) return last.views;
    const views = this.views(from, to);
    this.#shared = { from, to, views };
    return views;
  }

  push(record: ChunkRecord, view: BroadcastChunk): void {
    this.#records.push(record);
    this.#views.push(view);
  }

  /** Forgets chunks whose bytes start before ring offset `oldest`. */
  prune(oldest: number): void {
    const records = this.#records;
    while (this.#head < records.length && (records[this.#head] as ChunkRecord).at < oldest) {
      this.#head++;
      this.#first++;
    }
    // Compact only once the dead prefix dominates, so pruning stays amortised O(1).
    if (this.#head > 1024 && this.#head * 2 > records.length) {
      this.#records = records.slice(this.#head);
      this.#views = this.#views.slice(this.#head);
      this.#head = 0;
    }
  }
}
