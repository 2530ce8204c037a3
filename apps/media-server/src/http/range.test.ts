import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  assertRangeWithin,
  type ByteRange,
  contentRange,
  parseRange,
  type RangeResult,
  unsatisfiedRange,
} from './range.ts';

const ranges = (...pairs: [number, number][]): RangeResult => ({
  type: 'ranges',
  ranges: pairs.map(([start, end]) => ({ start, end })),
});

describe('parseRange: RFC 9110 §14.1.2 examples on a 10000-byte representation', () => {
  it.each<[string, RangeResult]>([
    ['bytes=0-499', ranges([0, 499])],
    ['bytes=500-999', ranges([500, 999])],
    ['bytes=-500', ranges([9500, 9999])],
    ['bytes=9500-', ranges([9500, 9999])],
    ['bytes=0-0,-1', ranges([0, 0], [9999, 9999])],
    ['bytes= 0-999, 4500-5499, -1000', ranges([0, 999], [4500, 5499], [9000, 9999])],
    // The two non-canonical spellings of "the second 500 bytes" coalesce to it.
    ['bytes=500-600,601-999', ranges([500, 999])],
    ['bytes=500-700,601-999', ranges([500, 999])],
  ])('%s', (header, expected) => {
    expect(parseRange(header, 10_000)).toEqual(expected);
  });
});

describe('parseRange: accepted syntax', () => {
  it.each<[string, RangeResult]>([
    ['BYTES=0-1', ranges([0, 1])],
    ['Bytes=0-1', ranges([0, 1])],
    ['bYtEs=0-1', ranges([0, 1])],
    ['bytes=0-1 ,\t500-600', ranges([0, 1], [500, 600])],
    ['bytes=0-1,,500-600', ranges([0, 1], [500, 600])],
    ['bytes=,0-1', ranges([0, 1])],
    ['bytes=0-1,', ranges([0, 1])],
    ['bytes=, ,0-1, ,', ranges([0, 1])],
    ['  bytes=0-1\t', ranges([0, 1])],
    ['bytes=000-010', ranges([0, 10])],
    ['bytes=-0000500', ranges([9500, 9999])],
    ['bytes=0-9007199254740991', ranges([0, 9999])],
  ])('%j', (header, expected) => {
    expect(parseRange(header, 10_000)).toEqual(expected);
  });
});

describe('parseRange: satisfiable ranges are clamped', () => {
  it.each<[string, number, RangeResult]>([
    ['bytes=9000-20000', 10_000, ranges([9000, 9999])],
    ['bytes=-20000', 10_000, ranges([0, 9999])],
    ['bytes=-10000', 10_000, ranges([0, 9999])],
    ['bytes=9999-', 10_000, ranges([9999, 9999])],
    ['bytes=0-0', 1, ranges([0, 0])],
    ['bytes=-1', 1, ranges([0, 0])],
    ['bytes=0-', 1, ranges([0, 0])],
    // An unsatisfiable spec beside a satisfiable one is just dropped.
    ['bytes=20000-,0-9', 10_000, ranges([0, 9])],
    ['bytes=-0,0-9', 10_000, ranges([0, 9])],
  ])('%j of %i bytes', (header, size, expected) => {
    expect(parseRange(header, size)).toEqual(expected);
  });
});

describe('parseRange: coalescing and order', () => {
  it.each<[string, RangeResult]>([
    // A gap of exactly 80 bytes (10..89) merges; 81 does not.
    ['bytes=0-9,90-99', ranges([0, 99])],
    ['bytes=0-9,91-99', ranges([0, 9], [91, 99])],
    ['bytes=0-99,0-99', ranges([0, 99])],
    ['bytes=0-99,10-20', ranges([0, 99])],
    ['bytes=0-0,-1', ranges([0, 0], [9999, 9999])],
    // Parts keep the requested order (§14.6)…
    ['bytes=9000-9099,0-99', ranges([9000, 9099], [0, 99])],
    // …and a merged part stands where its earliest-listed member stood.
    ['bytes=9000-9099,0-99,50-150', ranges([9000, 9099], [0, 150])],
    ['bytes=50-150,9000-9099,0-99', ranges([0, 150], [9000, 9099])],
    ['bytes=5000-5099,-100,0-99,9800-9850', ranges([5000, 5099], [9800, 9999], [0, 99])],
  ])('%s', (header, expected) => {
    expect(parseRange(header, 10_000)).toEqual(expected);
  });

  it('takes the coalescing gap from the options', () => {
    expect(parseRange('bytes=0-9,20-29', 100, { coalesceGap: 9 })).toEqual(
      ranges([0, 9], [20, 29]),
    );
    expect(parseRange('bytes=0-9,20-29', 100, { coalesceGap: 10 })).toEqual(ranges([0, 29]));
    expect(parseRange('bytes=0-9,10-19', 100, { coalesceGap: 0 })).toEqual(ranges([0, 19]));
  });

  it('merges a small file requested at both ends into one range', () => {
    expect(parseRange('bytes=0-0,-1', 50)).toEqual(ranges([0, 49]));
  });
});

