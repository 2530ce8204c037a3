import { MediaServerError } from '../errors.ts';
import { childBoxes } from './boxes.ts';
import type { MovieTrack } from './movie.ts';
import type { SampleBudget } from './samples.ts';

// tfhd flags (ISO/IEC 14496-12 §8.8.7)
const TFHD_BASE_DATA_OFFSET = 0x1;
const TFHD_SAMPLE_DESCRIPTION_INDEX = 0x2;
const TFHD_DEFAULT_DURATION = 0x8;
const TFHD_DEFAULT_SIZE = 0x10;
const TFHD_DEFAULT_FLAGS = 0x20;
const TFHD_DURATION_IS_EMPTY = 0x10000;
const TFHD_DEFAULT_BASE_IS_MOOF = 0x20000;
// trun flags (§8.8.8)
const TRUN_DATA_OFFSET = 0x1;
const TRUN_FIRST_SAMPLE_FLAGS = 0x4;
const TRUN_DURATION = 0x100;
const TRUN_SIZE = 0x200;
const TRUN_FLAGS = 0x400;
const TRUN_CTS_OFFSET = 0x800;
/** `sample_is_non_sync_sample` in the sample flags (§8.8.3.1). */
const NON_SYNC = 0x10000;

/** One `trun` with its per-sample columns (absent columns fall back on defaults). */
interface TrackRun {
  readonly sampleCount: number;
  readonly dataOffset: number | undefined;
  readonly firstSampleFlags: number | undefined;
  readonly durations: Uint32Array | undefined;
  readonly sizes: Uint32Array | undefined;
  readonly flags: Uint32Array | undefined;
  readonly ctsOffsets: Int32Array | undefined;
}

/** One `traf`: its `tfhd`, `tfdt` and runs. */
interface TrackFragment {
  readonly trackId: number;
  readonly tfhdFlags: number;
  readonly baseDataOffset: number | undefined;
  readonly defaultDuration: number | undefined;
  readonly defaultSize: number | undefined;
  readonly defaultFlags: number | undefined;
  readonly baseMediaDecodeTime: number | undefined;
  readonly runs: readonly TrackRun[];
}

class FieldReader {
  readonly #view: DataView;
  readonly #end: number;
  readonly #where: string;
  at: number;

  constructor(bytes: Uint8Array, from: number, to: number, where: string) {
    this.#view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.at = from;
    this.#end = to;
    this.#where = where;
  }

  get left(): number {
    return this.#end - this.at;
  }

  need(bytes: number, what: string): void {
    if (this.left < bytes) {
      throw new MediaServerError(
        'MEDIA_CORRUPT',
        `The ${this.#where} ends before its ${what}: ${bytes} bytes needed, ${this.left} left`,
      );
    }
  }

  u8(): number {
    this.need(1, 'fields');
    return this.#view.getUint8(this.at++);
  }

  u32(what = 'fields'): number {
    this.need(4, what);
    const value = this.#view.getUint32(this.at);
    this.at += 4;
    return value;
  }

  u64(what: string): number {
    this.need(8, what);
    const value = this.#view.getBigUint64(this.at);
    this.at += 8;
    if (value > BigInt(Number.MAX_SAFE_INTEGER)) {
      throw new MediaServerError(
        'MEDIA_CORRUPT',
        `The ${this.#where} has a ${what} of ${value}, beyond any real file or timeline`,
      );
    }
    return Number(value);
  }

  /** Reads `count` big-endian 32-bit values spaced `stride` bytes apart, starting `skip` bytes in. */
  column(count: number, stride: number, skip: number, signed: boolean): Uint32Array | Int32Array {
    const column = signed ? new Int32Array(count) : new Uint32Array(count);
    for (let i = 0; i < count; i++) {
      const at = this.at + i * stride + skip;
      column[i] = signed ? this.#view.getInt32(at) : this.#view.getUint32(at);
    }
    return column;
  }
}

