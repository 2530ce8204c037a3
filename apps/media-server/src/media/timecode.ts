import { MediaServerError } from '../errors.ts';

/** Longer inputs are refused before any parsing, so a hostile query costs nothing. */
const MAX_INPUT_LENGTH = 32;

/** Frame rates outside this range are not video frame rates; refusing them keeps the arithmetic sane. */
const MIN_FPS = 1;
const MAX_FPS = 1000;

/**
 * A rate within this distance of an NTSC rate (24, 30, 60… × 1000/1001) is
 * taken to be exactly that rate: `fps=29.97` typed by a person would otherwise
 * drift by 0.36 s over an hour of frames.
 */
const NTSC_SNAP = 0.005;

/** Float noise when turning seconds back into a frame count must not drop a frame. */
const FRAME_EPSILON = 1e-6;

const PLAIN_SECONDS = /^(?:\d+(?:\.\d*)?|\.\d+)$/;
const CLOCK = /^(\d+):(\d{2}):(\d{2})(?:\.(\d+))?$/;
const SMPTE = /^(\d+):(\d{2}):(\d{2})([:;])(\d{2,3})$/;

/**
 * Options of {@link parseTime}.
 *
 * @example
 * ```ts
 * const fps = query.get('fps');
 * const options: ParseTimeOptions = { fps: fps === null ? index.frameRate : Number(fps) };
 * ```
 */
export interface ParseTimeOptions {
  /**
   * Frame rate that SMPTE frame numbers (`HH:MM:SS:FF`) count in. Needed only
   * for SMPTE input; the seek route passes the query's `fps` or else the
   * video's own frame rate.
   */
  readonly fps?: number | undefined;
}

/**
 * How a frame rate counts SMPTE frames: `nominal` frames per timecode second,
 * frame duration as an exact ratio when the rate is integral or NTSC, and
 * `dropPerMinute` frame numbers skipped at each non-tenth minute by drop-frame
 * timecode (0 when the rate has no drop-frame form).
 */
interface FrameCounting {
  readonly fps: number;
  readonly nominal: number;
  /** True when a timecode second is `nominal` frames (integral and NTSC rates). */
  readonly counted: boolean;
  /** Seconds of frame `n` are `n * numerator / denominator`, exact for NTSC rates. */
  readonly numerator: number;
  readonly denominator: number;
  readonly dropPerMinute: number;
}

function invalid(message: string): MediaServerError {
  return new MediaServerError('INVALID_TIMECODE', message);
}

function frameCounting(fps: number): FrameCounting {
  if (!Number.isFinite(fps) || fps < MIN_FPS || fps > MAX_FPS) {
    throw invalid(
      `fps ${fps} is not a frame rate: it must be a finite number from ${MIN_FPS} to ${MAX_FPS}`,
    );
  }
  const ntscNominal = Math.round((fps * 1001) / 1000);
  if (
    Math.abs(fps - (ntscNominal * 1000) / 1001) < NTSC_SNAP &&
    Math.abs(fps - ntscNominal) > NTSC_SNAP
  ) {
    return {
      fps: (ntscNominal * 1000) / 1001,
      nominal: ntscNominal,
      counted: true,
      numerator: 1001,
      denominator: ntscNominal * 1000,
      // SMPTE 12M defines drop-frame only for 29.97 (2 per minute) and 59.94 (4).
      dropPerMinute: ntscNominal === 30 ? 2 : ntscNominal === 60 ? 4 : 0,
    };
  }
  const integral = Math.round(fps);
  if (Math.abs(fps - integral) < 1e-9) {
    return {
      fps: integral,
      nominal: integral,
      counted: true,
      numerator: 1,
      denominator: integral,
      dropPerMinute: 0,
    };
  }
  return {
    fps,
    nominal: Math.ceil(fps),
    counted: false,
    numerator: 1,
    denominator: fps,
    dropPerMinute: 0,
  };
}

/**
 * Frames of drop-frame timecode before `minutes` whole minutes: every minute
 * but each tenth skips `drop` frame numbers.
 */
function droppedBefore(totalMinutes: number, drop: number): number {
  return drop * (totalMinutes - Math.floor(totalMinutes / 10));
}

