import { Buffer } from 'node:buffer';
import { connect, type Socket } from 'node:net';
import { ByteRing } from 'buffer-view';
import { connectInto, ringTarget } from 'buffer-view/node';
import { defineBenchmark } from '../harness/define';
import type { BenchCase } from '../harness/types';
import { LoopbackPeer } from './loopback-peer';
import { KiB, MiB } from './util';

/** Bytes the peer pushes per request, and so per operation. */
const UNIT = MiB;
/** The ring each case ingests into: a few seconds of a high-bitrate live stream. */
const RING = 32 * MiB;
const REQUEST = Buffer.from([1]);

interface Ingest {
  /** Asks the peer for one more unit. */
  socket: Socket;
  /** Bytes landed so far. */
  received: number;
  /** Bytes the running operation waits for. */
  expected: number;
  wake: (() => void) | null;
  /** Settles when the connection goes away (ours: the running `receive()`). */
  done: Promise<unknown>;
}

interface State {
  peer: LoopbackPeer;
  port: number;
  ingests: Map<string, Ingest>;
}

function landed(ingest: Ingest, total: number): void {
  ingest.received = total;
  if (ingest.wake !== null && total >= ingest.expected) {
    const wake = ingest.wake;
    ingest.wake = null;
    wake();
  }
}

/**
 * One operation: ask for one more MiB, then wait for the MiB asked for one
 * operation earlier, so one is always on its way and the receiver never
 * idles through a request's round trip: a continuous push, as from a live
 * encoder. (Each case runs in its own process, so the MiB still in flight
 * when its slice ends lands there, not in the next case's figures.)
 */
function ingestOne(state: State, name: string): Promise<void> {
  const ingest = state.ingests.get(name);
  if (ingest === undefined) throw new Error(`socket-ingest: no connection for '${name}'`);
  ingest.socket.write(REQUEST);
  ingest.expected += UNIT;
  if (ingest.received >= ingest.expected) return Promise.resolve();
  return new Promise((resolve) => {
    ingest.wake = resolve;
  });
}

type Connect = (state: State) => Promise<
  Omit<Ingest, 'received' | 'expected' | 'wake'> & {
    /** Calls `landed` with the running total as bytes arrive. */
    watch(onTotal: (total: number) => void): void;
  }
>;

/** Ours: `connectInto` + `receive(ringTarget(ring))`: the kernel reads straight into ring memory. */
const readInto: Connect = async (s) => {
  const ring = new ByteRing({ capacity: RING });
  const rx = connectInto({ host: '127.0.0.1', port: s.port });
  const done = rx.receive(ringTarget(ring)).catch(() => {});
  await new Promise<void>((resolve, reject) => {
    rx.socket.once('connect', resolve).once('error', reject);
  });
  return { socket: rx.socket, done, watch: (on) => ring.onWrite(on) };
};

/** Peer: a plain `net.Socket`; each `'data'` chunk (a fresh Buffer) is copied into the ring. */
const dataEvents: Connect = async (s) => {
  const ring = new ByteRing({ capacity: RING });
  const socket = connect({ host: '127.0.0.1', port: s.port });
  socket.on('data', (chunk: Buffer) => ring.write(chunk));
  const done = new Promise((resolve) => socket.once('close', resolve));
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve).once('error', reject);
  });
  return { socket, done, watch: (on) => ring.onWrite(on) };
};

/** Floor: `onread` into one reused 64 KiB buffer, bytes thrown away (no ring). */
const discard: Connect = async (s) => {
  let total = 0;
  let notify: (total: number) => void = () => {};
  const socket = connect({
    host: '127.0.0.1',
    port: s.port,
    onread: {
      buffer: Buffer.allocUnsafeSlow(64 * KiB),
      callback: (n: number) => {
        total += n;
        notify(total);
        return true;
      },
    },
  });
  const done = new Promise((resolve) => socket.once('close', resolve));
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve).once('error', reject);
  });
  return {
    socket,
    done,
    watch: (on) => {
      notify = on;
    },
  };
};

