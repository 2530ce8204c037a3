import { Buffer } from 'node:buffer';
import { randomFillSync } from 'node:crypto';
import { BufferList } from 'bl';
import { ByteStore, ByteView } from 'buffer-view';
import { Uint8ArrayList } from 'uint8arraylist';
import { defineBenchmark } from '../harness/define';
import { KiB, MiB, picker, randomInt, seededRandom } from './util';

const CHUNK = 64 * KiB;
const CHUNKS = 256; // 16 MiB
const SLICE = MiB;
const HAY_CHUNKS = 16; // 1 MiB: uint8arraylist's indexOf reads byte by byte
const NEEDLE = 8;
/** The needle starts 3 bytes before the edge between chunks 14 and 15. */
const NEEDLE_AT = (HAY_CHUNKS - 1) * CHUNK - 3;

const APPEND = 'append one 64 KiB chunk';
const VIEW = 'slice 1 MiB across edges: zero-copy';
const COPY = 'slice 1 MiB across edges: copying';
const SEARCH = 'indexOf, needle across an edge';

interface State {
  chunks: Buffer[];
  store: ByteStore;
  bl: BufferList;
  u8l: Uint8ArrayList;
  offsets: number[];
  needle: Buffer;
  hayView: ByteView;
  hayBl: BufferList;
  hayU8l: Uint8ArrayList;
  hayFlat: Buffer;
}

function randomChunks(n: number): Buffer[] {
  return Array.from({ length: n }, () => randomFillSync(Buffer.allocUnsafeSlow(CHUNK)));
}

const pick = {
  view: picker(),
  bl: picker(),
  u8l: picker(),
  copy: picker(),
  blCopy: picker(),
  u8lCopy: picker(),
};

/** One append per operation onto a list that starts afresh every `CHUNKS` appends, so memory stays flat. */
function appender<L>(create: () => L, add: (list: L, chunk: Buffer) => unknown): (s: State) => L {
  let list = create();
  let i = 0;
  return (s) => {
    if (i === CHUNKS) {
      list = create();
      i = 0;
    }
    add(list, s.chunks[i++] as Buffer);
    return list;
  };
}

function setup(): State {
  const chunks = randomChunks(CHUNKS);
  const random = seededRandom(0xb1);
  const offsets = Array.from({ length: 1024 }, () => randomInt(random, CHUNKS * CHUNK - SLICE));
  const hay = randomChunks(HAY_CHUNKS);
  const needle = randomFillSync(Buffer.alloc(NEEDLE));
  const flat = Buffer.concat(hay);
  needle.copy(flat, NEEDLE_AT);
  // Write the needle into the chunks too, across the edge.
  for (let i = 0; i < NEEDLE; i++) {
    const at = NEEDLE_AT + i;
    (hay[Math.floor(at / CHUNK)] as Buffer)[at % CHUNK] = needle[i] as number;
  }
  const state: State = {
    chunks,
    store: ByteStore.from(chunks),
    bl: new BufferList(chunks),
    u8l: new Uint8ArrayList(...chunks),
    offsets,
    needle,
    hayView: ByteView.from(hay),
    hayBl: new BufferList(hay),
    hayU8l: new Uint8ArrayList(...hay),
    hayFlat: flat,
  };
  check(state);
  return state;
}

/** Every contender must agree before any is timed. */
function check(s: State): void {
  const at = s.offsets[0] as number;
  const expected = Buffer.concat(s.chunks).subarray(at, at + SLICE);
  const slices: [string, Uint8Array | ByteView][] = [
    ['ByteStore#viewAt', s.store.viewAt(at, SLICE)],
    ['bl shallowSlice', s.bl.shallowSlice(at, at + SLICE).slice()],
    ['uint8arraylist sublist', s.u8l.sublist(at, at + SLICE).subarray()],
    ['bl slice', s.bl.slice(at, at + SLICE)],
    ['uint8arraylist subarray', s.u8l.subarray(at, at + SLICE)],
  ];
  for (const [name, got] of slices) {
    if (!ByteView.from(got).equals(expected))
      throw new Error(`bl-compare: ${name} returned other bytes`);
  }
  const found: [string, number][] = [
    ['Buffer#indexOf', s.hayFlat.indexOf(s.needle)],
    ['ByteView#indexOf', s.hayView.indexOf(s.needle)],
    ['bl indexOf', s.hayBl.indexOf(s.needle)],
    ['uint8arraylist indexOf', s.hayU8l.indexOf(s.needle)],
  ];
  for (const [name, index] of found) {
    if (index !== NEEDLE_AT)
      throw new Error(`bl-compare: ${name} found the needle at ${index}, not ${NEEDLE_AT}`);
  }
}

