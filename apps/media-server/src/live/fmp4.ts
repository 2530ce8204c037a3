import type { ByteView } from 'buffer-view';
import { MediaServerError } from '../errors.ts';

/**
 * One track of a live stream, from its init segment (`moov`).
 *
 * @example
 * ```ts
 * const track: LiveTrack = { id: 1, kind: 'video', timescale: 12800, codec: 'avc1.64000d', width: 320, height: 180, defaultSampleFlags: 0x01010000, defaultSampleDuration: 0 };
 * ```
 */
export interface LiveTrack {
  readonly id: number;
  readonly kind: 'video' | 'audio' | 'other';
  readonly timescale: number;
  /** RFC 6381 codec string (`avc1.64000d`, `mp4a.40.2`), or the sample entry's type when it is not understood. */
  readonly codec: string;
  readonly width: number | undefined;
  readonly height: number | undefined;
  /** `trex` defaults, which fragments fall back on when their own boxes leave a field out. */
  readonly defaultSampleFlags: number;
  readonly defaultSampleDuration: number;
}

/**
 * What the init segment says about a live stream.
 *
 * @example
 * ```ts
 * const info = parseInit(initBytes);
 * new MediaSource().addSourceBuffer(info.mimeCodec);
 * ```
 */
export interface InitInfo {
  readonly tracks: readonly LiveTrack[];
  /** The track whose keyframes decide where a viewer may start: the first video track. */
  readonly videoTrack: LiveTrack | undefined;
  /** MSE type, e.g. `video/mp4; codecs="avc1.64000d,mp4a.40.2"`. */
  readonly mimeCodec: string;
}

/**
 * What one fragment's `moof` says, for the fragment's keyframe marker and the live edge.
 *
 * @example
 * ```ts
 * const info: FragmentInfo = { keyframe: true, sequence: 7, decodeSeconds: 6, durationSeconds: 1 };
 * ```
 */
export interface FragmentInfo {
  /** The first sample of the video track (or of any track, for audio-only streams) is a sync sample. */
  readonly keyframe: boolean;
  /** `mfhd` sequence number. */
  readonly sequence: number;
  /** The video track's `tfdt` in seconds, when present. */
  readonly decodeSeconds: number | undefined;
  /** Sum of the video track's sample durations in seconds, when known. */
  readonly durationSeconds: number | undefined;
}

interface Box {
  readonly type: string;
  readonly start: number;
  readonly end: number;
  /** First byte after the header. */
  readonly body: number;
}

// trun flags (ISO/IEC 14496-12 §8.8.8)
const TRUN_DATA_OFFSET = 0x1;
const TRUN_FIRST_FLAGS = 0x4;
const TRUN_DURATION = 0x100;
const TRUN_SIZE = 0x200;
const TRUN_FLAGS = 0x400;
const TRUN_CTS = 0x800;
// tfhd flags (§8.8.7)
const TFHD_BASE_OFFSET = 0x1;
const TFHD_DESCRIPTION = 0x2;
const TFHD_DURATION = 0x8;
const TFHD_SIZE = 0x10;
const TFHD_FLAGS = 0x20;

/**
 * Whether sample flags describe a sync sample: `sample_depends_on == 2`
 * (depends on no other sample), or not flagged `sample_is_non_sync_sample`
 * while not claiming to depend on others.
 *
 * @example
 * ```ts
 * isSyncSample(0x02000000); // true: depends on nothing
 * isSyncSample(0x01010000); // false: depends on others, non-sync
 * ```
 */
export function isSyncSample(flags: number): boolean {
  const dependsOn = (flags >>> 24) & 0b11;
  const nonSync = (flags >>> 16) & 1;
  return dependsOn === 2 || (dependsOn !== 1 && nonSync === 0);
}

/**
 * Reads the tracks, codecs and fragment defaults of an init segment
 * (`ftyp` + `moov`). Throws MEDIA_CORRUPT when the boxes do not add up.
 *
 * @example
 * ```ts
 * const info = parseInit(ByteView.from(initBytes));
 * info.mimeCodec; // 'video/mp4; codecs="avc1.64000d,mp4a.40.2"'
 * ```
 */
