import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';

/**
 * Whether a broadcaster's request carries the stream key, as
 * `Authorization: Bearer KEY` or `?key=KEY` (what ffmpeg and OBS can send).
 * Compared in constant time: both sides are hashed first so neither the
 * length nor a common prefix of a wrong key shows in the timing.
 *
 * @example
 * ```ts
 * if (!hasStreamKey(req, url, config.liveStreamKey)) throw new MediaServerError('UNAUTHORIZED', 'wrong stream key');
 * ```
 */
export function hasStreamKey(req: IncomingMessage, url: URL, key: string): boolean {
  const bearer = /^Bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? '')?.[1];
  const query = url.searchParams.get('key') ?? undefined;
  const expected = digest(key);
  // Evaluate both so the time taken does not say which form was tried.
  const byHeader = bearer !== undefined && timingSafeEqual(digest(bearer), expected);
  const byQuery = query !== undefined && timingSafeEqual(digest(query), expected);
  return byHeader || byQuery;
}

function digest(text: string): Buffer {
  return createHash('sha256').update(text, 'utf8').digest();
}