function parseTfhd(reader: FieldReader): Omit<TrackFragment, 'baseMediaDecodeTime' | 'runs'> {
  const flags = reader.u32('version and flags') & 0xffffff;
  const trackId = reader.u32('track ID');
  const baseDataOffset = flags & TFHD_BASE_DATA_OFFSET ? reader.u64('base data offset') : undefined;
  if (flags & TFHD_SAMPLE_DESCRIPTION_INDEX) reader.u32();
  return {
    trackId,
    tfhdFlags: flags,
    baseDataOffset,
    defaultDuration:
      flags & TFHD_DEFAULT_DURATION ? reader.u32('default sample duration') : undefined,
    defaultSize: flags & TFHD_DEFAULT_SIZE ? reader.u32('default sample size') : undefined,
    defaultFlags: flags & TFHD_DEFAULT_FLAGS ? reader.u32('default sample flags') : undefined,
  };
}

function parseTrun(reader: FieldReader, where: string, budget: SampleBudget): TrackRun {
  const flags = reader.u32('version and flags') & 0xffffff;
  const sampleCount = reader.u32('sample count');
  const dataOffset = flags & TRUN_DATA_OFFSET ? reader.u32('data offset') | 0 : undefined;
  const firstSampleFlags =
    flags & TRUN_FIRST_SAMPLE_FLAGS ? reader.u32('first sample flags') : undefined;
  const fields = [TRUN_DURATION, TRUN_SIZE, TRUN_FLAGS, TRUN_CTS_OFFSET].filter((f) => flags & f);
  const stride = fields.length * 4;
  if (stride > 0 && sampleCount * stride > reader.left) {
    throw new MediaServerError(
      'MEDIA_CORRUPT',
      `The ${where} lists ${sampleCount} samples of ${stride} bytes but has only ${reader.left} bytes for them`,
    );
  }
  // Counted before the columns are allocated: a run without columns can claim any count.
  budget.take(sampleCount, `The ${where}`);
  let skip = 0;
  const column = (flag: number, signed: boolean) => {
    if (!(flags & flag)) return undefined;
    const values = reader.column(sampleCount, stride, skip, signed);
    skip += 4;
    return values;
  };
  const durations = column(TRUN_DURATION, false) as Uint32Array | undefined;
  const sizes = column(TRUN_SIZE, false) as Uint32Array | undefined;
  const sampleFlags = column(TRUN_FLAGS, false) as Uint32Array | undefined;
  // Version 0 offsets are unsigned by the letter of the spec, but writers put
  // negative ones there too and FFmpeg reads them signed; so does this.
  const ctsOffsets = column(TRUN_CTS_OFFSET, true) as Int32Array | undefined;
  reader.at += sampleCount * stride;
  return {
    sampleCount,
    dataOffset,
    firstSampleFlags,
    durations,
    sizes,
    flags: sampleFlags,
    ctsOffsets,
  };
}

function parseTraf(
  moof: Uint8Array,
  from: number,
  to: number,
  where: string,
  moofStart: number,
  budget: SampleBudget,
): TrackFragment {
  let header: Omit<TrackFragment, 'baseMediaDecodeTime' | 'runs'> | undefined;
  let baseMediaDecodeTime: number | undefined;
  const runs: TrackRun[] = [];
  for (const box of childBoxes(moof, from, to, where, moofStart)) {
    const boxWhere = `${box.type} at offset ${moofStart + box.start}`;
    const reader = new FieldReader(
      moof,
      box.start + box.headerSize,
      box.start + box.size,
      boxWhere,
    );
    if (box.type === 'tfhd') {
      if (header !== undefined)
        throw new MediaServerError(
          'MEDIA_CORRUPT',
          `The ${where} has a second tfhd at offset ${moofStart + box.start}`,
        );
      header = parseTfhd(reader);
    } else if (box.type === 'tfdt') {
      const version = reader.u8();
      reader.at += 3;
      baseMediaDecodeTime =
        version === 1 ? reader.u64('base media decode time') : reader.u32('base media decode time');
    } else if (box.type === 'trun') {
      runs.push(parseTrun(reader, boxWhere, budget));
    }
  }
  if (header === undefined)
    throw new MediaServerError(
      'MEDIA_CORRUPT',
      `The ${where} has no tfhd to say which track it belongs to`,
    );
  return { ...header, baseMediaDecodeTime, runs };
}

