import { ProtocolError } from '../lib/errors';
import type {
  Acknowledged,
  ChunkPayload,
  ChunkReceipt,
  CompletionInfo,
  ProtocolCapabilities,
  SendOptions,
  StoredPart,
} from '../lib/types';
import { assertWithinMaxSize, type SessionConfig, type TusSession } from './tus-session';
import type { ConcatState } from './tus-state';
import { createUpload, deleteUpload, headUpload, mapLimit, patchUpload } from './tus-wire';

interface Part {
  url: string;
  size: number;
  expires: Date | undefined;
}

/**
 * @internal A tus upload in parallel parts (the concatenation extension):
 * every chunk becomes its own partial upload (`Upload-Concat: partial`),
 * in any order, and `complete()` joins them into the final upload
 * (`Upload-Concat: final;<urls>`), which alone carries the metadata.
 *
 * @example
 * ```ts
 * const session = new ConcatSession(config, { parts: [], final: undefined });
 * await Promise.all(chunks.map((chunk) => session.send(chunk, { signal })));
 * const { location } = await session.complete(parts, signal);
 * ```
 */
export class ConcatSession implements TusSession {
  /** Always `'concatenation'`. */
  readonly mode = 'concatenation' as const;
  /** Parts in any order, several at once, the length never needed up front. */
  readonly capabilities: ProtocolCapabilities;
  readonly #config: SessionConfig;
  readonly #parts = new Map<number, Part>();
  #final: string | undefined;

  /** @param init - partial uploads a previous process made (resume), or none. */
  constructor(
    config: SessionConfig,
    init: { parts: ConcatState['parts']; final: string | undefined },
  ) {
    this.#config = config;
    for (const part of init.parts)
      this.#parts.set(part.index, { url: part.url, size: part.size, expires: undefined });
    this.#final = init.final;
    this.capabilities = {
      maxParallel: config.maxParallel,
      chunkMultiple: 1,
      minChunkSize: 1,
      maxChunkSize: config.info.maxSize ?? Number.MAX_SAFE_INTEGER,
      // Upload-Concat lists every part URL in one header, and servers cap header sizes (often 8-16 KiB).
      maxChunks: config.maxParts,
      // Each partial upload's length is its chunk's, known when it is sent.
      deferredLength: true,
      placement: 'part',
    };
  }

  /** The final upload's URL, once `complete()` created it. */
  get url(): string | undefined {
    return this.#final;
  }

  /** The earliest `Upload-Expires` of any partial upload: when one part goes, the whole goes. */
  get expires(): Date | undefined {
    let earliest: Date | undefined;
    for (const part of this.#parts.values()) {
      if (part.expires !== undefined && (earliest === undefined || part.expires < earliest)) {
        earliest = part.expires;
      }
    }
    return earliest;
  }

