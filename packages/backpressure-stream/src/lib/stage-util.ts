import type { ByteBudget } from './budget';
import type { Channel } from './channel';
import { AbortedError, ClosedError } from './errors';
import { type StageMetrics, StallClock } from './metrics';

const quietReasons = new WeakSet<object>();

/**
 * @internal The reason a stage is stopped with when its consumer no longer
 * wants data (a downstream stage returned early): the stage is released
 * without an error, so Node streams are destroyed without one and web
 * streams are cancelled without a reason.
 */
export function quietStop(what: string): ClosedError {
  const reason = new ClosedError(`${what}: its consumer stopped reading, so it`);
  quietReasons.add(reason);
  return reason;
}

/** @internal Whether `reason` came from {@link quietStop}. */
export function isQuiet(reason: unknown): boolean {
  return typeof reason === 'object' && reason !== null && quietReasons.has(reason);
}

/** @internal What to destroy or cancel a resource with once `signal` stopped it: `undefined` for a quiet stop. */
export function stopReason(signal: AbortSignal): unknown {
  return isQuiet(signal.reason) ? undefined : signal.reason;
}

/** @internal Throws the stop reason of an aborted `signal` unless the stop was quiet. */
export function throwIfFailed(signal: AbortSignal): void {
  if (signal.aborted && !isQuiet(signal.reason)) throw signal.reason;
}

/** @internal A Node stream destroyed by someone else before it ended: Node's "premature close". */
export function prematureClose(what: string): AbortedError {
  return new AbortedError(what, { cause: 'premature close: destroyed before it ended' });
}

/** @internal */
export function noop(): void {}

/**
 * @internal Wakes every pending `wait()` at once. Loops re-check their
 * condition after each wake, so a spurious wake is harmless and every
 * event that may change a condition simply calls `notify`.
 */
export class Wakeup {
  #waiters: (() => void)[] = [];

  wait(): Promise<void> {
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  readonly notify = (): void => {
    for (const resolve of this.#waiters.splice(0)) resolve();
  };
}

/**
 * @internal Resolves or rejects like `promise`, or rejects with the signal's
 * reason as soon as it aborts. The abandoned promise gets a no-op handler so
 * its later rejection is not reported as unhandled.
 */
export function raceSignal<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) {
    promise.catch(noop);
    return Promise.reject(signal.reason);
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => {
      promise.catch(noop);
      reject(signal.reason);
    };
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(error);
      },
    );
  });
}

/**
 * @internal Meters the bytes held inside one pipeline stage (a Node stream's
 * internal buffers, a web stream's pending writes) and charges them to the
 * pipeline's budget, so the budget sees every buffer the pipeline can
 * control, not only the channels between stages.
 */
export class StageMeter {
  readonly name: string;
  readonly capacity: number;
  readonly #budget: ByteBudget | undefined;
  #held = 0;
  #peak = 0;
  bytesIn = 0;
  bytesOut = 0;
  chunksIn = 0;
  chunksOut = 0;
  #dropped = 0;
  readonly stall = new StallClock();

  constructor(name: string, capacity: number, budget: ByteBudget | undefined) {
    this.name = name;
    this.capacity = capacity;
    this.#budget = budget;
  }

  /** Bytes the stage holds now, as last measured. */
  get held(): number {
    return this.#held;
  }

  /** Records that the stage now holds `n`, charging or refunding the difference. */
  set(n: number): void {
    const delta = n - this.#held;
    if (delta === 0) return;
    this.#held = n;
    if (n > this.#peak) this.#peak = n;
    if (delta > 0) this.#budget?.take(delta);
    else this.#budget?.give(-delta);
  }

  /**
   * Whether the stage may be handed another chunk: like a channel, it
   * accepts while the shared budget has room, and always while it holds
   * nothing, so the pipeline keeps moving when other stages used the budget.
   */
  get mayTake(): boolean {
    return this.#held === 0 || this.#budget === undefined || !this.#budget.exhausted;
  }

  /** Calls `listener` whenever the budget frees bytes; returns the unsubscribe function. */
  subscribe(listener: () => void): () => void {
    return this.#budget?.subscribe(listener) ?? noop;
  }

  /** Gives everything back (the stage ended or was torn down). */
  release(): void {
    this.#dropped += this.#held;
    this.stall.stop();
    this.set(0);
  }

  get metrics(): StageMetrics {
    return {
      name: this.name,
      capacity: this.capacity,
      bufferedBytes: this.#held,
      peakBufferedBytes: this.#peak,
      bytesIn: this.bytesIn,
      bytesOut: this.bytesOut,
      chunksIn: this.chunksIn,
      chunksOut: this.chunksOut,
      bytesDropped: this.#dropped,
      stalledMs: this.stall.totalMs,
      stalls: this.stall.count,
    };
  }
}

/**
 * @internal Runs a stage that fills `channel`, tying their lifetimes: the
 * channel closes when the stage ends and aborts when it fails; aborting or
 * cancelling the channel stops the stage (quietly when no reason was given).
 */
export function feedChannel<T>(
  channel: Channel<T>,
  run: (signal: AbortSignal, onError: (error: unknown) => void) => Promise<void>,
): Channel<T> {
  const control = new AbortController();
  const off = channel.on('abort', (reason) => control.abort(reason ?? quietStop(channel.name)));
  if (channel.closed) control.abort(quietStop(channel.name));
  run(control.signal, (error) => channel.abort(error))
    .then(
      () => channel.close(),
      (error: unknown) => channel.abort(error),
    )
    .finally(off);
  return channel;
}
