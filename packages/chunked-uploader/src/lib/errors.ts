const kUploadError = Symbol.for('chunked-uploader.error');

/**
 * Every stable error code thrown by chunked-uploader.
 *
 * @example
 * ```ts
 * import { UploadError } from 'chunked-uploader';
 * if (UploadError.isInstance(err) && err.code === 'UPLOAD_OFFSET_CONFLICT') await upload.start();
 * ```
 */
export type UploadErrorCode =
  | 'UPLOAD_HTTP'
  | 'UPLOAD_NETWORK'
  | 'UPLOAD_OFFSET_CONFLICT'
  | 'UPLOAD_CHECKSUM_MISMATCH'
  | 'UPLOAD_RETRIES_EXHAUSTED'
  | 'UPLOAD_ABORTED'
  | 'UPLOAD_SOURCE'
  | 'UPLOAD_PROTOCOL'
  | 'UPLOAD_INVALID_ARGUMENT';

/** Options every chunked-uploader error accepts. */
export interface UploadErrorOptions {
  /** The error that led to this one, if any. */
  cause?: unknown;
  /**
   * Whether trying again may succeed (a timeout, a 503), as opposed to a
   * request that will fail the same way every time (a 403, a bad checksum
   * algorithm).
   * @default false
   */
  retryable?: boolean;
}

/**
 * Base class of every error chunked-uploader throws, with a stable
 * {@link UploadError.code} and whether a retry may help. Use
 * {@link UploadError.isInstance} rather than `instanceof` when two copies of
 * the package may be loaded.
 *
 * @example
 * ```ts
 * import { UploadError } from 'chunked-uploader';
 * try { await upload.start(); } catch (err) {
 *   if (UploadError.isInstance(err)) console.error(err.code, err.message);
 * }
 * ```
 */
export class UploadError extends Error {
  /** Stable, machine-readable code. */
  readonly code: UploadErrorCode;
  /** Whether trying again may succeed. */
  readonly retryable: boolean;

  /** @param message - what went wrong, naming the value and the limit. */
  constructor(message: string, code: UploadErrorCode, options: UploadErrorOptions = {}) {
    super(message, { cause: options.cause });
    this.name = 'UploadError';
    this.code = code;
    this.retryable = options.retryable ?? false;
  }

  /** @internal Brand that survives duplicated package copies. */
  get [kUploadError](): true {
    return true;
  }

  /**
   * True for any chunked-uploader error, from this copy of the package or another.
   *
   * @example
   * ```ts
   * if (UploadError.isInstance(err)) console.log(err.code, err.retryable);
   * ```
   */
  static isInstance(value: unknown): value is UploadError {
    return (
      typeof value === 'object' &&
      value !== null &&
      (value as { [kUploadError]?: unknown })[kUploadError] === true
    );
  }
}

function hasCode(value: unknown, code: UploadErrorCode): boolean {
  return UploadError.isInstance(value) && value.code === code;
}

/**
 * The server answered with a status the protocol does not expect. 408, 429
 * and 5xx are retryable; other statuses are not.
 *
 * @example
 * ```ts
 * import { HttpError } from 'chunked-uploader';
 * if (HttpError.isInstance(err)) console.log(err.status, err.method, err.url);
 * ```
 */
export class HttpError extends UploadError {
  /** The HTTP status. */
  readonly status: number;
  /** The request method. */
  readonly method: string;
  /** The request URL. */
  readonly url: string;
  /** Milliseconds the server asked us to wait (`Retry-After`), if it said. */
  readonly retryAfterMs: number | undefined;

  constructor(
    method: string,
    url: string,
    status: number,
    detail: string,
    options: UploadErrorOptions & { retryAfterMs?: number | undefined } = {},
  ) {
    super(
      `${method} ${url} failed with HTTP ${status}${detail ? `: ${detail}` : ''}`,
      'UPLOAD_HTTP',
      {
        cause: options.cause,
        retryable: options.retryable ?? isRetryableStatus(status),
      },
    );
    this.name = 'HttpError';
    this.status = status;
    this.method = method;
    this.url = url;
    this.retryAfterMs = options.retryAfterMs;
  }

