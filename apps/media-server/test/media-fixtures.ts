import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, readFile, rename, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

const FFMPEG = process.env.FFMPEG_PATH ?? '/usr/bin/ffmpeg';
const FFPROBE = process.env.FFPROBE_PATH ?? '/usr/bin/ffprobe';

/** 12 s of 320x180 test card at 25 fps with a keyframe every second exactly, and a 440 Hz tone. */
const CARD_25 = [
  ['-f', 'lavfi', '-i', 'testsrc2=size=320x180:rate=25:duration=12'],
  ['-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=44100:duration=12'],
  ['-c:v', 'libx264', '-preset', 'veryfast', '-pix_fmt', 'yuv420p'],
  ['-g', '25', '-keyint_min', '25', '-sc_threshold', '0'],
  ['-c:a', 'aac', '-b:a', '64k', '-shortest', '-map_metadata', '-1'],
].flat();

/**
 * How each fixture is made. `from` names a fixture to remux instead of
 * encoding from scratch.
 */
const RECIPES = {
  /** B-frames (so an edit list hides their delay), AAC priming, `moov` after the `mdat` (FFmpeg's default). */
  moovLast: { from: undefined, args: CARD_25 },
  /**
   * `moov` first, and no B-frames: audio then leads video in the file, so the
   * audio sample playing at a keyframe's time lies before the keyframe.
   */
  moovFirst: { from: undefined, args: [...CARD_25, '-bf', '0', '-movflags', '+faststart'] },
  /** One `moof` per keyframe, nothing in the `moov`, offsets relative to each `moof`. */
  fragmented: {
    from: 'moovLast',
    args: ['-c', 'copy', '-movflags', 'frag_keyframe+empty_moov+default_base_moof'],
  },
  /** 5 s at 29.97 fps (30000/1001), video only, a keyframe every 30 frames. */
  ntsc: {
    from: undefined,
    args: [
      ['-f', 'lavfi', '-i', 'testsrc2=size=160x90:rate=30000/1001:duration=5'],
      ['-c:v', 'libx264', '-preset', 'veryfast', '-pix_fmt', 'yuv420p'],
      ['-g', '30', '-keyint_min', '30', '-sc_threshold', '0', '-map_metadata', '-1'],
    ].flat(),
  },
  /** 3 s of AAC and no video: every sample is a keyframe of the first (only) track. */
  audioOnly: {
    from: undefined,
    args: [
      '-f',
      'lavfi',
      '-i',
      'sine=frequency=440:sample_rate=44100:duration=3',
      '-c:a',
      'aac',
      '-b:a',
      '64k',
    ],
  },
} as const;

/**
 * Name of a generated fixture.
 *
 * @example
 * ```ts
 * const name: FixtureName = 'fragmented';
 * ```
 */
export type FixtureName = keyof typeof RECIPES;

/**
 * Paths of the generated fixtures.
 *
 * @example
 * ```ts
 * const { moovLast, fragmented }: MediaFixtures = await mediaFixtures();
 * ```
 */
export type MediaFixtures = Record<FixtureName, string>;

/**
 * Content-addressed, so fixtures made once serve every test file of a run
 * (and later runs) while a changed recipe gets a fresh folder.
 */
const CACHE_DIR = join(
  tmpdir(),
  `media-server-fixtures-${createHash('sha256').update(JSON.stringify(RECIPES)).digest('hex').slice(0, 12)}`,
);

const made = new Map<FixtureName, Promise<string>>();

async function exists(path: string): Promise<boolean> {
  try {
    return (await stat(path)).size > 0;
  } catch {
    return false;
  }
}

function fixture(name: FixtureName): Promise<string> {
  let path = made.get(name);
  if (path === undefined) {
    path = (async () => {
      const target = join(CACHE_DIR, `${name}.mp4`);
      if (await exists(target)) return target;
      await mkdir(CACHE_DIR, { recursive: true });
      const recipe = RECIPES[name];
      const input = recipe.from === undefined ? [] : ['-i', await fixture(recipe.from)];
      // Written aside and renamed, so a test file running alongside never sees half a video.
      const partial = join(
        CACHE_DIR,
        `${name}.${process.pid}.${Math.random().toString(36).slice(2)}.mp4`,
      );
      await run(FFMPEG, ['-v', 'error', '-nostdin', '-y', ...input, ...recipe.args, partial]);
      await rename(partial, target);
      return target;
    })();
    made.set(name, path);
  }
  return path;
}

/**
 * Generates (once) the test videos with the real FFmpeg and returns their
 * paths. All are small: the five take a few seconds to make.
 *
 * @example
 * ```ts
 * let fixtures: MediaFixtures;
 * beforeAll(async () => {
 *   fixtures = await mediaFixtures();
 * }, 120_000);
 * ```
 */
export async function mediaFixtures(): Promise<MediaFixtures> {
  const names = Object.keys(RECIPES) as FixtureName[];
  const paths = await Promise.all(names.map(fixture));
  return Object.fromEntries(names.map((name, i) => [name, paths[i]])) as MediaFixtures;
}

/**
 * A packet as FFprobe reports it: presentation time and duration in seconds
 * (`NaN` where FFprobe says N/A), file position, key flag.
 *
 * @example
 * ```ts
 * const packet: ProbedPacket = { time: 1, duration: 0.04, pos: 36994, key: true };
 * ```
 */
