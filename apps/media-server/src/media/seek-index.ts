import { MediaServerError } from '../errors.ts';
import { type ReadAt, walkTopLevelBoxes } from './boxes.ts';
import { coveringOffsets, type SyncSamples, scanKeyTrack, TIME_EPSILON } from './coverage.ts';
import { readFragment } from './fragments.ts';
import { type Movie, type MovieTrack, readMovie, type TrackInfo } from './movie.ts';
import { SampleBudget } from './samples.ts';

export type { ReadAt } from './boxes.ts';
export type { TrackInfo, TrackKind } from './movie.ts';

/**
 * Default cap on one metadata box (`moov` or `moof`) read into memory.
 *
 * @example
 * ```ts
 * await buildSeekIndex(readAt, size, { maxMetadataBytes: DEFAULT_MAX_METADATA_BYTES / 4 });
 * ```
 */
export const DEFAULT_MAX_METADATA_BYTES = 64 * 1024 * 1024;

/**
 * Default cap on the samples of all tracks together: a 6-hour film at 60 fps
 * with 48 kHz AAC has 2.31 million, and 3 million leave room for a second
 * audio track or a longer film. The `moov`'s tables stay in their compact
 * form (about 7 bytes a sample) and mp4box builds no object per sample:
 * indexing those 2.31 million peaked near 80 MiB of heap (220 MiB RSS) and
 * took about 0.4 s, where mp4box's sample objects had taken 700–900 MiB and
 * 2 s. Fragments keep 29 bytes a sample.
 *
 * @example
 * ```ts
 * await buildSeekIndex(readAt, size, { maxSamples: DEFAULT_MAX_SAMPLES * 2 });
 * ```
 */
export const DEFAULT_MAX_SAMPLES = 3_000_000;

/**
 * A keyframe of the video. `time` is its presentation time in seconds (what
 * FFmpeg reports as `pts_time`), `byteOffset` the file offset of its own data
 * (FFmpeg's `pkt_pos`), and `seekOffset` where a reader starting at it must
 * begin, which is what {@link SeekIndex.seek} returns as `byteOffset`.
 *
 * @example
 * ```ts
 * const first: Keyframe = { time: 0, byteOffset: 48, seekOffset: 48 };
 * ```
 */
export interface Keyframe {
  readonly time: number;
  readonly byteOffset: number;
  readonly seekOffset: number;
}

/**
 * The answer of {@link SeekIndex.seek}: the time asked for, the keyframe to
 * start decoding at and the byte offset to start reading at.
 *
 * @example
 * ```ts
 * const result: SeekResult = { requestedTime: 4.5, keyframeTime: 4, byteOffset: 183_412 };
 * ```
 */
export interface SeekResult {
  readonly requestedTime: number;
  readonly keyframeTime: number;
  readonly byteOffset: number;
}

/**
 * Where to start reading an MP4 to play it from a given time, built from its
 * metadata alone.
 *
 * - `duration`: seconds; the movie header's duration for a progressive file,
 *   else the end of the last sample of any track.
 * - `frameRate`: the video track's nominal rate, its timescale over its most
 *   common sample duration (25, 29.97…); `undefined` without a video track.
 * - `fragmented`: the file has `moof` fragments (or announces them with `mvex`).
 * - `keyframes`: the sync samples of the key track, sorted by time. The key
 *   track is the first video track with samples, else the first track with
 *   samples; a track without sync information (no `stss`, no sample flags)
 *   has every sample as a keyframe.
 * - `tracks`: every track of the movie.
 *
 * @example
 * ```ts
 * const index = await buildSeekIndex(readAt, size);
 * const { keyframeTime, byteOffset } = index.seek(4154.93);
 * ```
 */
export interface SeekIndex {
  readonly duration: number;
  readonly frameRate: number | undefined;
  readonly fragmented: boolean;
  readonly keyframes: readonly Keyframe[];
  readonly tracks: readonly TrackInfo[];
  /**
   * The latest keyframe at or before `seconds` (the first keyframe when
   * `seconds` comes before it), and the smallest file offset from which a
   * reader gets every track's data from that keyframe's time on:
   *
   * - progressive: the least offset, over all tracks, of the sample covering the
   *   keyframe's time (the keyframe itself for the key track), which assumes
   *   samples after it lie after it in the file, as interleaving muxers write;
   *   a track that has already ended by then does not count;
   * - fragmented: the least offset of the `moof` holding that sample, so the
   *   keyframe's own `moof` unless another track's sample for that time sits
   *   in an earlier one.
   *
   * @throws MediaServerError `TIME_OUT_OF_RANGE` naming the time and the duration
   * when `seconds` is below 0 or past the duration, `INVALID_TIMECODE` when it is
   * not a finite number.
   */
  seek(seconds: number): SeekResult;
}

