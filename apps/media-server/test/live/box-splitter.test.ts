import { measureCopies } from 'buffer-view';
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { MediaServerError } from '../../src/errors.ts';
import { BoxSplitter, type Fragment, type InitSegment } from '../../src/live/box-splitter.ts';
import { keyframeTimes, liveFixture } from './helpers.ts';

interface Split {
  init: InitSegment | undefined;
  fragments: Fragment[];
  discarded: number;
}

/** Pushes `chunks` through a splitter and collects what it reports. */
function split(chunks: Iterable<Uint8Array>, maxUnitBytes = 4 * 2 ** 20): Split {
  const out: Split = { init: undefined, fragments: [], discarded: 0 };
  const splitter = new BoxSplitter({
    maxUnitBytes,
    onInit: (init) => {
      out.init = init;
    },
    onFragment: (fragment) => out.fragments.push(fragment),
  });
  for (const chunk of chunks) splitter.push(chunk);
  splitter.end();
  out.discarded = splitter.discardedBytes;
  return out;
}

/** Cuts `bytes` at the given (sorted, deduplicated) offsets. */
function cut(bytes: Uint8Array, at: number[]): Uint8Array[] {
  const edges = [...new Set(at.map((n) => n % (bytes.length + 1)))].sort((a, b) => a - b);
  const chunks: Uint8Array[] = [];
  let from = 0;
  for (const edge of [...edges, bytes.length]) {
    chunks.push(bytes.subarray(from, edge));
    from = edge;
  }
  return chunks;
}

/** Expects a typed failure: a MediaServerError with one of `codes`, nothing else. */
function expectTyped(run: () => void, codes: string[]): string {
  try {
    run();
  } catch (error) {
    expect(MediaServerError.isInstance(error), String(error)).toBe(true);
    const code = (error as MediaServerError).code;
    expect(codes).toContain(code);
    return code;
  }
  throw new Error('expected a MediaServerError');
}

let stream: Uint8Array;
let reference: Split;
let keyframes: number[];

beforeAll(async () => {
  const fixture = await liveFixture('fragments');
  stream = fixture.bytes;
  keyframes = await keyframeTimes(fixture.path);
  reference = split([stream]);
}, 60_000);

describe('BoxSplitter on a real FFmpeg fragmented MP4', () => {
  it('finds the init segment, and keyframe flags where ffprobe sees keyframes', () => {
    const { init, fragments } = reference;
    expect(init?.info.mimeCodec).toMatch(/^video\/mp4; codecs="avc1\.[0-9a-f]{6},mp4a\.40\.2"$/);
    expect(init?.info.videoTrack?.width).toBe(320);
    // 3 s cut every 200 ms: 15 fragments, 3 of which start a GOP.
    expect(fragments.length).toBeGreaterThanOrEqual(14);
    let sum = init?.bytes.length ?? 0;
    expect(keyframes).toHaveLength(3);
    for (const fragment of fragments) {
      sum += fragment.bytes.length;
      // tfdt says where the fragment starts; trun's flags say whether it starts with a keyframe.
      const start = fragment.info.decodeSeconds ?? Number.NaN;
      const atKeyframe = keyframes.some((t) => Math.abs(t - start) < 0.001);
      expect(fragment.info.keyframe, `fragment at ${start} s`).toBe(atKeyframe);
    }
    expect(fragments.filter((f) => f.info.keyframe)).toHaveLength(3);
    // Everything but the trailing mfra is kept, in order.
    expect(sum + reference.discarded).toBe(stream.length);
    expect(fragments.map((f) => f.info.sequence)).toEqual(fragments.map((_, i) => i + 1));
  });

  it('reports identical units for any chunking, without copying a byte', () => {
    fc.assert(
      fc.property(fc.array(fc.nat(), { maxLength: 60 }), (at) => {
        const chunks = cut(stream, at);
        const { result, stats } = measureCopies(() => split(chunks));
        expect(stats.bytesCopied).toBe(0);
        expect(result.init?.bytes.equals(reference.init?.bytes ?? [])).toBe(true);
        expect(result.fragments.length).toBe(reference.fragments.length);
        result.fragments.forEach((fragment, i) => {
          const expected = reference.fragments[i] as Fragment;
          expect(fragment.info).toEqual(expected.info);
          expect(fragment.bytes.equals(expected.bytes)).toBe(true);
        });
        expect(result.discarded).toBe(reference.discarded);
      }),
      { numRuns: 150 },
    );
  });

  it('handles one byte at a time', () => {
    const chunks = cut(
      stream,
      Array.from({ length: stream.length }, (_, i) => i),
    );
    const result = split(chunks);
    expect(result.fragments.map((f) => f.info.keyframe)).toEqual(
      reference.fragments.map((f) => f.info.keyframe),
    );
  });
});

