import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import {
  InvalidArgumentError,
  InvalidLengthError,
  type KeptView,
  measureCopies,
  PoolExhaustedError,
  ReleasedError,
  SlabPool,
} from 'buffer-view';
import { describe, expect, it } from 'vitest';
import { catchError } from '../../test/catch-error';

describe('SlabPool options', () => {
  it('rejects invalid sizes, limits and ratios', () => {
    expect(() => new SlabPool({ slabSize: 0 })).toThrow(InvalidLengthError);
    expect(() => new SlabPool({ slabSize: 1.5 })).toThrow(InvalidLengthError);
    expect(() => new SlabPool({ slabSize: 16, maxSlabs: 0 })).toThrow(InvalidLengthError);
    expect(() => new SlabPool({ slabSize: 16, maxSlabs: 2, preallocate: 3 })).toThrow(
      InvalidLengthError,
    );
    expect(() => new SlabPool({ slabSize: 16, pinRatio: 1.5 })).toThrow(InvalidArgumentError);
    expect(() => new SlabPool({ slabSize: 16, pinRatio: Number.NaN })).toThrow(
      InvalidArgumentError,
    );
  });

  it('preallocates so the first acquires allocate nothing', () => {
    const { result: pool, stats } = measureCopies(
      () => new SlabPool({ slabSize: 4096, preallocate: 3 }),
    );
    expect(stats.bytesAllocated).toBe(3 * 4096);
    expect(pool.stats).toMatchObject({
      slabs: 3,
      free: 3,
      inUse: 0,
      allocations: 3,
      bytesAllocated: 3 * 4096,
    });
    const { stats: acquireStats } = measureCopies(() => [
      pool.acquire(),
      pool.acquire(),
      pool.acquire(),
    ]);
    expect(acquireStats.bytesAllocated).toBe(0);
    expect(pool.stats).toMatchObject({ free: 0, inUse: 3, reuses: 3 });
  });

  it('allocates SharedArrayBuffer slabs when shared', () => {
    const slab = new SlabPool({ slabSize: 64, shared: true }).acquire();
    expect(slab.bytes.buffer).toBeInstanceOf(SharedArrayBuffer);
    expect(new SlabPool({ slabSize: 64 }).acquire().bytes.buffer).toBeInstanceOf(ArrayBuffer);
  });
});

describe('SlabPool acquire and release', () => {
  it('refcounts and returns the memory to the pool at zero', () => {
    const pool = new SlabPool({ slabSize: 1024 });
    const slab = pool.acquire();
    expect(slab.size).toBe(1024);
    expect(slab.refCount).toBe(1);
    expect(slab.retain()).toBe(slab);
    expect(slab.refCount).toBe(2);
    slab.release();
    expect(slab.released).toBe(false);
    expect(pool.stats).toMatchObject({ inUse: 1, free: 0 });
    slab.release();
    expect(slab.released).toBe(true);
    expect(pool.stats).toMatchObject({ inUse: 0, free: 1 });
    const error = catchError(() => slab.release());
    expect(ReleasedError.isInstance(error)).toBe(true);
    expect(() => slab.retain()).toThrow(ReleasedError);
    expect(pool.stats.free).toBe(1);
  });

  it('revokes views on release and hands out a fresh wrapper over reused memory', () => {
    const pool = new SlabPool({ slabSize: 256 });
    const first = pool.acquire();
    const memory = first.bytes;
    const view = first.view(10, 20);
    view.fill(7);
    expect(view.getUint8(0)).toBe(7);
    first.release();
    expect(() => view.getUint8(0)).toThrow(ReleasedError);
    expect(() => first.bytes).toThrow(ReleasedError);
    expect(() => first.view()).toThrow(ReleasedError);

    const second = pool.acquire();
    expect(second).not.toBe(first);
    expect(second.bytes).toBe(memory);
    expect(first.released).toBe(true);
    expect(() => view.copy()).toThrow(ReleasedError);
    expect(second.view(10, 20).getUint8(0)).toBe(7); // not zeroed: contents are unspecified
    second.release();
  });

  it('poisons released memory in debug mode only', () => {
    const debug = new SlabPool({ slabSize: 64, debug: true });
    const slab = debug.acquire();
    const raw = slab.bytes;
    raw.fill(1);
    slab.release();
    expect(raw.every((b) => b === 0xdd)).toBe(true);

    const plain = new SlabPool({ slabSize: 64 });
    const other = plain.acquire();
    const kept = other.bytes;
    kept.fill(1);
    other.release();
    expect(kept.every((b) => b === 1)).toBe(true);
    expect(() => other.bytes).toThrow(ReleasedError);
  });

  it('validates view ranges', () => {
    const slab = new SlabPool({ slabSize: 32 }).acquire();
    expect(slab.view().length).toBe(32);
    expect(slab.view(32).length).toBe(0);
    expect(() => slab.view(5, 4)).toThrow();
    expect(() => slab.view(0, 33)).toThrow();
  });
});

