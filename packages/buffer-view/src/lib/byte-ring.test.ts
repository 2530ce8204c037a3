import {
  ByteRing,
  ByteView,
  InvalidArgumentError,
  InvalidLengthError,
  measureCopies,
  OutOfRangeError,
  ReleasedError,
  RingFullError,
  RingOverrunError,
} from 'buffer-view';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { catchError } from '../../test/catch-error';

/** `n` bytes whose values encode their absolute offset, so misplaced bytes show. */
function pattern(from: number, n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = (from + i) * 7 + 3;
  return out;
}

function bytesOf(view: ByteView): number[] {
  return Array.from(view.copy());
}

describe('ByteRing basics', () => {
  it('rejects invalid capacity and marker limits', () => {
    expect(() => new ByteRing({ capacity: 0 })).toThrow(InvalidLengthError);
    expect(() => new ByteRing({ capacity: 1.5 })).toThrow(InvalidLengthError);
    expect(() => new ByteRing({ capacity: -4 })).toThrow(InvalidLengthError);
    expect(() => new ByteRing({ capacity: 8, maxMarkers: 0 })).toThrow(InvalidLengthError);
  });

  it('tracks absolute offsets past the capacity', () => {
    const ring = new ByteRing({ capacity: 8 });
    expect(ring.writeOffset).toBe(0);
    expect(ring.oldestOffset).toBe(0);
    ring.write(pattern(0, 5));
    ring.write(pattern(5, 6));
    expect(ring.writeOffset).toBe(11);
    expect(ring.oldestOffset).toBe(3);
    const reader = ring.reader({ start: 'oldest' });
    expect(reader.offset).toBe(3);
    expect(bytesOf(reader.read())).toEqual(Array.from(pattern(3, 8)));
    expect(reader.offset).toBe(11);
  });

  it('copies each written byte exactly once and reads without copying', () => {
    const ring = new ByteRing({ capacity: 64 });
    const reader = ring.reader();
    const { stats: writeStats } = measureCopies(() => ring.write(pattern(0, 40)));
    expect(writeStats.bytesCopied).toBe(40);
    expect(writeStats.copies).toBe(1);
    const { result: view, stats: readStats } = measureCopies(() => reader.read());
    expect(readStats.bytesCopied).toBe(0);
    expect(readStats.bytesAllocated).toBe(0);
    expect(view.length).toBe(40);
  });

  it('writes a multi-segment ByteView in one counted copy, across the wrap', () => {
    const ring = new ByteRing({ capacity: 10 });
    ring.write(pattern(0, 7));
    const reader = ring.reader();
    const source = ByteView.from([pattern(7, 3), pattern(10, 2)]);
    const { stats } = measureCopies(() => ring.write(source));
    expect(stats).toMatchObject({ bytesCopied: 5, copies: 1 });
    const view = reader.read();
    expect(view.segmentCount).toBe(2);
    expect(bytesOf(view)).toEqual(Array.from(pattern(7, 5)));
  });

  it('returns views that alias ring memory, split at the wrap', () => {
    const ring = new ByteRing({ capacity: 8 });
    ring.write(pattern(0, 6));
    const reader = ring.reader();
    ring.write(pattern(6, 4));
    const view = reader.read();
    const [a, b] = view.toSegments();
    expect(a?.buffer).toBe(b?.buffer);
    expect(a?.length).toBe(2);
    expect(b?.length).toBe(2);
    expect(bytesOf(view)).toEqual(Array.from(pattern(6, 4)));
  });

  it('rejects a chunk larger than the capacity and writes nothing', () => {
    const ring = new ByteRing({ capacity: 8 });
    ring.write(pattern(0, 4));
    const error = catchError(() => ring.write(new Uint8Array(9)));
    expect(InvalidLengthError.isInstance(error)).toBe(true);
    expect((error as InvalidLengthError).limit).toBe(8);
    expect(ring.writeOffset).toBe(4);
  });

  it('reads at most max bytes, peeks without advancing, and returns empty views when drained', () => {
    const ring = new ByteRing({ capacity: 16 });
    const reader = ring.reader();
    expect(reader.read().length).toBe(0);
    ring.write(pattern(0, 10));
    expect(bytesOf(reader.peek(3))).toEqual(Array.from(pattern(0, 3)));
    expect(reader.offset).toBe(0);
    expect(bytesOf(reader.read(3))).toEqual(Array.from(pattern(0, 3)));
    expect(reader.available).toBe(7);
    expect(reader.lag).toBe(7);
    expect(bytesOf(reader.read(100))).toEqual(Array.from(pattern(3, 7)));
    expect(reader.read().length).toBe(0);
    expect(() => reader.read(-1)).toThrow(InvalidLengthError);
  });

  it('readInto copies exactly the ring bytes and counts the copy', () => {
    const ring = new ByteRing({ capacity: 8 });
    ring.write(pattern(0, 6));
    const reader = ring.reader({ start: 2 });
    ring.write(pattern(6, 4));
    const target = new Uint8Array(5);
    const { result, stats } = measureCopies(() => reader.readInto(target));
    expect(result).toBe(5);
    expect(stats.bytesCopied).toBe(5);
    expect(Array.from(target)).toEqual(Array.from(pattern(2, 5)));
    expect(reader.offset).toBe(7);
  });
});

