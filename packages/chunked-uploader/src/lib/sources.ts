import { ByteView } from 'buffer-view';
import { InvalidArgumentError, SourceError } from './errors';
import type { UploadSource } from './types';

/**
 * What {@link toUploadSource} (and so `upload()`) accepts: a ready
 * {@link UploadSource}, a `Blob`/`File`, bytes in memory, a web
 * `ReadableStream` or any async iterable of `Uint8Array`s.
 *
 * @example
 * ```ts
 * import type { SourceInput } from 'chunked-uploader';
 * const input: SourceInput = fileInput.files[0];
 * ```
 */
export type SourceInput =
  | UploadSource
  | Blob
  | Uint8Array
  | ByteView
  | ReadableStream<Uint8Array>
  | AsyncIterable<Uint8Array>;

/**
 * Options of the stream sources.
 *
 * @example
 * ```ts
 * fromStream(response.body, { size: Number(response.headers.get('content-length')), identity: url });
 * ```
 */
export interface StreamSourceOptions {
  /**
   * The total size when known in advance; otherwise the upload uses
   * deferred length where the protocol allows it.
   * @default undefined
   */
  size?: number;
  /**
   * Identifies the content for resuming. Streams cannot be identified by
   * their bytes before reading them, so without an identity a stream upload
   * does not resume across processes.
   * @default a random identity
   */
  identity?: string;
  /**
   * A file name to send as metadata.
   * @default undefined
   */
  name?: string;
  /**
   * A media type to send.
   * @default undefined
   */
  contentType?: string;
}

/**
 * A source over a `Blob` or `File`: seekable, read slice by slice, so the
 * whole file is never in memory. A File's name, size and lastModified form
 * its identity.
 *
 * @example
 * ```ts
 * import { fromBlob, upload, tus } from 'chunked-uploader';
 * await upload(fromBlob(input.files[0]), { protocol: tus({ endpoint: '/uploads/' }) });
 * ```
 */
export function fromBlob(blob: Blob): UploadSource {
  const file = blob as Blob & { name?: string; lastModified?: number };
  const name = typeof file.name === 'string' ? file.name : undefined;
  const source: UploadSource = {
    size: blob.size,
    identity: `blob:${name ?? ''}:${blob.size}:${file.lastModified ?? ''}:${blob.type}`,
    seekable: true,
    async read(offset, target) {
      if (offset >= blob.size) return 0;
      const end = Math.min(blob.size, offset + target.length);
      // A Blob only hands out new memory: one copy into the pooled slab is the least possible.
      const bytes = new Uint8Array(await blob.slice(offset, end).arrayBuffer());
      target.set(bytes);
      return bytes.length;
    },
  };
  return withOptional(source, name, blob.type || undefined);
}

/**
 * A source over bytes already in memory (a `Uint8Array` or a buffer-view
 * `ByteView`, segmented or not).
 *
 * @example
 * ```ts
 * import { fromBytes } from 'chunked-uploader';
 * const source = fromBytes(new TextEncoder().encode('hello'), { identity: 'greeting' });
 * ```
 */
export function fromBytes(
  bytes: Uint8Array | ByteView,
  options: Omit<StreamSourceOptions, 'size'> = {},
): UploadSource {
  const view = ByteView.from(bytes);
  const source: UploadSource = {
    size: view.length,
    identity: options.identity ?? `bytes:${view.length}:${randomId()}`,
    seekable: true,
    async read(offset, target) {
      if (offset >= view.length) return 0;
      const n = Math.min(target.length, view.length - offset);
      view.viewAt(offset, n).copyTo(target);
      return n;
    },
  };
  return withOptional(source, options.name, options.contentType);
}

/**
 * A sequential source over a web `ReadableStream` or an async iterable of
 * chunks. It reads ahead only as far as the engine asks (one chunk into a
 * pooled slab at a time); offsets may only increase, so a resume from a
 * later offset skips bytes by reading through them.
 *
 * @example
 * ```ts
 * import { fromStream } from 'chunked-uploader';
 * const res = await fetch(sourceUrl);
 * const source = fromStream(res.body!, { size: Number(res.headers.get('content-length')), identity: sourceUrl });
 * ```
 */