describe('SlabPool limits', () => {
  it('throws PoolExhaustedError at maxSlabs', () => {
    const pool = new SlabPool({ slabSize: 16, maxSlabs: 2 });
    pool.acquire();
    const held = pool.acquire();
    const error = catchError(() => pool.acquire());
    expect(PoolExhaustedError.isInstance(error)).toBe(true);
    expect((error as PoolExhaustedError).limit).toBe(2);
    held.release();
    expect(pool.acquire()).toBeDefined();
  });

  it('acquireAsync waits for a release, first come first served', async () => {
    const pool = new SlabPool({ slabSize: 16, maxSlabs: 1 });
    const slab = pool.acquire();
    const order: string[] = [];
    const a = pool.acquireAsync().then((s) => {
      order.push('a');
      return s;
    });
    const b = pool.acquireAsync().then((s) => {
      order.push('b');
      return s;
    });
    await Promise.resolve();
    expect(order).toEqual([]);
    expect(pool.stats.waiting).toBe(2);
    slab.release();
    const slabA = await a;
    expect(order).toEqual(['a']);
    expect(slabA.refCount).toBe(1);
    expect(pool.stats).toMatchObject({ waiting: 1, inUse: 1, free: 0 });
    slabA.release();
    (await b).release();
    expect(order).toEqual(['a', 'b']);
    expect(pool.stats).toMatchObject({ waiting: 0, free: 1, allocations: 1 });
  });

  it('acquireAsync resolves at once when a slab is free and rejects on abort', async () => {
    const pool = new SlabPool({ slabSize: 16, maxSlabs: 1 });
    const slab = await pool.acquireAsync();
    const controller = new AbortController();
    const waiting = pool.acquireAsync({ signal: controller.signal });
    expect(pool.stats.waiting).toBe(1);
    controller.abort(new Error('upload cancelled'));
    await expect(waiting).rejects.toThrow('upload cancelled');
    expect(pool.stats.waiting).toBe(0);
    await expect(
      pool.acquireAsync({ signal: AbortSignal.abort(new Error('already')) }),
    ).rejects.toThrow('already');
    slab.release();
    expect(pool.stats.free).toBe(1);
  });

  it('trims free slabs but not slabs in use', () => {
    const pool = new SlabPool({ slabSize: 16, preallocate: 4 });
    const used = pool.acquire();
    pool.trim(1);
    expect(pool.stats).toMatchObject({ slabs: 2, free: 1, inUse: 1 });
    used.release();
    pool.trim();
    expect(pool.stats).toMatchObject({ slabs: 0, free: 0 });
    const { stats } = measureCopies(() => pool.acquire());
    expect(stats.bytesAllocated).toBe(16);
  });
});

describe('SlabPool steady state', () => {
  it('allocates zero bytes over 10,000 acquire/release cycles after warm-up', () => {
    const pool = new SlabPool({ slabSize: 64 * 1024, maxSlabs: 4 });
    const warm = [pool.acquire(), pool.acquire()];
    for (const slab of warm) slab.release();
    const before = pool.stats;
    const { stats } = measureCopies(() => {
      for (let i = 0; i < 10_000; i++) {
        const a = pool.acquire();
        const b = pool.acquire();
        a.view(0, 100).fill(i & 0xff);
        b.retain();
        b.release();
        a.release();
        b.release();
      }
    });
    expect(stats.bytesAllocated).toBe(0);
    expect(stats.allocations).toBe(0);
    expect(stats.bytesCopied).toBe(0);
    expect(pool.stats.allocations).toBe(before.allocations);
    expect(pool.stats.reuses - before.reuses).toBe(20_000);
  });

  it('pre-touches slab pages so filling a slab takes no page faults', (ctx) => {
    const size = 32 * 2 ** 20;
    const pages = size / 4096;
    const faults = () => process.resourceUsage().minorPageFault;
    // Control: a plain fresh array faults on first write to each page.
    const plain = new Uint8Array(size);
    let start = faults();
    plain.fill(1);
    const plainFaults = faults() - start;
    // With transparent huge pages forced on, a page fault maps 2 MiB and the
    // difference cannot be seen from here.
    if (plainFaults < pages / 2) ctx.skip();

    const pool = new SlabPool({ slabSize: size, preallocate: 1 });
    const slab = pool.acquire();
    start = faults();
    slab.bytes.fill(1);
    const slabFaults = faults() - start;
    expect(slabFaults).toBeLessThan(pages / 16);
    slab.release();

    // preTouch: false leaves a slab's pages untouched until used, so a big
    // slab that is mostly unused costs only the pages written.
    const lazy = new SlabPool({ slabSize: size, preallocate: 1, preTouch: false });
    const lazySlab = lazy.acquire();
    start = faults();
    lazySlab.bytes.fill(1);
    expect(faults() - start).toBeGreaterThan(pages / 2);
    lazySlab.release();
  });
});

