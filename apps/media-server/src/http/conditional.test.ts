import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  evaluatePreconditions,
  httpDate,
  type PreconditionHeaders,
  type PreconditionResult,
  parseHttpDate,
  rangeApplies,
  strongEtag,
  type Validators,
} from './conditional.ts';

// 750 ms past the second, so every date comparison below also checks that
// Last-Modified is compared at the one-second precision HTTP gives it.
const LAST_MODIFIED = Date.UTC(2024, 0, 15, 12, 0, 0, 750);
const validators: Validators = { etag: '"v1"', lastModified: LAST_MODIFIED };
const AT = 'Mon, 15 Jan 2024 12:00:00 GMT';
const BEFORE = 'Mon, 15 Jan 2024 11:59:59 GMT';
const AFTER = 'Mon, 15 Jan 2024 12:00:01 GMT';

type Row = [string, PreconditionHeaders, PreconditionResult];

/** Rows whose answer is the same for GET and HEAD. */
const safeMethodRows: Row[] = [
  ['no preconditions', {}, 'proceed'],

  ['If-Match: the current tag', { 'if-match': '"v1"' }, 'proceed'],
  ['If-Match: another tag', { 'if-match': '"v2"' }, 'precondition-failed'],
  ['If-Match: *', { 'if-match': '*' }, 'proceed'],
  ['If-Match: a weak tag never matches strongly', { 'if-match': 'W/"v1"' }, 'precondition-failed'],
  ['If-Match: a list holding the tag', { 'if-match': '"v2", "v1"' }, 'proceed'],
  ['If-Match: unquoted (malformed) matches nothing', { 'if-match': 'v1' }, 'precondition-failed'],
  ['If-Match: an empty list matches nothing', { 'if-match': ' , ' }, 'precondition-failed'],
  ['If-Match: * inside a list is malformed', { 'if-match': '*, "v1"' }, 'precondition-failed'],

  ['If-Unmodified-Since: the same second', { 'if-unmodified-since': AT }, 'proceed'],
  [
    'If-Unmodified-Since: a second before',
    { 'if-unmodified-since': BEFORE },
    'precondition-failed',
  ],
  ['If-Unmodified-Since: a second after', { 'if-unmodified-since': AFTER }, 'proceed'],
  ['If-Unmodified-Since: invalid date ignored', { 'if-unmodified-since': 'yesterday' }, 'proceed'],
  [
    'If-Unmodified-Since: a list of dates is ignored',
    { 'if-unmodified-since': `${BEFORE}, ${BEFORE}` },
    'proceed',
  ],
  [
    'If-Unmodified-Since: ignored when If-Match is present',
    { 'if-match': '"v1"', 'if-unmodified-since': BEFORE },
    'proceed',
  ],
  [
    'If-Match fails even when If-Unmodified-Since would pass',
    { 'if-match': '"v2"', 'if-unmodified-since': AFTER },
    'precondition-failed',
  ],

  ['If-None-Match: the current tag', { 'if-none-match': '"v1"' }, 'not-modified'],
  ['If-None-Match: weak comparison matches W/', { 'if-none-match': 'W/"v1"' }, 'not-modified'],
  ['If-None-Match: *', { 'if-none-match': '*' }, 'not-modified'],
  ['If-None-Match: another tag', { 'if-none-match': '"v2"' }, 'proceed'],
  [
    'If-None-Match: a list holding the tag',
    { 'if-none-match': '"a", W/"b",   "v1"' },
    'not-modified',
  ],
  ['If-None-Match: malformed matches nothing', { 'if-none-match': '"v1' }, 'proceed'],
  [
    'If-None-Match: one malformed member spoils the list',
    { 'if-none-match': '"v1", x' },
    'proceed',
  ],
  ['If-None-Match: tags are case-sensitive', { 'if-none-match': '"V1"' }, 'proceed'],

  ['If-Modified-Since: the same second', { 'if-modified-since': AT }, 'not-modified'],
  ['If-Modified-Since: a second after', { 'if-modified-since': AFTER }, 'not-modified'],
  ['If-Modified-Since: a second before', { 'if-modified-since': BEFORE }, 'proceed'],
  ['If-Modified-Since: invalid date ignored', { 'if-modified-since': '2024-01-15' }, 'proceed'],
  [
    'If-Modified-Since: ignored when If-None-Match is present',
    { 'if-none-match': '"v2"', 'if-modified-since': AFTER },
    'proceed',
  ],
  [
    'If-None-Match wins over an If-Modified-Since that would pass',
    { 'if-none-match': '"v1"', 'if-modified-since': BEFORE },
    'not-modified',
  ],

  [
    'If-Match fails before If-None-Match is looked at',
    { 'if-match': '"v2"', 'if-none-match': '"v1"' },
    'precondition-failed',
  ],
  [
    'If-Unmodified-Since fails before If-None-Match is looked at',
    { 'if-unmodified-since': BEFORE, 'if-none-match': '"v1"' },
    'precondition-failed',
  ],
  [
    'If-Match passes, then If-None-Match matches',
    { 'if-match': '"v1"', 'if-none-match': '"v1"' },
    'not-modified',
  ],
  [
    'If-Unmodified-Since passes, then If-Modified-Since says not modified',
    { 'if-unmodified-since': AFTER, 'if-modified-since': AT },
    'not-modified',
  ],
  [
    'every header passes',
    {
      'if-match': '"v1"',
      'if-unmodified-since': AT,
      'if-none-match': '"v2"',
      'if-modified-since': BEFORE,
    },
    'proceed',
  ],
];

