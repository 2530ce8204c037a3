import { checkNumber } from './errors';
import type { StageMetrics } from './metrics';

/**
 * Anything with a `metrics` snapshot: channels, pipeline links, fan-out consumers.
 *
 * @example
 * ```ts
 * import type { MetricsSource } from 'backpressure-stream';
 * const sources: MetricsSource[] = [ingest, ...viewers];
 * ```
 */
export interface MetricsSource {
  /** A fresh snapshot each time it is read. */
  readonly metrics: StageMetrics;
}

/**
 * Options of {@link watchMetrics}.
 *
 * @example
 * ```ts
 * watchMetrics(sources, report, { intervalMs: 5000, signal });
 * ```
 */
export interface WatchMetricsOptions {
  /**
   * How often to take a snapshot.
   * @default 1000
   */
  intervalMs?: number;
  /**
   * Stops watching when aborted.
   * @default undefined
   */
  signal?: AbortSignal;
}

/**
 * Calls `listener` every `intervalMs` with a snapshot of every source's
 * metrics: the event form of the plain `metrics` objects, for logs or a
 * Prometheus exporter. `sources` may be a function, so consumers that join
 * and leave are picked up. The timer does not keep Node alive. Returns a
 * function that stops watching.
 *
 * @example
 * ```ts
 * import { watchMetrics } from 'backpressure-stream';
 * const stop = watchMetrics(() => [ingest, ...broadcast.consumers], (all) => {
 *   for (const m of all) log.info(m, 'stage');
 * });
 * ```
 */
export function watchMetrics(
  sources: Iterable<MetricsSource> | (() => Iterable<MetricsSource>),
  listener: (snapshot: StageMetrics[]) => void,
  options: WatchMetricsOptions = {},
): () => void {
  const intervalMs = options.intervalMs ?? 1000;
  checkNumber('intervalMs', intervalMs, 1, 2 ** 31 - 1);
  const { signal } = options;
  if (signal?.aborted) return () => undefined;
  const tick = () => {
    const list = typeof sources === 'function' ? sources() : sources;
    listener(Array.from(list, (source) => source.metrics));
  };
  const timer = setInterval(tick, intervalMs);
  (timer as { unref?: () => void }).unref?.();
  const stop = () => {
    clearInterval(timer);
    signal?.removeEventListener('abort', stop);
  };
  signal?.addEventListener('abort', stop, { once: true });
  return stop;
}