describe('Slab.keep', () => {
  it('copies a small range out so the slab returns to the pool at once', () => {
    const pool = new SlabPool({ slabSize: 1000, pinRatio: 0.1 });
    const slab = pool.acquire();
    slab.bytes.fill(5, 0, 99);
    const { result: kept, stats } = measureCopies(() => slab.keep(0, 99));
    expect(kept.copied).toBe(true);
    expect(stats).toMatchObject({ bytesCopied: 99, copies: 1, bytesAllocated: 99, allocations: 1 });
    slab.release();
    expect(pool.stats).toMatchObject({
      free: 1,
      inUse: 0,
      pinnedBytes: 0,
      keptCopies: 1,
      keptCopyBytes: 99,
    });
    pool.acquire().bytes.fill(9); // the next user overwrites the memory
    expect(kept.view.length).toBe(99);
    expect(kept.view.copy().every((b) => b === 5)).toBe(true);
    kept.release();
    expect(() => kept.view.getUint8(0)).toThrow(ReleasedError);
    expect(() => kept.release()).toThrow(ReleasedError);
  });

  it('pins the slab for a large range until every kept view is released', () => {
    const pool = new SlabPool({ slabSize: 1000, pinRatio: 0.1, maxSlabs: 1 });
    const slab = pool.acquire();
    slab.bytes.fill(3);
    const { result: a, stats } = measureCopies(() => slab.keep(100, 300));
    const b = slab.keep(0, 1000);
    expect(a.copied).toBe(false);
    expect(stats.bytesCopied).toBe(0);
    const plainView = slab.view(0, 10);
    slab.release();
    expect(() => plainView.getUint8(0)).toThrow(ReleasedError);
    expect(pool.stats).toMatchObject({ free: 0, inUse: 1, pinnedSlabs: 1, pinnedBytes: 1000 });
    expect(() => pool.acquire()).toThrow(PoolExhaustedError);
    expect(a.view.getUint8(0)).toBe(3);
    a.release();
    expect(() => a.release()).toThrow(ReleasedError);
    expect(pool.stats.pinnedBytes).toBe(1000);
    expect(b.view.getUint8(999)).toBe(3);
    b.release();
    expect(pool.stats).toMatchObject({ free: 1, inUse: 0, pinnedSlabs: 0, pinnedBytes: 0 });
    expect(() => b.view.getUint8(0)).toThrow(ReleasedError);
    expect(() => a.view.getUint8(0)).toThrow(ReleasedError);
  });

  it('hands a slab freed by its last kept view to a waiting acquirer', async () => {
    const pool = new SlabPool({ slabSize: 100, maxSlabs: 1, pinRatio: 0 });
    const slab = pool.acquire();
    const kept = slab.keep(0, 1);
    slab.release();
    const waiting = pool.acquireAsync();
    expect(pool.stats.waiting).toBe(1);
    kept.release();
    const next = await waiting;
    expect(next.refCount).toBe(1);
    expect(pool.stats).toMatchObject({ waiting: 0, inUse: 1, pinnedSlabs: 0 });
  });

  it('keeps pinning while the slab is still held, and validates ranges', () => {
    const pool = new SlabPool({ slabSize: 100, pinRatio: 0 });
    const slab = pool.acquire();
    const kept = slab.keep(10, 90);
    kept.release();
    expect(pool.stats).toMatchObject({ inUse: 1, pinnedSlabs: 0 });
    expect(slab.view(0, 1).length).toBe(1);
    expect(() => slab.keep(50, 40)).toThrow();
    expect(() => slab.keep(0, 101)).toThrow();
    slab.release();
    expect(() => slab.keep(0, 1)).toThrow(ReleasedError);
    expect(pool.stats.free).toBe(1);
  });

  it('unpins a slab whose kept view was garbage-collected unreleased', async () => {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const pool = new SlabPool({ slabSize: 1000, pinRatio: 0 });
    const leak = (): void => {
      const slab = pool.acquire();
      let kept: KeptView | undefined = slab.keep(0, 500);
      slab.release();
      expect(kept.view.length).toBe(500);
      kept = undefined;
    };
    leak();
    expect(pool.stats.pinnedSlabs).toBe(1);
    for (let i = 0; i < 50 && pool.stats.pinnedSlabs > 0; i++) {
      gc();
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    expect(pool.stats).toMatchObject({ pinnedSlabs: 0, reclaimedPins: 1, free: 1, inUse: 0 });
  });
});
