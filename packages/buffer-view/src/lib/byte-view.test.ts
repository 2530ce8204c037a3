import { describe, expect, it } from 'vitest';
import { ByteView } from './byte-view';
import { measureCopies } from './copy-stats';
import {
  BufferViewError,
  DetachedBufferError,
  InvalidArgumentError,
  InvalidLengthError,
  NotContiguousError,
  OutOfRangeError,
} from './errors';

const text = (s: string) => new TextEncoder().encode(s);

/** Splits `bytes` at the given cut points into separate segments over one buffer. */
function split(bytes: Uint8Array, ...cuts: number[]): Uint8Array[] {
  const out: Uint8Array[] = [];
  let prev = 0;
  for (const cut of [...cuts, bytes.length]) {
    out.push(bytes.subarray(prev, cut));
    prev = cut;
  }
  return out;
}

describe('ByteView.from', () => {
  it('wraps a Uint8Array without copying and aliases its memory', () => {
    const bytes = new Uint8Array(16);
    const { result: view, stats } = measureCopies(() => ByteView.from(bytes));
    expect(stats.bytesCopied).toBe(0);
    expect(stats.bytesAllocated).toBe(0);
    bytes[3] = 7;
    expect(view.getUint8(3)).toBe(7);
    expect(view.asUint8Array()).toBe(bytes);
  });

  it('wraps typed arrays, DataViews and ArrayBuffers at their exact windows', () => {
    const buffer = new ArrayBuffer(16);
    new Uint8Array(buffer).set([1, 2, 3, 4, 5, 6, 7, 8], 4);
    const u16 = new Uint16Array(buffer, 4, 2);
    expect(ByteView.from(u16).length).toBe(4);
    expect(ByteView.from(u16).getUint8(0)).toBe(1);
    expect(ByteView.from(new DataView(buffer, 6, 2)).getUint16(0)).toBe(0x0304);
    expect(ByteView.from(buffer).length).toBe(16);
    expect(ByteView.from(buffer).asArrayBuffer()).toBe(buffer);
  });

  it('skips empty segments and rejects non-bytes with a typed error', () => {
    const view = ByteView.from([new Uint8Array(0), text('ab'), new Uint8Array(0), text('c')]);
    expect(view.segmentCount).toBe(2);
    expect(view.toText()).toBe('abc');
    expect(() => ByteView.from('abc' as never)).toThrow(InvalidArgumentError);
    expect(() => ByteView.from(42 as never)).toThrow(/got number/);
  });

  it('builds from text and blobs, counting the new memory as allocation', async () => {
    const { result, stats } = measureCopies(() => ByteView.fromText('héllo'));
    expect(result.length).toBe(6);
    expect(stats.bytesAllocated).toBe(6);
    const fromBlob = await ByteView.fromBlob(new Blob(['moov']));
    expect(fromBlob.toText()).toBe('moov');
  });
});

