import { describe, expect, it } from 'vitest';
import { ByteStore } from './byte-store';
import { ByteView } from './byte-view';
import { measureCopies } from './copy-stats';
import { InvalidLengthError, OutOfRangeError, StaleViewError } from './errors';

const text = (s: string) => new TextEncoder().encode(s);
const GiB = 2 ** 30;
const MiB = 2 ** 20;

describe('ByteStore', () => {
  it('appends without copying and reads across the edges', () => {
    const chunks = [text('hello '), text('wor'), text('ld')];
    const { result: store, stats } = measureCopies(() => ByteStore.from(chunks));
    expect(stats.bytesCopied).toBe(0);
    expect(store.length).toBe(11);
    expect(store.segmentCount).toBe(3);
    expect(store.bytes.toText()).toBe('hello world');
    expect(store.bytes.indexOf('o wo')).toBe(4);
    chunks[1]?.set(text('WOR'));
    expect(store.view(6, 9).toText()).toBe('WOR');
  });

  it('consumes from the front, keeping later offsets right and views intact', () => {
    const store = ByteStore.from([text('abc'), text('defg'), text('hi')]);
    const before = store.view(1, 8);
    store.consume(4);
    expect(store.length).toBe(5);
    expect(store.consumedBytes).toBe(4);
    expect(store.segmentCount).toBe(2);
    expect(store.bytes.toText()).toBe('efghi');
    expect(store.bytes.getUint8(0)).toBe(0x65);
    expect(before.toText()).toBe('bcdefgh');
    store.append(text('jk'));
    expect(store.view(3).toText()).toBe('hijk');
    expect(() => store.consume(8)).toThrow(InvalidLengthError);
    store.clear();
    expect(store.length).toBe(0);
    expect(store.bytes.length).toBe(0);
  });

  it('releases consumed segments from its own arrays after many small consumes', () => {
    const store = new ByteStore();
    for (let i = 0; i < 1000; i++) store.append(Uint8Array.of(i & 0xff));
    for (let i = 0; i < 990; i++) store.consume(1);
    expect(store.segmentCount).toBe(10);
    expect(store.bytes.getUint8(0)).toBe(990 & 0xff);
    expect([...store.bytes.copy()]).toEqual(Array.from({ length: 10 }, (_, i) => (990 + i) & 0xff));
  });

  it('overwrites in place (the bytearray case) with one counted copy', () => {
    const store = ByteStore.alloc(64, { segmentSize: 16 });
    expect(store.segmentCount).toBe(4);
    const view = store.view(10, 40);
    const { stats } = measureCopies(() => store.write(14, text('0123456789')));
    expect(stats.bytesCopied).toBe(10);
    expect(stats.bytesAllocated).toBe(0);
    expect(view.view(4, 14).toText()).toBe('0123456789');
    expect(() => store.write(60, text('12345'))).toThrow(OutOfRangeError);
  });

  it('splices without copying, returning the removed bytes', () => {
    const store = ByteStore.from([text('hello '), text('big '), text('world')]);
    const { result: removed, stats } = measureCopies(() => store.splice(6, 4, text('whole ')));
    expect(stats.bytesCopied).toBe(0);
    expect(removed.toText()).toBe('big ');
    expect(store.bytes.toText()).toBe('hello whole world');
    store.splice(0, 0, text('>> '));
    store.splice(store.length, 0, text('!'));
    expect(store.bytes.toText()).toBe('>> hello whole world!');
    store.splice(3, 6);
    expect(store.bytes.toText()).toBe('>> whole world!');
    expect(() => store.splice(20, 0)).toThrow(OutOfRangeError);
    expect(() => store.splice(2, 100)).toThrow(InvalidLengthError);
  });

  it('leaves views taken before a splice on the bytes they saw', () => {
    const store = ByteStore.from([text('abcdef')]);
    const before = store.view(0, 6);
    store.splice(2, 2, text('XYZ'));
    expect(before.toText()).toBe('abcdef');
    expect(store.bytes.toText()).toBe('abXYZef');
  });

  it('truncates and grows, with growth never moving existing bytes', () => {
    const store = new ByteStore({ segmentSize: 1024 });
    const first = store.grow(100);
    first.fill(1);
    const kept = store.view(0, 100);
    const second = store.grow(200);
    second.fill(2);
    expect(store.length).toBe(300);
    // A resizable tail grows in place, so the two regions share one segment.
    expect(store.segmentCount).toBe(1);
    expect(kept.getUint8(99)).toBe(1);
    expect(store.bytes.getUint8(100)).toBe(2);
    store.grow(2000);
    expect(store.segmentCount).toBe(3);
    expect(kept.equals(new Uint8Array(100).fill(1))).toBe(true);
    store.truncate(150);
    expect(store.length).toBe(150);
    expect(store.bytes.getUint8(149)).toBe(2);
    expect(() => store.truncate(151)).toThrow(InvalidLengthError);
  });

  it('makes earlier views stale when compaction moves the bytes', () => {
    const store = ByteStore.from([text('ab'), text('cd'), text('ef')]);
    const view = store.view(1, 5);
    const derived = ByteView.from([view, text('!')]);
    const { stats } = measureCopies(() => store.compact());
    expect(stats.bytesCopied).toBe(6);
    expect(store.segmentCount).toBe(1);
    expect(store.bytes.toText()).toBe('abcdef');
    expect(() => view.toText()).toThrow(StaleViewError);
    expect(() => view.getUint8(0)).toThrow(StaleViewError);
    expect(() => derived.toText()).toThrow(StaleViewError);
    expect(store.view(1, 5).toText()).toBe('bcde');
  });

  it('validates sizes with the offending value and the limit', () => {
    expect(() => ByteStore.alloc(-1)).toThrow(InvalidLengthError);
    expect(() => new ByteStore({ segmentSize: 0 })).toThrow(InvalidLengthError);
    expect(() => new ByteStore({ segmentSize: 2 ** 33 })).toThrow(/4294967296/);
  });

  it('can back its segments with SharedArrayBuffer', () => {
    const store = ByteStore.alloc(32, { shared: true, segmentSize: 16 });
    expect(store.shared).toBe(true);
    expect(store.view(0, 16).asUint8Array().buffer).toBeInstanceOf(SharedArrayBuffer);
  });
});

