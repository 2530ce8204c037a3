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

// --- live streaming (src/live) ---

/**
 * What the live gauges and counters read at scrape time; the live registry
 * provides it (declared here so metrics need not know the live internals).
 *
 * @example
 * ```ts
 * const source: LiveMetricsSource = new LiveRegistry(config, log);
 * ```
 */
export interface LiveMetricsSource {
  readonly totals: {
    readonly ingestBytes: number;
    readonly copiedBytes: number;
    readonly fragments: number;
    readonly keyframes: number;
    readonly droppedBytes: Readonly<Record<string, number>>;
    /** Viewers cut off, keyed `policy/reason`. */
    readonly disconnects: ReadonlyMap<string, number>;
  };
  list(): readonly {
    readonly name: string;
    readonly viewers: number;
    readonly ingest: { readonly bitsPerSecond: number };
    readonly ring: { readonly capacity: number; readonly maxViewerBufferedBytes: number };
  }[];
}

/**
 * Adds the live figures to the registry: streams, viewers, ingest bitrate
 * and bytes, ring memory, the most any viewer holds, bytes dropped and
 * viewers disconnected per policy. All are read at scrape time; per-stream
 * series disappear with their stream.
 *
 * @example
 * ```ts
 * liveMetrics(metrics.registry, live);
 * ```
 */
export function liveMetrics(registry: Registry, live: LiveMetricsSource): void {
  const perStream = (
    name: string,
    help: string,
    read: (s: ReturnType<LiveMetricsSource['list']>[number]) => number,
  ) =>
    new Gauge({
      name,
      help,
      labelNames: ['stream'] as const,
      registers: [registry],
      collect() {
        this.reset();
        for (const stream of live.list()) this.set({ stream: stream.name }, read(stream));
      },
    });
  const total = (name: string, help: string, read: () => number) =>
    new Counter({
      name,
      help,
      registers: [registry],
      collect() {
        this.reset();
        this.inc(read());
      },
    });
  new Gauge({
    name: 'media_live_streams',
    help: 'Live streams (broadcasting, or waiting for their broadcaster to reconnect)',
    registers: [registry],
    collect() {
      this.set(live.list().length);
    },
  });
  new Gauge({
    name: 'media_live_ring_bytes',
    help: 'Bytes of the rings live streams keep their newest fragments in: their whole memory, however slow the viewers',
    registers: [registry],
    collect() {
      this.set(live.list().reduce((sum, s) => sum + s.ring.capacity, 0));
    },
  });
  perStream('media_live_viewers', 'Viewers of each live stream', (s) => s.viewers);
  perStream(
    'media_live_ingest_bits_per_second',
    'Ingest bitrate of each live stream over its measuring window',
    (s) => s.ingest.bitsPerSecond,
  );
  perStream(
    'media_live_viewer_buffered_bytes_max',
    'Most ring bytes any one viewer of the stream holds (bounded by its budget)',
    (s) => s.ring.maxViewerBufferedBytes,
  );
  total(
    'media_live_ingest_bytes_total',
    'Bytes broadcasters pushed',
    () => live.totals.ingestBytes,
  );
  total(
    'media_live_ingest_copied_bytes_total',
    'Bytes copied while ingesting (one copy into the ring: at most the bytes pushed)',
    () => live.totals.copiedBytes,
  );
  total(
    'media_live_fragments_total',
    'Fragments written into live rings',
    () => live.totals.fragments,
  );
  total(
    'media_live_keyframe_fragments_total',
    'Fragments that start with a keyframe',
    () => live.totals.keyframes,
  );
  new Counter({
    name: 'media_live_bytes_dropped_total',
    help: 'Bytes slow viewers did not get (skipped to a keyframe, or left behind when cut off), by policy',
    labelNames: ['policy'] as const,
    registers: [registry],
    collect() {
      this.reset();
      for (const [policy, bytes] of Object.entries(live.totals.droppedBytes)) {
        this.inc({ policy }, bytes);
      }
    },
  });
  new Counter({
    name: 'media_live_viewers_disconnected_total',
    help: 'Viewers the server cut off, by policy and reason (lagged: over budget; lapped: stuck past the ring; max-lag: too far behind in time)',
    labelNames: ['policy', 'reason'] as const,
    registers: [registry],
    collect() {
      this.reset();
      for (const [key, count] of live.totals.disconnects) {
        const [policy = '', reason = ''] = key.split('/');
        this.inc({ policy, reason }, count);
      }
    },
  });
}
// --- end live streaming ---
