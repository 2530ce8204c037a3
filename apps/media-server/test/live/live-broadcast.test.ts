import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ByteView, copyStats } from 'buffer-view';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type InitInfo, parseInit, parseMoof } from '../../src/live/fmp4.ts';
import type { LiveStreamSummary } from '../../src/live/registry.ts';
import { startServer, type TestServer } from '../server.ts';
import { broadcast, encodeArgs, probe, topLevelBoxes, until, watch } from './helpers.ts';

const BUDGET = 1024 * 1024;
/** A reader this slow (160 KB/s) cannot keep up with the ~11 Mbit/s noisy test card. */
const SLOW = { bytes: 8192, everyMs: 50 };

let server: TestServer;
let dir: string;

interface LiveAnswer {
  streams: LiveStreamSummary[];
  recentViewers: (LiveStreamSummary['viewerList'][number] & {
    stream: string;
    cutReason: string | null;
  })[];
}

async function live(): Promise<LiveAnswer> {
  return (await (await fetch(`${server.url}/api/live`)).json()) as LiveAnswer;
}

async function metric(name: string, labels = ''): Promise<number> {
  const text = await (await fetch(`${server.url}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name}${labels} `));
  return line === undefined ? 0 : Number(line.split(' ')[1]);
}

/** Fragments of a capture in order: mfhd sequence number and keyframe flag; throws unless it is init + whole moof/mdat pairs. */
function fragmentsOf(bytes: Uint8Array): {
  info: InitInfo;
  fragments: { sequence: number; keyframe: boolean }[];
} {
  const { boxes, complete } = topLevelBoxes(bytes);
  expect(complete, 'the capture ends on a box boundary').toBe(true);
  expect(boxes.slice(0, 2).map((b) => b.type)).toEqual(['ftyp', 'moov']);
  const init = boxes[1] as { start: number; size: number };
  const info = parseInit(ByteView.from(bytes.subarray(0, init.start + init.size)));
  const rest = boxes.slice(2);
  expect(rest.length % 2).toBe(0);
  const fragments = [];
  for (let i = 0; i < rest.length; i += 2) {
    const moof = rest[i] as { type: string; start: number; size: number };
    expect([moof.type, rest[i + 1]?.type]).toEqual(['moof', 'mdat']);
    const parsed = parseMoof(
      ByteView.from(bytes.subarray(moof.start, moof.start + moof.size)),
      info,
    );
    fragments.push({ sequence: parsed.sequence, keyframe: parsed.keyframe });
  }
  return { info, fragments };
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'live-broadcast-'));
  server = await startServer({
    LIVE_RING_BYTES: '16MiB',
    LIVE_MAX_FRAGMENT_BYTES: '2MiB',
    LIVE_MAX_BITRATE: '400M',
    LIVE_RECONNECT_GRACE_MS: '0',
  });
});

afterAll(async () => {
  await server?.close();
  await rm(dir, { recursive: true, force: true });
});

