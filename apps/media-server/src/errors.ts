/**
 * Every failure the server reports to a client or an operator is one of these:
 * a stable `code` for programs, an HTTP `status` for the response, and a
 * message that names the offending value and the limit.
 */
export type MediaServerErrorCode =
  | 'CONFIG_INVALID'
  | 'NOT_FOUND'
  | 'METHOD_NOT_ALLOWED'
  | 'BAD_REQUEST'
  | 'REQUEST_TIMEOUT'
  | 'INVALID_TIMECODE'
  | 'TIME_OUT_OF_RANGE'
  | 'MEDIA_TRUNCATED'
  | 'MEDIA_CORRUPT'
  | 'MEDIA_UNSUPPORTED'
  | 'PAYLOAD_TOO_LARGE'
  | 'UNAUTHORIZED'
  | 'CONFLICT'
  | 'LIMIT_EXCEEDED'
  | 'STORAGE_FAILED'
  | 'INSUFFICIENT_STORAGE';

const STATUS: Record<MediaServerErrorCode, number> = {
  CONFIG_INVALID: 500,
  NOT_FOUND: 404,
  METHOD_NOT_ALLOWED: 405,
  BAD_REQUEST: 400,
  REQUEST_TIMEOUT: 408,
  INVALID_TIMECODE: 400,
  TIME_OUT_OF_RANGE: 416,
  MEDIA_TRUNCATED: 422,
  MEDIA_CORRUPT: 422,
  MEDIA_UNSUPPORTED: 415,
  PAYLOAD_TOO_LARGE: 413,
  UNAUTHORIZED: 401,
  CONFLICT: 409,
  LIMIT_EXCEEDED: 429,
  STORAGE_FAILED: 502,
  INSUFFICIENT_STORAGE: 507,
};

const BRAND = Symbol.for('streaming-primitives.media-server.error');

/** The one error type of the media server; `code` is stable, `status` is the HTTP status it maps to. */
export class MediaServerError extends Error {
  readonly code: MediaServerErrorCode;
  readonly status: number;
  readonly [BRAND] = true;

  constructor(
    code: MediaServerErrorCode,
    message: string,
    options?: { cause?: unknown; status?: number },
  ) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'MediaServerError';
    this.code = code;
    this.status = options?.status ?? STATUS[code];
  }

  /** True for any MediaServerError, even one from another copy of this module. */
  static isInstance(value: unknown): value is MediaServerError {
    return (
      typeof value === 'object' &&
      value !== null &&
      (value as { [BRAND]?: unknown })[BRAND] === true
    );
  }
}