describe('ByteRing overrun', () => {
  it('throws RingOverrunError for a lapped reader and never returns overwritten bytes', () => {
    const ring = new ByteRing({ capacity: 8 });
    const reader = ring.reader();
    ring.write(pattern(0, 6));
    expect(bytesOf(reader.read(2))).toEqual(Array.from(pattern(0, 2)));
    ring.write(pattern(6, 6)); // byte 2 is now overwritten by byte 10
    expect(reader.lapped).toBe(true);
    expect(reader.available).toBe(0);
    const error = catchError(() => reader.read());
    expect(RingOverrunError.isInstance(error)).toBe(true);
    expect((error as RingOverrunError).readerOffset).toBe(2);
    expect((error as RingOverrunError).oldestOffset).toBe(4);
    expect(() => reader.peek()).toThrow(RingOverrunError);
    expect(() => reader.readInto(new Uint8Array(4))).toThrow(RingOverrunError);
    expect(reader.offset).toBe(2);
    reader.seek(ring.oldestOffset);
    expect(bytesOf(reader.read())).toEqual(Array.from(pattern(4, 8)));
  });

  it('makes a view handed out earlier throw once the writer laps it', () => {
    const ring = new ByteRing({ capacity: 8 });
    const reader = ring.reader();
    ring.write(pattern(0, 4));
    const start = reader.offset;
    const view = reader.read();
    const sub = view.view(1, 3);
    expect(reader.isIntact(start)).toBe(true);
    ring.write(pattern(4, 4)); // exactly full: byte 0 still held
    expect(view.getUint8(0)).toBe(pattern(0, 1)[0]);
    ring.write(pattern(8, 1)); // byte 0 overwritten
    expect(reader.isIntact(start)).toBe(false);
    expect(() => view.getUint8(0)).toThrow(RingOverrunError);
    expect(() => view.copy()).toThrow(RingOverrunError);
    expect(() => sub.toSegments()).toThrow(RingOverrunError);
  });
});

/** A target whose copy-in runs a callback right after the bytes land: a writer lapping mid-read. */
class LappingTarget extends Uint8Array {
  duringCopy: (() => void) | undefined;

  override set(array: ArrayLike<number>, offset?: number): void {
    super.set(array, offset);
    const hook = this.duringCopy;
    this.duringCopy = undefined;
    hook?.();
  }
}

