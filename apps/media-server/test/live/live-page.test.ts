import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchChromium } from '../e2e/chromium.ts';
import { buildWebPage } from '../e2e/web-build.ts';
import { startServer, type TestServer } from '../server.ts';
import { broadcast, encodeArgs, until } from './helpers.ts';

let server: TestServer;
let browser: Browser;
let page: Page;

beforeAll(async () => {
  await buildWebPage();
  server = await startServer({ LIVE_RECONNECT_GRACE_MS: '0' });
  browser = await launchChromium();
  page = await browser.newPage();
}, 60_000);

afterAll(async () => {
  await browser?.close();
  await server?.close();
});

describe('the live page in headless Chromium', () => {
  it('lists the broadcast and plays it with MSE while ffmpeg pushes it', async () => {
    const ffmpeg = broadcast(
      `${server.url}/live/cam1`,
      encodeArgs({ seconds: 7, fragmentMs: 200, realtime: true }),
    );
    await until('the stream to go live', async () => {
      const answer = (await (await fetch(`${server.url}/api/live`)).json()) as {
        streams: { state: string }[];
      };
      return answer.streams.some((s) => s.state === 'live');
    });
    const errors: string[] = [];
    page.on('pageerror', (error) => errors.push(error.message));
    await page.goto(`${server.url}/live.html`);
    await page.waitForSelector('#streams button[data-name="cam1"]');
    // The page starts the only stream by itself; its video must advance.
    await page.waitForFunction(
      () => (document.querySelector('video') as HTMLVideoElement).currentTime > 0.5,
      undefined,
      { timeout: 20_000 },
    );
    const first = await page.evaluate(
      () => (document.querySelector('video') as HTMLVideoElement).currentTime,
    );
    await page.waitForFunction(
      (from) => (document.querySelector('video') as HTMLVideoElement).currentTime > from + 1,
      first,
      { timeout: 20_000 },
    );
    const answer = (await (await fetch(`${server.url}/api/live`)).json()) as {
      streams: { viewers: number }[];
    };
    expect(answer.streams[0]?.viewers).toBe(1);
    // The panel shows the viewer count and a latency estimate from the next /api/live poll on.
    await page.waitForFunction(() => {
      const text = document.querySelector('#playback')?.textContent ?? '';
      return /Latency \(est\.\)\s*\d+\.\d s/.test(text) && /Viewers\s*1/.test(text);
    });
    expect(await ffmpeg.done).toEqual({ code: 0, stderr: '' });
    await page.waitForSelector('#live-status[data-state="ended"]', { timeout: 20_000 });
    expect(errors).toEqual([]);
  }, 60_000);
});
