import type { SlabPool } from 'buffer-view';
import { MediaServerError } from '../errors.ts';
import { SlabWriter, writeSegments } from '../http/body.ts';
import { evaluatePreconditions, httpDate, rangeApplies } from '../http/conditional.ts';
import { planMultipart } from '../http/multipart-byteranges.ts';
import { type ByteRange, contentRange, parseRange, unsatisfiedRange } from '../http/range.ts';
import type { RequestContext, Route } from '../http/router.ts';
import { sendJson } from '../http/router.ts';
import type { BodySource, Library } from '../library.ts';
import { parseTime } from '../media/timecode.ts';
import type { Metrics } from '../metrics.ts';
import type { StoredVideo } from '../storage/types.ts';
import { isVideoId } from '../storage/types.ts';

/** What the video routes need from the server. */
export interface VideoRoutesDeps {
  readonly library: Library;
  readonly pool: SlabPool;
  readonly metrics: Metrics;
  readonly maxRanges: number;
}

/** Default and largest `size` of `GET /videos/:id/chunk`. */
export const CHUNK_DEFAULT = 20 * 2 ** 20;
const CHUNK_MAX = 256 * 2 ** 20;

/**
 * `GET|HEAD /videos/:id` (Range, conditional requests), `GET /videos/:id/seek`
 * and `GET /videos/:id/chunk`.
 *
 * @example
 * ```ts
 * const routes = videoRoutes({ library, pool, metrics, maxRanges: 16 });
 * ```
 */
export function videoRoutes(deps: VideoRoutesDeps): Route[] {
  return [
    {
      name: 'video',
      methods: ['GET', 'HEAD'],
      pattern: /^\/videos\/([^/]+)$/,
      handler: (ctx) => serveFile(ctx, deps),
    },
    {
      name: 'seek',
      methods: ['GET', 'HEAD'],
      pattern: /^\/videos\/([^/]+)\/seek$/,
      handler: async (ctx) => {
        const video = await findVideo(ctx, deps.library);
        const { seek } = await locate(ctx, deps.library, video);
        sendJson(ctx.res, 200, { id: video.id, ...seek });
      },
    },
    {
      name: 'chunk',
      methods: ['GET', 'HEAD'],
      pattern: /^\/videos\/([^/]+)\/chunk$/,
      handler: async (ctx) => {
        const video = await findVideo(ctx, deps.library);
        const size = chunkSize(ctx.url.searchParams.get('size'));
        const { seek } = await locate(ctx, deps.library, video);
        const start = seek.byteOffset;
        const range: ByteRange = { start, end: Math.min(video.size, start + size) - 1 };
        ctx.res.setHeader('x-keyframe-time', String(seek.keyframeTime));
        await sendRanges(ctx, deps, video, [range], 206);
      },
    },
  ];
}

async function findVideo(ctx: RequestContext, library: Library): Promise<StoredVideo> {
  const id = ctx.params[0] ?? '';
  if (!isVideoId(id))
    throw new MediaServerError('NOT_FOUND', `no video ${JSON.stringify(id.slice(0, 80))}`);
  const video = await library.stat(id, ctx.signal);
  if (video === undefined)
    throw new MediaServerError('NOT_FOUND', `no video ${JSON.stringify(id)}`);
  return video;
}

async function locate(ctx: RequestContext, library: Library, video: StoredVideo) {
  const t = ctx.url.searchParams.get('t');
  if (t === null)
    throw new MediaServerError(
      'INVALID_TIMECODE',
      'missing t: give seconds (4154.93) or HH:MM:SS:FF',
    );
  const fpsRaw = ctx.url.searchParams.get('fps');
  const fps = fpsRaw === null ? undefined : Number(fpsRaw);
  if (fps !== undefined && !(Number.isFinite(fps) && fps > 0 && fps <= 1000)) {
    throw new MediaServerError(
      'INVALID_TIMECODE',
      `fps=${JSON.stringify(fpsRaw)}: expected a number in (0, 1000]`,
    );
  }
  const index = await library.seekIndex(video);
  const frameRate = fps ?? index.frameRate;
  const seconds = parseTime(t, frameRate === undefined ? {} : { fps: frameRate });
  return { index, seek: index.seek(seconds) };
}

function chunkSize(raw: string | null): number {
  if (raw === null) return CHUNK_DEFAULT;
  const size = /^\d{1,12}$/.test(raw) ? Number(raw) : Number.NaN;
  if (!(size >= 1 && size <= CHUNK_MAX)) {
    throw new MediaServerError(
      'BAD_REQUEST',
      `size=${JSON.stringify(raw)}: expected 1..${CHUNK_MAX} bytes`,
    );
  }
  return size;
}

