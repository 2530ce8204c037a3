import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { type AddressInfo, createServer, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { ByteRing } from './byte-ring';
import { ByteStore } from './byte-store';
import { ByteView } from './byte-view';
import { copyStats, resetCopyStats } from './copy-stats';
import { InvalidArgumentError, TransferError, UnexpectedEofError } from './errors';
import { readStreamInto } from './read-stream.node.ts';
import { type ReadTarget, ringTarget } from './read-target.node.ts';
import { connectInto, type SocketReceiver } from './socket-receiver.node.ts';

const servers: Server[] = [];
const serverSockets = new Set<Socket>();
const receivers: SocketReceiver[] = [];

afterEach(async () => {
  for (const socket of serverSockets) socket.destroy();
  serverSockets.clear();
  for (const rx of receivers.splice(0)) rx.socket.destroy();
  await Promise.all(
    servers.splice(0).map((server) => {
      return new Promise((resolve) => server.close(resolve));
    }),
  );
});

/** A server on 127.0.0.1:0 that runs `onConnection` for each client. */
async function serve(onConnection: (socket: Socket) => void): Promise<number> {
  const server = createServer(onConnection);
  servers.push(server);
  server.on('connection', (socket) => serverSockets.add(socket));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return (server.address() as AddressInfo).port;
}

function connectTo(port: number, spillSize?: number): SocketReceiver {
  const rx = connectInto({
    host: '127.0.0.1',
    port,
    ...(spillSize === undefined ? {} : { spillSize }),
  });
  receivers.push(rx);
  return rx;
}

/** Wraps a target to record every region handed out (where the kernel writes) and every commit. */
function spy(target: ReadTarget): ReadTarget & { buffers: Set<ArrayBufferLike>; commits: number } {
  const buffers = new Set<ArrayBufferLike>();
  const spied = {
    buffers,
    commits: 0,
    region() {
      const region = target.region();
      if (region.length > 0) buffers.add(region.buffer);
      return region;
    },
    commit(n: number) {
      spied.commits++;
      return target.commit(n);
    },
    ...(target.ready === undefined
      ? {}
      : { ready: (signal?: AbortSignal) => target.ready!(signal) }),
  };
  return spied;
}

describe('connectInto / SocketReceiver', () => {
  it('receives length-prefixed messages straight into fixed regions, then sees the end', async () => {
    const body = randomBytes(300_000);
    const port = await serve((socket) => {
      const header = Buffer.alloc(8);
      header.writeUInt32BE(body.length, 4);
      socket.end(Buffer.concat([header, body]));
    });
    const rx = connectTo(port);
    const header = new Uint8Array(8);
    expect(await rx.receive(header, { exact: true })).toBe(8);
    const length = new DataView(header.buffer).getUint32(4);
    expect(length).toBe(body.length);
    const store = ByteStore.alloc(length, { segmentSize: 4096 });
    expect(await rx.receive(store.view(), { exact: true })).toBe(length);
    expect(store.bytes.equals(body)).toBe(true);
    expect(await rx.receive(new Uint8Array(10))).toBe(0);
    expect(rx.ended).toBe(true);
    expect(rx.bytesReceived).toBe(8 + body.length);
  });

  it('delivers spilled bytes to the next receive without losing or reordering any', async () => {
    const data = randomBytes(100);
    const port = await serve((socket) => socket.end(data));
    const rx = connectTo(port, 64);
    // Give the whole message time to arrive: the first read lands in the 64-byte spill.
    await new Promise((r) => setTimeout(r, 20));
    const a = new Uint8Array(10);
    const b = new Uint8Array(85);
    const c = new Uint8Array(10);
    expect(await rx.receive(a)).toBe(10);
    expect(await rx.receive(b)).toBe(85);
    expect(await rx.receive(c)).toBe(5);
    expect(Buffer.concat([a, b, c.subarray(0, 5)]).equals(data)).toBe(true);
  });

  it('streams 64 MiB into a wrapping ring with no allocation and no copy per read', async () => {
    const pattern = randomBytes(1 << 20);
    const total = 64 * pattern.length;
    const port = await serve(async (socket) => {
      for (let i = 0; i < 64; i++) {
        if (!socket.write(pattern)) await once(socket, 'drain');
      }
      socket.end();
    });
    const ring = new ByteRing({ capacity: 3 * 2 ** 20 + 12345 }); // not a multiple of the read size
    const reader = ring.reader({ start: 'oldest', blocking: true });
    let checked = 0;
    let mismatch = -1;
    ring.onWrite(() => {
      const view = reader.read();
      view.forEachSegment((bytes) => {
        for (let at = 0; at < bytes.length; ) {
          const p = (checked + at) % pattern.length;
          const n = Math.min(bytes.length - at, pattern.length - p);
          if (Buffer.compare(bytes.subarray(at, at + n), pattern.subarray(p, p + n)) !== 0)
            mismatch = checked + at;
          at += n;
        }
      });
      checked += view.length;
      reader.release();
    });

    resetCopyStats();
    const rx = connectTo(port);
    const target = spy(ringTarget(ring));
    expect(await rx.receive(target)).toBe(total);

    expect(mismatch).toBe(-1);
    expect(checked).toBe(total);
    expect(ring.writeOffset).toBe(total);
    // Every read landed in the ring's own memory...
    const ringMemory = ring.reader({ start: 'oldest' }).read().toSegments()[0]?.buffer;
    expect([...target.buffers]).toEqual([ringMemory]);
    expect(target.commits).toBeGreaterThan(total / 65536 - 1);
    // ...and the only allocation was the receiver's spill; at most one spill's worth was copied.
    const stats = copyStats();
    expect(stats.allocations).toBe(1);
    expect(stats.bytesAllocated).toBe(16384);
    expect(stats.bytesCopied).toBeLessThanOrEqual(16384);
  });

  it('pauses while blocking readers hold the ring full and resumes when they release', async () => {
    const data = randomBytes(2 << 20);
    const port = await serve((socket) => socket.end(data));
    const ring = new ByteRing({ capacity: 100_000 });
    const reader = ring.reader({ start: 'oldest', blocking: true });
    const got: Uint8Array[] = [];
    let waits = 0;
    const target = ringTarget(ring, {
      maxRead: 30_000,
      ready: async () => {
        waits++;
        // A slow consumer: drain the ring a little later.
        await new Promise((r) => setTimeout(r, 2));
        got.push(reader.read().copy());
        reader.release();
      },
    });
    const rx = connectTo(port, 1000);
    resetCopyStats();
    const n = await rx.receive(target);
    got.push(reader.read().copy());
    expect(n).toBe(data.length);
    expect(waits).toBeGreaterThan(10);
    expect(Buffer.concat(got).equals(data)).toBe(true);
    // Only the spill reads after each pause were copied by the receiver (read().copy() counts the rest).
    expect(copyStats().bytesCopied - data.length).toBeLessThanOrEqual(1000 * (waits + 1));
  });

  it('receives into a ByteStore until the end, leaving exactly the bytes received', async () => {
    const data = randomBytes(1_000_003);
    const port = await serve((socket) => socket.end(data));
    const store = ByteStore.from(new TextEncoder().encode('prefix:'));
    const rx = connectTo(port);
    resetCopyStats();
    expect(await rx.receive(store)).toBe(data.length);
    expect(store.length).toBe(7 + data.length);
    expect(store.view(7).equals(data)).toBe(true);
    expect(store.view(0, 7).toText()).toBe('prefix:');
    expect(copyStats().bytesCopied).toBeLessThanOrEqual(16384);
  });

  it('rejects with a TransferError when the peer resets mid-transfer, keeping what arrived', async () => {
    const data = randomBytes(100_000);
    const port = await serve((socket) => {
      socket.write(data, () => setTimeout(() => socket.resetAndDestroy(), 20));
    });
    const rx = connectTo(port);
    const region = new Uint8Array(1 << 20);
    const err = await rx.receive(region).catch((e: unknown) => e);
    expect(TransferError.isInstance(err)).toBe(true);
    const transfer = err as TransferError;
    expect(transfer.operation).toBe('read');
    expect(transfer.expected).toBe(1 << 20);
    expect(transfer.cause).toMatchObject({ code: 'ECONNRESET' });
    expect(transfer.transferred).toBe(data.length);
    expect(Buffer.from(region.subarray(0, data.length)).equals(data)).toBe(true);
    await expect(rx.receive(new Uint8Array(1))).rejects.toMatchObject({
      code: 'BUFFER_VIEW_TRANSFER_FAILED',
    });
  });

  it('reports a clean early end as UnexpectedEofError in exact mode and a short count otherwise', async () => {
    const data = randomBytes(5000);
    const port = await serve((socket) => socket.end(data));
    const exact = connectTo(port);
    const err = await exact.receive(new Uint8Array(8000), { exact: true }).catch((e: unknown) => e);
    expect(UnexpectedEofError.isInstance(err)).toBe(true);
    expect(err).toMatchObject({ expected: 8000, received: 5000 });
    const loose = connectTo(port);
    const region = ByteView.from([new Uint8Array(3000), new Uint8Array(5000)]);
    expect(await loose.receive(region)).toBe(5000);
    expect(region.view(0, 5000).equals(data)).toBe(true);
  });

  it('aborts a waiting receive with the reason and destroys the socket', async () => {
    const port = await serve(() => {}); // never sends
    const rx = connectTo(port);
    const controller = new AbortController();
    const pending = rx.receive(new Uint8Array(10), { signal: controller.signal });
    setTimeout(() => controller.abort(new Error('give up')), 10);
    await expect(pending).rejects.toThrow('give up');
    await once(rx.socket, 'close');
    expect(rx.socket.destroyed).toBe(true);
    await expect(
      rx.receive(new Uint8Array(1), { signal: AbortSignal.abort() }),
    ).rejects.toMatchObject({
      name: 'AbortError',
    });
  });

  it('refuses overlapping receives and exact receives into open-ended targets', async () => {
    const port = await serve(() => {});
    const rx = connectTo(port);
    await expect(rx.receive(new ByteStore(), { exact: true })).rejects.toThrow('fixed-size target');
    const first = rx.receive(new Uint8Array(4));
    await expect(rx.receive(new Uint8Array(4))).rejects.toSatisfy(InvalidArgumentError.isInstance);
    rx.socket.destroy();
    await expect(first).rejects.toSatisfy(TransferError.isInstance);
  });
});

describe('server-accepted sockets', () => {
  it('ignore onread (Node only honours it for client sockets), so they use readStreamInto', async () => {
    const data = randomBytes(200_000);
    let onreadCalls = 0;
    let resolveServer: (n: number) => void = () => {};
    const received = new Promise<number>((r) => {
      resolveServer = r;
    });
    const region = new Uint8Array(data.length);
    const server = createServer(
      { onread: { buffer: new Uint8Array(1024), callback: () => onreadCalls++ } } as never,
      (socket) => {
        readStreamInto(socket, region, { exact: true }).then(resolveServer);
      },
    );
    servers.push(server);
    server.on('connection', (socket) => serverSockets.add(socket));
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const rx = connectTo((server.address() as AddressInfo).port);
    rx.socket.end(data);
    resetCopyStats();
    expect(await received).toBe(data.length);
    expect(Buffer.from(region).equals(data)).toBe(true);
    expect(onreadCalls).toBe(0);
    // The fallback is one counted copy per byte.
    expect(copyStats().bytesCopied).toBe(data.length);
  });
});
