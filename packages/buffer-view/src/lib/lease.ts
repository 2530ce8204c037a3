import { ReleasedError, StaleViewError } from './errors';

/**
 * @internal A token shared by every view of one piece of owned memory. The
 * owner revokes it when the memory stops meaning what the views think
 * (compaction, release to a pool) and every view checks it before touching
 * bytes, so misuse throws instead of returning someone else's bytes.
 */
export class Lease {
  #revoked: 'stale' | 'released' | undefined;
  readonly #what: string;

  constructor(what: string) {
    this.#what = what;
  }

  get valid(): boolean {
    return this.#revoked === undefined;
  }

  revoke(kind: 'stale' | 'released'): void {
    this.#revoked = kind;
  }

  check(): void {
    if (this.#revoked === undefined) return;
    if (this.#revoked === 'released') throw new ReleasedError(this.#what);
    throw new StaleViewError(`${this.#what} moved its bytes`);
  }
}
