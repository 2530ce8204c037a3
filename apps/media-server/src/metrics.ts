import type { SlabPool } from 'buffer-view';
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import type { VideoCache } from './cache/video-cache.ts';

/** The server's Prometheus registry and the instruments the routes update. */
export interface Metrics {
  readonly registry: Registry;
  readonly requests: Counter<'route' | 'method' | 'status'>;
  readonly bytesServed: Counter<'route'>;
  readonly duration: Histogram<'route'>;
  /** Bytes served per source, for the web page's panel (`cache` vs `storage`). */
  readonly served: { cache: number; storage: number };
  readonly aborted: Counter<'route'>;
  /** Uploads by outcome: `stored`, `rejected` (not a playable MP4), `failed` (storing failed), `expired`. */
  readonly uploads: Counter<'result'>;
}

/**
 * Builds the registry: Node's default process metrics (RSS, event-loop lag,
 * GC, handles) plus HTTP and cache figures. Cache and pool gauges are read
 * at scrape time, so they cost nothing between scrapes.
 *
 * @example
 * ```ts
 * const metrics = createMetrics(cache, pool);
 * res.end(await metrics.registry.metrics());
 * ```
 */
export function createMetrics(cache: VideoCache, pool: SlabPool): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, eventLoopMonitoringPrecision: 20 });
  const served = { cache: 0, storage: 0 };
  const requests = new Counter({
    name: 'media_http_requests_total',
    help: 'HTTP requests by route, method and status',
    labelNames: ['route', 'method', 'status'] as const,
    registers: [registry],
  });
  const bytesServed = new Counter({
    name: 'media_http_response_body_bytes_total',
    help: 'Response body bytes handed to sockets, by route',
    labelNames: ['route'] as const,
    registers: [registry],
  });
  const duration = new Histogram({
    name: 'media_http_request_duration_seconds',
    help: 'Time from request to the end of the response, by route',
    labelNames: ['route'] as const,
    buckets: [0.001, 0.005, 0.02, 0.1, 0.5, 2, 10, 60],
    registers: [registry],
  });
  const aborted = new Counter({
    name: 'media_http_responses_aborted_total',
    help: 'Responses cut short because the client went away, by route',
    labelNames: ['route'] as const,
    registers: [registry],
  });
  const uploads = new Counter({
    name: 'media_uploads_total',
    help: 'Uploads by outcome: stored, rejected (not a playable MP4), failed (storing failed), expired (unfinished past the expiry)',
    labelNames: ['result'] as const,
    registers: [registry],
  });
  new Counter({
    name: 'media_bytes_served_total',
    help: 'Video bytes served, by where they came from (cache: zero-copy views; storage: pooled cold reads)',
    labelNames: ['source'] as const,
    registers: [registry],
    collect() {
      this.reset();
      this.inc({ source: 'cache' }, served.cache);
      this.inc({ source: 'storage' }, served.storage);
    },
  });
  const cacheGauge = (name: string, help: string, read: () => number): void => {
    new Gauge({
      name,
      help,
      registers: [registry],
      collect() {
        this.set(read());
      },
    });
  };
  cacheGauge(
    'media_cache_bytes',
    'Bytes held by the video cache (entries, loads, pinned evictions)',
    () => cache.stats.bytes,
  );
  cacheGauge(
    'media_cache_budget_bytes',
    'Byte budget of the video cache',
    () => cache.stats.budgetBytes,
  );
  cacheGauge('media_cache_entries', 'Files in the video cache', () => cache.stats.entries);
  cacheGauge(
    'media_cache_pins',
    'Responses currently holding cached bytes',
    () => cache.stats.pins,
  );
  cacheGauge('media_cache_hits_total', 'Requests served from the cache', () => cache.stats.hits);
  cacheGauge(
    'media_cache_misses_total',
    'Requests that missed the cache',
    () => cache.stats.misses,
  );
  cacheGauge(
    'media_cache_evictions_total',
    'Files evicted from the cache',
    () => cache.stats.evictions,
  );
  cacheGauge(
    'media_read_buffers_in_use',
    'Pooled cold-read buffers in use',
    () => pool.stats.inUse,
  );
  cacheGauge(
    'media_read_buffers_allocated',
    'Pooled cold-read buffers allocated',
    () => pool.stats.slabs,
  );
  return { registry, requests, bytesServed, duration, served, aborted, uploads };
}
