/**
 * Conditional requests (RFC 9110 §13): evaluating `If-Match`,
 * `If-None-Match`, `If-Modified-Since`, `If-Unmodified-Since` and `If-Range`
 * against a representation's validators, and writing the validators.
 *
 * Nothing here throws on header input. Where a header is malformed the
 * choice is always the one that cannot serve stale bytes as fresh: a
 * malformed entity-tag list matches nothing (so `If-Match` fails with 412 and
 * `If-None-Match` lets the full response through), and a malformed date is
 * ignored, as §13.1.3 and §13.1.4 require.
 *
 * @module
 */

import { isOws, trimOws } from './ows.ts';

/**
 * The two validators of one stored representation.
 *
 * @example
 * ```ts
 * const validators: Validators = {
 *   etag: strongEtag({ size: 1000, mtimeMs: 1_700_000_000_000 }),
 *   lastModified: 1_700_000_000_000,
 * };
 * ```
 */
export interface Validators {
  /** A strong entity-tag, quoted as it goes in the `ETag` header: `"\"abc\""`. */
  readonly etag: string;
  /** Last modification time in milliseconds since the epoch; HTTP sees whole seconds. */
  readonly lastModified: number;
}

/**
 * What the precondition headers decide: go on and serve (perhaps a Range),
 * answer 304, or answer 412.
 *
 * @example
 * ```ts
 * const status = { proceed: 200, 'not-modified': 304, 'precondition-failed': 412 } satisfies Record<PreconditionResult, number>;
 * ```
 */
export type PreconditionResult = 'proceed' | 'not-modified' | 'precondition-failed';

/**
 * The request headers {@link evaluatePreconditions} reads. Node's
 * `IncomingHttpHeaders` fits as is.
 *
 * @example
 * ```ts
 * const headers: PreconditionHeaders = { 'if-none-match': '"abc"' };
 * ```
 */
export interface PreconditionHeaders {
  readonly 'if-match'?: string | undefined;
  readonly 'if-none-match'?: string | undefined;
  readonly 'if-modified-since'?: string | undefined;
  readonly 'if-unmodified-since'?: string | undefined;
}

/**
 * Evaluates the precondition headers in RFC 9110 §13.2.2's order:
 *
 * 1. `If-Match` (strong comparison, `*` matches since the representation
 *    exists): false → 412.
 * 2. Only without `If-Match`: `If-Unmodified-Since`: modified after the
 *    date → 412.
 * 3. `If-None-Match` (weak comparison, `*` matches): a match → 304 for
 *    GET and HEAD, 412 for anything else.
 * 4. Only without `If-None-Match`, and only for GET and HEAD:
 *    `If-Modified-Since`: not modified since the date → 304.
 *
 * Dates that are not valid HTTP-dates are ignored (§13.1.3, §13.1.4), and
 * dates compare at the one-second precision `Last-Modified` has. A date in
 * the future is not treated specially: this function has no clock, and a
 * client that sends one only loses a 304.
 *
 * The caller evaluates preconditions only for a representation that exists
 * and whose response would otherwise be 2xx (§13.2.1); `If-Range` comes after,
 * with {@link rangeApplies}. Methods are case-sensitive (§9.1).
 *
 * @throws RangeError when `validators.etag` is not an entity-tag: a server bug.
 *
 * @example
 * ```ts
 * const validators = { etag: '"5f-18bcfe56800"', lastModified: 1_700_000_000_000 };
 * evaluatePreconditions('GET', { 'if-none-match': '"5f-18bcfe56800"' }, validators); // 'not-modified'
 * evaluatePreconditions('PUT', { 'if-match': '"stale"' }, validators); // 'precondition-failed'
 * evaluatePreconditions('GET', {}, validators); // 'proceed'
 * ```
 */
export function evaluatePreconditions(
  method: string,
  headers: PreconditionHeaders,
  validators: Validators,
): PreconditionResult {
  const current = validatorTag(validators.etag);
  const modifiedSecond = secondOf(validators.lastModified);
  const ifMatch = headers['if-match'];
  const ifNoneMatch = headers['if-none-match'];

  if (ifMatch !== undefined) {
    if (!listMatches(ifMatch, current, strongMatch)) return 'precondition-failed';
  } else {
    const since = parseHttpDate(headers['if-unmodified-since']);
    if (since !== undefined && modifiedSecond > since) return 'precondition-failed';
  }

  const safe = method === 'GET' || method === 'HEAD';
  if (ifNoneMatch !== undefined) {
    if (listMatches(ifNoneMatch, current, weakMatch)) {
      return safe ? 'not-modified' : 'precondition-failed';
    }
  } else if (safe) {
    const since = parseHttpDate(headers['if-modified-since']);
    if (since !== undefined && modifiedSecond <= since) return 'not-modified';
  }
  return 'proceed';
}