/** `bl` and `uint8arraylist` against ByteStore/ByteView on append, cross-edge slices and search. */
export const blCompare = defineBenchmark<State>({
  name: 'bl-compare',
  summary: 'bl and uint8arraylist vs ByteStore/ByteView: append, cross-edge slice, indexOf',
  description:
    'The buffer lists users reach for, `bl` (BufferList) and `uint8arraylist`, against `ByteStore`/`ByteView` on a list of ' +
    '64 KiB chunks: appending a chunk (ops/s; a fresh list every 256 appends); slicing 1 MiB at random offsets so each slice spans 17 chunks (ops/s), ' +
    "compared like with like: zero-copy results (bl's `shallowSlice`, uint8arraylist's `sublist`, our `viewAt`) in one group " +
    "and copying ones (bl's `slice`, uint8arraylist's `subarray`, which copy when the range spans chunks, and our explicit " +
    '`view.copy()`) in another; and `indexOf` of an 8-byte needle that straddles the edge between the last two of 16 chunks ' +
    '(MiB/s of bytes searched).',
  unit: 'ops/s',
  bytesPerOp: CHUNK,
  reference: 'bl append',
  moduleUrl: import.meta.url,
  setup,
  cases: [
    {
      name: 'ByteStore#append',
      role: 'ours',
      group: APPEND,
      description:
        '`store.append(chunk)`: the chunk becomes a segment (a new store every 256 appends)',
      run: appender(
        () => new ByteStore(),
        (store, chunk) => store.append(chunk),
      ),
    },
    {
      name: 'bl append',
      role: 'peer',
      group: APPEND,
      declaredCopyBytesPerOp: 0,
      description: '`bl.append(chunk)` (a new BufferList every 256 appends)',
      run: appender(
        () => new BufferList(),
        (list, chunk) => list.append(chunk),
      ),
    },
    {
      name: 'uint8arraylist append',
      role: 'peer',
      group: APPEND,
      declaredCopyBytesPerOp: 0,
      description: '`list.append(chunk)` (a new Uint8ArrayList every 256 appends)',
      run: appender(
        () => new Uint8ArrayList(),
        (list, chunk) => list.append(chunk),
      ),
    },
    {
      name: 'Array#push',
      role: 'baseline',
      group: APPEND,
      declaredCopyBytesPerOp: 0,
      description: 'the floor: `array.push(chunk)` (a new array every 256 pushes)',
      run: appender(
        (): Buffer[] => [],
        (list, chunk) => list.push(chunk),
      ),
    },
    {
      name: 'ByteStore#viewAt',
      role: 'ours',
      group: VIEW,
      bytesPerOp: SLICE,
      reference: 'bl shallowSlice',
      description: '`store.viewAt(offset, 1 MiB)`: a zero-copy ByteView over the spanned chunks',
      run: (s) => s.store.viewAt(pick.view(s.offsets), SLICE),
    },
    {
      name: 'bl shallowSlice',
      role: 'peer',
      group: VIEW,
      bytesPerOp: SLICE,
      reference: 'bl shallowSlice',
      declaredCopyBytesPerOp: 0,
      description:
        "`bl.shallowSlice(start, end)`: a new BufferList of the spanned chunks' subarrays (zero-copy)",
      run: (s) => {
        const at = pick.bl(s.offsets);
        return s.bl.shallowSlice(at, at + SLICE);
      },
    },
    {
      name: 'uint8arraylist sublist',
      role: 'peer',
      group: VIEW,
      bytesPerOp: SLICE,
      reference: 'bl shallowSlice',
      declaredCopyBytesPerOp: 0,
      description: '`list.sublist(start, end)`: a new Uint8ArrayList of subarrays (zero-copy)',
      run: (s) => {
        const at = pick.u8l(s.offsets);
        return s.u8l.sublist(at, at + SLICE);
      },
    },
    {
      name: 'ByteView#copy',
      role: 'ours',
      group: COPY,
      bytesPerOp: SLICE,
      reference: 'bl slice',
      description:
        '`store.viewAt(offset, 1 MiB).copy()`: an explicit, counted copy into one Uint8Array',
      run: (s) => s.store.viewAt(pick.copy(s.offsets), SLICE).copy(),
    },
    {
      name: 'bl slice',
      role: 'peer',
      group: COPY,
      bytesPerOp: SLICE,
      reference: 'bl slice',
      declaredCopyBytesPerOp: SLICE,
      description: '`bl.slice(start, end)`: copies into one new Buffer when the range spans chunks',
      run: (s) => {
        const at = pick.blCopy(s.offsets);
        return s.bl.slice(at, at + SLICE);
      },
    },
    {
      name: 'uint8arraylist subarray',
      role: 'peer',
      group: COPY,
      bytesPerOp: SLICE,
      reference: 'bl slice',
      declaredCopyBytesPerOp: SLICE,
      description:
        '`list.subarray(start, end)`: zero-copy within one chunk, a concatenating copy across chunks (as here)',
      run: (s) => {
        const at = pick.u8lCopy(s.offsets);
        return s.u8l.subarray(at, at + SLICE);
      },
    },
    {
      name: 'ByteView#indexOf',
      role: 'ours',
      group: SEARCH,
      unit: 'MiB/s',
      bytesPerOp: NEEDLE_AT + NEEDLE,
      reference: 'bl indexOf',
      description: '`view.indexOf(needle)`: native search per segment, then the edges',
      run: (s) => s.hayView.indexOf(s.needle),
    },
    {
      name: 'bl indexOf',
      role: 'peer',
      group: SEARCH,
      unit: 'MiB/s',
      bytesPerOp: NEEDLE_AT + NEEDLE,
      reference: 'bl indexOf',
      declaredCopyBytesPerOp: 0,
      description:
        '`bl.indexOf(needle)`: native search per chunk, then byte-by-byte `get()` near the edges',
      run: (s) => s.hayBl.indexOf(s.needle),
    },
    {
      name: 'uint8arraylist indexOf',
      role: 'peer',
      group: SEARCH,
      unit: 'MiB/s',
      bytesPerOp: NEEDLE_AT + NEEDLE,
      reference: 'bl indexOf',
      declaredCopyBytesPerOp: 0,
      description:
        '`list.indexOf(needle)`: Boyer-Moore over `get(i)`, which walks the chunk list per byte',
      run: (s) => s.hayU8l.indexOf(s.needle),
    },
    {
      name: 'Buffer#indexOf (contiguous)',
      role: 'baseline',
      group: SEARCH,
      unit: 'MiB/s',
      bytesPerOp: NEEDLE_AT + NEEDLE,
      reference: 'bl indexOf',
      declaredCopyBytesPerOp: 0,
      description:
        'the floor: native search of the same bytes already concatenated into one Buffer',
      run: (s) => s.hayFlat.indexOf(s.needle),
    },
  ],
  targets: [
    {
      kind: 'limit',
      case: 'ByteStore#viewAt',
      metric: 'bytesCopiedPerOp',
      atMost: 0,
      label: 'a cross-edge view copies 0 bytes (buffer-view copy counters)',
    },
    {
      kind: 'limit',
      case: 'ByteStore#append',
      metric: 'bytesCopiedPerOp',
      atMost: 0,
      label: 'appending copies 0 bytes (buffer-view copy counters)',
    },
    {
      kind: 'limit',
      case: 'ByteView#indexOf',
      metric: 'bytesCopiedPerOp',
      atMost: 0,
      label: 'searching across an edge copies 0 bytes (buffer-view copy counters)',
    },
  ],
});