describe('ByteRing check-after-read', () => {
  for (const shared of [false, true]) {
    it(`readInto throws when the writer laps it during the copy (${shared ? 'attached' : 'local'})`, () => {
      const ring = new ByteRing({ capacity: 8, shared });
      const source = shared ? ByteRing.attach(ring.share()) : ring;
      const reader = source.reader();
      ring.write(pattern(0, 8));
      const target = new LappingTarget(8);
      target.duringCopy = () => ring.write(pattern(8, 2));
      const error = catchError(() => reader.readInto(target));
      expect(RingOverrunError.isInstance(error)).toBe(true);
      expect((error as RingOverrunError).readerOffset).toBe(0);
      expect(reader.offset).toBe(0);
      // Without the lap the same read succeeds.
      reader.seek(ring.oldestOffset);
      expect(reader.readInto(target)).toBe(8);
      expect(Array.from(target)).toEqual(Array.from(pattern(2, 8)));
    });
  }
});

describe('ByteRing blocking readers', () => {
  it('refuses writes that would overwrite held bytes, all or nothing', () => {
    const ring = new ByteRing({ capacity: 8 });
    const reader = ring.reader({ blocking: true });
    ring.write(pattern(0, 6));
    expect(ring.writable()).toBe(2);
    const error = catchError(() => ring.write(pattern(6, 3)));
    expect(RingFullError.isInstance(error)).toBe(true);
    expect((error as RingFullError).requested).toBe(3);
    expect((error as RingFullError).free).toBe(2);
    expect(ring.writeOffset).toBe(6);
    expect(bytesOf(reader.read(4))).toEqual(Array.from(pattern(0, 4)));
    // Reading alone does not free anything: the reader still holds from 0.
    expect(ring.writable()).toBe(2);
    reader.release();
    expect(ring.writable()).toBe(6);
    ring.write(pattern(6, 6));
    expect(reader.lapped).toBe(false);
    expect(bytesOf(reader.read())).toEqual(Array.from(pattern(4, 8)));
  });

  it('releases only up to the cursor, and partially', () => {
    const ring = new ByteRing({ capacity: 8 });
    const reader = ring.reader({ blocking: true });
    ring.write(pattern(0, 8));
    reader.read(5);
    expect(() => reader.release(6)).toThrow(OutOfRangeError);
    reader.release(3);
    expect(reader.heldFrom).toBe(3);
    expect(ring.writable()).toBe(3);
    expect(() => reader.release(2)).toThrow(OutOfRangeError);
  });

  it('uses the slowest blocking reader and lets a closed one go', () => {
    const ring = new ByteRing({ capacity: 8 });
    const fast = ring.reader({ blocking: true });
    const slow = ring.reader({ blocking: true });
    ring.write(pattern(0, 8));
    fast.read();
    fast.release();
    expect(ring.writable()).toBe(0);
    expect(() => ring.write(new Uint8Array(1))).toThrow(RingFullError);
    slow.close();
    expect(slow.heldFrom).toBeUndefined();
    expect(ring.writable()).toBe(8);
    expect(() => slow.read()).toThrow(ReleasedError);
  });

  it('re-holds from the new offset when seeking backwards', () => {
    const ring = new ByteRing({ capacity: 8 });
    const reader = ring.reader({ blocking: true });
    ring.write(pattern(0, 6));
    reader.read();
    reader.release();
    expect(ring.writable()).toBe(8);
    reader.seek(2);
    expect(reader.heldFrom).toBe(2);
    expect(ring.writable()).toBe(4);
    expect(bytesOf(reader.read())).toEqual(Array.from(pattern(2, 4)));
  });

  it('treats release as a no-op for non-blocking readers', () => {
    const ring = new ByteRing({ capacity: 4 });
    const reader = ring.reader();
    ring.write(pattern(0, 4));
    reader.release();
    expect(reader.heldFrom).toBeUndefined();
    expect(ring.writable()).toBe(4);
  });
});

