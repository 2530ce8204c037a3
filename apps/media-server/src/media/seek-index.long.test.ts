import { beforeAll, describe, expect, it } from 'vitest';
import { type LongMovie, longMovie } from '../../test/media-fixtures.ts';
import { buildSeekIndex, DEFAULT_MAX_SAMPLES, type SeekIndex } from './seek-index.ts';

const SIX_HOURS = 6 * 3600;

/**
 * Where a reader must start to play from second `k` of a {@link longMovie},
 * worked out from how it was written rather than from its tables: the
 * keyframe opens video chunk k, and the audio sample playing at k (the last
 * whose time, priming removed, is at or before k) may lie before it.
 */
function expectedSeekOffset(movie: LongMovie, k: number): number {
  const perSecond = movie.audioTimescale / 1024;
  const audio = Math.floor(k * perSecond) + movie.audioMediaTime / 1024;
  let chunk = k + 1;
  while (movie.audioChunkFirst[chunk]! > audio) chunk--;
  let offset = movie.audioChunkOffsets[chunk]!;
  for (let j = movie.audioChunkFirst[chunk]!; j < audio; j++) offset += movie.audioSize(j);
  return Math.min(offset, movie.videoChunkOffsets[k]!);
}

describe('buildSeekIndex on a 6-hour film at 60 fps with 48 kHz audio', () => {
  let movie: LongMovie;
  let index: SeekIndex;
  beforeAll(async () => {
    movie = longMovie({ seconds: SIX_HOURS, fps: 60, gop: 60 });
    index = await buildSeekIndex(movie.readAt, movie.size);
  }, 60_000);

  it('has over 2 million samples, within the default limit', () => {
    const samples = movie.videoSamples + movie.audioSamples;
    expect(samples).toBe(2_308_500);
    expect(samples).toBeLessThanOrEqual(DEFAULT_MAX_SAMPLES);
  });

  it('reports its duration, frame rate and tracks', () => {
    expect(index.duration).toBe(SIX_HOURS);
    expect(index.frameRate).toBe(60);
    expect(index.fragmented).toBe(false);
    expect(index.tracks).toEqual([
      { id: 1, kind: 'video', codec: 'avc1.64001f', timescale: 15360 },
      { id: 2, kind: 'audio', codec: 'mp4a', timescale: 48000 },
    ]);
  });

  it('lists a keyframe every second, at the start of its video chunk', () => {
    expect(index.keyframes).toHaveLength(SIX_HOURS);
    for (const [k, keyframe] of index.keyframes.entries()) {
      if (keyframe.time !== k || keyframe.byteOffset !== movie.videoChunkOffsets[k]) {
        expect(keyframe).toEqual({ time: k, byteOffset: movie.videoChunkOffsets[k] });
      }
    }
  });

  it('starts every keyframe at the audio playing then, which was written before it', () => {
    let earlier = 0;
    for (const [k, keyframe] of index.keyframes.entries()) {
      const expected = expectedSeekOffset(movie, k);
      if (keyframe.seekOffset !== expected)
        expect({ k, seekOffset: keyframe.seekOffset }).toEqual({ k, seekOffset: expected });
      if (keyframe.seekOffset < keyframe.byteOffset) earlier++;
    }
    expect(earlier).toBeGreaterThan(SIX_HOURS / 2);
  });

  it('seeks to the latest keyframe at or before the time asked', () => {
    const cases = [
      { t: 0, k: 0 },
      { t: 0.999, k: 0 },
      { t: 3600, k: 3600 },
      { t: 4154.93, k: 4154 },
      { t: SIX_HOURS - 0.01, k: SIX_HOURS - 1 },
      { t: SIX_HOURS, k: SIX_HOURS - 1 },
    ];
    for (const { t, k } of cases) {
      expect(index.seek(t)).toEqual({
        requestedTime: t,
        keyframeTime: k,
        byteOffset: expectedSeekOffset(movie, k),
      });
    }
    expect(() => index.seek(SIX_HOURS + 1)).toThrow(
      expect.objectContaining({ code: 'TIME_OUT_OF_RANGE' }),
    );
  });

  it('refuses it under a lower sample limit', async () => {
    await expect(
      buildSeekIndex(movie.readAt, movie.size, { maxSamples: 2_000_000 }),
    ).rejects.toMatchObject({
      code: 'MEDIA_UNSUPPORTED',
      message: expect.stringContaining('limit of 2000000 samples'),
    });
  });
});

describe('buildSeekIndex on the other sample-table boxes', () => {
  it('reads 8-bit stz2 sizes and 64-bit co64 offsets as it reads stsz and stco', async () => {
    const shape = { seconds: 120, fps: 30, gop: 30 };
    const plain = longMovie(shape);
    const expected = await buildSeekIndex(plain.readAt, plain.size);
    for (const variant of [{ compactSizes: true }, { largeOffsets: true }]) {
      const movie = longMovie({ ...shape, ...variant });
      expect(movie.moovSize).not.toBe(plain.moovSize);
      const index = await buildSeekIndex(movie.readAt, movie.size);
      // The moov sits after the mdat, so every offset is the same in both files.
      expect(index.keyframes).toEqual(expected.keyframes);
      expect(index.duration).toBe(expected.duration);
    }
    expect(expected.keyframes).toHaveLength(120);
  });
});