export function parseInit(init: ByteView): InitInfo {
  return guard('init segment', () => {
    const moov = [...children(init, 0, init.length)].find((b) => b.type === 'moov');
    if (moov === undefined) corrupt('the init segment has no moov box');
    const trex = new Map<number, { duration: number; flags: number }>();
    const traks: Box[] = [];
    for (const box of children(init, moov.body, moov.end)) {
      if (box.type === 'trak') traks.push(box);
      if (box.type !== 'mvex') continue;
      for (const t of children(init, box.body, box.end)) {
        if (t.type !== 'trex') continue;
        const p = t.body + 4;
        need(init, t, p + 20);
        trex.set(init.getUint32(p), {
          duration: init.getUint32(p + 8),
          flags: init.getUint32(p + 16),
        });
      }
    }
    if (traks.length === 0) corrupt('the moov box has no tracks');
    const tracks = traks.map((trak) => readTrack(init, trak, trex));
    const videoTrack = tracks.find((t) => t.kind === 'video');
    const codecs = tracks.filter((t) => t.kind !== 'other').map((t) => t.codec);
    const mimeCodec = `${videoTrack === undefined ? 'audio' : 'video'}/mp4; codecs="${codecs.join(',')}"`;
    return { tracks, videoTrack, mimeCodec };
  });
}

/**
 * Reads a fragment's `moof`: whether it starts with a keyframe (the first
 * sample's flags from `trun`, else `tfhd`'s default, else `trex`'s), its
 * sequence number, and the video track's decode time and duration. Throws
 * MEDIA_CORRUPT when the boxes do not add up.
 *
 * @example
 * ```ts
 * const { keyframe } = parseMoof(fragment.view(moofStart, moofEnd), initInfo);
 * if (keyframe) broadcast.write(fragment, { marker: true });
 * ```
 */
export function parseMoof(moof: ByteView, init: InitInfo): FragmentInfo {
  return guard('moof', () => {
    const top = children(moof, 0, moof.length).next();
    if (top.done === true || top.value.type !== 'moof') corrupt('expected a moof box');
    const box = top.value;
    let sequence = 0;
    let first: { flags: number; track: LiveTrack } | undefined;
    let video: { decode: number | undefined; duration: number | undefined } | undefined;
    for (const child of children(moof, box.body, box.end)) {
      if (child.type === 'mfhd') {
        need(moof, child, child.body + 8);
        sequence = moof.getUint32(child.body + 4);
      }
      if (child.type !== 'traf') continue;
      const traf = readTraf(moof, child, init);
      if (traf === undefined) continue;
      if (traf.track === init.videoTrack) {
        video = { decode: traf.decode, duration: traf.duration };
        first = { flags: traf.firstFlags, track: traf.track };
      } else if (init.videoTrack === undefined && first === undefined) {
        first = { flags: traf.firstFlags, track: traf.track };
      }
    }
    const timescale = init.videoTrack?.timescale ?? 0;
    return {
      keyframe: first !== undefined && isSyncSample(first.flags),
      sequence,
      decodeSeconds:
        video?.decode !== undefined && timescale > 0 ? video.decode / timescale : undefined,
      durationSeconds:
        video?.duration !== undefined && timescale > 0 ? video.duration / timescale : undefined,
    };
  });
}

function readTrack(
  view: ByteView,
  trak: Box,
  trex: Map<number, { duration: number; flags: number }>,
): LiveTrack {
  let id = 0;
  let timescale = 0;
  let handler = '';
  let entry: Box | undefined;
  for (const box of children(view, trak.body, trak.end)) {
    if (box.type === 'tkhd') {
      const version = view.getUint8(box.body);
      const at = box.body + 4 + (version === 1 ? 16 : 8);
      need(view, box, at + 4);
      id = view.getUint32(at);
    }
    if (box.type !== 'mdia') continue;
    for (const m of children(view, box.body, box.end)) {
      if (m.type === 'mdhd') {
        const version = view.getUint8(m.body);
        const at = m.body + 4 + (version === 1 ? 16 : 8);
        need(view, m, at + 4);
        timescale = view.getUint32(at);
      } else if (m.type === 'hdlr') {
        need(view, m, m.body + 12);
        handler = fourcc(view, m.body + 8);
      } else if (m.type === 'minf') {
        const stbl = find(view, m, 'stbl');
        const stsd = stbl === undefined ? undefined : find(view, stbl, 'stsd');
        if (stsd !== undefined) entry = children(view, stsd.body + 8, stsd.end).next().value;
      }
    }
  }
  if (id === 0) corrupt('a trak has no track id (tkhd)');
  const kind = handler === 'vide' ? 'video' : handler === 'soun' ? 'audio' : 'other';
  const defaults = trex.get(id);
  const visual = kind === 'video' && entry !== undefined && entry.end - entry.body >= 78;
  return {
    id,
    kind,
    timescale,
    // The broadcaster chose these bytes, and the codec string ends up in headers and the page.
    codec: (entry === undefined ? handler : codecOf(view, entry)).replace(/[^A-Za-z0-9.]/g, '_'),
    width: visual && entry !== undefined ? view.getUint16(entry.body + 24) : undefined,
    height: visual && entry !== undefined ? view.getUint16(entry.body + 26) : undefined,
    defaultSampleFlags: defaults?.flags ?? 0,
    defaultSampleDuration: defaults?.duration ?? 0,
  };
}

