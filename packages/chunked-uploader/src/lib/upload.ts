import {
  Channel,
  Emitter,
  type EventMap,
  type ThrottleOptions,
  TokenBucket,
} from 'backpressure-stream';
import { type Slab, SlabPool } from 'buffer-view';
import { AdaptiveChunkSize, type AdaptiveOptions } from './adaptive';
import { Checksum, type ChecksumAlgorithm } from './checksum';
import {
  ChecksumMismatchError,
  InvalidArgumentError,
  SourceError,
  UploadAbortedError,
  UploadError,
} from './errors';
import { ProgressTracker, type UploadProgress } from './progress';
import { RetryBudget, type RetryEvent, type RetryOptions } from './retry';
import { type SourceInput, toUploadSource } from './sources';
import { defaultStateStore, type StateStore, type UploadState } from './state-store';
import type {
  Acknowledged,
  ChunkPayload,
  OpenOptions,
  ProtocolCapabilities,
  ProtocolSession,
  StoredPart,
  UploadProtocol,
  UploadSource,
} from './types';

/**
 * Options of {@link Upload} and {@link upload}.
 *
 * @example
 * ```ts
 * import { type UploadOptions, tus } from 'chunked-uploader';
 * const options: UploadOptions = {
 *   protocol: tus({ endpoint: 'http://127.0.0.1:8080/uploads/' }),
 *   chunkSize: 32 * 2 ** 20,
 *   prefetch: 2,
 * };
 * ```
 */
export interface UploadOptions {
  /** Where and how to upload: `tus(...)`, `s3(...)`, `gcs(...)` or `httpPut(...)`. */
  protocol: UploadProtocol;
  /**
   * Bytes per chunk, rounded to what the protocol allows (GCS multiples of
   * 256 KiB, S3 parts of at least 5 MiB and at most 10,000 of them).
   * @default 8 MiB
   */
  chunkSize?: number;
  /**
   * Chunks read ahead while earlier ones are on the wire. Memory is at most
   * `chunkSize × (prefetch + parallel)`, plus one chunk while the size is
   * unknown.
   * @default 2
   */
  prefetch?: number;
  /**
   * Chunks on the wire at once, where the protocol allows (S3, tus with
   * concatenation); offset-based protocols always send one at a time.
   * @default 1
   */
  parallel?: number;
  /**
   * Measure each chunk's throughput and converge on the best chunk size
   * (offset-based protocols; part-based ones keep their planned part size).
   * @default false
   */
  adaptive?: boolean | AdaptiveOptions;
  /**
   * Retry policy; the budget is shared by every chunk.
   * @default { retries: 10, minDelayMs: 250, maxDelayMs: 30000 }
   */
  retry?: RetryOptions;
  /**
   * Where resumable state is kept between runs.
   * @default localStorage in browsers, memory elsewhere (use FileStateStore from chunked-uploader/node)
   */
  stateStore?: StateStore;
  /**
   * Overrides the computed fingerprint (source identity, size, protocol, target).
   * @default computed
   */
  fingerprint?: string;
  /**
   * Metadata for the server (file name, type, anything else).
   * @default { filename, filetype } from the source when known
   */
  metadata?: Record<string, string>;
  /**
   * Aborts the upload; its state is kept so a later run resumes.
   * @default undefined
   */
  signal?: AbortSignal;
  /**
   * Delete the server-side upload (and the saved state) when aborted.
   * @default false
   */
  terminateOnAbort?: boolean;
  /**
   * Compare the whole-object digests the server reports with the source's.
   * @default true
   */
  verify?: boolean;
  /**
   * Cap the sending rate (a token bucket from backpressure-stream).
   * @default undefined (no cap)
   */
  throttle?: ThrottleOptions<never>;
  /**
   * Saved state older than this is discarded instead of resumed.
   * @default 7 days
   */
  maxStateAgeMs?: number;
}

/**
 * What a finished upload reports.
 *
 * @example
 * ```ts
 * const result: UploadResult = await upload(file, { protocol });
 * console.log(result.location, result.bytes, result.resumedFrom);
 * ```
 */
