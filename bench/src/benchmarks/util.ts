import { randomFillSync } from 'node:crypto';

export const KiB = 2 ** 10;
export const MiB = 2 ** 20;
export const GiB = 2 ** 30;

/** A seeded PRNG (mulberry32) so offsets are the same in every run and in child processes. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** An integer in `[0, n)`. */
export function randomInt(random: () => number, n: number): number {
  return Math.floor(random() * n);
}

/** `n` bytes of random data. */
export function randomBytes(n: number): Uint8Array {
  return randomFillSync(new Uint8Array(n));
}

/**
 * Offsets of `length`-byte ranges in a space of `total` bytes cut into
 * `segment`-byte segments: every other range straddles a segment edge (the
 * adversarial case), the rest are uniform.
 */
export function rangeOffsets(
  random: () => number,
  count: number,
  length: number,
  total: number,
  segment: number,
): number[] {
  const edges = Math.floor((total - 1) / segment);
  const offsets: number[] = [];
  for (let i = 0; i < count; i++) {
    if (i % 2 === 0 && edges > 0 && length > 1) {
      const edge = (1 + randomInt(random, edges)) * segment;
      const offset = edge - 1 - randomInt(random, length - 1);
      offsets.push(Math.max(0, Math.min(offset, total - length)));
    } else {
      offsets.push(randomInt(random, total - length + 1));
    }
  }
  return offsets;
}

/** The pieces of `[offset, offset + length)` in fixed-size segments, as zero-copy subarrays. */
export function segmentParts(
  segments: readonly Uint8Array[],
  segmentSize: number,
  offset: number,
  length: number,
): Uint8Array[] {
  const parts: Uint8Array[] = [];
  let k = Math.floor(offset / segmentSize);
  let local = offset - k * segmentSize;
  let left = length;
  while (left > 0) {
    const seg = segments[k] as Uint8Array;
    const n = Math.min(left, seg.length - local);
    parts.push(seg.subarray(local, local + n));
    left -= n;
    k++;
    local = 0;
  }
  return parts;
}

/**
 * A cursor of one case over a list of inputs: each call takes the next item,
 * wrapping around, so every case walks the same sequence.
 */
export function picker(): <T>(list: readonly T[]) => T {
  let i = 0;
  return <T>(list: readonly T[]): T => {
    if (i >= list.length) i = 0;
    return list[i++] as T;
  };
}
