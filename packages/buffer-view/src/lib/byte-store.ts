import { type BytesLike, ByteView } from './byte-view';
import { recordAllocation } from './copy-stats';
import { InvalidLengthError } from './errors';
import { Lease } from './lease';
import { checkLength, checkOffset, MAX_OFFSET } from './validate';

/** Options of {@link ByteStore}. */
export interface ByteStoreOptions {
  /**
   * Largest segment the store allocates itself (in `alloc`, `grow` and
   * `compact`). One typed array holds at most 4 GiB on Node 20, so larger
   * stores are always several segments.
   * @default 268435456 (256 MiB)
   */
  segmentSize?: number;
  /**
   * Allocate segments as `SharedArrayBuffer`s so worker threads can read them.
   * @default false
   */
  shared?: boolean;
}

/** Largest Uint8Array Node 20 and current browsers allow: 2^32 bytes. */
const MAX_SEGMENT = 2 ** 32;
const DEFAULT_SEGMENT = 256 * 2 ** 20;
const EMPTY = new Uint8Array(0);

interface ResizableBuffer extends ArrayBuffer {
  readonly maxByteLength: number;
  readonly resizable: boolean;
  resize(byteLength: number): void;
}

const supportsResizable = (() => {
  try {
    return (new ArrayBuffer(1, { maxByteLength: 2 }) as ResizableBuffer).resizable === true;
  } catch {
    return false;
  }
})();

/**
 * A mutable, segmented byte store: Python's `bytearray` for data that arrives
 * in pieces or outgrows one `ArrayBuffer`. Offsets are plain numbers up to
 * 2^53, so stores past 4 GiB work on Node 20. Appending, consuming from the
 * front, taking views and splicing never copy bytes; only `write` (the
 * intended copy) and `compact` do, and both are counted.
 *
 * Views alias the store's memory. Structural edits (`splice`, `truncate`)
 * leave earlier views on the bytes they saw; `compact` moves the bytes, so it
 * makes earlier views throw {@link StaleViewError} instead of showing memory
 * the store no longer uses.
 *
 * @example
 * ```ts
 * import { ByteStore } from 'buffer-view';
 * const store = ByteStore.alloc(6 * 2 ** 30);                 // 6 GiB in 256 MiB segments
 * store.write(5 * 2 ** 30, new Uint8Array([1, 2, 3, 4]));     // in place
 * store.viewAt(5 * 2 ** 30, 20 * 2 ** 20).getUint32(0);       // 0x01020304, zero-copy
 * ```
 */
export class ByteStore {
  #segs: Uint8Array[] = [];
  #starts: number[] = [];
  #head = 0;
  #base = 0;
  #end = 0;
  #exposed = false;
  #lease = new Lease('ByteStore view');
  #bytes: ByteView | undefined;
  #growable: ResizableBuffer | undefined;
  readonly #segmentSize: number;
  readonly #shared: boolean;

  /**
   * An empty store.
   *
   * @example
   * ```ts
   * import { ByteStore } from 'buffer-view';
   * const store = new ByteStore({ segmentSize: 64 * 2 ** 20 });
   * ```
   */
  constructor(options: ByteStoreOptions = {}) {
    const segmentSize = options.segmentSize ?? DEFAULT_SEGMENT;
    checkLength('segmentSize', segmentSize, MAX_SEGMENT);
    if (segmentSize === 0) throw new InvalidLengthError('segmentSize', 0, MAX_SEGMENT);
    this.#segmentSize = segmentSize;
    this.#shared = options.shared ?? false;
  }

