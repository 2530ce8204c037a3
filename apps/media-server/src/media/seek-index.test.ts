import { beforeAll, describe, expect, it } from 'vitest';
import {
  countingReader,
  type FixtureName,
  ffprobeDuration,
  ffprobeKeyframes,
  ffprobePackets,
  ffprobeStreams,
  fixtureBytes,
  type MediaFixtures,
  mediaFixtures,
  type ProbedPacket,
  topLevelBoxes,
} from '../../test/media-fixtures.ts';
import { buildSeekIndex, type SeekIndex } from './seek-index.ts';

let fixtures: MediaFixtures;
beforeAll(async () => {
  fixtures = await mediaFixtures();
}, 120_000);

async function indexOf(name: FixtureName): Promise<{ index: SeekIndex; bytes: Uint8Array }> {
  const bytes = await fixtureBytes(fixtures[name]);
  const index = await buildSeekIndex(countingReader(bytes).readAt, bytes.length);
  return { index, bytes };
}

/** What seek(t) must answer per FFprobe's key frames: the latest at or before t, else the first. */
function expectedKeyframe(keyframes: { time: number }[], t: number): number {
  let pick = 0;
  for (const [i, k] of keyframes.entries()) if (k.time <= t + 1e-9) pick = i;
  return keyframes[pick]!.time;
}

/** The packet playing at `time` in a stream (the last one starting at or before it), if the stream still runs. */
function packetAt(packets: ProbedPacket[], time: number): ProbedPacket | undefined {
  const sorted = [...packets].sort((a, b) => a.time - b.time);
  const last = sorted.at(-1)!;
  if (time >= last.time + last.duration) return undefined;
  return sorted.filter((p) => p.time <= time + 1e-9).at(-1) ?? sorted[0];
}

const KINDS: { name: FixtureName; stream: string; frameRate: number | undefined }[] = [
  { name: 'moovLast', stream: 'v:0', frameRate: 25 },
  { name: 'moovFirst', stream: 'v:0', frameRate: 25 },
  { name: 'fragmented', stream: 'v:0', frameRate: 25 },
  { name: 'ntsc', stream: 'v:0', frameRate: 30000 / 1001 },
  { name: 'audioOnly', stream: 'a:0', frameRate: undefined },
];