describe('BoxSplitter on broken input', () => {
  const header = (size: number, type: string): Uint8Array => {
    const bytes = new Uint8Array(8);
    new DataView(bytes.buffer).setUint32(0, size);
    bytes.set(
      Array.from(type, (c) => c.charCodeAt(0)),
      4,
    );
    return bytes;
  };

  it('rejects a box smaller than its header', () => {
    expectTyped(() => split([header(4, 'ftyp')]), ['MEDIA_CORRUPT']);
  });

  it('rejects a box bigger than the fragment limit before receiving it', () => {
    const code = expectTyped(
      () => split([header(2 ** 31, 'moov')], 1 << 20),
      ['PAYLOAD_TOO_LARGE'],
    );
    expect(code).toBe('PAYLOAD_TOO_LARGE');
    const huge = new Uint8Array(16);
    huge.set(header(1, 'mdat'));
    new DataView(huge.buffer).setUint32(8, 0xffff_ffff);
    expectTyped(() => split([huge]), ['PAYLOAD_TOO_LARGE']);
  });

  it('rejects a fragment that grows past the limit box by box', () => {
    const init = reference.init?.bytes.copy() as Uint8Array;
    const moof = header(1000, 'moof');
    expectTyped(
      () => split([init, moof, new Uint8Array(992), header(900_000, 'mdat')], 900_000),
      ['PAYLOAD_TOO_LARGE'],
    );
  });

  it('rejects garbage, size-0 boxes and boxes out of order', () => {
    expectTyped(
      () => split([new TextEncoder().encode('GET / HTTP/1.1\r\n\r\n')]),
      ['MEDIA_CORRUPT'],
    );
    expectTyped(() => split([header(0, 'mdat')]), ['MEDIA_CORRUPT']);
    expectTyped(() => split([header(16, 'moof'), new Uint8Array(8)]), ['MEDIA_CORRUPT']);
    const init = reference.init?.bytes.copy() as Uint8Array;
    expectTyped(() => split([init, header(16, 'mdat'), new Uint8Array(8)]), ['MEDIA_CORRUPT']);
    expectTyped(() => split([init, init]), ['MEDIA_CORRUPT']);
    expectTyped(() => split([init, header(8, 'abcd')]), ['MEDIA_CORRUPT']);
  });

  it('says MEDIA_TRUNCATED when the stream stops inside a fragment', () => {
    expectTyped(() => split([stream.subarray(0, stream.length - 5000)]), ['MEDIA_TRUNCATED']);
    expectTyped(() => split([stream.subarray(0, 3)]), ['MEDIA_TRUNCATED']);
  });

  it('turns any random bytes into a typed error, never a crash', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 1, maxLength: 2048 }), fc.nat(), (bytes, at) => {
        expectTyped(
          () => split(cut(bytes, [at])),
          ['MEDIA_CORRUPT', 'MEDIA_TRUNCATED', 'PAYLOAD_TOO_LARGE'],
        );
      }),
      { numRuns: 300 },
    );
  });

  it('survives corrupted bytes anywhere in a real stream: either parsed or a typed error', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), {
          minLength: 1,
          maxLength: 8,
        }),
        fc.boolean(),
        (edits, inHeaders) => {
          const bytes = stream.slice();
          // Half the runs aim at the first 64 KiB, where the init segment and box headers are dense.
          const span = inHeaders ? Math.min(bytes.length, 65536) : bytes.length;
          for (const [at, value] of edits) bytes[at % span] = value;
          try {
            split(cut(bytes, [7919, 65537]));
          } catch (error) {
            expect(MediaServerError.isInstance(error), String(error)).toBe(true);
          }
        },
      ),
      { numRuns: 300 },
    );
  });
});