describe('a live broadcast from ffmpeg', () => {
  it('fans out to fast and slow viewers: fast ones decode, slow ones skip or are cut, memory stays bounded', async () => {
    const copiedBefore = copyStats().bytesCopied;
    const rssBefore = process.memoryUsage().rss;
    let rssPeak = rssBefore;
    const sampler = setInterval(() => {
      rssPeak = Math.max(rssPeak, process.memoryUsage().rss);
    }, 100);
    // 640x360 with per-frame noise at 25 fps, fragments every 200 ms, a keyframe every second.
    const ffmpeg = broadcast(
      `${server.url}/live/cam1`,
      encodeArgs({ seconds: 40, size: '640x360', noise: 12, fragmentMs: 200, realtime: true }),
    );
    await until('the stream to go live', async () =>
      (await live()).streams.some((s) => s.name === 'cam1' && s.state === 'live'),
    );
    const url = `${server.url}/live/cam1`;
    const fast = [1, 2, 3].map((i) => watch(url, join(dir, `fast${i}.mp4`)));
    const skipper = watch(`${url}?policy=skip&budget=${BUDGET}`, join(dir, 'skip.mp4'), SLOW);
    const cut = watch(`${url}?policy=disconnect&budget=${BUDGET}`, join(dir, 'cut.mp4'), SLOW);

    // Whatever the machine's socket buffers absorb first, both slow viewers end up over budget.
    // (The cut one only notices once it has read what the kernel still holds for it.)
    await until(
      'the slow viewers to be handled by their policies',
      async () => {
        const cam = (await live()).streams.find((s) => s.name === 'cam1');
        const skipped = cam?.viewerList.some((v) => v.budget === BUDGET && v.skips > 0) ?? false;
        return skipped && cam?.viewersDisconnected.disconnect === 1;
      },
      45_000,
    );
    const during = (await live()).streams.find((s) => s.name === 'cam1') as LiveStreamSummary;
    expect(during.viewers).toBe(4);
    expect(during.bytesDropped.skip).toBeGreaterThan(0);

    // Let the skipping viewer catch up, so it receives the keyframe fragment it skipped to.
    const skipOut = () => during.viewerList.find((v) => v.budget === BUDGET)?.bytesOut ?? 0;
    const before = skipOut();
    skipper.unthrottle();
    cut.unthrottle();
    await until('the skipping viewer to receive fragments again', async () => {
      const cam = (await live()).streams.find((s) => s.name === 'cam1');
      const out = cam?.viewerList.find((v) => v.budget === BUDGET)?.bytesOut ?? 0;
      return out > before + 2 * 2 ** 20;
    });

    // SIGINT: ffmpeg flushes, writes its trailer and ends the chunked body.
    ffmpeg.child.kill('SIGINT');
    await ffmpeg.done;
    const watched = await Promise.all([...fast, skipper].map((w) => w.done));
    const cutOff = await cut.done;
    clearInterval(sampler);

    // Broadcaster gone: every remaining viewer got a clean end of stream.
    for (const w of watched) {
      expect(w.status).toBe(200);
      expect(w.complete, `${w.path} ended cleanly`).toBe(true);
    }
    expect(cutOff.complete).toBe(false);
    await until('the stream to be gone', async () => (await live()).streams.length === 0);

    // Fast viewers: every fragment from their first keyframe on, decodable from the start.
    for (const w of watched.slice(0, 3)) {
      const bytes = new Uint8Array(await readFile(w.path));
      const { fragments } = fragmentsOf(bytes);
      expect(fragments[0]?.keyframe).toBe(true);
      const first = fragments[0]?.sequence ?? 0;
      expect(fragments.map((f) => f.sequence)).toEqual(fragments.map((_, i) => first + i));
      const probed = await probe(w.path);
      expect(probed.errors).toBe('');
      expect(probed.frames.video).toBeGreaterThan(25);
      expect(probed.frames.audio).toBeGreaterThan(0);
      expect(probed.firstVideoKey).toBe(true);
    }

    // The skipping viewer: whole fragments only, resuming at keyframes after every gap.
    const skipBytes = new Uint8Array(await readFile(watched[3]?.path as string));
    const { fragments } = fragmentsOf(skipBytes);
    expect(fragments[0]?.keyframe).toBe(true);
    let gaps = 0;
    for (let i = 1; i < fragments.length; i++) {
      const { sequence, keyframe } = fragments[i] as { sequence: number; keyframe: boolean };
      if (sequence !== (fragments[i - 1]?.sequence ?? 0) + 1) {
        gaps++;
        expect(keyframe, `fragment ${sequence} after a skip`).toBe(true);
      }
    }
    expect(gaps).toBeGreaterThan(0);
    const skipProbe = await probe(watched[3]?.path as string);
    expect(skipProbe.frames.video).toBeGreaterThan(0);
    expect(skipProbe.firstVideoKey).toBe(true);

    // Counted per policy, and no viewer ever held more than its budget of the ring.
    const { recentViewers } = await live();
    const mine = recentViewers.filter((v) => v.stream === 'cam1');
    expect(mine).toHaveLength(5);
    for (const v of mine) {
      expect(v.peakBufferedBytes, `viewer ${v.id} (${v.policy})`).toBeLessThanOrEqual(v.budget);
    }
    expect(mine.find((v) => v.policy === 'disconnect')?.cutReason).toBe('lagged');
    expect(
      mine.find((v) => v.policy === 'skip' && v.budget === BUDGET)?.bytesDropped,
    ).toBeGreaterThan(0);
    expect(
      await metric(
        'media_live_viewers_disconnected_total',
        '{policy="disconnect",reason="lagged"}',
      ),
    ).toBe(1);
    expect(await metric('media_live_bytes_dropped_total', '{policy="skip"}')).toBeGreaterThan(0);

    // One copy on the way in: what buffer-view copied is at most what was pushed.
    const ingested = await metric('media_live_ingest_bytes_total');
    const copied = await metric('media_live_ingest_copied_bytes_total');
    expect(copied).toBeLessThanOrEqual(ingested);
    expect(copied).toBeGreaterThan(ingested * 0.95);
    expect(copyStats().bytesCopied - copiedBefore).toBeLessThanOrEqual(ingested);

    // Memory: the 16 MiB ring plus a fragment being assembled, whatever the slow viewers do.
    const grown = rssPeak - rssBefore;
    console.info(
      `live fan-out: ${(ingested / 2 ** 20).toFixed(1)} MiB ingested, ${(copied / 2 ** 20).toFixed(1)} MiB copied, skip viewer dropped ${mine.find((v) => v.policy === 'skip' && v.budget === BUDGET)?.bytesDropped} bytes in ${gaps} skips, RSS grew ${(grown / 2 ** 20).toFixed(1)} MiB`,
    );
    expect(grown).toBeLessThan(16 * 2 ** 20 + 48 * 2 ** 20);
  }, 90_000);

  it('starts over for new viewers when the broadcaster comes back under the same name', async () => {
    const url = `${server.url}/live/cam1`;
    expect((await fetch(url)).status).toBe(404);
    // A different picture size, so the new init segment differs from the first broadcast's.
    const ffmpeg = broadcast(url, encodeArgs({ seconds: 3, size: '320x180', realtime: true }));
    await until('the stream to go live again', async () =>
      (await live()).streams.some((s) => s.name === 'cam1' && s.state === 'live'),
    );
    const viewer = watch(url, join(dir, 'again.mp4'));
    expect((await ffmpeg.done).code).toBe(0);
    const watched = await viewer.done;
    expect(watched.complete).toBe(true);
    const bytes = new Uint8Array(await readFile(watched.path));
    expect(fragmentsOf(bytes).info.videoTrack?.width).toBe(320);
    const probed = await probe(watched.path);
    expect(probed.errors).toBe('');
    expect(probed.frames.video).toBeGreaterThan(0);
  }, 60_000);
});