/**
 * Parses a seek time into seconds.
 *
 * Accepted forms:
 * - plain seconds: `4154.93`, `12`, `0`;
 * - clock time `HH:MM:SS` or `HH:MM:SS.mmm` (the part after `.` is a fraction of a second);
 * - SMPTE non-drop `HH:MM:SS:FF`, and drop-frame `HH:MM:SS;FF` (only `;` means
 *   drop-frame, and only at 29.97 or 59.94 fps).
 *
 * SMPTE frames count in `options.fps`. At integral and NTSC rates (23.976,
 * 29.97, 59.94…) a timecode second holds the rounded-up number of frames and
 * the result is the frame's start, `frame × 1001 / (nominal × 1000)` for NTSC,
 * so non-drop 29.97 timecode runs slower than the wall clock as SMPTE defines.
 * At other fractional rates (12.5) the timecode second is a real second and
 * `FF / fps` is added. Drop-frame uses the SMPTE 12M formula: frame numbers 0
 * and 1 (0–3 at 59.94) are skipped at the start of every minute except each
 * tenth, so `00:01:00;00` names no frame and is refused.
 *
 * @throws MediaServerError `INVALID_TIMECODE` naming the input for anything
 * else: empty, longer than 32 characters, negative, `NaN`, `Infinity`,
 * minutes or seconds ≥ 60, a frame number ≥ the frames per second, SMPTE
 * without an fps, drop-frame at a rate that has none, or an fps outside 1–1000.
 *
 * @example
 * ```ts
 * parseTime('4154.93'); // 4154.93
 * parseTime('01:09:14.500'); // 4154.5
 * parseTime('01:09:14:12', { fps: 25 }); // 4154.48
 * parseTime('00:01:00;02', { fps: 29.97 }); // 1800 frames = 60.06
 * ```
 */
export function parseTime(t: string, options?: ParseTimeOptions): number {
  const fps = options?.fps;
  const counting = fps === undefined ? undefined : frameCounting(fps);
  if (typeof t !== 'string' || t.length === 0)
    throw invalid('The time is empty: give seconds (4154.93) or a timecode (01:09:14:28)');
  if (t.length > MAX_INPUT_LENGTH) {
    throw invalid(
      `Time "${t.slice(0, MAX_INPUT_LENGTH)}…" is ${t.length} characters long; at most ${MAX_INPUT_LENGTH} are accepted`,
    );
  }
  if (PLAIN_SECONDS.test(t)) {
    const seconds = Number(t);
    if (!Number.isFinite(seconds)) throw invalid(`Time "${t}" is not a finite number of seconds`);
    return seconds;
  }
  const clock = CLOCK.exec(t);
  if (clock) {
    const [, hh = '', mm = '', ss = '', fraction] = clock;
    const { hours, minutes, seconds } = clockFields(t, hh, mm, ss);
    return (
      hours * 3600 + minutes * 60 + seconds + (fraction === undefined ? 0 : Number(`0.${fraction}`))
    );
  }
  const smpte = SMPTE.exec(t);
  if (smpte) {
    const [, hh = '', mm = '', ss = '', separator, ff = ''] = smpte;
    const { hours, minutes, seconds } = clockFields(t, hh, mm, ss);
    if (counting === undefined) {
      throw invalid(
        `Timecode "${t}" counts frames but no fps was given to count them in (pass fps, e.g. fps=25)`,
      );
    }
    const frames = Number(ff);
    if (frames >= counting.nominal) {
      throw invalid(
        `Frame ${ff} in timecode "${t}" is out of range: at ${fps} fps frames run from 0 to ${counting.nominal - 1}`,
      );
    }
    if (!counting.counted) return hours * 3600 + minutes * 60 + seconds + frames / counting.fps;
    const totalMinutes = hours * 60 + minutes;
    let frameNumber = (totalMinutes * 60 + seconds) * counting.nominal + frames;
    if (separator === ';') {
      const drop = counting.dropPerMinute;
      if (drop === 0) {
        throw invalid(
          `Timecode "${t}" is drop-frame (";") but drop-frame exists only at 29.97 and 59.94 fps, not ${fps}`,
        );
      }
      if (seconds === 0 && frames < drop && minutes % 10 !== 0) {
        throw invalid(
          `Timecode "${t}" names a dropped frame: drop-frame timecode skips frames 0 to ${drop - 1} at minute ${minutes}`,
        );
      }
      frameNumber -= droppedBefore(totalMinutes, drop);
    }
    return (frameNumber * counting.numerator) / counting.denominator;
  }
  throw invalid(
    `Time "${t}" is neither seconds (4154.93) nor a timecode (HH:MM:SS, HH:MM:SS.mmm, HH:MM:SS:FF, HH:MM:SS;FF)`,
  );
}

