import { Buffer } from 'node:buffer';
import { once } from 'node:events';
import { createServer, type Server, type Socket } from 'node:net';
import { ByteStore, type ByteView } from 'buffer-view';
import { writeGather } from 'buffer-view/node';
import { defineBenchmark } from '../harness/define';
import type { BenchCase } from '../harness/types';
import { LoopbackPeer } from './loopback-peer';
import { KiB, MiB, picker, randomBytes, randomInt, seededRandom } from './util';

/** Segments as a socket hands them over: the store was filled by 64 KiB reads. */
const SEGMENT = 64 * KiB;
const STORE_SIZE = 256 * MiB;
const RANGE = MiB;
const RANGES = 1000;

interface State {
  store: ByteStore;
  offsets: number[];
  peer: LoopbackPeer;
  server: Server;
  port: number;
  /** The accepted (sending) socket of each case. */
  sockets: Map<string, Socket>;
}

/** Honours backpressure the usual way: wait for `'drain'` when `write()` said so. */
async function drained(socket: Socket, ok: boolean): Promise<void> {
  if (!ok) await once(socket, 'drain');
}

function socketOf(s: State, name: string): Socket {
  const socket = s.sockets.get(name);
  if (socket === undefined) throw new Error(`gather-write: no connection for '${name}'`);
  return socket;
}

function writeCase(
  name: string,
  role: BenchCase<State>['role'],
  description: string,
  write: (socket: Socket, range: ByteView) => boolean,
  extra: Partial<BenchCase<State>> = {},
): BenchCase<State> {
  const next = picker();
  return {
    name,
    role,
    description,
    ...extra,
    setup: async (s) => {
      // The peer process connects a client that discards everything; its accepted socket is ours to write to.
      const accepted = once(s.server, 'connection') as Promise<[Socket]>;
      const port = await s.peer.discard(s.port);
      const [socket] = await accepted;
      if (socket.remotePort !== port) throw new Error('gather-write: another client connected');
      s.sockets.set(name, socket);
    },
    teardown: (s) => {
      s.sockets.get(name)?.destroy();
      s.sockets.delete(name);
    },
    run: (s) => {
      const socket = socketOf(s, name);
      return drained(socket, write(socket, s.store.viewAt(next(s.offsets), RANGE)));
    },
  };
}

/**
 * 1 MiB ranges of a store made of 64 KiB segments, written to a socket with
 * one gathered `writev` against joining them first.
 */
export const gatherWrite = defineBenchmark<State>({
  name: 'gather-write',
  summary:
    '1 MiB ranges of a 64 KiB-segmented store to a socket: writeGather vs Buffer.concat + write',
  description:
    'Serving ranges of a segmented cache: a 256 MiB `ByteStore` made of 64 KiB segments (as filled by socket reads, ' +
    '`ByteStore.from(chunks)`, no copy), 1,000 random 1 MiB ranges (seeded; each spans 17 segments, 16 when aligned) ' +
    'written in turn to a loopback TCP socket whose other end, in a peer process, discards everything (`onread` into ' +
    "one reused buffer). Ours hands the range's segments to the socket as one corked `writev`: " +
    '`writeGather(socket, store.viewAt(offset, 1 MiB))`. The peer joins them first, ' +
    '`socket.write(Buffer.concat(view.toSegments()))`; the baseline writes the segments one by one without `cork()`. ' +
    "Every case waits for `'drain'` when `write()` returns `false`, as a server honouring backpressure does. MiB/s written.",
  unit: 'MiB/s',
  bytesPerOp: RANGE,
  reference: 'Buffer.concat + socket.write',
  moduleUrl: import.meta.url,
  setup: async () => {
    const chunks = Array.from({ length: STORE_SIZE / SEGMENT }, () => randomBytes(SEGMENT));
    const store = ByteStore.from(chunks);
    const random = seededRandom(0x6a7e);
    const offsets = Array.from({ length: RANGES }, () => randomInt(random, STORE_SIZE - RANGE + 1));
    const probe = store.viewAt(offsets[0] as number, RANGE);
    if (probe.toSegments().length < 16)
      throw new Error('gather-write: a range should span segments');
    const peer = await LoopbackPeer.start();
    const server = createServer();
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const address = server.address();
    if (address === null || typeof address === 'string') throw new Error('gather-write: no port');
    return { store, offsets, peer, server, port: address.port, sockets: new Map() };
  },
  teardown: async (s) => {
    for (const socket of s.sockets.values()) socket.destroy();
    s.sockets.clear();
    await s.peer.close();
    s.server.close();
    await once(s.server, 'close');
  },
  cases: [
    writeCase(
      'writeGather',
      'ours',
      '`writeGather(socket, view)`: every segment is its own chunk inside `cork()`/`uncork()`, so Node sends them with one `writev`',
      (socket, range) => writeGather(socket, range),
    ),
    writeCase(
      'Buffer.concat + socket.write',
      'peer',
      '`socket.write(Buffer.concat(view.toSegments()))`: a fresh 1 MiB Buffer per range, then one write',
      (socket, range) => socket.write(Buffer.concat(range.toSegments(), RANGE)),
      { declaredCopyBytesPerOp: RANGE },
    ),
    writeCase(
      'socket.write per segment, no cork',
      'baseline',
      'each segment written on its own, no `cork()`: zero-copy too, but one write request (and syscall) per segment',
      (socket, range) => {
        let ok = true;
        for (const segment of range.toSegments()) ok = socket.write(segment);
        return ok;
      },
      { declaredCopyBytesPerOp: 0 },
    ),
  ],
  targets: [
    { kind: 'ratio', case: 'writeGather', vs: 'Buffer.concat + socket.write', atLeast: 1.2 },
    {
      kind: 'limit',
      case: 'writeGather',
      metric: 'bytesCopiedPerOp',
      atMost: 0,
      label: 'writeGather copies 0 bytes (buffer-view copy counters)',
    },
  ],
});
