import type { JsonValue } from '../lib/types';

/**
 * @internal What a core (offset) tus session persists. The server is the
 * truth for offset and length, so only the URL and its expiry are kept.
 *
 * @example
 * ```ts
 * const state: CoreState = { v: 1, mode: 'core', url: 'https://tus.example/files/abc', expires: null };
 * ```
 */
export type CoreState = {
  v: 1;
  mode: 'core';
  /** `null` until the upload exists (creation-with-upload creates it with the first chunk). */
  url: string | null;
  /** `Upload-Expires` as an ISO date, `null` when the server gave none. */
  expires: string | null;
};

/**
 * @internal What a concatenation session persists: one partial upload per
 * chunk index, and the final upload once created.
 *
 * @example
 * ```ts
 * const state: ConcatState = {
 *   v: 1, mode: 'concatenation', final: null, expires: null,
 *   parts: [{ index: 0, url: 'https://tus.example/files/a', size: 8388608 }],
 * };
 * ```
 */
export type ConcatState = {
  v: 1;
  mode: 'concatenation';
  /** Partial uploads by chunk index. */
  parts: { index: number; url: string; size: number }[];
  /** The final upload, once `complete()` created it. */
  final: string | null;
  /** The earliest `Upload-Expires` of any part, as an ISO date. */
  expires: string | null;
};

/**
 * @internal Reads persisted state back. A bare string is taken as an upload
 * URL (core mode), so an upload started by another tus client can be
 * continued. Anything else unrecognised is `undefined`: stale or foreign
 * state starts a fresh upload rather than failing.
 *
 * @example
 * ```ts
 * parseState('https://tus.example/files/abc'); // { v: 1, mode: 'core', url: 'https://tus.example/files/abc', expires: null }
 * ```
 */
export function parseState(value: JsonValue): CoreState | ConcatState | undefined {
  if (typeof value === 'string') {
    return isUrl(value) ? { v: 1, mode: 'core', url: value, expires: null } : undefined;
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value) || value.v !== 1)
    return undefined;
  const expires = typeof value.expires === 'string' ? value.expires : null;
  if (value.mode === 'core') {
    if (value.url !== null && !(typeof value.url === 'string' && isUrl(value.url)))
      return undefined;
    return { v: 1, mode: 'core', url: value.url, expires };
  }
  if (value.mode === 'concatenation') {
    if (!Array.isArray(value.parts)) return undefined;
    const parts: ConcatState['parts'] = [];
    for (const part of value.parts) {
      if (typeof part !== 'object' || part === null || Array.isArray(part)) return undefined;
      const { index, url, size } = part;
      if (!isCount(index) || !isCount(size) || typeof url !== 'string' || !isUrl(url))
        return undefined;
      parts.push({ index, url, size });
    }
    const final = typeof value.final === 'string' && isUrl(value.final) ? value.final : null;
    return { v: 1, mode: 'concatenation', parts, final, expires };
  }
  return undefined;
}

function isUrl(value: string): boolean {
  return URL.canParse(value);
}

function isCount(value: JsonValue | undefined): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}
