import {
  AudioSampleEntry,
  createFile,
  HintSampleEntry,
  type ISOFile,
  Log,
  MetadataSampleEntry,
  MP4BoxBuffer,
  MultiBufferStream,
  SubtitleSampleEntry,
  VisualSampleEntry,
} from 'mp4box';
import { MediaServerError } from '../errors.ts';
import { childBoxes } from './boxes.ts';
import { type SampleBudget, TrackSamples } from './samples.ts';
import { StblSamples, stblTables } from './stbl-samples.ts';

/**
 * What a track carries, as the movie's handler says.
 *
 * @example
 * ```ts
 * const kind: TrackKind = 'video';
 * ```
 */
export type TrackKind = 'video' | 'audio' | 'subtitles' | 'metadata' | 'other';

/**
 * One track of a video: its id, what it carries, its codec string (as for
 * MSE, e.g. `avc1.64001f`, `mp4a.40.2`) and its timescale in ticks per second.
 *
 * @example
 * ```ts
 * const track: TrackInfo = { id: 1, kind: 'video', codec: 'avc1.64000c', timescale: 12800 };
 * ```
 */
export interface TrackInfo {
  readonly id: number;
  readonly kind: TrackKind;
  readonly codec: string;
  readonly timescale: number;
}

/**
 * Defaults a track's fragments fall back on (`trex`), used where a `tfhd` or
 * `trun` leaves a field out.
 *
 * @example
 * ```ts
 * const defaults: FragmentDefaults = { duration: 512, size: 0, flags: 0x1010000 };
 * ```
 */
export interface FragmentDefaults {
  readonly duration: number;
  readonly size: number;
  readonly flags: number;
}

/**
 * A track of the movie with its samples. Presentation time in seconds of a
 * sample is `(cts - mediaTime) / timescale + emptyEditSeconds`: the edit list's
 * leading empty edits delay the track, its first media edit names the media
 * time shown first (how encoders hide B-frame delay and AAC priming).
 *
 * @example
 * ```ts
 * const seconds = (track: MovieTrack, cts: number) =>
 *   (cts - track.mediaTime) / track.info.timescale + track.emptyEditSeconds;
 * track.samples.forEach((cts) => console.log(seconds(track, cts)));
 * ```
 */
export interface MovieTrack {
  readonly info: TrackInfo;
  readonly mediaTime: number;
  readonly emptyEditSeconds: number;
  readonly samples: TrackSamples;
  readonly fragmentDefaults: FragmentDefaults | undefined;
}

/**
 * The `moov` as the seek index sees it: tracks with their sample tables,
 * the movie header's duration (undefined when it says 0, as fragmented files
 * do) and whether the movie announces fragments (`mvex`).
 *
 * @example
 * ```ts
 * const movie = readMovie(moovBytes, 28, fileSize, new SampleBudget(2_000_000));
 * movie.tracks.map((t) => t.info.codec); // ['avc1.64000c', 'mp4a.40.2']
 * ```
 */
export interface Movie {
  readonly durationSeconds: number | undefined;
  readonly hasFragments: boolean;
  readonly tracks: readonly MovieTrack[];
}

/** Path from `moov` to the sample size tables, the one place mp4box trusts a count blindly. */
const STBL_PATH = ['trak', 'mdia', 'minf', 'stbl'] as const;

/**
 * Checks every `stsz`/`stz2` sample count before mp4box sees the `moov`:
 * even parsing boxes alone, mp4box fills a constant-size `stsz` with
 * `sample_count` entries without reading anything, so one corrupt count
 * would exhaust memory and crash the process, which no try/catch can stop.
 * (Its other tables read every entry they list, so the `moov`'s own size
 * bounds them.)
 */
function checkSampleCounts(
  moov: Uint8Array,
  moovStart: number,
  fileSize: number,
  budget: SampleBudget,
): void {
  const view = new DataView(moov.buffer, moov.byteOffset, moov.byteLength);
  let trakIndex = 0;
  const walk = (from: number, to: number, depth: number, where: string): void => {
    for (const child of childBoxes(moov, from, to, where, moovStart)) {
      const payload = child.start + child.headerSize;
      const end = child.start + child.size;
      const expected = STBL_PATH[depth];
      if (depth === 0 && child.type === 'trak') trakIndex++;
      const here = `${where} > ${child.type}${depth === 0 ? ` #${trakIndex}` : ''}`;
      if (expected !== undefined && child.type === expected) {
        walk(payload, end, depth + 1, here);
      } else if (depth === STBL_PATH.length && (child.type === 'stsz' || child.type === 'stz2')) {
        checkSizeTable(view, child.type, payload, end, here, moovStart, fileSize, budget);
      }
    }
  };
  walk(8, moov.length, 0, `moov at offset ${moovStart}`);
}

