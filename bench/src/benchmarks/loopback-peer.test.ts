import { once } from 'node:events';
import { type AddressInfo, connect, createServer, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LoopbackPeer } from './loopback-peer';

describe('LoopbackPeer', () => {
  let peer: LoopbackPeer;

  beforeAll(async () => {
    peer = await LoopbackPeer.start();
  });

  afterAll(async () => {
    await peer.close();
  });

  it('serves `unit` bytes for every request byte', async () => {
    const port = await peer.serve(1000);
    const socket = connect({ host: '127.0.0.1', port });
    await once(socket, 'connect');
    let received = 0;
    const all = new Promise<void>((resolve) => {
      socket.on('data', (chunk: Buffer) => {
        received += chunk.length;
        if (received >= 3000) resolve();
      });
    });
    socket.write(Buffer.from([1, 1, 1]));
    await all;
    expect(received).toBe(3000);
    socket.destroy();
  });

  it('connects a client that reads and discards, reporting its local port', async () => {
    const server = createServer();
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const accepted = once(server, 'connection') as Promise<[Socket]>;
    const localPort = await peer.discard((server.address() as AddressInfo).port);
    const [socket] = await accepted;
    expect(socket.remotePort).toBe(localPort);
    // A megabyte goes through: the peer keeps reading.
    const written = new Promise<void>((resolve, reject) =>
      socket.write(Buffer.alloc(2 ** 20), (error) => (error ? reject(error) : resolve())),
    );
    await written;
    socket.destroy();
    server.close();
    await once(server, 'close');
  });

  it('closes, and a closed peer answers no more requests', async () => {
    const other = await LoopbackPeer.start();
    await other.close();
    await other.close();
    await expect(other.serve(10)).rejects.toThrow();
  });
});
