import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type MultipartPlan, planMultipart } from './multipart-byteranges.ts';
import { type ByteRange, parseRange } from './range.ts';

/** What the route does: each head, then a view of the range, then the tail. */
function assemble(plan: MultipartPlan, data: Uint8Array): Uint8Array {
  const pieces: Uint8Array[] = [];
  for (const { head, range } of plan.parts) {
    pieces.push(head, data.subarray(range.start, range.end + 1));
  }
  pieces.push(plan.tail);
  const body = new Uint8Array(pieces.reduce((n, p) => n + p.byteLength, 0));
  let at = 0;
  for (const piece of pieces) {
    body.set(piece, at);
    at += piece.byteLength;
  }
  return body;
}

interface ParsedPart {
  readonly headers: Record<string, string>;
  readonly payload: Uint8Array;
}

/**
 * A deliberately separate reading of RFC 2046 multipart: find every
 * `CRLF--boundary` delimiter in the raw bytes, require the close delimiter
 * last, and split each part into header lines and payload. Works on a latin1
 * string so byte offsets and character offsets coincide.
 */
function parseMultipart(body: Uint8Array, contentType: string): ParsedPart[] {
  const match = /^multipart\/byteranges; boundary=(?:"([^"]+)"|([^\s;"]+))$/.exec(contentType);
  if (match === null) throw new Error(`unexpected content type ${contentType}`);
  const boundary = match[1] ?? match[2] ?? '';
  const text = Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString('latin1');
  const delimiter = `\r\n--${boundary}`;
  const pieces = text.split(delimiter);
  // Everything before the first delimiter is the preamble, which is empty.
  if (pieces.shift() !== '') throw new Error('body must start with CRLF--boundary');
  if (pieces.pop() !== '--\r\n') throw new Error('body must end with the close delimiter');
  return pieces.map((piece) => {
    if (!piece.startsWith('\r\n')) throw new Error('delimiter must end its line');
    const split = piece.indexOf('\r\n\r\n', 2);
    if (split < 0) throw new Error('part has no blank line after its headers');
    const headers: Record<string, string> = {};
    for (const line of piece.slice(2, split).split('\r\n')) {
      const colon = line.indexOf(':');
      if (colon < 0) throw new Error(`bad header line ${JSON.stringify(line)}`);
      headers[line.slice(0, colon).toLowerCase()] = line.slice(colon + 1).trim();
    }
    return { headers, payload: new Uint8Array(Buffer.from(piece.slice(split + 4), 'latin1')) };
  });
}

/** Bytes that encode their own offset, so a misplaced byte shows. */
function pattern(size: number): Uint8Array {
  const data = new Uint8Array(size);
  for (let i = 0; i < size; i++) data[i] = (i * 31 + 7) & 0xff;
  return data;
}

function expectRoundTrip(
  plan: MultipartPlan,
  ranges: readonly ByteRange[],
  data: Uint8Array,
  type: string,
) {
  const body = assemble(plan, data);
  expect(plan.contentLength).toBe(body.byteLength);
  const parts = parseMultipart(body, plan.contentType);
  expect(parts).toHaveLength(ranges.length);
  parts.forEach((part, i) => {
    const { start, end } = ranges[i]!;
    expect(part.headers['content-range']).toBe(`bytes ${start}-${end}/${data.byteLength}`);
    expect(part.headers['content-type']).toBe(type === '' ? undefined : type);
    expect(part.payload).toEqual(data.subarray(start, end + 1));
  });
}

