import { LIVE_MIN_BUDGET, type LiveViewerPolicy, type ServerConfig } from '../config.ts';
import { MediaServerError } from '../errors.ts';
import type { RequestContext, Route } from '../http/router.ts';
import { sendJson } from '../http/router.ts';
import { hasStreamKey } from './auth.ts';
import { ingest } from './ingest.ts';
import type { LiveRegistry } from './registry.ts';
import { LiveViewer, type ViewerOptions } from './viewer.ts';

const NAME = /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/;

/**
 * `POST|PUT /live/:name` (a broadcaster pushes fragmented MP4),
 * `GET|HEAD /live/:name` (a viewer gets the init segment, then fragments
 * from the newest keyframe on) and `GET /api/live` (streams, viewers,
 * bitrates, drops and disconnects).
 *
 * @example
 * ```ts
 * const routes = liveRoutes(new LiveRegistry(config, log));
 * ```
 */
export function liveRoutes(registry: LiveRegistry): Route[] {
  const config = registry.config;
  return [
    {
      name: 'live-ingest',
      methods: ['POST', 'PUT'],
      pattern: /^\/live\/([^/]+)$/,
      longLived: true,
      handler: async (ctx) => {
        // Refusals must not leave Node reading (and discarding) an endless body.
        ctx.res.setHeader('connection', 'close');
        const key = config.liveStreamKey;
        if (key !== undefined && !hasStreamKey(ctx.req, ctx.url, key)) {
          ctx.res.setHeader('www-authenticate', 'Bearer realm="live"');
          throw new MediaServerError(
            'UNAUTHORIZED',
            'pushing a live stream needs the stream key: Authorization: Bearer KEY, or ?key=KEY',
          );
        }
        const { stream, session } = registry.open(streamName(ctx));
        const untrack = registry.track(ctx.req.socket);
        try {
          await ingest(ctx, stream, session, {
            maxFragmentBytes: config.liveMaxFragmentBytes,
            maxBitrate: config.liveMaxBitrate,
            bitrateWindowMs: config.liveBitrateWindowMs,
          });
        } finally {
          untrack();
        }
      },
    },
    {
      name: 'live-view',
      methods: ['GET', 'HEAD'],
      pattern: /^\/live\/([^/]+)$/,
      handler: (ctx) => view(ctx, registry),
    },
    {
      name: 'api-live',
      methods: ['GET', 'HEAD'],
      pattern: /^\/api\/live$/,
      handler: ({ res }) =>
        sendJson(res, 200, {
          serverTime: Date.now(),
          limits: {
            maxStreams: config.liveMaxStreams,
            maxViewers: config.liveMaxViewers,
            ringBytes: config.liveRingBytes,
            maxFragmentBytes: config.liveMaxFragmentBytes,
            viewerBudgetBytes: config.liveViewerBudgetBytes,
            maxViewerBudgetBytes: maxBudget(config),
            viewerPolicy: config.liveViewerPolicy,
            viewerMaxLagMs: config.liveViewerMaxLagMs,
            maxBitrate: config.liveMaxBitrate,
          },
          streams: registry.list(),
          recentViewers: registry.totals.departed,
        }),
    },
  ];
}

async function view(ctx: RequestContext, registry: LiveRegistry): Promise<void> {
  const { res, req } = ctx;
  const name = streamName(ctx);
  const options = viewerOptions(ctx.url, registry.config);
  const stream = registry.get(name);
  if (stream === undefined) throw new MediaServerError('NOT_FOUND', `no live stream ${name}`);
  const generation = await stream.ready(ctx.signal);
  const headers = {
    'content-type': generation.info.mimeCodec.split(';')[0] ?? 'video/mp4',
    'cache-control': 'no-store',
    'x-content-type-options': 'nosniff',
    'x-live-mime-codec': generation.info.mimeCodec,
    'x-live-policy': `${options.policy}; budget=${options.budget}; max-lag-ms=${options.maxLagMs}`,
    // The response lasts as long as the broadcast; nothing useful follows it on this connection,
    // and a connection left idle after it would hold up a shutdown for the keep-alive timeout.
    connection: 'close',
  };
  if (req.method === 'HEAD') {
    res.writeHead(200, headers);
    res.end();
    return;
  }
  const viewer = new LiveViewer(stream, generation, options, ctx.signal);
  try {
    stream.addViewer(viewer);
  } catch (error) {
    viewer.close();
    throw error;
  }
  try {
    res.writeHead(200, headers);
    await viewer.pump(ctx);
  } finally {
    stream.removeViewer(viewer, viewer.droppedBytes, viewer.cutReason);
  }
}

function streamName(ctx: RequestContext): string {
  const name = ctx.params[0] ?? '';
  if (!NAME.test(name)) {
    throw new MediaServerError(
      'BAD_REQUEST',
      `stream name ${JSON.stringify(name.slice(0, 80))}: expected 1-64 of A-Z a-z 0-9 _ - starting with a letter or digit`,
    );
  }
  return name;
}

function maxBudget(config: ServerConfig): number {
  return config.liveRingBytes - 2 * config.liveMaxFragmentBytes;
}

/** `?policy=skip|disconnect&budget=BYTES&maxLagMs=MS`, each within the server's limits. */
function viewerOptions(url: URL, config: ServerConfig): ViewerOptions {
  const params = url.searchParams;
  const policy = params.get('policy') ?? config.liveViewerPolicy;
  if (policy !== 'skip' && policy !== 'disconnect') {
    throw new MediaServerError(
      'BAD_REQUEST',
      `policy=${JSON.stringify(policy)}: expected skip or disconnect`,
    );
  }
  const budget = integer(params.get('budget'), 'budget', config.liveViewerBudgetBytes, {
    min: LIVE_MIN_BUDGET,
    max: maxBudget(config),
  });
  const maxLagMs = integer(params.get('maxLagMs'), 'maxLagMs', config.liveViewerMaxLagMs, {
    min: 100,
    max: config.liveViewerMaxLagMs,
  });
  return { policy: policy as LiveViewerPolicy, budget, maxLagMs };
}

function integer(
  raw: string | null,
  name: string,
  fallback: number,
  range: { min: number; max: number },
): number {
  if (raw === null) return fallback;
  const value = /^\d{1,15}$/.test(raw) ? Number(raw) : Number.NaN;
  if (!(value >= range.min && value <= range.max)) {
    throw new MediaServerError(
      'BAD_REQUEST',
      `${name}=${JSON.stringify(raw.slice(0, 40))}: expected an integer in ${range.min}..${range.max}`,
    );
  }
  return value;
}