describe('ByteRing reserve and commit', () => {
  it('hands out ring memory to fill in place and publishes what was committed', () => {
    const ring = new ByteRing({ capacity: 8 });
    ring.write(pattern(0, 6));
    const reader = ring.reader();
    const region = ring.reserve(5);
    expect(region.segmentCount).toBe(2);
    expect(ring.writeOffset).toBe(6);
    expect(reader.available).toBe(0);
    const { stats } = measureCopies(() => region.write(pattern(6, 4)));
    expect(stats.bytesCopied).toBe(4);
    ring.commit(4);
    expect(ring.writeOffset).toBe(10);
    expect(bytesOf(reader.read())).toEqual(Array.from(pattern(6, 4)));
    expect(() => region.getUint8(0)).toThrow(ReleasedError);
    expect(() => ring.commit(1)).toThrow(InvalidArgumentError);
  });

  it('counts reserved memory as overwritten at once', () => {
    const ring = new ByteRing({ capacity: 8 });
    const reader = ring.reader();
    ring.write(pattern(0, 8));
    ring.reserve(3);
    expect(ring.oldestOffset).toBe(3);
    expect(reader.lapped).toBe(true);
    expect(() => reader.read()).toThrow(RingOverrunError);
  });

  it('refuses to reserve held bytes or commit more than reserved', () => {
    const ring = new ByteRing({ capacity: 8 });
    ring.reader({ blocking: true });
    ring.write(pattern(0, 5));
    expect(() => ring.reserve(4)).toThrow(RingFullError);
    ring.reserve(3);
    expect(() => ring.commit(4)).toThrow(InvalidLengthError);
  });

  it('drops a reservation on the next write', () => {
    const ring = new ByteRing({ capacity: 8 });
    const region = ring.reserve(4);
    ring.write(pattern(0, 2));
    expect(() => region.fill(0)).toThrow(ReleasedError);
    expect(() => ring.commit(1)).toThrow(InvalidArgumentError);
  });
});

describe('ByteRing markers', () => {
  it('lets a viewer join at the newest keyframe and skip to the next one', () => {
    const ring = new ByteRing<string>({ capacity: 64 });
    // Each "fragment" is 10 bytes; keyframes start fragments 0, 3 and 5.
    for (let f = 0; f < 6; f++) {
      if (f === 0 || f === 3 || f === 5) ring.mark(`key${f}`);
      ring.write(pattern(f * 10, 10));
    }
    expect(ring.markers().map((m) => m.offset)).toEqual([0, 30, 50]);
    const live = ring.reader({ start: 'newest-marker' });
    expect(live.offset).toBe(50);
    expect(bytesOf(live.read())).toEqual(Array.from(pattern(50, 10)));

    const late = ring.reader({ start: 'oldest' });
    expect(late.offset).toBe(0);
    late.read(12); // mid-fragment
    expect(late.skipToNextMarker()).toEqual({ offset: 30, value: 'key3' });
    expect(late.offset).toBe(30);
    expect(late.skipToNextMarker()).toEqual({ offset: 50, value: 'key5' });
    expect(late.skipToNextMarker()).toBeUndefined();
    expect(late.offset).toBe(50);
  });

  it('rejoins a lapped viewer at the next keyframe still held', () => {
    const ring = new ByteRing<number>({ capacity: 40 });
    const slow = ring.reader();
    for (let f = 0; f < 10; f++) {
      ring.mark(f);
      ring.write(pattern(f * 10, 10));
    }
    expect(() => slow.read()).toThrow(RingOverrunError);
    expect(ring.markers().map((m) => m.value)).toEqual([6, 7, 8, 9]);
    expect(slow.skipToNextMarker()).toEqual({ offset: 60, value: 6 });
    expect(bytesOf(slow.read(10))).toEqual(Array.from(pattern(60, 10)));
    expect(slow.seekToNewestMarker()).toEqual({ offset: 90, value: 9 });
    expect(slow.offset).toBe(90);
  });

  it('prunes markers the writer laps and keeps at most maxMarkers', () => {
    const ring = new ByteRing<number>({ capacity: 16, maxMarkers: 3 });
    for (let i = 0; i < 5; i++) {
      ring.mark(i);
      ring.write(new Uint8Array(2));
    }
    expect(ring.markers().map((m) => m.value)).toEqual([2, 3, 4]);
    ring.write(new Uint8Array(14)); // writeOffset 24, oldest 8: marker 2 at 4 and 3 at 6 are gone
    expect(ring.markers()).toEqual([{ offset: 8, value: 4 }]);
    expect(ring.markerAtOrAfter(0)).toEqual({ offset: 8, value: 4 });
    expect(ring.markerAtOrAfter(9)).toBeUndefined();
    expect(ring.newestMarker()).toEqual({ offset: 8, value: 4 });
    ring.write(new Uint8Array(1));
    expect(ring.newestMarker()).toBeUndefined();
  });

  it('validates marker offsets', () => {
    const ring = new ByteRing({ capacity: 8 });
    ring.write(new Uint8Array(6));
    ring.write(new Uint8Array(6));
    expect(() => ring.mark('x', 3)).toThrow(OutOfRangeError); // below oldest (4)
    expect(() => ring.mark('x', 13)).toThrow(OutOfRangeError); // past writeOffset
    ring.mark('a', 6);
    expect(() => ring.mark('b', 5)).toThrow(OutOfRangeError); // decreasing
    ring.mark('c', 6);
    expect(ring.markers().map((m) => m.value)).toEqual(['a', 'c']);
  });

  it('starts a newest-marker reader at the write offset when there is no marker', () => {
    const ring = new ByteRing({ capacity: 8 });
    ring.write(new Uint8Array(5));
    expect(ring.reader({ start: 'newest-marker' }).offset).toBe(5);
    expect(ring.reader().offset).toBe(5);
    expect(() => ring.reader({ start: 6 })).toThrow(OutOfRangeError);
  });
});

