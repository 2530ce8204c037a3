/**
 * The listener signature of each event an {@link Emitter} emits.
 *
 * @example
 * ```ts
 * import type { EventMap } from 'backpressure-stream';
 * interface MyEvents extends EventMap { tick: [count: number] }
 * ```
 */
export type EventMap = Record<string, unknown[]>;

/**
 * A listener for an event whose arguments are `Args`.
 *
 * @example
 * ```ts
 * import type { Listener } from 'backpressure-stream';
 * const onStall: Listener<[bufferedBytes: number]> = (n) => console.log(n);
 * ```
 */
export type Listener<Args extends unknown[]> = (...args: Args) => void;

/**
 * A minimal typed event emitter that runs in Node and browsers (Node's
 * `EventEmitter` is not available in the default entry). A listener that
 * throws does not break the emitter: its error is rethrown in a microtask,
 * where it surfaces as an uncaught error instead of corrupting state.
 *
 * @example
 * ```ts
 * import { Channel } from 'backpressure-stream';
 * const ch = new Channel();
 * const off = ch.on('drain', () => resume());
 * off(); // unsubscribe
 * ```
 */
export class Emitter<Events extends EventMap> {
  #listeners = new Map<keyof Events, Set<Listener<never[]>>>();

  /**
   * Calls `listener` on every `event`; returns a function that unsubscribes.
   *
   * @example
   * ```ts
   * const off = channel.on('drain', () => producer.resume());
   * ```
   */
  on<K extends keyof Events>(event: K, listener: Listener<Events[K]>): () => void {
    let set = this.#listeners.get(event);
    if (set === undefined) {
      set = new Set();
      this.#listeners.set(event, set);
    }
    set.add(listener as unknown as Listener<never[]>);
    return () => this.off(event, listener);
  }

  /**
   * Calls `listener` on the next `event` only.
   *
   * @example
   * ```ts
   * channel.once('close', () => console.log('done'));
   * ```
   */
  once<K extends keyof Events>(event: K, listener: Listener<Events[K]>): () => void {
    const off = this.on(event, ((...args: Events[K]) => {
      off();
      listener(...args);
    }) as Listener<Events[K]>);
    return off;
  }

  /**
   * Removes a listener added with {@link Emitter.on}.
   *
   * @example
   * ```ts
   * channel.off('drain', onDrain);
   * ```
   */
  off<K extends keyof Events>(event: K, listener: Listener<Events[K]>): void {
    const set = this.#listeners.get(event);
    set?.delete(listener as unknown as Listener<never[]>);
    if (set?.size === 0) this.#listeners.delete(event);
  }

  /**
   * How many listeners `event` has (tests use it to prove nothing dangles).
   *
   * @example
   * ```ts
   * channel.listenerCount('drain'); // 0 after cleanup
   * ```
   */
  listenerCount(event: keyof Events): number {
    return this.#listeners.get(event)?.size ?? 0;
  }

  /** @internal Emits `event` to a snapshot of the current listeners. */
  protected emit<K extends keyof Events>(event: K, ...args: Events[K]): void {
    const set = this.#listeners.get(event);
    if (set === undefined) return;
    for (const listener of [...set]) {
      try {
        (listener as unknown as Listener<Events[K]>)(...args);
      } catch (error) {
        queueMicrotask(() => {
          throw error;
        });
      }
    }
  }
}
