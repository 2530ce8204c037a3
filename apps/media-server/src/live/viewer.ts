import type { ServerResponse } from 'node:http';
import {
  type BroadcastChunk,
  type BroadcastConsumer,
  DisconnectedError,
} from 'backpressure-stream';
import type { LiveViewerPolicy } from '../config.ts';
import { writable } from '../http/body.ts';
import type { RequestContext } from '../http/router.ts';
import type {
  LiveGeneration,
  LiveStream,
  LiveViewerHandle,
  LiveViewerSummary,
} from './live-stream.ts';

/**
 * How one viewer is treated when it falls behind.
 *
 * @example
 * ```ts
 * const options: ViewerOptions = { policy: 'skip', budget: 8 * 2 ** 20, maxLagMs: 30_000 };
 * ```
 */
export interface ViewerOptions {
  /** Over budget: `skip` to the next keyframe fragment, or `disconnect`. */
  readonly policy: LiveViewerPolicy;
  /** Bytes of the ring the viewer may hold (in its socket's queue plus not yet sent). */
  readonly budget: number;
  /** Cut off once the fragment being sent was ingested longer ago than this. */
  readonly maxLagMs: number;
}

let nextId = 0;

/**
 * One `GET /live/:name` response: a Broadcast consumer whose whole-fragment
 * chunks (zero-copy views of the ring) are written to the socket, each
 * released when the socket's write callback says the kernel has it. A
 * fragment is written whole or the connection is cut: the fan-out only
 * ever skips whole chunks, and if the consumer is cut off while the socket
 * still queues ring memory, the socket is destroyed before the ring can
 * reuse that memory (the consumer's `close` fires synchronously inside the
 * broadcaster's write, before the overwrite).
 *
 * @example
 * ```ts
 * const viewer = new LiveViewer(stream, generation, { policy: 'skip', budget, maxLagMs }, ctx.signal);
 * stream.addViewer(viewer);
 * await viewer.pump(ctx);
 * ```
 */
export class LiveViewer implements LiveViewerHandle {
  readonly id = ++nextId;
  readonly policy: LiveViewerPolicy;
  readonly budget: number;
  readonly maxLagMs: number;
  readonly #consumer: BroadcastConsumer;
  readonly #generation: LiveGeneration;
  /** Chunks handed to the socket whose write callback has not run, oldest first, with their ingest times. */
  readonly #inFlight: { chunk: BroadcastChunk; ingestedAt: number }[] = [];
  #kickReason: string | undefined;
  #cutReason: string | undefined;

  constructor(
    stream: LiveStream,
    generation: LiveGeneration,
    options: ViewerOptions,
    signal: AbortSignal,
  ) {
    this.policy = options.policy;
    this.budget = options.budget;
    this.maxLagMs = options.maxLagMs;
    this.#generation = generation;
    this.#consumer = generation.broadcast.subscribe({
      policy: options.policy === 'skip' ? 'skip-to-marker' : 'disconnect',
      budget: options.budget,
      start: 'newest-marker',
      name: `${stream.name}/viewer-${this.id}`,
      signal,
    });
  }

  /** Why the server cut this viewer off (`lagged`, `lapped`, `max-lag`), if it did. */
  get cutReason(): string | undefined {
    return this.#cutReason;
  }

  /** Bytes the fan-out dropped for this viewer so far. */
  get droppedBytes(): number {
    return this.#consumer.metrics.bytesDropped;
  }

  lagMs(now: number): number {
    const oldest = this.#inFlight[0];
    return oldest === undefined ? 0 : now - oldest.ingestedAt;
  }

  /** Leaves the broadcast without having sent anything (the request was refused). */
  close(): void {
    this.#consumer.close();
  }

  kick(reason: string): void {
    if (this.#consumer.closed) return;
    this.#kickReason = reason;
    this.#consumer.disconnect(new Error(reason));
  }

  summary(now: number): LiveViewerSummary {
    const m = this.#consumer.metrics;
    return {
      id: this.id,
      policy: this.policy,
      budget: this.budget,
      maxLagMs: this.maxLagMs,
      bufferedBytes: m.bufferedBytes,
      peakBufferedBytes: m.peakBufferedBytes,
      bytesOut: m.bytesOut,
      bytesDropped: m.bytesDropped,
      skips: m.skips,
      lagMs: Math.round(this.lagMs(now)),
    };
  }

  /**
   * Sends the init segment, then fragments until the stream ends (then ends
   * the response cleanly), the viewer is cut off (then destroys it) or the
   * client goes away.
   */
  async pump(ctx: RequestContext): Promise<void> {
    const { res } = ctx;
    const consumer = this.#consumer;
    const offClose = consumer.on('close', (error) => {
      if (error === undefined) return;
      if (DisconnectedError.isInstance(error)) {
        this.#cutReason =
          error.reason === 'removed' ? (this.#kickReason ?? 'removed') : error.reason;
      }
      // Runs inside the broadcaster's write, before it overwrites what the socket still queues;
      // and a viewer that is cut off must not linger until its socket drains.
      res.destroy();
    });
    try {
      const init = this.#generation.init;
      res.write(init);
      ctx.sent += init.byteLength;
      for (;;) {
        let result: IteratorResult<BroadcastChunk>;
        try {
          result = await consumer.read();
        } catch {
          res.destroy();
          return;
        }
        if (result.done === true) break;
        if (!(await this.#send(res, result.value))) return;
        ctx.sent += result.value.bytes.length;
      }
      res.end();
    } finally {
      offClose();
      consumer.close();
    }
  }

  /** Writes one chunk; resolves false once the client has gone away. */
  async #send(res: ServerResponse, chunk: BroadcastChunk): Promise<boolean> {
    if (res.destroyed) return false;
    const ingestedAt = this.#generation.ingestTimes.get(chunk.sequence) ?? performance.now();
    this.#inFlight.push({ chunk, ingestedAt });
    const ok = res.write(chunk.bytes.asUint8Array(), (error) => {
      // Node runs write callbacks in order, so the oldest entry is this chunk.
      this.#inFlight.shift();
      if (error === undefined || error === null) this.#consumer.release(chunk);
    });
    return ok || (await writable(res));
  }
}