function checkSizeTable(
  view: DataView,
  type: 'stsz' | 'stz2',
  payload: number,
  end: number,
  where: string,
  moovStart: number,
  fileSize: number,
  budget: SampleBudget,
): void {
  const corrupt = (what: string) =>
    new MediaServerError('MEDIA_CORRUPT', `The ${where} at offset ${moovStart + payload} ${what}`);
  if (end - payload < 12)
    throw corrupt(`has ${end - payload} bytes, too few for its 12-byte header`);
  const count = view.getUint32(payload + 8);
  const room = end - payload - 12;
  if (type === 'stsz') {
    const constantSize = view.getUint32(payload + 4);
    if (constantSize === 0 && count * 4 > room) {
      throw corrupt(`lists ${count} sample sizes but has room for only ${Math.floor(room / 4)}`);
    }
    if (constantSize !== 0 && constantSize * count > fileSize) {
      throw corrupt(
        `declares ${count} samples of ${constantSize} bytes, more data than the ${fileSize}-byte file holds`,
      );
    }
  } else {
    const fieldBits = view.getUint8(payload + 7);
    if (fieldBits !== 4 && fieldBits !== 8 && fieldBits !== 16)
      throw corrupt(`has a field size of ${fieldBits} bits; only 4, 8 and 16 exist`);
    if (Math.ceil((count * fieldBits) / 8) > room) {
      throw corrupt(
        `lists ${count} sample sizes but has room for only ${Math.floor((room * 8) / fieldBits)}`,
      );
    }
  }
  budget.take(count, `The ${where}`);
}

/** mp4box does not export its box classes' types by name; this is its `trak`. */
type TrakBox = ISOFile['moov']['traks'][number];

type LogMethods = Pick<typeof Log, 'debug' | 'info' | 'warn' | 'error'>;

/**
 * Runs mp4box with its console logging silenced and its errors collected.
 * mp4box's log level cannot go below "error" and it prints errors to the
 * console, so the methods are swapped for the synchronous call and put back.
 */
function quietly<T>(run: (errors: string[]) => T): T {
  const errors: string[] = [];
  const saved: LogMethods = { debug: Log.debug, info: Log.info, warn: Log.warn, error: Log.error };
  Log.debug = () => {};
  Log.info = () => {};
  Log.warn = () => {};
  Log.error = (module: string, message?: string) => {
    errors.push(`${module}: ${message ?? ''}`);
  };
  try {
    return run(errors);
  } finally {
    Object.assign(Log, saved);
  }
}

/**
 * Kind and codec the way mp4box's `getInfo()` tells them, from the first
 * sample entry; `getInfo()` itself needs an `ftyp`, which old QuickTime
 * files lack and which the index does not read.
 */
function describe(trak: TrakBox): { kind: TrackKind; codec: string } {
  const entry: unknown = trak.mdia.minf.stbl.stsd?.entries?.[0];
  const codec = (entry as { getCodec?: () => string } | undefined)?.getCodec?.() ?? 'unknown';
  if (entry instanceof VisualSampleEntry) return { kind: 'video', codec };
  if (entry instanceof AudioSampleEntry) return { kind: 'audio', codec };
  if (entry instanceof SubtitleSampleEntry) return { kind: 'subtitles', codec };
  if (entry instanceof MetadataSampleEntry || entry instanceof HintSampleEntry)
    return { kind: 'metadata', codec };
  return { kind: 'other', codec };
}

/** Boxes that hold tags, titles and vendor data: nothing a seek index reads. */
const USER_DATA = new Set(['udta', 'meta']);
const FREE = [0x66, 0x72, 0x65, 0x65]; // 'free'

/**
 * Retypes `udta` and `meta` boxes of the moov and its tracks as `free`, in
 * place, so mp4box skips them. QuickTime and phone recordings put Apple
 * `©xyz` tags there, which mp4box refuses as invalid box types; a file whose
 * sample tables are fine must not be rejected over its tags.
 */