export interface UploadResult {
  /** Bytes in the uploaded object. */
  bytes: number;
  /** Where the object lives, when the server says. */
  location?: string;
  /** The object's ETag, when the server says. */
  etag?: string;
  /** Digests of the source the engine computed (base64), by algorithm. */
  digests: Partial<Record<ChecksumAlgorithm, string>>;
  /** Digests the server reported and that matched. */
  verified: ChecksumAlgorithm[];
  /** Bytes the server already had when this run started. */
  resumedFrom: number;
  /** Chunks sent by this run. */
  chunks: number;
  /** Retries spent. */
  retries: number;
  /** Milliseconds this run took. */
  durationMs: number;
}

/**
 * One acknowledged chunk, as the `'chunk'` event reports it.
 *
 * @example
 * ```ts
 * upload.on('chunk', (c: ChunkEvent) => console.log(c.index, c.length, c.bytesPerSecond));
 * ```
 */
export interface ChunkEvent {
  /** 0-based chunk index. */
  index: number;
  /** Where it starts in the source. */
  offset: number;
  /** Its size. */
  length: number;
  /** Milliseconds from send to acknowledgement. */
  ms: number;
  /** Its throughput. */
  bytesPerSecond: number;
}

/**
 * Events of an {@link Upload}.
 *
 * @example
 * ```ts
 * upload.on('progress', (p) => render(p));
 * upload.on('retry', (r) => log.warn(r.error.message));
 * ```
 */
export interface UploadEvents extends EventMap {
  /** Bytes sent or acknowledged changed. */
  progress: [progress: UploadProgress];
  /** A chunk was acknowledged. */
  chunk: [chunk: ChunkEvent];
  /** A request failed and will be retried. */
  retry: [event: RetryEvent];
  /** The upload reattached to state saved by an earlier run. */
  resumed: [bytes: number];
  /** The upload finished. */
  complete: [result: UploadResult];
}

interface ReadChunk {
  /** The size the chunk was planned at (what adaptive sizing measures). */
  planned: number;
  index: number;
  offset: number;
  bytes: Uint8Array;
  slab: Slab;
  last: boolean;
  totalSize: number | undefined;
}

/** Thrown inside the pipeline when the server lost bytes before the chunk in flight. */
class Rewind extends Error {
  constructor(readonly offset: number) {
    super(`server offset went back to ${offset}`);
  }
}

const MiB = 2 ** 20;
const DEFAULT_MAX_STATE_AGE = 7 * 24 * 3600 * 1000;

/**
 * One upload: reads the source in chunks into pooled buffers, keeps
 * `prefetch` chunks read ahead while earlier ones are on the wire, sends
 * them through the protocol (in parallel where it allows), retries from the
 * server's offset, persists what a later run needs to resume, and verifies
 * the server's digests at the end.
 *
 * @example
 * ```ts
 * import { Upload, tus } from 'chunked-uploader';
 * const job = new Upload(file, { protocol: tus({ endpoint: '/uploads/' }), prefetch: 2 });
 * job.on('progress', (p) => console.log(p.bytesAcknowledged, '/', p.bytesTotal));
 * const result = await job.start();
 * ```
 */
export class Upload extends Emitter<UploadEvents> {
  readonly #input: SourceInput;
  readonly #options: UploadOptions;
  readonly #controller = new AbortController();
  #promise: Promise<UploadResult> | undefined;
  #tracker = new ProgressTracker(undefined);
  #paused = false;
  #unpause: (() => void) | undefined;
  #gate: Promise<void> = Promise.resolve();
  #terminate = false;

