import { createHash, timingSafeEqual } from 'node:crypto';

/**
 * A check of `Authorization: Bearer <key>` against the configured upload
 * key in constant time: both sides are hashed first, so neither the key's
 * content nor its length leaks through timing. Without a configured key
 * every request passes.
 *
 * @example
 * ```ts
 * const allowed = uploadKeyCheck(config.uploadKey);
 * if (!allowed(req.headers.authorization)) res.writeHead(401).end();
 * ```
 */
export function uploadKeyCheck(
  key: string | undefined,
): (authorization: string | undefined) => boolean {
  if (key === undefined) return () => true;
  const expected = digest(key);
  return (authorization) => {
    const match = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(authorization ?? '');
    // Hashing even when the header is missing keeps every refusal the same cost.
    const given = digest(match?.[1] ?? '');
    return timingSafeEqual(given, expected) && match !== null;
  };
}

function digest(text: string): Buffer {
  return createHash('sha256').update(text, 'utf8').digest();
}