/**
 * Evaluates `If-Range` (RFC 9110 §13.1.5): `true` means the Range header may
 * be honoured, `false` means the client's partial copy is stale and it gets
 * the whole representation with 200.
 *
 * `true` when the header is absent. An entity-tag must match strongly, so a
 * weak one (`W/"…"`, which clients must not send here) never matches. A date
 * must equal `Last-Modified` exactly, which is second-precision. Anything
 * else, including an unparseable value, is `false`: the safe answer is the
 * full body.
 *
 * The caller consults this only for a GET that has a Range header (§13.1.5
 * says If-Range without Range is ignored).
 *
 * @throws RangeError when `validators.etag` is not an entity-tag: a server bug.
 *
 * @example
 * ```ts
 * const validators = { etag: '"abc"', lastModified: Date.UTC(2023, 10, 14, 22, 13, 20, 500) };
 * rangeApplies(undefined, validators); // true
 * rangeApplies('"abc"', validators); // true
 * rangeApplies('W/"abc"', validators); // false
 * rangeApplies('Tue, 14 Nov 2023 22:13:20 GMT', validators); // true
 * rangeApplies('Tue, 14 Nov 2023 22:13:21 GMT', validators); // false
 * ```
 */
export function rangeApplies(ifRange: string | undefined, validators: Validators): boolean {
  const current = validatorTag(validators.etag);
  if (ifRange === undefined) return true;
  const value = trimOws(ifRange);
  // §13.1.5: a DQUOTE among the first three characters marks an entity-tag.
  if (value.slice(0, 3).includes('"')) {
    const tag = parseSingleTag(value);
    return tag !== undefined && strongMatch(tag, current);
  }
  const date = parseHttpDate(value);
  return date !== undefined && date === secondOf(validators.lastModified);
}

/**
 * Formats a time as an IMF-fixdate (RFC 9110 §5.6.7), the only HTTP-date
 * format a sender may generate: `Sun, 06 Nov 1994 08:49:37 GMT`. Milliseconds
 * are dropped (floored).
 *
 * @throws RangeError when `ms` is not finite or falls outside years 0–9999,
 *   which a four-digit year cannot write.
 *
 * @example
 * ```ts
 * httpDate(784111777000); // 'Sun, 06 Nov 1994 08:49:37 GMT'
 * ```
 */
export function httpDate(ms: number): string {
  const date = new Date(Number.isFinite(ms) ? Math.floor(ms) : Number.NaN);
  const year = date.getUTCFullYear();
  if (Number.isNaN(date.getTime()) || year < 0 || year > 9999) {
    throw new RangeError(`${ms} ms is not a time an HTTP-date can write`);
  }
  const day = DAY_NAMES[date.getUTCDay()] ?? '';
  const month = MONTHS[date.getUTCMonth()] ?? '';
  return (
    `${day}, ${pad(date.getUTCDate(), 2)} ${month} ${pad(year, 4)} ` +
    `${pad(date.getUTCHours(), 2)}:${pad(date.getUTCMinutes(), 2)}:${pad(date.getUTCSeconds(), 2)} GMT`
  );
}

/**
 * Parses an HTTP-date (RFC 9110 §5.6.7) in any of its three formats into
 * milliseconds since the epoch (a whole second), or `undefined` when the value
 * is not exactly one valid HTTP-date. Unlike `Date.parse`, which accepts
 * almost anything, it takes only the grammar: case-sensitive names, fixed
 * widths, `GMT`, and real calendar days.
 *
 * - IMF-fixdate: `Sun, 06 Nov 1994 08:49:37 GMT`
 * - obsolete RFC 850: `Sunday, 06-Nov-94 08:49:37 GMT`; a two-digit year more
 *   than 50 years after `now`'s year means the century before (§5.6.7)
 * - asctime: `Sun Nov  6 08:49:37 1994`
 *
 * The weekday is checked for spelling only, not against the date: it is
 * redundant, and rejecting a mismatch would only cost the client a 304.
 * Second 60 (a leap second, allowed by the grammar) counts as the next
 * minute's first second.
 *
 * @param now - The clock the two-digit-year rule reads, for tests.
 *
 * @example
 * ```ts
 * parseHttpDate('Sun, 06 Nov 1994 08:49:37 GMT'); // 784111777000
 * parseHttpDate('Sunday, 06-Nov-94 08:49:37 GMT'); // 784111777000
 * parseHttpDate('Sun Nov  6 08:49:37 1994'); // 784111777000
 * parseHttpDate('1994-11-06T08:49:37Z'); // undefined
 * ```
 */