describe('ByteRing notifications and end', () => {
  it('notifies listeners after writes, commits and end, until unsubscribed', () => {
    const ring = new ByteRing({ capacity: 8 });
    const seen: number[] = [];
    const off = ring.onWrite((offset) => seen.push(offset));
    ring.write(new Uint8Array(3));
    ring.reserve(2);
    ring.commit(2);
    ring.end();
    off();
    off();
    expect(seen).toEqual([3, 5, 5]);
  });

  it('ends readers once drained and refuses writes after end', () => {
    const ring = new ByteRing({ capacity: 8 });
    const reader = ring.reader();
    ring.write(new Uint8Array(3));
    ring.end();
    expect(ring.ended).toBe(true);
    expect(reader.ended).toBe(false);
    reader.read();
    expect(reader.ended).toBe(true);
    expect(() => ring.write(new Uint8Array(1))).toThrow(InvalidArgumentError);
    expect(() => ring.mark('x')).toThrow(InvalidArgumentError);
    expect(ring.writable()).toBe(0);
    ring.end();
  });

  it('waitForData resolves on write and on end, and rejects on abort', async () => {
    const ring = new ByteRing({ capacity: 8 });
    const reader = ring.reader();
    const waiting = reader.waitForData();
    let done = false;
    void waiting.then(() => {
      done = true;
    });
    await Promise.resolve();
    expect(done).toBe(false);
    ring.write(new Uint8Array(2));
    await waiting;
    reader.read();

    const controller = new AbortController();
    const aborted = reader.waitForData({ signal: controller.signal });
    controller.abort(new Error('viewer left'));
    await expect(aborted).rejects.toThrow('viewer left');

    const ending = reader.waitForData();
    ring.end();
    await ending;
    expect(reader.ended).toBe(true);
  });
});