/**
 * Options of {@link buildSeekIndex}.
 *
 * @example
 * ```ts
 * const options: BuildSeekIndexOptions = { maxMetadataBytes: 16 * 1024 * 1024 };
 * ```
 */
export interface BuildSeekIndexOptions {
  /** Largest `moov` (or single `moof`) read into memory; default {@link DEFAULT_MAX_METADATA_BYTES}. */
  readonly maxMetadataBytes?: number;
  /** Most samples over all tracks; default {@link DEFAULT_MAX_SAMPLES}. */
  readonly maxSamples?: number;
}

/**
 * Builds the seek index of an MP4 of `size` bytes read through `readAt`.
 *
 * Only metadata is read: the top-level box headers, the `moov` box (its boxes
 * parsed by mp4box: tracks, codecs, edit lists, sample tables, the tables then
 * decoded here from their run-length form without an object per sample) and
 * every `moof` box (parsed here: `tfhd`, `tfdt`, `trun`). No `mdat` payload is read, so a
 * many-GiB file costs its metadata only. Presentation times apply the edit
 * list like FFmpeg: `(cts − media_time) / timescale` plus any leading empty edit.
 *
 * @throws MediaServerError
 * - `MEDIA_TRUNCATED`: the file is empty, a box runs past its end, it has no
 *   `moov` (as when a file with its `moov` at the end is cut), or sample data
 *   lies past its end;
 * - `MEDIA_CORRUPT`: it is not an MP4 (first box, a box type that is not a
 *   four-character code, a size below the header), mp4box cannot parse the
 *   `moov`, its tables are inconsistent, or a fragment is malformed;
 * - `MEDIA_UNSUPPORTED`: no tracks, no samples, no keyframes, a metadata box
 *   over `maxMetadataBytes` or more samples than `maxSamples`.
 *
 * Nothing else is thrown for any content of the file; errors thrown by
 * `readAt` itself pass through unchanged. A `size` that is not a whole number
 * ≥ 0, or a limit ≤ 0, is the caller's bug and throws a `RangeError`.
 *
 * @example
 * ```ts
 * import { open } from 'node:fs/promises';
 * const handle = await open('movie.mp4');
 * const { size } = await handle.stat();
 * const index = await buildSeekIndex(async (offset, length) => {
 *   const buffer = new Uint8Array(length);
 *   const { bytesRead } = await handle.read(buffer, 0, length, offset);
 *   return buffer.subarray(0, bytesRead);
 * }, size);
 * index.seek(4154.93); // { requestedTime: 4154.93, keyframeTime: 4154, byteOffset: 123_456_789 }
 * ```
 */
export async function buildSeekIndex(
  readAt: ReadAt,
  size: number,
  options?: BuildSeekIndexOptions,
): Promise<SeekIndex> {
  const maxMetadataBytes = options?.maxMetadataBytes ?? DEFAULT_MAX_METADATA_BYTES;
  const maxSamples = options?.maxSamples ?? DEFAULT_MAX_SAMPLES;
  if (!Number.isSafeInteger(size) || size < 0)
    throw new RangeError(`File size ${size} must be a whole number of bytes ≥ 0`);
  if (!(maxMetadataBytes > 0))
    throw new RangeError(`maxMetadataBytes ${maxMetadataBytes} must be above 0`);
  if (!(maxSamples > 0)) throw new RangeError(`maxSamples ${maxSamples} must be above 0`);
  const storageErrors = new Set<unknown>();
  const trackedReadAt: ReadAt = async (offset, length) => {
    try {
      return await readAt(offset, length);
    } catch (error) {
      storageErrors.add(error);
      throw error;
    }
  };
  try {
    return await build(trackedReadAt, size, maxMetadataBytes, maxSamples);
  } catch (error) {
    if (MediaServerError.isInstance(error) || storageErrors.has(error)) throw error;
    // A parser slip on input nobody foresaw must still reach the client as a verdict on the file.
    throw new MediaServerError('MEDIA_CORRUPT', `The file could not be indexed: ${String(error)}`, {
      cause: error,
    });
  }
}