describe('views', () => {
  const whole = text('0123456789abcdefghij');
  const view = ByteView.from(split(whole, 3, 7, 8, 15));

  it('slices across any segmentation without copying', () => {
    for (let start = 0; start <= whole.length; start++) {
      for (let end = start; end <= whole.length; end++) {
        const { result, stats } = measureCopies(() => view.view(start, end));
        expect(stats.bytesCopied).toBe(0);
        expect(result.toText()).toBe(new TextDecoder().decode(whole.subarray(start, end)));
      }
    }
  });

  it('keeps nested views pointing at the right bytes', () => {
    const inner = view.view(2, 18).view(3, 12).viewAt(2, 5);
    expect(inner.toText()).toBe('789ab');
    expect(inner.segmentCount).toBe(2);
  });

  it('rejects out-of-range and inverted windows with the offending value', () => {
    expect(() => view.view(0, 21)).toThrow(OutOfRangeError);
    expect(() => view.view(-1)).toThrow(OutOfRangeError);
    expect(() => view.view(1.5)).toThrow(OutOfRangeError);
    expect(() => view.view(5, 4)).toThrow(InvalidLengthError);
    expect(() => view.viewAt(18, 3)).toThrow(InvalidLengthError);
    try {
      view.view(0, 21);
    } catch (err) {
      expect(OutOfRangeError.isInstance(err)).toBe(true);
      expect((err as OutOfRangeError).value).toBe(21);
      expect((err as OutOfRangeError).limit).toBe(20);
      expect((err as Error).message).toContain('21');
      expect((err as Error).message).toContain('20');
    }
  });

  it('exposes zero-copy segments with their offsets', () => {
    const parts: [string, number][] = [];
    view.view(2, 16).forEachSegment((bytes, offset) => {
      parts.push([new TextDecoder().decode(bytes), offset]);
    });
    expect(parts).toEqual([
      ['2', 0],
      ['3456', 1],
      ['7', 5],
      ['89abcde', 6],
      ['f', 13],
    ]);
    const segs = view.view(2, 16).toSegments();
    expect(segs[1]?.buffer).toBe(whole.buffer);
    expect([...view.view(2, 16).segments()].length).toBe(5);
  });

  it('refuses to flatten a multi-segment view without an explicit copy', () => {
    expect(() => view.asUint8Array()).toThrow(NotContiguousError);
    expect(view.view(3, 7).asUint8Array().byteOffset).toBe(3);
    const { result, stats } = measureCopies(() => view.copy());
    expect(result).toEqual(whole);
    expect(stats.bytesCopied).toBe(20);
    expect(stats.bytesAllocated).toBe(20);
    expect(() => view.view(3, 7).asArrayBuffer()).toThrow(InvalidArgumentError);
  });

  it('copies into a target and checks that it fits', () => {
    const target = new Uint8Array(24);
    expect(view.copyTo(target, 4)).toBe(20);
    expect(target.subarray(4)).toEqual(whole);
    expect(() => view.copyTo(new Uint8Array(10))).toThrow(OutOfRangeError);
  });

  it('makes a Blob with a counted copy', async () => {
    const { result, stats } = measureCopies(() => view.copyToBlob({ type: 'video/mp4' }));
    expect(stats.bytesCopied).toBe(20);
    expect(result.type).toBe('video/mp4');
    expect(new Uint8Array(await result.arrayBuffer())).toEqual(whole);
  });

  it('decodes multi-byte characters split across segments', () => {
    const euro = text('a€b');
    const v = ByteView.from(split(euro, 2, 3));
    expect(v.toText()).toBe('a€b');
    expect(() => ByteView.from(new Uint8Array([0xff])).toText('utf-8', { fatal: true })).toThrow();
  });
});

describe('integer reads', () => {
  const bytes = new Uint8Array([0x80, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0xff]);
  const reference = new DataView(bytes.buffer);
  const segmentations = [[], [1], [3], [1, 2, 3, 4, 5, 6, 7, 8], [5, 9]];

  it.each(segmentations)('match DataView for every offset and width (cuts %j)', (...cuts) => {
    const view = ByteView.from(split(bytes, ...cuts));
    for (let i = 0; i < bytes.length; i++) {
      expect(view.getUint8(i)).toBe(reference.getUint8(i));
      expect(view.getInt8(i)).toBe(reference.getInt8(i));
      for (const le of [false, true]) {
        if (i + 2 <= bytes.length) {
          expect(view.getUint16(i, le)).toBe(reference.getUint16(i, le));
          expect(view.getInt16(i, le)).toBe(reference.getInt16(i, le));
        }
        if (i + 3 <= bytes.length) {
          const expected = le
            ? reference.getUint16(i, true) + reference.getUint8(i + 2) * 65536
            : reference.getUint16(i) * 256 + reference.getUint8(i + 2);
          expect(view.getUint24(i, le)).toBe(expected);
        }
        if (i + 4 <= bytes.length) {
          expect(view.getUint32(i, le)).toBe(reference.getUint32(i, le));
          expect(view.getInt32(i, le)).toBe(reference.getInt32(i, le));
          expect(view.getFloat32(i, le)).toBe(reference.getFloat32(i, le));
        }
        if (i + 8 <= bytes.length) {
          expect(view.getBigUint64(i, le)).toBe(reference.getBigUint64(i, le));
          expect(view.getBigInt64(i, le)).toBe(reference.getBigInt64(i, le));
          expect(view.getFloat64(i, le)).toBe(reference.getFloat64(i, le));
        }
      }
    }
  });

  it('reads safe 64-bit values and refuses to round unsafe ones', () => {
    const big = new Uint8Array(8);
    new DataView(big.buffer).setBigUint64(0, 2n ** 53n - 1n);
    expect(ByteView.from(split(big, 3)).getSafeUint64(0)).toBe(2 ** 53 - 1);
    new DataView(big.buffer).setBigUint64(0, 2n ** 53n);
    expect(() => ByteView.from(big).getSafeUint64(0)).toThrow(OutOfRangeError);
    new DataView(big.buffer).setBigUint64(0, 0x0102n, true);
    expect(ByteView.from(big).getSafeUint64(0, true)).toBe(0x0102);
  });

  it('rejects reads past the end', () => {
    const view = ByteView.from(split(bytes, 4));
    expect(() => view.getUint32(7)).toThrow(OutOfRangeError);
    expect(() => view.getUint8(10)).toThrow(OutOfRangeError);
    expect(() => view.getUint8(-1)).toThrow(OutOfRangeError);
    expect(() => ByteView.empty().getUint16(0)).toThrow(BufferViewError);
  });
});

