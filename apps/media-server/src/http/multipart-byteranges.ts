/**
 * Planning a `multipart/byteranges` body (RFC 9110 §14.6) without touching
 * the representation's bytes: the plan holds the small framing buffers and
 * the ranges, and the route interleaves them with zero-copy views of the
 * data it already has.
 *
 * @module
 */

import { assertRangeWithin, type ByteRange, contentRange } from './range.ts';

/**
 * One part of a planned multipart body: write `head`, then the bytes
 * `range.start..range.end` (inclusive) of the representation.
 *
 * @example
 * ```ts
 * const part: MultipartPart = planMultipart([{ start: 0, end: 9 }], 100, 'video/mp4').parts[0]!;
 * ```
 */
export interface MultipartPart {
  /** `CRLF --boundary CRLF Content-Type: … CRLF Content-Range: … CRLF CRLF`. */
  readonly head: Uint8Array;
  readonly range: ByteRange;
}

/**
 * Everything a route needs to send a `multipart/byteranges` 206: the
 * headers' values and the framing. The body is each part's `head` followed by
 * its range's bytes, in order, then `tail`; `contentLength` is exactly that
 * many bytes.
 *
 * @example
 * ```ts
 * const plan: MultipartPlan = planMultipart(ranges, size, 'video/mp4');
 * response.writeHead(206, { 'content-type': plan.contentType, 'content-length': plan.contentLength });
 * ```
 */
export interface MultipartPlan {
  /** `multipart/byteranges; boundary=…`, the response's `Content-Type`. */
  readonly contentType: string;
  /** Exact body length in bytes, framing included. */
  readonly contentLength: number;
  readonly parts: readonly MultipartPart[];
  /** `CRLF --boundary-- CRLF`. */
  readonly tail: Uint8Array;
}

/**
 * Plans a `multipart/byteranges` body for `ranges` of a representation of
 * `size` bytes whose own media type is `contentType` (RFC 9110 §14.6).
 *
 * Parts go in the order given (the order `parseRange` chose). Every
 * part carries `Content-Range` and, unless `contentType` is `''`, the
 * representation's `Content-Type`, as §14.6 asks. The body starts with CRLF
 * before the first delimiter: an empty preamble followed by the delimiter's
 * CRLF, which RFC 2046 allows and which lets every part's head share one
 * shape.
 *
 * The default boundary is 32 hex characters from `crypto.getRandomValues`
 * (128 bits). It cannot be confused with anything in the part headers, which
 * are single lines that start with `Content-`, but the range bodies are
 * arbitrary binary, so a clash is possible in principle: the chance that a
 * random boundary occurs at any one position is 2^-128, so for any body this
 * server could send it is far below the odds of a hardware bit error.
 * A caller-chosen boundary has no such guarantee and is the caller's risk.
 *
 * @param boundary - At most 70 RFC 2046 `bchars`, not ending in a space;
 *   quoted in `Content-Type` when it is not a token.
 * @throws RangeError when there are no ranges, a range lies outside the
 *   representation, or `boundary` or `contentType` could not be sent as given
 *   (a CR or LF in `contentType` would inject headers).
 *
 * @example
 * ```ts
 * const plan = planMultipart(
 *   [{ start: 0, end: 0 }, { start: 9999, end: 9999 }],
 *   10_000,
 *   'video/mp4',
 *   'SEPARATOR',
 * );
 * plan.contentType; // 'multipart/byteranges; boundary=SEPARATOR'
 * // body: '\r\n--SEPARATOR\r\nContent-Type: video/mp4\r\nContent-Range: bytes 0-0/10000\r\n\r\n'
 * //       + byte 0
 * //       + '\r\n--SEPARATOR\r\nContent-Type: video/mp4\r\nContent-Range: bytes 9999-9999/10000\r\n\r\n'
 * //       + byte 9999 + '\r\n--SEPARATOR--\r\n'
 * ```
 */
export function planMultipart(
  ranges: readonly ByteRange[],
  size: number,
  contentType: string,
  boundary: string = randomBoundary(),
): MultipartPlan {
  if (ranges.length === 0)
    throw new RangeError('a multipart/byteranges body needs at least one range');
  assertBoundary(boundary);
  assertFieldValue(contentType);
  const encoder = new TextEncoder();
  const typeLine = contentType === '' ? '' : `Content-Type: ${contentType}\r\n`;
  let contentLength = 0;
  const parts = ranges.map((range) => {
    assertRangeWithin(range, size);
    const head = encoder.encode(
      `\r\n--${boundary}\r\n${typeLine}Content-Range: ${contentRange(range, size)}\r\n\r\n`,
    );
    contentLength += head.byteLength + (range.end - range.start + 1);
    return { head, range: { start: range.start, end: range.end } };
  });
  const tail = encoder.encode(`\r\n--${boundary}--\r\n`);
  contentLength += tail.byteLength;
  const parameter = TOKEN.test(boundary) ? boundary : `"${boundary}"`;
  return {
    contentType: `multipart/byteranges; boundary=${parameter}`,
    contentLength,
    parts,
    tail,
  };
}

/** RFC 2046 §5.1.1 `bchars`; the last one may not be a space. */
const BOUNDARY = /^[0-9A-Za-z'()+_,\-./:=? ]{0,69}[0-9A-Za-z'()+_,\-./:=?]$/;
/** tchar (RFC 9110 §5.6.2): a boundary made only of these needs no quotes. */
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/** VCHAR, SP and HTAB; obs-text is refused as this code writes ASCII only. */
const FIELD_VALUE = /^[\t\x20-\x7e]*$/;

function randomBoundary(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  let out = '';
  for (const byte of bytes) out += byte.toString(16).padStart(2, '0');
  return out;
}

function assertBoundary(boundary: string): void {
  if (!BOUNDARY.test(boundary)) {
    throw new RangeError(
      `boundary ${JSON.stringify(boundary)} is not 1–70 RFC 2046 bchars ending in a non-space`,
    );
  }
}

function assertFieldValue(contentType: string): void {
  if (!FIELD_VALUE.test(contentType) || contentType !== contentType.trim()) {
    throw new RangeError(
      `content type ${JSON.stringify(contentType)} cannot be sent as a header field value`,
    );
  }
}