async function build(
  readAt: ReadAt,
  size: number,
  maxMetadataBytes: number,
  maxSamples: number,
): Promise<SeekIndex> {
  const budget = new SampleBudget(maxSamples);
  let movie: Movie | undefined;
  let moovStart = 0;
  let tracksById = new Map<number, MovieTrack>();
  let moofCount = 0;
  const seen: string[] = [];
  const boxes = walkTopLevelBoxes(readAt, size, {
    load: (type) => type === 'moov' || type === 'moof',
    maxLoadBytes: maxMetadataBytes,
  });
  for await (const box of boxes) {
    if (seen.length < 8) seen.push(`${box.type} at ${box.start}`);
    if (box.type === 'moov') {
      if (movie !== undefined) {
        throw new MediaServerError(
          'MEDIA_CORRUPT',
          `The file has a second moov box at offset ${box.start}; the first is at ${moovStart}`,
        );
      }
      movie = readMovie(box.bytes!, box.start, size, budget);
      moovStart = box.start;
      tracksById = new Map(movie.tracks.map((track) => [track.info.id, track]));
    } else if (box.type === 'moof') {
      if (movie === undefined) {
        throw new MediaServerError(
          'MEDIA_CORRUPT',
          `The moof box at offset ${box.start} comes before any moov box, which must precede fragments`,
        );
      }
      readFragment(box.bytes!, box.start, size, tracksById, budget);
      moofCount++;
    }
  }
  if (movie === undefined) {
    throw new MediaServerError(
      'MEDIA_TRUNCATED',
      `The ${size}-byte file has no moov box, so it was cut before its metadata (boxes: ${seen.join(', ')})`,
    );
  }
  return indexFrom(movie, movie.hasFragments || moofCount > 0);
}

/** Index of the last element of ascending `values` that is ≤ `value`, or -1. */
function lastAtOrBefore(values: ArrayLike<number>, value: number): number {
  let lo = 0;
  let hi = values.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (values[mid]! <= value) lo = mid + 1;
    else hi = mid;
  }
  return lo - 1;
}

/**
 * The key frames, sorted by time, each with the least offset over all
 * tracks from which a reader gets every track's data from its time on, and
 * where the last track ends. Each track is walked once more from its
 * compact tables; nothing per sample is kept.
 */
function seekPoints(
  tracks: readonly MovieTrack[],
  sync: SyncSamples,
): { keyframes: Keyframe[]; samplesEnd: number } {
  const { times, byteOffsets } = sync;
  const seekOffsets = Float64Array.from(sync.seekOffsets);
  let samplesEnd = Number.NEGATIVE_INFINITY;
  for (const track of tracks) {
    const { offsets, end } = coveringOffsets(track, times);
    samplesEnd = Math.max(samplesEnd, end);
    // NaN (the track has ended by then) loses every comparison, so it never lowers the offset.
    for (let i = 0; i < offsets.length; i++) {
      if (offsets[i]! < seekOffsets[i]!) seekOffsets[i] = offsets[i]!;
    }
  }
  const keyframes: Keyframe[] = [];
  for (let i = 0; i < times.length; i++) {
    keyframes.push(
      Object.freeze({ time: times[i]!, byteOffset: byteOffsets[i]!, seekOffset: seekOffsets[i]! }),
    );
  }
  return { keyframes, samplesEnd };
}

function indexFrom(movie: Movie, fragmented: boolean): SeekIndex {
  if (movie.tracks.length === 0)
    throw new MediaServerError(
      'MEDIA_UNSUPPORTED',
      'The movie has no tracks, so there is nothing to seek in',
    );
  const withSamples = movie.tracks.filter((track) => track.samples.length > 0);
  const keyTrack = withSamples.find((track) => track.info.kind === 'video') ?? withSamples[0];
  if (keyTrack === undefined) {
    throw new MediaServerError(
      'MEDIA_UNSUPPORTED',
      `None of the movie's ${movie.tracks.length} tracks (ids ${movie.tracks.map((t) => t.info.id).join(', ')}) has any samples`,
    );
  }
  const { sync, frameRate } = scanKeyTrack(keyTrack);
  if (sync.times.length === 0) {
    throw new MediaServerError(
      'MEDIA_UNSUPPORTED',
      `Track ${keyTrack.info.id} has ${keyTrack.samples.length} samples but no keyframe to seek to`,
    );
  }
  const { keyframes, samplesEnd } = seekPoints(withSamples, sync);
  const duration =
    !fragmented && movie.durationSeconds !== undefined
      ? movie.durationSeconds
      : Math.max(0, samplesEnd);
  const times = Float64Array.from(sync.times);
  return Object.freeze({
    duration,
    frameRate,
    fragmented,
    keyframes: Object.freeze(keyframes),
    tracks: Object.freeze(movie.tracks.map((track) => Object.freeze({ ...track.info }))),
    seek(seconds: number): SeekResult {
      if (typeof seconds !== 'number' || !Number.isFinite(seconds)) {
        throw new MediaServerError(
          'INVALID_TIMECODE',
          `Time ${seconds} is not a finite number of seconds`,
        );
      }
      if (seconds < 0 || seconds > duration + TIME_EPSILON) {
        throw new MediaServerError(
          'TIME_OUT_OF_RANGE',
          `Time ${seconds} s is outside the video, which runs from 0 to ${duration} s`,
        );
      }
      const keyframe = keyframes[Math.max(0, lastAtOrBefore(times, seconds + TIME_EPSILON))]!;
      return {
        requestedTime: seconds,
        keyframeTime: keyframe.time,
        byteOffset: keyframe.seekOffset,
      };
    },
  });
}
