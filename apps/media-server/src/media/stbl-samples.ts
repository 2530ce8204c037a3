import type { ISOFile } from 'mp4box';
import { MediaServerError } from '../errors.ts';
import type { SampleSource, SampleVisitor } from './samples.ts';

/**
 * A track's sample table as typed arrays, in the run-length form the `stbl`
 * boxes store it: a few bytes a sample (the `stsz` sizes, and for reordered
 * video about one `ctts` run per sample) instead of an object per sample.
 *
 * @example
 * ```ts
 * const tables: StblTables = {
 *   sampleCount: 2, constantSize: 0, sizes: Uint32Array.of(100, 20),
 *   chunkOffsets: Float64Array.of(48), firstChunk: Uint32Array.of(1), samplesPerChunk: Uint32Array.of(2),
 *   timeCounts: Uint32Array.of(2), timeDeltas: Uint32Array.of(512),
 *   compositionCounts: undefined, compositionOffsets: undefined, syncSamples: undefined,
 *   mediaDuration: 1024,
 * };
 * ```
 */
export interface StblTables {
  readonly sampleCount: number;
  /** Size of every sample (`stsz`), or 0 when `sizes` lists them one by one. */
  readonly constantSize: number;
  readonly sizes: Uint32Array;
  /** `stco`/`co64`: file offset of each chunk (32 or 64 bits, as the box stores them). */
  readonly chunkOffsets: Uint32Array | Float64Array;
  /** `stsc`: from `firstChunk[r]` (1-based) on, chunks hold `samplesPerChunk[r]` samples. */
  readonly firstChunk: Uint32Array;
  readonly samplesPerChunk: Uint32Array;
  /** `stts`: `timeCounts[r]` samples of `timeDeltas[r]` ticks each. */
  readonly timeCounts: Uint32Array;
  readonly timeDeltas: Uint32Array;
  /** `ctts`: `compositionCounts[r]` samples shown `compositionOffsets[r]` ticks after they decode. */
  readonly compositionCounts: Uint32Array | undefined;
  readonly compositionOffsets: Int32Array | undefined;
  /** `stss`: 1-based numbers of the sync samples; undefined when every sample is one. */
  readonly syncSamples: Uint32Array | undefined;
  /** `mdhd` duration, which sets the last sample's duration (as mp4box had it). */
  readonly mediaDuration: number;
}

/** mp4box does not export its box classes' types by name; this is its `stbl`. */
type StblBox = ISOFile['moov']['traks'][number]['mdia']['minf']['stbl'];

/**
 * Copies the sample tables of one track out of mp4box's parsed `stbl` into
 * typed arrays, and empties mp4box's per-entry arrays as it goes so the
 * copies never coexist with them for long. `moov` holds the bytes mp4box
 * parsed (it needs them for the `stz2` sample count, which mp4box does not
 * keep). Returns undefined for a track without samples.
 *
 * @example
 * ```ts
 * const tables = stblTables(trak.mdia.minf.stbl, trak.mdia.mdhd.duration, moovBytes);
 * ```
 */
export function stblTables(
  stbl: StblBox,
  mediaDuration: number,
  moov: Uint8Array,
): StblTables | undefined {
  const { stsz, stz2 } = stbl;
  let sampleCount: number;
  let constantSize = 0;
  let sizes: Uint32Array;
  if (stsz !== undefined) {
    sampleCount = stsz.sample_count ?? 0;
    constantSize = stsz.sample_size ?? 0;
    // A constant size leaves nothing to copy; mp4box filled the list with that size.
    sizes = constantSize === 0 ? new Uint32Array(stsz.sample_sizes) : new Uint32Array(0);
    stsz.sample_sizes = [];
  } else if (stz2 !== undefined) {
    // With 4-bit fields mp4box reads both nibbles of the last byte, so its list can be one
    // too long; the count is read from the box itself (mp4box sets `start` on every box).
    const view = new DataView(moov.buffer, moov.byteOffset, moov.byteLength);
    const headerSize = view.getUint32(stz2.start!) === 1 ? 16 : 8;
    sampleCount = view.getUint32(stz2.start! + headerSize + 8);
    sizes = new Uint32Array(stz2.sample_sizes.slice(0, sampleCount));
    stz2.sample_sizes = [];
  } else {
    return undefined;
  }
  if (sampleCount === 0) return undefined;
  const { stco, co64, stsc, stts, ctts, stss } = stbl;
  const tables: StblTables = {
    sampleCount,
    constantSize,
    sizes,
    // Each copy takes at most the bytes of the box it comes from, however many entries a crafted box lists.
    chunkOffsets:
      stco !== undefined
        ? new Uint32Array(stco.chunk_offsets)
        : new Float64Array(co64.chunk_offsets),
    firstChunk: new Uint32Array(stsc.first_chunk),
    samplesPerChunk: new Uint32Array(stsc.samples_per_chunk),
    timeCounts: new Uint32Array(stts.sample_counts),
    timeDeltas: new Uint32Array(stts.sample_deltas),
    compositionCounts: ctts === undefined ? undefined : new Uint32Array(ctts.sample_counts),
    compositionOffsets: ctts === undefined ? undefined : new Int32Array(ctts.sample_offsets),
    syncSamples: stss === undefined ? undefined : new Uint32Array(stss.sample_numbers),
    mediaDuration,
  };
  if (ctts !== undefined) {
    ctts.sample_counts = [];
    ctts.sample_offsets = [];
  }
  return tables;
}

/** What {@link StblSamples} walks with: a sample plus its size and number. */
type TableVisitor = (
  cts: number,
  duration: number,
  offset: number,
  size: number,
  sync: boolean,
  index: number,
) => void;

