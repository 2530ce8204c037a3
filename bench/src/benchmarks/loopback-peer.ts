import { type ChildProcess, fork } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { childExecArgv } from '../harness/child';

/** Parent → peer. */
export type PeerRequest =
  | { id: number; type: 'serve'; unit: number }
  | { id: number; type: 'discard'; port: number };

/** Peer → parent: a port, or why it failed. `id` 0 says the peer is up. */
export type PeerReply = { id: number; port: number } | { id: number; error: string };

/**
 * The far end of a socket benchmark, in a child process of its own (so it
 * runs on the other core and none of its work lands in the measured
 * process): a server that pushes `unit` bytes per request byte, or clients
 * that discard what they receive. See loopback-peer-entry.ts.
 */
export class LoopbackPeer {
  readonly #child: ChildProcess;
  readonly #pending = new Map<number, { resolve(port: number): void; reject(e: Error): void }>();
  #next = 1;

  private constructor(child: ChildProcess) {
    this.#child = child;
    child.on('message', (message: PeerReply) => {
      const waiter = this.#pending.get(message.id);
      this.#pending.delete(message.id);
      if ('error' in message) waiter?.reject(new Error(`loopback peer: ${message.error}`));
      else waiter?.resolve(message.port);
    });
    child.once('exit', (code, signal) => {
      for (const waiter of this.#pending.values()) {
        waiter.reject(new Error(`loopback peer exited (code ${code}, signal ${signal})`));
      }
      this.#pending.clear();
    });
  }

  /** Starts the peer process and waits until it is up. */
  static async start(): Promise<LoopbackPeer> {
    const entry = fileURLToPath(new URL('./loopback-peer-entry.ts', import.meta.url));
    const child = fork(entry, [], {
      execArgv: childExecArgv(),
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    const peer = new LoopbackPeer(child);
    await peer.#ask(0, () => {});
    return peer;
  }

  /** A server in the peer pushing `unit` bytes for every byte a client sends; resolves with its port. */
  serve(unit: number): Promise<number> {
    const id = this.#next++;
    return this.#ask(id, () => this.#child.send({ id, type: 'serve', unit } satisfies PeerRequest));
  }

  /** A client in the peer that connects to `port` and discards everything; resolves with its local port. */
  discard(port: number): Promise<number> {
    const id = this.#next++;
    return this.#ask(id, () =>
      this.#child.send({ id, type: 'discard', port } satisfies PeerRequest),
    );
  }

  /** Ends the peer process (its sockets close with it). */
  async close(): Promise<void> {
    const child = this.#child;
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = once(child, 'exit');
    if (child.connected) child.disconnect();
    else child.kill();
    // It exits on disconnect; if it does not within 2 s, it is killed.
    const timer = setTimeout(() => child.kill(), 2000);
    await exited;
    clearTimeout(timer);
  }

  #ask(id: number, send: () => void): Promise<number> {
    if (!this.#child.connected) {
      return Promise.reject(new Error('loopback peer: the peer process is gone'));
    }
    return new Promise<number>((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      send();
    });
  }
}