function hideUserData(moov: Uint8Array, moovStart: number): void {
  const where = `moov at offset ${moovStart}`;
  for (const child of childBoxes(moov, 8, moov.length, where, moovStart)) {
    if (USER_DATA.has(child.type)) moov.set(FREE, child.start + 4);
    if (child.type !== 'trak') continue;
    const end = child.start + child.size;
    for (const inner of childBoxes(
      moov,
      child.start + child.headerSize,
      end,
      `${where} > trak`,
      moovStart,
    )) {
      if (USER_DATA.has(inner.type)) moov.set(FREE, inner.start + 4);
    }
  }
}

/** Containers whose every child the index may read (tables, edit lists, fragment defaults), by parent. */
const INDEXED_CONTAINERS: Record<string, readonly string[]> = {
  moov: ['trak', 'mvex'],
  trak: ['mdia', 'edts'],
  mdia: ['minf'],
  minf: ['stbl'],
};

/**
 * True when mp4box parsed every child of the moov and of the containers
 * below it that the index reads ({@link INDEXED_CONTAINERS}).
 */
function tablesComplete(file: ISOFile, moov: Uint8Array, moovStart: number): boolean {
  const where = `moov at offset ${moovStart}`;
  const check = (type: string, from: number, to: number, parsed: unknown): boolean => {
    const raw = [...childBoxes(moov, from, to, where, moovStart)];
    const boxes = (parsed as { boxes?: unknown[] } | undefined)?.boxes ?? [];
    if (raw.length !== boxes.length) return false;
    const inner = INDEXED_CONTAINERS[type] ?? [];
    return raw.every((child, i) => {
      if (!inner.includes(child.type)) return true;
      return check(child.type, child.start + child.headerSize, child.start + child.size, boxes[i]);
    });
  };
  return check('moov', 8, moov.length, file.moov);
}

/**
 * Parses the box tree of the `moov` with mp4box and nothing more.
 * `createFile(keepMdatData, stream)` runs `ISOFile.parse()` over a stream
 * that holds all the bytes: every box and its fields, the sample tables as
 * mp4box's per-box arrays. What it skips is `appendBuffer()`, the streaming
 * entry point, which on finding the `moov` also runs `buildSampleLists()`
 * and makes an object per sample: hundreds of bytes each, hundreds of MiB
 * for a long film. The tables are decoded here instead ({@link StblSamples}).
 */
function parseWithMp4box(moov: Uint8Array, moovStart: number): ISOFile {
  return quietly((errors) => {
    // mp4box gets the moov alone: chunk offsets in it are absolute, so where
    // its bytes sit in mp4box's stream does not change any sample offset.
    // The copy gives mp4box an ArrayBuffer of its own, starting at 0.
    const copy = moov.slice();
    hideUserData(copy, moovStart);
    const stream = new MultiBufferStream(MP4BoxBuffer.fromArrayBuffer(copy.buffer, 0));
    // The parse runs inside createFile, before an onError could be set:
    // errors reach `quietly` through Log.error.
    const file = createFile(false, stream);
    // mp4box stops a container at the first child it cannot parse. A failure
    // inside a sample description (QuickTime sound descriptions, say) only
    // costs the codec string; one anywhere on the path to the sample tables
    // would silently drop a table (no stss reads as "every sample is a
    // keyframe"), so it is fatal.
    if (file.moov === undefined || (errors.length > 0 && !tablesComplete(file, copy, moovStart))) {
      throw new MediaServerError(
        'MEDIA_CORRUPT',
        `mp4box could not parse the moov box at offset ${moovStart}${errors.length > 0 ? `: ${errors.join('; ')}` : ''}`,
      );
    }
    return file;
  });
}

/**
 * Reads the `moov` box (its bytes, read whole, at `moovStart`) with mp4box's
 * box parser: tracks, codecs, edit lists, `trex` defaults and the sample
 * tables of progressive files, kept in their compact run-length form
 * (a few bytes a sample). Sample counts are checked against `budget` before
 * mp4box parses any table, and every sample's data against `fileSize` after.
 *
 * @throws MediaServerError `MEDIA_CORRUPT` when mp4box cannot parse the box or
 * its tables are inconsistent (a sample left without a chunk, a time or a
 * composition offset; a zero timescale),
 * `MEDIA_TRUNCATED` when a sample's data lies past the end of the file,
 * `MEDIA_UNSUPPORTED` when the samples exceed the budget.
 *
 * @example
 * ```ts
 * const movie = readMovie(moovBytes, moovStart, fileSize, new SampleBudget(2_000_000));
 * const video = movie.tracks.find((t) => t.info.kind === 'video');
 * ```
 */