/**
 * Adds the samples of one `moof` box (read whole, at `moofStart`) to the
 * tracks of the movie. Every sample's `seekOffset` is `moofStart`: a reader
 * needs the `moof` to find the sample. `tfdt` sets each track fragment's
 * decode time, as FFmpeg reads it; without one, the track continues from its
 * previous sample. Data offsets follow §8.8.7: an explicit base offset, else
 * the `moof` (always for the first track fragment or with default-base-is-moof),
 * else the end of the previous track fragment's data.
 *
 * This is parsed here rather than by mp4box, which ignores `tfdt` after a
 * track's first fragment (so a gap in a stream would shift every later time)
 * and loops over a `trun`'s sample count without bounds.
 *
 * @throws MediaServerError `MEDIA_CORRUPT` for a fragment of an unknown track or
 * a box whose fields run past its end, `MEDIA_TRUNCATED` for a sample whose data
 * lies past the end of the file, `MEDIA_UNSUPPORTED` past the sample budget.
 *
 * @example
 * ```ts
 * const tracks = new Map(movie.tracks.map((t) => [t.info.id, t]));
 * readFragment(moofBytes, moofStart, fileSize, tracks, budget);
 * ```
 */
export function readFragment(
  moof: Uint8Array,
  moofStart: number,
  fileSize: number,
  tracks: ReadonlyMap<number, MovieTrack>,
  budget: SampleBudget,
): void {
  const where = `moof at offset ${moofStart}`;
  const headerSize =
    moof.length >= 8 && new DataView(moof.buffer, moof.byteOffset).getUint32(0) === 1 ? 16 : 8;
  let previousDataEnd: number | undefined;
  for (const box of childBoxes(moof, headerSize, moof.length, where, moofStart)) {
    if (box.type !== 'traf') continue;
    const trafWhere = `traf at offset ${moofStart + box.start}`;
    const traf = parseTraf(
      moof,
      box.start + box.headerSize,
      box.start + box.size,
      trafWhere,
      moofStart,
      budget,
    );
    const track = tracks.get(traf.trackId);
    if (track === undefined) {
      throw new MediaServerError(
        'MEDIA_CORRUPT',
        `The ${trafWhere} belongs to track ${traf.trackId}, which the moov does not have (tracks: ${[...tracks.keys()].join(', ')})`,
      );
    }
    if (traf.tfhdFlags & TFHD_DURATION_IS_EMPTY) continue;
    const defaults = track.fragmentDefaults;
    const defaultDuration = traf.defaultDuration ?? defaults?.duration ?? 0;
    const defaultSize = traf.defaultSize ?? defaults?.size ?? 0;
    const defaultFlags = traf.defaultFlags ?? defaults?.flags ?? 0;
    const base =
      traf.baseDataOffset ??
      (traf.tfhdFlags & TFHD_DEFAULT_BASE_IS_MOOF || previousDataEnd === undefined
        ? moofStart
        : previousDataEnd);
    const table = track.samples;
    let dts = traf.baseMediaDecodeTime ?? table.nextDts;
    let cursor = base;
    for (const run of traf.runs) {
      if (run.dataOffset !== undefined) cursor = base + run.dataOffset;
      for (let k = 0; k < run.sampleCount; k++) {
        const flags =
          run.flags?.[k] ??
          (k === 0 && run.firstSampleFlags !== undefined ? run.firstSampleFlags : defaultFlags);
        const duration = run.durations?.[k] ?? defaultDuration;
        const size = run.sizes?.[k] ?? defaultSize;
        if (cursor < 0 || cursor + size > fileSize) {
          throw new MediaServerError(
            cursor < 0 ? 'MEDIA_CORRUPT' : 'MEDIA_TRUNCATED',
            `Sample ${table.length + 1} of track ${traf.trackId} in the ${where} has its ${size} bytes at offset ${cursor}, outside the ${fileSize}-byte file`,
          );
        }
        table.push(
          dts + (run.ctsOffsets?.[k] ?? 0),
          duration,
          cursor,
          moofStart,
          (flags & NON_SYNC) === 0,
        );
        cursor += size;
        dts += duration;
      }
    }
    table.nextDts = dts;
    previousDataEnd = cursor;
  }
}