  /**
   * A new upload; nothing happens until {@link Upload.start}.
   *
   * @example
   * ```ts
   * const job = new Upload(blob, { protocol: s3({ endpoint, bucket, key, credentials }), parallel: 4 });
   * ```
   */
  constructor(source: SourceInput, options: UploadOptions) {
    super();
    this.#input = source;
    this.#options = options;
    checkCount('prefetch', options.prefetch ?? 2, 0);
    checkCount('parallel', options.parallel ?? 1, 1);
    if (options.chunkSize !== undefined) checkCount('chunkSize', options.chunkSize, 1);
    const signal = options.signal;
    if (signal !== undefined) {
      if (signal.aborted) this.#controller.abort(signal.reason);
      else
        signal.addEventListener('abort', () => this.#controller.abort(signal.reason), {
          once: true,
        });
    }
  }

  /** Where the upload stands now. */
  get progress(): UploadProgress {
    return this.#tracker.snapshot();
  }

  /** Whether {@link Upload.pause} is in effect. */
  get paused(): boolean {
    return this.#paused;
  }

  /**
   * Runs the upload (once: later calls return the same promise).
   *
   * @example
   * ```ts
   * const { location } = await job.start();
   * ```
   */
  start(): Promise<UploadResult> {
    this.#promise ??= this.#run();
    return this.#promise;
  }

  /**
   * Stops sending new chunks once the ones on the wire are acknowledged.
   *
   * @example
   * ```ts
   * pauseButton.onclick = () => job.pause();
   * ```
   */
  pause(): void {
    if (this.#paused) return;
    this.#paused = true;
    this.#gate = new Promise((resolve) => {
      this.#unpause = resolve;
    });
  }

  /**
   * Continues after {@link Upload.pause}.
   *
   * @example
   * ```ts
   * resumeButton.onclick = () => job.resume();
   * ```
   */
  resume(): void {
    if (!this.#paused) return;
    this.#paused = false;
    this.#unpause?.();
  }

  /**
   * Stops the upload now; `start()` rejects with {@link UploadAbortedError}.
   * The saved state is kept so a later run resumes, unless `terminate` (or
   * the `terminateOnAbort` option) deletes the server-side upload too.
   *
   * @example
   * ```ts
   * cancelButton.onclick = () => job.abort('cancelled by the user', { terminate: true });
   * ```
   */
  abort(reason?: unknown, options: { terminate?: boolean } = {}): void {
    this.#terminate = options.terminate ?? this.#options.terminateOnAbort ?? false;
    this.resume();
    this.#controller.abort(reason);
  }

  async #run(): Promise<UploadResult> {
    const startedAt = performance.now();
    const signal = this.#controller.signal;
    const options = this.#options;
    const protocol = options.protocol;
    const source = toUploadSource(this.#input);
    const store = options.stateStore ?? defaultStateStore();
    const budget = new RetryBudget(options.retry);
    const onRetry = (event: RetryEvent) => {
      this.emit('retry', event);
    };
    let session: ProtocolSession | undefined;
    let fingerprint = '';
    try {
      fingerprint = options.fingerprint ?? (await computeFingerprint(protocol, source));
      const metadata = { ...defaultMetadata(source), ...options.metadata };
      const openOptions: OpenOptions = {
        size: source.size,
        fingerprint,
        metadata,
        contentType: source.contentType,
        signal,
      };
      let state = await this.#loadState(store, fingerprint, protocol, source);
      if (state !== undefined) {
        const saved = state.session;
        session = await budget.run(-1, signal, () => protocol.resume(saved, openOptions), onRetry);
        if (session === undefined) {
          await store.delete(fingerprint);
          state = undefined;
        }
      }
      const fresh = session === undefined;
      if (session === undefined) {
        session = await budget.run(-1, signal, () => protocol.open(openOptions), onRetry);
      }
      const caps = session.capabilities;
      const chunkSize =
        state?.chunkSize ?? planChunkSize(options.chunkSize ?? 8 * MiB, caps, source.size);
      const now = Date.now();
      state = {
        version: 1,
        fingerprint,
        protocol: protocol.name,
        size: source.size,
        chunkSize,
        session: session.state,
        createdAt: state?.createdAt ?? now,
        updatedAt: now,
      };
      await store.set(fingerprint, state);
      const saved = state;
      let savedSession = JSON.stringify(saved.session);
      const activeSession = session;
      // Some protocols keep state that changes as chunks land (GCS's running CRC32C): save it when it does.
      const persist = async () => {
        const next = JSON.stringify(activeSession.state);
        if (next === savedSession) return;
        savedSession = next;
        await store.set(fingerprint, {
          ...saved,
          session: activeSession.state,
          updatedAt: Date.now(),
        });
      };
      const result = await this.#transfer(
        source,
        session,
        chunkSize,
        budget,
        onRetry,
        signal,
        persist,
        fresh,
      );
      await store.delete(fingerprint);
      const final: UploadResult = {
        ...result,
        retries: budget.spent,
        durationMs: performance.now() - startedAt,
      };
      this.emit('complete', final);
      return final;
    } catch (error) {
      if (signal.aborted) {
        if (this.#terminate && session !== undefined) {
          await session.terminate(AbortSignal.timeout(10_000)).catch(() => undefined);
          await store.delete(fingerprint).catch(() => undefined);
        }
        throw UploadAbortedError.isInstance(error)
          ? error
          : new UploadAbortedError({ cause: signal.reason });
      }
      throw error;
    } finally {
      await source.close?.().catch(() => undefined);
    }
  }

  async #loadState(
    store: StateStore,
    fingerprint: string,
    protocol: UploadProtocol,
    source: UploadSource,
  ): Promise<UploadState | undefined> {
    const state = await store.get(fingerprint);
    if (state === undefined) return undefined;
    const maxAge = this.#options.maxStateAgeMs ?? DEFAULT_MAX_STATE_AGE;
    const stale =
      state.version !== 1 ||
      state.protocol !== protocol.name ||
      state.size !== source.size ||
      Date.now() - state.updatedAt > maxAge;
    if (stale) {
      await store.delete(fingerprint);
      return undefined;
    }
    return state;
  }

  async #transfer(
    source: UploadSource,
    session: ProtocolSession,
    chunkSize: number,
    budget: RetryBudget,
    onRetry: (event: RetryEvent) => void,
    signal: AbortSignal,
    persist: () => Promise<void>,
    fresh: boolean,
  ): Promise<Omit<UploadResult, 'retries' | 'durationMs'>> {
    const caps = session.capabilities;
    const verify = this.#options.verify ?? true;
    const algorithms = verify ? (caps.digests ?? []) : [];
    // A session opened just now holds nothing: asking would cost a round trip
    // (and some S3-compatible servers lack ListParts).
    const ack: Acknowledged = fresh
      ? caps.placement === 'offset'
        ? { placement: 'offset', offset: 0 }
        : { placement: 'part', parts: [] }
      : await budget.run(-1, signal, () => session.acknowledged(signal), onRetry);
    const stored = new Map<number, StoredPart>();
    let start = 0;
    if (ack.placement === 'offset') {
      start = ack.offset;
    } else {
      for (const part of ack.parts) {
        // A part of another size than planned cannot be reused: it is sent again.
        const expected = expectedPartSize(part.index, chunkSize, source.size);
        if (expected === undefined || part.size === expected) stored.set(part.index, part);
      }
    }
    const resumedBytes =
      ack.placement === 'offset' ? start : sum([...stored.values()].map((p) => p.size));
    this.#tracker = new ProgressTracker(source.size);
    this.#tracker.resumedAt(resumedBytes);
    if (resumedBytes > 0) this.emit('resumed', resumedBytes);
    this.emit('progress', this.#tracker.snapshot());

    const adaptive = this.#makeAdaptive(caps, chunkSize, source.size);
    const maxChunk = adaptive === undefined ? chunkSize : Math.max(chunkSize, adaptive.largest);
    const parallel =
      caps.placement === 'part' ? Math.min(this.#options.parallel ?? 1, caps.maxParallel) : 1;
    const prefetch = this.#options.prefetch ?? 2;
    const lookahead = source.size === undefined ? 1 : 0;
    const bucket =
      this.#options.throttle === undefined ? undefined : new TokenBucket(this.#options.throttle);
    const hashers = await Promise.all(algorithms.map((a) => Checksum.create(a)));
    let sentChunks = 0;
    let total = source.size;
    let rewindTo: number | undefined = ack.placement === 'offset' ? start : 0;
    let rewinds = 0;

    while (rewindTo !== undefined) {
      const from = rewindTo;
      rewindTo = undefined;
      // A fresh pool per pass: after a failed pass, slabs still held by its
      // aborted stages are simply dropped with the old pool.
      // Adaptive slabs are sized for the largest chunk it may try; leaving their
      // pages untouched until used keeps resident memory to the chunks in play.
      const pool = new SlabPool({
        slabSize: maxChunk,
        maxSlabs: prefetch + parallel + lookahead,
        preTouch: adaptive === undefined,
      });
      const queue = new Channel<ReadChunk>({ capacity: Math.max(1, prefetch), size: () => 1 });
      const stop = new AbortController();
      const linked = AbortSignal.any([signal, stop.signal]);
      if (hashers.length > 0 && from > 0)
        await this.#hashPrefix(source, from, hashers, pool, linked);
      const reader = this.#read(source, queue, pool, {
        from: caps.placement === 'offset' ? from : 0,
        chunkSize,
        adaptive,
        skip: stored,
        hashers,
        signal: linked,
      }).catch((error: unknown) => {
        queue.abort(error);
        throw error;
      });
      const senders = Array.from({ length: parallel }, () =>
        (async () => {
          for await (const chunk of queue.values({ signal: linked })) {
            try {
              await this.#gate;
              if (bucket !== undefined) await bucket.take(chunk.bytes.length, { signal: linked });
              const part = await this.#sendChunk(session, chunk, budget, onRetry, adaptive, linked);
              if (part !== undefined) stored.set(part.index, part);
              await persist();
              sentChunks++;
              if (chunk.last) total = chunk.offset + chunk.bytes.length;
            } finally {
              chunk.slab.release();
            }
          }
        })(),
      );
      try {
        await Promise.all([reader, ...senders]);
      } catch (error) {
        stop.abort(error);
        queue.abort(error);
        await Promise.allSettled([reader, ...senders]);
        if (error instanceof Rewind && source.seekable && rewinds++ < 5) {
          hashers.length = 0;
          hashers.push(...(await Promise.all(algorithms.map((a) => Checksum.create(a)))));
          rewindTo = error.offset;
          continue;
        }
        if (error instanceof Rewind) {
          throw new SourceError(
            `the server lost bytes before offset ${error.offset} and this source cannot be read again from there`,
          );
        }
        throw error;
      }
    }
    const bytes = total ?? 0;
    if (this.#tracker.snapshot().bytesTotal === undefined) this.#tracker.setTotal(bytes);
    const parts = [...stored.values()].sort((a, b) => a.index - b.index);
    const info = await budget.run(-1, signal, () => session.complete(parts, signal), onRetry);
    const digests: Partial<Record<ChecksumAlgorithm, string>> = {};
    for (const h of hashers) digests[h.algorithm] = h.base64();
    const verified: ChecksumAlgorithm[] = [];
    for (const [algorithm, value] of Object.entries(info.digests ?? {})) {
      const ours = digests[algorithm as ChecksumAlgorithm];
      if (ours === undefined) continue;
      if (ours !== value) {
        throw new ChecksumMismatchError('uploaded object', algorithm, ours, value);
      }
      verified.push(algorithm as ChecksumAlgorithm);
    }
    const result: Omit<UploadResult, 'retries' | 'durationMs'> = {
      bytes,
      digests,
      verified,
      resumedFrom: resumedBytes,
      chunks: sentChunks,
    };
    if (info.location !== undefined) result.location = info.location;
    if (info.etag !== undefined) result.etag = info.etag;
    return result;
  }

  #makeAdaptive(
    caps: ProtocolCapabilities,
    chunkSize: number,
    size: number | undefined,
  ): AdaptiveChunkSize | undefined {
    const option = this.#options.adaptive;
    if (option === undefined || option === false || caps.placement !== 'offset') return undefined;
    const settings = option === true ? {} : option;
    const min = Math.max(settings.minChunkSize ?? MiB, caps.minChunkSize);
    // No size larger than the file is worth trying (or reserving slabs for).
    const max = Math.min(settings.maxChunkSize ?? 64 * MiB, caps.maxChunkSize, size ?? Infinity);
    return new AdaptiveChunkSize(
      min,
      Math.max(min, max),
      settings.initialChunkSize ?? chunkSize,
      caps.chunkMultiple,
      settings,
    );
  }

  /** Reads chunks in order into pooled slabs and queues them. */
  async #read(
    source: UploadSource,
    queue: Channel<ReadChunk>,
    pool: SlabPool,
    plan: {
      from: number;
      chunkSize: number;
      adaptive: AdaptiveChunkSize | undefined;
      skip: Map<number, StoredPart>;
      hashers: Checksum[];
      signal: AbortSignal;
    },
  ): Promise<void> {
    const { signal } = plan;
    let offset = plan.from;
    let index = plan.adaptive === undefined ? Math.floor(offset / plan.chunkSize) : 0;
    let held: ReadChunk | undefined;
    for (;;) {
      const size = plan.adaptive?.size ?? plan.chunkSize;
      const skip = plan.skip.get(index);
      if (skip !== undefined && plan.hashers.length === 0 && source.seekable) {
        offset += skip.size;
        index++;
        if (source.size !== undefined && offset >= source.size) break;
        continue;
      }
      const slab = await pool.acquireAsync({ signal });
      let n: number;
      try {
        n = await readFully(source, offset, slab.bytes.subarray(0, size), signal);
      } catch (error) {
        slab.release();
        throw error;
      }
      const bytes = slab.bytes.subarray(0, n);
      for (const h of plan.hashers) h.update(bytes);
      const known = source.size;
      if (known !== undefined && offset + n < known && n < size) {
        slab.release();
        throw new SourceError(`source ended at ${offset + n} bytes but its size is ${known}`);
      }
      const chunk: ReadChunk = {
        planned: size,
        index,
        offset,
        bytes,
        slab,
        last: known !== undefined ? offset + n >= known : false,
        totalSize: known,
      };
      offset += n;
      index++;
      if (skip !== undefined) {
        slab.release();
        if (chunk.last) break;
        continue;
      }
      if (known !== undefined) {
        await queue.send(chunk, { signal });
        if (chunk.last) break;
        continue;
      }
      // Unknown size: hold each chunk until the next read says whether it was the last.
      if (held !== undefined) {
        if (n === 0) {
          held.last = true;
          held.totalSize = held.offset + held.bytes.length;
          slab.release();
          await queue.send(held, { signal });
          held = undefined;
          break;
        }
        await queue.send(held, { signal });
      }
      if (n === 0) {
        // An empty source: one empty final chunk.
        chunk.last = true;
        chunk.totalSize = offset;
        await queue.send(chunk, { signal });
        break;
      }
      held = chunk;
      if (n < size) {
        held.last = true;
        held.totalSize = held.offset + n;
        await queue.send(held, { signal });
        held = undefined;
        break;
      }
    }
    queue.close();
  }

  /** Sends one chunk with retries; offset protocols re-read the server offset before each retry. */
  async #sendChunk(
    session: ProtocolSession,
    chunk: ReadChunk,
    budget: RetryBudget,
    onRetry: (event: RetryEvent) => void,
    adaptive: AdaptiveChunkSize | undefined,
    signal: AbortSignal,
  ): Promise<StoredPart | undefined> {
    const placement = session.capabilities.placement;
    const end = chunk.offset + chunk.bytes.length;
    let from = chunk.offset;
    const began = performance.now();
    let receiptEtag: string | undefined;
    let receiptChecksum: string | undefined;
    await budget.run(
      chunk.index,
      signal,
      async (attempt) => {
        if (attempt > 0 && placement === 'offset') {
          const ack = await session.acknowledged(signal);
          if (ack.placement === 'offset') {
            if (ack.offset < chunk.offset) throw new Rewind(ack.offset);
            from = Math.min(ack.offset, end);
          }
        }
        while (from < end || (chunk.bytes.length === 0 && from === end && chunk.last)) {
          const payload: ChunkPayload = {
            index: chunk.index,
            offset: from,
            bytes: chunk.bytes.subarray(from - chunk.offset),
            last: chunk.last,
            totalSize: chunk.totalSize,
          };
          try {
            const receipt = await session.send(payload, {
              signal,
              onBytesSent: (n) => {
                this.#tracker.sent(chunk.index, n);
                this.emit('progress', this.#tracker.snapshot());
              },
            });
            receiptEtag = receipt.etag;
            receiptChecksum = receipt.checksum;
            const next =
              placement === 'offset' && receipt.offset !== undefined ? receipt.offset : end;
            if (next < from || next > end) {
              throw new UploadError(
                `server reported offset ${next} after a chunk covering ${from}..${end}`,
                'UPLOAD_PROTOCOL',
              );
            }
            if (chunk.bytes.length === 0) break;
            // A server may store only part of a chunk (GCS 308): send the rest.
            this.#tracker.acknowledged(chunk.index, next - from);
            from = next;
          } catch (error) {
            this.#tracker.failed(chunk.index);
            throw error;
          }
        }
      },
      onRetry,
    );
    const ms = performance.now() - began;
    adaptive?.record(chunk.planned, chunk.bytes.length, ms);
    this.emit('progress', this.#tracker.snapshot());
    this.emit('chunk', {
      index: chunk.index,
      offset: chunk.offset,
      length: chunk.bytes.length,
      ms,
      bytesPerSecond: ms > 0 ? (chunk.bytes.length / ms) * 1000 : 0,
    });
    if (placement !== 'part') return undefined;
    const part: StoredPart = { index: chunk.index, size: chunk.bytes.length };
    if (receiptEtag !== undefined) part.etag = receiptEtag;
    if (receiptChecksum !== undefined) part.checksum = receiptChecksum;
    return part;
  }

  /** Hashes bytes the server already has, so the final digest covers the whole object. */
  async #hashPrefix(
    source: UploadSource,
    end: number,
    hashers: Checksum[],
    pool: SlabPool,
    signal: AbortSignal,
  ): Promise<void> {
    const slab = await pool.acquireAsync({ signal });
    try {
      for (let at = 0; at < end; ) {
        const n = await readFully(
          source,
          at,
          slab.bytes.subarray(0, Math.min(slab.size, end - at)),
          signal,
        );
        if (n === 0)
          throw new SourceError(`source ended at ${at} bytes, before the ${end} the server has`);
        for (const h of hashers) h.update(slab.bytes.subarray(0, n));
        at += n;
      }
    } finally {
      slab.release();
    }
  }
}

