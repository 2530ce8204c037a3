import type { IncomingMessage } from 'node:http';
import { bearerToken, matchesSecret, secretDigest } from '../http/secret.ts';

/**
 * Whether a broadcaster's request carries the stream key, as
 * `Authorization: Bearer KEY` or `?key=KEY` (what ffmpeg and OBS can send),
 * compared in constant time.
 *
 * @example
 * ```ts
 * if (!hasStreamKey(req, url, config.liveStreamKey)) throw new MediaServerError('UNAUTHORIZED', 'wrong stream key');
 * ```
 */
export function hasStreamKey(req: IncomingMessage, url: URL, key: string): boolean {
  const expected = secretDigest(key);
  // Evaluate both so the time taken does not say which form was tried.
  const byHeader = matchesSecret(bearerToken(req.headers.authorization), expected);
  const byQuery = matchesSecret(url.searchParams.get('key') ?? undefined, expected);
  return byHeader || byQuery;
}
