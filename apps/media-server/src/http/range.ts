/**
 * Range requests (RFC 9110 §14): parsing the `Range` header of a GET into the
 * byte ranges a 206 answers, and formatting `Content-Range`.
 *
 * Everything here is pure and never throws on header input: a client controls
 * the header, and a bad one must cost a 200, never a 500.
 *
 * @module
 */

import { trimOws } from './ows.ts';

/**
 * One satisfiable byte range of a representation, both ends inclusive as
 * `Content-Range` writes them, so `end - start + 1` bytes.
 *
 * @example
 * ```ts
 * const firstKilobyte: ByteRange = { start: 0, end: 1023 };
 * ```
 */
export interface ByteRange {
  readonly start: number;
  readonly end: number;
}

/**
 * What a route does with a `Range` header:
 *
 * - `ignore`: serve the whole representation with 200. `reason` says why, for
 *   logs and metrics: `absent` (no header), `invalid` (bad syntax or too
 *   long), `unit` (a range unit other than `bytes`), `too-many` (more range
 *   specs than allowed), `empty` (the representation is zero bytes long and a
 *   suffix range asked for "the last N bytes" of it: satisfiable per
 *   RFC 9110 §14.1.2, but an empty range cannot be written in a
 *   `Content-Range`, so the whole, empty, representation is the answer).
 * - `unsatisfiable`: 416 with `Content-Range: bytes *\/size`
 *   ({@link unsatisfiedRange}).
 * - `ranges`: 206. One range is a single part with `Content-Range`
 *   ({@link contentRange}); more go as `multipart/byteranges`.
 *
 * @example
 * ```ts
 * const result: RangeResult = parseRange('bytes=0-99', 1000);
 * if (result.type === 'ranges') console.log(result.ranges.length); // 1
 * ```
 */
export type RangeResult =
  | {
      readonly type: 'ignore';
      readonly reason: 'absent' | 'invalid' | 'unit' | 'too-many' | 'empty';
    }
  | { readonly type: 'unsatisfiable' }
  | { readonly type: 'ranges'; readonly ranges: readonly ByteRange[] };

/**
 * Limits on what {@link parseRange} accepts before it gives up and serves the
 * whole representation.
 *
 * @example
 * ```ts
 * const strict: RangeOptions = { maxRanges: 4, maxHeaderLength: 256 };
 * ```
 */
export interface RangeOptions {
  /**
   * Most range specs one header may list, counted before coalescing: each
   * part costs a header and a read, and RFC 9110 §14.2 lets a server ignore
   * sets that only a broken or hostile client sends.
   * @default 16
   */
  readonly maxRanges?: number | undefined;
  /**
   * Longest header, in characters, worth parsing at all.
   * @default 1024
   */
  readonly maxHeaderLength?: number | undefined;
  /**
   * Largest gap, in bytes, between two ranges that are still merged into
   * one part. 80 is RFC 9110 §14.6's estimate of a part header's size:
   * sending the gap's bytes is cheaper than starting another part.
   * @default 80
   */
  readonly coalesceGap?: number | undefined;
}

const DEFAULT_MAX_RANGES = 16;
const DEFAULT_MAX_HEADER_LENGTH = 1024;
const DEFAULT_COALESCE_GAP = 80;

const IGNORE_ABSENT: RangeResult = { type: 'ignore', reason: 'absent' };
const IGNORE_INVALID: RangeResult = { type: 'ignore', reason: 'invalid' };
const IGNORE_UNIT: RangeResult = { type: 'ignore', reason: 'unit' };
const IGNORE_TOO_MANY: RangeResult = { type: 'ignore', reason: 'too-many' };
const IGNORE_EMPTY: RangeResult = { type: 'ignore', reason: 'empty' };
const UNSATISFIABLE: RangeResult = { type: 'unsatisfiable' };

/** tchar (RFC 9110 §5.6.2): a range unit is a token. */
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/** `first-pos "-" [ last-pos ]`; `[0-9]` rather than `\d` keeps it ASCII-only on purpose. */
const INT_RANGE = /^([0-9]+)-([0-9]*)$/;
/** `"-" suffix-length`. */
const SUFFIX_RANGE = /^-([0-9]+)$/;

type Spec =
  | { readonly kind: 'int'; readonly first: number; readonly last: number | undefined }
  | { readonly kind: 'suffix'; readonly length: number };

