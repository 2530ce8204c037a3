import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BUNDLED_SAMPLE } from '../../src/sample.ts';
import { startServer, type TestServer } from '../server.ts';
import { launchChromium } from './chromium.ts';
import { buildWebPage } from './web-build.ts';

let server: TestServer;
let browser: Browser;
let page: Page;

beforeAll(async () => {
  await buildWebPage();
  server = await startServer();
  await server.storage.putFile('pattern', BUNDLED_SAMPLE, {
    title: 'Bundled test pattern',
    contentType: 'video/mp4',
    created: new Date().toISOString(),
  });
  browser = await launchChromium();
  page = await browser.newPage();
});

afterAll(async () => {
  await browser?.close();
  await server?.close();
});

describe('the library page in headless Chromium', () => {
  it('lists the library and plays the selected video through Range requests', async () => {
    const ranges: string[] = [];
    page.on('request', (request) => {
      const range = request.headers().range;
      if (request.url().includes('/videos/pattern') && range !== undefined) ranges.push(range);
    });
    await page.goto(server.url);
    await page.waitForSelector('#library button[data-id="pattern"]');
    expect(await page.textContent('#now-playing')).toBe('Bundled test pattern');
    await page.evaluate(async () => {
      const video = document.querySelector('video') as HTMLVideoElement;
      video.muted = true;
      await video.play();
    });
    await page.waitForFunction(
      () => (document.querySelector('video') as HTMLVideoElement).currentTime > 1,
      undefined,
      {
        timeout: 20_000,
      },
    );
    expect(ranges.length).toBeGreaterThan(0);
  });

  it('seeks the player to the keyframe a typed timecode names, and decodes frames there', async () => {
    await page.evaluate(() => (document.querySelector('video') as HTMLVideoElement).pause());
    await page.fill('#timecode', '00:00:07:10');
    await page.click('#seek-form button[type="submit"]');
    await page.waitForFunction(
      () => document.querySelector<HTMLElement>('#seek-result')?.dataset.keyframeTime,
    );
    const keyframeTime = Number(await page.getAttribute('#seek-result', 'data-keyframe-time'));
    const seek = (await (
      await fetch(`${server.url}/videos/pattern/seek?t=00:00:07:10`)
    ).json()) as {
      keyframeTime: number;
    };
    expect(keyframeTime).toBe(seek.keyframeTime);
    expect(keyframeTime).toBeGreaterThan(6.5);
    expect(keyframeTime).toBeLessThanOrEqual(7.4);
    const landed = await page.evaluate(
      () =>
        new Promise<{ currentTime: number; mediaTime: number; width: number }>((resolve) => {
          const video = document.querySelector('video') as HTMLVideoElement;
          const frame = (): void => {
            video.requestVideoFrameCallback((_now, meta) =>
              resolve({
                currentTime: video.currentTime,
                mediaTime: meta.mediaTime,
                width: meta.width,
              }),
            );
          };
          if (video.seeking) video.addEventListener('seeked', frame, { once: true });
          else frame();
          video.play().catch(() => undefined);
        }),
    );
    expect(landed.width).toBe(320);
    expect(landed.mediaTime).toBeGreaterThanOrEqual(keyframeTime - 0.05);
    expect(landed.mediaTime).toBeLessThan(keyframeTime + 1);
  });

  it('shows a clear error for a malformed timecode', async () => {
    await page.fill('#timecode', '00:99:00:00');
    await page.click('#seek-form button[type="submit"]');
    await page.waitForFunction(() =>
      document.querySelector('#seek-result')?.classList.contains('error'),
    );
    expect(await page.textContent('#seek-result')).toContain('INVALID_TIMECODE');
  });

  it('shows the bytes the player pulled in the server panel', async () => {
    const served = server.app.metrics.served.storage + server.app.metrics.served.cache;
    expect(served).toBeGreaterThan(0);
    // The panel refreshes every 2 s; wait for a refresh that reflects the playback above.
    await page.waitForFunction(
      () => /Served from storage\s*[1-9]/.test(document.querySelector('#stats')?.textContent ?? ''),
      undefined,
      { timeout: 10_000 },
    );
  });
});
