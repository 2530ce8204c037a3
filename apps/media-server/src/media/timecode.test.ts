import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { formatTimecode, parseTime } from './timecode.ts';

const NTSC = 30000 / 1001;
const NTSC_60 = 60000 / 1001;

function refusal(run: () => unknown): { code: string; message: string } {
  try {
    run();
  } catch (error) {
    return error as { code: string; message: string };
  }
  throw new Error('expected a refusal');
}

describe('parseTime', () => {
  it('reads plain seconds', () => {
    expect(parseTime('4154.93')).toBe(4154.93);
    expect(parseTime('0')).toBe(0);
    expect(parseTime('12')).toBe(12);
    expect(parseTime('12.')).toBe(12);
    expect(parseTime('.5')).toBe(0.5);
  });

  it('reads clock time, with the part after a dot as a fraction of a second', () => {
    expect(parseTime('01:09:14')).toBe(4154);
    expect(parseTime('01:09:14.500')).toBe(4154.5);
    expect(parseTime('00:00:00.04')).toBe(0.04);
    expect(parseTime('100:00:00')).toBe(360_000);
    // A dot never means frames, whatever the fps.
    expect(parseTime('00:00:01.12', { fps: 25 })).toBe(1.12);
  });

  it('reads non-drop SMPTE frames at the given fps', () => {
    expect(parseTime('01:09:14:12', { fps: 25 })).toBe(4154 + 12 / 25);
    expect(parseTime('01:09:14:28', { fps: 30 })).toBeCloseTo(4154 + 28 / 30, 12);
    expect(parseTime('00:00:00:00', { fps: 25 })).toBe(0);
    // Non-drop 29.97 counts 30 frames a timecode second, so it runs slower than the clock.
    expect(parseTime('00:01:00:00', { fps: NTSC })).toBe((1800 * 1001) / 30000);
    expect(parseTime('00:01:00:00', { fps: 29.97 })).toBe((1800 * 1001) / 30000);
    // Other fractional rates keep timecode seconds real and add frames of 1/fps.
    expect(parseTime('00:00:01:06', { fps: 12.5 })).toBe(1 + 6 / 12.5);
  });

  it('reads drop-frame timecode at 29.97 with the SMPTE formula', () => {
    expect(parseTime('00:01:00;02', { fps: NTSC })).toBe((1800 * 1001) / 30000);
    expect(parseTime('00:10:00;00', { fps: NTSC })).toBe((17982 * 1001) / 30000);
    expect(parseTime('00:00:59;29', { fps: 29.97 })).toBe((1799 * 1001) / 30000);
    expect(parseTime('00:02:00;02', { fps: NTSC })).toBe((3598 * 1001) / 30000);
    expect(parseTime('01:00:00;00', { fps: NTSC })).toBe((107892 * 1001) / 30000);
  });

  it('reads drop-frame timecode at 59.94, which skips four frame numbers a minute', () => {
    expect(parseTime('00:01:00;04', { fps: NTSC_60 })).toBe((3600 * 1001) / 60000);
    expect(parseTime('00:10:00;00', { fps: 59.94 })).toBe((35964 * 1001) / 60000);
  });

  it('refuses timecodes that name a dropped frame', () => {
    for (const [t, fps] of [
      ['00:01:00;00', NTSC],
      ['00:01:00;01', NTSC],
      ['00:09:00;01', 29.97],
      ['00:02:00;03', NTSC_60],
    ] as const) {
      const error = refusal(() => parseTime(t, { fps }));
      expect(error.code).toBe('INVALID_TIMECODE');
      expect(error.message).toContain(t);
      expect(error.message).toContain('dropped');
    }
    expect(parseTime('00:10:00;01', { fps: NTSC })).toBe((17983 * 1001) / 30000);
    expect(parseTime('00:01:01;00', { fps: NTSC })).toBe((1828 * 1001) / 30000);
  });

  it('refuses drop-frame at rates that have none, and SMPTE frames without an fps', () => {
    expect(refusal(() => parseTime('00:00:01;00', { fps: 25 }))).toMatchObject({
      code: 'INVALID_TIMECODE',
      message: expect.stringContaining('29.97'),
    });
    expect(refusal(() => parseTime('00:00:01:00'))).toMatchObject({
      code: 'INVALID_TIMECODE',
      message: expect.stringMatching(/00:00:01:00.*fps/),
    });
  });

  it('refuses frame numbers at or past the frames per second, naming the range', () => {
    expect(refusal(() => parseTime('01:09:14:25', { fps: 25 }))).toMatchObject({
      code: 'INVALID_TIMECODE',
      message: expect.stringMatching(/25.*01:09:14:25.*0 to 24/),
    });
    expect(refusal(() => parseTime('00:00:00:30', { fps: NTSC })).code).toBe('INVALID_TIMECODE');
    expect(parseTime('00:00:00:29', { fps: NTSC })).toBeGreaterThan(0);
  });

  it('refuses malformed input with INVALID_TIMECODE naming it', () => {
    const bad = [
      ' 12',
      '12 ',
      '-1',
      '-0.5',
      'NaN',
      'Infinity',
      '1e3',
      '0x10',
      '01:60:00',
      '01:00:60',
      '01:02',
      '1:2:3',
      '00:00:00.',
      '00:00:00;xx',
      'abc',
      '12,5',
    ];
    for (const t of bad) {
      const error = refusal(() => parseTime(t, { fps: 25 }));
      expect(error.code, t).toBe('INVALID_TIMECODE');
      expect(error.message, t).toContain(t);
    }
    expect(refusal(() => parseTime(''))).toMatchObject({
      code: 'INVALID_TIMECODE',
      message: expect.stringContaining('empty'),
    });
    const long = '1'.repeat(33);
    expect(refusal(() => parseTime(long))).toMatchObject({
      code: 'INVALID_TIMECODE',
      message: expect.stringMatching(/33.*32/),
    });
  });

  it('refuses an fps that is not a frame rate, naming it and the range', () => {
    for (const fps of [Number.NaN, 0, -25, 0.5, Number.POSITIVE_INFINITY, 1001]) {
      const error = refusal(() => parseTime('1', { fps }));
      expect(error.code).toBe('INVALID_TIMECODE');
      expect(error.message).toContain(String(fps));
      expect(error.message).toContain('1 to 1000');
    }
  });

  it('never throws anything but INVALID_TIMECODE, and returns finite seconds ≥ 0', () => {
    const timeLike = fc.stringMatching(/^[0-9:;.\-eE+ ]{0,40}$/);
    fc.assert(
      fc.property(
        fc.oneof(fc.string(), timeLike),
        fc.option(fc.double(), { nil: undefined }),
        (t, fps) => {
          let seconds: number;
          try {
            seconds = parseTime(t, { fps });
          } catch (error) {
            expect((error as { code?: string }).code).toBe('INVALID_TIMECODE');
            return;
          }
          expect(Number.isFinite(seconds)).toBe(true);
          expect(seconds).toBeGreaterThanOrEqual(0);
        },
      ),
      { numRuns: 2000 },
    );
  });
});

