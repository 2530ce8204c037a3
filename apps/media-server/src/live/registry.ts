import { join } from 'node:path';
import type { ServerConfig } from '../config.ts';
import { MediaServerError } from '../errors.ts';
import type { Library } from '../library.ts';
import type { Logger } from '../log.ts';
import {
  emptyTotals,
  type LiveState,
  LiveStream,
  type LiveTotals,
  type LiveViewerSummary,
} from './live-stream.ts';
import { LiveRecorders } from './recorder.ts';

/**
 * One live stream as `GET /api/live` lists it.
 *
 * @example
 * ```ts
 * const { streams } = (await (await fetch('/api/live')).json()) as { streams: LiveStreamSummary[] };
 * ```
 */
export interface LiveStreamSummary {
  readonly name: string;
  readonly state: LiveState;
  readonly since: string;
  /** MSE type of the current generation, e.g. `video/mp4; codecs="avc1.64000d,mp4a.40.2"`. */
  readonly mimeCodec: string | null;
  readonly width: number | null;
  readonly height: number | null;
  readonly viewers: number;
  /** Broadcaster connections so far (1 + reconnects) and init-segment generations. */
  readonly sessions: number;
  readonly generation: number;
  readonly ingest: {
    readonly bitsPerSecond: number;
    readonly bytes: number;
    /** Bytes buffer-view copied on the way in: at most `bytes` (one copy into the ring). */
    readonly copiedBytes: number;
    readonly fragments: number;
    readonly keyframes: number;
  };
  /** The ring: its fixed size, and the most any current viewer holds of it. */
  readonly ring: { readonly capacity: number; readonly maxViewerBufferedBytes: number };
  /** The newest fragment's end on the media timeline and when it arrived (ms since the epoch). */
  readonly edge: { readonly mediaSeconds: number; readonly at: number } | null;
  readonly bytesDropped: { readonly skip: number; readonly disconnect: number };
  readonly viewersDisconnected: { readonly skip: number; readonly disconnect: number };
  readonly viewerList: readonly LiveViewerSummary[];
}

/**
 * Every live stream of the server by name, with the server-wide limits
 * (streams, viewers) and the totals Prometheus reads.
 *
 * @example
 * ```ts
 * const live = new LiveRegistry(config, log);
 * const { stream, session } = live.open('cam1'); // 409 / 429 as documented
 * ```
 */
export class LiveRegistry {
  readonly config: ServerConfig;
  readonly totals: LiveTotals = emptyTotals();
  readonly #streams = new Map<string, LiveStream>();
  readonly #log: Logger;
  readonly #ingests = new Set<{ destroy(): void }>();
  readonly #recorders: LiveRecorders | undefined;
  #closed = false;

  /** `library` is where streams are recorded when `config.liveRecord` is on. */
  constructor(config: ServerConfig, log: Logger, library?: Library) {
    this.config = config;
    this.#log = log;
    // The disk may fall two fragments behind before a recording is abandoned.
    this.#recorders =
      config.liveRecord && library !== undefined
        ? new LiveRecorders(
            library,
            join(config.dataDir, 'live-recordings'),
            2 * config.liveMaxFragmentBytes,
            log,
          )
        : undefined;
  }

  /** The stream called `name`, while it exists (live or waiting for its broadcaster to reconnect). */
  get(name: string): LiveStream | undefined {
    return this.#streams.get(name);
  }

  /** Streams that exist now. */
  get size(): number {
    return this.#streams.size;
  }

  /**
   * Claims `name` for a broadcaster: the existing stream (when its
   * broadcaster dropped and this may be it coming back) or a new one.
   * Throws CONFLICT while another broadcaster holds the name and
   * LIMIT_EXCEEDED when the server has its maximum of streams.
   */
  open(name: string): { stream: LiveStream; session: object } {
    if (this.#closed) throw new MediaServerError('LIMIT_EXCEEDED', 'the server is shutting down');
    let stream = this.#streams.get(name);
    if (stream === undefined) {
      if (this.#streams.size >= this.config.liveMaxStreams) {
        throw new MediaServerError(
          'LIMIT_EXCEEDED',
          `the server has its maximum of ${this.config.liveMaxStreams} live streams (LIVE_MAX_STREAMS)`,
        );
      }
      const created = new LiveStream(
        name,
        {
          ringBytes: this.config.liveRingBytes,
          maxFragmentBytes: this.config.liveMaxFragmentBytes,
          maxViewers: this.config.liveMaxViewers,
          reconnectGraceMs: this.config.liveReconnectGraceMs,
          recorders: this.#recorders,
        },
        this.totals,
        this.#log,
        () => {
          if (this.#streams.get(name) === created) this.#streams.delete(name);
        },
      );
      stream = created;
      this.#streams.set(name, stream);
    }
    return { stream, session: stream.startSession() };
  }

  /** Tracks a broadcaster's connection so shutdown can cut it (it never ends by itself). */
  track(connection: { destroy(): void }): () => void {
    this.#ingests.add(connection);
    return () => this.#ingests.delete(connection);
  }

  /** Every stream, for `/api/live`. */
  list(): LiveStreamSummary[] {
    return [...this.#streams.values()].map(summarise);
  }

  /**
   * Shutdown: refuses new broadcasters, cuts the current ones and ends every
   * stream, so viewers get a clean end of stream once they have read what
   * the rings hold.
   */
  close(): void {
    this.#closed = true;
    for (const connection of this.#ingests) connection.destroy();
    this.#ingests.clear();
    for (const stream of [...this.#streams.values()]) stream.end();
  }

  /** Resolves once every live recording being stored is in the library (or failed). */
  async settled(): Promise<void> {
    await this.#recorders?.settled();
  }
}

function summarise(stream: LiveStream): LiveStreamSummary {
  const generation = stream.generation;
  const video = generation?.info.videoTrack;
  const viewers = stream.viewerSummaries();
  return {
    name: stream.name,
    state: stream.state,
    since: new Date(stream.createdAt).toISOString(),
    mimeCodec: generation?.info.mimeCodec ?? null,
    width: video?.width ?? null,
    height: video?.height ?? null,
    viewers: viewers.length,
    sessions: stream.sessions,
    generation: generation?.number ?? 0,
    ingest: {
      bitsPerSecond: Math.round(stream.bitrate()),
      bytes: stream.stats.ingestBytes,
      copiedBytes: stream.stats.copiedBytes,
      fragments: stream.stats.fragments,
      keyframes: stream.stats.keyframes,
    },
    ring: {
      capacity: stream.settings.ringBytes,
      maxViewerBufferedBytes: Math.max(0, ...viewers.map((v) => v.bufferedBytes)),
    },
    edge: stream.edge ?? null,
    bytesDropped: {
      skip: stream.stats.droppedBytes.skip + sum(viewers, 'skip'),
      disconnect: stream.stats.droppedBytes.disconnect + sum(viewers, 'disconnect'),
    },
    viewersDisconnected: { ...stream.stats.disconnected },
    viewerList: viewers,
  };
}

function sum(viewers: readonly LiveViewerSummary[], policy: string): number {
  let total = 0;
  for (const v of viewers) if (v.policy === policy) total += v.bytesDropped;
  return total;
}
