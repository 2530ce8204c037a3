import { HttpError, OffsetConflictError } from '../src/lib/errors';
import type {
  Acknowledged,
  ChunkPayload,
  ChunkReceipt,
  CompletionInfo,
  JsonValue,
  OpenOptions,
  ProtocolCapabilities,
  ProtocolSession,
  SendOptions,
  StoredPart,
  UploadProtocol,
} from '../src/lib/types';

/**
 * An in-memory implementation of our own protocol contract (not of any
 * wire protocol), for testing the engine's logic: ordering, prefetch,
 * retries, resume and memory. Wire protocols are tested against real peers.
 */
export interface MemoryServerUpload {
  bytes: number[];
  parts: Map<number, Uint8Array>;
  completed: boolean;
  terminated: boolean;
  size: number | undefined;
}

export interface Fault {
  /** Which send (0-based count of all sends) fails. */
  at: number;
  kind: 'status' | 'conflict' | 'partial' | 'lose';
  status?: number;
  retryAfterMs?: number;
  /** For 'partial': how many bytes of the chunk the server keeps. For 'lose': offset it falls back to. */
  keep?: number;
}

export class MemoryProtocol implements UploadProtocol {
  readonly name = 'memory';
  readonly target: string;
  readonly uploads = new Map<string, MemoryServerUpload>();
  readonly caps: ProtocolCapabilities;
  faults: Fault[] = [];
  sends = 0;
  inFlight = 0;
  maxInFlight = 0;
  buffersSeen = new Set<ArrayBufferLike>();
  sendLog: { index: number; offset: number; length: number }[] = [];
  /** Called when a send starts; tests use it to observe reads racing ahead. */
  onSend: ((chunk: ChunkPayload) => Promise<void> | void) | undefined;
  reportDigests: Record<string, string> | undefined;
  #next = 0;

  constructor(caps: Partial<ProtocolCapabilities> = {}, target = 'memory://test') {
    this.target = target;
    this.caps = {
      maxParallel: 1,
      chunkMultiple: 1,
      minChunkSize: 1,
      maxChunkSize: 2 ** 32,
      maxChunks: Number.POSITIVE_INFINITY,
      deferredLength: true,
      placement: 'offset',
      ...caps,
    };
  }

  async open(options: OpenOptions): Promise<ProtocolSession> {
    const id = `u${this.#next++}`;
    this.uploads.set(id, {
      bytes: [],
      parts: new Map(),
      completed: false,
      terminated: false,
      size: options.size,
    });
    return new MemorySession(this, id);
  }

  async resume(state: JsonValue): Promise<ProtocolSession | undefined> {
    const id = (state as { id: string }).id;
    const upload = this.uploads.get(id);
    if (upload === undefined || upload.terminated || upload.completed) return undefined;
    return new MemorySession(this, id);
  }

  upload(id = 'u0'): MemoryServerUpload {
    const upload = this.uploads.get(id);
    if (upload === undefined) throw new Error(`no upload ${id}`);
    return upload;
  }

  /** The stored object: offset bytes, or parts joined in order. */
  object(id = 'u0'): Uint8Array {
    const upload = this.upload(id);
    if (this.caps.placement === 'offset') return Uint8Array.from(upload.bytes);
    const parts = [...upload.parts].sort((a, b) => a[0] - b[0]).map(([, p]) => p);
    const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let at = 0;
    for (const p of parts) {
      out.set(p, at);
      at += p.length;
    }
    return out;
  }
}

class MemorySession implements ProtocolSession {
  readonly #protocol: MemoryProtocol;
  readonly #id: string;

  constructor(protocol: MemoryProtocol, id: string) {
    this.#protocol = protocol;
    this.#id = id;
  }

  get capabilities(): ProtocolCapabilities {
    return this.#protocol.caps;
  }

  get state(): JsonValue {
    return { id: this.#id };
  }

  async acknowledged(): Promise<Acknowledged> {
    const upload = this.#protocol.upload(this.#id);
    if (this.#protocol.caps.placement === 'offset')
      return { placement: 'offset', offset: upload.bytes.length };
    const parts: StoredPart[] = [...upload.parts].map(([index, p]) => ({
      index,
      size: p.length,
      etag: `e${index}`,
    }));
    return { placement: 'part', parts };
  }

  async send(chunk: ChunkPayload, options: SendOptions): Promise<ChunkReceipt> {
    const p = this.#protocol;
    const upload = p.upload(this.#id);
    const n = p.sends++;
    p.inFlight++;
    p.maxInFlight = Math.max(p.maxInFlight, p.inFlight);
    p.buffersSeen.add(chunk.bytes.buffer);
    try {
      await p.onSend?.(chunk);
      options.signal.throwIfAborted();
      const fault = p.faults.find((f) => f.at === n);
      if (fault?.kind === 'status') {
        throw new HttpError('PATCH', 'memory://test', fault.status ?? 503, 'injected', {
          retryAfterMs: fault.retryAfterMs,
        });
      }
      if (p.caps.placement === 'offset') {
        if (chunk.offset !== upload.bytes.length)
          throw new OffsetConflictError(chunk.offset, upload.bytes.length);
        if (fault?.kind === 'lose') {
          upload.bytes.length = fault.keep ?? 0;
          throw new HttpError('PATCH', 'memory://test', 500, 'server restarted and lost data');
        }
        if (fault?.kind === 'conflict')
          throw new OffsetConflictError(chunk.offset, upload.bytes.length);
        const keep = fault?.kind === 'partial' ? (fault.keep ?? 0) : chunk.bytes.length;
        for (const byte of chunk.bytes.subarray(0, keep)) upload.bytes.push(byte);
        options.onBytesSent?.(keep);
        p.sendLog.push({ index: chunk.index, offset: chunk.offset, length: keep });
        return { offset: upload.bytes.length };
      }
      upload.parts.set(chunk.index, chunk.bytes.slice());
      options.onBytesSent?.(chunk.bytes.length);
      p.sendLog.push({ index: chunk.index, offset: chunk.offset, length: chunk.bytes.length });
      return { etag: `e${chunk.index}` };
    } finally {
      p.inFlight--;
    }
  }

  async complete(parts: StoredPart[]): Promise<CompletionInfo> {
    const upload = this.#protocol.upload(this.#id);
    if (this.#protocol.caps.placement === 'part') {
      const indices = parts.map((part) => part.index);
      if (indices.some((index, i) => index !== i))
        throw new Error(`parts not contiguous: ${indices}`);
    }
    upload.completed = true;
    const info: CompletionInfo = { location: `memory://test/${this.#id}` };
    if (this.#protocol.reportDigests !== undefined) info.digests = this.#protocol.reportDigests;
    return info;
  }

  async terminate(): Promise<void> {
    this.#protocol.upload(this.#id).terminated = true;
  }
}