/**
 * Uploads `source` and resolves when the server has every byte: shorthand
 * for `new Upload(source, options).start()`.
 *
 * @example
 * ```ts
 * import { upload, tus } from 'chunked-uploader';
 * const { location } = await upload(file, { protocol: tus({ endpoint: '/uploads/' }) });
 * ```
 */
export function upload(source: SourceInput, options: UploadOptions): Promise<UploadResult> {
  return new Upload(source, options).start();
}

/** @internal Rounds the requested chunk size to the protocol's rules and the part-count limit. */
export function planChunkSize(
  requested: number,
  caps: ProtocolCapabilities,
  size: number | undefined,
): number {
  let chunk = Math.max(requested, caps.minChunkSize, 1);
  if (size !== undefined && Number.isFinite(caps.maxChunks)) {
    chunk = Math.max(chunk, Math.ceil(size / caps.maxChunks));
  }
  chunk = Math.min(chunk, caps.maxChunkSize);
  // One chunk larger than the whole file would only reserve memory nobody fills.
  if (size !== undefined) chunk = Math.min(chunk, Math.max(size, 1));
  const multiple = Math.max(1, caps.chunkMultiple);
  chunk = Math.max(multiple, Math.ceil(chunk / multiple) * multiple);
  if (chunk > caps.maxChunkSize) chunk = Math.floor(caps.maxChunkSize / multiple) * multiple;
  return chunk;
}