/** RFC 6381 codec parameter of a sample entry; the entry's type where the details are not read. */
function codecOf(view: ByteView, entry: Box): string {
  const type = entry.type;
  if ((type === 'avc1' || type === 'avc3') && entry.end - entry.body > 78) {
    const avcC = [...children(view, entry.body + 78, entry.end)].find((b) => b.type === 'avcC');
    if (avcC === undefined) return type;
    need(view, avcC, avcC.body + 4);
    return `${type}.${hex2(view.getUint8(avcC.body + 1))}${hex2(view.getUint8(avcC.body + 2))}${hex2(view.getUint8(avcC.body + 3))}`;
  }
  if (type === 'mp4a' && entry.end - entry.body > 28) {
    const esds = [...children(view, entry.body + 28, entry.end)].find((b) => b.type === 'esds');
    return esds === undefined ? type : mp4aCodec(view, esds.body + 4, esds.end);
  }
  if (type === 'Opus') return 'opus';
  if (type === 'fLaC') return 'flac';
  return type;
}

/** `mp4a.<objectTypeIndication>.<audioObjectType>` from an `esds` descriptor chain. */
function mp4aCodec(view: ByteView, start: number, end: number): string {
  let at = start;
  let oti: number | undefined;
  while (at < end) {
    const tag = view.getUint8(at++);
    let size = 0;
    for (let i = 0; i < 4; i++) {
      const b = view.getUint8(at++);
      size = (size << 7) | (b & 0x7f);
      if ((b & 0x80) === 0) break;
    }
    if (tag === 0x03) {
      // ES_Descriptor: ES_ID, then flags saying which optional fields follow.
      const flags = view.getUint8(at + 2);
      at += 3;
      if (flags & 0x80) at += 2;
      if (flags & 0x40) at += 1 + view.getUint8(at);
      if (flags & 0x20) at += 2;
    } else if (tag === 0x04) {
      oti = view.getUint8(at);
      at += 13;
    } else if (tag === 0x05) {
      if (oti !== 0x40) break;
      let aot = view.getUint8(at) >>> 3;
      if (aot === 31)
        aot = 32 + (((view.getUint8(at) & 0x07) << 3) | (view.getUint8(at + 1) >>> 5));
      return `mp4a.40.${aot}`;
    } else {
      at += size;
    }
  }
  return oti === undefined ? 'mp4a.40.2' : `mp4a.${oti.toString(16)}`;
}

