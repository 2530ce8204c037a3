import { Buffer } from 'node:buffer';
import { describe, expect, it } from 'vitest';
import { fromBuffer, toBuffer, toBufferCopy } from './buffer-interop.node.ts';
import { ByteView } from './byte-view';
import { measureCopies } from './copy-stats';
import { NotContiguousError } from './errors';

describe('Buffer interop', () => {
  it('turns a contiguous view into a Buffer over the same memory', () => {
    const bytes = new Uint8Array([1, 2, 3, 4, 5, 6]);
    const { result: buf, stats } = measureCopies(() => toBuffer(ByteView.from(bytes).view(2, 5)));
    expect(stats.bytesCopied).toBe(0);
    expect(Buffer.isBuffer(buf)).toBe(true);
    expect([...buf]).toEqual([3, 4, 5]);
    buf[0] = 9;
    expect(bytes[2]).toBe(9);
  });

  it('refuses to flatten segments silently, and copies when asked', () => {
    const view = ByteView.from([Buffer.from('ab'), Buffer.from('cd')]);
    expect(() => toBuffer(view)).toThrow(NotContiguousError);
    const { result, stats } = measureCopies(() => toBufferCopy(view));
    expect(result.toString()).toBe('abcd');
    expect(stats.bytesCopied).toBe(4);
  });

  it('wraps a Buffer without copying', () => {
    const buf = Buffer.from('ftyp');
    const view = fromBuffer(buf);
    buf[0] = 0x46;
    expect(view.toText()).toBe('Ftyp');
  });
});