export function parseHttpDate(
  value: string | undefined,
  now: number = Date.now(),
): number | undefined {
  if (value === undefined) return undefined;
  const text = trimOws(value);
  let m = IMF_FIXDATE.exec(text);
  if (m !== null) return toTime(m[4], m[3], m[2], m[5], m[6], m[7]);
  m = RFC850_DATE.exec(text);
  if (m !== null) {
    const nowYear = new Date(Number.isFinite(now) ? now : Date.now()).getUTCFullYear();
    const latest = nowYear + 50;
    const year = latest - mod(latest - Number(m[4]), 100);
    return toTime(String(year), m[3], m[2], m[5], m[6], m[7]);
  }
  m = ASCTIME_DATE.exec(text);
  if (m !== null) return toTime(m[7], m[2], m[3], m[4], m[5], m[6]);
  return undefined;
}

/**
 * Builds a strong entity-tag for a stored object from its identity, size and
 * modification time: `"<id>-<hex size>-<hex mtime>"`, or
 * `"<hex size>-<hex mtime>"` without an id.
 *
 * Strong means "changes whenever the bytes change" (RFC 9110 §8.8.1), and
 * that holds because stored videos are never rewritten in place: an upload
 * writes a new object that appears whole under a new id, or replaces one by an
 * atomic rename that gives it a new mtime. Size and mtime alone could collide
 * between two different objects, which is what the id is for. The mtime
 * keeps only whole milliseconds; a store that did rewrite in place within one
 * millisecond at the same size would break this, and this server has none.
 * Characters of the id that an entity-tag may not hold are percent-encoded
 * from UTF-8 (stored ids are `[A-Za-z0-9_-]`, so in practice nothing is);
 * lone surrogates have no UTF-8 form and all encode as U+FFFD.
 *
 * @throws RangeError when `size` is not a safe integer ≥ 0 or `mtimeMs` is
 *   not finite.
 *
 * @example
 * ```ts
 * strongEtag({ size: 1000, mtimeMs: 1_700_000_000_000 }); // '"3e8-18bcfe56800"'
 * strongEtag({ id: 'big-buck-bunny', size: 1000, mtimeMs: 1_700_000_000_000 });
 * // '"big-buck-bunny-3e8-18bcfe56800"'
 * ```
 */
export function strongEtag(parts: {
  size: number;
  mtimeMs: number;
  id?: string | undefined;
}): string {
  const { size, mtimeMs, id } = parts;
  if (!Number.isSafeInteger(size) || size < 0) {
    throw new RangeError(`size must be a safe integer ≥ 0, got ${size}`);
  }
  if (!Number.isFinite(mtimeMs)) throw new RangeError(`mtimeMs must be finite, got ${mtimeMs}`);
  const core = `${size.toString(16)}-${Math.floor(mtimeMs).toString(16)}`;
  return id === undefined ? `"${core}"` : `"${encodeEtagChars(id)}-${core}"`;
}

interface EntityTag {
  readonly weak: boolean;
  /** The quoted opaque-tag, quotes included: what both comparisons compare. */
  readonly opaque: string;
}

const DAY_NAMES = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'] as const;
const MONTHS = [
  'Jan',
  'Feb',
  'Mar',
  'Apr',
  'May',
  'Jun',
  'Jul',
  'Aug',
  'Sep',
  'Oct',
  'Nov',
  'Dec',
] as const;
const DAY = '(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)';
const DAY_LONG = '(?:Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday)';
const MONTH = `(${MONTHS.join('|')})`;
const TIME = '([0-9]{2}):([0-9]{2}):([0-9]{2})';
// Case-sensitive on purpose: §5.6.7 says HTTP-date is.
const IMF_FIXDATE = new RegExp(`^(${DAY}), ([0-9]{2}) ${MONTH} ([0-9]{4}) ${TIME} GMT$`);
const RFC850_DATE = new RegExp(`^(${DAY_LONG}), ([0-9]{2})-${MONTH}-([0-9]{2}) ${TIME} GMT$`);
const ASCTIME_DATE = new RegExp(`^(${DAY}) ${MONTH} ([0-9]{2}| [0-9]) ${TIME} ([0-9]{4})$`);

