/**
 * @internal Where one written chunk lives: its ring offset (`at`), its stream
 * offset (`pos`: data bytes written before it, padding excluded), its length
 * and whether the producer marked it.
 */
export interface ChunkRecord {
  readonly seq: number;
  readonly at: number;
  readonly pos: number;
  readonly length: number;
  readonly marker: boolean;
}

/**
 * @internal The chunk boundaries of a {@link Broadcast}'s ring, by sequence
 * number. The ring only knows bytes; this side index is what lets consumers
 * receive whole chunks exactly as written, and drop or skip whole chunks.
 * Records the writer has lapped are pruned, so it holds at most one record
 * per chunk still in the ring.
 */
export class ChunkIndex {
  #records: ChunkRecord[] = [];
  #head = 0;
  #first = 0;

  /** Sequence number of the oldest record still held. */
  get first(): number {
    return this.#first;
  }

  /** Sequence number the next chunk written will get. */
  get end(): number {
    return this.#first + this.#records.length - this.#head;
  }

  /** The record of chunk `seq`, which must be in `[first, end)`. */
  get(seq: number): ChunkRecord {
    return this.#records[this.#head + seq - this.#first] as ChunkRecord;
  }

  push(record: ChunkRecord): void {
    this.#records.push(record);
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
      this.#head = 0;
    }
  }
}