describe('ByteRing shared memory in one thread', () => {
  it('shares bytes and markers with an attached read-only ring', () => {
    const ring = new ByteRing<number>({ capacity: 16, shared: true, maxMarkers: 4 });
    const handle = structuredClone(ring.share());
    const remote = ByteRing.attach(handle);
    expect(remote.readOnly).toBe(true);
    expect(remote.capacity).toBe(16);
    const reader = remote.reader({ start: 'oldest' });
    ring.mark(1);
    ring.write(pattern(0, 10));
    ring.mark(2);
    ring.write(pattern(10, 10));
    expect(remote.writeOffset).toBe(20);
    expect(remote.oldestOffset).toBe(4);
    expect(remote.markers()).toEqual([{ offset: 10, value: 2 }]);
    expect(() => reader.read()).toThrow(RingOverrunError);
    expect(reader.seekToNewestMarker()).toEqual({ offset: 10, value: 2 });
    expect(bytesOf(reader.read())).toEqual(Array.from(pattern(10, 10)));
    expect(() => remote.write(new Uint8Array(1))).toThrow(InvalidArgumentError);
    expect(() => remote.mark(3)).toThrow(InvalidArgumentError);
    expect(() => remote.end()).toThrow(InvalidArgumentError);
    expect(() => remote.reader({ blocking: true })).toThrow(InvalidArgumentError);
    ring.end();
    expect(remote.ended).toBe(true);
    expect(reader.ended).toBe(true);
  });

  it('keeps only maxMarkers markers visible to attached rings', () => {
    const ring = new ByteRing<number>({ capacity: 64, shared: true, maxMarkers: 3 });
    const remote = ByteRing.attach(ring.share());
    for (let i = 0; i < 7; i++) {
      ring.mark(i * 10);
      ring.write(new Uint8Array(1));
    }
    expect(remote.markers().map((m) => m.value)).toEqual([40, 50, 60]);
    expect(remote.markerAtOrAfter(5)?.value).toBe(50);
    expect(remote.newestMarker()?.value).toBe(60);
  });

  it('rejects non-numeric shared markers, bad handles and sharing a local ring', () => {
    const ring = new ByteRing<unknown>({ capacity: 8, shared: true });
    expect(() => ring.mark('keyframe')).toThrow(InvalidArgumentError);
    expect(() => new ByteRing({ capacity: 8 }).share()).toThrow(InvalidArgumentError);
    expect(() => ByteRing.attach({ ...ring.share(), capacity: 9 })).toThrow(InvalidArgumentError);
    expect(() => ByteRing.attach({} as never)).toThrow(InvalidArgumentError);
  });

  it('wakes an attached reader through Atomics when the writer publishes', async () => {
    const ring = new ByteRing({ capacity: 8, shared: true });
    const reader = ByteRing.attach(ring.share()).reader();
    const waiting = reader.waitForData();
    setTimeout(() => ring.write(new Uint8Array([9])), 5);
    await waiting;
    expect(bytesOf(reader.read())).toEqual([9]);
  });
});

type Command =
  | { kind: 'write'; bytes: Uint8Array }
  | { kind: 'read'; reader: number; max: number }
  | { kind: 'readInto'; reader: number; size: number }
  | { kind: 'seek'; reader: number; at: number }
  | { kind: 'check'; view: number };

const commandArb = (capacity: number): fc.Arbitrary<Command> =>
  fc.oneof(
    fc.record({
      kind: fc.constant('write' as const),
      bytes: fc.uint8Array({ minLength: 0, maxLength: capacity }),
    }),
    fc.record({
      kind: fc.constant('read' as const),
      reader: fc.nat(2),
      max: fc.integer({ min: 0, max: capacity + 2 }),
    }),
    fc.record({
      kind: fc.constant('readInto' as const),
      reader: fc.nat(2),
      size: fc.integer({ min: 0, max: capacity + 2 }),
    }),
    fc.record({
      kind: fc.constant('seek' as const),
      reader: fc.nat(2),
      at: fc.double({ min: 0, max: 1, noNaN: true }),
    }),
    fc.record({ kind: fc.constant('check' as const), view: fc.nat(20) }),
  );