function toTime(
  yearText: string | undefined,
  monthName: string | undefined,
  dayText: string | undefined,
  hourText: string | undefined,
  minuteText: string | undefined,
  secondText: string | undefined,
): number | undefined {
  const year = Number(yearText);
  const month = MONTHS.indexOf(monthName as (typeof MONTHS)[number]);
  const day = Number(dayText);
  const hour = Number(hourText);
  const minute = Number(minuteText);
  const second = Number(secondText);
  if (month < 0 || hour > 23 || minute > 59 || second > 60 || day < 1) return undefined;
  // setUTCFullYear, unlike Date.UTC, leaves years 0–99 alone. A day past the
  // month's end rolls over into the next month, which is how 31 Apr and
  // 29 Feb of a common year show up as invalid.
  const date = new Date(0);
  date.setUTCFullYear(year, month, day);
  if (date.getUTCMonth() !== month || date.getUTCDate() !== day) return undefined;
  return date.getTime() + ((hour * 60 + minute) * 60 + second) * 1000;
}

/** The strict single entity-tag `[W/]"etagc*"` with nothing around it but OWS. */
function parseSingleTag(value: string): EntityTag | undefined {
  const list = parseTagList(value);
  return list !== undefined && list.length === 1 ? list[0] : undefined;
}

/**
 * Scans `#entity-tag` (RFC 9110 §8.8.3, §5.6.1) quote by quote rather than
 * splitting on commas, because a comma is a legal character inside an
 * opaque-tag. Returns `undefined` for anything off-grammar, and for an empty
 * list, which `1#` forbids.
 */
function parseTagList(value: string): EntityTag[] | undefined {
  const tags: EntityTag[] = [];
  const n = value.length;
  let i = 0;
  for (;;) {
    // Empty elements and OWS between them are allowed by the #rule.
    while (i < n && (value[i] === ',' || isOws(value.charCodeAt(i)))) i++;
    if (i >= n) break;
    let weak = false;
    if (value.startsWith('W/', i)) {
      weak = true;
      i += 2;
    }
    if (value[i] !== '"') return undefined;
    const open = i;
    i++;
    while (i < n && value[i] !== '"') {
      if (!isEtagc(value.charCodeAt(i))) return undefined;
      i++;
    }
    if (i >= n) return undefined;
    i++;
    tags.push({ weak, opaque: value.slice(open, i) });
    while (i < n && isOws(value.charCodeAt(i))) i++;
    if (i < n && value[i] !== ',') return undefined;
  }
  return tags.length > 0 ? tags : undefined;
}

function listMatches(
  header: string,
  current: EntityTag,
  compare: (a: EntityTag, b: EntityTag) => boolean,
): boolean {
  // `*` stands alone (`"*" / #entity-tag`), and matches because the caller
  // only asks about a representation that exists.
  if (trimOws(header) === '*') return true;
  const tags = parseTagList(header);
  return tags?.some((tag) => compare(tag, current)) === true;
}

function strongMatch(a: EntityTag, b: EntityTag): boolean {
  return !a.weak && !b.weak && a.opaque === b.opaque;
}

function weakMatch(a: EntityTag, b: EntityTag): boolean {
  return a.opaque === b.opaque;
}

function validatorTag(etag: string): EntityTag {
  const tag = parseSingleTag(etag);
  if (tag === undefined)
    throw new RangeError(`validator ${JSON.stringify(etag)} is not an entity-tag`);
  return tag;
}

/** `etagc = %x21 / %x23-7E / obs-text` (RFC 9110 §8.8.3). */
function isEtagc(code: number): boolean {
  return code === 0x21 || (code >= 0x23 && code <= 0x7e) || (code >= 0x80 && code <= 0xff);
}

function encodeEtagChars(text: string): string {
  let out = '';
  // UTF-8 first, so any string (lone surrogates too) has a byte form to encode.
  for (const byte of new TextEncoder().encode(text)) {
    // `%` is encoded too, so the encoding cannot be confused with a literal.
    if (isEtagc(byte) && byte < 0x80 && byte !== 0x25) out += String.fromCharCode(byte);
    else out += `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

function secondOf(ms: number): number {
  return Math.floor(ms / 1000) * 1000;
}

function pad(n: number, width: number): string {
  return String(n).padStart(width, '0');
}

function mod(a: number, n: number): number {
  return ((a % n) + n) % n;
}
