import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SlabPool } from 'buffer-view';
import { VideoCache } from './cache/video-cache.ts';
import type { ServerConfig } from './config.ts';
import { createRouter, type Route } from './http/router.ts';
import { Library } from './library.ts';
import { LiveRegistry } from './live/registry.ts';
import { liveRoutes } from './live/routes.ts';
import type { Logger } from './log.ts';
import { createMetrics, liveMetrics, type Metrics } from './metrics.ts';
import { serviceRoutes } from './routes/service.ts';
import { videoRoutes } from './routes/videos.ts';
import type { VideoStorage } from './storage/types.ts';
import { type UploadEndpoint, uploadEndpoint } from './uploads/tus-endpoint.ts';

/** A running media server. */
export interface MediaServer {
  readonly server: Server;
  readonly library: Library;
  readonly metrics: Metrics;
  /** The tus endpoint at `/uploads` (its staging store and expiry sweep). */
  readonly uploads: UploadEndpoint;
  /** The live streams at `/live/:name` (broadcasters, rings, viewers). */
  readonly live: LiveRegistry;
  /** `http://host:port`, once listening. */
  readonly url: string;
  listen(): Promise<string>;
  /**
   * Stops accepting connections, lets in-flight responses finish for up to
   * `shutdownGraceMs`, then cuts what is left. Idempotent.
   */
  close(): Promise<void>;
}

/** What the server is built from besides its configuration. */
export interface MediaServerParts {
  readonly storage: VideoStorage;
  readonly log: Logger;
  /** Directory of the built web page. */
  readonly publicDir: string;
}

/**
 * Wires storage, cache, slab pool, metrics and routes into an HTTP server.
 *
 * @example
 * ```ts
 * const app = createMediaServer(config, { storage: await localStorage(dir), log, publicDir });
 * console.log(await app.listen());
 * ```
 */
export function createMediaServer(config: ServerConfig, parts: MediaServerParts): MediaServer {
  const { storage, log } = parts;
  const pool = new SlabPool({ slabSize: config.readChunkBytes, maxSlabs: config.readBuffers });
  const cache = new VideoCache({
    budgetBytes: config.cacheBytes,
    maxEntryBytes: config.cacheMaxFileBytes,
    admitAfter: config.cacheAdmitAfter,
  });
  const library = new Library(storage, cache, pool, log);
  const metrics = createMetrics(cache, pool);
  const uploads = uploadEndpoint({ config, library, metrics, log });
  const live = new LiveRegistry(config, log, library);
  liveMetrics(metrics.registry, live);
  const routes: Route[] = [
    ...uploads.routes,
    ...liveRoutes(live),
    ...videoRoutes({ library, pool, metrics, maxRanges: config.maxRanges }),
    ...serviceRoutes({ library, metrics, publicDir: parts.publicDir, startedAt: Date.now() }),
  ];
  const handler = createRouter(routes, log, {
    requestTimeoutMs: config.requestTimeoutMs,
    observe: (info) => {
      metrics.requests.inc({ route: info.route, method: info.method, status: String(info.status) });
      metrics.bytesServed.inc({ route: info.route }, info.sent);
      metrics.duration.observe({ route: info.route }, info.seconds);
      if (info.aborted) metrics.aborted.inc({ route: info.route });
    },
  });
  const server = createServer(
    {
      maxHeaderSize: config.maxHeaderBytes,
      headersTimeout: config.headersTimeoutMs,
      // Enforced per route by the router instead (live broadcasts are exempt).
      requestTimeout: 0,
      keepAliveTimeout: config.keepAliveTimeoutMs,
      connectionsCheckingInterval: Math.min(
        1000,
        Math.max(100, Math.floor(config.headersTimeoutMs / 4)),
      ),
    },
    handler,
  );
  server.maxConnections = config.maxConnections;
  // Inactivity in both directions: a reader that stops reading is cut too.
  server.timeout = config.idleTimeoutMs;
  server.on('clientError', (error: NodeJS.ErrnoException, socket) => {
    const status =
      error.code === 'HPE_HEADER_OVERFLOW'
        ? 431
        : error.code === 'ERR_HTTP_REQUEST_TIMEOUT'
          ? 408
          : 400;
    if (socket.writable && !(socket as { _httpMessage?: unknown })._httpMessage) {
      socket.end(
        `HTTP/1.1 ${status} ${status === 431 ? 'Request Header Fields Too Large' : status === 408 ? 'Request Timeout' : 'Bad Request'}\r\nconnection: close\r\ncontent-length: 0\r\n\r\n`,
      );
    } else {
      socket.destroy();
    }
    log.debug('client error', { code: error.code, status });
  });

  let url = '';
  let closing: Promise<void> | undefined;
  return {
    server,
    library,
    metrics,
    uploads,
    live,
    get url() {
      return url;
    },
    listen() {
      return new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(config.port, config.host, () => {
          server.off('error', reject);
          const address = server.address() as AddressInfo;
          const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
          url = `http://${host}:${address.port}`;
          resolve(url);
        });
      });
    },
    close() {
      closing ??= new Promise<void>((resolve) => {
        // Broadcasts never end by themselves: cut them, so viewers get their end of stream.
        live.close();
        const grace = setTimeout(() => server.closeAllConnections(), config.shutdownGraceMs);
        server.close(() => {
          clearTimeout(grace);
          cache.clear();
          uploads.close();
          // Recordings of the broadcasts just ended are still being stored; a restart must find them.
          live.settled().then(resolve, (error: unknown) => {
            log.error('storing a live recording failed during shutdown', { error });
            resolve();
          });
        });
        server.closeIdleConnections();
      });
      return closing;
    },
  };
}