/**
 * The samples of a `moov` track, decoded from its {@link StblTables} each
 * time they are walked, in O(samples) time and without allocating. The walk
 * follows ISO/IEC 14496-12 §8.6–8.7: chunks from `stsc` and `stco`, offsets
 * within a chunk from the sizes before, decode times from `stts`, composition
 * offsets from `ctts`, sync samples from `stss` (all samples without one).
 * Runs of zero samples are skipped. The last sample lasts until the `mdhd`
 * duration, as mp4box's sample lists had it.
 *
 * Construction walks the tables once to check them: every sample must have
 * a chunk, a time and (with `ctts`) a composition offset, and its data must
 * lie within the file.
 *
 * @throws MediaServerError `MEDIA_CORRUPT` when the tables do not cover every
 * sample, `MEDIA_TRUNCATED` when a sample's data lies past the end of the file.
 *
 * @example
 * ```ts
 * const samples = new StblSamples(tables, { trackId: 1, where: 'moov at offset 28', fileSize });
 * samples.forEach((cts, duration, offset, seekOffset, sync) => {});
 * ```
 */
export class StblSamples implements SampleSource {
  readonly #tables: StblTables;
  readonly #trackId: number;
  readonly #where: string;
  /** Decode time right after the last sample: where fragments of the track go on from. */
  readonly endDts: number;

  constructor(
    tables: StblTables,
    context: { readonly trackId: number; readonly where: string; readonly fileSize: number },
  ) {
    this.#tables = tables;
    this.#trackId = context.trackId;
    this.#where = context.where;
    const { fileSize } = context;
    if (tables.constantSize === 0 && tables.sizes.length < tables.sampleCount) {
      throw this.#corrupt(
        `has ${tables.sampleCount} samples, but its sample sizes list only ${tables.sizes.length}`,
      );
    }
    this.endDts = this.#walk((_cts, _duration, offset, size, _sync, i) => {
      if (offset + size > fileSize) {
        throw new MediaServerError(
          'MEDIA_TRUNCATED',
          `Sample ${i + 1} of track ${this.#trackId} at offset ${offset} (${size} bytes) ends past the end of the ${fileSize}-byte file`,
        );
      }
    });
  }

  get length(): number {
    return this.#tables.sampleCount;
  }

  forEach(visit: SampleVisitor): void {
    // A moov sample is read from its own data, so its seek offset is its offset.
    this.#walk((cts, duration, offset, _size, sync) => visit(cts, duration, offset, offset, sync));
  }

  #corrupt(what: string): MediaServerError {
    return new MediaServerError(
      'MEDIA_CORRUPT',
      `Track ${this.#trackId} in the ${this.#where} ${what}`,
    );
  }

  /** Visits every sample in decode order; returns the decode time after the last. */
  #walk(visit: TableVisitor): number {
    const t = this.#tables;
    const n = t.sampleCount;
    const chunkCount = t.chunkOffsets.length;
    const stscCount = t.firstChunk.length;
    const timeRuns = t.timeCounts.length;
    const compositionRuns = t.compositionCounts?.length ?? 0;
    const syncCount = t.syncSamples?.length ?? 0;
    let stscRun = 0;
    let chunk = -1;
    let leftInChunk = 0;
    let offset = 0;
    let timeRun = -1;
    let leftInTimeRun = 0;
    let delta = 0;
    let compositionRun = -1;
    let leftInCompositionRun = 0;
    let compositionOffset = 0;
    let syncAt = 0;
    let dts = 0;
    for (let i = 0; i < n; i++) {
      // Loops over empty chunks and runs are bounded by the table lengths, so a zero count cannot spin.
      while (leftInChunk === 0) {
        chunk++;
        if (chunk >= chunkCount || stscCount === 0) {
          throw this.#corrupt(
            `has ${n} samples, but its stsc and chunk offsets (${stscCount} runs, ${chunkCount} chunks) place only ${i}`,
          );
        }
        while (stscRun + 1 < stscCount && chunk + 1 >= t.firstChunk[stscRun + 1]!) stscRun++;
        leftInChunk = t.samplesPerChunk[stscRun]!;
        offset = t.chunkOffsets[chunk]!;
      }
      while (leftInTimeRun === 0) {
        timeRun++;
        if (timeRun >= timeRuns)
          throw this.#corrupt(`has ${n} samples, but its stts gives times for only ${i}`);
        leftInTimeRun = t.timeCounts[timeRun]!;
        delta = t.timeDeltas[timeRun]!;
      }
      let cts = dts;
      if (t.compositionCounts !== undefined && t.compositionOffsets !== undefined) {
        while (leftInCompositionRun === 0) {
          compositionRun++;
          if (compositionRun >= compositionRuns)
            throw this.#corrupt(`has ${n} samples, but its ctts gives offsets for only ${i}`);
          leftInCompositionRun = t.compositionCounts[compositionRun]!;
          compositionOffset = t.compositionOffsets[compositionRun]!;
        }
        leftInCompositionRun--;
        cts += compositionOffset;
      }
      let sync = true;
      if (t.syncSamples !== undefined) {
        while (syncAt < syncCount && t.syncSamples[syncAt]! <= i) syncAt++;
        sync = syncAt < syncCount && t.syncSamples[syncAt] === i + 1;
      }
      const size = t.constantSize !== 0 ? t.constantSize : t.sizes[i]!;
      const duration = i === n - 1 ? Math.max(t.mediaDuration - dts, 0) : delta;
      visit(cts, duration, offset, size, sync, i);
      offset += size;
      leftInChunk--;
      leftInTimeRun--;
      dts += duration;
    }
    return dts;
  }
}
