import { recordAllocation, recordCopy } from './copy-stats';
import {
  DetachedBufferError,
  InvalidArgumentError,
  InvalidLengthError,
  NotContiguousError,
  OutOfRangeError,
} from './errors';
import type { Lease } from './lease';
import { compareBytes, searchBytes } from './native';
import { checkLength, checkOffset } from './validate';

/**
 * Anything {@link ByteView.from} wraps without copying: a typed array or
 * DataView (its exact window), a whole `ArrayBuffer`/`SharedArrayBuffer`, a
 * view, or a list of those (they become the view's segments, in order).
 *
 * @example
 * ```ts
 * import { ByteView, type BytesLike } from 'buffer-view';
 * const input: BytesLike = [new Uint8Array([1, 2]), new Uint8Array([3])];
 * ByteView.from(input).length; // 3
 * ```
 */
export type BytesLike =
  | ArrayBufferView
  | ArrayBufferLike
  | ByteView
  | readonly (ArrayBufferView | ArrayBufferLike | ByteView)[];

/** What a search accepts: bytes, a UTF-8 string, or a single byte value. */
export type Needle = Uint8Array | ByteView | string | number;

/** Options of {@link ByteView.toText}. */
export interface ToTextOptions {
  /**
   * Throw on malformed input instead of inserting U+FFFD.
   * @default false
   */
  fatal?: boolean;
  /**
   * Keep a leading byte-order mark in the output.
   * @default false
   */
  ignoreBOM?: boolean;
}

/**
 * @internal The shared arrays a view reads through. `segs[k]` holds the bytes
 * at absolute offsets `starts[k] .. starts[k] + segs[k].length`; a view only
 * looks at segments `first .. last - 1` and bytes `start .. start + length`,
 * so owners may append to these arrays without disturbing existing views.
 */
export interface ViewParts {
  segs: readonly Uint8Array[];
  starts: readonly number[];
  first: number;
  last: number;
  start: number;
  length: number;
  lease: Lease | undefined;
}

const EMPTY_BYTES = new Uint8Array(0);
const NO_SEGMENTS: readonly Uint8Array[] = [];
const NO_STARTS: readonly number[] = [];
const scratch = new Uint8Array(8);
const scratchView = new DataView(scratch.buffer);
const encoder = new TextEncoder();

/**
 * A read-and-write window onto bytes that may live in several segments. It
 * never copies: {@link ByteView.view} is O(log segments) whatever its size,
 * and only methods whose name says so (`copy`, `copyTo`, `copyToBlob`) copy.
 * Views alias memory like Python's `memoryview`: writes through one view are
 * seen by every other view of the same bytes.
 *
 * @example
 * ```ts
 * import { ByteView } from 'buffer-view';
 * const head = new Uint8Array([0, 0, 0, 24, 0x66, 0x74]);
 * const tail = new Uint8Array([0x79, 0x70, 1, 2]);
 * const v = ByteView.from([head, tail]);   // no copy
 * v.getUint32(0);                          // 24
 * v.indexOf('ftyp');                       // 4, found across the segment edge
 * v.view(4, 8).toText();                   // 'ftyp'
 * ```
 */
export class ByteView {
  readonly #segs: readonly Uint8Array[];
  readonly #starts: readonly number[];
  readonly #first: number;
  readonly #last: number;
  readonly #start: number;
  readonly #lease: Lease | undefined;
  #dv: DataView | undefined;
  #dvIndex = -1;

  /** Number of bytes in the view. */
  readonly length: number;

  /** @internal Use {@link ByteView.from} or a store's `view()`. */
  constructor(parts: ViewParts) {
    this.#segs = parts.segs;
    this.#starts = parts.starts;
    this.#first = parts.first;
    this.#last = parts.last;
    this.#start = parts.start;
    this.length = parts.length;
    this.#lease = parts.lease;
  }