describe('ByteRing against a reference model', () => {
  it('returns exactly the reference bytes or throws RingOverrunError when lapped', () => {
    fc.assert(
      fc.property(
        fc
          .integer({ min: 1, max: 48 })
          .chain((capacity) =>
            fc.tuple(
              fc.constant(capacity),
              fc.boolean(),
              fc.array(commandArb(capacity), { maxLength: 60 }),
            ),
          ),
        ([capacity, shared, commands]) => {
          const ring = new ByteRing({ capacity, shared });
          // Attached readers go through the Atomics-backed paths.
          const source = shared ? ByteRing.attach(ring.share()) : ring;
          const all: number[] = [];
          const readers = [source.reader(), source.reader(), source.reader()];
          const offsets = [0, 0, 0];
          const views: { start: number; view: ByteView }[] = [];
          const oldest = () => Math.max(0, all.length - capacity);
          for (const command of commands) {
            if (command.kind === 'write') {
              ring.write(command.bytes);
              all.push(...command.bytes);
              expect(ring.writeOffset).toBe(all.length);
              expect(ring.oldestOffset).toBe(oldest());
            } else if (command.kind === 'seek') {
              const at = Math.floor(oldest() + command.at * (all.length - oldest()));
              readers[command.reader]?.seek(at);
              offsets[command.reader] = at;
            } else if (command.kind === 'check') {
              const held = views[command.view % Math.max(1, views.length)];
              if (held === undefined) continue;
              if (held.start >= oldest()) {
                expect(bytesOf(held.view)).toEqual(
                  all.slice(held.start, held.start + held.view.length),
                );
              } else if (held.view.length > 0) {
                expect(() => held.view.copy()).toThrow(RingOverrunError);
              }
            } else {
              const reader = readers[command.reader];
              const at = offsets[command.reader] as number;
              if (reader === undefined) continue;
              expect(reader.offset).toBe(at);
              if (at < oldest()) {
                expect(reader.lapped).toBe(true);
                const error =
                  command.kind === 'read'
                    ? catchError(() => reader.read(command.max))
                    : catchError(() => reader.readInto(new Uint8Array(command.size)));
                expect(RingOverrunError.isInstance(error)).toBe(true);
                expect(reader.offset).toBe(at);
                continue;
              }
              const limit = command.kind === 'read' ? command.max : command.size;
              const expected = all.slice(at, Math.min(all.length, at + limit));
              if (command.kind === 'read') {
                const view = reader.read(command.max);
                expect(bytesOf(view)).toEqual(expected);
                if (view.length > 0) views.push({ start: at, view });
              } else {
                const target = new Uint8Array(command.size);
                expect(reader.readInto(target)).toBe(expected.length);
                expect(Array.from(target.subarray(0, expected.length))).toEqual(expected);
              }
              offsets[command.reader] = at + expected.length;
            }
          }
        },
      ),
      { numRuns: 400 },
    );
  });

  it('never laps a blocking reader and refuses exactly the writes that would', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 32 }).chain((capacity) =>
          fc.tuple(
            fc.constant(capacity),
            fc.array(
              fc.oneof(
                fc.record({
                  kind: fc.constant('write' as const),
                  n: fc.integer({ min: 0, max: capacity }),
                }),
                fc.record({
                  kind: fc.constant('read' as const),
                  max: fc.integer({ min: 0, max: capacity }),
                }),
                fc.record({ kind: fc.constant('release' as const), back: fc.nat(capacity) }),
              ),
              { maxLength: 60 },
            ),
          ),
        ),
        ([capacity, commands]) => {
          const ring = new ByteRing({ capacity });
          const reader = ring.reader({ blocking: true });
          let head = 0;
          let cursor = 0;
          let hold = 0;
          for (const command of commands) {
            if (command.kind === 'write') {
              const free = hold + capacity - head;
              if (command.n > free) {
                expect(() => ring.write(pattern(head, command.n))).toThrow(RingFullError);
              } else {
                ring.write(pattern(head, command.n));
                head += command.n;
              }
              expect(ring.writable()).toBe(hold + capacity - head);
            } else if (command.kind === 'read') {
              const view = reader.read(command.max);
              const n = Math.min(command.max, head - cursor);
              expect(bytesOf(view)).toEqual(Array.from(pattern(cursor, n)));
              cursor += n;
            } else {
              const upTo = Math.max(hold, cursor - command.back);
              reader.release(upTo);
              hold = upTo;
            }
            expect(reader.lapped).toBe(false);
          }
        },
      ),
      { numRuns: 300 },
    );
  });
});
