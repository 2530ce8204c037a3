import { Broadcast } from 'backpressure-stream';
import { measureCopies } from 'buffer-view';
import type { LiveViewerPolicy } from '../config.ts';
import { MediaServerError } from '../errors.ts';
import type { Logger } from '../log.ts';
import type { Fragment, InitSegment } from './box-splitter.ts';
import type { InitInfo } from './fmp4.ts';
import type { LiveRecorder, LiveRecorders } from './recorder.ts';

/**
 * The limits a live stream is built with (from the server configuration).
 *
 * @example
 * ```ts
 * const settings: LiveStreamSettings = { ringBytes: 32 * 2 ** 20, maxFragmentBytes: 4 * 2 ** 20, maxViewers: 100, reconnectGraceMs: 5000 };
 * ```
 */
export interface LiveStreamSettings {
  readonly ringBytes: number;
  readonly maxFragmentBytes: number;
  readonly maxViewers: number;
  readonly reconnectGraceMs: number;
  /** Set when streams are recorded into the library (`LIVE_RECORD=1`). */
  readonly recorders?: LiveRecorders | undefined;
}

/**
 * One run of fragments that decode against one init segment: a Broadcast
 * (the ring every viewer reads) and that init segment. A broadcaster that
 * reconnects with the same init segment continues the generation; a
 * different one starts the next.
 *
 * @example
 * ```ts
 * const generation = await stream.ready(signal);
 * res.write(generation.init);
 * const consumer = generation.broadcast.subscribe({ policy: 'skip-to-marker', start: 'newest-marker' });
 * ```
 */
export interface LiveGeneration {
  readonly number: number;
  readonly broadcast: Broadcast;
  /** The init segment, copied out of the request chunks once; every viewer is sent this memory. */
  readonly init: Uint8Array;
  readonly info: InitInfo;
  /** Ingest time (`performance.now()`) of each fragment still likely in the ring, by Broadcast sequence number. */
  readonly ingestTimes: Map<number, number>;
  /** Sequence number the next fragment written gets. */
  nextSequence: number;
}

/**
 * What a stream needs from each of its viewers (implemented by LiveViewer).
 *
 * @example
 * ```ts
 * const handle: LiveViewerHandle = viewer;
 * if (handle.lagMs(performance.now()) > handle.maxLagMs) handle.kick('max-lag');
 * ```
 */
export interface LiveViewerHandle {
  readonly policy: LiveViewerPolicy;
  readonly maxLagMs: number;
  /** Age of the oldest fragment the server is still trying to deliver to this viewer. */
  lagMs(now: number): number;
  /** Cuts the viewer off for a reason of the server's (it is counted as a disconnect). */
  kick(reason: string): void;
  summary(now: number): LiveViewerSummary;
}

/**
 * A viewer as `/api/live` shows it.
 *
 * @example
 * ```ts
 * const worst = Math.max(...stream.viewerSummaries().map((v) => v.peakBufferedBytes / v.budget));
 * ```
 */
export interface LiveViewerSummary {
  readonly id: number;
  readonly policy: LiveViewerPolicy;
  readonly budget: number;
  readonly maxLagMs: number;
  /** Bytes of the ring this viewer holds: handed to its socket and not yet flushed, plus not yet handed out. */
  readonly bufferedBytes: number;
  /** Most it ever held; the policy keeps it within the budget (plus the fragment arriving, see README). */
  readonly peakBufferedBytes: number;
  readonly bytesOut: number;
  readonly bytesDropped: number;
  readonly skips: number;
  readonly lagMs: number;
}

/**
 * Figures every stream adds to, kept by the registry so they outlive the
 * streams (Prometheus counters must never go down).
 *
 * @example
 * ```ts
 * const totals = emptyTotals();
 * totals.ingestBytes += chunk.length;
 * ```
 */
export interface LiveTotals {
  ingestBytes: number;
  /** Bytes buffer-view copied while ingesting: at most ingestBytes (one copy into the ring). */
  copiedBytes: number;
  fragments: number;
  keyframes: number;
  readonly droppedBytes: Record<LiveViewerPolicy, number>;
  /** Viewers cut off, keyed `policy/reason`. */
  readonly disconnects: Map<string, number>;
  /** The last viewers that left, newest last, as they were when they left. */
  readonly departed: LiveDepartedViewer[];
}