describe('parseRange: invalid headers are ignored', () => {
  it.each([
    'bytes=5-1',
    'bytes=abc',
    'bytes=',
    'bytes= ',
    'bytes=,',
    'bytes=-',
    'bytes=--1',
    'bytes=+1-2',
    'bytes=1-+2',
    'bytes=-+2',
    'bytes=1-2-3',
    'bytes=0x10-20',
    'bytes=1.5-2',
    'bytes=1e3-2000',
    'bytes=0 -1',
    'bytes=0- 1',
    'bytes=0-1;q=1',
    'bytes=0-1,x',
    'bytes=0-1,5-1',
    'bytes=٠-١',
    'bytes=０-１',
    'bytes 0-1',
    'bytes = 0-1',
    'bytes==0-1',
    'by tes=0-1',
    '"bytes"=0-1',
    '=0-1',
    '',
    ' ',
    '0-1',
    'bytes=0-9007199254740992',
    'bytes=9007199254740992-',
    'bytes=-9007199254740992',
    'bytes=0-99999999999999999999999999999999',
    `bytes=0-${'9'.repeat(400)}`,
  ])('%j', (header) => {
    expect(parseRange(header, 10_000)).toEqual({ type: 'ignore', reason: 'invalid' });
  });

  it('reports an absent header as such', () => {
    expect(parseRange(undefined, 10_000)).toEqual({ type: 'ignore', reason: 'absent' });
  });

  it.each(['items=0-1', 'pages=1-2', 'bytesx=0-1', 'none=', 'x=anything at all'])(
    'ignores the unknown unit in %j',
    (header) => {
      expect(parseRange(header, 10_000)).toEqual({ type: 'ignore', reason: 'unit' });
    },
  );

  it('refuses headers longer than maxHeaderLength, counting exactly', () => {
    const atLimit = `bytes=0-1${','.repeat(1024 - 9)}`;
    expect(atLimit).toHaveLength(1024);
    expect(parseRange(atLimit, 10_000)).toEqual(ranges([0, 1]));
    expect(parseRange(`${atLimit},`, 10_000)).toEqual({ type: 'ignore', reason: 'invalid' });
    expect(parseRange('bytes=0-1', 10_000, { maxHeaderLength: 8 })).toEqual({
      type: 'ignore',
      reason: 'invalid',
    });
    expect(parseRange('bytes=0-1', 10_000, { maxHeaderLength: 9 })).toEqual(ranges([0, 1]));
  });
});

describe('parseRange: too many ranges', () => {
  const specs = (n: number) =>
    Array.from({ length: n }, (_, i) => `${i * 200}-${i * 200 + 9}`).join(',');

  it('accepts maxRanges specs and refuses one more', () => {
    const sixteen = parseRange(`bytes=${specs(16)}`, 10_000);
    expect(sixteen.type === 'ranges' && sixteen.ranges.length).toBe(16);
    expect(parseRange(`bytes=${specs(17)}`, 10_000)).toEqual({
      type: 'ignore',
      reason: 'too-many',
    });
  });

  it('counts before coalescing, unsatisfiable specs included', () => {
    expect(parseRange('bytes=0-1,0-1,0-1', 10_000, { maxRanges: 2 })).toEqual({
      type: 'ignore',
      reason: 'too-many',
    });
    expect(parseRange('bytes=0-1,20000-,30000-', 10_000, { maxRanges: 2 })).toEqual({
      type: 'ignore',
      reason: 'too-many',
    });
    expect(parseRange('bytes=0-1,0-1', 10_000, { maxRanges: 2 })).toEqual(ranges([0, 1]));
  });

  it('does not count empty list elements', () => {
    expect(parseRange('bytes=0-1,,,,,', 10_000, { maxRanges: 1 })).toEqual(ranges([0, 1]));
  });

  it('reports a syntax error before a count', () => {
    expect(parseRange(`bytes=${specs(17)},oops`, 10_000)).toEqual({
      type: 'ignore',
      reason: 'invalid',
    });
  });
});

