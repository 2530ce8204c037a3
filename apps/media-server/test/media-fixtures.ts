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

/** A box to serialize: a payload, or children, never both. */
interface BoxNode {
  readonly type: string;
  readonly payload?: Uint8Array;
  readonly children?: readonly BoxNode[];
}

function boxSize(node: BoxNode): number {
  return (
    8 + (node.payload?.length ?? 0) + (node.children ?? []).reduce((n, c) => n + boxSize(c), 0)
  );
}

function writeBox(node: BoxNode, out: Uint8Array, at: number): number {
  const size = boxSize(node);
  new DataView(out.buffer, out.byteOffset).setUint32(at, size);
  out.set(new TextEncoder().encode(node.type), at + 4);
  let cursor = at + 8;
  if (node.payload) {
    out.set(node.payload, cursor);
    cursor += node.payload.length;
  }
  for (const child of node.children ?? []) cursor = writeBox(child, out, cursor);
  return cursor;
}

/** A full box payload: version and flags, then `fields` as 32-bit big-endian words. */
function fullBox(version: number, words: ArrayLike<number>, extra = new Uint8Array(0)): Uint8Array {
  const out = new Uint8Array(4 + words.length * 4 + extra.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, version << 24);
  for (let i = 0; i < words.length; i++) view.setUint32(4 + i * 4, words[i]! >>> 0);
  out.set(extra, 4 + words.length * 4);
  return out;
}

/** Run-length pairs (count, value) of `values`, as `stts` and `ctts` store them. */
function runs(count: number, value: (i: number) => number): number[] {
  const words: number[] = [];
  for (let i = 0; i < count; i++) {
    const v = value(i);
    if (words.length > 0 && words.at(-1) === v) words[words.length - 2]!++;
    else words.push(1, v);
  }
  return [words.length / 2, ...words];
}

/**
 * Shape of {@link longMovie}: `seconds` of video at `fps` (timescale
 * `fps * 256`, a keyframe every `gop` frames, two B-frames between
 * references) and 48 kHz AAC-like audio (1024 ticks per sample), interleaved
 * in one-second chunks: chunk k holds the audio, then the video, whose decode
 * time lies in [k, k + 1) s. Audio first makes the audio playing at a keyframe
 * often lie before it, as in FFmpeg's files.
 *
 * @example
 * ```ts
 * const shape: LongMovieShape = { seconds: 6 * 3600, fps: 60, gop: 60 };
 * ```
 */
export interface LongMovieShape {
  readonly seconds: number;
  readonly fps: number;
  readonly gop: number;
  /** Write sample sizes as an 8-bit `stz2` instead of `stsz` (every size here fits). */
  readonly compactSizes?: boolean;
  /** Write chunk offsets as 64-bit `co64` instead of `stco`. */
  readonly largeOffsets?: boolean;
}

/**
 * A synthetic MP4 of {@link LongMovieShape}, with its `moov` after an
 * `mdat` whose payload is never materialized (`readAt` serves zeros there),
 * plus the layout it was written from, so tests can work out the answers on
 * their own.
 *
 * @example
 * ```ts
 * const movie = longMovie({ seconds: 3600, fps: 60, gop: 60 });
 * const index = await buildSeekIndex(movie.readAt, movie.size);
 * ```
 */
export interface LongMovie {
  readonly size: number;
  readonly readAt: (offset: number, length: number) => Promise<Uint8Array>;
  readonly moovStart: number;
  readonly moovSize: number;
  readonly videoSamples: number;
  readonly audioSamples: number;
  /** File offset of the video, and of the audio, chunk of each second. */
  readonly videoChunkOffsets: Float64Array;
  readonly audioChunkOffsets: Float64Array;
  /** Index of the first audio sample of chunk k (`audioChunkFirst[seconds]` is the count). */
  readonly audioChunkFirst: Uint32Array;
  readonly videoSize: (i: number) => number;
  readonly audioSize: (j: number) => number;
  /** Display position of video sample `i` (decode order) within the whole track. */
  readonly videoDisplay: (i: number) => number;
  /** Edit-list media times: B-frame delay of the video, priming of the audio. */
  readonly videoMediaTime: number;
  readonly audioMediaTime: number;
  readonly videoTimescale: number;
  readonly audioTimescale: number;
}

/**
 * Writes the `moov` of a long film without encoding anything: the sample
 * tables FFmpeg would write for `shape.seconds` of video and AAC audio, in
 * well under a second even for 6 hours. The file's `mdat` holds zeros.
 *
 * @example
 * ```ts
 * const movie = longMovie({ seconds: 6 * 3600, fps: 60, gop: 60 }); // 2.3 million samples
 * movie.videoSamples + movie.audioSamples; // 2_308_500
 * ```
 */