export function fromStream(
  stream: ReadableStream<Uint8Array> | AsyncIterable<Uint8Array>,
  options: StreamSourceOptions = {},
): UploadSource {
  const iterator = toIterator(stream);
  let position = 0;
  let pending: Uint8Array | undefined;
  let done = false;
  const source: UploadSource = {
    size: options.size,
    identity: options.identity ?? `stream:${randomId()}`,
    seekable: false,
    async read(offset, target) {
      if (offset < position) {
        throw new SourceError(
          `stream source cannot go back from offset ${position} to ${offset}: streams are read once; use a file or Blob source to resume from an earlier offset`,
        );
      }
      let filled = 0;
      while (filled < target.length && !done) {
        if (pending === undefined || pending.length === 0) {
          const next = await iterator.next();
          if (next.done === true) {
            done = true;
            break;
          }
          pending = next.value;
          continue;
        }
        if (position < offset) {
          const skip = Math.min(offset - position, pending.length);
          pending = pending.subarray(skip);
          position += skip;
          continue;
        }
        const n = Math.min(target.length - filled, pending.length);
        target.set(pending.subarray(0, n), filled);
        pending = pending.subarray(n);
        filled += n;
        position += n;
      }
      if (done && options.size !== undefined && position < options.size && filled < target.length) {
        throw new SourceError(
          `stream ended after ${position} bytes but its declared size is ${options.size}`,
        );
      }
      return filled;
    },
    async close() {
      await iterator.return?.();
    },
  };
  return withOptional(source, options.name, options.contentType);
}

/**
 * Turns any {@link SourceInput} into an {@link UploadSource}.
 *
 * @example
 * ```ts
 * import { toUploadSource } from 'chunked-uploader';
 * const source = toUploadSource(new Blob(['hello']));
 * ```
 */
export function toUploadSource(input: SourceInput): UploadSource {
  if (typeof Blob !== 'undefined' && input instanceof Blob) return fromBlob(input);
  if (input instanceof Uint8Array || input instanceof ByteView) return fromBytes(input);
  if (isUploadSource(input)) return input;
  if (isReadableStream(input) || isAsyncIterable(input)) return fromStream(input);
  throw new InvalidArgumentError(
    'unsupported upload source: expected an UploadSource, Blob/File, Uint8Array, ByteView, ReadableStream or async iterable (for a file path use fromFile from chunked-uploader/node)',
  );
}

function isUploadSource(value: unknown): value is UploadSource {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as UploadSource).read === 'function' &&
    typeof (value as UploadSource).identity === 'string'
  );
}

function isReadableStream(value: unknown): value is ReadableStream<Uint8Array> {
  return typeof ReadableStream !== 'undefined' && value instanceof ReadableStream;
}

function isAsyncIterable(value: unknown): value is AsyncIterable<Uint8Array> {
  return typeof value === 'object' && value !== null && Symbol.asyncIterator in value;
}

function toIterator(
  stream: ReadableStream<Uint8Array> | AsyncIterable<Uint8Array>,
): AsyncIterator<Uint8Array> {
  if (isReadableStream(stream)) {
    const reader = stream.getReader();
    return {
      next: () => reader.read() as Promise<IteratorResult<Uint8Array>>,
      return: async () => {
        await reader.cancel();
        reader.releaseLock();
        return { value: undefined, done: true };
      },
    };
  }
  return stream[Symbol.asyncIterator]();
}

function withOptional(
  source: UploadSource,
  name: string | undefined,
  type: string | undefined,
): UploadSource {
  const out: { -readonly [K in keyof UploadSource]: UploadSource[K] } = source;
  if (name !== undefined) out.name = name;
  if (type !== undefined) out.contentType = type;
  return out;
}

function randomId(): string {
  return globalThis.crypto.randomUUID();
}
