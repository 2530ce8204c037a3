import { Buffer } from 'node:buffer';
import { once } from 'node:events';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { defineBenchmark } from '../harness/define';
import { KiB, MiB, randomBytes } from './util';

const CHUNK = MiB;
const READ_BUFFER = 64 * KiB;

interface Pair {
  sender: Socket;
  receiver: Socket;
  received: number;
  wanted: number;
  done: (() => void) | null;
}

interface State {
  server: Server;
  port: number;
  chunk: Buffer;
  pairs: Map<string, Pair>;
  /** Every socket opened, so teardown can close them all and `server.close()` cannot wait forever. */
  sockets: Set<Socket>;
}

function delivered(pair: Pair, n: number): void {
  pair.received += n;
  if (pair.done !== null && pair.received >= pair.wanted) {
    const done = pair.done;
    pair.done = null;
    done();
  }
}

/** Connects a receiver to the server and pairs it with the accepted (sending) socket. */
async function openPair(state: State, name: string, withOnread: boolean): Promise<void> {
  const accepted = once(state.server, 'connection') as Promise<[Socket]>;
  const pair = { received: 0, wanted: 0, done: null } as unknown as Pair;
  const receiver = withOnread
    ? connect({
        port: state.port,
        host: '127.0.0.1',
        onread: {
          buffer: Buffer.allocUnsafe(READ_BUFFER),
          callback: (n: number) => {
            delivered(pair, n);
            return true;
          },
        },
      })
    : connect({ port: state.port, host: '127.0.0.1' }).on('data', (chunk: Buffer) =>
        delivered(pair, chunk.length),
      );
  state.sockets.add(receiver);
  await once(receiver, 'connect');
  const [sender] = await accepted;
  state.sockets.add(sender);
  if (state.pairs.has(name)) throw new Error(`loopback: '${name}' is already connected`);
  sender.setNoDelay(true);
  pair.sender = sender;
  pair.receiver = receiver;
  state.pairs.set(name, pair);
}

function closePair(state: State, name: string): void {
  const pair = state.pairs.get(name);
  pair?.sender.destroy();
  pair?.receiver.destroy();
  state.pairs.delete(name);
}

/** One operation: send 1 MiB and resolve once the receiver has all of it. */
function sendAndReceive(state: State, name: string): Promise<void> {
  const pair = state.pairs.get(name);
  if (pair === undefined) throw new Error(`loopback: no connection for '${name}'`);
  return new Promise((resolve) => {
    pair.wanted = pair.received + CHUNK;
    pair.done = resolve;
    pair.sender.write(state.chunk);
  });
}

function socketCase(name: string, withOnread: boolean, description: string, isolate = false) {
  return {
    name,
    role: 'baseline' as const,
    description,
    isolate,
    setup: (s: State) => openPair(s, name, withOnread),
    teardown: (s: State) => closePair(s, name),
    run: (s: State) => sendAndReceive(s, name),
  };
}

/**
 * The harness's async self-test, and the floor later socket benchmarks
 * stand on: how fast plain Node moves 1 MiB over a loopback TCP socket.
 */
export const loopback = defineBenchmark<State>({
  name: 'loopback',
  summary: 'harness self-test: 1 MiB over loopback TCP, data events vs onread, one case in a child',
  description:
    'Harness self-test for async and isolated cases, and the floor for the socket benchmarks to come: one operation writes ' +
    '1 MiB to a loopback TCP socket and resolves when the other end has received all of it, read with `data` events ' +
    "(a fresh Buffer per read) or with `net.connect`'s `onread` option into one reused 64 KiB buffer (Node's `recv_into`). " +
    'The third case runs in its own child process, alternating with the others. MiB/s.',
  unit: 'MiB/s',
  bytesPerOp: CHUNK,
  reference: "'data' events",
  moduleUrl: import.meta.url,
  setup: async () => {
    const server = createServer();
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const address = server.address();
    if (address === null || typeof address === 'string')
      throw new Error('loopback: no TCP address');
    return {
      server,
      port: address.port,
      chunk: Buffer.from(randomBytes(CHUNK)),
      pairs: new Map(),
      sockets: new Set(),
    };
  },
  teardown: async (s) => {
    for (const socket of s.sockets) socket.destroy();
    s.pairs.clear();
    s.server.close();
    await once(s.server, 'close');
  },
  cases: [
    socketCase("'data' events", false, "`socket.on('data')`: Node allocates a Buffer per read"),
    socketCase(
      'onread, reused buffer',
      true,
      '`net.connect({ onread: { buffer, callback } })`: reads land in one 64 KiB buffer',
    ),
    socketCase(
      "'data' events, own process",
      false,
      'the first case again, in a child process of its own',
      true,
    ),
  ],
});