function clockFields(
  t: string,
  hh: string,
  mm: string,
  ss: string,
): { hours: number; minutes: number; seconds: number } {
  const hours = Number(hh);
  const minutes = Number(mm);
  const seconds = Number(ss);
  if (minutes >= 60)
    throw invalid(`Minutes ${mm} in "${t}" are out of range: they must be below 60`);
  if (seconds >= 60)
    throw invalid(`Seconds ${ss} in "${t}" are out of range: they must be below 60`);
  return { hours, minutes, seconds };
}

function pad(value: number, width = 2): string {
  return String(value).padStart(width, '0');
}

/**
 * Formats seconds as SMPTE timecode at `fps`: `HH:MM:SS:FF`, or
 * `HH:MM:SS;FF` when `dropFrame` is set (29.97 and 59.94 fps only). The frame
 * is the one on screen at `seconds` (a time inside a frame formats as that
 * frame); hours do not wrap at 24. It is the inverse of {@link parseTime}: for
 * every frame start `s`, `parseTime(formatTimecode(s, fps, df), { fps })` is `s`.
 *
 * @throws MediaServerError `INVALID_TIMECODE` for a negative or non-finite
 * time, an fps outside 1–1000, or drop-frame at a rate that has none.
 *
 * @example
 * ```ts
 * formatTimecode(4154.48, 25); // '01:09:14:12'
 * formatTimecode(60.06, 30000 / 1001, true); // '00:01:00;02'
 * ```
 */
export function formatTimecode(seconds: number, fps: number, dropFrame = false): string {
  const counting = frameCounting(fps);
  if (!Number.isFinite(seconds) || seconds < 0) {
    throw invalid(
      `Time ${seconds} cannot be a timecode: it must be a finite number of seconds ≥ 0`,
    );
  }
  if (dropFrame && counting.dropPerMinute === 0) {
    throw invalid(`Drop-frame timecode exists only at 29.97 and 59.94 fps, not ${fps}`);
  }
  const separator = dropFrame ? ';' : ':';
  if (!counting.counted) {
    const whole = Math.floor(seconds + FRAME_EPSILON);
    const frames = Math.min(
      counting.nominal - 1,
      Math.floor((seconds - whole) * counting.fps + FRAME_EPSILON),
    );
    return `${clockString(whole)}${separator}${pad(Math.max(0, frames))}`;
  }
  let frameNumber = Math.floor(
    (seconds * counting.denominator) / counting.numerator + FRAME_EPSILON,
  );
  if (dropFrame) {
    const drop = counting.dropPerMinute;
    const perMinute = counting.nominal * 60 - drop;
    const perTenMinutes = perMinute * 10 + drop;
    const tens = Math.floor(frameNumber / perTenMinutes);
    const rest = frameNumber % perTenMinutes;
    // Put back the frame numbers that drop-frame skipped before this frame.
    frameNumber +=
      drop * 9 * tens + (rest > drop ? drop * Math.floor((rest - drop) / perMinute) : 0);
  }
  const perSecond = counting.nominal;
  const totalSeconds = Math.floor(frameNumber / perSecond);
  return `${clockString(totalSeconds)}${separator}${pad(frameNumber % perSecond, perSecond > 100 ? 3 : 2)}`;
}

function clockString(totalSeconds: number): string {
  const hours = Math.floor(totalSeconds / 3600);
  const minutes = Math.floor(totalSeconds / 60) % 60;
  return `${pad(hours)}:${pad(minutes)}:${pad(totalSeconds % 60)}`;
}
