import { describe, expect, it } from 'vitest';
import {
  ChecksumMismatchError,
  HttpError,
  InvalidArgumentError,
  NetworkError,
  OffsetConflictError,
  ProtocolError,
  RetriesExhaustedError,
  SourceError,
  UploadAbortedError,
  UploadError,
} from './errors';
import { parseRetryAfter } from './http';

const cases: [UploadError, string, { isInstance(v: unknown): boolean }][] = [
  [new HttpError('PATCH', 'http://h/f/1', 503, 'busy'), 'UPLOAD_HTTP', HttpError],
  [
    new NetworkError('PATCH', 'http://h/f/1', { cause: new Error('ECONNRESET') }),
    'UPLOAD_NETWORK',
    NetworkError,
  ],
  [new OffsetConflictError(100, 50), 'UPLOAD_OFFSET_CONFLICT', OffsetConflictError],
  [
    new ChecksumMismatchError('chunk 3', 'sha1', 'a', 'b'),
    'UPLOAD_CHECKSUM_MISMATCH',
    ChecksumMismatchError,
  ],
  [new RetriesExhaustedError(10), 'UPLOAD_RETRIES_EXHAUSTED', RetriesExhaustedError],
  [new UploadAbortedError({ cause: 'user' }), 'UPLOAD_ABORTED', UploadAbortedError],
  [new SourceError('gone'), 'UPLOAD_SOURCE', SourceError],
  [new ProtocolError('no Location'), 'UPLOAD_PROTOCOL', ProtocolError],
  [new InvalidArgumentError('bad'), 'UPLOAD_INVALID_ARGUMENT', InvalidArgumentError],
];

describe('errors', () => {
  it.each(cases)('%s has a stable code and is recognised by its class only', (err, code, cls) => {
    expect(err.code).toBe(code);
    expect(UploadError.isInstance(err)).toBe(true);
    expect(cls.isInstance(err)).toBe(true);
    for (const [other, , otherCls] of cases)
      if (other !== err) expect(otherCls.isInstance(err)).toBe(false);
  });

  it('marks exactly the statuses that may succeed later as retryable', () => {
    const retryable = [408, 425, 429, 500, 502, 503, 504];
    const final = [400, 401, 403, 404, 409, 412, 413, 460, 501];
    for (const s of retryable) expect(new HttpError('PUT', 'u', s, '').retryable).toBe(true);
    for (const s of final) expect(new HttpError('PUT', 'u', s, '').retryable).toBe(false);
    expect(new NetworkError('PUT', 'u').retryable).toBe(true);
    expect(new HttpError('PATCH', 'http://h/f/1', 503, 'busy').message).toBe(
      'PATCH http://h/f/1 failed with HTTP 503: busy',
    );
  });

  it('parses Retry-After as seconds or an HTTP date', () => {
    expect(parseRetryAfter('7')).toBe(7000);
    expect(
      parseRetryAfter('Wed, 21 Oct 2015 07:28:05 GMT', Date.parse('Wed, 21 Oct 2015 07:28:00 GMT')),
    ).toBe(5000);
    expect(parseRetryAfter('soon')).toBeUndefined();
    expect(parseRetryAfter(null)).toBeUndefined();
  });
});