async function readFully(
  source: UploadSource,
  offset: number,
  target: Uint8Array,
  signal: AbortSignal,
): Promise<number> {
  let filled = 0;
  while (filled < target.length) {
    signal.throwIfAborted();
    let n: number;
    try {
      n = await source.read(offset + filled, target.subarray(filled), signal);
    } catch (error) {
      if (UploadError.isInstance(error) || signal.aborted) throw error;
      throw new SourceError(`reading the source at offset ${offset + filled} failed`, {
        cause: error,
      });
    }
    if (n === 0) break;
    filled += n;
  }
  return filled;
}

function expectedPartSize(
  index: number,
  chunkSize: number,
  size: number | undefined,
): number | undefined {
  if (size === undefined) return undefined;
  const start = index * chunkSize;
  if (start >= size) return -1;
  return Math.min(chunkSize, size - start);
}

async function computeFingerprint(protocol: UploadProtocol, source: UploadSource): Promise<string> {
  const text = JSON.stringify([
    protocol.name,
    protocol.target,
    source.identity,
    source.size ?? null,
  ]);
  return (await Checksum.of('sha256', new TextEncoder().encode(text))).hex();
}

function defaultMetadata(source: UploadSource): Record<string, string> {
  const out: Record<string, string> = {};
  if (source.name !== undefined) out.filename = source.name;
  if (source.contentType !== undefined) out.filetype = source.contentType;
  return out;
}

function sum(values: number[]): number {
  return values.reduce((a, b) => a + b, 0);
}

function checkCount(what: string, value: number, min: number): void {
  if (!Number.isInteger(value) || value < min) {
    throw new InvalidArgumentError(`${what} ${value} is invalid: must be an integer >= ${min}`);
  }
}