export function longMovie(shape: LongMovieShape): LongMovie {
  const { seconds, fps, gop } = shape;
  const videoTimescale = fps * 256;
  const audioTimescale = 48_000;
  const videoSamples = seconds * fps;
  const audioFirst = (k: number) => Math.ceil((k * audioTimescale) / 1024);
  const audioChunkFirst = Uint32Array.from({ length: seconds + 1 }, (_, k) => audioFirst(k));
  const audioSamples = audioChunkFirst[seconds]!;
  const videoSize = (i: number) => (i % gop === 0 ? 120 : 12 + (i % 5));
  const audioSize = (j: number) => 6 + (j % 3);
  // Within a GOP, after the keyframe: P(n+2) B(n) B(n+1), as x264 with two B-frames.
  const videoDisplay = (i: number) => {
    const inGop = i % gop;
    if (inGop === 0) return i;
    const base = 1 + 3 * Math.floor((inGop - 1) / 3);
    if (base + 2 > gop - 1) return i;
    return i - inGop + [base + 2, base, base + 1][(inGop - 1) % 3]!;
  };
  const videoMediaTime = 512;
  const audioMediaTime = 1024;

  const ftyp: BoxNode = {
    type: 'ftyp',
    payload: new TextEncoder().encode('isom\0\0\x02\0isomiso2avc1mp41'),
  };
  const mdatStart = boxSize(ftyp);
  const videoChunkOffsets = new Float64Array(seconds);
  const audioChunkOffsets = new Float64Array(seconds);
  let cursor = mdatStart + 8;
  for (let k = 0; k < seconds; k++) {
    audioChunkOffsets[k] = cursor;
    for (let j = audioChunkFirst[k]!; j < audioChunkFirst[k + 1]!; j++) cursor += audioSize(j);
    videoChunkOffsets[k] = cursor;
    for (let i = k * fps; i < (k + 1) * fps; i++) cursor += videoSize(i);
  }
  const mdatSize = cursor - mdatStart;

  const sizes = (count: number, size: (i: number) => number): BoxNode => {
    if (shape.compactSizes) {
      const fields = Uint8Array.from({ length: count }, (_, i) => size(i));
      return { type: 'stz2', payload: fullBox(0, [8, count], fields) };
    }
    const words = new Uint32Array(count + 2);
    words[1] = count;
    for (let i = 0; i < count; i++) words[i + 2] = size(i);
    return { type: 'stsz', payload: fullBox(0, words) };
  };
  const stsc = (perChunk: (k: number) => number) => {
    const words: number[] = [];
    for (let k = 0; k < seconds; k++) {
      const n = perChunk(k);
      if (words.length === 0 || words.at(-2) !== n) words.push(k + 1, n, 1);
    }
    return fullBox(0, [words.length / 3, ...words]);
  };
  const stco = (offsets: Float64Array): BoxNode => {
    if (!shape.largeOffsets)
      return { type: 'stco', payload: fullBox(0, [offsets.length, ...offsets]) };
    // High words are 0: the file stays small, only the box layout is 64-bit.
    const words = Array.from(offsets, (offset) => [0, offset]).flat();
    return { type: 'co64', payload: fullBox(0, [offsets.length, ...words]) };
  };
  const elst = (segmentMs: number, mediaTime: number) =>
    fullBox(0, [1, segmentMs, mediaTime, 0x0001_0000]);
  const mdhd = (timescale: number, duration: number) =>
    fullBox(0, [0, 0, timescale, duration, 0x55c4_0000]);
  const hdlr = (handler: string) => {
    const out = fullBox(0, [0, 0, 0, 0, 0], new Uint8Array(1));
    out.set(new TextEncoder().encode(handler), 8);
    return out;
  };
  const tkhd = (id: number, durationMs: number) =>
    fullBox(0, [
      0,
      0,
      id,
      0,
      durationMs,
      0,
      0,
      0,
      0,
      0x10000,
      0,
      0,
      0,
      0x10000,
      0,
      0,
      0,
      0x40000000,
      0,
      0,
    ]);
  const dinf: BoxNode = {
    type: 'dinf',
    children: [
      {
        type: 'dref',
        payload: fullBox(0, [1], new Uint8Array([0, 0, 0, 12, 117, 114, 108, 32, 0, 0, 0, 1])),
      },
    ],
  };
  // avc1 (78 bytes of VisualSampleEntry fields, 16x16) with an avcC naming High profile level 3.1.
  const avc1 = new Uint8Array(78);
  const avc1View = new DataView(avc1.buffer);
  avc1View.setUint16(6, 1);
  avc1View.setUint32(24, 0x0010_0010);
  avc1View.setUint32(28, 0x0048_0000);
  avc1View.setUint32(32, 0x0048_0000);
  avc1View.setUint16(40, 1);
  avc1View.setUint16(74, 0x18);
  avc1View.setInt16(76, -1);
  const mp4a = new Uint8Array(28);
  const mp4aView = new DataView(mp4a.buffer);
  mp4aView.setUint16(6, 1);
  mp4aView.setUint16(16, 2);
  mp4aView.setUint16(18, 16);
  mp4aView.setUint32(24, audioTimescale << 16);
  const durationMs = seconds * 1000;
  const track = (
    id: number,
    handler: string,
    mediaHeader: BoxNode,
    timescale: number,
    mediaDuration: number,
    mediaTime: number,
    stbl: BoxNode[],
  ): BoxNode => ({
    type: 'trak',
    children: [
      { type: 'tkhd', payload: tkhd(id, durationMs) },
      { type: 'edts', children: [{ type: 'elst', payload: elst(durationMs, mediaTime) }] },
      {
        type: 'mdia',
        children: [
          { type: 'mdhd', payload: mdhd(timescale, mediaDuration) },
          { type: 'hdlr', payload: hdlr(handler) },
          { type: 'minf', children: [mediaHeader, dinf, { type: 'stbl', children: stbl }] },
        ],
      },
    ],
  });
  const video = track(
    1,
    'vide',
    { type: 'vmhd', payload: fullBox(0, [0, 0]) },
    videoTimescale,
    videoSamples * 256,
    videoMediaTime,
    [
      {
        type: 'stsd',
        payload: fullBox(0, [1]),
        children: [
          {
            type: 'avc1',
            payload: avc1,
            children: [
              { type: 'avcC', payload: new Uint8Array([1, 0x64, 0, 0x1f, 0xff, 0xe0, 0]) },
            ],
          },
        ],
      },
      { type: 'stts', payload: fullBox(0, [1, videoSamples, 256]) },
      {
        type: 'ctts',
        payload: fullBox(
          0,
          runs(videoSamples, (i) => (videoDisplay(i) - i) * 256 + videoMediaTime),
        ),
      },
      {
        type: 'stss',
        payload: fullBox(0, [
          videoSamples / gop,
          ...Array.from({ length: videoSamples / gop }, (_, k) => k * gop + 1),
        ]),
      },
      { type: 'stsc', payload: stsc(() => fps) },
      sizes(videoSamples, videoSize),
      stco(videoChunkOffsets),
    ],
  );
  const audio = track(
    2,
    'soun',
    { type: 'smhd', payload: fullBox(0, [0]) },
    audioTimescale,
    audioSamples * 1024,
    audioMediaTime,
    [
      { type: 'stsd', payload: fullBox(0, [1]), children: [{ type: 'mp4a', payload: mp4a }] },
      { type: 'stts', payload: fullBox(0, [1, audioSamples, 1024]) },
      { type: 'stsc', payload: stsc((k) => audioChunkFirst[k + 1]! - audioChunkFirst[k]!) },
      sizes(audioSamples, audioSize),
      stco(audioChunkOffsets),
    ],
  );
  const mvhd = fullBox(0, [
    0,
    0,
    1000,
    durationMs,
    0x10000,
    0x0100_0000,
    0,
    0,
    0x10000,
    0,
    0,
    0,
    0x10000,
    0,
    0,
    0,
    0x40000000,
    0,
    0,
    0,
    0,
    0,
    0,
    3,
  ]);
  const moov: BoxNode = { type: 'moov', children: [{ type: 'mvhd', payload: mvhd }, video, audio] };
  const moovStart = mdatStart + mdatSize;
  const moovSize = boxSize(moov);
  const head = new Uint8Array(mdatStart + 8);
  writeBox(ftyp, head, 0);
  new DataView(head.buffer).setUint32(mdatStart, mdatSize);
  head.set(new TextEncoder().encode('mdat'), mdatStart + 4);
  const moovBytes = new Uint8Array(moovSize);
  writeBox(moov, moovBytes, 0);
  const size = moovStart + moovSize;
  return {
    size,
    readAt: async (offset, length) => {
      const out = new Uint8Array(Math.max(0, Math.min(length, size - offset)));
      const copy = (from: Uint8Array, at: number) => {
        const start = Math.max(offset, at);
        const end = Math.min(offset + out.length, at + from.length);
        if (start < end) out.set(from.subarray(start - at, end - at), start - offset);
      };
      copy(head, 0);
      copy(moovBytes, moovStart);
      return out;
    },
    moovStart,
    moovSize,
    videoSamples,
    audioSamples,
    videoChunkOffsets,
    audioChunkOffsets,
    audioChunkFirst,
    videoSize,
    audioSize,
    videoDisplay,
    videoMediaTime,
    audioMediaTime,
    videoTimescale,
    audioTimescale,
  };
}
