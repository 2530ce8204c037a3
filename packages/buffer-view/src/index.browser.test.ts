import { describe, expect, it } from 'vitest';
import {
  ByteRing,
  ByteStore,
  ByteView,
  measureCopies,
  NotContiguousError,
  OutOfRangeError,
  ReleasedError,
  RingOverrunError,
  SlabPool,
} from './index';

// Runs in real headless Chromium: the default entry must need nothing from Node.
describe('buffer-view in a browser', () => {
  it('runs without Node globals', () => {
    expect(typeof (globalThis as { process?: unknown }).process).toBe('undefined');
    expect(typeof (globalThis as { Buffer?: unknown }).Buffer).toBe('undefined');
  });

  it('views, searches and compares across segments with the browser search path', () => {
    const enc = new TextEncoder();
    const view = ByteView.from([enc.encode('xxmo'), enc.encode('ofxxmd'), enc.encode('at')]);
    const { result, stats } = measureCopies(() => view.view(2, 12));
    expect(stats.bytesCopied).toBe(0);
    expect(result.indexOf('mdat')).toBe(6);
    expect(result.indexOf('moof')).toBe(0);
    expect(result.indexOf('zz')).toBe(-1);
    expect(result.startsWith('moof')).toBe(true);
    expect(result.equals(enc.encode('moofxxmdat'))).toBe(true);
    expect(result.compare(enc.encode('moofxxmdaz'))).toBe(-1);
    expect(result.getUint32(0)).toBe(0x6d6f6f66);
    expect(() => result.asUint8Array()).toThrow(NotContiguousError);
    expect(() => result.view(0, 11)).toThrow(OutOfRangeError);
  });

  it('round-trips through Blob and text', async () => {
    const view = ByteView.fromText('hello, browser');
    const blob = view.copyToBlob({ type: 'text/plain' });
    expect(await blob.text()).toBe('hello, browser');
    expect((await ByteView.fromBlob(blob)).toText()).toBe('hello, browser');
  });

  it('grows a store in place and splices it', () => {
    const store = new ByteStore({ segmentSize: 1024 });
    store.grow(10).fill(1);
    store.grow(10).fill(2);
    store.splice(5, 10, new Uint8Array([9]));
    expect([...store.bytes.copy()]).toEqual([1, 1, 1, 1, 1, 9, 2, 2, 2, 2, 2]);
  });

  it('runs the byte ring with markers and overrun detection', () => {
    const ring = new ByteRing<'keyframe'>({ capacity: 16 });
    const late = ring.reader({ start: 'oldest' });
    ring.mark('keyframe');
    ring.write(new Uint8Array(10).fill(1));
    ring.mark('keyframe');
    ring.write(new Uint8Array(10).fill(2));
    expect(() => late.read()).toThrow(RingOverrunError);
    const viewer = ring.reader({ start: 'newest-marker' });
    const bytes = viewer.read();
    expect(bytes.length).toBe(10);
    expect(bytes.equals(new Uint8Array(10).fill(2))).toBe(true);
    expect(bytes.segmentCount).toBe(2);
  });

  it('pools slabs and detects use after release', () => {
    const pool = new SlabPool({ slabSize: 4096, maxSlabs: 2, debug: true });
    const slab = pool.acquire();
    const view = slab.view(0, 16);
    slab.release();
    expect(() => view.getUint8(0)).toThrow(ReleasedError);
    const again = pool.acquire();
    expect(pool.stats.reuses).toBe(1);
    again.release();
  });
});