/**
 * Parses a `Range` header (RFC 9110 §14.2) for a representation of `size`
 * bytes.
 *
 * Accepts `first-last`, `first-` and `-suffix` specs, the unit `bytes` in any
 * case, whitespace around commas and empty list elements (the `#rule` allows
 * `bytes=0-1,,2-3`). A header that breaks the grammar anywhere, including
 * `last < first` and numbers above `Number.MAX_SAFE_INTEGER`, is ignored as a
 * whole: RFC 9110 §14.2 lets a server ignore an invalid ranges-specifier, and
 * a 200 is what every client copes with.
 *
 * Satisfiable specs are clamped to the representation, then overlapping ones
 * and ones at most `coalesceGap` bytes apart are merged. Parts keep the order
 * the client asked for them in (RFC 9110 §14.6), a merged part standing where
 * its earliest-listed member stood; a client that lists ascending ranges (as
 * §14.2 asks) therefore gets them sorted.
 *
 * @param header - The raw field value, or `undefined` when absent.
 * @param size - The representation's length in bytes, a safe integer ≥ 0.
 * @throws RangeError when `size` or an option is not a valid count: those are
 *   the server's bugs, never the client's.
 *
 * @example
 * ```ts
 * parseRange('bytes=0-499', 10_000);
 * // { type: 'ranges', ranges: [{ start: 0, end: 499 }] }
 * parseRange('bytes=0-0,-1', 10_000);
 * // { type: 'ranges', ranges: [{ start: 0, end: 0 }, { start: 9999, end: 9999 }] }
 * parseRange('bytes=10000-', 10_000); // { type: 'unsatisfiable' }
 * parseRange('bytes=5-1', 10_000); // { type: 'ignore', reason: 'invalid' }
 * ```
 */
export function parseRange(
  header: string | undefined,
  size: number,
  options: RangeOptions = {},
): RangeResult {
  assertCount('size', size, 0);
  const maxRanges = options.maxRanges ?? DEFAULT_MAX_RANGES;
  const maxHeaderLength = options.maxHeaderLength ?? DEFAULT_MAX_HEADER_LENGTH;
  const gap = options.coalesceGap ?? DEFAULT_COALESCE_GAP;
  assertCount('maxRanges', maxRanges, 1);
  assertCount('maxHeaderLength', maxHeaderLength, 0);
  assertCount('coalesceGap', gap, 0);

  if (header === undefined) return IGNORE_ABSENT;
  // Checked before any work so a hostile header costs one comparison.
  if (header.length > maxHeaderLength) return IGNORE_INVALID;

  const value = trimOws(header);
  const eq = value.indexOf('=');
  if (eq < 0) return IGNORE_INVALID;
  const unit = value.slice(0, eq);
  if (!TOKEN.test(unit)) return IGNORE_INVALID;
  // An unknown unit is ignored whatever follows it (§14.2 MUST), so its
  // range set is not even looked at.
  if (unit.toLowerCase() !== 'bytes') return IGNORE_UNIT;

  const specs: Spec[] = [];
  // Splitting on commas is safe here, unlike for entity-tags: no byte
  // range-spec can contain a comma or a quoted string.
  for (const element of value.slice(eq + 1).split(',')) {
    const text = trimOws(element);
    if (text === '') continue;
    const spec = parseSpec(text);
    if (spec === undefined) return IGNORE_INVALID;
    specs.push(spec);
  }
  if (specs.length === 0) return IGNORE_INVALID;
  if (specs.length > maxRanges) return IGNORE_TOO_MANY;

  if (size === 0) {
    // §14.1.2: with zero length only a non-zero suffix is satisfiable, and
    // what it selects is zero bytes, which only a 200 can carry.
    return specs.some((s) => s.kind === 'suffix' && s.length > 0) ? IGNORE_EMPTY : UNSATISFIABLE;
  }

  const resolved: ByteRange[] = [];
  for (const spec of specs) {
    const range = resolve(spec, size);
    if (range !== undefined) resolved.push(range);
  }
  if (resolved.length === 0) return UNSATISFIABLE;
  return { type: 'ranges', ranges: coalesce(resolved, gap) };
}

/**
 * Formats the `Content-Range` of a single-part 206 or of one part of a
 * `multipart/byteranges` body (RFC 9110 §14.4).
 *
 * @throws RangeError when the range is not inside `[0, size - 1]`: such a
 *   header would tell the client something false about the bytes it gets.
 *
 * @example
 * ```ts
 * contentRange({ start: 0, end: 99 }, 1000); // 'bytes 0-99/1000'
 * ```
 */
