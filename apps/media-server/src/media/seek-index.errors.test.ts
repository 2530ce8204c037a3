import fc from 'fast-check';
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  countingReader,
  fixtureBytes,
  type MediaFixtures,
  mediaFixtures,
  topLevelBoxes,
} from '../../test/media-fixtures.ts';
import { MediaServerError, type MediaServerErrorCode } from '../errors.ts';
import { type BuildSeekIndexOptions, buildSeekIndex, type SeekIndex } from './seek-index.ts';

const MEDIA_CODES: readonly MediaServerErrorCode[] = [
  'MEDIA_TRUNCATED',
  'MEDIA_CORRUPT',
  'MEDIA_UNSUPPORTED',
];

let fixtures: MediaFixtures;
let moovLast: Uint8Array;
let moovFirst: Uint8Array;
let fragmented: Uint8Array;
beforeAll(async () => {
  fixtures = await mediaFixtures();
  [moovLast, moovFirst, fragmented] = await Promise.all([
    fixtureBytes(fixtures.moovLast),
    fixtureBytes(fixtures.moovFirst),
    fixtureBytes(fixtures.fragmented),
  ]);
}, 120_000);

afterEach(() => {
  vi.restoreAllMocks();
});

function index(bytes: Uint8Array, options?: BuildSeekIndexOptions): Promise<SeekIndex> {
  return buildSeekIndex(countingReader(bytes).readAt, bytes.length, options);
}

/** The index, or the code of the typed media error; anything else is rethrown and fails the test. */
async function outcome(bytes: Uint8Array): Promise<SeekIndex | MediaServerErrorCode> {
  try {
    return await index(bytes);
  } catch (error) {
    if (MediaServerError.isInstance(error) && MEDIA_CODES.includes(error.code)) return error.code;
    throw error;
  }
}

