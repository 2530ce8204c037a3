import { describe, expect, it } from 'vitest';
import { MediaServerError } from '../errors.ts';
import { StblSamples, type StblTables } from './stbl-samples.ts';

interface Decoded {
  cts: number;
  duration: number;
  offset: number;
  seekOffset: number;
  sync: boolean;
}

function tables(overrides: Partial<StblTables>): StblTables {
  return {
    sampleCount: 4,
    constantSize: 10,
    sizes: new Uint32Array(0),
    chunkOffsets: Float64Array.of(100),
    firstChunk: Uint32Array.of(1),
    samplesPerChunk: Uint32Array.of(4),
    timeCounts: Uint32Array.of(4),
    timeDeltas: Uint32Array.of(512),
    compositionCounts: undefined,
    compositionOffsets: undefined,
    syncSamples: undefined,
    mediaDuration: 2048,
    ...overrides,
  };
}

function decode(t: StblTables, fileSize = 1_000_000): Decoded[] {
  const out: Decoded[] = [];
  new StblSamples(t, { trackId: 7, where: 'moov at offset 40', fileSize }).forEach(
    (cts, duration, offset, seekOffset, sync) => {
      out.push({ cts, duration, offset, seekOffset, sync });
    },
  );
  return out;
}

function refusal(t: StblTables, fileSize = 1_000_000): MediaServerError {
  try {
    new StblSamples(t, { trackId: 7, where: 'moov at offset 40', fileSize });
  } catch (error) {
    if (MediaServerError.isInstance(error)) return error;
    throw error;
  }
  throw new Error('the tables were accepted');
}

describe('StblSamples', () => {
  it('lays samples out in chunks by stsc runs, each after the sizes before it', () => {
    const t = tables({
      sampleCount: 7,
      constantSize: 0,
      sizes: Uint32Array.of(5, 6, 7, 8, 9, 10, 11),
      chunkOffsets: Float64Array.of(100, 200, 300, 400),
      // Chunks 1–2 hold 2 samples, chunk 3 holds 1, chunk 4 holds 2.
      firstChunk: Uint32Array.of(1, 3, 4),
      samplesPerChunk: Uint32Array.of(2, 1, 2),
      timeCounts: Uint32Array.of(7),
      mediaDuration: 7 * 512,
    });
    expect(decode(t).map((s) => s.offset)).toEqual([100, 105, 200, 207, 300, 400, 410]);
    expect(decode(t).map((s) => s.seekOffset)).toEqual([100, 105, 200, 207, 300, 400, 410]);
  });

  it('times samples by stts and ctts runs, skipping runs of zero samples', () => {
    const t = tables({
      timeCounts: Uint32Array.of(0, 2, 0, 2),
      timeDeltas: Uint32Array.of(999, 100, 999, 200),
      compositionCounts: Uint32Array.of(1, 0, 3),
      compositionOffsets: Int32Array.of(50, 999, -10),
      mediaDuration: 600,
    });
    const decoded = decode(t);
    expect(decoded.map((s) => s.cts)).toEqual([50, 90, 190, 390]);
    // The last sample lasts until the mdhd duration: 600 - 400.
    expect(decoded.map((s) => s.duration)).toEqual([100, 100, 200, 200]);
    expect(new StblSamples(t, { trackId: 7, where: 'moov', fileSize: 1e6 }).endDts).toBe(600);
  });

  it('gives the last sample no negative duration when the mdhd is shorter than the samples', () => {
    expect(decode(tables({ mediaDuration: 10 })).at(-1)!.duration).toBe(0);
  });

  it('marks the stss samples as sync, tolerating duplicate and out-of-order numbers', () => {
    expect(decode(tables({ syncSamples: Uint32Array.of(1, 3) })).map((s) => s.sync)).toEqual([
      true,
      false,
      true,
      false,
    ]);
    expect(decode(tables({ syncSamples: Uint32Array.of(2, 2, 1, 4) })).map((s) => s.sync)).toEqual([
      false,
      true,
      false,
      true,
    ]);
    expect(decode(tables({ syncSamples: new Uint32Array(0) })).some((s) => s.sync)).toBe(false);
    expect(decode(tables({})).every((s) => s.sync)).toBe(true);
  });

  it('refuses tables that leave samples without a chunk, a time or a composition offset', () => {
    expect(refusal(tables({ samplesPerChunk: Uint32Array.of(3) }))).toMatchObject({
      code: 'MEDIA_CORRUPT',
      message: expect.stringMatching(/Track 7 .*moov at offset 40.* 4 samples.*place only 3/),
    });
    expect(refusal(tables({ firstChunk: new Uint32Array(0) })).code).toBe('MEDIA_CORRUPT');
    expect(refusal(tables({ timeCounts: Uint32Array.of(3) })).message).toContain(
      'stts gives times for only 3',
    );
    expect(
      refusal(
        tables({ compositionCounts: Uint32Array.of(2), compositionOffsets: Int32Array.of(0) }),
      ).message,
    ).toContain('ctts gives offsets for only 2');
    expect(refusal(tables({ constantSize: 0, sizes: Uint32Array.of(1, 2) })).message).toContain(
      'sample sizes list only 2',
    );
  });

  it('ends, refusing, on chunks of zero samples however many the stsc claims', () => {
    const t = tables({
      chunkOffsets: new Float64Array(100_000),
      samplesPerChunk: Uint32Array.of(0),
    });
    expect(refusal(t).message).toContain('place only 0');
  });

  it('refuses a sample whose data runs past the end of the file, naming it', () => {
    expect(refusal(tables({}), 139)).toMatchObject({
      code: 'MEDIA_TRUNCATED',
      message:
        'Sample 4 of track 7 at offset 130 (10 bytes) ends past the end of the 139-byte file',
    });
    expect(decode(tables({}), 140)).toHaveLength(4);
  });
});
