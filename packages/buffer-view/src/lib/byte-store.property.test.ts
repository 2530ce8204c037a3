import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ByteStore } from './byte-store';
import { ByteView } from './byte-view';
import { measureCopies } from './copy-stats';

/**
 * Random operation sequences on random segmentations, checked after every
 * step against a plain Uint8Array holding what the store should hold.
 */
type Op =
  | { kind: 'append'; chunks: Uint8Array[] }
  | { kind: 'consume'; at: number }
  | { kind: 'write'; at: number; data: Uint8Array }
  | { kind: 'splice'; at: number; del: number; data: Uint8Array }
  | { kind: 'truncate'; at: number }
  | { kind: 'grow'; n: number; fill: number }
  | { kind: 'compact' };

const bytes = (max: number) => fc.uint8Array({ maxLength: max });
const fraction = fc.double({ min: 0, max: 1, noNaN: true });

const op: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constant('append' as const),
      chunks: fc.array(bytes(24), { maxLength: 4 }),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('consume' as const), at: fraction }) },
  {
    weight: 2,
    arbitrary: fc.record({ kind: fc.constant('write' as const), at: fraction, data: bytes(16) }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('splice' as const),
      at: fraction,
      del: fraction,
      data: bytes(16),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('truncate' as const), at: fraction }) },
  {
    weight: 1,
    arbitrary: fc.record({ kind: fc.constant('grow' as const), n: fc.nat(40), fill: fc.nat(255) }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('compact' as const) }) },
);

function concat(a: Uint8Array, ...rest: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(rest.reduce((n, r) => n + r.length, a.length));
  out.set(a);
  let at = a.length;
  for (const r of rest) {
    out.set(r, at);
    at += r.length;
  }
  return out;
}

function apply(store: ByteStore, model: Uint8Array, step: Op): Uint8Array {
  const pick = (f: number, max: number) => Math.min(max, Math.floor(f * (max + 1)));
  switch (step.kind) {
    case 'append':
      store.append(step.chunks.map((c) => c.slice()));
      return concat(model, ...step.chunks);
    case 'consume': {
      const n = pick(step.at, model.length);
      store.consume(n);
      return model.slice(n);
    }
    case 'write': {
      const data = step.data.subarray(0, model.length);
      const at = pick(step.at, model.length - data.length);
      store.write(at, data);
      const next = model.slice();
      next.set(data, at);
      return next;
    }
    case 'splice': {
      const at = pick(step.at, model.length);
      const del = pick(step.del, model.length - at);
      const removed = store.splice(at, del, step.data.slice());
      expect(removed.equals(model.subarray(at, at + del))).toBe(true);
      return concat(model.slice(0, at), step.data, model.slice(at + del));
    }
    case 'truncate': {
      const n = pick(step.at, model.length);
      store.truncate(n);
      return model.slice(0, n);
    }
    case 'grow': {
      store.grow(step.n).fill(step.fill);
      return concat(model, new Uint8Array(step.n).fill(step.fill));
    }
    case 'compact':
      store.compact();
      return model;
  }
}

describe('ByteStore against a plain-array model', () => {
  it('holds exactly the model bytes after any operation sequence', () => {
    fc.assert(
      fc.property(
        fc.array(op, { maxLength: 40 }),
        fc.integer({ min: 1, max: 64 }),
        fc.array(fc.tuple(fraction, fraction), { minLength: 1, maxLength: 6 }),
        (ops, segmentSize, probes) => {
          const store = new ByteStore({ segmentSize });
          let model: Uint8Array = new Uint8Array(0);
          for (const step of ops) {
            model = apply(store, model, step);
            expect(store.length).toBe(model.length);
            expect(store.bytes.equals(model)).toBe(true);
            for (const [a, b] of probes) {
              const start = Math.floor(a * model.length);
              const end = start + Math.floor(b * (model.length - start));
              const { result: view, stats } = measureCopies(() => store.view(start, end));
              expect(stats.bytesCopied).toBe(0);
              expect(view.equals(model.subarray(start, end))).toBe(true);
              if (end - start >= 4) {
                const dv = new DataView(model.buffer, model.byteOffset + start, end - start);
                expect(view.getUint32(0, a < 0.5)).toBe(dv.getUint32(0, a < 0.5));
              }
            }
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  it('indexOf agrees with a search over the flat bytes for random segmentations', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 1, maxLength: 200 }).map((a) => a.map((x) => x % 4)),
        fc.array(fc.nat(200), { maxLength: 12 }),
        fc.uint8Array({ minLength: 1, maxLength: 5 }).map((a) => a.map((x) => x % 4)),
        fc.nat(200),
        (flat, rawCuts, needle, rawFrom) => {
          const cuts = [...new Set(rawCuts.map((c) => c % flat.length))].sort((x, y) => x - y);
          const segs: Uint8Array[] = [];
          let prev = 0;
          for (const c of [...cuts, flat.length]) {
            segs.push(flat.subarray(prev, c));
            prev = c;
          }
          const view = ByteView.from(segs);
          const from = rawFrom % (flat.length + 1);
          const expected = Buffer.from(flat.buffer, flat.byteOffset, flat.length).indexOf(
            needle,
            from,
          );
          expect(view.indexOf(needle, from)).toBe(expected);
          expect(view.startsWith(needle, from)).toBe(
            Buffer.from(flat.subarray(from, from + needle.length)).equals(needle),
          );
        },
      ),
      { numRuns: 1000 },
    );
  });
});
