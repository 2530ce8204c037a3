import { Buffer } from 'node:buffer';
import { ByteStore } from 'buffer-view';
import { defineBenchmark } from '../harness/define';
import { GiB, MiB, picker, randomBytes, randomInt, seededRandom } from './util';

const STORE_SIZE = 2 * GiB;
const SEGMENT = 256 * MiB;
const CHUNK = MiB;
const OFFSETS = 1024;

interface State {
  store: ByteStore;
  segments: Uint8Array[];
  /** The same segments as Buffers, for `Buffer#copy`. */
  buffers: Buffer[];
  chunk: Uint8Array;
  chunkBuffer: Buffer;
  random: number[];
  straddling: number[];
}

/** The raw floor: `TypedArray#set` into the right segment, split in two across an edge. */
function rawSet(segments: readonly Uint8Array[], offset: number, chunk: Uint8Array): void {
  const k = Math.floor(offset / SEGMENT);
  const local = offset - k * SEGMENT;
  const room = SEGMENT - local;
  if (chunk.length <= room) {
    (segments[k] as Uint8Array).set(chunk, local);
  } else {
    (segments[k] as Uint8Array).set(chunk.subarray(0, room), local);
    (segments[k + 1] as Uint8Array).set(chunk.subarray(room), 0);
  }
}

function bufferCopy(buffers: readonly Buffer[], offset: number, chunk: Buffer): void {
  const k = Math.floor(offset / SEGMENT);
  const local = offset - k * SEGMENT;
  const room = SEGMENT - local;
  chunk.copy(buffers[k] as Buffer, local, 0, Math.min(room, chunk.length));
  if (chunk.length > room) chunk.copy(buffers[k + 1] as Buffer, 0, room);
}

const oursRandom = picker();
const rawRandom = picker();
const copyRandom = picker();
const oursEdge = picker();
const rawEdge = picker();

/** Overwriting 1 MiB in place in a warm 2 GiB store against raw `TypedArray#set` into the same memory. */
export const splice = defineBenchmark<State>({
  name: 'splice',
  summary: 'overwriting 1 MiB in place in a 2 GiB store vs raw TypedArray#set',
  description:
    'Overwriting 1 MiB in place at random offsets of a 2 GiB `ByteStore` (8 segments of 256 MiB, pre-touched so every ' +
    'case writes warm memory) with `store.write(offset, chunk)`, against raw `TypedArray#set` and `Buffer#copy` into ' +
    'the very same segments at the same offsets, in the same run. A second group makes every write straddle a segment ' +
    'edge. MiB/s of bytes written.',
  unit: 'MiB/s',
  bytesPerOp: CHUNK,
  reference: 'Uint8Array#set (raw)',
  moduleUrl: import.meta.url,
  setup: () => {
    const store = ByteStore.alloc(STORE_SIZE, { segmentSize: SEGMENT });
    store.bytes.fill(0x5a);
    const segments = store.bytes.toSegments();
    const random = seededRandom(0x591ce);
    const edges = STORE_SIZE / SEGMENT - 1;
    const state: State = {
      store,
      segments,
      buffers: segments.map((s) => Buffer.from(s.buffer, s.byteOffset, s.byteLength)),
      chunk: randomBytes(CHUNK),
      chunkBuffer: Buffer.alloc(0),
      random: Array.from({ length: OFFSETS }, () => randomInt(random, STORE_SIZE - CHUNK + 1)),
      straddling: Array.from(
        { length: OFFSETS },
        () => (1 + randomInt(random, edges)) * SEGMENT - 1 - randomInt(random, CHUNK - 1),
      ),
    };
    state.chunkBuffer = Buffer.from(
      state.chunk.buffer,
      state.chunk.byteOffset,
      state.chunk.byteLength,
    );
    // Sanity: ours and the raw floor write the same bytes at the same place.
    const at = state.straddling[0] as number;
    store.write(at, state.chunk);
    if (!store.viewAt(at, CHUNK).equals(state.chunk)) throw new Error('splice: write did not land');
    return state;
  },
  cases: [
    {
      name: 'ByteStore#write',
      role: 'ours',
      group: 'random offsets',
      description:
        '`store.write(offset, chunk)`: bounds checks, segment lookup, `set` per spanned segment',
      run: (s) => s.store.write(oursRandom(s.random), s.chunk),
    },
    {
      name: 'Uint8Array#set (raw)',
      role: 'baseline',
      group: 'random offsets',
      declaredCopyBytesPerOp: CHUNK,
      description:
        'hand-written `segment.set(chunk, local)` (two `set`s across an edge): the floor',
      run: (s) => rawSet(s.segments, rawRandom(s.random), s.chunk),
    },
    {
      name: 'Buffer#copy (raw)',
      role: 'baseline',
      group: 'random offsets',
      declaredCopyBytesPerOp: CHUNK,
      description: "`chunk.copy(segmentBuffer, local)`, Node's memmove path",
      run: (s) => bufferCopy(s.buffers, copyRandom(s.random), s.chunkBuffer),
    },
    {
      name: 'ByteStore#write across an edge',
      role: 'ours',
      group: 'every write straddles an edge',
      reference: 'Uint8Array#set ×2 (raw)',
      description: 'the same write where the 1 MiB always spans two segments',
      run: (s) => s.store.write(oursEdge(s.straddling), s.chunk),
    },
    {
      name: 'Uint8Array#set ×2 (raw)',
      role: 'baseline',
      group: 'every write straddles an edge',
      reference: 'Uint8Array#set ×2 (raw)',
      declaredCopyBytesPerOp: CHUNK,
      description: 'two hand-written `set`s, one per segment',
      run: (s) => rawSet(s.segments, rawEdge(s.straddling), s.chunk),
    },
  ],
  targets: [
    { kind: 'ratio', case: 'ByteStore#write', vs: 'Uint8Array#set (raw)', atLeast: 0.8 },
    {
      kind: 'ratio',
      case: 'ByteStore#write across an edge',
      vs: 'Uint8Array#set ×2 (raw)',
      atLeast: 0.8,
    },
    {
      kind: 'limit',
      case: 'ByteStore#write',
      metric: 'bytesCopiedPerOp',
      atLeast: CHUNK,
      atMost: CHUNK,
      label: 'a write copies the chunk exactly once, and the counters say so (1 MiB/op)',
    },
  ],
});