describe('planMultipart', () => {
  it('writes exactly the RFC 9110 §14.6 framing', () => {
    const data = pattern(10_000);
    const plan = planMultipart(
      [
        { start: 0, end: 0 },
        { start: 9999, end: 9999 },
      ],
      10_000,
      'video/mp4',
      'SEPARATOR',
    );
    expect(plan.contentType).toBe('multipart/byteranges; boundary=SEPARATOR');
    const body = Buffer.from(assemble(plan, data)).toString('latin1');
    const byte = (i: number) => String.fromCharCode(data[i]!);
    expect(body).toBe(
      '\r\n--SEPARATOR\r\nContent-Type: video/mp4\r\nContent-Range: bytes 0-0/10000\r\n\r\n' +
        byte(0) +
        '\r\n--SEPARATOR\r\nContent-Type: video/mp4\r\nContent-Range: bytes 9999-9999/10000\r\n\r\n' +
        byte(9999) +
        '\r\n--SEPARATOR--\r\n',
    );
    expect(plan.contentLength).toBe(body.length);
  });

  it('serves the RFC 9110 §14.1.2 three-range example byte-exactly', () => {
    const data = pattern(10_000);
    const result = parseRange('bytes= 0-999, 4500-5499, -1000', 10_000);
    if (result.type !== 'ranges') throw new Error(result.type);
    const plan = planMultipart(result.ranges, 10_000, 'video/mp4');
    expectRoundTrip(plan, result.ranges, data, 'video/mp4');
    expect(plan.parts.map((p) => p.range)).toEqual(result.ranges);
  });

  it('leaves out Content-Type when the representation has none', () => {
    const data = pattern(100);
    const ranges = [
      { start: 0, end: 9 },
      { start: 90, end: 99 },
    ];
    const plan = planMultipart(ranges, 100, '', 'b');
    expect(new TextDecoder().decode(plan.parts[0]!.head)).toBe(
      '\r\n--b\r\nContent-Range: bytes 0-9/100\r\n\r\n',
    );
    expectRoundTrip(plan, ranges, data, '');
  });

  it('quotes a boundary that is not a token', () => {
    for (const [boundary, parameter] of [
      ['simple-boundary_1.0', 'simple-boundary_1.0'],
      ['with space', '"with space"'],
      ['a:b', '"a:b"'],
      ["'()+_,-./:=?", `"'()+_,-./:=?"`],
    ]) {
      const plan = planMultipart([{ start: 0, end: 0 }], 1, 'text/plain', boundary);
      expect(plan.contentType).toBe(`multipart/byteranges; boundary=${parameter}`);
      expectRoundTrip(plan, [{ start: 0, end: 0 }], pattern(1), 'text/plain');
    }
  });

  it('draws a fresh 128-bit boundary by default', () => {
    const boundaries = new Set<string>();
    for (let i = 0; i < 50; i++) {
      const plan = planMultipart([{ start: 0, end: 0 }], 1, 'video/mp4');
      const boundary = /boundary=(.*)$/.exec(plan.contentType)?.[1] ?? '';
      expect(boundary).toMatch(/^[0-9a-f]{32}$/);
      boundaries.add(boundary);
    }
    expect(boundaries.size).toBe(50);
  });

  it('copies the ranges it was given rather than keeping them', () => {
    const range = { start: 1, end: 2 };
    const plan = planMultipart([range], 10, 'video/mp4', 'b');
    range.end = 9;
    expect(plan.parts[0]!.range).toEqual({ start: 1, end: 2 });
  });

  it.each<[string, ByteRange[], number, string, string]>([
    ['no ranges', [], 10, 'video/mp4', 'b'],
    ['a range past the end', [{ start: 0, end: 10 }], 10, 'video/mp4', 'b'],
    ['a reversed range', [{ start: 5, end: 4 }], 10, 'video/mp4', 'b'],
    ['a fractional range', [{ start: 0.5, end: 4 }], 10, 'video/mp4', 'b'],
    ['an empty representation', [{ start: 0, end: 0 }], 0, 'video/mp4', 'b'],
    ['an empty boundary', [{ start: 0, end: 0 }], 10, 'video/mp4', ''],
    ['a 71-character boundary', [{ start: 0, end: 0 }], 10, 'video/mp4', 'x'.repeat(71)],
    ['a boundary ending in a space', [{ start: 0, end: 0 }], 10, 'video/mp4', 'ab '],
    ['a boundary with a quote', [{ start: 0, end: 0 }], 10, 'video/mp4', 'a"b'],
    ['a boundary with CRLF', [{ start: 0, end: 0 }], 10, 'video/mp4', 'a\r\nb'],
    ['a content type with CRLF', [{ start: 0, end: 0 }], 10, 'video/mp4\r\nX-Evil: 1', 'b'],
    ['a content type with a NUL', [{ start: 0, end: 0 }], 10, 'video/mp4\u0000', 'b'],
    ['a content type with non-ASCII', [{ start: 0, end: 0 }], 10, 'vidéo/mp4', 'b'],
    ['a content type with outer spaces', [{ start: 0, end: 0 }], 10, ' video/mp4', 'b'],
  ])('refuses %s', (_name, ranges, size, type, boundary) => {
    expect(() => planMultipart(ranges, size, type, boundary)).toThrow(RangeError);
  });

  it('accepts a 70-character boundary', () => {
    const boundary = 'x'.repeat(70);
    const plan = planMultipart([{ start: 0, end: 0 }], 1, 'video/mp4', boundary);
    expectRoundTrip(plan, [{ start: 0, end: 0 }], pattern(1), 'video/mp4');
  });

  it('round-trips any ranges of any data, including data that looks like framing', () => {
    const framingish = fc
      .array(
        fc.oneof(
          fc.uint8Array({ maxLength: 40 }),
          fc.constant(new TextEncoder().encode('\r\n--')),
          fc.constant(new TextEncoder().encode('\r\n\r\n')),
          fc.constant(new TextEncoder().encode('--\r\n')),
        ),
        { minLength: 1, maxLength: 30 },
      )
      .map((chunks) => Uint8Array.from(chunks.flatMap((c) => [...c])))
      .filter((data) => data.byteLength > 0);
    const input = framingish.chain((data) =>
      fc.record({
        data: fc.constant(data),
        ranges: fc.array(
          fc
            .tuple(fc.nat(data.byteLength - 1), fc.nat(data.byteLength - 1))
            .map(([a, b]) => ({ start: Math.min(a, b), end: Math.max(a, b) })),
          { minLength: 1, maxLength: 8 },
        ),
        type: fc.constantFrom(
          'video/mp4',
          'application/octet-stream',
          'text/plain; charset=utf-8',
          '',
        ),
      }),
    );
    fc.assert(
      fc.property(input, ({ data, ranges, type }) => {
        const plan = planMultipart(ranges, data.byteLength, type);
        expectRoundTrip(plan, ranges, data, type);
      }),
      { numRuns: 1000 },
    );
  });

  it('matches contentLength to the assembled body for parsed Range headers', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.nat(3000), fc.nat(300)), { minLength: 2, maxLength: 16 }),
        fc.integer({ min: 1, max: 4000 }),
        (pairs, size) => {
          const header = `bytes=${pairs.map(([a, n]) => `${a}-${a + n}`).join(',')}`;
          const result = parseRange(header, size);
          if (result.type !== 'ranges') return;
          const data = pattern(size);
          const plan = planMultipart(result.ranges, size, 'video/mp4');
          expectRoundTrip(plan, result.ranges, data, 'video/mp4');
        },
      ),
      { numRuns: 500 },
    );
  });
});