async function expectRefusal(
  bytes: Uint8Array,
  code: MediaServerErrorCode,
  ...named: string[]
): Promise<void> {
  const error = await index(bytes).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(
    MediaServerError.isInstance(error),
    `expected a MediaServerError, got ${String(error)}`,
  ).toBe(true);
  expect(error).toMatchObject({ code });
  for (const part of named) expect((error as Error).message).toContain(part);
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

function box(type: string, ...payload: Uint8Array[]): Uint8Array {
  const body = concat(...payload);
  const out = new Uint8Array(8 + body.length);
  new DataView(out.buffer).setUint32(0, out.length);
  out.set(new TextEncoder().encode(type), 4);
  out.set(body, 8);
  return out;
}

const FTYP = box('ftyp', new TextEncoder().encode('isom\0\0\x02\0isomiso2avc1mp41'));

/** Offset of the first `type` box header inside `[from, to)` of `bytes`. */
function find(bytes: Uint8Array, type: string, from = 0, to = bytes.length): number {
  const code = new TextEncoder().encode(type);
  for (let i = from + 4; i + 4 <= to; i++) {
    if (
      bytes[i] === code[0] &&
      bytes[i + 1] === code[1] &&
      bytes[i + 2] === code[2] &&
      bytes[i + 3] === code[3]
    ) {
      return i - 4;
    }
  }
  throw new Error(`no ${type} box in [${from}, ${to})`);
}

function boxNamed(bytes: Uint8Array, type: string): { start: number; size: number } {
  const found = topLevelBoxes(bytes).find((b) => b.type === type);
  if (!found) throw new Error(`no top-level ${type}`);
  return found;
}

describe('buildSeekIndex on truncated files', () => {
  it('refuses a file cut inside the mdat before its moov, naming the box and the size', async () => {
    const cut = moovLast.subarray(0, Math.floor(moovLast.length / 2));
    await expectRefusal(cut, 'MEDIA_TRUNCATED', "'mdat'", String(cut.length));
  });

  it('refuses a file cut inside its moov, at the end or at the start of the file', async () => {
    const last = boxNamed(moovLast, 'moov');
    await expectRefusal(moovLast.subarray(0, last.start + 100), 'MEDIA_TRUNCATED', "'moov'");
    const first = boxNamed(moovFirst, 'moov');
    await expectRefusal(
      moovFirst.subarray(0, first.start + Math.floor(first.size / 2)),
      'MEDIA_TRUNCATED',
      "'moov'",
    );
  });

  it('refuses a file cut right before its moov as having none', async () => {
    await expectRefusal(
      moovLast.subarray(0, boxNamed(moovLast, 'moov').start),
      'MEDIA_TRUNCATED',
      'no moov',
    );
  });

  it('refuses a file whose moov is whole but whose samples are cut off', async () => {
    const moov = boxNamed(moovFirst, 'moov');
    await expectRefusal(
      moovFirst.subarray(0, moov.start + moov.size),
      'MEDIA_TRUNCATED',
      'past the end',
    );
  });

  it('refuses 7 bytes, and an empty file', async () => {
    await expectRefusal(moovLast.subarray(0, 7), 'MEDIA_TRUNCATED', '7 bytes');
    await expectRefusal(new Uint8Array(0), 'MEDIA_TRUNCATED', 'empty');
  });

  it('refuses a progressive file cut at any byte', async () => {
    await fc.assert(
      fc.asyncProperty(fc.boolean(), fc.nat(), async (first, at) => {
        const bytes = first ? moovFirst : moovLast;
        expect(await outcome(bytes.subarray(0, at % bytes.length))).toBe('MEDIA_TRUNCATED');
      }),
      { numRuns: 150 },
    );
  });

  it('indexes a fragmented file cut after a whole fragment as the fragments it has, and refuses any other cut', async () => {
    const boxes = topLevelBoxes(fragmented);
    const mdatEnds = boxes.filter((b) => b.type === 'mdat').map((b) => b.start + b.size);
    const moov = boxNamed(fragmented, 'moov');
    const cuts = fc.oneof(
      fc.constantFrom(...mdatEnds.slice(0, -1)),
      fc.integer({ min: 1, max: fragmented.length - 1 }),
    );
    await fc.assert(
      fc.asyncProperty(cuts, async (at) => {
        const result = await outcome(fragmented.subarray(0, at));
        if (!mdatEnds.includes(at)) {
          // Cut right after the moov, the file is whole but has no samples yet.
          expect(result).toBe(
            at === moov.start + moov.size ? 'MEDIA_UNSUPPORTED' : 'MEDIA_TRUNCATED',
          );
          return;
        }
        if (typeof result === 'string')
          throw new Error(`a cut after a whole fragment gave ${result}`);
        expect(result.keyframes.length).toBe(mdatEnds.indexOf(at) + 1);
        for (const k of result.keyframes) expect(k.byteOffset).toBeLessThan(at);
      }),
      { numRuns: 150 },
    );
  });
});

describe('buildSeekIndex on bytes that are not an MP4', () => {
  it('refuses a first box no MP4 starts with, and a type that is not four printable characters', async () => {
    await expectRefusal(box('abcd', new Uint8Array(20)), 'MEDIA_CORRUPT', "'abcd'");
    const binary = box('ftyp', new Uint8Array(8));
    binary.set([0, 1, 2, 3], 4);
    await expectRefusal(binary, 'MEDIA_CORRUPT', '00 01 02 03');
  });

  it('refuses a box smaller than its header', async () => {
    const tiny = concat(FTYP, box('free'));
    new DataView(tiny.buffer).setUint32(FTYP.length, 4);
    await expectRefusal(tiny, 'MEDIA_CORRUPT', 'size of 4');
  });

  it('refuses a 64-bit size that runs past the end, and one smaller than its header', async () => {
    const huge = new Uint8Array(64);
    const view = new DataView(huge.buffer);
    view.setUint32(0, 1);
    huge.set(new TextEncoder().encode('ftyp'), 4);
    view.setBigUint64(8, 0xffff_ffff_ffff_fff0n);
    await expectRefusal(
      huge,
      'MEDIA_TRUNCATED',
      "'ftyp'",
      '18446744073709551600 bytes',
      '64-byte file',
    );
    view.setBigUint64(8, 8n);
    await expectRefusal(huge, 'MEDIA_CORRUPT', 'size of 8', '16-byte header');
    await expectRefusal(huge.subarray(0, 12), 'MEDIA_TRUNCATED', '16-byte header');
  });

  it('answers random bytes with a typed media error', async () => {
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ maxLength: 2048 }), async (bytes) => {
        expect(MEDIA_CODES).toContain(await outcome(bytes));
      }),
      { numRuns: 300 },
    );
  });

  it('answers random boxes behind a real ftyp, and a moov of random bytes, with a typed media error', async () => {
    const anyBox = fc
      .tuple(
        fc.constantFrom('moov', 'moof', 'mdat', 'free', 'trak', 'mvhd'),
        fc.uint8Array({ maxLength: 600 }),
      )
      .map(([type, payload]) => box(type, payload));
    await fc.assert(
      fc.asyncProperty(fc.array(anyBox, { maxLength: 4 }), async (boxes) => {
        expect(MEDIA_CODES).toContain(await outcome(concat(FTYP, ...boxes)));
      }),
      { numRuns: 300 },
    );
  });

  it('refuses a bad box in mvex (fragment defaults) by its offset and type, quietly', async () => {
    const spies = (['log', 'info', 'warn', 'error', 'debug'] as const).map((m) =>
      vi.spyOn(console, m).mockImplementation(() => {}),
    );
    // mp4box would stop at the nameless box and leave the trex defaults behind it unread.
    const mvhd = new Uint8Array(100);
    new DataView(mvhd.buffer).setUint32(12, 1000);
    const file = concat(
      FTYP,
      box('moov', box('mvhd', mvhd), box('mvex', box('\0\0\0\0', new Uint8Array(8)))),
    );
    await expectRefusal(file, 'MEDIA_CORRUPT', 'type 00 00 00 00', 'not four printable characters');
    for (const spy of spies) expect(spy).not.toHaveBeenCalled();
  });
});