describe('evaluatePreconditions: GET and HEAD', () => {
  for (const method of ['GET', 'HEAD']) {
    it.each(safeMethodRows)(`${method}: %s`, (_name, headers, expected) => {
      expect(evaluatePreconditions(method, headers, validators)).toBe(expected);
    });
  }
});

describe('evaluatePreconditions: other methods', () => {
  it.each<[string, PreconditionHeaders, PreconditionResult]>([
    ['POST', { 'if-none-match': '"v1"' }, 'precondition-failed'],
    ['POST', { 'if-none-match': '*' }, 'precondition-failed'],
    ['PUT', { 'if-none-match': 'W/"v1"' }, 'precondition-failed'],
    ['PUT', { 'if-match': '"v1"', 'if-none-match': '"v1"' }, 'precondition-failed'],
    ['PUT', { 'if-match': '"v1"' }, 'proceed'],
    ['DELETE', { 'if-match': '"v2"' }, 'precondition-failed'],
    ['POST', { 'if-none-match': '"v2"' }, 'proceed'],
    ['PUT', { 'if-unmodified-since': BEFORE }, 'precondition-failed'],
    // If-Modified-Since means nothing outside GET and HEAD.
    ['POST', { 'if-modified-since': AFTER }, 'proceed'],
    ['OPTIONS', { 'if-modified-since': AT }, 'proceed'],
    // Methods are case-sensitive: `get` is not GET.
    ['get', { 'if-none-match': '"v1"' }, 'precondition-failed'],
  ])('%s %j', (method, headers, expected) => {
    expect(evaluatePreconditions(method, headers, validators)).toBe(expected);
  });
});

