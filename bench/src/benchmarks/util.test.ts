import { describe, expect, it } from 'vitest';
import { picker, rangeOffsets, seededRandom, segmentParts } from './util';

describe('seededRandom', () => {
  it('repeats for a seed and stays in [0, 1)', () => {
    const a = seededRandom(7);
    const b = seededRandom(7);
    const xs = Array.from({ length: 1000 }, () => a());
    expect(xs).toEqual(Array.from({ length: 1000 }, () => b()));
    expect(xs.every((x) => x >= 0 && x < 1)).toBe(true);
    expect(new Set(xs).size).toBeGreaterThan(990);
  });
});

describe('rangeOffsets', () => {
  const segment = 256;
  const total = 6 * segment;

  it('keeps ranges inside the space and makes every other one straddle an edge', () => {
    const length = 100;
    const offsets = rangeOffsets(seededRandom(1), 200, length, total, segment);
    expect(offsets).toHaveLength(200);
    offsets.forEach((offset, i) => {
      expect(offset).toBeGreaterThanOrEqual(0);
      expect(offset + length).toBeLessThanOrEqual(total);
      const straddles =
        Math.floor(offset / segment) !== Math.floor((offset + length - 1) / segment);
      if (i % 2 === 0) expect(straddles).toBe(true);
    });
  });
});

describe('segmentParts', () => {
  it('returns zero-copy pieces that cover the range exactly', () => {
    const segments = [0, 1, 2].map((k) => new Uint8Array(10).fill(k));
    const parts = segmentParts(segments, 10, 8, 14);
    expect(parts.map((p) => p.length)).toEqual([2, 10, 2]);
    expect(parts.map((p) => p[0])).toEqual([0, 1, 2]);
    expect(parts[0]?.buffer).toBe(segments[0]?.buffer);
    expect(segmentParts(segments, 10, 3, 4).map((p) => p.byteOffset)).toEqual([3]);
  });
});

describe('picker', () => {
  it('walks the list and wraps around, one cursor per picker', () => {
    const a = picker();
    const b = picker();
    const list = [1, 2];
    expect([a(list), a(list), a(list)]).toEqual([1, 2, 1]);
    expect(b(list)).toBe(1);
  });
});
