/**
 * Entry of the loopback peer process (see loopback-peer.ts): the other end of
 * the socket benchmarks, in a process of its own so its work runs on the
 * other core and never in the measured process. Commands arrive over IPC:
 *
 * - `serve`: listen on 127.0.0.1:0; every byte a client sends asks for
 *   `unit` more bytes, written back at once (a live source pushing data).
 * - `discard`: connect to a port and throw away whatever arrives, with
 *   `onread` into one reused buffer (the cheapest receiver Node has).
 */
import { randomFillSync } from 'node:crypto';
import { once } from 'node:events';
import { type AddressInfo, connect, createServer, type Socket } from 'node:net';
import type { PeerReply, PeerRequest } from './loopback-peer';

const sockets = new Set<Socket>();

function reply(message: PeerReply): void {
  process.send?.(message);
}

async function serve(unit: number): Promise<number> {
  const payload = randomFillSync(Buffer.allocUnsafeSlow(unit));
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.setNoDelay(true);
    socket.on('error', () => socket.destroy());
    socket.on('close', () => sockets.delete(socket));
    socket.on('data', (requests: Buffer) => {
      for (let i = 0; i < requests.length; i++) socket.write(payload);
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return (server.address() as AddressInfo).port;
}

async function discard(port: number): Promise<number> {
  const scratch = Buffer.allocUnsafeSlow(64 * 1024);
  const socket = connect({
    host: '127.0.0.1',
    port,
    onread: { buffer: scratch, callback: () => true },
  });
  sockets.add(socket);
  socket.on('error', () => socket.destroy());
  socket.on('close', () => sockets.delete(socket));
  await once(socket, 'connect');
  return socket.localPort as number;
}

process.on('message', (request: PeerRequest) => {
  const answer =
    request.type === 'serve'
      ? serve(request.unit).then((port) => ({ id: request.id, port }))
      : discard(request.port).then((localPort) => ({ id: request.id, port: localPort }));
  answer.then(reply, (error: unknown) =>
    reply({ id: request.id, error: error instanceof Error ? error.message : String(error) }),
  );
});

// The parent went away (or closed us): leave no process behind.
process.on('disconnect', () => {
  for (const socket of sockets) socket.destroy();
  process.exit(0);
});

reply({ id: 0, port: 0 });