describe('buildSeekIndex on damaged metadata', () => {
  it('never answers with anything but an index or a typed error when moov bytes are flipped', async () => {
    const moov = boxNamed(moovFirst, 'moov');
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.tuple(fc.nat(moov.size - 9), fc.integer({ min: 1, max: 255 })), {
          minLength: 1,
          maxLength: 6,
        }),
        async (flips) => {
          const bytes = moovFirst.slice();
          for (const [at, xor] of flips) bytes[moov.start + 8 + at]! ^= xor;
          const result = await outcome(bytes);
          if (typeof result === 'string') return;
          for (const k of result.keyframes) {
            expect(Number.isFinite(k.time)).toBe(true);
            expect(k.byteOffset).toBeGreaterThanOrEqual(0);
            expect(k.byteOffset).toBeLessThan(bytes.length);
            expect(k.seekOffset).toBeLessThanOrEqual(k.byteOffset);
          }
        },
      ),
      { numRuns: 200 },
    );
  });

  it('never answers with anything but an index or a typed error when moof bytes are flipped', async () => {
    const moofs = topLevelBoxes(fragmented).filter((b) => b.type === 'moof');
    await fc.assert(
      fc.asyncProperty(
        fc.nat(moofs.length - 1),
        fc.nat(),
        fc.integer({ min: 1, max: 255 }),
        async (which, n, xor) => {
          const moof = moofs[which]!;
          const bytes = fragmented.slice();
          bytes[moof.start + 8 + (n % (moof.size - 8))]! ^= xor;
          const result = await outcome(bytes);
          if (typeof result === 'string') return;
          for (const k of result.keyframes) {
            expect(k.byteOffset).toBeLessThan(bytes.length);
            expect(
              new TextDecoder().decode(bytes.subarray(k.seekOffset + 4, k.seekOffset + 8)),
            ).toBe('moof');
          }
        },
      ),
      { numRuns: 200 },
    );
  });

  it('refuses a constant-size stsz claiming 4 billion samples, before mp4box tries to list them', async () => {
    const moov = boxNamed(moovFirst, 'moov');
    const stsz = find(moovFirst, 'stsz', moov.start, moov.start + moov.size);
    const bytes = moovFirst.slice();
    const view = new DataView(bytes.buffer);
    view.setUint32(stsz + 12, 1);
    view.setUint32(stsz + 16, 0xffff_ffff);
    await expectRefusal(bytes, 'MEDIA_CORRUPT', '4294967295 samples');
  });

  it('refuses a trun claiming 4 billion samples with no per-sample fields', async () => {
    const moof = boxNamed(fragmented, 'moof');
    const trun = find(fragmented, 'trun', moof.start, moof.start + moof.size);
    const bytes = fragmented.slice();
    const view = new DataView(bytes.buffer);
    view.setUint32(trun + 8, 0x000001);
    view.setUint32(trun + 12, 0xffff_ffff);
    await expectRefusal(bytes, 'MEDIA_UNSUPPORTED', '4294967295', 'limit');
  });

  it('refuses a fragment of a track the moov does not have', async () => {
    const moof = boxNamed(fragmented, 'moof');
    const tfhd = find(fragmented, 'tfhd', moof.start, moof.start + moof.size);
    const bytes = fragmented.slice();
    new DataView(bytes.buffer).setUint32(tfhd + 12, 99);
    await expectRefusal(bytes, 'MEDIA_CORRUPT', 'track 99');
  });

  it('refuses fragments before any moov, and a second moov', async () => {
    const moov = boxNamed(fragmented, 'moov');
    const noMoov = concat(
      fragmented.subarray(0, moov.start),
      fragmented.subarray(moov.start + moov.size),
    );
    await expectRefusal(noMoov, 'MEDIA_CORRUPT', 'before any moov');
    const first = boxNamed(moovFirst, 'moov');
    const moovBytes = moovFirst.subarray(first.start, first.start + first.size);
    const twice = concat(
      moovFirst.subarray(0, first.start + first.size),
      moovBytes,
      moovFirst.subarray(first.start + first.size),
    );
    await expectRefusal(twice, 'MEDIA_CORRUPT', 'second moov');
  });

  it('refuses a movie without tracks', async () => {
    const mvhd = new Uint8Array(100);
    const view = new DataView(mvhd.buffer);
    view.setUint32(12, 1000);
    view.setUint32(20, 0x0001_0000);
    view.setUint16(24, 0x0100);
    await expectRefusal(
      concat(FTYP, box('moov', box('mvhd', mvhd))),
      'MEDIA_UNSUPPORTED',
      'no tracks',
    );
  });
});