  /**
   * A store of `size` zero bytes, preallocated in segments (the `bytearray(n)`
   * case). Untouched pages cost no resident memory on Linux.
   *
   * @example
   * ```ts
   * import { ByteStore } from 'buffer-view';
   * const cache = ByteStore.alloc(2 * 2 ** 30);
   * ```
   */
  static alloc(size: number, options: ByteStoreOptions = {}): ByteStore {
    checkLength('store size', size, MAX_OFFSET);
    const store = new ByteStore(options);
    let left = size;
    while (left > 0) {
      const n = Math.min(left, store.#segmentSize);
      store.#push(store.#allocate(n));
      left -= n;
    }
    return store;
  }

  /**
   * A store over existing bytes, without copying them.
   *
   * @example
   * ```ts
   * import { ByteStore } from 'buffer-view';
   * const store = ByteStore.from([chunkA, chunkB]);
   * ```
   */
  static from(bytes: BytesLike, options: ByteStoreOptions = {}): ByteStore {
    return new ByteStore(options).append(bytes);
  }

  /** Bytes currently held. */
  get length(): number {
    return this.#end - this.#base;
  }

  /** Total bytes consumed from the front so far: the absolute offset of index 0. */
  get consumedBytes(): number {
    return this.#base;
  }

  /** Number of segments holding the current bytes. */
  get segmentCount(): number {
    return this.#segs.length - this.#head;
  }

  /** Whether segments this store allocates are `SharedArrayBuffer`-backed. */
  get shared(): boolean {
    return this.#shared;
  }

  /**
   * A view of all current bytes (cached until the store changes). Use it for
   * reads: `store.bytes.getUint32(8)`, `store.bytes.indexOf('moof')`.
   *
   * @example
   * ```ts
   * const at = store.bytes.indexOf('mdat');
   * ```
   */
  get bytes(): ByteView {
    this.#bytes ??= this.#fullView();
    return this.#bytes;
  }

  #fullView(): ByteView {
    this.#exposed = true;
    return new ByteView({
      segs: this.#segs,
      starts: this.#starts,
      first: this.#head,
      last: this.#segs.length,
      start: this.#base,
      length: this.length,
      lease: this.#lease,
    });
  }

  /**
   * A zero-copy view of bytes `start .. end`.
   *
   * @example
   * ```ts
   * const chunk = store.view(offset, offset + 20 * 2 ** 20);
   * ```
   */
  view(start = 0, end: number = this.length): ByteView {
    return this.bytes.view(start, end);
  }

  /**
   * A zero-copy view of `length` bytes from `offset`.
   *
   * @example
   * ```ts
   * const chunk = store.viewAt(offset, 20 * 2 ** 20);
   * ```
   */
  viewAt(offset: number, length: number): ByteView {
    return this.bytes.viewAt(offset, length);
  }

  /**
   * Adds bytes at the end without copying: their memory becomes segments of
   * the store, so later writes to them show through.
   *
   * @example
   * ```ts
   * socket.on('data', (chunk) => store.append(chunk));
   * ```
   */
  append(bytes: BytesLike): this {
    if (bytes instanceof Uint8Array) {
      this.#push(bytes);
    } else {
      ByteView.from(bytes).forEachSegment((seg) => {
        this.#push(seg);
      });
    }
    this.#growable = undefined;
    return this;
  }

