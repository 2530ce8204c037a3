import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startServer, type TestServer } from '../server.ts';
import {
  broadcast,
  encodeArgs,
  liveFixture,
  type OpenPush,
  openPush,
  pieces,
  probe,
  push,
  unitsOf,
  until,
  viewInMemory,
  watch,
} from './helpers.ts';

const KEY = 'live-test-key-0123456789';

let units: { init: Uint8Array; fragments: Uint8Array[] };
let whole: Uint8Array;

beforeAll(async () => {
  whole = (await liveFixture('gops')).bytes;
  units = unitsOf(whole);
}, 60_000);

async function streams(server: TestServer) {
  const answer = (await (await fetch(`${server.url}/api/live`)).json()) as {
    streams: { name: string; state: string; viewers: number }[];
  };
  return answer.streams;
}

/** A broadcaster that has sent its init segment and first fragment and keeps the request open. */
async function goLive(server: TestServer, name: string): Promise<OpenPush> {
  const open = openPush(`${server.url}/live/${name}`);
  await open.write(units.init);
  await open.write(units.fragments[0] as Uint8Array);
  await until(`${name} to go live`, async () =>
    (await streams(server)).some((s) => s.name === name && s.state === 'live'),
  );
  return open;
}

describe('the stream key', () => {
  let server: TestServer;
  let dir: string;
  beforeAll(async () => {
    server = await startServer({ LIVE_STREAM_KEY: KEY });
    dir = await mkdtemp(join(tmpdir(), 'live-key-'));
  });
  afterAll(async () => {
    await server?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('refuses a push without the key, or with a wrong one, with 401', async () => {
    for (const [suffix, headers] of [
      ['', {}],
      ['', { authorization: 'Bearer not-the-key' }],
      ['', { authorization: `Basic ${Buffer.from(`u:${KEY}`).toString('base64')}` }],
      ['?key=not-the-key', {}],
      [`?key=${KEY.slice(0, -1)}`, {}],
    ] as const) {
      const answer = await push(`${server.url}/live/keyed${suffix}`, [whole], { headers });
      expect(answer.status, `${suffix} ${JSON.stringify(headers)}`).toBe(401);
      expect(answer.code).toBe('UNAUTHORIZED');
      expect(answer.headers['www-authenticate']).toBe('Bearer realm="live"');
    }
    expect(await streams(server)).toEqual([]);
  });

  it('accepts the key as a Bearer token or as ?key=, with POST or PUT', async () => {
    const byHeader = await push(`${server.url}/live/keyed`, pieces(whole, 10_000), {
      headers: { authorization: `Bearer ${KEY}` },
    });
    expect(byHeader.status).toBe(200);
    expect(JSON.parse(byHeader.body)).toMatchObject({ name: 'keyed', fragments: 3, keyframes: 3 });
    const byQuery = await push(`${server.url}/live/keyed?key=${KEY}`, [whole], { method: 'PUT' });
    expect(byQuery.status).toBe(200);
  });

  it('takes a push from ffmpeg sending the key in a header', async () => {
    const url = `${server.url}/live/ffmpeg`;
    const ffmpeg = broadcast(url, encodeArgs({ seconds: 3, realtime: true }), [
      '-headers',
      `Authorization: Bearer ${KEY}\r\n`,
    ]);
    await until('the stream to go live', async () =>
      (await streams(server)).some((s) => s.name === 'ffmpeg' && s.state === 'live'),
    );
    const viewer = watch(url, join(dir, 'ffmpeg.mp4'));
    expect(await ffmpeg.done).toEqual({ code: 0, stderr: '' });
    expect((await viewer.done).complete).toBe(true);
    expect((await probe(join(dir, 'ffmpeg.mp4'))).frames.video).toBeGreaterThan(0);
    // Without the key ffmpeg is refused (it only sees the connection close under it).
    const refused = broadcast(url, encodeArgs({ seconds: 1 }));
    expect((await refused.done).code).not.toBe(0);
    expect(await streams(server)).toEqual([]);
  }, 30_000);
});

describe('limits', () => {
  let server: TestServer;
  const open: OpenPush[] = [];
  beforeAll(async () => {
    server = await startServer({
      LIVE_MAX_STREAMS: '1',
      LIVE_MAX_VIEWERS: '2',
      LIVE_RING_BYTES: '3MiB',
      LIVE_MAX_FRAGMENT_BYTES: '1MiB',
      LIVE_RECONNECT_GRACE_MS: '0',
    });
  });
  afterEach(() => {
    for (const o of open.splice(0)) o.destroy();
  });
  afterAll(async () => {
    await server?.close();
  });

  it('answers 409 CONFLICT to a second broadcaster on a live name, and 429 to a stream over LIVE_MAX_STREAMS', async () => {
    open.push(await goLive(server, 'one'));
    const second = await push(`${server.url}/live/one`, [whole]);
    expect(second.status).toBe(409);
    expect(second.code).toBe('CONFLICT');
    const other = await push(`${server.url}/live/two`, [whole]);
    expect(other.status).toBe(429);
    expect(other.code).toBe('LIMIT_EXCEEDED');
    expect(other.body).toContain('LIVE_MAX_STREAMS');
  });

  it('answers 429 to a viewer over LIVE_MAX_VIEWERS, and ends the others cleanly when the broadcaster ends', async () => {
    const broadcaster = await goLive(server, 'one');
    const viewers = [
      viewInMemory(`${server.url}/live/one`),
      viewInMemory(`${server.url}/live/one`),
    ];
    for (const v of viewers) expect((await v.response).status).toBe(200);
    const third = viewInMemory(`${server.url}/live/one`);
    expect(await third.response).toMatchObject({ status: 429 });
    expect(JSON.parse((await third.response).body ?? '{}').error.code).toBe('LIMIT_EXCEEDED');
    for (const fragment of units.fragments.slice(1)) await broadcaster.write(fragment);
    broadcaster.end();
    expect((await broadcaster.answer).status).toBe(200);
    for (const v of viewers) {
      const { complete, bytes } = await v.done;
      expect(complete).toBe(true);
      // The init segment, then every fragment from the keyframe it joined at (the first one) on.
      expect(bytes.equals(Buffer.concat([units.init, ...units.fragments]))).toBe(true);
    }
  });

  it('answers 413 to a box over LIVE_MAX_FRAGMENT_BYTES, before its bytes arrive', async () => {
    const huge = new Uint8Array(8);
    new DataView(huge.buffer).setUint32(0, 64 * 2 ** 20);
    huge.set([0x6d, 0x6f, 0x6f, 0x66], 4); // moof
    const answer = await push(`${server.url}/live/big`, [units.init, huge]);
    expect(answer.status).toBe(413);
    expect(answer.code).toBe('PAYLOAD_TOO_LARGE');
    expect(answer.body).toContain('LIVE_MAX_FRAGMENT_BYTES');
  });

  it('answers 422 to a broken box stream and to one that ends inside a fragment', async () => {
    const garbage = await push(`${server.url}/live/bad`, [
      new TextEncoder().encode('this is not an MP4 stream at all'),
    ]);
    expect(garbage.status).toBe(422);
    expect(garbage.code).toBe('MEDIA_CORRUPT');
    const cut = await push(`${server.url}/live/bad`, [whole.subarray(0, whole.length - 2000)]);
    expect(cut.status).toBe(422);
    expect(cut.code).toBe('MEDIA_TRUNCATED');
  });

  it('answers 404 for a stream nobody broadcasts and 400 for viewer options outside the limits', async () => {
    const missing = viewInMemory(`${server.url}/live/nobody`);
    expect((await missing.response).status).toBe(404);
    open.push(await goLive(server, 'one'));
    for (const query of ['policy=drop', 'budget=10', 'budget=999999999', 'maxLagMs=99999999']) {
      const bad = viewInMemory(`${server.url}/live/one?${query}`);
      expect((await bad.response).status, query).toBe(400);
    }
    const badName = await push(`${server.url}/live/${encodeURIComponent('../x')}`, [whole]);
    expect(badName.status).toBe(400);
  });
});

describe('the ingest bitrate ceiling', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startServer({ LIVE_MAX_BITRATE: '100k', LIVE_BITRATE_WINDOW_MS: '1000' });
  });
  afterAll(async () => {
    await server?.close();
  });

  it('cuts a broadcaster that pushes faster than LIVE_MAX_BITRATE with 429', async () => {
    // 100 kbit/s over 1 s allows 12.5 kB per window; the fixture is ~110 kB pushed at once.
    const answer = await push(`${server.url}/live/fast`, pieces(whole, 8192));
    expect(answer.status).toBe(429);
    expect(answer.code).toBe('LIMIT_EXCEEDED');
    expect(answer.body).toContain('LIVE_MAX_BITRATE');
    expect(answer.headers.connection).toBe('close');
  });
});

describe('a broadcast longer than REQUEST_TIMEOUT_MS', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startServer({ REQUEST_TIMEOUT_MS: '600', HEADERS_TIMEOUT_MS: '300' });
  });
  afterAll(async () => {
    await server?.close();
  });

  it('is not cut by the request timeout meant for stalled uploads', async () => {
    const open = openPush(`${server.url}/live/long`);
    await open.write(units.init);
    for (const fragment of units.fragments) {
      // Three fragments over ~1.5 s: more than twice the request timeout.
      await new Promise((resolve) => setTimeout(resolve, 500));
      expect(await open.write(fragment)).toBe(true);
    }
    open.end();
    expect((await open.answer).status).toBe(200);
  });
});
