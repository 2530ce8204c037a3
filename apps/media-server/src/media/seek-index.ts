import { MediaServerError } from '../errors.ts';
import { type ReadAt, walkTopLevelBoxes } from './boxes.ts';
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
 * Default cap on the samples of all tracks together: a 3.5-hour film at
 * 30 fps with 48 kHz AAC. mp4box holds an object per `moov` sample while it
 * parses: a million samples peaked near 700 MiB of memory and took about 2 s.
 *
 * @example
 * ```ts
 * await buildSeekIndex(readAt, size, { maxSamples: DEFAULT_MAX_SAMPLES * 2 });
 * ```
 */
export const DEFAULT_MAX_SAMPLES = 1_000_000;

/**
 * Times within this many seconds count as equal, so a time parsed from a
 * timecode lands on the keyframe it names despite float rounding. It is far
 * below any frame duration.
 */
const TIME_EPSILON = 1e-6;

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
 * Only metadata is read: the top-level box headers, the `moov` box (parsed by
 * mp4box: tracks, codecs, edit lists, sample tables) and every `moof` box
 * (parsed here: `tfhd`, `tfdt`, `trun`). No `mdat` payload is read, so a
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

/** A track's samples in presentation order, in seconds. */
interface Timeline {
  readonly track: MovieTrack;
  /** Presentation times, ascending. */
  readonly times: Float64Array;
  /** `seekOffset` of the sample at the same position in `times`. */
  readonly seekOffsets: Float64Array;
  /** Presentation time at which the track's last sample ends. */
  readonly end: number;
}

function presentationTime(track: MovieTrack, cts: number): number {
  // One division of an integer, so equal instants give equal floats across tracks and timecodes.
  const t = (cts - track.mediaTime) / track.info.timescale;
  return track.emptyEditSeconds === 0 ? t : t + track.emptyEditSeconds;
}

function timeline(track: MovieTrack): Timeline {
  const { samples } = track;
  const n = samples.length;
  const times = new Float64Array(n);
  let end = Number.NEGATIVE_INFINITY;
  let ordered = true;
  for (let i = 0; i < n; i++) {
    times[i] = presentationTime(track, samples.cts[i]!);
    end = Math.max(end, presentationTime(track, samples.cts[i]! + samples.duration[i]!));
    if (i > 0 && times[i]! < times[i - 1]!) ordered = false;
  }
  const seekOffsets = Float64Array.from(samples.seekOffset);
  // Audio is in presentation order already; only reordered video (B-frames) pays for a sort.
  if (ordered) return { track, times, seekOffsets, end };
  const order = Uint32Array.from({ length: n }, (_, i) => i).sort(
    (a, b) => times[a]! - times[b]! || a - b,
  );
  return {
    track,
    times: Float64Array.from(order, (i) => times[i]!),
    seekOffsets: Float64Array.from(order, (i) => seekOffsets[i]!),
    end,
  };
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

/** Where a reader must start to get `timeline`'s data from `time` on, or undefined once the track has ended. */
function coveringOffset(line: Timeline, time: number): number | undefined {
  if (line.times.length === 0 || time >= line.end) return undefined;
  const i = Math.max(0, lastAtOrBefore(line.times, time + TIME_EPSILON));
  return line.seekOffsets[i];
}

function nominalFrameRate(track: MovieTrack): number | undefined {
  if (track.info.kind !== 'video') return undefined;
  const counts = new Map<number, number>();
  for (const d of track.samples.duration) if (d > 0) counts.set(d, (counts.get(d) ?? 0) + 1);
  let best: number | undefined;
  let bestCount = 0;
  for (const [duration, count] of counts) {
    if (count > bestCount) [best, bestCount] = [duration, count];
  }
  return best === undefined ? undefined : track.info.timescale / best;
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
  const timelines = withSamples.map(timeline);
  const keyframes: Keyframe[] = [];
  const { samples } = keyTrack;
  for (let i = 0; i < samples.length; i++) {
    if (!samples.sync[i]) continue;
    const time = presentationTime(keyTrack, samples.cts[i]!);
    let seekOffset = samples.seekOffset[i]!;
    for (const line of timelines)
      seekOffset = Math.min(seekOffset, coveringOffset(line, time) ?? seekOffset);
    keyframes.push(Object.freeze({ time, byteOffset: samples.offset[i]!, seekOffset }));
  }
  if (keyframes.length === 0) {
    throw new MediaServerError(
      'MEDIA_UNSUPPORTED',
      `Track ${keyTrack.info.id} has ${samples.length} samples but no keyframe to seek to`,
    );
  }
  keyframes.sort((a, b) => a.time - b.time || a.byteOffset - b.byteOffset);
  const samplesEnd = Math.max(...timelines.map((line) => line.end));
  const duration =
    !fragmented && movie.durationSeconds !== undefined
      ? movie.durationSeconds
      : Math.max(0, samplesEnd);
  const times = Float64Array.from(keyframes, (k) => k.time);
  return Object.freeze({
    duration,
    frameRate: nominalFrameRate(keyTrack),
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
