import { bearerToken, matchesSecret, secretDigest } from '../http/secret.ts';

/**
 * A check of `Authorization: Bearer <key>` against the configured upload
 * key, in constant time. Without a configured key every request passes.
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
  const expected = secretDigest(key);
  return (authorization) => matchesSecret(bearerToken(authorization), expected);
}