describe('search and comparison', () => {
  const whole = text('xxmoofxxmdatxxmoovxx');

  it('finds needles straddling every possible edge', () => {
    for (let cut = 1; cut < whole.length; cut++) {
      for (let cut2 = cut + 1; cut2 < whole.length; cut2 += 3) {
        const view = ByteView.from(split(whole, cut, cut2));
        expect(view.indexOf('moof')).toBe(2);
        expect(view.indexOf('mdat')).toBe(8);
        expect(view.indexOf('moov')).toBe(14);
        expect(view.indexOf('moov', 15)).toBe(-1);
        expect(view.indexOf('xmo', 3)).toBe(13);
        expect(view.indexOf(0x64)).toBe(9);
        expect(view.indexOf('zzzz')).toBe(-1);
        expect(view.includes(text('tx'))).toBe(true);
      }
    }
  });

  it('searches within a window only', () => {
    const view = ByteView.from(split(whole, 4, 9)).view(3, 13);
    expect(view.indexOf('moof')).toBe(-1);
    expect(view.indexOf('oof')).toBe(0);
    expect(view.indexOf('mdat')).toBe(5);
    expect(view.indexOf('atxx')).toBe(-1);
    expect(view.indexOf('')).toBe(0);
    expect(view.indexOf(ByteView.from(split(text('mdat'), 2)))).toBe(5);
  });

  it('validates needles and positions', () => {
    const view = ByteView.from(whole);
    expect(() => view.indexOf(256)).toThrow(OutOfRangeError);
    expect(() => view.indexOf('a', 21)).toThrow(OutOfRangeError);
  });

  it('compares across segmentations', () => {
    const a = ByteView.from(split(whole, 5, 6));
    const b = ByteView.from(split(whole, 11));
    expect(a.equals(b)).toBe(true);
    expect(a.compare(b)).toBe(0);
    expect(a.startsWith('xxmo')).toBe(true);
    expect(a.startsWith('mdat', 8)).toBe(true);
    expect(a.startsWith('mdat', 9)).toBe(false);
    expect(a.endsWith('ovxx')).toBe(true);
    expect(a.endsWith('whole string that is longer than the view')).toBe(false);
    expect(a.compare(whole.subarray(0, 19))).toBe(1);
    expect(a.view(0, 19).compare(whole)).toBe(-1);
    const changed = whole.slice();
    changed[12] = 0;
    expect(a.equals(changed)).toBe(false);
    expect(ByteView.from(changed).compare(a)).toBe(-1);
  });
});

describe('writing in place', () => {
  it('writes through to every alias of the memory, across segments', () => {
    const backing = new Uint8Array(12);
    const view = ByteView.from(split(backing, 5, 6));
    const { stats } = measureCopies(() => view.write(ByteView.from([text('AB'), text('CDE')]), 3));
    expect(stats.bytesCopied).toBe(5);
    expect(new TextDecoder().decode(backing.subarray(3, 8))).toBe('ABCDE');
    expect(view.view(3, 8).toText()).toBe('ABCDE');
    view.fill(0x7a, 10);
    expect(backing[11]).toBe(0x7a);
    expect(() => view.write(text('toolong'), 8)).toThrow(OutOfRangeError);
  });

  it('concatenates without copying', () => {
    const a = text('ab');
    const b = text('cd');
    const { result, stats } = measureCopies(() => ByteView.from(a).concat(b, [text('e')]));
    expect(stats.bytesCopied).toBe(0);
    expect(result.toText()).toBe('abcde');
    expect(result.segmentCount).toBe(3);
  });
});

describe('detached buffers', () => {
  it('throws DetachedBufferError instead of reading nothing', () => {
    const bytes = new Uint8Array(8);
    const view = ByteView.from(bytes);
    structuredClone(bytes.buffer, { transfer: [bytes.buffer] });
    expect(() => view.getUint8(0)).toThrow(DetachedBufferError);
    expect(() => view.toSegments()).toThrow(DetachedBufferError);
  });
});
