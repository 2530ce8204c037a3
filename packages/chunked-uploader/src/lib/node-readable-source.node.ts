import type { Readable } from 'node:stream';
import { SourceError } from './errors';
import { fromStream, type StreamSourceOptions } from './sources';
import type { UploadSource } from './types';

/**
 * A sequential {@link UploadSource} over a Node `Readable` (stdin, a
 * socket, a child process's stdout, an HTTP response): the default entry's
 * `fromStream`, which a Readable fits as an async iterable. It reads only
 * as far as the engine asks, so the stream's own backpressure holds the
 * producer back while chunks are on the wire.
 *
 * Streams are read once: the upload resumes across processes only when
 * you pass an `identity` and the same bytes flow again, and the server's
 * offset is skipped by reading through it. `close()` destroys the stream.
 * A Readable that yields strings (after `setEncoding`) fails with a
 * {@link SourceError}: an upload needs the bytes.
 *
 * @example
 * ```ts
 * import { spawn } from 'node:child_process';
 * import { upload, tus } from 'chunked-uploader';
 * import { fromNodeReadable } from 'chunked-uploader/node';
 * const ffmpeg = spawn('ffmpeg', ['-i', 'in.mov', '-f', 'mp4', '-movflags', 'frag_keyframe', 'pipe:1']);
 * await upload(fromNodeReadable(ffmpeg.stdout, { name: 'out.mp4', contentType: 'video/mp4' }), {
 *   protocol: tus({ endpoint: 'https://tus.example/files/' }),
 * });
 * ```
 */
export function fromNodeReadable(
  readable: Readable | NodeJS.ReadableStream,
  options: StreamSourceOptions = {},
): UploadSource {
  return fromStream(bytesOf(readable as AsyncIterable<unknown>), options);
}

async function* bytesOf(readable: AsyncIterable<unknown>): AsyncGenerator<Uint8Array> {
  for await (const chunk of readable) {
    if (!(chunk instanceof Uint8Array)) {
      throw new SourceError(
        `the Readable yielded ${typeof chunk === 'string' ? 'a string' : typeof chunk} instead of bytes: do not call setEncoding() on it, and use a byte (not object-mode) stream`,
      );
    }
    yield chunk;
  }
}
