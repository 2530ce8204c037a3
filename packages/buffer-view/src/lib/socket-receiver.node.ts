import { connect, type IpcNetConnectOpts, type Socket, type TcpNetConnectOpts } from 'node:net';
import { recordAllocation, recordCopy } from './copy-stats';
import { InvalidArgumentError, OutOfRangeError, TransferError, UnexpectedEofError } from './errors';
import { describeCause } from './iovec.node.ts';
import { type ReadTarget, type ReadTargetLike, toReadTarget } from './read-target.node.ts';
import { checkLength } from './validate';

const EMPTY = new Uint8Array(0);

/**
 * Options of {@link connectInto} beyond Node's own connect options.
 *
 * @example
 * ```ts
 * import type { SocketReceiverOptions } from 'buffer-view/node';
 * const options: SocketReceiverOptions = { spillSize: 4096 };
 * ```
 */
export interface SocketReceiverOptions {
  /**
   * Size of the receiver's one spill buffer. The kernel is told where the
   * next read lands *before* anyone knows the next target, so the first read
   * after each pause (before the first `receive()`, between two, or after a
   * full ring) lands here and is copied into the target (counted); every
   * other read lands straight in the target.
   * @default 16384
   */
  spillSize?: number;
}

/**
 * Options of {@link connectInto}: Node's `net.connect()` options (TCP or
 * IPC; any `onread` is replaced by the receiver's own) plus
 * {@link SocketReceiverOptions}.
 *
 * @example
 * ```ts
 * import type { ConnectIntoOptions } from 'buffer-view/node';
 * const options: ConnectIntoOptions = { host: '127.0.0.1', port: 9000, noDelay: true, spillSize: 4096 };
 * ```
 */
export type ConnectIntoOptions = (TcpNetConnectOpts | IpcNetConnectOpts) & SocketReceiverOptions;

/**
 * Options of {@link SocketReceiver.receive}.
 *
 * @example
 * ```ts
 * import type { ReceiveOptions } from 'buffer-view/node';
 * const options: ReceiveOptions = { exact: true, signal: AbortSignal.timeout(10_000) };
 * ```
 */
export interface ReceiveOptions {
  /**
   * Reject with {@link UnexpectedEofError} when the peer ends the connection
   * before a fixed-size target is full. Needs a target with a known size.
   * @default false
   */
  exact?: boolean;
  /**
   * Stops the receive and rejects with `signal.reason`. It also destroys the
   * socket: the kernel may already hold a pointer into the target for the
   * next read, and Node has no way to take it back short of closing.
   * @default undefined (not abortable)
   */
  signal?: AbortSignal;
}

interface Receive {
  readonly target: ReadTarget;
  readonly exact: boolean;
  readonly signal: AbortSignal | undefined;
  readonly onAbort: () => void;
  readonly resolve: (n: number) => void;
  readonly reject: (error: unknown) => void;
  received: number;
  paused: boolean;
}

/**
 * Connects a TCP (or IPC) socket whose reads land straight in memory you
 * choose: Python's `socket.recv_into`. See {@link SocketReceiver}.
 *
 * Only client sockets can do this: Node accepts the `onread` option in
 * `new net.Socket()`/`net.connect()` but not in `net.createServer()`, whose
 * accepted sockets always read into buffers Node allocates. For those, use
 * `readStreamInto()` (one counted copy per byte).
 *
 * @example
 * ```ts
 * import { connectInto } from 'buffer-view/node';
 * const rx = connectInto({ host: '127.0.0.1', port: 9000 });
 * rx.socket.write(request);
 * const header = new Uint8Array(8);
 * await rx.receive(header, { exact: true });
 * ```
 */
export function connectInto(options: ConnectIntoOptions): SocketReceiver {
  return new SocketReceiver(options);
}

/**
 * A socket in Node's `onread` mode: the kernel writes each read straight
 * into the current target's memory (a region, a `ByteStore`'s grown tail, a
 * `ByteRing` reservation) with no buffer allocated or copied per read.
 * Reading only happens during a {@link SocketReceiver.receive}; between
 * receives the socket is paused and unread bytes wait in the kernel (or, at
 * most `spillSize` of them, in the spill buffer). Do not add `'data'` or
 * `'readable'` listeners to {@link SocketReceiver.socket}: in this mode
 * Node delivers no data through them. Writing to it is fine.
 *
 * @example
 * ```ts
 * import { ByteRing } from 'buffer-view';
 * import { connectInto } from 'buffer-view/node';
 * const ring = new ByteRing({ capacity: 32 * 2 ** 20 });
 * const rx = connectInto({ host: 'encoder.local', port: 9000 });
 * const total = await rx.receive(ring); // resolves when the peer closes
 * ```
 */