describe('evaluatePreconditions: entity-tag lists', () => {
  it('scans quoted tags, so a comma inside one does not split it', () => {
    const comma: Validators = { etag: '"a,b"', lastModified: LAST_MODIFIED };
    expect(evaluatePreconditions('GET', { 'if-none-match': '"x", "a,b"' }, comma)).toBe(
      'not-modified',
    );
    expect(evaluatePreconditions('GET', { 'if-none-match': '"a", "b"' }, comma)).toBe('proceed');
    expect(evaluatePreconditions('GET', { 'if-match': '"a,b"' }, comma)).toBe('proceed');
  });

  it('accepts the RFC 9110 §8.8.3 and §13.1 example tags', () => {
    const xyzzy: Validators = { etag: '"xyzzy"', lastModified: LAST_MODIFIED };
    const list = '"xyzzy", "r2d2xxxx", "c3piozzzz"';
    expect(evaluatePreconditions('PUT', { 'if-match': list }, xyzzy)).toBe('proceed');
    expect(evaluatePreconditions('GET', { 'if-none-match': list }, xyzzy)).toBe('not-modified');
    expect(evaluatePreconditions('GET', { 'if-none-match': 'W/"xyzzy"' }, xyzzy)).toBe(
      'not-modified',
    );
    expect(evaluatePreconditions('GET', { 'if-none-match': '""' }, xyzzy)).toBe('proceed');
  });

  it('tolerates empty list elements and tabs', () => {
    expect(evaluatePreconditions('GET', { 'if-none-match': ',\t"v2" ,, "v1",' }, validators)).toBe(
      'not-modified',
    );
  });

  it.each([
    '"v1" "v2"',
    '"v1"x',
    'w/"v1"',
    'W/ "v1"',
    '"v 1"',
    '"v\u0001"',
    '"v\u20ac"',
    '"unterminated',
    '',
  ])('treats %j as matching nothing', (header) => {
    expect(evaluatePreconditions('GET', { 'if-none-match': header }, validators)).toBe('proceed');
    expect(evaluatePreconditions('GET', { 'if-match': header }, validators)).toBe(
      'precondition-failed',
    );
  });

  it('compares a weak validator only weakly', () => {
    const weak: Validators = { etag: 'W/"v1"', lastModified: LAST_MODIFIED };
    expect(evaluatePreconditions('GET', { 'if-match': '"v1"' }, weak)).toBe('precondition-failed');
    expect(evaluatePreconditions('GET', { 'if-none-match': '"v1"' }, weak)).toBe('not-modified');
    expect(rangeApplies('"v1"', weak)).toBe(false);
  });

  it('refuses a validator that is not an entity-tag', () => {
    const bad: Validators = { etag: 'v1', lastModified: LAST_MODIFIED };
    expect(() => evaluatePreconditions('GET', {}, bad)).toThrow(RangeError);
    expect(() => rangeApplies(undefined, bad)).toThrow(RangeError);
  });

  it('never throws on arbitrary header values', () => {
    const header = fc.option(
      fc.oneof(
        fc.string(),
        fc.string({ unit: 'binary' }),
        fc
          .array(fc.constantFrom('"', 'W/', ',', ' ', 'v1', '*', 'a', '\t'), { maxLength: 20 })
          .map((parts) => parts.join('')),
      ),
      { nil: undefined },
    );
    fc.assert(
      fc.property(
        fc.constantFrom('GET', 'HEAD', 'POST', 'PUT'),
        header,
        header,
        header,
        header,
        (method, im, inm, ims, ius) => {
          const result = evaluatePreconditions(
            method,
            {
              'if-match': im,
              'if-none-match': inm,
              'if-modified-since': ims,
              'if-unmodified-since': ius,
            },
            validators,
          );
          expect(['proceed', 'not-modified', 'precondition-failed']).toContain(result);
          expect(typeof rangeApplies(im, validators)).toBe('boolean');
        },
      ),
      { numRuns: 2000 },
    );
  });
});

describe('rangeApplies (If-Range)', () => {
  it.each<[string | undefined, boolean]>([
    [undefined, true],
    ['"v1"', true],
    [' "v1" ', true],
    ['"v2"', false],
    ['W/"v1"', false],
    [AT, true],
    ['Mon Jan 15 12:00:00 2024', true],
    ['Monday, 15-Jan-24 12:00:00 GMT', true],
    [BEFORE, false],
    [AFTER, false],
    ['garbage', false],
    ['', false],
    ['*', false],
    ['"v1", "v2"', false],
    ['"v1', false],
  ])('%j → %s', (ifRange, expected) => {
    expect(rangeApplies(ifRange, validators)).toBe(expected);
  });

  it('compares dates at second precision, whatever the milliseconds', () => {
    for (const ms of [0, 1, 999]) {
      const v: Validators = { etag: '"v1"', lastModified: Date.UTC(2024, 0, 15, 12, 0, 0, ms) };
      expect(rangeApplies(AT, v)).toBe(true);
    }
  });
});