  /**
   * Extends the store by `n` zero bytes and returns a view of them, ready to
   * be filled in place (read-into). Where resizable ArrayBuffers exist the
   * last segment grows in place, so small grows do not multiply segments;
   * growth never moves bytes, so earlier views stay valid.
   *
   * @example
   * ```ts
   * const region = store.grow(64 * 1024);
   * const n = await readFdInto(fd, region, position);
   * store.truncate(store.length - (region.length - n)); // drop what was not filled
   * ```
   */
  grow(n: number): ByteView {
    checkLength('grow size', n, MAX_OFFSET - this.#end);
    if (n === 0) return ByteView.empty();
    const start = this.length;
    let left = n;
    const tail = this.#growable;
    if (tail !== undefined && !this.#shared) {
      const room = Math.min(left, tail.maxByteLength - tail.byteLength);
      if (room > 0) {
        const k = this.#segs.length - 1;
        tail.resize(tail.byteLength + room);
        recordAllocation(room);
        // Same memory, longer window: views bound their own ends, so the swap is invisible to them.
        this.#segs[k] = new Uint8Array(tail, 0, tail.byteLength);
        this.#end += room;
        this.#bytes = undefined;
        left -= room;
      }
    }
    while (left > 0) {
      const size = Math.min(left, this.#segmentSize);
      this.#pushFresh(size);
      left -= size;
    }
    return this.view(start, start + n);
  }

  /**
   * Drops `n` bytes from the front, releasing whole segments to the garbage
   * collector once no view holds them.
   *
   * @example
   * ```ts
   * store.consume(parsedBytes);
   * ```
   */
  consume(n: number): this {
    checkLength('consume size', n, this.length);
    this.#base += n;
    const segs = this.#segs;
    while (this.#head < segs.length) {
      const seg = segs[this.#head] as Uint8Array;
      if ((this.#starts[this.#head] as number) + seg.length > this.#base) break;
      if (!this.#exposed) segs[this.#head] = EMPTY;
      this.#head++;
    }
    if (this.#head === segs.length) this.#growable = undefined;
    if (this.#head > 32 && this.#head * 2 > segs.length) this.#rebuild(this.#trimmedSegments());
    this.#bytes = undefined;
    return this;
  }

  /**
   * Keeps the first `length` bytes and drops the rest.
   *
   * @example
   * ```ts
   * store.truncate(0); // empty it
   * ```
   */
  truncate(length: number): this {
    checkLength('truncate length', length, this.length);
    if (length === this.length) return this;
    const kept = length === 0 ? [] : this.view(0, length).toSegments();
    this.#rebuild(kept);
    return this;
  }

  /**
   * Overwrites bytes in place from `offset` (the store's length does not
   * change). The copy of `source` is counted.
   *
   * @example
   * ```ts
   * store.write(2 ** 30, freshMiB); // splice 1 MiB into a 2 GiB cache
   * ```
   */
  write(offset: number, source: Uint8Array | ByteView): number {
    return this.bytes.write(source, offset);
  }

  /**
   * Removes `deleteCount` bytes at `offset` and inserts `insert` there,
   * changing the length if they differ, without copying any bytes: segments
   * are split and relinked. Returns a view of the removed bytes.
   *
   * @example
   * ```ts
   * import { ByteStore } from 'buffer-view';
   * const store = ByteStore.from(new TextEncoder().encode('hello world'));
   * store.splice(6, 5, new TextEncoder().encode('there'));
   * store.bytes.toText(); // 'hello there'
   * ```
   */
  splice(offset: number, deleteCount: number, insert?: BytesLike): ByteView {
    checkOffset('splice offset', offset, 0, this.length);
    checkLength('splice deleteCount', deleteCount, this.length - offset);
    const whole = this.bytes;
    const removed = whole.viewAt(offset, deleteCount);
    const added = insert === undefined ? ByteView.empty() : ByteView.from(insert);
    checkLength(
      'spliced store length',
      this.length - deleteCount + added.length,
      MAX_OFFSET - this.#base,
    );
    const segs = [
      ...whole.view(0, offset).toSegments(),
      ...added.toSegments(),
      ...whole.view(offset + deleteCount).toSegments(),
    ];
    this.#rebuild(segs);
    return removed;
  }

  /**
   * Copies every byte into fresh segments of `segmentSize` (counted), for a
   * store fragmented into many small pieces. Earlier views become stale and
   * throw {@link StaleViewError}.
   *
   * @example
   * ```ts
   * if (store.segmentCount > 10_000) store.compact();
   * ```
   */
  compact(): this {
    const old = this.bytes;
    const segs: Uint8Array[] = [];
    let done = 0;
    while (done < old.length) {
      const n = Math.min(old.length - done, this.#segmentSize);
      const seg = this.#allocate(n);
      old.viewAt(done, n).copyTo(seg);
      segs.push(seg);
      done += n;
    }
    this.#lease.revoke('stale');
    this.#lease = new Lease('ByteStore view');
    this.#rebuild(segs);
    return this;
  }

  /**
   * Drops every byte.
   *
   * @example
   * ```ts
   * store.clear();
   * ```
   */
  clear(): this {
    return this.consume(this.length);
  }

  #allocate(size: number): Uint8Array {
    recordAllocation(size);
    return this.#shared ? new Uint8Array(new SharedArrayBuffer(size)) : new Uint8Array(size);
  }

  /** Appends a fresh segment, resizable in place where the platform allows. */
  #pushFresh(size: number): void {
    if (supportsResizable && !this.#shared && size < this.#segmentSize) {
      const buffer = new ArrayBuffer(size, { maxByteLength: this.#segmentSize }) as ResizableBuffer;
      recordAllocation(size);
      this.#push(new Uint8Array(buffer, 0, size));
      this.#growable = buffer;
    } else {
      this.#push(this.#allocate(size));
      this.#growable = undefined;
    }
  }

  #push(seg: Uint8Array): void {
    if (seg.length === 0) return;
    this.#segs.push(seg);
    this.#starts.push(this.#end);
    this.#end += seg.length;
    this.#bytes = undefined;
  }

  #trimmedSegments(): Uint8Array[] {
    return this.length === 0 ? [] : this.bytes.toSegments();
  }

  /** Replaces the segment arrays (never mutating ones a view may share). */
  #rebuild(segs: Uint8Array[]): void {
    const growable = this.#growable;
    const tail = this.#segs[this.#segs.length - 1];
    this.#segs = [];
    this.#starts = [];
    this.#head = 0;
    this.#end = this.#base;
    this.#exposed = false;
    this.#bytes = undefined;
    for (const seg of segs) this.#push(seg);
    // Keep growing in place only if the same full-buffer tail segment survived.
    const last = this.#segs[this.#segs.length - 1];
    this.#growable =
      growable !== undefined &&
      last !== undefined &&
      last === tail &&
      last.byteLength === growable.byteLength
        ? growable
        : undefined;
  }
}