  /**
   * Wraps bytes without copying them.
   *
   * @example
   * ```ts
   * import { ByteView } from 'buffer-view';
   * const bytes = new Uint8Array(1024);
   * const v = ByteView.from(bytes);
   * v.asUint8Array() === bytes || v.asUint8Array().buffer === bytes.buffer; // same memory
   * ```
   */
  static from(input: BytesLike): ByteView {
    if (input instanceof ByteView) return input;
    const list = Array.isArray(input) ? input : [input];
    const segs: Uint8Array[] = [];
    const starts: number[] = [];
    let length = 0;
    let lease: Lease | undefined;
    const push = (bytes: Uint8Array) => {
      if (bytes.length === 0) return;
      segs.push(bytes);
      starts.push(length);
      length += bytes.length;
    };
    for (const item of list as readonly (ArrayBufferView | ArrayBufferLike | ByteView)[]) {
      if (item instanceof ByteView) {
        if (item.#lease !== undefined) {
          item.#lease.check();
          lease ??= item.#lease;
        }
        item.forEachSegment(push);
      } else {
        push(toUint8Array(item));
      }
    }
    return new ByteView({ segs, starts, first: 0, last: segs.length, start: 0, length, lease });
  }

  /**
   * Encodes text as UTF-8 into new memory (counted as an allocation).
   *
   * @example
   * ```ts
   * import { ByteView } from 'buffer-view';
   * ByteView.fromText('moov').getUint32(0).toString(16); // '6d6f6f76'
   * ```
   */
  static fromText(text: string): ByteView {
    const bytes = encoder.encode(text);
    recordAllocation(bytes.length);
    return ByteView.from(bytes);
  }

  /**
   * Reads a Blob or File into new memory (counted as an allocation).
   *
   * @example
   * ```ts
   * import { ByteView } from 'buffer-view';
   * const v = await ByteView.fromBlob(new Blob(['hello']));
   * v.toText(); // 'hello'
   * ```
   */
  static async fromBlob(blob: Blob): Promise<ByteView> {
    const buffer = await blob.arrayBuffer();
    recordAllocation(buffer.byteLength);
    return ByteView.from(buffer);
  }

  /**
   * Joins views end to end without copying: the result's segments are theirs.
   *
   * @example
   * ```ts
   * import { ByteView } from 'buffer-view';
   * const v = ByteView.concat([ByteView.fromText('ab'), ByteView.fromText('cd')]);
   * v.segmentCount; // 2
   * ```
   */
  static concat(parts: readonly BytesLike[]): ByteView {
    const flat: (ArrayBufferView | ArrayBufferLike | ByteView)[] = [];
    for (const part of parts) {
      if (Array.isArray(part)) flat.push(...(part as (ArrayBufferView | ByteView)[]));
      else flat.push(part as ArrayBufferView | ByteView);
    }
    return ByteView.from(flat);
  }

  /**
   * An empty view.
   *
   * @example
   * ```ts
   * import { ByteView } from 'buffer-view';
   * ByteView.empty().length; // 0
   * ```
   */
  static empty(): ByteView {
    return new ByteView({
      segs: NO_SEGMENTS,
      starts: NO_STARTS,
      first: 0,
      last: 0,
      start: 0,
      length: 0,
      lease: undefined,
    });
  }

  /** How many segments the view spans (0 when empty). */
  get segmentCount(): number {
    return this.#last - this.#first;
  }

  /** True when the view is one run of memory, so `asUint8Array()` needs no copy. */
  get isContiguous(): boolean {
    return this.#last - this.#first <= 1;
  }

