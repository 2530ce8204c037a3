import { readFile } from 'node:fs/promises';
import type { Browser, Page, Route } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchChromium } from '../e2e/chromium.ts';
import { buildWebPage } from '../e2e/web-build.ts';
import { startServer, type TestServer } from '../server.ts';
import { fetchSha256, sha256, type UploadFixtures, uploadFixtures } from './helpers.ts';

let server: TestServer;
let browser: Browser;
let files: UploadFixtures;
let video: Buffer;

beforeAll(async () => {
  await buildWebPage();
  files = await uploadFixtures();
  video = await readFile(files.video);
  server = await startServer();
  browser = await launchChromium();
});

afterAll(async () => {
  await browser?.close();
  await server?.close();
});

/** Records every value the page's `<progress>` takes (setting `.value` sets the attribute). */
async function recordProgress(page: Page): Promise<void> {
  await page.evaluate(() => {
    const bar = document.getElementById('progress') as HTMLProgressElement;
    const seen: number[] = [];
    (window as unknown as { progressSeen: number[] }).progressSeen = seen;
    new MutationObserver(() => seen.push(bar.value)).observe(bar, {
      attributes: true,
      attributeFilter: ['value'],
    });
  });
}

async function storedId(page: Page): Promise<string> {
  await page.waitForSelector('#result:not([hidden])', { timeout: 30_000 });
  return (await page.getAttribute('#result', 'data-id')) ?? '';
}

async function playsResult(page: Page): Promise<void> {
  await page.evaluate(async () => {
    const player = document.getElementById('result-player') as HTMLVideoElement;
    player.muted = true;
    await player.play();
  });
  await page.waitForFunction(
    () => (document.getElementById('result-player') as HTMLVideoElement).currentTime > 0,
    undefined,
    { timeout: 20_000 },
  );
}

describe('the upload page in headless Chromium', () => {
  it('uploads a file with a progress bar that climbs to its max, then plays the stored video', async () => {
    const page = await browser.newPage();
    await page.goto(`${server.url}/upload.html`);
    await recordProgress(page);
    await page.setInputFiles('#file', files.video);
    await page.fill('#title', 'From the upload page');
    await page.click('#start');
    const id = await storedId(page);

    const seen = await page.evaluate(
      () => (window as unknown as { progressSeen: number[] }).progressSeen,
    );
    expect(
      await page.evaluate(() => (document.getElementById('progress') as HTMLProgressElement).max),
    ).toBe(video.byteLength);
    expect(seen.at(-1)).toBe(video.byteLength);
    // Several steps in between (one per chunk), never going back.
    expect(seen.filter((v) => v > 0 && v < video.byteLength).length).toBeGreaterThanOrEqual(3);
    expect(seen).toEqual([...seen].sort((a, b) => a - b));
    expect(await page.textContent('#progress-text')).toMatch(/2\.2 MiB of 2\.2 MiB/);
    expect(await page.textContent('#result-title')).toBe('From the upload page');

    expect(await fetchSha256(`${server.url}/videos/${id}`)).toEqual({
      status: 200,
      sha256: sha256(video),
    });
    await playsResult(page);
    await page.close();
  });

  it('shows why the server rejected a file that is not a video', async () => {
    const page = await browser.newPage();
    await page.goto(`${server.url}/upload.html`);
    await page.setInputFiles('#file', files.notVideo);
    await page.click('#start');
    await page.waitForSelector('#upload-status.error', { timeout: 20_000 });
    expect(await page.textContent('#upload-status')).toMatch(/MEDIA_CORRUPT: .+ \(HTTP 422\)/);
    expect(await page.isHidden('#result')).toBe(true);
    await page.close();
  });

  it('resumes after a reload mid-upload from what the server already has', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    // Holds the upload's fourth request (creation with the first chunk, then PATCHes) forever,
    // so the reload below happens mid-upload whatever the machine's speed.
    let requests = 0;
    let holding = true;
    const held: Route[] = [];
    await page.route(
      (url) => url.pathname.startsWith('/uploads'),
      async (route) => {
        const method = route.request().method();
        if (method === 'POST' || method === 'PATCH') requests++;
        if (holding && requests > 3 && method === 'PATCH') held.push(route);
        else await route.continue();
      },
    );
    await page.goto(`${server.url}/upload.html`);
    await page.setInputFiles('#file', files.video);
    await page.click('#start');
    await expect.poll(() => held.length, { timeout: 20_000 }).toBeGreaterThan(0);

    const saved = await page.evaluate(() => Object.keys(localStorage));
    expect(saved).toContain('media-server:pending-upload');
    expect(saved.some((key) => key.startsWith('media-server:upload:'))).toBe(true);

    holding = false;
    await page.reload();
    for (const route of held) await route.abort().catch(() => undefined);
    expect(await page.isVisible('#resume-hint')).toBe(true);
    expect(await page.textContent('#resume-hint')).toContain('card.mp4');

    await page.setInputFiles('#file', files.video);
    await page.click('#start');
    const id = await storedId(page);
    const resumedAt = Number(await page.getAttribute('#progress-text', 'data-bytes-resumed'));
    // Three chunks of 256 KiB reached the server before the reload.
    expect(resumedAt).toBe(3 * 256 * 1024);
    expect((await fetchSha256(`${server.url}/videos/${id}`)).sha256).toBe(sha256(video));
    expect(
      await page.evaluate(() => localStorage.getItem('media-server:pending-upload')),
    ).toBeNull();
    await playsResult(page);
    await context.close();
  });
});