export interface ProbedPacket {
  readonly time: number;
  readonly duration: number;
  readonly pos: number;
  readonly key: boolean;
}

/**
 * Every packet of one stream (`v:0`, `a:0`, `1`) of `path`, in file order, as FFprobe demuxes it.
 *
 * @example
 * ```ts
 * const audio = await ffprobePackets(fixtures.moovLast, 'a:0');
 * ```
 */
export async function ffprobePackets(path: string, stream: string): Promise<ProbedPacket[]> {
  const { stdout } = await run(FFPROBE, [
    ...['-v', 'error', '-select_streams', stream],
    ...['-show_entries', 'packet=pts_time,duration_time,pos,flags', '-of', 'json', path],
  ]);
  const packets = (JSON.parse(stdout) as { packets?: Record<string, string>[] }).packets ?? [];
  return packets.map((p) => ({
    time: Number(p.pts_time),
    duration: Number(p.duration_time),
    pos: Number(p.pos),
    key: (p.flags ?? '').includes('K'),
  }));
}

/**
 * The key frames of a stream (`v:0` by default): FFprobe's `pts_time` and
 * `pos` of each packet flagged K (the container's sync samples), by time.
 *
 * @example
 * ```ts
 * const [first] = await ffprobeKeyframes(fixtures.moovLast); // { time: 0, pos: 48 }
 * ```
 */
export async function ffprobeKeyframes(
  path: string,
  stream = 'v:0',
): Promise<{ time: number; pos: number }[]> {
  const packets = await ffprobePackets(path, stream);
  return packets
    .filter((p) => p.key)
    .map(({ time, pos }) => ({ time, pos }))
    .sort((a, b) => a.time - b.time);
}

/**
 * FFprobe's view of a file's streams: codec type, time base denominator, codec tag.
 *
 * @example
 * ```ts
 * const [video] = await ffprobeStreams(fixtures.moovLast); // { index: 0, codecType: 'video', timescale: 12800, codecTag: 'avc1' }
 * ```
 */
export async function ffprobeStreams(
  path: string,
): Promise<{ index: number; codecType: string; timescale: number; codecTag: string }[]> {
  const { stdout } = await run(FFPROBE, [
    ...['-v', 'error', '-show_entries', 'stream=index,codec_type,time_base,codec_tag_string'],
    ...['-of', 'json', path],
  ]);
  const streams = (JSON.parse(stdout) as { streams: Record<string, string | number>[] }).streams;
  return streams.map((s) => ({
    index: Number(s.index),
    codecType: String(s.codec_type),
    timescale: Number(String(s.time_base).split('/')[1]),
    codecTag: String(s.codec_tag_string),
  }));
}

/**
 * FFprobe's duration of the whole file, in seconds.
 *
 * @example
 * ```ts
 * await ffprobeDuration(fixtures.moovLast); // 12
 * ```
 */
export async function ffprobeDuration(path: string): Promise<number> {
  const { stdout } = await run(FFPROBE, [
    '-v',
    'error',
    '-show_entries',
    'format=duration',
    '-of',
    'json',
    path,
  ]);
  return Number((JSON.parse(stdout) as { format: { duration: string } }).format.duration);
}

/**
 * A `ReadAt` over bytes in memory that records every range asked for.
 *
 * @example
 * ```ts
 * const reader = countingReader(bytes);
 * await buildSeekIndex(reader.readAt, bytes.length);
 * reader.bytesRead; // metadata only
 * ```
 */
export function countingReader(bytes: Uint8Array): {
  readAt: (offset: number, length: number) => Promise<Uint8Array>;
  readonly ranges: { offset: number; length: number }[];
  readonly bytesRead: number;
} {
  const ranges: { offset: number; length: number }[] = [];
  return {
    readAt: async (offset, length) => {
      ranges.push({ offset, length });
      return bytes.slice(offset, offset + length);
    },
    ranges,
    get bytesRead() {
      return ranges.reduce(
        (sum, r) => sum + Math.min(r.length, Math.max(0, bytes.length - r.offset)),
        0,
      );
    },
  };
}

/**
 * Reads a fixture whole (they are small).
 *
 * @example
 * ```ts
 * const bytes = await fixtureBytes(fixtures.fragmented);
 * ```
 */
export async function fixtureBytes(path: string): Promise<Uint8Array> {
  return new Uint8Array(await readFile(path));
}

/**
 * The top-level boxes of a well-formed file, found independently of the code
 * under test (32-bit sizes only, which is all FFmpeg writes for small files).
 *
 * @example
 * ```ts
 * topLevelBoxes(bytes).map((b) => b.type); // ['ftyp', 'free', 'mdat', 'moov']
 * ```
 */
export function topLevelBoxes(bytes: Uint8Array): { type: string; start: number; size: number }[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const boxes: { type: string; start: number; size: number }[] = [];
  for (let at = 0; at + 8 <= bytes.length; ) {
    const size = view.getUint32(at);
    const type = String.fromCharCode(...bytes.subarray(at + 4, at + 8));
    boxes.push({ type, start: at, size });
    if (size < 8) break;
    at += size;
  }
  return boxes;
}