/**
 * A viewer that left, for `/api/live`'s `recentViewers`: what it received,
 * what it was spared, and why it was cut off if it was.
 *
 * @example
 * ```ts
 * const cut = totals.departed.filter((v) => v.cutReason !== null);
 * ```
 */
export interface LiveDepartedViewer extends LiveViewerSummary {
  readonly stream: string;
  readonly cutReason: string | null;
}

/** Departed viewers remembered for `/api/live`. */
const DEPARTED_KEPT = 64;

/**
 * Zeroed {@link LiveTotals}.
 *
 * @example
 * ```ts
 * const totals = emptyTotals();
 * ```
 */
export function emptyTotals(): LiveTotals {
  return {
    ingestBytes: 0,
    copiedBytes: 0,
    fragments: 0,
    keyframes: 0,
    droppedBytes: { skip: 0, disconnect: 0 },
    disconnects: new Map(),
    departed: [],
  };
}

/**
 * Where a stream is: a broadcaster is connected (`waiting` for its init
 * segment, or `live`), it dropped and may come back (`reconnecting`), or
 * the stream is over (`ended`).
 *
 * @example
 * ```ts
 * if (stream.state === 'reconnecting') showBanner('the broadcaster dropped, waiting…');
 * ```
 */
export type LiveState = 'waiting' | 'live' | 'reconnecting' | 'ended';

/** Fragments whose ingest time is remembered; older ones are long gone from any ring. */
const INGEST_TIMES_KEPT = 4096;
/** How often viewers are checked against their time lag limit. */
const LAG_CHECK_MS = 250;

/**
 * A named live stream: the current generation (ring + init segment), the
 * broadcaster's session, the viewers, and the figures `/api/live` shows.
 * Memory is the generation's ring, allocated when the init segment arrives,
 * plus the init segment: viewers never add to it, whatever their speed.
 *
 * @example
 * ```ts
 * const stream = new LiveStream('cam1', settings, totals, log, () => streams.delete('cam1'));
 * const session = stream.startSession();
 * splitter = new BoxSplitter({ maxUnitBytes, onInit: (i) => stream.setInit(i), onFragment: (f) => stream.publish(f) });
 * ```
 */