export class SocketReceiver {
  /**
   * The underlying socket, for writing, timeouts, `end()` and `destroy()`.
   *
   * @example
   * ```ts
   * rx.socket.write('GET /live HTTP/1.1\r\nHost: encoder\r\n\r\n');
   * ```
   */
  readonly socket: Socket;
  readonly #spill: Uint8Array;
  /** Bytes read into the spill and not yet delivered; reading only runs while this is empty. */
  #pending: Uint8Array = EMPTY;
  /** Where Node reads next: a target region while reading, the spill while paused. */
  #next: Uint8Array;
  #nextIsSpill = true;
  #reading = false;
  #op: Receive | undefined;
  #eof = false;
  #failure: { error: unknown } | undefined;
  #received = 0;

  /**
   * Connects; use {@link connectInto}.
   *
   * @example
   * ```ts
   * import { SocketReceiver } from 'buffer-view/node';
   * const rx = new SocketReceiver({ path: '/run/encoder.sock' });
   * ```
   */
  constructor(options: ConnectIntoOptions) {
    const { spillSize = 16384, ...netOptions } = options;
    checkLength('spillSize', spillSize, 2 ** 31 - 1);
    if (spillSize === 0) throw new OutOfRangeError('spillSize', 0, 1, 2 ** 31 - 1);
    this.#spill = new Uint8Array(spillSize);
    recordAllocation(spillSize);
    this.#next = this.#spill;
    // Node asks for the first buffer inside connect(), before this constructor returns.
    this.socket = connect({
      ...netOptions,
      onread: { buffer: () => this.#next, callback: (n: number) => this.#onRead(n) },
    });
    this.socket.pause();
    this.socket.on('end', () => this.#onEnd());
    this.socket.on('error', (error: Error) => this.#onError(error));
    this.socket.on('close', () =>
      this.#onError(new Error('the socket closed before the peer ended the stream')),
    );
  }

  /**
   * Bytes delivered into targets so far, over all receives.
   *
   * @example
   * ```ts
   * rx.bytesReceived;
   * ```
   */
  get bytesReceived(): number {
    return this.#received;
  }

  /**
   * Whether the peer ended the stream and every byte before the end was delivered.
   *
   * @example
   * ```ts
   * while (!rx.ended) await rx.receive(nextMessage());
   * ```
   */
  get ended(): boolean {
    return this.#eof && this.#pending.length === 0;
  }

  /**
   * Receives into `target` until it is complete (a fixed region is full),
   * or, for open-ended targets (`ByteStore`, `ByteRing`), until the peer ends
   * the stream; a full ring pauses reading, which the peer feels as TCP
   * backpressure. Resolves with the bytes received into `target`: fewer than
   * a region's length only when the peer ended first (an error with
   * `exact`). A socket error or a close before the peer's end rejects with
   * {@link TransferError} (`cause` is the socket error, `transferred` what
   * arrived), so nothing is silently truncated. One receive at a time.
   *
   * @example
   * ```ts
   * const length = new Uint8Array(4);
   * await rx.receive(length, { exact: true });
   * const body = store.grow(new DataView(length.buffer).getUint32(0));
   * await rx.receive(body, { exact: true }); // straight into the store
   * ```
   */
  receive(target: ReadTargetLike, options: ReceiveOptions = {}): Promise<number> {
    try {
      if (this.#op !== undefined) {
        throw new InvalidArgumentError(
          'a receive() is already in progress on this socket: await it first',
        );
      }
      const into = toReadTarget(target);
      if (options.exact === true && into.expected === undefined) {
        throw new InvalidArgumentError(
          'exact receives need a fixed-size target (a Uint8Array, ByteView or region)',
        );
      }
      options.signal?.throwIfAborted();
      return new Promise<number>((resolve, reject) => {
        const op: Receive = {
          target: into,
          exact: options.exact === true,
          signal: options.signal,
          onAbort: () => this.#abort(op),
          resolve,
          reject,
          received: 0,
          paused: false,
        };
        this.#op = op;
        op.signal?.addEventListener('abort', op.onAbort, { once: true });
        this.#resume(op);
      });
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /** Node's onread callback: `n` bytes landed in the buffer `#next` named. */
  #onRead(n: number): boolean {
    const op = this.#op;
    try {
      if (this.#nextIsSpill) {
        this.#pending = this.#spill.subarray(0, n);
        if (op !== undefined) this.#drain(op);
      } else if (op !== undefined) {
        this.#commit(op, n);
      }
      if (op !== undefined && !op.paused && this.#pending.length === 0) {
        const region = op.target.region();
        if (region.length > 0) {
          this.#next = region;
          this.#nextIsSpill = false;
          return true;
        }
      }
    } catch (error) {
      this.#park();
      if (op !== undefined) this.#breakOff(op, error);
      return false;
    }
    // The target cannot take a read straight into its memory now: park on the spill.
    this.#park();
    if (op !== undefined) this.#afterPause(op);
    return false;
  }

  #commit(op: Receive, n: number): void {
    const more = op.target.commit(n);
    op.received += n;
    this.#received += n;
    if (more === false) op.paused = true;
  }

  /** Copies spilled bytes into the target (the one counted copy) as far as it takes them. */
  #drain(op: Receive): void {
    while (this.#pending.length > 0 && !op.paused) {
      const region = op.target.region();
      if (region.length === 0) return;
      const n = Math.min(region.length, this.#pending.length);
      region.set(this.#pending.subarray(0, n));
      recordCopy(n);
      this.#pending = this.#pending.subarray(n);
      this.#commit(op, n);
    }
  }

  /** Stops reading, with the spill as the next read's buffer (safe: reading resumes only once it is empty). */
  #park(): void {
    this.#next = this.#spill;
    this.#nextIsSpill = true;
    if (this.#reading) {
      this.#reading = false;
      this.socket.pause();
    }
  }

  /** Reading stopped with a receive active: it is complete, or waits for its target to have room. */
  #afterPause(op: Receive): void {
    const ready = op.target.ready;
    if (ready === undefined) {
      this.#settle(op, undefined, op.received);
      return;
    }
    ready.call(op.target, op.signal).then(
      () => {
        if (this.#op === op) this.#resume(op);
      },
      (error: unknown) => {
        if (this.#op === op) this.#settle(op, error, 0);
      },
    );
  }

  /** Delivers spilled bytes, then reads on if the target still has room. */
  #resume(op: Receive): void {
    op.paused = false;
    try {
      this.#drain(op);
      if (this.#pending.length === 0) {
        // Nothing more will arrive, whether or not the target has room.
        if (this.#eof) {
          this.#finishAtEnd(op);
          return;
        }
        if (!op.paused && op.target.region().length > 0) {
          if (this.#failure !== undefined) {
            this.#settle(op, this.#transferError(op, this.#failure.error), 0);
          } else if (!this.#reading) {
            this.#reading = true;
            this.socket.resume();
          }
          return;
        }
      }
    } catch (error) {
      this.#breakOff(op, error);
      return;
    }
    this.#afterPause(op);
  }

  #onEnd(): void {
    this.#eof = true;
    this.#reading = false;
    const op = this.#op;
    if (op !== undefined && this.#pending.length === 0) this.#finishAtEnd(op);
  }

  #onError(error: unknown): void {
    if (this.#eof || this.#failure !== undefined) return;
    this.#failure = { error };
    this.#reading = false;
    const op = this.#op;
    // Spilled bytes that arrived before the failure are still delivered by the next receive().
    if (op !== undefined) this.#settle(op, this.#transferError(op, error), 0);
  }

  #finishAtEnd(op: Receive): void {
    const expected = op.target.expected;
    if (op.exact && expected !== undefined && op.received < expected) {
      this.#settle(op, new UnexpectedEofError(expected, op.received), 0);
    } else {
      this.#settle(op, undefined, op.received);
    }
  }

  #transferError(op: Receive, error: unknown): TransferError {
    return new TransferError('read', op.received, op.target.expected, describeCause(error), {
      cause: error,
    });
  }

  /** The target threw mid-read: bytes may be half-delivered, so the stream cannot go on. */
  #breakOff(op: Receive, error: unknown): void {
    this.#failure ??= { error };
    this.#settle(op, error, 0);
    this.socket.destroy();
  }

  #abort(op: Receive): void {
    if (this.#op !== op) return;
    const reason = op.signal?.reason;
    this.#failure ??= { error: reason };
    this.#settle(op, reason, 0);
    this.socket.destroy();
  }

  #settle(op: Receive, error: unknown, value: number): void {
    if (this.#op !== op) return;
    this.#op = undefined;
    op.signal?.removeEventListener('abort', op.onAbort);
    try {
      op.target.close?.();
    } catch (closeError) {
      error ??= closeError;
    }
    if (error === undefined) op.resolve(value);
    else op.reject(error);
  }
}