describe('parseRange: unsatisfiable (416)', () => {
  it.each<[string, number]>([
    ['bytes=10000-', 10_000],
    ['bytes=10000-10001', 10_000],
    ['bytes=10000-,20000-29999', 10_000],
    ['bytes=-0', 10_000],
    ['bytes=-0,10000-', 10_000],
    ['bytes=1-', 1],
    ['bytes=0-', 0],
    ['bytes=0-0', 0],
    ['bytes=-0', 0],
    ['bytes=0-,-0', 0],
  ])('%j of %i bytes', (header, size) => {
    expect(parseRange(header, size)).toEqual({ type: 'unsatisfiable' });
  });

  it('serves an empty representation whole when a suffix asks for its end', () => {
    expect(parseRange('bytes=-1', 0)).toEqual({ type: 'ignore', reason: 'empty' });
    expect(parseRange('bytes=0-,-5', 0)).toEqual({ type: 'ignore', reason: 'empty' });
  });

  it('still checks syntax, unit and count for an empty representation', () => {
    expect(parseRange('bytes=5-1', 0)).toEqual({ type: 'ignore', reason: 'invalid' });
    expect(parseRange('items=-1', 0)).toEqual({ type: 'ignore', reason: 'unit' });
    expect(parseRange('bytes=-1,-1', 0, { maxRanges: 1 })).toEqual({
      type: 'ignore',
      reason: 'too-many',
    });
  });
});

describe('parseRange: programming errors throw', () => {
  it.each([-1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, 2 ** 53])('size %d', (size) => {
    expect(() => parseRange('bytes=0-1', size)).toThrow(RangeError);
  });

  it('bad options', () => {
    expect(() => parseRange('bytes=0-1', 10, { maxRanges: 0 })).toThrow(RangeError);
    expect(() => parseRange('bytes=0-1', 10, { maxHeaderLength: -1 })).toThrow(RangeError);
    expect(() => parseRange('bytes=0-1', 10, { coalesceGap: 0.5 })).toThrow(RangeError);
  });
});

describe('contentRange and unsatisfiedRange', () => {
  it('formats the RFC 9110 §14.4 forms', () => {
    expect(contentRange({ start: 0, end: 99 }, 1000)).toBe('bytes 0-99/1000');
    expect(contentRange({ start: 999, end: 999 }, 1000)).toBe('bytes 999-999/1000');
    expect(unsatisfiedRange(1000)).toBe('bytes */1000');
    expect(unsatisfiedRange(0)).toBe('bytes */0');
  });

  it.each<[ByteRange, number]>([
    [{ start: 0, end: 1000 }, 1000],
    [{ start: 5, end: 4 }, 1000],
    [{ start: -1, end: 4 }, 1000],
    [{ start: 0.5, end: 4 }, 1000],
    [{ start: 0, end: 0 }, 0],
  ])('refuses %j of %i bytes', (range, size) => {
    expect(() => contentRange(range, size)).toThrow(RangeError);
    expect(() => assertRangeWithin(range, size)).toThrow(RangeError);
  });

  it('refuses an invalid size in unsatisfiedRange', () => {
    expect(() => unsatisfiedRange(-1)).toThrow(RangeError);
    expect(() => unsatisfiedRange(Number.NaN)).toThrow(RangeError);
  });
});

/** Ranges sorted by start: consecutive ones must be separated by more than `gap` bytes. */
function expectWellFormed(result: RangeResult, size: number, gap = 80): void {
  if (result.type !== 'ranges') return;
  expect(result.ranges.length).toBeGreaterThan(0);
  for (const { start, end } of result.ranges) {
    expect(Number.isSafeInteger(start) && Number.isSafeInteger(end)).toBe(true);
    expect(start).toBeGreaterThanOrEqual(0);
    expect(end).toBeGreaterThanOrEqual(start);
    expect(end).toBeLessThan(size);
  }
  const sorted = [...result.ranges].sort((a, b) => a.start - b.start);
  for (let i = 1; i < sorted.length; i++) {
    expect(sorted[i]!.start - (sorted[i - 1]!.end + 1)).toBeGreaterThan(gap);
  }
}