export class LiveStream {
  readonly name: string;
  readonly settings: LiveStreamSettings;
  readonly createdAt = Date.now();
  readonly #totals: LiveTotals;
  readonly #log: Logger;
  readonly #onEnded: () => void;
  readonly #viewers = new Set<LiveViewerHandle>();
  readonly #waiting = new Set<{
    resolve: (g: LiveGeneration) => void;
    reject: (e: unknown) => void;
  }>();
  #generation: LiveGeneration | undefined;
  #recorder: LiveRecorder | undefined;
  #session: object | undefined;
  #state: LiveState = 'waiting';
  #grace: ReturnType<typeof setTimeout> | undefined;
  readonly #lagTimer: ReturnType<typeof setInterval>;
  #sessions = 0;
  #generations = 0;
  /** The newest fragment's end in media seconds, and when (wall clock) it arrived. */
  #edge: { mediaSeconds: number; at: number } | undefined;
  readonly stats = {
    ingestBytes: 0,
    copiedBytes: 0,
    fragments: 0,
    keyframes: 0,
    droppedBytes: { skip: 0, disconnect: 0 } as Record<LiveViewerPolicy, number>,
    disconnected: { skip: 0, disconnect: 0 } as Record<LiveViewerPolicy, number>,
  };
  /** Bits per second the current session is ingesting (set by the session's meter). */
  bitrate: () => number = () => 0;

  constructor(
    name: string,
    settings: LiveStreamSettings,
    totals: LiveTotals,
    log: Logger,
    onEnded: () => void,
  ) {
    this.name = name;
    this.settings = settings;
    this.#totals = totals;
    this.#log = log.child({ stream: name });
    this.#onEnded = onEnded;
    this.#lagTimer = setInterval(() => this.#checkLag(), LAG_CHECK_MS);
    this.#lagTimer.unref();
  }

  get state(): LiveState {
    return this.#state;
  }

  get generation(): LiveGeneration | undefined {
    return this.#generation;
  }

  get broadcasting(): boolean {
    return this.#session !== undefined;
  }

  get viewerCount(): number {
    return this.#viewers.size;
  }

  get edge(): { mediaSeconds: number; at: number } | undefined {
    return this.#edge;
  }

  /**
   * Claims the stream for a broadcaster; the token identifies the session
   * to {@link LiveStream.endSession}. Throws CONFLICT while another
   * broadcaster holds it.
   */
  startSession(): object {
    if (this.#state === 'ended')
      throw new MediaServerError('CONFLICT', `live stream ${this.name} has just ended; try again`);
    if (this.#session !== undefined) {
      throw new MediaServerError(
        'CONFLICT',
        `live stream ${this.name} already has a broadcaster; one at a time`,
      );
    }
    clearTimeout(this.#grace);
    this.#grace = undefined;
    const token = {};
    this.#session = token;
    this.#sessions++;
    this.#state = this.#generation === undefined ? 'waiting' : 'live';
    return token;
  }

  /**
   * The session's init segment arrived. The same bytes as the current
   * generation's continue it (its viewers keep going); different ones end
   * it cleanly (its viewers get their end of stream) and start a new ring.
   */
  setInit(init: InitSegment): void {
    const current = this.#generation;
    if (current !== undefined && !current.broadcast.closed && init.bytes.equals(current.init)) {
      this.#log.info('broadcaster resumed with the same init segment; viewers continue');
    } else {
      current?.broadcast.end();
      const { result: bytes, stats } = measureCopies(() => init.bytes.copy());
      this.#count(0, stats.bytesCopied);
      // A different init segment makes a different file: the recording so far is complete.
      this.#recorder?.finish();
      this.#recorder = this.settings.recorders?.start(this.name, bytes);
      this.#generation = {
        number: ++this.#generations,
        broadcast: new Broadcast({
          capacity: this.settings.ringBytes,
          maxChunk: this.settings.maxFragmentBytes,
          name: `live/${this.name}#${this.#generations}`,
        }),
        init: bytes,
        info: init.info,
        ingestTimes: new Map(),
        nextSequence: 0,
      };
      this.#log.info('live generation started', {
        generation: this.#generations,
        mimeCodec: init.info.mimeCodec,
      });
    }
    this.#state = 'live';
    const generation = this.#generation as LiveGeneration;
    for (const waiter of this.#waiting) waiter.resolve(generation);
    this.#waiting.clear();
  }

  /** Writes one whole fragment into the ring: the one copy its bytes get on the way in. */
  publish(fragment: Fragment): void {
    const generation = this.#generation;
    if (generation === undefined) throw new Error('publish() before setInit()');
    const { keyframe, decodeSeconds, durationSeconds } = fragment.info;
    // Recorded before the write: the write hands the fragment to waiting viewers.
    const sequence = generation.nextSequence++;
    generation.ingestTimes.set(sequence, performance.now());
    if (generation.ingestTimes.size > INGEST_TIMES_KEPT) {
      generation.ingestTimes.delete(sequence - INGEST_TIMES_KEPT);
    }
    const { stats } = measureCopies(() =>
      generation.broadcast.write(fragment.bytes, { marker: keyframe }),
    );
    this.#recorder?.fragment(fragment.bytes);
    this.#count(0, stats.bytesCopied);
    this.stats.fragments++;
    this.#totals.fragments++;
    if (keyframe) {
      this.stats.keyframes++;
      this.#totals.keyframes++;
    }
    if (decodeSeconds !== undefined) {
      this.#edge = { mediaSeconds: decodeSeconds + (durationSeconds ?? 0), at: Date.now() };
    }
  }

  /** Counts bytes received from the broadcaster (whatever became of them) and bytes copied. */
  countIngest(bytes: number): void {
    this.#count(bytes, 0);
  }

  /**
   * The broadcaster's request is over. A clean end (the body ended) ends the
   * stream now; a dropped connection leaves `reconnectGraceMs` for the
   * broadcaster to come back before the viewers get their end of stream.
   */
  endSession(token: object, clean: boolean): void {
    if (this.#session !== token) return;
    this.#session = undefined;
    this.bitrate = () => 0;
    if (this.#state === 'ended') return;
    if (clean || this.settings.reconnectGraceMs === 0) {
      this.end();
      return;
    }
    this.#state = 'reconnecting';
    this.#log.info('broadcaster dropped; waiting for it to reconnect', {
      graceMs: this.settings.reconnectGraceMs,
    });
    this.#grace = setTimeout(() => this.end(), this.settings.reconnectGraceMs);
    this.#grace.unref();
  }

  /** Ends the stream: viewers read what is left in the ring, then get a clean end. Idempotent. */
  end(): void {
    if (this.#state === 'ended') return;
    this.#state = 'ended';
    clearTimeout(this.#grace);
    // Viewers still draining the ring stay subject to the lag limit until they leave.
    if (this.#viewers.size === 0) clearInterval(this.#lagTimer);
    this.#generation?.broadcast.end();
    this.#recorder?.finish();
    this.#recorder = undefined;
    const gone = new MediaServerError('NOT_FOUND', `live stream ${this.name} ended`);
    for (const waiter of this.#waiting) waiter.reject(gone);
    this.#waiting.clear();
    this.#log.info('live stream ended', { fragments: this.stats.fragments });
    this.#onEnded();
  }

  /** The current generation, once the broadcaster's init segment has arrived. */
  ready(signal: AbortSignal): Promise<LiveGeneration> {
    if (this.#generation !== undefined && this.#state !== 'waiting') {
      return Promise.resolve(this.#generation);
    }
    if (this.#state === 'ended') {
      return Promise.reject(new MediaServerError('NOT_FOUND', `live stream ${this.name} ended`));
    }
    return new Promise((resolve, reject) => {
      const waiter = {
        resolve: (generation: LiveGeneration) => {
          signal.removeEventListener('abort', onAbort);
          resolve(generation);
        },
        reject: (error: unknown) => {
          signal.removeEventListener('abort', onAbort);
          reject(error);
        },
      };
      const onAbort = () => {
        this.#waiting.delete(waiter);
        reject(signal.reason);
      };
      signal.addEventListener('abort', onAbort, { once: true });
      this.#waiting.add(waiter);
    });
  }

  /** Adds a viewer; throws LIMIT_EXCEEDED when the stream has its maximum. */
  addViewer(viewer: LiveViewerHandle): void {
    if (this.#viewers.size >= this.settings.maxViewers) {
      throw new MediaServerError(
        'LIMIT_EXCEEDED',
        `live stream ${this.name} has its maximum of ${this.settings.maxViewers} viewers (LIVE_MAX_VIEWERS)`,
      );
    }
    this.#viewers.add(viewer);
  }

  /** A viewer left: adds what it dropped, and its disconnect reason if it was cut, to the figures. */
  removeViewer(
    viewer: LiveViewerHandle,
    droppedBytes: number,
    cutReason: string | undefined,
  ): void {
    if (!this.#viewers.delete(viewer)) return;
    if (this.#state === 'ended' && this.#viewers.size === 0) clearInterval(this.#lagTimer);
    const departed = this.#totals.departed;
    departed.push({
      ...viewer.summary(performance.now()),
      stream: this.name,
      cutReason: cutReason ?? null,
    });
    if (departed.length > DEPARTED_KEPT) departed.shift();
    this.stats.droppedBytes[viewer.policy] += droppedBytes;
    this.#totals.droppedBytes[viewer.policy] += droppedBytes;
    if (cutReason !== undefined) {
      this.stats.disconnected[viewer.policy]++;
      const key = `${viewer.policy}/${cutReason}`;
      this.#totals.disconnects.set(key, (this.#totals.disconnects.get(key) ?? 0) + 1);
      this.#log.info('viewer disconnected', { policy: viewer.policy, reason: cutReason });
    }
  }

  /** The current viewers as `/api/live` shows them. */
  viewerSummaries(): LiveViewerSummary[] {
    const now = performance.now();
    return [...this.#viewers].map((v) => v.summary(now));
  }

  /** Number of broadcaster sessions so far (1 + reconnects). */
  get sessions(): number {
    return this.#sessions;
  }

  #count(ingested: number, copied: number): void {
    this.stats.ingestBytes += ingested;
    this.stats.copiedBytes += copied;
    this.#totals.ingestBytes += ingested;
    this.#totals.copiedBytes += copied;
  }

  #checkLag(): void {
    const now = performance.now();
    for (const viewer of this.#viewers) {
      if (viewer.lagMs(now) > viewer.maxLagMs) viewer.kick('max-lag');
    }
  }
}
