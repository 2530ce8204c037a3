import { Channel, type ChannelOptions } from './channel';
import { noop } from './stage-util';

/**
 * A {@link Channel} whose reader is a destination stream (see
 * `fromWritableStream` and, in `backpressure-stream/node`,
 * `fromNodeWritable`): write into it with backpressure, `close()` it, and
 * await {@link SinkChannel.finished} to know the destination has taken
 * everything and closed (for a file: flushed, descriptor closed).
 *
 * @example
 * ```ts
 * import { fromWritableStream } from 'backpressure-stream';
 * const out = fromWritableStream(fileHandle.writable, { capacity: 1024 * 1024 });
 * for await (const chunk of source) await out.send(chunk);
 * out.close();
 * await out.finished;
 * ```
 */
export class SinkChannel<T = Uint8Array> extends Channel<T> {
  /**
   * Resolves once the destination finished and closed; rejects with the
   * destination's error (the channel is then aborted with it too) or with
   * the abort reason if the channel was aborted. A rejection nobody awaits
   * is not reported as unhandled: the channel's own calls report it too.
   *
   * @example
   * ```ts
   * out.close();
   * await out.finished;
   * ```
   */
  readonly finished: Promise<void>;

  /**
   * @internal Built by the adapters: `drain` moves the channel's chunks
   * into the destination and settles when the destination is done.
   */
  constructor(options: ChannelOptions<T>, drain: (channel: SinkChannel<T>) => Promise<void>) {
    super(options);
    this.finished = drain(this);
    this.finished.catch(noop);
  }
}