  /**
   * A window of this view from `start` (inclusive) to `end` (exclusive),
   * sharing its memory. Cost does not depend on the window's size.
   *
   * @example
   * ```ts
   * import { ByteView } from 'buffer-view';
   * const v = ByteView.from(new Uint8Array(100 * 2 ** 20));
   * const w = v.view(2 ** 20, 21 * 2 ** 20); // 20 MiB, no copy
   * ```
   */
  view(start = 0, end: number = this.length): ByteView {
    this.#lease?.check();
    checkOffset('view start', start, 0, this.length);
    checkOffset('view end', end, 0, this.length);
    if (end < start)
      throw new InvalidLengthError('view length (end - start)', end - start, this.length - start);
    return this.#window(start, end - start);
  }

  /**
   * A window of `length` bytes from `offset`, sharing this view's memory.
   *
   * @example
   * ```ts
   * import { ByteStore } from 'buffer-view';
   * const store = ByteStore.alloc(64 * 2 ** 20);
   * const chunk = store.view().viewAt(5_000_000, 20 * 2 ** 20);
   * ```
   */
  viewAt(offset: number, length: number): ByteView {
    this.#lease?.check();
    checkOffset('view offset', offset, 0, this.length);
    checkLength('view length', length, this.length - offset);
    return this.#window(offset, length);
  }

