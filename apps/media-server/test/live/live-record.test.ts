import { describe, expect, it } from 'vitest';
import { startServer } from '../server.ts';
import { liveFixture, openPush, pieces, push, unitsOf, until, viewInMemory } from './helpers.ts';

interface VideoRow {
  id: string;
  title: string;
  size: number;
  duration: number | null;
}

describe('recording a live stream (LIVE_RECORD=1)', () => {
  it('stores what was broadcast in the library once the broadcast ends', async () => {
    const { bytes } = await liveFixture('fragments');
    const { init, fragments } = unitsOf(bytes);
    const server = await startServer({ LIVE_RECORD: '1' });
    try {
      const answer = await push(`${server.url}/live/show`, pieces(bytes, 16_384));
      expect(answer.status).toBe(200);
      let videos: VideoRow[] = [];
      await until('the recording to be stored', async () => {
        videos = (await (await fetch(`${server.url}/api/videos`)).json()) as VideoRow[];
        return videos.some((v) => v.id.startsWith('live-show-'));
      });
      const video = videos.find((v) => v.id.startsWith('live-show-')) as VideoRow;
      expect(video.title).toMatch(/^Live: show /);
      // The init segment and every fragment, as pushed (FFmpeg's trailing mfra is not kept).
      const stored = Buffer.from(
        await (await fetch(`${server.url}/videos/${video.id}`)).arrayBuffer(),
      );
      expect(stored.equals(Buffer.concat([init, ...fragments]))).toBe(true);
      expect(video.duration).toBeGreaterThan(2.5);
    } finally {
      await server.close();
    }
  });
});

describe('shutting the server down', () => {
  it('cuts the broadcaster and gives viewers a clean end of stream', async () => {
    const { init, fragments } = unitsOf((await liveFixture('gops')).bytes);
    const server = await startServer();
    const broadcaster = openPush(`${server.url}/live/bye`);
    await broadcaster.write(init);
    await broadcaster.write(fragments[0] as Uint8Array);
    await until('live', async () => {
      const answer = (await (await fetch(`${server.url}/api/live`)).json()) as {
        streams: { state: string }[];
      };
      return answer.streams[0]?.state === 'live';
    });
    const viewer = viewInMemory(`${server.url}/live/bye`);
    expect((await viewer.response).status).toBe(200);
    await server.close();
    const { complete, bytes } = await viewer.done;
    expect(complete).toBe(true);
    expect(bytes.equals(Buffer.concat([init, fragments[0] as Uint8Array]))).toBe(true);
    await expect(broadcaster.answer).rejects.toThrow();
  });
});
