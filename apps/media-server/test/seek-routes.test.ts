import { readFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { storeBytes } from './files.ts';
import { ffprobeKeyframes, type MediaFixtures, mediaFixtures } from './media-fixtures.ts';
import { startServer, type TestServer } from './server.ts';

let server: TestServer;
let fixtures: MediaFixtures;
const files: Record<string, Uint8Array> = {};

beforeAll(async () => {
  fixtures = await mediaFixtures();
  server = await startServer();
  for (const id of ['moovLast', 'fragmented'] as const) {
    files[id] = new Uint8Array(await readFile(fixtures[id]));
    await server.storage.putFile(id, fixtures[id], {
      title: id,
      contentType: 'video/mp4',
      created: new Date().toISOString(),
    });
  }
  const whole = files.moovLast as Uint8Array;
  await storeBytes(
    server.storage,
    server.dir,
    'truncated',
    whole.subarray(0, Math.floor(whole.byteLength * 0.6)),
  );
  await storeBytes(
    server.storage,
    server.dir,
    'garbage',
    new TextEncoder().encode('not a video at all, just text'.repeat(100)),
  );
}, 120_000);
afterAll(() => server?.close());

const json = async (path: string) => {
  const response = await fetch(`${server.url}${path}`);
  return {
    status: response.status,
    body: (await response.json()) as Record<string, unknown> & { error?: { code: string } },
  };
};

describe('GET /videos/:id/seek', () => {
  it.each(['moovLast', 'fragmented'] as const)(
    'answers the keyframe at or before t for %s, as ffprobe sees the keyframes',
    async (id) => {
      const keyframes = await ffprobeKeyframes(fixtures[id]);
      expect(keyframes.length).toBeGreaterThan(2);
      for (const t of [0.5, 1.0, 2.37, keyframes.at(-1)?.time ?? 0]) {
        const expected = [...keyframes].reverse().find((k) => k.time <= t + 1e-9) ?? keyframes[0];
        const { status, body } = await json(`/videos/${id}/seek?t=${t}`);
        expect(status).toBe(200);
        expect(body.requestedTime).toBeCloseTo(t, 6);
        expect(body.keyframeTime).toBeCloseTo(expected?.time ?? Number.NaN, 3);
        expect(body.byteOffset as number).toBeLessThanOrEqual(expected?.pos ?? -1);
      }
    },
  );

  it('takes SMPTE timecodes at the video frame rate, or at an fps given', async () => {
    const atVideoRate = await json('/videos/moovLast/seek?t=00:00:02:12');
    expect(atVideoRate.body.requestedTime).toBeCloseTo(2 + 12 / 25, 6);
    const atGivenRate = await json('/videos/moovLast/seek?t=00:00:02:12&fps=24');
    expect(atGivenRate.body.requestedTime).toBeCloseTo(2.5, 6);
  });

  it('gives fragmented files the offset of the moof that holds the keyframe', async () => {
    const { body } = await json('/videos/fragmented/seek?t=2.5');
    const offset = body.byteOffset as number;
    const bytes = files.fragmented as Uint8Array;
    expect(new TextDecoder().decode(bytes.subarray(offset + 4, offset + 8))).toBe('moof');
  });

  it.each([
    ['t=abc', 400, 'INVALID_TIMECODE'],
    ['t=00:61:00:00', 400, 'INVALID_TIMECODE'],
    ['', 400, 'INVALID_TIMECODE'],
    ['t=1&fps=-3', 400, 'INVALID_TIMECODE'],
    ['t=99999', 416, 'TIME_OUT_OF_RANGE'],
  ])('rejects %j with %i %s', async (query, status, code) => {
    const result = await json(`/videos/moovLast/seek?${query}`);
    expect(result.status).toBe(status);
    expect(result.body.error?.code).toBe(code);
  });

  it('answers a truncated or non-MP4 file with 422 and keeps serving', async () => {
    const truncated = await json('/videos/truncated/seek?t=1');
    expect(truncated.status).toBe(422);
    expect(truncated.body.error?.code).toBe('MEDIA_TRUNCATED');
    const garbage = await json('/videos/garbage/chunk?t=1');
    expect(garbage.status).toBe(422);
    expect(garbage.body.error?.code).toBe('MEDIA_CORRUPT');
    const list = (await (await fetch(`${server.url}/api/videos`)).json()) as {
      id: string;
      duration: number | null;
    }[];
    expect(list.find((v) => v.id === 'truncated')?.duration).toBeNull();
    expect(list.find((v) => v.id === 'moovLast')?.duration).toBeGreaterThan(1);
  });
});

describe('GET /videos/:id/chunk', () => {
  it('sends size bytes from the keyframe offset as a 206', async () => {
    const { body: seek } = await json('/videos/moovLast/seek?t=2.5');
    const response = await fetch(`${server.url}/videos/moovLast/chunk?t=2.5&size=50000`);
    expect(response.status).toBe(206);
    const start = seek.byteOffset as number;
    const bytes = files.moovLast as Uint8Array;
    expect(response.headers.get('content-range')).toBe(
      `bytes ${start}-${start + 49_999}/${bytes.byteLength}`,
    );
    expect(Number(response.headers.get('x-keyframe-time'))).toBe(seek.keyframeTime);
    const got = new Uint8Array(await response.arrayBuffer());
    expect(Buffer.compare(got, bytes.subarray(start, start + 50_000))).toBe(0);
  });

  it('stops at the end of the file and defaults to 20 MiB', async () => {
    const bytes = files.fragmented as Uint8Array;
    const response = await fetch(`${server.url}/videos/fragmented/chunk?t=00:00:01:00`);
    const got = new Uint8Array(await response.arrayBuffer());
    const { body: seek } = await json('/videos/fragmented/seek?t=1');
    expect(got.byteLength).toBe(
      Math.min(20 * 2 ** 20, bytes.byteLength - (seek.byteOffset as number)),
    );
    expect(new TextDecoder().decode(got.subarray(4, 8))).toBe('moof');
  });

  it.each(['size=0', 'size=-1', 'size=1e9', 'size=x'])('rejects %s with 400', async (query) => {
    const result = await json(`/videos/moovLast/chunk?t=1&${query}`);
    expect(result.status).toBe(400);
    expect(result.body.error?.code).toBe('BAD_REQUEST');
  });
});