function ingestCase(
  name: string,
  role: BenchCase<State>['role'],
  open: Connect,
  description: string,
  extra: Partial<BenchCase<State>> = {},
): BenchCase<State> {
  return {
    name,
    role,
    description,
    // Own process: own copy counters, and no other case's bytes arriving mid-slice.
    isolate: true,
    ...extra,
    setup: async (s) => {
      const { socket, done, watch } = await open(s);
      socket.setNoDelay(true);
      const ingest: Ingest = { socket, received: 0, expected: 0, wake: null, done };
      watch((total) => landed(ingest, total));
      s.ingests.set(name, ingest);
      // The first MiB goes out now: from here on one is always in flight.
      socket.write(REQUEST);
    },
    teardown: async (s) => {
      const ingest = s.ingests.get(name);
      s.ingests.delete(name);
      ingest?.socket.destroy();
      await ingest?.done;
    },
    run: (s) => ingestOne(s, name),
  };
}

/**
 * Live ingest: a peer process pushes bytes over loopback TCP and the
 * measured process lands them in a `ByteRing`, read straight into ring
 * memory (`onread`) against `'data'` events plus a copy.
 */
export const socketIngest = defineBenchmark<State>({
  name: 'socket-ingest',
  summary: 'socket bytes into a ByteRing: read-into (onread) vs data events plus a copy',
  description:
    'Live ingest over loopback TCP: a peer process (its own core) pushes 1 MiB of random bytes per request and the ' +
    'measured process lands them in a 32 MiB `ByteRing`. Ours reads straight into ring memory: ' +
    '`connectInto({ host, port }).receive(ringTarget(ring))`, so the kernel fills `ring.reserve()`d regions (`onread`). ' +
    "The peer is what users write today: a `net.Socket` whose `'data'` chunks (a fresh Buffer per read) are copied in " +
    'with `ring.write(chunk)`. The floor reads with `onread` into one reused 64 KiB buffer and keeps nothing. One ' +
    'operation asks for one more MiB and waits for the MiB asked for one operation earlier, so the push is continuous ' +
    'as from a live encoder. Each case runs in its own process (own copy counters; the MiB in flight when its slice ' +
    'ends lands there) with its own pusher process; the rings are non-blocking with no reader (the writer laps ' +
    'itself), so this measures ingest alone. MiB/s received.',
  unit: 'MiB/s',
  bytesPerOp: UNIT,
  reference: "'data' events + ring.write",
  moduleUrl: import.meta.url,
  setup: async () => {
    const peer = await LoopbackPeer.start();
    const port = await peer.serve(UNIT);
    return { peer, port, ingests: new Map() };
  },
  teardown: async (s) => {
    for (const ingest of s.ingests.values()) ingest.socket.destroy();
    s.ingests.clear();
    await s.peer.close();
  },
  cases: [
    ingestCase(
      'connectInto + receive(ring)',
      'ours',
      readInto,
      '`connectInto()` + `receive(ringTarget(ring))`: each read lands in a 64 KiB `ring.reserve()` and is published with `commit()`',
    ),
    ingestCase(
      "'data' events + ring.write",
      'peer',
      dataEvents,
      "`socket.on('data', (chunk) => ring.write(chunk))`: Node allocates a Buffer per read, the ring copies it (counted)",
      // ring.write() is buffer-view's own copy, so the counters see it.
      { countCopies: true },
    ),
    ingestCase(
      'onread, discard (floor)',
      'baseline',
      discard,
      '`onread` into one reused 64 KiB buffer, nothing kept: the most a receiver in Node can do',
    ),
  ],
  targets: [
    {
      kind: 'ratio',
      case: 'connectInto + receive(ring)',
      vs: "'data' events + ring.write",
      atLeast: 1.5,
    },
  ],
});
