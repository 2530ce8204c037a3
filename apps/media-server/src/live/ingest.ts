import type { IncomingMessage } from 'node:http';
import { MediaServerError } from '../errors.ts';
import type { RequestContext } from '../http/router.ts';
import { sendJson } from '../http/router.ts';
import { BitrateMeter } from './bitrate.ts';
import { BoxSplitter } from './box-splitter.ts';
import type { LiveStream } from './live-stream.ts';

/**
 * The ingest limits of one broadcaster.
 *
 * @example
 * ```ts
 * const limits: IngestLimits = { maxFragmentBytes: 4 * 2 ** 20, maxBitrate: 20e6, bitrateWindowMs: 5000 };
 * ```
 */
export interface IngestLimits {
  readonly maxFragmentBytes: number;
  /** Bits per second over `bitrateWindowMs`. */
  readonly maxBitrate: number;
  readonly bitrateWindowMs: number;
}

/**
 * What the broadcaster gets back once its request body has ended.
 *
 * @example
 * ```ts
 * const summary: IngestSummary = { name: 'cam1', bytes: 1_234_567, fragments: 42, keyframes: 9 };
 * ```
 */
export interface IngestSummary {
  readonly name: string;
  readonly bytes: number;
  readonly fragments: number;
  readonly keyframes: number;
}

/**
 * Receives one broadcaster's request body into a live stream: each chunk
 * Node's HTTP parser hands over goes through the box splitter (no copy:
 * fragments are views of the chunks) and every whole fragment is written
 * into the stream's ring (the one copy). Resolves once the body ended,
 * with the response sent; throws a MediaServerError (the router sends it,
 * and `connection: close` drops whatever the broadcaster still sends) for
 * a broken box stream, a fragment over the limit or a bitrate over the
 * ceiling. A connection that drops ends the session without a response.
 *
 * @example
 * ```ts
 * const session = stream.startSession();
 * await ingest(ctx, stream, session, limits);
 * ```
 */
export async function ingest(
  ctx: RequestContext,
  stream: LiveStream,
  session: object,
  limits: IngestLimits,
): Promise<void> {
  const { req, res } = ctx;
  let clean = false;
  const fragmentsBefore = stream.stats.fragments;
  const keyframesBefore = stream.stats.keyframes;
  const meter = new BitrateMeter(limits.bitrateWindowMs);
  stream.bitrate = () => meter.bitsPerSecond();
  const ceiling = (limits.maxBitrate / 8) * (limits.bitrateWindowMs / 1000);
  const splitter = new BoxSplitter({
    maxUnitBytes: limits.maxFragmentBytes,
    onInit: (init) => stream.setInit(init),
    onFragment: (fragment) => stream.publish(fragment),
  });
  // Whatever happens from here, nothing more of this request body is wanted afterwards.
  res.setHeader('connection', 'close');
  try {
    await receive(req, (chunk) => {
      stream.countIngest(chunk.byteLength);
      meter.add(chunk.byteLength);
      if (meter.windowBytes() > ceiling) {
        throw new MediaServerError(
          'LIMIT_EXCEEDED',
          `ingest of ${(meter.bitsPerSecond() / 1e6).toFixed(2)} Mbit/s over the last ${limits.bitrateWindowMs} ms exceeds the ceiling of ${(limits.maxBitrate / 1e6).toFixed(2)} Mbit/s (LIVE_MAX_BITRATE)`,
        );
      }
      splitter.push(chunk);
    });
    splitter.end();
    clean = true;
    const summary: IngestSummary = {
      name: stream.name,
      bytes: splitter.bytesIn,
      fragments: stream.stats.fragments - fragmentsBefore,
      keyframes: stream.stats.keyframes - keyframesBefore,
    };
    sendJson(res, 200, summary);
  } catch (error) {
    // A broadcaster that ended mid-fragment still ended: viewers got whole fragments only.
    if (MediaServerError.isInstance(error) && error.code === 'MEDIA_TRUNCATED') clean = true;
    throw error;
  } finally {
    stream.endSession(session, clean);
  }
}

/** Feeds every body chunk to `onChunk`; resolves at the end, rejects on a throw or a dropped connection. */
function receive(req: IncomingMessage, onChunk: (chunk: Buffer) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    const cleanup = () => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('close', onClose);
      req.off('error', onClose);
    };
    const onData = (chunk: Buffer) => {
      try {
        onChunk(chunk);
      } catch (error) {
        cleanup();
        req.pause();
        reject(error);
      }
    };
    const onEnd = () => {
      cleanup();
      resolve();
    };
    const onClose = () => {
      cleanup();
      reject(new MediaServerError('BAD_REQUEST', 'the broadcaster dropped the connection'));
    };
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('close', onClose);
    req.on('error', onClose);
  });
}