export function contentRange(range: ByteRange, size: number): string {
  assertRangeWithin(range, size);
  return `bytes ${range.start}-${range.end}/${size}`;
}

/**
 * Formats the `Content-Range` of a 416 (RFC 9110 §14.4, §15.5.17), which
 * tells the client the current length so it can ask again sensibly. (The
 * backslash in the example only keeps this comment from closing.)
 *
 * @example
 * ```ts
 * unsatisfiedRange(1000); // 'bytes *\/1000'
 * ```
 */
export function unsatisfiedRange(size: number): string {
  assertCount('size', size, 0);
  return `bytes */${size}`;
}

/**
 * Throws unless `range` is a non-empty integer range inside a representation
 * of `size` bytes. Shared with the multipart planner so both refuse the same
 * ranges.
 *
 * @throws RangeError naming the range and the size.
 *
 * @example
 * ```ts
 * assertRangeWithin({ start: 0, end: 9 }, 10); // fine
 * assertRangeWithin({ start: 5, end: 10 }, 10); // throws RangeError
 * ```
 */
export function assertRangeWithin(range: ByteRange, size: number): void {
  assertCount('size', size, 0);
  const { start, end } = range;
  if (
    !Number.isSafeInteger(start) ||
    !Number.isSafeInteger(end) ||
    start < 0 ||
    start > end ||
    end >= size
  ) {
    throw new RangeError(
      `byte range ${start}-${end} is not within a representation of ${size} bytes`,
    );
  }
}

function parseSpec(text: string): Spec | undefined {
  const int = INT_RANGE.exec(text);
  if (int !== null) {
    const first = toSafeInteger(int[1] ?? '');
    const lastText = int[2] ?? '';
    if (first === undefined) return undefined;
    if (lastText === '') return { kind: 'int', first, last: undefined };
    const last = toSafeInteger(lastText);
    if (last === undefined) return undefined;
    // §14.1.2: "An int-range is invalid if the last-pos value is present and
    // less than the first-pos."
    if (last < first) return undefined;
    return { kind: 'int', first, last };
  }
  const suffix = SUFFIX_RANGE.exec(text);
  if (suffix !== null) {
    const length = toSafeInteger(suffix[1] ?? '');
    return length === undefined ? undefined : { kind: 'suffix', length };
  }
  return undefined;
}

/** Digits to a number, or `undefined` when they exceed what a double holds exactly. */
function toSafeInteger(digits: string): number | undefined {
  // Number() of a digit string is exact up to MAX_SAFE_INTEGER and rounds
  // anything larger to a value that is still larger, so one check suffices.
  const n = Number(digits);
  return digits !== '' && n <= Number.MAX_SAFE_INTEGER ? n : undefined;
}

function resolve(spec: Spec, size: number): ByteRange | undefined {
  if (spec.kind === 'suffix') {
    if (spec.length === 0) return undefined;
    // A suffix longer than the representation selects all of it (§14.1.2).
    return { start: Math.max(0, size - spec.length), end: size - 1 };
  }
  if (spec.first >= size) return undefined;
  return { start: spec.first, end: Math.min(spec.last ?? size - 1, size - 1) };
}

/**
 * Merges ranges that overlap or lie at most `gap` bytes apart, then restores
 * the request order: each merged part goes where its earliest member was.
 */
function coalesce(ranges: readonly ByteRange[], gap: number): ByteRange[] {
  if (ranges.length === 1) return [...ranges];
  const order = ranges.map((range, index) => ({ range, index }));
  // Array.prototype.sort is stable, so equal starts keep request order.
  order.sort((a, b) => a.range.start - b.range.start);
  const merged: { start: number; end: number; first: number }[] = [];
  for (const { range, index } of order) {
    const last = merged[merged.length - 1];
    // `last.end + 1` is the first byte not covered, so the gap between the
    // two is `range.start - (last.end + 1)`.
    if (last !== undefined && range.start - (last.end + 1) <= gap) {
      last.end = Math.max(last.end, range.end);
      last.first = Math.min(last.first, index);
    } else {
      merged.push({ start: range.start, end: range.end, first: index });
    }
  }
  merged.sort((a, b) => a.first - b.first);
  return merged.map(({ start, end }) => ({ start, end }));
}

function assertCount(name: string, value: number, min: number): void {
  if (!Number.isSafeInteger(value) || value < min) {
    throw new RangeError(`${name} must be a safe integer ≥ ${min}, got ${value}`);
  }
}