describe('formatTimecode', () => {
  it('formats known frames', () => {
    expect(formatTimecode(4154.48, 25)).toBe('01:09:14:12');
    expect(formatTimecode(0, 25)).toBe('00:00:00:00');
    expect(formatTimecode((1800 * 1001) / 30000, NTSC, true)).toBe('00:01:00;02');
    expect(formatTimecode((1799 * 1001) / 30000, NTSC, true)).toBe('00:00:59;29');
    expect(formatTimecode((17982 * 1001) / 30000, 29.97, true)).toBe('00:10:00;00');
    expect(formatTimecode((1800 * 1001) / 30000, NTSC)).toBe('00:01:00:00');
    expect(formatTimecode((3600 * 1001) / 60000, NTSC_60, true)).toBe('00:01:00;04');
    expect(formatTimecode(1 + 6 / 12.5, 12.5)).toBe('00:00:01:06');
  });

  it('formats a time inside a frame as that frame', () => {
    expect(formatTimecode(0.079, 25)).toBe('00:00:00:01');
    expect(formatTimecode(0.08, 25)).toBe('00:00:00:02');
  });

  it('refuses negative or non-finite times and drop-frame at rates without it', () => {
    for (const seconds of [-1, Number.NaN, Number.POSITIVE_INFINITY]) {
      expect(refusal(() => formatTimecode(seconds, 25)).code).toBe('INVALID_TIMECODE');
    }
    expect(refusal(() => formatTimecode(1, 25, true)).message).toContain('25');
  });

  const rates: { fps: number; frameSeconds: (n: number) => number; drop: boolean }[] = [
    { fps: 24, frameSeconds: (n) => n / 24, drop: false },
    { fps: 25, frameSeconds: (n) => n / 25, drop: false },
    { fps: 50, frameSeconds: (n) => n / 50, drop: false },
    { fps: 24000 / 1001, frameSeconds: (n) => (n * 1001) / 24000, drop: false },
    { fps: NTSC, frameSeconds: (n) => (n * 1001) / 30000, drop: false },
    { fps: NTSC, frameSeconds: (n) => (n * 1001) / 30000, drop: true },
    { fps: 29.97, frameSeconds: (n) => (n * 1001) / 30000, drop: true },
    { fps: NTSC_60, frameSeconds: (n) => (n * 1001) / 60000, drop: true },
  ];

  it.each(rates)(
    'round-trips every frame with parseTime at $fps fps (drop-frame: $drop)',
    ({ fps, frameSeconds, drop }) => {
      fc.assert(
        fc.property(fc.nat(60 * 60 * 30 * 60), (n) => {
          const seconds = frameSeconds(n);
          const timecode = formatTimecode(seconds, fps, drop);
          expect(timecode).toMatch(
            drop ? /^\d{2,}:\d{2}:\d{2};\d{2}$/ : /^\d{2,}:\d{2}:\d{2}:\d{2}$/,
          );
          expect(parseTime(timecode, { fps })).toBe(seconds);
          // The next frame gets the next label, never a dropped one.
          const next = formatTimecode(frameSeconds(n + 1), fps, drop);
          expect(parseTime(next, { fps })).toBe(frameSeconds(n + 1));
        }),
        { numRuns: 1000 },
      );
    },
  );

  it('labels the frames around each minute of drop-frame 29.97 as SMPTE does', () => {
    const labels = [1798, 1799, 1800, 1801].map((n) =>
      formatTimecode((n * 1001) / 30000, NTSC, true),
    );
    expect(labels).toEqual(['00:00:59;28', '00:00:59;29', '00:01:00;02', '00:01:00;03']);
    const tenth = [17981, 17982, 17983].map((n) => formatTimecode((n * 1001) / 30000, NTSC, true));
    expect(tenth).toEqual(['00:09:59;29', '00:10:00;00', '00:10:00;01']);
  });
});
