import type { MovieTrack } from './movie.ts';

/**
 * Times within this many seconds count as equal, so a time parsed from a
 * timecode lands on the keyframe it names despite float rounding. It is far
 * below any frame duration.
 *
 * @example
 * ```ts
 * const sameInstant = (a: number, b: number) => Math.abs(a - b) <= TIME_EPSILON;
 * ```
 */
export const TIME_EPSILON = 1e-6;

/**
 * Presentation time in seconds of a sample at `cts` ticks, edit list applied.
 *
 * @example
 * ```ts
 * presentationTime(track, 1024); // (1024 - track.mediaTime) / track.info.timescale + track.emptyEditSeconds
 * ```
 */
export function presentationTime(track: MovieTrack, cts: number): number {
  // One division of an integer, so equal instants give equal floats across tracks and timecodes.
  const t = (cts - track.mediaTime) / track.info.timescale;
  return track.emptyEditSeconds === 0 ? t : t + track.emptyEditSeconds;
}

/**
 * The sync samples of the key track as columns, sorted by presentation time
 * (then by offset): their times, the offsets of their data and the offsets a
 * reader starting at each needs.
 *
 * @example
 * ```ts
 * const sync: SyncSamples = { times: [0, 1], byteOffsets: [48, 36994], seekOffsets: [48, 36994] };
 * ```
 */
export interface SyncSamples {
  readonly times: readonly number[];
  readonly byteOffsets: readonly number[];
  readonly seekOffsets: readonly number[];
}

/** The columns in order of ascending time, then offset, then walk order (a stable sort). */
function sortedByTime(times: number[], byteOffsets: number[], seekOffsets: number[]): SyncSamples {
  let sorted = true;
  for (let i = 1; i < times.length && sorted; i++) {
    const [before, after] = [times[i - 1]!, times[i]!];
    sorted = before < after || (before === after && byteOffsets[i - 1]! <= byteOffsets[i]!);
  }
  // Keyframes are almost always in presentation order already; otherwise only a permutation is sorted.
  const order = sorted
    ? undefined
    : Uint32Array.from(times, (_, i) => i).sort(
        (a, b) => times[a]! - times[b]! || byteOffsets[a]! - byteOffsets[b]! || a - b,
      );
  const column = (values: number[]) =>
    order === undefined ? values : Array.from(order, (i) => values[i]!);
  return {
    times: column(times),
    byteOffsets: column(byteOffsets),
    seekOffsets: column(seekOffsets),
  };
}

/**
 * Walks the key track once: its sync samples, and for video its nominal
 * frame rate, the timescale over the most common positive sample duration
 * (the first met wins a tie).
 *
 * @example
 * ```ts
 * const { sync, frameRate } = scanKeyTrack(videoTrack); // frameRate 25
 * sync.times.length; // number of keyframes
 * ```
 */
export function scanKeyTrack(track: MovieTrack): {
  sync: SyncSamples;
  frameRate: number | undefined;
} {
  // Plain arrays of numbers hold unboxed doubles: no object per keyframe, even for a million.
  const times: number[] = [];
  const byteOffsets: number[] = [];
  const seekOffsets: number[] = [];
  const isVideo = track.info.kind === 'video';
  // Durations come in long runs; counting a run at its end keeps the map out of the per-sample path.
  const counts = new Map<number, number>();
  let runDuration = -1;
  let runLength = 0;
  const endRun = () => {
    if (runLength > 0 && runDuration > 0)
      counts.set(runDuration, (counts.get(runDuration) ?? 0) + runLength);
  };
  track.samples.forEach((cts, duration, offset, seekOffset, sync) => {
    if (sync) {
      times.push(presentationTime(track, cts));
      byteOffsets.push(offset);
      seekOffsets.push(seekOffset);
    }
    if (!isVideo) return;
    if (duration === runDuration) {
      runLength++;
    } else {
      endRun();
      runDuration = duration;
      runLength = 1;
    }
  });
  endRun();
  let best: number | undefined;
  let bestCount = 0;
  for (const [duration, count] of counts) {
    if (count > bestCount) [best, bestCount] = [duration, count];
  }
  return {
    sync: sortedByTime(times, byteOffsets, seekOffsets),
    frameRate: best === undefined ? undefined : track.info.timescale / best,
  };
}