describe('httpDate', () => {
  it.each<[number, string]>([
    [784111777000, 'Sun, 06 Nov 1994 08:49:37 GMT'],
    [784111777999, 'Sun, 06 Nov 1994 08:49:37 GMT'],
    [0, 'Thu, 01 Jan 1970 00:00:00 GMT'],
    [-1, 'Wed, 31 Dec 1969 23:59:59 GMT'],
    [LAST_MODIFIED, AT],
    [Date.UTC(2024, 1, 29, 23, 5, 9), 'Thu, 29 Feb 2024 23:05:09 GMT'],
    [Date.UTC(9999, 11, 31, 23, 59, 59), 'Fri, 31 Dec 9999 23:59:59 GMT'],
    [new Date('0999-03-04T05:06:07Z').getTime(), 'Mon, 04 Mar 0999 05:06:07 GMT'],
  ])('%i → %s', (ms, expected) => {
    expect(httpDate(ms)).toBe(expected);
  });

  it.each([
    Number.NaN,
    Number.POSITIVE_INFINITY,
    Date.UTC(10_000, 0, 1),
    new Date('-000001-01-01T00:00:00Z').getTime(),
    8.64e15 + 1,
  ])('refuses %d', (ms) => {
    expect(() => httpDate(ms)).toThrow(RangeError);
  });

  it('agrees with toUTCString and round-trips through parseHttpDate', () => {
    fc.assert(
      fc.property(fc.integer({ min: Date.UTC(1000, 0, 1), max: Date.UTC(9999, 11, 31) }), (ms) => {
        const text = httpDate(ms);
        expect(text).toBe(new Date(ms).toUTCString());
        expect(parseHttpDate(text)).toBe(Math.floor(ms / 1000) * 1000);
      }),
      { numRuns: 2000 },
    );
  });
});

describe('parseHttpDate', () => {
  const now = Date.UTC(2025, 5, 1);

  it.each([
    'Sun, 06 Nov 1994 08:49:37 GMT',
    'Sunday, 06-Nov-94 08:49:37 GMT',
    'Sun Nov  6 08:49:37 1994',
    'Sun Nov 06 08:49:37 1994',
    ' Sun, 06 Nov 1994 08:49:37 GMT\t',
  ])('reads the RFC 9110 §5.6.7 example %j', (text) => {
    expect(parseHttpDate(text, now)).toBe(784111777000);
  });

  it.each([
    'sun, 06 Nov 1994 08:49:37 GMT',
    'Sun, 06 nov 1994 08:49:37 GMT',
    'Sun, 06 Nov 1994 08:49:37 gmt',
    'Sun, 06 Nov 1994 08:49:37 UTC',
    'Sun, 06 Nov 1994 08:49:37 +0000',
    'Sun, 6 Nov 1994 08:49:37 GMT',
    'Sun, 06 Nov 94 08:49:37 GMT',
    'Sun,  06 Nov 1994 08:49:37 GMT',
    'Sun 06 Nov 1994 08:49:37 GMT',
    'Sunday, 06 Nov 1994 08:49:37 GMT',
    'Sun, 06-Nov-94 08:49:37 GMT',
    'Sunday, 06-Nov-1994 08:49:37 GMT',
    'Sun Nov 6 08:49:37 1994',
    'Sun Nov  6 08:49:37 1994 GMT',
    'Sun, 06 Nov 1994 8:49:37 GMT',
    'Sun, 06 Nov 1994 08:49 GMT',
    'Sun, 06 Nov 1994 24:00:00 GMT',
    'Sun, 06 Nov 1994 08:60:00 GMT',
    'Sun, 06 Nov 1994 08:49:61 GMT',
    'Sun, 00 Nov 1994 08:49:37 GMT',
    'Sun, 31 Apr 1994 08:49:37 GMT',
    'Wed, 29 Feb 2023 00:00:00 GMT',
    'Sun, 32 Jan 1994 08:49:37 GMT',
    'Sun, 06 Nov 1994 08:49:37 GMT, Sun, 06 Nov 1994 08:49:37 GMT',
    'Sun, 06 Nov 1994 08:49:37 GMTx',
    'Sun, ０６ Nov 1994 08:49:37 GMT',
    '1994-11-06T08:49:37Z',
    '784111777',
    'Nov 6 1994',
    '',
  ])('refuses %j', (text) => {
    expect(parseHttpDate(text, now)).toBeUndefined();
  });

  it('takes a leap day and a leap second', () => {
    expect(parseHttpDate('Thu, 29 Feb 2024 00:00:00 GMT', now)).toBe(Date.UTC(2024, 1, 29));
    expect(parseHttpDate('Sat, 31 Dec 2016 23:59:60 GMT', now)).toBe(Date.UTC(2017, 0, 1));
  });

  it('keeps years below 100 as written in four-digit formats', () => {
    expect(parseHttpDate('Sat, 01 Jan 0050 00:00:00 GMT', now)).toBe(
      new Date('0050-01-01T00:00:00Z').getTime(),
    );
  });

  it('does not check the weekday against the date', () => {
    expect(parseHttpDate('Mon, 06 Nov 1994 08:49:37 GMT', now)).toBe(784111777000);
  });

  it.each<[string, number]>([
    ['94', 1994],
    ['25', 2025],
    ['75', 2075],
    ['76', 1976],
    ['00', 2000],
    ['99', 1999],
  ])('reads the RFC 850 year %s as %i in 2025 (50-year rule)', (yy, year) => {
    expect(parseHttpDate(`Sunday, 06-Nov-${yy} 08:49:37 GMT`, now)).toBe(
      Date.UTC(year, 10, 6, 8, 49, 37),
    );
  });

  it('moves the RFC 850 window with the clock', () => {
    const in2090 = Date.UTC(2090, 0, 1);
    expect(parseHttpDate('Sunday, 06-Nov-30 08:49:37 GMT', in2090)).toBe(
      Date.UTC(2130, 10, 6, 8, 49, 37),
    );
    expect(parseHttpDate('Sunday, 06-Nov-41 08:49:37 GMT', in2090)).toBe(
      Date.UTC(2041, 10, 6, 8, 49, 37),
    );
  });

  it('never throws and returns only whole seconds', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.string({ unit: 'binary' })), (text) => {
        const result = parseHttpDate(text);
        if (result !== undefined) expect(result % 1000).toBe(0);
      }),
      { numRuns: 2000 },
    );
  });
});