describe('buildSeekIndex on FFmpeg-made files', () => {
  it.each(KINDS)(
    'lists the key frames FFprobe finds in $name, at the same times and positions',
    async ({ name, stream }) => {
      const { index } = await indexOf(name);
      const probed = await ffprobeKeyframes(fixtures[name], stream);
      expect(probed.length).toBeGreaterThan(2);
      expect(index.keyframes.length).toBe(probed.length);
      for (const [i, keyframe] of index.keyframes.entries()) {
        expect(Math.abs(keyframe.time - probed[i]!.time)).toBeLessThan(0.001);
        expect(keyframe.byteOffset).toBe(probed[i]!.pos);
      }
    },
  );

  it.each(KINDS)(
    'reports the frame rate, tracks and layout of $name',
    async ({ name, frameRate }) => {
      const { index } = await indexOf(name);
      if (frameRate === undefined) expect(index.frameRate).toBeUndefined();
      else expect(index.frameRate).toBeCloseTo(frameRate, 9);
      expect(index.fragmented).toBe(name === 'fragmented');
      const streams = await ffprobeStreams(fixtures[name]);
      expect(index.tracks.map((t) => t.kind)).toEqual(streams.map((s) => s.codecType));
      expect(index.tracks.map((t) => t.timescale)).toEqual(streams.map((s) => s.timescale));
      expect(index.tracks.map((t) => t.codec.slice(0, 4))).toEqual(streams.map((s) => s.codecTag));
      expect(index.tracks.map((t) => t.id)).toEqual(streams.map((s) => s.index + 1));
    },
  );

  it.each(KINDS)('gives $name the duration FFprobe gives it', async ({ name }) => {
    const { index } = await indexOf(name);
    expect(index.duration).toBeGreaterThan(2);
    expect(Math.abs(index.duration - (await ffprobeDuration(fixtures[name])))).toBeLessThan(0.001);
  });

  it.each(KINDS)('seeks $name to the latest key frame at or before t', async ({ name, stream }) => {
    const { index } = await indexOf(name);
    const probed = await ffprobeKeyframes(fixtures[name], stream);
    const times = [0, index.duration, index.duration / 3, index.duration - 0.001];
    for (const k of probed) times.push(k.time, k.time - 0.001, k.time + 0.001, k.time + 0.5);
    for (const t of times.filter((t) => t >= 0 && t <= index.duration)) {
      const result = index.seek(t);
      expect(result.requestedTime).toBe(t);
      expect(Math.abs(result.keyframeTime - expectedKeyframe(probed, t))).toBeLessThan(0.001);
      const keyframe = index.keyframes.find((k) => k.time === result.keyframeTime)!;
      expect(result.byteOffset).toBe(keyframe.seekOffset);
    }
  });

  it.each(['moovLast', 'moovFirst', 'ntsc'] as const)(
    'gives for $0 the first byte any track needs from the key frame on, per FFprobe',
    async (name) => {
      const { index } = await indexOf(name);
      const streams = await ffprobeStreams(fixtures[name]);
      const packets = await Promise.all(
        streams.map((s) => ffprobePackets(fixtures[name], String(s.index))),
      );
      for (const keyframe of index.keyframes) {
        const own = packets[0]!.find((p) => p.key && Math.abs(p.time - keyframe.time) < 0.001)!;
        const needed = packets.map(
          (stream) => packetAt(stream, keyframe.time)?.pos ?? Number.POSITIVE_INFINITY,
        );
        expect(keyframe.seekOffset).toBe(Math.min(...needed));
        expect(keyframe.seekOffset).toBeLessThanOrEqual(own.pos);
        expect(index.seek(keyframe.time).byteOffset).toBe(keyframe.seekOffset);
      }
    },
  );

  it('starts before the key frame when audio for its time was written first', async () => {
    // Without B-frames, FFmpeg interleaves the AAC packet playing at each key frame ahead of it.
    const { index } = await indexOf('moovFirst');
    const earlier = index.keyframes.filter((k) => k.seekOffset < k.byteOffset);
    expect(earlier.length).toBeGreaterThan(index.keyframes.length / 2);
  });

  it('points fragmented seeks at the moof holding the data of every track for the key frame', async () => {
    const { index, bytes } = await indexOf('fragmented');
    const moofs = topLevelBoxes(bytes).filter((b) => b.type === 'moof');
    expect(moofs.length).toBe(index.keyframes.length);
    const moofBefore = (pos: number) => moofs.filter((m) => m.start < pos).at(-1)!.start;
    const streams = await ffprobeStreams(fixtures.fragmented);
    const packets = await Promise.all(
      streams.map((s) => ffprobePackets(fixtures.fragmented, String(s.index))),
    );
    for (const keyframe of index.keyframes) {
      const { byteOffset } = index.seek(keyframe.time);
      expect(new TextDecoder().decode(bytes.subarray(byteOffset + 4, byteOffset + 8))).toBe('moof');
      const needed = packets
        .map((stream) => packetAt(stream, keyframe.time))
        .filter((p) => p !== undefined);
      expect(byteOffset).toBe(Math.min(...needed.map((p) => moofBefore(p.pos))));
      expect(byteOffset).toBeLessThan(keyframe.byteOffset);
    }
  });

  it('refuses times before 0 and after the end, naming them and the duration', async () => {
    const { index } = await indexOf('moovLast');
    for (const t of [-0.5, index.duration + 0.01, 1e9]) {
      expect(() => index.seek(t)).toThrow(
        expect.objectContaining({
          code: 'TIME_OUT_OF_RANGE',
          message: expect.stringContaining(String(t)),
        }),
      );
    }
    expect(() => index.seek(index.duration + 1)).toThrow(
      expect.objectContaining({ message: expect.stringContaining(`to ${index.duration} s`) }),
    );
    expect(() => index.seek(Number.NaN)).toThrow(
      expect.objectContaining({ code: 'INVALID_TIMECODE' }),
    );
  });

  it.each(['moovLast', 'moovFirst', 'fragmented'] as const)(
    'reads only metadata of $0, never the mdat payload',
    async (name) => {
      const bytes = await fixtureBytes(fixtures[name]);
      const reader = countingReader(bytes);
      await buildSeekIndex(reader.readAt, bytes.length);
      const boxes = topLevelBoxes(bytes);
      const metadata = boxes.filter((b) => b.type !== 'mdat').reduce((sum, b) => sum + b.size, 0);
      const payload = boxes.filter((b) => b.type === 'mdat').reduce((sum, b) => sum + b.size, 0);
      const inPayload = reader.ranges.reduce((sum, r) => {
        let overlap = 0;
        for (const b of boxes.filter((box) => box.type === 'mdat')) {
          const from = Math.max(r.offset, b.start + 16);
          overlap += Math.max(0, Math.min(r.offset + r.length, b.start + b.size) - from);
        }
        return sum + overlap;
      }, 0);
      expect(payload).toBeGreaterThan(bytes.length * 0.9);
      expect(reader.bytesRead).toBeLessThan(metadata * 1.5 + 1024);
      expect(inPayload).toBeLessThan(payload * 0.01);
    },
  );

  it('needs about one read per fragment', async () => {
    const bytes = await fixtureBytes(fixtures.fragmented);
    const reader = countingReader(bytes);
    const index = await buildSeekIndex(reader.readAt, bytes.length);
    expect(reader.ranges.length).toBeLessThanOrEqual(index.keyframes.length + 6);
  });

  it('indexes the same file with a 64-bit mdat size and with a size-0 ("to the end") mdat alike', async () => {
    const moovLast = await fixtureBytes(fixtures.moovLast);
    const boxes = topLevelBoxes(moovLast);
    // FFmpeg leaves an 8-byte free box before the mdat so the header can grow to 16 bytes in place.
    expect(boxes.map((b) => b.type)).toEqual(['ftyp', 'free', 'mdat', 'moov']);
    const free = boxes[1]!;
    const mdat = boxes[2]!;
    const large = moovLast.slice();
    const view = new DataView(large.buffer);
    view.setUint32(free.start, 1);
    large.set(new TextEncoder().encode('mdat'), free.start + 4);
    view.setBigUint64(free.start + 8, BigInt(mdat.size + 8));
    const original = await buildSeekIndex(countingReader(moovLast).readAt, moovLast.length);
    const widened = await buildSeekIndex(countingReader(large).readAt, large.length);
    expect(widened.keyframes).toEqual(original.keyframes);

    const moovFirst = await fixtureBytes(fixtures.moovFirst);
    const last = topLevelBoxes(moovFirst).at(-1)!;
    expect(last.type).toBe('mdat');
    const open = moovFirst.slice();
    new DataView(open.buffer).setUint32(last.start, 0);
    const openIndex = await buildSeekIndex(countingReader(open).readAt, open.length);
    const closedIndex = await buildSeekIndex(countingReader(moovFirst).readAt, moovFirst.length);
    expect(openIndex.keyframes).toEqual(closedIndex.keyframes);
  });
});