/** Whether `at` is the first index of ascending `limits` that `value` does not exceed (or their length). */
function isFirstAtOrAbove(limits: Float64Array, value: number, at: number): boolean {
  return (
    at <= limits.length &&
    (at === 0 || limits[at - 1]! < value) &&
    (at === limits.length || value <= limits[at]!)
  );
}

/**
 * Index of the first of ascending `limits` that `value` does not exceed, or
 * `limits.length`. Samples mostly come in time order, so the previous answer
 * `hint` and the one after it are tried before a binary search.
 */
function firstAtOrAbove(limits: Float64Array, value: number, hint: number): number {
  if (isFirstAtOrAbove(limits, value, hint)) return hint;
  if (isFirstAtOrAbove(limits, value, hint + 1)) return hint + 1;
  let lo = 0;
  let hi = limits.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (limits[mid]! < value) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * For each of the ascending `times`, the seek offset of the sample of
 * `track` playing then: the latest in presentation order at or before the
 * time (within {@link TIME_EPSILON}; of equal times the last in decode
 * order), else the earliest; `NaN` once the track has ended. Also where the
 * track ends.
 *
 * One walk in decode order, with no sort and no per-sample memory: each
 * sample goes to the bucket of the first time it is not after, each bucket
 * keeps its latest sample, and a running maximum over the buckets answers
 * every time. That is O(samples × log(times)) and O(times) memory.
 *
 * @example
 * ```ts
 * const { offsets, end } = coveringOffsets(audioTrack, [0, 1, 2]);
 * offsets[1]; // seek offset of the audio sample playing at 1 s
 * ```
 */
export function coveringOffsets(
  track: MovieTrack,
  times: ArrayLike<number>,
): { offsets: Float64Array; end: number } {
  const count = times.length;
  const limits = new Float64Array(count);
  for (let i = 0; i < count; i++) limits[i] = times[i]! + TIME_EPSILON;
  const bucketTime = new Float64Array(count).fill(Number.NEGATIVE_INFINITY);
  const bucketOffset = new Float64Array(count).fill(Number.NaN);
  let firstTime = Number.POSITIVE_INFINITY;
  let firstOffset = Number.NaN;
  let end = Number.NEGATIVE_INFINITY;
  let bucket = 0;
  track.samples.forEach((cts, duration, _offset, seekOffset) => {
    const time = presentationTime(track, cts);
    end = Math.max(end, presentationTime(track, cts + duration));
    if (time < firstTime) {
      firstTime = time;
      firstOffset = seekOffset;
    }
    bucket = firstAtOrAbove(limits, time, bucket);
    // `>=`: of equal times the later sample in decode order wins, as a stable sort would order them.
    if (bucket < count && time >= bucketTime[bucket]!) {
      bucketTime[bucket] = time;
      bucketOffset[bucket] = seekOffset;
    }
  });
  // Each bucket is read before its answer overwrites it, so the answers can take its place.
  const offsets = bucketOffset;
  let latestTime = Number.NEGATIVE_INFINITY;
  let latestOffset = Number.NaN;
  for (let i = 0; i < count; i++) {
    // Equal times share a bucket, so comparing buckets never meets a tie.
    if (!Number.isNaN(bucketOffset[i]!) && bucketTime[i]! > latestTime) {
      latestTime = bucketTime[i]!;
      latestOffset = bucketOffset[i]!;
    }
    if (times[i]! >= end) offsets[i] = Number.NaN;
    else offsets[i] = Number.isNaN(latestOffset) ? firstOffset : latestOffset;
  }
  return { offsets, end };
}
