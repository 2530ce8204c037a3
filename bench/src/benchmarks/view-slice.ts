import { Buffer } from 'node:buffer';
import { ByteStore } from 'buffer-view';
import { defineBenchmark } from '../harness/define';
import type { BenchCase } from '../harness/types';
import {
  GiB,
  KiB,
  MiB,
  picker,
  randomBytes,
  rangeOffsets,
  seededRandom,
  segmentParts,
} from './util';

const STORE_SIZE = 6 * GiB;
/** ByteStore's default segment size. */
const SEGMENT = 256 * MiB;

/** Range sizes, and how many distinct pre-filled ranges each draws from. */
const SIZES = [
  { label: '1 KiB', size: KiB, ranges: 4096 },
  { label: '20 MiB', size: 20 * MiB, ranges: 16 },
  { label: '200 MiB', size: 200 * MiB, ranges: 4 },
] as const;

type Label = (typeof SIZES)[number]['label'];

interface State {
  store: ByteStore;
  /** The store's 256 MiB segments, for the peers' hand-written slicing. */
  segments: Uint8Array[];
  offsets: Record<Label, number[]>;
}

/** Copies a range the way a user of plain typed arrays would: `slice` within a segment, allocate + `set` across one. */
function copySlice(state: State, offset: number, length: number): Uint8Array {
  const parts = segmentParts(state.segments, SEGMENT, offset, length);
  if (parts.length === 1) {
    const k = Math.floor(offset / SEGMENT);
    const local = offset - k * SEGMENT;
    return (state.segments[k] as Uint8Array).slice(local, local + length);
  }
  const out = new Uint8Array(length);
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

function casesFor(label: Label, size: number): BenchCase<State>[] {
  const ours = picker();
  const slice = picker();
  const concat = picker();
  const list = picker();
  const cases: BenchCase<State>[] = [
    {
      name: `ByteStore#viewAt ${label}`,
      role: 'ours',
      group: label,
      reference: `Buffer.concat ${label}`,
      bytesPerOp: size,
      description: `store.viewAt(offset, ${label}): a zero-copy view, one or two segments`,
      run: (s) => s.store.viewAt(ours(s.offsets[label]), size),
    },
    {
      name: `Uint8Array#slice ${label}`,
      role: 'peer',
      group: label,
      reference: `Buffer.concat ${label}`,
      bytesPerOp: size,
      declaredCopyBytesPerOp: size,
      description: `copying \`Uint8Array.prototype.slice\` of the segment (allocate + \`set\` when the range spans two)`,
      run: (s) => copySlice(s, slice(s.offsets[label]), size),
    },
    {
      name: `Buffer.concat ${label}`,
      role: 'peer',
      group: label,
      reference: `Buffer.concat ${label}`,
      bytesPerOp: size,
      declaredCopyBytesPerOp: size,
      description:
        '`Buffer.concat` of the subarrays the range spans (what a segmented buffer list does on `slice`)',
      run: (s) => {
        const offset = concat(s.offsets[label]);
        return Buffer.concat(segmentParts(s.segments, SEGMENT, offset, size), size);
      },
    },
  ];
  if (label === '20 MiB') {
    cases.push({
      name: `subarray list ${label}`,
      role: 'baseline',
      group: label,
      reference: `Buffer.concat ${label}`,
      bytesPerOp: size,
      declaredCopyBytesPerOp: 0,
      description:
        'the floor: a hand-rolled array of `subarray`s of the spanned segments (no view object, no checks)',
      run: (s) => segmentParts(s.segments, SEGMENT, list(s.offsets[label]), size),
    });
  }
  return cases;
}

/**
 * A view of a range of a 6 GiB segmented store against copying the same
 * range. View cost should not depend on the range size; copies scale with it.
 */
export const viewSlice = defineBenchmark<State>({
  name: 'view-slice',
  summary: 'a zero-copy view of 1 KiB / 20 MiB / 200 MiB of a 6 GiB store vs copying the range',
  description:
    'Taking a range out of a 6 GiB `ByteStore` (`ByteStore.alloc(6 GiB)`, 24 segments of 256 MiB; untouched pages cost no RSS) ' +
    'at random offsets, half of them straddling a segment edge: a zero-copy `viewAt` against copying the same range with ' +
    '`Uint8Array#slice` or `Buffer.concat`, at 1 KiB, 20 MiB and 200 MiB. The ranges read are pre-filled with random bytes ' +
    "(4096 / 16 / 4 distinct ranges per size) so copies read real memory, not the kernel's shared zero page. Ops/s; " +
    'p50 is the median time per operation.',
  unit: 'ops/s',
  bytesPerOp: 20 * MiB,
  reference: 'Buffer.concat 20 MiB',
  moduleUrl: import.meta.url,
  setup: () => {
    const store = ByteStore.alloc(STORE_SIZE, { segmentSize: SEGMENT });
    const segments = store.bytes.toSegments();
    const random = seededRandom(0x5eed);
    const fill = randomBytes(MiB);
    const offsets = {} as Record<Label, number[]>;
    for (const { label, size, ranges } of SIZES) {
      const list = rangeOffsets(random, ranges, size, STORE_SIZE, SEGMENT);
      for (const offset of list) {
        for (const part of segmentParts(segments, SEGMENT, offset, size)) {
          for (let at = 0; at < part.length; at += fill.length) {
            part.set(fill.subarray(0, Math.min(fill.length, part.length - at)), at);
          }
        }
      }
      offsets[label] = list;
    }
    // Sanity: a view and a copy of the same range hold the same bytes.
    const probe = offsets['20 MiB'][0] as number;
    const view = store.viewAt(probe, 20 * MiB);
    if (!view.equals(Buffer.concat(segmentParts(segments, SEGMENT, probe, 20 * MiB)))) {
      throw new Error('view-slice: view and copy disagree');
    }
    return { store, segments, offsets };
  },
  cases: SIZES.flatMap(({ label, size }) => casesFor(label, size)),
  targets: [
    {
      kind: 'limit',
      case: 'ByteStore#viewAt 20 MiB',
      metric: 'p50Ns',
      atMost: 1000,
      label: 'a 20 MiB view takes ≤ 1 µs (median)',
    },
    {
      kind: 'ratio',
      case: 'ByteStore#viewAt 200 MiB',
      vs: 'ByteStore#viewAt 1 KiB',
      metric: 'p50Ns',
      atMost: 1.5,
      label: 'view cost is independent of size: median at 200 MiB ≤ 1.5× median at 1 KiB',
    },
    {
      kind: 'ratio',
      case: 'ByteStore#viewAt 20 MiB',
      vs: 'ByteStore#viewAt 1 KiB',
      metric: 'p50Ns',
      atMost: 1.5,
      label: 'view cost is independent of size: median at 20 MiB ≤ 1.5× median at 1 KiB',
    },
    {
      kind: 'limit',
      case: 'ByteStore#viewAt 200 MiB',
      metric: 'bytesCopiedPerOp',
      atMost: 0,
      label: 'a view copies 0 bytes (buffer-view copy counters)',
    },
  ],
});