describe('strongEtag', () => {
  it('writes size and mtime in hex', () => {
    expect(strongEtag({ size: 1000, mtimeMs: 1_700_000_000_000 })).toBe('"3e8-18bcfe56800"');
    expect(strongEtag({ size: 0, mtimeMs: 0 })).toBe('"0-0"');
    expect(strongEtag({ size: 1000, mtimeMs: 1_700_000_000_000.9 })).toBe('"3e8-18bcfe56800"');
  });

  it('prefixes the id, percent-encoding what an entity-tag cannot hold', () => {
    expect(strongEtag({ id: 'big-buck-bunny', size: 1000, mtimeMs: 1_700_000_000_000 })).toBe(
      '"big-buck-bunny-3e8-18bcfe56800"',
    );
    expect(strongEtag({ id: 'a "b"%\u00e9', size: 1, mtimeMs: 2 })).toBe(
      '"a%20%22b%22%25%C3%A9-1-2"',
    );
  });

  it.each([
    { size: -1, mtimeMs: 0 },
    { size: 1.5, mtimeMs: 0 },
    { size: 1, mtimeMs: Number.NaN },
    { size: 1, mtimeMs: Number.POSITIVE_INFINITY },
  ])('refuses %j', (parts) => {
    expect(() => strongEtag(parts)).toThrow(RangeError);
  });

  const encoder = new TextEncoder();
  const decoder = new TextDecoder();

  it('always yields a strong tag that matches itself, and differs when an input does', () => {
    const parts = fc.record({
      // Well-formed strings only: UTF-8 has no form for a lone surrogate, so
      // TextEncoder turns every one into U+FFFD and such ids would collide.
      id: fc.option(
        fc.string({ unit: 'binary' }).filter((s) => decoder.decode(encoder.encode(s)) === s),
        { nil: undefined },
      ),
      size: fc.nat(),
      mtimeMs: fc.integer({ min: -1e13, max: 1e13 }),
    });
    fc.assert(
      fc.property(parts, parts, (a, b) => {
        const tag = strongEtag(a);
        const v: Validators = { etag: tag, lastModified: 0 };
        expect(rangeApplies(tag, v)).toBe(true);
        expect(evaluatePreconditions('PUT', { 'if-match': tag }, v)).toBe('proceed');
        const same = a.id === b.id && a.size === b.size && a.mtimeMs === b.mtimeMs;
        expect(strongEtag(b) === tag).toBe(same);
      }),
      { numRuns: 2000 },
    );
  });
});
