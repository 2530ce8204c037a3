import { randomBytes } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { join } from 'node:path';
import { Server } from '@tus/server';
import type { ServerConfig } from '../config.ts';
import { type RequestContext, type Route, sendJson } from '../http/router.ts';
import type { Library } from '../library.ts';
import type { Logger } from '../log.ts';
import type { Metrics } from '../metrics.ts';
import { isVideoId } from '../storage/types.ts';
import { finishUpload, VIDEO_ID_HEADER } from './finish-upload.ts';
import { type StagingStore, stagingStore } from './staging-store.ts';
import { uploadKeyCheck } from './upload-key.ts';

/** What the upload endpoint needs. */
export interface UploadEndpointDeps {
  readonly config: Pick<
    ServerConfig,
    'host' | 'dataDir' | 'uploadMaxBytes' | 'uploadKey' | 'uploadExpiryMs'
  >;
  readonly library: Library;
  readonly metrics: Metrics;
  readonly log: Logger;
}

/** The tus endpoint at `/uploads`, its staging store and its expiry sweep. */
export interface UploadEndpoint {
  readonly routes: Route[];
  readonly tus: Server;
  readonly store: StagingStore;
  /** Deletes expired uploads now; resolves with how many unfinished ones went. */
  sweep(): Promise<number>;
  /** Stops the periodic sweep. */
  close(): void;
}

const LOOPBACK = /^(127\.\d+\.\d+\.\d+|::1|localhost)$/;

/** Where staged uploads live, under the data directory. */
export const UPLOADS_SUBDIR = 'uploads';

/**
 * tus 1.0 at `/uploads` through @tus/server: creation,
 * creation-with-upload, creation-defer-length, termination and expiration
 * (@tus/server implements no checksum extension, so it advertises none and
 * clients send none). Parts land in `DATA_DIR/uploads`; a finished upload is
 * probed and moved into the library before its last request is answered.
 *
 * Ids come from the server (16 random base64url characters, which are video
 * ids too) and never from the request; `Location` is relative, so it is
 * right behind any proxy without trusting forwarded headers; only
 * same-origin pages may upload (no CORS origin is allowed), and with
 * `UPLOAD_KEY` set every request but `OPTIONS` needs `Authorization: Bearer`.
 *
 * @example
 * ```ts
 * const uploads = uploadEndpoint({ config, library, metrics, log });
 * const routes = [...uploads.routes, ...videoRoutes(deps)];
 * ```
 */
export function uploadEndpoint(deps: UploadEndpointDeps): UploadEndpoint {
  const { config, library, metrics, log } = deps;
  const store = stagingStore(join(config.dataDir, UPLOADS_SUBDIR), config.uploadExpiryMs);
  const authorized = uploadKeyCheck(config.uploadKey);
  if (config.uploadKey === undefined && !LOOPBACK.test(config.host)) {
    log.warn('uploads are open to anyone who can reach the server; set UPLOAD_KEY', {
      host: config.host,
    });
  }
  const tus = new Server({
    path: '/uploads',
    datastore: store,
    maxSize: config.uploadMaxBytes,
    relativeLocation: true,
    allowedOrigins: [],
    exposedHeaders: [VIDEO_ID_HEADER],
    // A finished upload is a library video now: terminating the upload must not touch it.
    disableTerminationForFinishedUploads: true,
    namingFunction: () => randomBytes(12).toString('base64url'),
    getFileIdFromRequest: (_req, last) =>
      last !== undefined && isVideoId(last) ? last : undefined,
    onUploadFinish: (req, upload) =>
      withoutIdleTimeout(req, () => finishUpload({ store, library, metrics, log }, upload)),
  });

  const handle = async (ctx: RequestContext): Promise<void> => {
    if (ctx.req.method !== 'OPTIONS' && !authorized(ctx.req.headers.authorization)) {
      sendJson(
        ctx.res,
        401,
        {
          error: {
            code: 'UNAUTHORIZED',
            message: 'uploads need Authorization: Bearer <upload key>',
          },
        },
        { 'tus-resumable': '1.0.0', 'www-authenticate': 'Bearer realm="uploads"' },
      );
      return;
    }
    await tus.handle(ctx.req, ctx.res);
  };

  const sweep = async (): Promise<number> => {
    const expired = await tus.cleanUpExpiredUploads();
    if (expired > 0) {
      metrics.uploads.inc({ result: 'expired' }, expired);
      log.info('expired uploads deleted', { count: expired });
    }
    return expired;
  };
  const sweepQuietly = (): void => {
    sweep().catch((error: unknown) => log.warn('upload expiry sweep failed', { error }));
  };
  // Often enough that an upload outlives its expiry by at most half of it, never busier than 1/s.
  const every = Math.min(600_000, Math.max(1000, Math.floor(config.uploadExpiryMs / 2)));
  const timer = setInterval(sweepQuietly, every);
  timer.unref();
  sweepQuietly();

  return {
    routes: [
      { name: 'uploads', methods: ['POST', 'OPTIONS'], pattern: /^\/uploads\/?$/, handler: handle },
      {
        name: 'upload',
        methods: ['HEAD', 'PATCH', 'DELETE', 'OPTIONS'],
        pattern: /^\/uploads\/([A-Za-z0-9_-]{1,64})$/,
        handler: handle,
      },
    ],
    tus,
    store,
    sweep,
    close: () => clearInterval(timer),
  };
}

/**
 * Storing a large upload into S3 can take longer than the idle timeout
 * while the client, its bytes all sent, waits in silence; the connection
 * must not be cut for that.
 */
async function withoutIdleTimeout<T>(req: unknown, work: () => Promise<T>): Promise<T> {
  const socket = (req as { runtime?: { node?: { req?: IncomingMessage } } }).runtime?.node?.req
    ?.socket;
  const before = socket?.timeout;
  socket?.setTimeout(0);
  try {
    return await work();
  } finally {
    if (socket !== undefined && before !== undefined && !socket.destroyed)
      socket.setTimeout(before);
  }
}