describe('parseRange: fuzzing', () => {
  const size = fc.oneof(fc.nat(20_000), fc.constantFrom(0, 1, 2, Number.MAX_SAFE_INTEGER));
  const rangeish = fc
    .array(
      fc.constantFrom(
        'bytes',
        'BYTES',
        'items',
        '=',
        '-',
        '-',
        ',',
        ',',
        ' ',
        '\t',
        '0',
        '1',
        '7',
        '99',
        '500',
        '10000',
        '9007199254740993',
        'x',
        '+',
        '"',
        '٣',
        '\u00a0',
      ),
      { maxLength: 40 },
    )
    .map((parts) => parts.join(''));
  const anyHeader = fc.oneof(
    fc.string(),
    fc.string({ unit: 'binary' }),
    rangeish,
    rangeish.map((s) => `bytes=${s}`),
  );

  it('never throws and returns only in-bounds, ordered, disjoint ranges', () => {
    fc.assert(
      fc.property(anyHeader, size, (header, n) => {
        const result = parseRange(header, n);
        expect(['ignore', 'unsatisfiable', 'ranges']).toContain(result.type);
        expectWellFormed(result, n);
      }),
      { numRuns: 3000 },
    );
  });

  type Spec = { kind: 'int'; first: number; last?: number } | { kind: 'suffix'; length: number };

  const spec: fc.Arbitrary<Spec> = fc.oneof(
    fc.record({ kind: fc.constant('int' as const), first: fc.nat(500) }),
    fc
      .tuple(fc.nat(500), fc.nat(300))
      .map(([first, extra]): Spec => ({ kind: 'int', first, last: first + extra })),
    fc.record({ kind: fc.constant('suffix' as const), length: fc.nat(500) }),
  );
  const ows = fc.constantFrom('', ' ', '\t', '  ', ' \t');
  const rendered = fc
    .record({
      unit: fc.constantFrom('bytes', 'BYTES', 'Bytes'),
      specs: fc.array(fc.tuple(spec, ows, ows, fc.boolean()), { minLength: 1, maxLength: 16 }),
      zeros: fc.boolean(),
    })
    .map(({ unit, specs, zeros }) => {
      const z = zeros ? '00' : '';
      const elements = specs.map(([s, before, after, emptyBefore]) => {
        const text =
          s.kind === 'suffix'
            ? `-${z}${s.length}`
            : `${z}${s.first}-${s.last === undefined ? '' : `${z}${s.last}`}`;
        return `${emptyBefore ? `${before},` : ''}${before}${text}${after}`;
      });
      return { header: `${unit}=${elements.join(',')}`, specs: specs.map(([s]) => s) };
    });

  /**
   * The reference: mark each byte with the earliest spec that selects it,
   * bridge unmarked gaps of at most 80 bytes, and order the resulting runs
   * by their earliest spec.
   */
  function model(specs: readonly Spec[], size: number): RangeResult {
    if (size === 0) {
      return specs.some((s) => s.kind === 'suffix' && s.length > 0)
        ? { type: 'ignore', reason: 'empty' }
        : { type: 'unsatisfiable' };
    }
    const owner = new Array<number>(size).fill(Number.POSITIVE_INFINITY);
    specs.forEach((s, index) => {
      const from = s.kind === 'suffix' ? (s.length === 0 ? size : size - s.length) : s.first;
      const to = s.kind === 'suffix' ? size - 1 : (s.last ?? size - 1);
      for (let b = Math.max(0, from); b <= Math.min(to, size - 1); b++) {
        owner[b] = Math.min(owner[b]!, index);
      }
    });
    const runs: { start: number; end: number; first: number }[] = [];
    for (let b = 0; b < size; b++) {
      if (owner[b] === Number.POSITIVE_INFINITY) continue;
      const last = runs[runs.length - 1];
      if (last !== undefined && b - last.end - 1 <= 80) {
        last.end = b;
        last.first = Math.min(last.first, owner[b]!);
      } else {
        runs.push({ start: b, end: b, first: owner[b]! });
      }
    }
    if (runs.length === 0) return { type: 'unsatisfiable' };
    runs.sort((a, b) => a.first - b.first);
    return { type: 'ranges', ranges: runs.map(({ start, end }) => ({ start, end })) };
  }

  it('agrees with a byte-by-byte reference model on valid specs', () => {
    fc.assert(
      fc.property(rendered, fc.nat(700), ({ header, specs }, size) => {
        expect(parseRange(header, size)).toEqual(model(specs, size));
      }),
      { numRuns: 2000 },
    );
  });

  it('sorts the parts whenever the request listed them in ascending order', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.nat(5000), fc.nat(500)), { minLength: 1, maxLength: 16 }),
        (pairs) => {
          const sorted = [...pairs].sort((a, b) => a[0] - b[0]);
          const header = `bytes=${sorted.map(([first, extra]) => `${first}-${first + extra}`).join(',')}`;
          const result = parseRange(header, 6000);
          if (result.type !== 'ranges') throw new Error(`expected ranges, got ${result.type}`);
          const starts = result.ranges.map((r) => r.start);
          expect(starts).toEqual([...starts].sort((a, b) => a - b));
        },
      ),
    );
  });

  it('refuses any set with more specs than maxRanges', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 20 }), fc.integer({ min: 0, max: 10 }), (max, over) => {
        const header = `bytes=${Array.from({ length: max + 1 + over }, () => '0-0').join(',')}`;
        expect(parseRange(header, 10, { maxRanges: max, maxHeaderLength: 1000 })).toEqual({
          type: 'ignore',
          reason: 'too-many',
        });
      }),
    );
  });
});