  /** `{ v: 1, mode: 'concatenation', parts, final, expires }`. */
  get state(): ConcatState {
    return {
      v: 1,
      mode: 'concatenation',
      parts: [...this.#parts]
        .sort(([a], [b]) => a - b)
        .map(([index, part]) => ({ index, url: part.url, size: part.size })),
      final: this.#final ?? null,
      expires: this.expires?.toISOString() ?? null,
    };
  }

  /**
   * `HEAD` every known partial upload: complete ones are stored parts;
   * vanished ones (404/410/403) or ones of another length are forgotten.
   */
  async acknowledged(signal: AbortSignal): Promise<Acknowledged> {
    if (await this.#finalExists(signal)) return { placement: 'part', parts: this.#allParts() };
    const entries = [...this.#parts];
    const heads = await mapLimit(entries, this.#config.maxParallel, ([, part]) =>
      headUpload(this.#config.ctx, part.url, signal, { gone: 'undefined' }),
    );
    const stored: StoredPart[] = [];
    entries.forEach(([index, part], i) => {
      const head = heads[i];
      if (head === undefined || (head.length !== undefined && head.length !== part.size)) {
        // A concurrent send may have replaced it meanwhile; forget only what was checked.
        if (this.#parts.get(index) === part) this.#parts.delete(index);
        return;
      }
      part.expires = head.expires ?? part.expires;
      if (head.offset === part.size) stored.push({ index, size: part.size });
    });
    return { placement: 'part', parts: stored.sort((a, b) => a.index - b.index) };
  }

  /**
   * Uploads the chunk as a partial upload. A retry of a chunk whose partial
   * upload already exists continues it from the server's offset instead of
   * creating another.
   */
  async send(chunk: ChunkPayload, options: SendOptions): Promise<ChunkReceipt> {
    const { ctx, checksum, info } = this.#config;
    const size = chunk.bytes.length;
    // The final upload is as large as the whole source: refuse early what it would refuse last.
    assertWithinMaxSize(info, chunk.totalSize ?? chunk.offset + size, ctx.endpoint);
    // The empty last chunk of a stream adds nothing: a zero-length partial upload would be a wasted request.
    if (size === 0) return {};
    let part = this.#parts.get(chunk.index);
    let from = 0;
    if (part !== undefined) {
      const head =
        part.size === size
          ? await headUpload(ctx, part.url, options.signal, { gone: 'undefined' })
          : undefined;
      if (head === undefined || (head.length !== undefined && head.length !== size)) {
        part = undefined;
      } else {
        part.expires = head.expires ?? part.expires;
        from = head.offset ?? 0;
      }
    }
    if (part === undefined) {
      const created = await createUpload(ctx, {
        length: size,
        metadata: undefined,
        concat: 'partial',
        body: this.#config.creationWithUpload && size > 0 ? chunk.bytes : undefined,
        checksum,
        signal: options.signal,
        onBytesSent: options.onBytesSent,
      });
      part = { url: created.url, size, expires: created.expires };
      // Recorded before the bytes are all in, so a retry or a new process finds it.
      this.#parts.set(chunk.index, part);
      from = created.offset ?? 0;
    }
    if (from > size) {
      throw new ProtocolError(
        `${part.url}: a ${size}-byte partial upload reports Upload-Offset ${from}`,
      );
    }
    if (from < size) {
      const result = await patchUpload(ctx, part.url, {
        offset: from,
        bytes: chunk.bytes.subarray(from),
        checksum,
        signal: options.signal,
        onBytesSent: options.onBytesSent,
      });
      part.expires = result.expires ?? part.expires;
    }
    return {};
  }

  /**
   * Creates the final upload from the parts in index order, then checks
   * with `HEAD` that its length is the sum of the parts. tus reports no
   * whole-object digest, so none is returned.
   */
  async complete(parts: StoredPart[], signal: AbortSignal): Promise<CompletionInfo> {
    const { ctx, metadata } = this.#config;
    // A previous attempt may have created it before its answer was lost.
    if (this.#final !== undefined && (await this.#finalExists(signal)))
      return { location: this.#final };
    const listed = parts.filter((part) => part.size > 0).map((part) => part.index);
    const indexes = (listed.length > 0 ? listed : [...this.#parts.keys()]).sort((a, b) => a - b);
    const urls: string[] = [];
    let total = 0;
    for (const [i, index] of indexes.entries()) {
      const part = this.#parts.get(index);
      if (index !== i || part === undefined) {
        throw new ProtocolError(
          `cannot concatenate: no partial upload for chunk ${i} of ${indexes.length}`,
        );
      }
      urls.push(part.url);
      total += part.size;
    }
    if (urls.length === 0) {
      // An empty source has no part to join: an empty upload is the same object.
      const created = await createUpload(ctx, { length: 0, metadata, signal });
      this.#final = created.url;
      return { location: created.url };
    }
    const created = await createUpload(ctx, {
      length: undefined,
      metadata,
      concat: `final;${urls.join(' ')}`,
      signal,
    });
    this.#final = created.url;
    const head = await headUpload(ctx, created.url, signal, { requireOffset: false });
    if (head.length !== undefined && head.length !== total) {
      throw new ProtocolError(
        `HEAD ${created.url}: the final upload has ${head.length} bytes, its ${urls.length} parts ${total}`,
      );
    }
    return { location: created.url };
  }

  /** `DELETE` the final upload and every partial upload (termination extension). */
  async terminate(signal: AbortSignal): Promise<void> {
    const { ctx, info } = this.#config;
    const urls = [
      ...(this.#final === undefined ? [] : [this.#final]),
      ...[...this.#parts.values()].map((p) => p.url),
    ];
    if (urls.length === 0) return;
    if (info.advertised && !info.extensions.includes('termination')) {
      throw new ProtocolError(
        `${ctx.endpoint} does not support the termination extension: ${urls.length} uploads stay until they expire`,
      );
    }
    await mapLimit(urls, this.#config.maxParallel, (url) => deleteUpload(ctx, url, signal));
  }

  async #finalExists(signal: AbortSignal): Promise<boolean> {
    if (this.#final === undefined) return false;
    const head = await headUpload(this.#config.ctx, this.#final, signal, {
      gone: 'undefined',
      requireOffset: false,
    });
    if (head === undefined) {
      this.#final = undefined;
      return false;
    }
    return head.length !== undefined && head.offset === head.length;
  }

  #allParts(): StoredPart[] {
    return [...this.#parts]
      .map(([index, part]) => ({ index, size: part.size }))
      .sort((a, b) => a.index - b.index);
  }
}
