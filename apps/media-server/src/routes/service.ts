import { readFile } from 'node:fs/promises';
import { extname, join } from 'node:path';
import { MediaServerError } from '../errors.ts';
import type { Route } from '../http/router.ts';
import { sendJson } from '../http/router.ts';
import type { Library } from '../library.ts';
import type { Metrics } from '../metrics.ts';

/** What the service routes need. */
export interface ServiceRoutesDeps {
  readonly library: Library;
  readonly metrics: Metrics;
  /** Directory holding the built web page (`index.html`, `app.js`, `app.css`). */
  readonly publicDir: string;
  readonly startedAt: number;
}

const STATIC: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.map': 'application/json',
  '.svg': 'image/svg+xml',
};
/** The only files the pages need; nothing else under publicDir is reachable. */
const PAGE_FILES = new Set([
  'index.html',
  'app.js',
  'app.js.map',
  'app.css',
  'favicon.svg',
  'live.html',
  'live.js',
  'live.js.map',
  'upload.html',
  'upload.js',
  'upload.js.map',
]);

/**
 * `GET /` and its assets, `GET /api/videos`, `GET /api/stats`, `GET /healthz`
 * and `GET /metrics`.
 *
 * @example
 * ```ts
 * const routes = serviceRoutes({ library, metrics, publicDir, startedAt: Date.now() });
 * ```
 */
export function serviceRoutes(deps: ServiceRoutesDeps): Route[] {
  const files = new Map<string, Promise<Buffer>>();
  const page = async (name: string): Promise<Buffer> => {
    let file = files.get(name);
    if (file === undefined) {
      file = readFile(join(deps.publicDir, name));
      file.catch(() => files.delete(name));
      files.set(name, file);
    }
    try {
      return await file;
    } catch (error) {
      throw new MediaServerError(
        'NOT_FOUND',
        `web page file ${name} is missing (was the app built?)`,
        {
          cause: error,
        },
      );
    }
  };
  return [
    {
      name: 'page',
      methods: ['GET', 'HEAD'],
      pattern: /^\/([a-z]+\.(?:html|js|css|svg|map)|[a-z]+\.js\.map)?$/,
      handler: async ({ url, res, req }) => {
        const name = url.pathname === '/' ? 'index.html' : url.pathname.slice(1);
        if (!PAGE_FILES.has(name)) throw new MediaServerError('NOT_FOUND', `no page file ${name}`);
        const body = await page(name);
        res.writeHead(200, {
          'content-type': STATIC[extname(name)] ?? 'application/octet-stream',
          'content-length': body.byteLength,
          'cache-control': 'no-cache',
          'x-content-type-options': 'nosniff',
          ...(name.endsWith('.html')
            ? {
                'content-security-policy':
                  "default-src 'self'; media-src 'self' blob:; img-src 'self' data:; style-src 'self'; script-src 'self'",
              }
            : {}),
        });
        res.end(req.method === 'HEAD' ? undefined : body);
      },
    },
    {
      name: 'api-videos',
      methods: ['GET', 'HEAD'],
      pattern: /^\/api\/videos$/,
      handler: async (ctx) => sendJson(ctx.res, 200, await deps.library.list(ctx.signal)),
    },
    {
      name: 'api-stats',
      methods: ['GET', 'HEAD'],
      pattern: /^\/api\/stats$/,
      handler: (ctx) => {
        const cache = deps.library.cache.stats;
        const pool = deps.library.pool.stats;
        sendJson(ctx.res, 200, {
          uptimeSeconds: Math.round((Date.now() - deps.startedAt) / 1000),
          rssBytes: process.memoryUsage.rss(),
          served: { ...deps.metrics.served },
          cache,
          readBuffers: {
            size: pool.slabSize,
            allocated: pool.slabs,
            inUse: pool.inUse,
            waiting: pool.waiting,
          },
        });
      },
    },
    {
      name: 'healthz',
      methods: ['GET', 'HEAD'],
      pattern: /^\/healthz$/,
      handler: (ctx) =>
        sendJson(ctx.res, 200, { status: 'ok', storage: deps.library.storage.kind }),
    },
    {
      name: 'metrics',
      methods: ['GET'],
      pattern: /^\/metrics$/,
      handler: async ({ res }) => {
        const text = await deps.metrics.registry.metrics();
        res.writeHead(200, {
          'content-type': deps.metrics.registry.contentType,
          'content-length': Buffer.byteLength(text),
          'cache-control': 'no-store',
        });
        res.end(text);
      },
    },
  ];
}