describe('ByteStore past 4 GiB', () => {
  it('addresses 6 GiB with plain offsets and views across segment edges', () => {
    // Untouched pages of a fresh ArrayBuffer are never resident, so this costs little RAM.
    const store = ByteStore.alloc(6 * GiB);
    expect(store.length).toBe(6 * GiB);
    const at = 5 * GiB + 3;
    store.write(at, text('ftyp'));
    expect(store.bytes.getUint32(at)).toBe(0x66747970);
    const edge = 256 * MiB * 17;
    store.write(edge - 2, Uint8Array.of(1, 2, 3, 4));
    expect(store.bytes.getUint32(edge - 2)).toBe(0x01020304);
    const { result: chunk, stats } = measureCopies(() => store.viewAt(edge - 10 * MiB, 20 * MiB));
    expect(stats.bytesCopied).toBe(0);
    expect(chunk.segmentCount).toBe(2);
    expect(chunk.getUint32(10 * MiB - 2)).toBe(0x01020304);
    expect(store.bytes.indexOf(Uint8Array.of(1, 2, 3, 4), 4 * GiB)).toBe(edge - 2);
  });

  it('uses 4 GiB segments, the largest typed array Node 20 allows', () => {
    const store = ByteStore.alloc(4 * GiB + 8, { segmentSize: 4 * GiB });
    expect(store.segmentCount).toBe(2);
    store.write(4 * GiB - 4, Uint8Array.of(9, 9, 9, 9, 8, 8, 8, 8));
    expect(store.bytes.getBigUint64(4 * GiB - 4)).toBe(0x0909090908080808n);
  });
});
