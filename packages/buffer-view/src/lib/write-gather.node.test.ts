import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { type AddressInfo, connect, createServer, type Server, type Socket } from 'node:net';
import { Writable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { ByteStore } from './byte-store';
import { ByteView } from './byte-view';
import { copyStats, resetCopyStats } from './copy-stats';
import { TransferError } from './errors';
import { writeGather, writeGatherAsync } from './write-gather.node.ts';

const servers: Server[] = [];
const serverSockets = new Set<Socket>();
const sockets: Socket[] = [];

afterEach(async () => {
  for (const socket of serverSockets) socket.destroy();
  serverSockets.clear();
  for (const socket of sockets.splice(0)) socket.destroy();
  await Promise.all(
    servers.splice(0).map((server) => {
      return new Promise((resolve) => server.close(resolve));
    }),
  );
});

/** A server that collects everything one client sends; resolves with it when the client ends. */
async function sink(): Promise<{
  port: number;
  received: Promise<Buffer>;
  accepted: Promise<Socket>;
}> {
  let accept: (socket: Socket) => void = () => {};
  const accepted = new Promise<Socket>((r) => {
    accept = r;
  });
  const server = createServer((socket) => accept(socket));
  servers.push(server);
  server.on('connection', (socket) => serverSockets.add(socket));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const received = accepted.then(async (socket) => {
    const chunks: Buffer[] = [];
    for await (const chunk of socket) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks);
  });
  received.catch(() => {});
  return { port: (server.address() as AddressInfo).port, received, accepted };
}

async function client(port: number): Promise<Socket> {
  const socket = connect(port, '127.0.0.1');
  sockets.push(socket);
  await once(socket, 'connect');
  return socket;
}

/** A writable that records how many chunks each `_writev` call got (one call = one corked flush). */
function recorder(highWaterMark = 16384): Writable & { batches: number[]; bytes: Buffer[] } {
  const batches: number[] = [];
  const bytes: Buffer[] = [];
  const w = new Writable({
    highWaterMark,
    write(chunk: Buffer, _enc, cb) {
      batches.push(1);
      bytes.push(chunk);
      cb();
    },
    writev(chunks, cb) {
      batches.push(chunks.length);
      for (const { chunk } of chunks) bytes.push(chunk as Buffer);
      cb();
    },
  });
  return Object.assign(w, { batches, bytes });
}

describe('writeGather', () => {
  it('sends a view of 3000 small segments over a real socket intact, copying nothing', async () => {
    const segs = Array.from({ length: 3000 }, (_, i) => randomBytes(1 + (i % 61)));
    const view = ByteView.from(segs);
    expect(view.segmentCount).toBe(3000);
    const { port, received } = await sink();
    const socket = await client(port);
    resetCopyStats();
    expect(await writeGatherAsync(socket, view)).toBe(view.length);
    expect(copyStats()).toMatchObject({ bytesCopied: 0, copies: 0, bytesAllocated: 0 });
    socket.end();
    expect((await received).equals(Buffer.concat(segs))).toBe(true);
  });

  it('hands the stream corked batches of at most 1024 segments', () => {
    const w = recorder(1 << 30);
    const segs = Array.from({ length: 3000 }, (_, i) => Uint8Array.of(i & 255));
    expect(writeGather(w, segs)).toBe(true);
    expect(w.batches).toEqual([1024, 1024, 952]);
    expect(Buffer.concat(w.bytes).equals(Buffer.concat(segs))).toBe(true);
    // The chunks are the caller's memory, not copies.
    expect(w.bytes[5]?.buffer).toBe(segs[5]?.buffer);
  });

  it("returns write()'s backpressure signal, and the stream drains", async () => {
    const w = recorder(10);
    let release: () => void = () => {};
    // A slow destination: the first write does not complete until released.
    w._write = (chunk: Buffer, _enc, cb) => {
      w.bytes.push(chunk);
      release = () => cb();
    };
    w._writev = undefined as never;
    expect(writeGather(w, [new Uint8Array(4), new Uint8Array(4)])).toBe(true);
    expect(writeGather(w, ByteView.from(new Uint8Array(20)))).toBe(false);
    expect(w.writableNeedDrain).toBe(true);
    const drained = once(w, 'drain');
    for (let i = 0; i < 3; i++) {
      release();
      await new Promise((r) => setImmediate(r));
    }
    await drained;
    expect(writeGather(w, [])).toBe(true);
  });

  it('writes a multi-segment store region to a socket and resolves only once flushed', async () => {
    const store = ByteStore.alloc(5 * 2 ** 20, { segmentSize: 65536 });
    store.bytes.forEachSegment((bytes) => {
      bytes.set(randomBytes(bytes.length));
    });
    const view = store.view(123, 5 * 2 ** 20 - 7);
    const { port, received } = await sink();
    const socket = await client(port);
    const done = writeGatherAsync(socket, view);
    expect(socket.writableLength).toBeGreaterThan(0);
    expect(await done).toBe(view.length);
    socket.end();
    expect(view.equals(await received)).toBe(true);
  });

  it('rejects with a TransferError when the peer disconnects mid-transfer', async () => {
    const { port, accepted } = await sink();
    const socket = await client(port);
    const peer = await accepted;
    peer.pause(); // let the kernel buffers fill, then reset
    const segs = Array.from({ length: 256 }, () => new Uint8Array(1 << 20));
    const done = writeGatherAsync(socket, segs);
    setTimeout(() => peer.resetAndDestroy(), 50);
    const err = await done.catch((e: unknown) => e);
    expect(TransferError.isInstance(err)).toBe(true);
    const transfer = err as TransferError;
    expect(transfer.operation).toBe('write');
    expect(transfer.expected).toBe(256 << 20);
    expect(transfer.transferred).toBeLessThan(256 << 20);
    expect(transfer.cause).toBeInstanceOf(Error);
  });

  it('rejects when the stream is already destroyed', async () => {
    const w = recorder();
    w.destroy();
    const err = await writeGatherAsync(w, [new Uint8Array(3)]).catch((e: unknown) => e);
    expect(TransferError.isInstance(err)).toBe(true);
    expect(err).toMatchObject({ transferred: 0, expected: 3 });
    expect(w.bytes).toEqual([]);
    expect(await writeGatherAsync(w, [])).toBe(0);
  });
});
