import { createHash, timingSafeEqual } from 'node:crypto';

/**
 * The SHA-256 of a configured secret (a stream key, an upload key), computed
 * once. Comparing digests keeps a wrong key's length and common prefix out of
 * the timing.
 *
 * @example
 * ```ts
 * const expected = secretDigest(config.uploadKey);
 * ```
 */
export function secretDigest(secret: string): Buffer {
  return createHash('sha256').update(secret, 'utf8').digest();
}

/**
 * Whether `given` is the secret behind `expected`, in constant time. A
 * missing value is hashed too, so every refusal costs the same.
 *
 * @example
 * ```ts
 * if (!matchesSecret(bearerToken(req.headers.authorization), expected)) throw unauthorized();
 * ```
 */
export function matchesSecret(given: string | undefined, expected: Buffer): boolean {
  return timingSafeEqual(secretDigest(given ?? ''), expected) && given !== undefined;
}

/**
 * The token of an `Authorization: Bearer <token>` header.
 *
 * @example
 * ```ts
 * bearerToken('Bearer abc'); // 'abc'
 * ```
 */
export function bearerToken(authorization: string | undefined): string | undefined {
  return /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(authorization ?? '')?.[1];
}