function readTraf(view: ByteView, traf: Box, init: InitInfo) {
  let track: LiveTrack | undefined;
  let tfhdFlags: number | undefined;
  let tfhdDuration: number | undefined;
  let decode: number | undefined;
  let firstFlags: number | undefined;
  let duration = 0;
  let samples = 0;
  for (const box of children(view, traf.body, traf.end)) {
    if (box.type === 'tfhd') {
      const flags = view.getUint24(box.body + 1);
      let at = box.body + 4;
      need(view, box, at + 4);
      const id = view.getUint32(at);
      track = init.tracks.find((t) => t.id === id);
      if (track === undefined) corrupt(`a traf names track ${id}, which the init segment lacks`);
      at += 4;
      if (flags & TFHD_BASE_OFFSET) at += 8;
      if (flags & TFHD_DESCRIPTION) at += 4;
      if (flags & TFHD_DURATION) {
        need(view, box, at + 4);
        tfhdDuration = view.getUint32(at);
        at += 4;
      }
      if (flags & TFHD_SIZE) at += 4;
      if (flags & TFHD_FLAGS) {
        need(view, box, at + 4);
        tfhdFlags = view.getUint32(at);
      }
    } else if (box.type === 'tfdt') {
      const version = view.getUint8(box.body);
      need(view, box, box.body + (version === 1 ? 12 : 8));
      decode = version === 1 ? view.getSafeUint64(box.body + 4) : view.getUint32(box.body + 4);
    } else if (box.type === 'trun') {
      if (track === undefined) corrupt('a trun comes before its tfhd');
      const flags = view.getUint24(box.body + 1);
      let at = box.body + 4;
      need(view, box, at + 4);
      const count = view.getUint32(at);
      at += 4;
      if (flags & TRUN_DATA_OFFSET) at += 4;
      let first: number | undefined;
      if (flags & TRUN_FIRST_FLAGS) {
        need(view, box, at + 4);
        first = view.getUint32(at);
        at += 4;
      }
      const fields = [TRUN_DURATION, TRUN_SIZE, TRUN_FLAGS, TRUN_CTS].filter((f) => flags & f);
      const stride = fields.length * 4;
      need(view, box, at + count * stride);
      const defaultDuration = tfhdDuration ?? track.defaultSampleDuration;
      const flagsAt = (flags & TRUN_DURATION ? 4 : 0) + (flags & TRUN_SIZE ? 4 : 0);
      if (samples === 0 && count > 0) {
        firstFlags =
          first ??
          (flags & TRUN_FLAGS
            ? view.getUint32(at + flagsAt)
            : (tfhdFlags ?? track.defaultSampleFlags));
      }
      if (flags & TRUN_DURATION) {
        for (let i = 0; i < count; i++) duration += view.getUint32(at + i * stride);
      } else {
        duration += count * defaultDuration;
      }
      samples += count;
    }
  }
  if (track === undefined || firstFlags === undefined) return undefined;
  return { track, decode, duration, firstFlags };
}

/** The child boxes of `[start, end)`, checked to lie inside it. */
function* children(view: ByteView, start: number, end: number): Generator<Box> {
  let at = start;
  while (at < end) {
    if (end - at < 8) corrupt(`${end - at} stray bytes where a box header should be`);
    let size = view.getUint32(at);
    const type = fourcc(view, at + 4);
    let header = 8;
    if (size === 1) {
      if (end - at < 16) corrupt(`a ${type} box's 64-bit size is cut off`);
      size = view.getSafeUint64(at + 8);
      header = 16;
    } else if (size === 0) {
      size = end - at;
    }
    if (size < header || at + size > end) {
      corrupt(`a ${type} box of ${size} bytes does not fit its parent (${end - at} bytes left)`);
    }
    yield { type, start: at, end: at + size, body: at + header };
    at += size;
  }
}

function find(view: ByteView, parent: Box, type: string): Box | undefined {
  for (const box of children(view, parent.body, parent.end)) if (box.type === type) return box;
  return undefined;
}

function need(view: ByteView, box: Box, end: number): void {
  if (end > box.end || end > view.length) corrupt(`a ${box.type} box is too short`);
}

function fourcc(view: ByteView, at: number): string {
  return String.fromCharCode(
    view.getUint8(at),
    view.getUint8(at + 1),
    view.getUint8(at + 2),
    view.getUint8(at + 3),
  );
}

function hex2(n: number): string {
  return n.toString(16).padStart(2, '0');
}

function corrupt(message: string): never {
  throw new MediaServerError('MEDIA_CORRUPT', message);
}

/** Range errors from reading past a view's end become MEDIA_CORRUPT naming what was being read. */
function guard<T>(what: string, read: () => T): T {
  try {
    return read();
  } catch (error) {
    if (MediaServerError.isInstance(error)) {
      throw new MediaServerError('MEDIA_CORRUPT', `${what}: ${error.message}`);
    }
    throw new MediaServerError(
      'MEDIA_CORRUPT',
      `${what} is malformed: ${(error as Error).message}`,
      {
        cause: error,
      },
    );
  }
}
