import { ProtocolError } from '../lib/errors';

/**
 * @internal How many bytes a server says it stores, from the `Range` header
 * of a `308 Resume Incomplete` answer: `bytes=0-N` means `N + 1` bytes, and
 * no `Range` at all means none (Google's resumable-upload document says so
 * for both the chunk answer and the status check). Anything else is a broken
 * server, not something to guess about.
 *
 * @example
 * ```ts
 * parseStoredRange('bytes=0-262143', url); // 262144
 * parseStoredRange(null, url); // 0
 * ```
 */
export function parseStoredRange(value: string | null, url: string): number {
  if (value === null) return 0;
  const match = /^\s*bytes=0-(\d+)\s*$/i.exec(value);
  const last = match?.[1] === undefined ? Number.NaN : Number(match[1]);
  if (!Number.isSafeInteger(last)) {
    throw new ProtocolError(
      `${url} answered 308 with Range ${JSON.stringify(value)}: expected "bytes=0-<last byte>"`,
    );
  }
  return last + 1;
}

/**
 * @internal The `Content-Range` of a chunk (RFC 9110 §14.4): `bytes a-b/total`,
 * `bytes a-b/*` while the total is unknown, and `bytes *\/total` for an empty
 * chunk that only declares the total (there is no `a-b` for zero bytes).
 *
 * @example
 * ```ts
 * contentRange(0, 262144, undefined); // 'bytes 0-262143/*'
 * contentRange(524288, 0, 524288); // 'bytes *\/524288'
 * ```
 */
export function contentRange(offset: number, length: number, total: number | undefined): string {
  const size = total === undefined ? '*' : String(total);
  if (length === 0) return `bytes */${size}`;
  return `bytes ${offset}-${offset + length - 1}/${size}`;
}

/**
 * @internal Frees the connection of a response whose body we do not need
 * (undici keeps the socket until the body is read or cancelled).
 *
 * @example
 * ```ts
 * if (response.status === 308) await discardBody(response);
 * ```
 */
export async function discardBody(response: Response): Promise<void> {
  try {
    await response.body?.cancel();
  } catch {
    // A body that cannot be cancelled has nothing left to hold the socket.
  }
}
