import { expect, inject, it } from 'vitest';
import { LocalStorageStateStore, tus, Upload } from './index';

// Real headless Chromium, a real @tus/server on loopback: a File goes up in
// chunks through fetch, and the server's stored bytes hash to the same sha256.
it('uploads a File to @tus/server from a browser, resumably', async () => {
  expect(typeof (globalThis as { process?: unknown }).process).toBe('undefined');
  const bytes = new Uint8Array(3 * 2 ** 20 + 12345);
  for (let i = 0; i < bytes.length; i += 65536)
    crypto.getRandomValues(bytes.subarray(i, i + 65536));
  const file = new File([bytes], 'clip.mp4', { type: 'video/mp4', lastModified: 1 });
  const store = new LocalStorageStateStore('browser-test:');
  const job = new Upload(file, {
    protocol: tus({ endpoint: inject('tusEndpoint') }),
    chunkSize: 2 ** 20,
    stateStore: store,
  });
  const acked: number[] = [];
  job.on('progress', (p) => acked.push(p.bytesAcknowledged));
  let firstChunk = true;
  job.on('chunk', () => {
    if (firstChunk) {
      firstChunk = false;
      // Saved state exists while the upload runs, so a reload could resume it.
      expect(Object.keys(localStorage).some((k) => k.startsWith('browser-test:'))).toBe(true);
    }
  });
  const result = await job.start();
  expect(result.bytes).toBe(bytes.length);
  expect(result.location).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/files\//);
  expect(acked.at(-1)).toBe(bytes.length);
  expect(Object.keys(localStorage).some((k) => k.startsWith('browser-test:'))).toBe(false);

  const expected = [...new Uint8Array(await crypto.subtle.digest('SHA-256', bytes))]
    .map((b) => b.toString(16).padStart(2, '0'))
    .join('');
  const stored = await fetch(
    `${inject('storedSha256Url')}?url=${encodeURIComponent(result.location ?? '')}`,
  );
  expect(await stored.text()).toBe(expected);
});
