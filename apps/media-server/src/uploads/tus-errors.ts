import { MediaServerError, type MediaServerErrorCode } from '../errors.ts';

/**
 * An error as @tus/server sends it: thrown from a hook or a store, it
 * becomes the response's status and body. The body is the app's usual JSON
 * error, so tus clients (which show the body) and the upload page read the
 * same `{ error: { code, message } }` as every other route returns.
 *
 * @example
 * ```ts
 * const refused: TusError = { status_code: 507, body: '{"error":{"code":"INSUFFICIENT_STORAGE","message":"…"}}' };
 * ```
 */
export interface TusError {
  readonly status_code: number;
  readonly body: string;
}

/**
 * A {@link TusError} with a JSON body.
 *
 * @example
 * ```ts
 * throw tusError(401, 'UNAUTHORIZED', 'an upload key is required');
 * ```
 */
export function tusError(status: number, code: MediaServerErrorCode, message: string): TusError {
  return { status_code: status, body: JSON.stringify({ error: { code, message } }) };
}

/**
 * The {@link TusError} for anything thrown while a finished upload is
 * checked and stored: media verdicts keep their status (422, 415), a full
 * disk is 507, the rest 500 or the MediaServerError's own status.
 *
 * @example
 * ```ts
 * try { await store(); } catch (error) { throw toTusError(error); }
 * ```
 */
export function toTusError(error: unknown): TusError {
  if (MediaServerError.isInstance(error)) return tusError(error.status, error.code, error.message);
  if (isDiskFull(error)) {
    return tusError(507, 'INSUFFICIENT_STORAGE', 'the video library disk is full');
  }
  return tusError(500, 'STORAGE_FAILED', 'the upload could not be stored');
}

/**
 * True for the errors a full disk or an exhausted quota raise.
 *
 * @example
 * ```ts
 * if (isDiskFull(error)) res.writeHead(507);
 * ```
 */
export function isDiskFull(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  return code === 'ENOSPC' || code === 'EDQUOT';
}
