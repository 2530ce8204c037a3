import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { storeBytes } from './files.ts';
import { startServer, type TestServer } from './server.ts';

let server: TestServer;
beforeAll(async () => {
  server = await startServer({ CACHE_ADMIT_AFTER: '1' });
  await storeBytes(server.storage, server.dir, 'clip', 100_000);
});
afterAll(() => server.close());

/** One sample's value from Prometheus text, by its exact name and labels. */
function sample(text: string, series: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  if (line === undefined) throw new Error(`no series ${series} in:\n${text}`);
  return Number(line.slice(series.length + 1));
}

describe('GET /metrics', () => {
  it('counts requests by route and status, body bytes, cache use, RSS and event-loop lag', async () => {
    await (
      await fetch(`${server.url}/videos/clip`, { headers: { range: 'bytes=0-999' } })
    ).arrayBuffer();
    await server.app.library.cache.settled();
    await (await fetch(`${server.url}/videos/clip`)).arrayBuffer();
    await (await fetch(`${server.url}/videos/none`)).arrayBuffer();
    const response = await fetch(`${server.url}/metrics`);
    expect(response.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    const text = await response.text();
    expect(sample(text, 'media_http_requests_total{route="video",method="GET",status="206"}')).toBe(
      1,
    );
    expect(sample(text, 'media_http_requests_total{route="video",method="GET",status="200"}')).toBe(
      1,
    );
    expect(sample(text, 'media_http_requests_total{route="video",method="GET",status="404"}')).toBe(
      1,
    );
    expect(
      sample(text, 'media_http_response_body_bytes_total{route="video"}'),
    ).toBeGreaterThanOrEqual(101_000);
    expect(sample(text, 'media_bytes_served_total{source="storage"}')).toBe(1000);
    expect(sample(text, 'media_bytes_served_total{source="cache"}')).toBe(100_000);
    expect(sample(text, 'media_cache_hits_total')).toBe(1);
    expect(sample(text, 'media_cache_bytes')).toBe(100_000);
    expect(sample(text, 'process_resident_memory_bytes')).toBeGreaterThan(10 * 2 ** 20);
    expect(text).toMatch(/^nodejs_eventloop_lag_seconds \d/m);
  });

  it('serves /healthz and /api/stats', async () => {
    expect(await (await fetch(`${server.url}/healthz`)).json()).toEqual({
      status: 'ok',
      storage: 'local',
    });
    const stats = (await (await fetch(`${server.url}/api/stats`)).json()) as {
      served: { cache: number; storage: number };
      cache: { entries: number };
    };
    expect(stats.cache.entries).toBe(1);
    expect(stats.served.cache).toBeGreaterThanOrEqual(100_000);
  });
});