export function readMovie(
  moov: Uint8Array,
  moovStart: number,
  fileSize: number,
  budget: SampleBudget,
): Movie {
  checkSampleCounts(moov, moovStart, fileSize, budget);
  let file: ISOFile;
  try {
    file = parseWithMp4box(moov, moovStart);
  } catch (error) {
    if (MediaServerError.isInstance(error)) throw error;
    throw new MediaServerError(
      'MEDIA_CORRUPT',
      `mp4box failed on the moov box at offset ${moovStart}: ${String(error)}`,
      {
        cause: error,
      },
    );
  }
  try {
    return movieFrom(file, moov, moovStart, fileSize);
  } catch (error) {
    if (MediaServerError.isInstance(error)) throw error;
    // A box mp4box left out (a trak without mdhd, say) surfaces as a TypeError here.
    throw new MediaServerError(
      'MEDIA_CORRUPT',
      `The moov box at offset ${moovStart} is incomplete: ${String(error)}`,
      {
        cause: error,
      },
    );
  }
}

function movieFrom(file: ISOFile, bytes: Uint8Array, moovStart: number, fileSize: number): Movie {
  const moov = file.moov;
  const movieTimescale = moov.mvhd.timescale;
  if (!(movieTimescale > 0)) {
    throw new MediaServerError(
      'MEDIA_CORRUPT',
      `The movie header at offset ${moovStart} has a timescale of ${movieTimescale}; it must be above 0`,
    );
  }
  const trexes = moov.mvex?.trexs ?? [];
  const tracks = (moov.traks ?? []).map((trak) => {
    const id = trak.tkhd.track_id;
    const { kind, codec } = quietly(() => describe(trak));
    const trex = trexes.find((t) => t.track_id === id);
    return {
      info: {
        id,
        kind,
        codec,
        timescale: trak.mdia.mdhd.timescale,
      },
      ...editOffsets(trak, movieTimescale, moovStart),
      samples: trackSamples(trak, bytes, moovStart, fileSize),
      fragmentDefaults:
        trex === undefined
          ? undefined
          : {
              duration: trex.default_sample_duration,
              size: trex.default_sample_size,
              flags: trex.default_sample_flags,
            },
    } satisfies MovieTrack;
  });
  const duration = moov.mvhd.duration / movieTimescale;
  return {
    durationSeconds: Number.isFinite(duration) && duration > 0 ? duration : undefined,
    hasFragments: moov.mvex !== undefined,
    tracks,
  };
}

function editOffsets(
  trak: TrakBox,
  movieTimescale: number,
  moovStart: number,
): { mediaTime: number; emptyEditSeconds: number } {
  let emptyEditSeconds = 0;
  for (const edit of trak.edts?.elst?.entries ?? []) {
    if (edit.media_time === -1) {
      emptyEditSeconds += edit.segment_duration / movieTimescale;
      continue;
    }
    if (!Number.isFinite(edit.media_time) || edit.media_time < 0) {
      throw new MediaServerError(
        'MEDIA_CORRUPT',
        `Track ${trak.tkhd.track_id} in the moov at offset ${moovStart} has an edit starting at media time ${edit.media_time}`,
      );
    }
    // Later edits (re-timed segments) are rare outside editing tools; the first media edit sets the timeline.
    return { mediaTime: edit.media_time, emptyEditSeconds };
  }
  return { mediaTime: 0, emptyEditSeconds };
}

function trackSamples(
  trak: TrakBox,
  moov: Uint8Array,
  moovStart: number,
  fileSize: number,
): TrackSamples {
  const id = trak.tkhd.track_id;
  const timescale = trak.mdia.mdhd.timescale;
  if (!(Number.isInteger(timescale) && timescale > 0)) {
    throw new MediaServerError(
      'MEDIA_CORRUPT',
      `Track ${id} in the moov at offset ${moovStart} has a timescale of ${timescale}; it must be above 0`,
    );
  }
  const tables = stblTables(trak.mdia.minf.stbl, trak.mdia.mdhd.duration, moov);
  if (tables === undefined) return new TrackSamples(undefined, 0);
  const samples = new StblSamples(tables, {
    trackId: id,
    where: `moov at offset ${moovStart}`,
    fileSize,
  });
  return new TrackSamples(samples, samples.endDts);
}