  /** True for an {@link HttpError} from any copy of the package. */
  static override isInstance(value: unknown): value is HttpError {
    return hasCode(value, 'UPLOAD_HTTP');
  }
}

/**
 * The request never got an answer: connection refused or reset, DNS, a
 * timeout. Always retryable.
 *
 * @example
 * ```ts
 * import { NetworkError } from 'chunked-uploader';
 * if (NetworkError.isInstance(err)) console.log('will retry:', err.message);
 * ```
 */
export class NetworkError extends UploadError {
  constructor(method: string, url: string, options: UploadErrorOptions = {}) {
    super(
      `${method} ${url} failed before a response: ${describe(options.cause)}`,
      'UPLOAD_NETWORK',
      {
        cause: options.cause,
        retryable: true,
      },
    );
    this.name = 'NetworkError';
  }

  /** True for a {@link NetworkError} from any copy of the package. */
  static override isInstance(value: unknown): value is NetworkError {
    return hasCode(value, 'UPLOAD_NETWORK');
  }
}

/**
 * The server's offset differs from the one the client sent from (tus 409,
 * GCS/HTTP range mismatch). The engine re-reads the server's offset and
 * continues from there; this reaches the caller only when that fails.
 *
 * @example
 * ```ts
 * import { OffsetConflictError } from 'chunked-uploader';
 * if (OffsetConflictError.isInstance(err)) console.log(err.clientOffset, err.serverOffset);
 * ```
 */
export class OffsetConflictError extends UploadError {
  /** Where the client sent from. */
  readonly clientOffset: number;
  /** Where the server is, if it said. */
  readonly serverOffset: number | undefined;

  constructor(
    clientOffset: number,
    serverOffset: number | undefined,
    options: UploadErrorOptions = {},
  ) {
    super(
      `offset conflict: client sent from ${clientOffset}, server is at ${serverOffset ?? 'an unknown offset'}`,
      'UPLOAD_OFFSET_CONFLICT',
      { cause: options.cause, retryable: true },
    );
    this.name = 'OffsetConflictError';
    this.clientOffset = clientOffset;
    this.serverOffset = serverOffset;
  }

  /** True for an {@link OffsetConflictError} from any copy of the package. */
  static override isInstance(value: unknown): value is OffsetConflictError {
    return hasCode(value, 'UPLOAD_OFFSET_CONFLICT');
  }
}

/**
 * A checksum did not match: the server rejected a chunk's checksum, or the
 * finished object's digest differs from the source's. Never silently
 * accepted.
 *
 * @example
 * ```ts
 * import { ChecksumMismatchError } from 'chunked-uploader';
 * if (ChecksumMismatchError.isInstance(err)) console.log(err.algorithm, err.expected, err.actual);
 * ```
 */
export class ChecksumMismatchError extends UploadError {
  /** The algorithm compared. */
  readonly algorithm: string;
  /** What the client computed. */
  readonly expected: string;
  /** What the server reported, if it said. */
  readonly actual: string | undefined;

  constructor(
    what: string,
    algorithm: string,
    expected: string,
    actual: string | undefined,
    options: UploadErrorOptions = {},
  ) {
    super(
      `${what}: ${algorithm} checksum mismatch (client ${expected}, server ${actual ?? 'rejected it'})`,
      'UPLOAD_CHECKSUM_MISMATCH',
      { cause: options.cause, retryable: options.retryable ?? false },
    );
    this.name = 'ChecksumMismatchError';
    this.algorithm = algorithm;
    this.expected = expected;
    this.actual = actual;
  }

  /** True for a {@link ChecksumMismatchError} from any copy of the package. */
  static override isInstance(value: unknown): value is ChecksumMismatchError {
    return hasCode(value, 'UPLOAD_CHECKSUM_MISMATCH');
  }
}

/**
 * The shared retry budget ran out. The last failure is the `cause`.
 *
 * @example
 * ```ts
 * import { RetriesExhaustedError } from 'chunked-uploader';
 * if (RetriesExhaustedError.isInstance(err)) console.log(err.attempts, err.cause);
 * ```
 */