  #window(offset: number, length: number): ByteView {
    if (length === 0) return ByteView.empty();
    const start = this.#start + offset;
    const first = this.#find(start);
    const last = this.#find(start + length - 1) + 1;
    return new ByteView({
      segs: this.#segs,
      starts: this.#starts,
      first,
      last,
      start,
      length,
      lease: this.#lease,
    });
  }

  /** Index of the segment holding absolute offset `pos` (which must be inside the view). */
  #find(pos: number): number {
    let lo = this.#first;
    let hi = this.#last - 1;
    const starts = this.#starts;
    while (lo < hi) {
      const mid = (lo + hi + 1) >>> 1;
      if ((starts[mid] as number) <= pos) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }

  #segment(k: number): Uint8Array {
    const seg = this.#segs[k] as Uint8Array;
    // Segments are never empty when added, so an empty one was detached.
    if (seg.byteLength === 0) throw new DetachedBufferError();
    return seg;
  }

  /**
   * Calls `fn` with each segment's bytes in order, as zero-copy subarrays.
   *
   * @example
   * ```ts
   * let total = 0;
   * view.forEachSegment((bytes) => { total += bytes.length; });
   * ```
   */
  forEachSegment(fn: (bytes: Uint8Array, offset: number) => void): void {
    this.#lease?.check();
    const end = this.#start + this.length;
    for (let k = this.#first; k < this.#last; k++) {
      const seg = this.#segment(k);
      const base = this.#starts[k] as number;
      const lo = Math.max(this.#start, base) - base;
      const hi = Math.min(end, base + seg.length) - base;
      fn(lo === 0 && hi === seg.length ? seg : seg.subarray(lo, hi), base + lo - this.#start);
    }
  }

  /**
   * The view's segments as zero-copy subarrays, e.g. for `writev`.
   *
   * @example
   * ```ts
   * socket.cork();
   * for (const bytes of view.toSegments()) socket.write(bytes);
   * socket.uncork();
   * ```
   */
  toSegments(): Uint8Array[] {
    const out: Uint8Array[] = [];
    this.forEachSegment((bytes) => {
      out.push(bytes);
    });
    return out;
  }

  /**
   * Iterates the view's segments as zero-copy subarrays.
   *
   * @example
   * ```ts
   * for (const bytes of view.segments()) hash.update(bytes);
   * ```
   */
  segments(): IterableIterator<Uint8Array> {
    return this.toSegments()[Symbol.iterator]();
  }

  /**
   * The bytes as one `Uint8Array` sharing this view's memory. Throws
   * {@link NotContiguousError} rather than copying when the view spans
   * segments; call {@link ByteView.copy} to copy on purpose.
   *
   * @example
   * ```ts
   * import { ByteView } from 'buffer-view';
   * const bytes = new Uint8Array(16);
   * ByteView.from(bytes).view(4, 8).asUint8Array().byteOffset; // 4
   * ```
   */
  asUint8Array(): Uint8Array {
    this.#lease?.check();
    const count = this.#last - this.#first;
    if (count === 0) return EMPTY_BYTES;
    if (count > 1) throw new NotContiguousError(count);
    const seg = this.#segment(this.#first);
    const lo = this.#start - (this.#starts[this.#first] as number);
    return lo === 0 && seg.length === this.length ? seg : seg.subarray(lo, lo + this.length);
  }

  /**
   * The backing `ArrayBuffer` itself, when the view covers exactly all of it;
   * otherwise throws rather than copying.
   *
   * @example
   * ```ts
   * import { ByteView } from 'buffer-view';
   * const buffer = new ArrayBuffer(8);
   * ByteView.from(buffer).asArrayBuffer() === buffer; // true
   * ```
   */
  asArrayBuffer(): ArrayBufferLike {
    const bytes = this.asUint8Array();
    if (bytes.byteOffset !== 0 || bytes.byteLength !== bytes.buffer.byteLength) {
      throw new InvalidArgumentError(
        `view covers bytes ${bytes.byteOffset}..${bytes.byteOffset + bytes.byteLength} of a ${bytes.buffer.byteLength}-byte ArrayBuffer, not all of it: call copy().buffer to copy explicitly`,
      );
    }
    return bytes.buffer;
  }

  /**
   * Copies the bytes into new contiguous memory. The copy is counted.
   *
   * @example
   * ```ts
   * const detached = view.view(0, 188).copy(); // survives later writes to view
   * ```
   */
  copy(): Uint8Array {
    const out = allocateUninitialized(this.length);
    recordAllocation(this.length);
    this.copyTo(out);
    return out;
  }

  /**
   * Copies the bytes into `target` at `targetOffset`; returns the byte count.
   *
   * @example
   * ```ts
   * const out = new Uint8Array(view.length);
   * view.copyTo(out);
   * ```
   */
  copyTo(target: Uint8Array, targetOffset = 0): number {
    this.#lease?.check();
    checkOffset('target offset', targetOffset, 0, target.length);
    if (targetOffset + this.length > target.length) {
      throw new OutOfRangeError('copy end in target', targetOffset + this.length, 0, target.length);
    }
    this.forEachSegment((bytes, offset) => {
      target.set(bytes, targetOffset + offset);
    });
    recordCopy(this.length);
    return this.length;
  }

  /**
   * A `Blob` of the bytes. Blob construction always copies; it is counted.
   *
   * @example
   * ```ts
   * const url = URL.createObjectURL(view.copyToBlob({ type: 'video/mp4' }));
   * ```
   */
  copyToBlob(options?: BlobPropertyBag): Blob {
    const blob = new Blob(this.toSegments() as BlobPart[], options);
    recordCopy(this.length);
    return blob;
  }

  /**
   * Decodes the bytes as text, segment by segment (no concatenation).
   *
   * @example
   * ```ts
   * import { ByteView } from 'buffer-view';
   * ByteView.from([new Uint8Array([0xe2, 0x82]), new Uint8Array([0xac])]).toText(); // '€'
   * ```
   */
  toText(encoding = 'utf-8', options: ToTextOptions = {}): string {
    const decoder = new TextDecoder(encoding, {
      fatal: options.fatal ?? false,
      ignoreBOM: options.ignoreBOM ?? false,
    });
    let text = '';
    this.forEachSegment((bytes) => {
      text += decoder.decode(bytes, { stream: true });
    });
    return text + decoder.decode();
  }

  /**
   * Copies `source` into this view's memory at `offset` (in place, like
   * `memoryview[a:b] = data`); every view of the same bytes sees the change.
   *
   * @example
   * ```ts
   * import { ByteView } from 'buffer-view';
   * const v = ByteView.from(new Uint8Array(8));
   * v.write(new Uint8Array([1, 2]), 6);
   * v.getUint16(6); // 0x0102
   * ```
   */
  write(source: Uint8Array | ByteView, offset = 0): number {
    this.#lease?.check();
    checkOffset('write offset', offset, 0, this.length);
    const src = source instanceof ByteView ? source : ByteView.from(source);
    if (offset + src.length > this.length) {
      throw new OutOfRangeError('write end', offset + src.length, 0, this.length);
    }
    if (src.length === 0) return 0;
    if (src.#last - src.#first === 1) {
      this.#writeContiguous(src.asUint8Array(), offset);
    } else {
      let done = 0;
      src.forEachSegment((bytes) => {
        this.#writeContiguous(bytes, offset + done);
        done += bytes.length;
      });
    }
    recordCopy(src.length);
    return src.length;
  }

  /** Copies one contiguous source into this view at `offset`, one `set` per spanned segment. */
  #writeContiguous(source: Uint8Array, offset: number): void {
    let pos = this.#start + offset;
    let k = this.#find(pos);
    let done = 0;
    while (done < source.length) {
      const seg = this.#segment(k);
      const local = pos - (this.#starts[k] as number);
      const n = Math.min(source.length - done, seg.length - local);
      seg.set(n === source.length ? source : source.subarray(done, done + n), local);
      done += n;
      pos += n;
      k++;
    }
  }

  /** The part of segment `k` that lies inside this view. */
  #part(k: number): Uint8Array {
    const seg = this.#segment(k);
    const base = this.#starts[k] as number;
    const lo = Math.max(this.#start, base) - base;
    const hi = Math.min(this.#start + this.length, base + seg.length) - base;
    return seg.subarray(lo, hi);
  }

  /**
   * Sets bytes `start .. end` to `value`.
   *
   * @example
   * ```ts
   * view.fill(0); // zero the whole window
   * ```
   */
  fill(value: number, start = 0, end: number = this.length): this {
    this.view(start, end).forEachSegment((bytes) => {
      bytes.fill(value);
    });
    return this;
  }

  /** Locates a `width`-byte value at `offset`, reading across a segment edge if needed. */
  #dataView(offset: number, width: number): [DataView, number] {
    this.#lease?.check();
    if (!Number.isInteger(offset) || offset < 0 || offset + width > this.length) {
      throw new OutOfRangeError(
        `offset of a ${width}-byte read`,
        offset,
        0,
        Math.max(-1, this.length - width),
      );
    }
    const pos = this.#start + offset;
    const k = this.#find(pos);
    const seg = this.#segment(k);
    const local = pos - (this.#starts[k] as number);
    if (local + width <= seg.length) {
      if (this.#dvIndex !== k) {
        this.#dv = new DataView(seg.buffer, seg.byteOffset, seg.byteLength);
        this.#dvIndex = k;
      }
      return [this.#dv as DataView, local];
    }
    for (let i = 0; i < width; i++) scratch[i] = this.getUint8(offset + i);
    return [scratchView, 0];
  }

  /**
   * The byte at `offset`.
   *
   * @example
   * ```ts
   * view.getUint8(0);
   * ```
   */
  getUint8(offset: number): number {
    this.#lease?.check();
    if (!Number.isInteger(offset) || offset < 0 || offset >= this.length) {
      throw new OutOfRangeError('offset of a 1-byte read', offset, 0, this.length - 1);
    }
    const pos = this.#start + offset;
    const k = this.#find(pos);
    return this.#segment(k)[pos - (this.#starts[k] as number)] as number;
  }

  /**
   * The signed byte at `offset`.
   *
   * @example
   * ```ts
   * view.getInt8(0);
   * ```
   */
  getInt8(offset: number): number {
    return (this.getUint8(offset) << 24) >> 24;
  }

  /**
   * Unsigned 16-bit integer at `offset`, big-endian unless `littleEndian`.
   *
   * @example
   * ```ts
   * view.getUint16(0, true);
   * ```
   */
  getUint16(offset: number, littleEndian = false): number {
    const [dv, at] = this.#dataView(offset, 2);
    return dv.getUint16(at, littleEndian);
  }

  /**
   * Signed 16-bit integer at `offset`.
   *
   * @example
   * ```ts
   * view.getInt16(0);
   * ```
   */
  getInt16(offset: number, littleEndian = false): number {
    const [dv, at] = this.#dataView(offset, 2);
    return dv.getInt16(at, littleEndian);
  }

  /**
   * Unsigned 24-bit integer at `offset` (common in media headers).
   *
   * @example
   * ```ts
   * view.getUint24(1); // e.g. an MP4 full box's flags
   * ```
   */
  getUint24(offset: number, littleEndian = false): number {
    const [dv, at] = this.#dataView(offset, 3);
    const a = dv.getUint8(at);
    const b = dv.getUint8(at + 1);
    const c = dv.getUint8(at + 2);
    return littleEndian ? a | (b << 8) | (c << 16) : (a << 16) | (b << 8) | c;
  }

  /**
   * Unsigned 32-bit integer at `offset`.
   *
   * @example
   * ```ts
   * const boxSize = view.getUint32(0);
   * ```
   */
  getUint32(offset: number, littleEndian = false): number {
    const [dv, at] = this.#dataView(offset, 4);
    return dv.getUint32(at, littleEndian);
  }

  /**
   * Signed 32-bit integer at `offset`.
   *
   * @example
   * ```ts
   * view.getInt32(0);
   * ```
   */
  getInt32(offset: number, littleEndian = false): number {
    const [dv, at] = this.#dataView(offset, 4);
    return dv.getInt32(at, littleEndian);
  }

  /**
   * Unsigned 64-bit integer at `offset`, as a bigint.
   *
   * @example
   * ```ts
   * view.getBigUint64(8);
   * ```
   */
  getBigUint64(offset: number, littleEndian = false): bigint {
    const [dv, at] = this.#dataView(offset, 8);
    return dv.getBigUint64(at, littleEndian);
  }

  /**
   * Signed 64-bit integer at `offset`, as a bigint.
   *
   * @example
   * ```ts
   * view.getBigInt64(8);
   * ```
   */
  getBigInt64(offset: number, littleEndian = false): bigint {
    const [dv, at] = this.#dataView(offset, 8);
    return dv.getBigInt64(at, littleEndian);
  }

  /**
   * Unsigned 64-bit integer at `offset` as a number; throws
   * {@link OutOfRangeError} when the value exceeds 2^53 - 1 rather than
   * rounding it (MP4 `largesize` and `co64` offsets fit).
   *
   * @example
   * ```ts
   * const largeSize = view.getSafeUint64(8);
   * ```
   */
  getSafeUint64(offset: number, littleEndian = false): number {
    const [dv, at] = this.#dataView(offset, 8);
    const hi = dv.getUint32(littleEndian ? at + 4 : at, littleEndian);
    const lo = dv.getUint32(littleEndian ? at : at + 4, littleEndian);
    if (hi > 0x1fffff) {
      throw new OutOfRangeError('64-bit value', hi * 2 ** 32 + lo, 0, Number.MAX_SAFE_INTEGER);
    }
    return hi * 2 ** 32 + lo;
  }

  /**
   * 32-bit float at `offset`.
   *
   * @example
   * ```ts
   * view.getFloat32(0, true);
   * ```
   */
  getFloat32(offset: number, littleEndian = false): number {
    const [dv, at] = this.#dataView(offset, 4);
    return dv.getFloat32(at, littleEndian);
  }

  /**
   * 64-bit float at `offset`.
   *
   * @example
   * ```ts
   * view.getFloat64(0, true);
   * ```
   */
  getFloat64(offset: number, littleEndian = false): number {
    const [dv, at] = this.#dataView(offset, 8);
    return dv.getFloat64(at, littleEndian);
  }

  /**
   * Index of the first occurrence of `needle` at or after `fromIndex`, or -1.
   * Searches each segment natively and checks matches that straddle edges.
   *
   * @example
   * ```ts
   * import { ByteView } from 'buffer-view';
   * const v = ByteView.from([new TextEncoder().encode('..mo'), new TextEncoder().encode('of..')]);
   * v.indexOf('moof'); // 2
   * ```
   */
  indexOf(needle: Needle, fromIndex = 0): number {
    this.#lease?.check();
    checkOffset('search start', fromIndex, 0, this.length);
    const pattern = toNeedle(needle);
    const n = pattern.length;
    if (n === 0) return fromIndex;
    if (n > this.length - fromIndex) return -1;
    const viewEnd = this.#start + this.length;
    const from = this.#start + fromIndex;
    for (let k = this.#find(from); k < this.#last; k++) {
      const seg = this.#segment(k);
      const base = this.#starts[k] as number;
      const lo = Math.max(from, this.#start, base) - base;
      const hi = Math.min(viewEnd, base + seg.length) - base;
      const part = hi === seg.length ? seg : seg.subarray(0, hi);
      const hit = searchBytes(part, pattern, lo);
      if (hit !== -1) return base + hit - this.#start;
      // Matches that start in this segment's last n-1 bytes and run into the next.
      const edgeFrom = Math.max(lo, hi - n + 1);
      for (
        let i = part.indexOf(pattern[0] as number, edgeFrom);
        i !== -1;
        i = part.indexOf(pattern[0] as number, i + 1)
      ) {
        const at = base + i - this.#start;
        if (at + n > this.length) return -1;
        if (this.#matchesAt(at, pattern)) return at;
      }
    }
    return -1;
  }

  /**
   * Whether `needle` occurs in the view.
   *
   * @example
   * ```ts
   * view.includes('mdat');
   * ```
   */
  includes(needle: Needle, fromIndex = 0): boolean {
    return this.indexOf(needle, fromIndex) !== -1;
  }

  #matchesAt(offset: number, pattern: Uint8Array): boolean {
    const n = pattern.length;
    let pos = this.#start + offset;
    let k = this.#find(pos);
    let i = 0;
    while (i < n) {
      const seg = this.#segment(k);
      const local = pos - (this.#starts[k] as number);
      const take = Math.min(n - i, seg.length - local);
      if (compareBytes(seg.subarray(local, local + take), pattern.subarray(i, i + take)) !== 0) {
        return false;
      }
      i += take;
      pos += take;
      k++;
    }
    return true;
  }

  /**
   * Whether the view holds `needle` at `position` (default: the start).
   *
   * @example
   * ```ts
   * view.startsWith('ftyp', 4);
   * ```
   */
  startsWith(needle: Needle, position = 0): boolean {
    this.#lease?.check();
    checkOffset('position', position, 0, this.length);
    const pattern = toNeedle(needle);
    if (pattern.length > this.length - position) return false;
    return pattern.length === 0 || this.#matchesAt(position, pattern);
  }

  /**
   * Whether the view ends with `needle`.
   *
   * @example
   * ```ts
   * view.endsWith(new Uint8Array([0xff, 0xd9]));
   * ```
   */
  endsWith(needle: Needle): boolean {
    const pattern = toNeedle(needle);
    if (pattern.length > this.length) return false;
    return this.startsWith(pattern, this.length - pattern.length);
  }

  /**
   * Three-way byte comparison with `other` (like `Buffer.compare`), across
   * any segmentation of either side.
   *
   * @example
   * ```ts
   * import { ByteView } from 'buffer-view';
   * ByteView.fromText('abc').compare(ByteView.fromText('abd')); // -1
   * ```
   */
  compare(other: BytesLike): number {
    this.#lease?.check();
    const b = ByteView.from(other);
    const n = Math.min(this.length, b.length);
    let ai = this.#first;
    let bi = b.#first;
    let aBytes = n > 0 ? this.#part(ai) : EMPTY_BYTES;
    let bBytes = n > 0 ? b.#part(bi) : EMPTY_BYTES;
    let aPos = 0;
    let bPos = 0;
    let done = 0;
    while (done < n) {
      if (aPos === aBytes.length) {
        aBytes = this.#part(++ai);
        aPos = 0;
      }
      if (bPos === bBytes.length) {
        bBytes = b.#part(++bi);
        bPos = 0;
      }
      const take = Math.min(aBytes.length - aPos, bBytes.length - bPos, n - done);
      const d = compareBytes(
        aBytes.subarray(aPos, aPos + take),
        bBytes.subarray(bPos, bPos + take),
      );
      if (d !== 0) return d;
      aPos += take;
      bPos += take;
      done += take;
    }
    return this.length === b.length ? 0 : this.length < b.length ? -1 : 1;
  }

  /**
   * Whether `other` holds the same bytes, however either is segmented.
   *
   * @example
   * ```ts
   * import { ByteView } from 'buffer-view';
   * ByteView.from([new Uint8Array([1]), new Uint8Array([2])]).equals(new Uint8Array([1, 2])); // true
   * ```
   */
  equals(other: BytesLike): boolean {
    const b = ByteView.from(other);
    return this.length === b.length && this.compare(b) === 0;
  }

  /**
   * This view followed by `others`, as one view, without copying.
   *
   * @example
   * ```ts
   * const packet = header.concat(payload);
   * ```
   */
  concat(...others: BytesLike[]): ByteView {
    return ByteView.concat([this, ...others]);
  }

  /** @internal Shown by Node's `util.inspect` and `console.log`. */
  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return `ByteView(${this.length} bytes in ${this.segmentCount} segment${this.segmentCount === 1 ? '' : 's'})`;
  }
}

type AllocUnsafeSlow = { allocUnsafeSlow(size: number): Uint8Array };
const nodeBuffer = (globalThis as { Buffer?: AllocUnsafeSlow }).Buffer;

/**
 * Memory that is about to be overwritten whole: Node can skip zero-filling
 * it. Returned as a plain Uint8Array so `slice()` keeps its copying meaning.
 */
function allocateUninitialized(size: number): Uint8Array {
  if (nodeBuffer === undefined || size < 4096) return new Uint8Array(size);
  const buf = nodeBuffer.allocUnsafeSlow(size);
  return new Uint8Array(buf.buffer, buf.byteOffset, size);
}

function toUint8Array(item: ArrayBufferView | ArrayBufferLike): Uint8Array {
  if (item instanceof Uint8Array) return item;
  if (ArrayBuffer.isView(item))
    return new Uint8Array(item.buffer, item.byteOffset, item.byteLength);
  if (item instanceof ArrayBuffer || isSharedArrayBuffer(item)) return new Uint8Array(item);
  throw new InvalidArgumentError(
    `expected a Uint8Array, ArrayBufferView, ArrayBuffer, SharedArrayBuffer or ByteView, got ${describe(item)}`,
  );
}

function isSharedArrayBuffer(value: unknown): value is SharedArrayBuffer {
  return typeof SharedArrayBuffer !== 'undefined' && value instanceof SharedArrayBuffer;
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (typeof value === 'object') return value.constructor?.name ?? 'object';
  return typeof value;
}

function toNeedle(needle: Needle): Uint8Array {
  if (typeof needle === 'string') return encoder.encode(needle);
  if (typeof needle === 'number') {
    if (!Number.isInteger(needle) || needle < 0 || needle > 255) {
      throw new OutOfRangeError('byte value', needle, 0, 255);
    }
    return Uint8Array.of(needle);
  }
  if (needle instanceof ByteView)
    return needle.isContiguous ? needle.asUint8Array() : needle.copy();
  return needle;
}