async function serveFile(ctx: RequestContext, deps: VideoRoutesDeps): Promise<void> {
  const video = await findVideo(ctx, deps.library);
  const { req, res } = ctx;
  const validators = { etag: video.etag, lastModified: video.mtimeMs };
  setValidatorHeaders(ctx, video);
  const precondition = evaluatePreconditions(req.method ?? 'GET', req.headers, validators);
  if (precondition === 'not-modified') {
    res.writeHead(304);
    res.end();
    return;
  }
  if (precondition === 'precondition-failed') {
    res.removeHeader('accept-ranges');
    sendJson(res, 412, {
      error: {
        code: 'PRECONDITION_FAILED',
        message: `${video.id} does not match the request's preconditions`,
      },
    });
    return;
  }
  const rangeHeader = rangeApplies(header(req.headers['if-range']), validators)
    ? header(req.headers.range)
    : undefined;
  const parsed = parseRange(rangeHeader, video.size, { maxRanges: deps.maxRanges });
  if (parsed.type === 'unsatisfiable') {
    res.writeHead(416, { 'content-range': unsatisfiedRange(video.size), 'content-length': 0 });
    res.end();
    return;
  }
  if (parsed.type === 'ignore') {
    await sendRanges(
      ctx,
      deps,
      video,
      video.size === 0 ? [] : [{ start: 0, end: video.size - 1 }],
      200,
    );
    return;
  }
  await sendRanges(ctx, deps, video, parsed.ranges, 206);
}

function setValidatorHeaders(ctx: RequestContext, video: StoredVideo): void {
  const { res } = ctx;
  res.setHeader('accept-ranges', 'bytes');
  res.setHeader('etag', video.etag);
  res.setHeader('last-modified', httpDate(video.mtimeMs));
  // Revalidate every time: a cheap 304 keeps replaced files from being served stale by browsers.
  res.setHeader('cache-control', 'no-cache');
}

function header(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value.join(', ') : value;
}

/** Sends `ranges` of the video: one as a plain body, several as multipart/byteranges. */
async function sendRanges(
  ctx: RequestContext,
  deps: VideoRoutesDeps,
  video: StoredVideo,
  ranges: readonly ByteRange[],
  status: 200 | 206,
): Promise<void> {
  const { res, req } = ctx;
  const contentType = video.meta.contentType;
  if (!res.hasHeader('etag')) setValidatorHeaders(ctx, video);
  const multipart = ranges.length > 1 ? planMultipart(ranges, video.size, contentType) : undefined;
  if (multipart !== undefined) {
    res.writeHead(206, {
      'content-type': multipart.contentType,
      'content-length': multipart.contentLength,
    });
  } else {
    const range = ranges[0];
    const headers: Record<string, string | number> = {
      'content-type': contentType,
      'content-length': range === undefined ? 0 : range.end - range.start + 1,
    };
    if (status === 206 && range !== undefined)
      headers['content-range'] = contentRange(range, video.size);
    res.writeHead(status, headers);
  }
  if (req.method === 'HEAD' || ranges.length === 0) {
    res.end();
    return;
  }
  const body = await deps.library.body(video);
  try {
    const writer = body.kind === 'storage' ? new SlabWriter(res, deps.pool) : undefined;
    const parts = multipart?.parts ?? ranges.map((range) => ({ head: undefined, range }));
    for (const part of parts) {
      // Part heads are tiny; the body write after each one waits for drain.
      if (part.head !== undefined) res.write(part.head);
      const ok = await writeRange(ctx, deps, body, writer, part.range);
      if (!ok) return;
    }
    if (multipart !== undefined) res.write(multipart.tail);
    res.end();
  } finally {
    if (body.kind === 'cache') {
      // The socket may still hold references to cached memory until the response closes.
      if (res.closed) body.pin.release();
      else res.once('close', () => body.pin.release());
    } else {
      await body.source.close();
    }
  }
}

async function writeRange(
  ctx: RequestContext,
  deps: VideoRoutesDeps,
  body: BodySource,
  writer: SlabWriter | undefined,
  range: ByteRange,
): Promise<boolean> {
  const length = range.end - range.start + 1;
  let ok: boolean;
  if (body.kind === 'cache') {
    ok = await writeSegments(ctx.res, body.pin.view(range.start, range.end + 1).segments());
    if (ok) deps.metrics.served.cache += length;
  } else {
    ok = await (writer as SlabWriter).write(body.source, range.start, range.end + 1, ctx.signal);
    if (ok) deps.metrics.served.storage += length;
  }
  if (ok) ctx.sent += length;
  return ok;
}