export class RetriesExhaustedError extends UploadError {
  /** Retries spent across all parts. */
  readonly attempts: number;

  constructor(attempts: number, options: UploadErrorOptions = {}) {
    super(
      `gave up after ${attempts} retries (the shared retry budget): ${describe(options.cause)}`,
      'UPLOAD_RETRIES_EXHAUSTED',
      { cause: options.cause },
    );
    this.name = 'RetriesExhaustedError';
    this.attempts = attempts;
  }

  /** True for a {@link RetriesExhaustedError} from any copy of the package. */
  static override isInstance(value: unknown): value is RetriesExhaustedError {
    return hasCode(value, 'UPLOAD_RETRIES_EXHAUSTED');
  }
}

/**
 * The upload was aborted (by `abort()` or its signal). The reason is the `cause`.
 *
 * @example
 * ```ts
 * import { UploadAbortedError } from 'chunked-uploader';
 * if (UploadAbortedError.isInstance(err)) console.log('stopped:', err.cause);
 * ```
 */
export class UploadAbortedError extends UploadError {
  constructor(options: UploadErrorOptions = {}) {
    super(
      `upload aborted${options.cause === undefined ? '' : `: ${describe(options.cause)}`}`,
      'UPLOAD_ABORTED',
      {
        cause: options.cause,
      },
    );
    this.name = 'UploadAbortedError';
  }

  /** True for an {@link UploadAbortedError} from any copy of the package. */
  static override isInstance(value: unknown): value is UploadAbortedError {
    return hasCode(value, 'UPLOAD_ABORTED');
  }
}

/**
 * Reading the source failed, or it ended before its declared size, or it
 * changed since a persisted upload started.
 *
 * @example
 * ```ts
 * import { SourceError } from 'chunked-uploader';
 * if (SourceError.isInstance(err)) console.error('the file changed or vanished:', err.message);
 * ```
 */
export class SourceError extends UploadError {
  constructor(message: string, options: UploadErrorOptions = {}) {
    super(message, 'UPLOAD_SOURCE', options);
    this.name = 'SourceError';
  }

  /** True for a {@link SourceError} from any copy of the package. */
  static override isInstance(value: unknown): value is SourceError {
    return hasCode(value, 'UPLOAD_SOURCE');
  }
}

/**
 * The server broke the protocol: a missing `Location` or `Upload-Offset`, an
 * unsupported version or extension, a malformed header. Not retryable.
 *
 * @example
 * ```ts
 * import { ProtocolError } from 'chunked-uploader';
 * if (ProtocolError.isInstance(err)) console.error(err.message);
 * ```
 */
export class ProtocolError extends UploadError {
  constructor(message: string, options: UploadErrorOptions = {}) {
    super(message, 'UPLOAD_PROTOCOL', options);
    this.name = 'ProtocolError';
  }

  /** True for a {@link ProtocolError} from any copy of the package. */
  static override isInstance(value: unknown): value is ProtocolError {
    return hasCode(value, 'UPLOAD_PROTOCOL');
  }
}

/**
 * An option or argument is out of range or the wrong shape.
 *
 * @example
 * ```ts
 * import { InvalidArgumentError } from 'chunked-uploader';
 * if (InvalidArgumentError.isInstance(err)) console.error(err.message);
 * ```
 */
export class InvalidArgumentError extends UploadError {
  constructor(message: string, options: UploadErrorOptions = {}) {
    super(message, 'UPLOAD_INVALID_ARGUMENT', options);
    this.name = 'InvalidArgumentError';
  }

  /** True for an {@link InvalidArgumentError} from any copy of the package. */
  static override isInstance(value: unknown): value is InvalidArgumentError {
    return hasCode(value, 'UPLOAD_INVALID_ARGUMENT');
  }
}

/** @internal 408, 425, 429 and 5xx (but 501) may succeed when tried again. */
export function isRetryableStatus(status: number): boolean {
  return status === 408 || status === 425 || status === 429 || (status >= 500 && status !== 501);
}

/** @internal A short description of an unknown thrown value. */
export function describe(value: unknown): string {
  if (value instanceof Error) return value.message;
  if (value === undefined) return 'unknown reason';
  return String(value);
}