describe('buildSeekIndex limits and storage', () => {
  it('refuses a moov above maxMetadataBytes, naming its size and the limit', async () => {
    const moov = boxNamed(moovFirst, 'moov');
    await expect(index(moovFirst, { maxMetadataBytes: 4096 })).rejects.toMatchObject({
      code: 'MEDIA_UNSUPPORTED',
      message: expect.stringMatching(new RegExp(`${moov.size} bytes.*4096`)),
    });
    await expect(index(moovFirst, { maxMetadataBytes: moov.size })).resolves.toBeDefined();
  });

  it('refuses more samples than maxSamples', async () => {
    await expect(index(moovFirst, { maxSamples: 500 })).rejects.toMatchObject({
      code: 'MEDIA_UNSUPPORTED',
      message: expect.stringContaining('limit of 500 samples'),
    });
    await expect(index(fragmented, { maxSamples: 500 })).rejects.toMatchObject({
      code: 'MEDIA_UNSUPPORTED',
    });
  });

  it('passes errors of readAt through unchanged', async () => {
    const failure = new Error('disk on fire');
    await expect(buildSeekIndex(async () => Promise.reject(failure), moovLast.length)).rejects.toBe(
      failure,
    );
  });

  it('calls a short read before the end of the file truncation', async () => {
    const reader = countingReader(moovLast);
    const lying = async (offset: number, length: number) =>
      (await reader.readAt(offset, length)).subarray(0, 4);
    await expect(buildSeekIndex(lying, moovLast.length)).rejects.toMatchObject({
      code: 'MEDIA_TRUNCATED',
      message: expect.stringContaining('returned only 4'),
    });
  });
});
