import { type FileHandle, open } from 'node:fs/promises';
import { basename, extname, resolve } from 'node:path';
import { readFdInto } from 'buffer-view/node';
import { describe, SourceError } from './errors';
import type { UploadSource } from './types';

/**
 * Options of {@link fromFile}.
 *
 * @example
 * ```ts
 * import { fromFile } from 'chunked-uploader/node';
 * const source = await fromFile('take-3.mov', { name: 'final.mov', contentType: 'video/quicktime' });
 * ```
 */
export interface FileSourceOptions {
  /**
   * The file name sent as metadata (tus `filename`, S3/GCS metadata).
   * @default the path's base name
   */
  name?: string;
  /**
   * The media type sent to the server.
   * @default guessed from the extension for common video, image and audio types, else none
   */
  contentType?: string;
}

/**
 * An {@link UploadSource} over a file, from {@link fromFile}: what it
 * adds is where the file is and what it looked like when opened.
 *
 * @example
 * ```ts
 * import { fromFile } from 'chunked-uploader/node';
 * const source: FileUploadSource = await fromFile('movie.mp4');
 * console.log(source.path, source.size, new Date(source.mtimeMs));
 * ```
 */
export interface FileUploadSource extends UploadSource {
  /** Always known for a file. */
  readonly size: number;
  /** The absolute path. */
  readonly path: string;
  /** The modification time when the file was opened (ms since the epoch). */
  readonly mtimeMs: number;
  /** Closes the file. Reads after this fail. */
  close(): Promise<void>;
}

/**
 * Opens a file as an {@link UploadSource}: seekable, read with
 * buffer-view's `readFdInto` straight into the engine's pooled slabs (no
 * allocation or copy per chunk), closed when the upload ends.
 *
 * Its identity is the absolute path with the size and modification time, so
 * a re-run on the same file resumes while an edited file starts a new
 * upload. A file that changes while it is being uploaded (size or mtime
 * differ at a read) fails the upload with a {@link SourceError} rather than
 * sending a mix of old and new bytes.
 *
 * Use it with a {@link FileStateStore} so a killed process resumes.
 *
 * @example
 * ```ts
 * import { upload, tus } from 'chunked-uploader';
 * import { FileStateStore, fromFile } from 'chunked-uploader/node';
 * const result = await upload(await fromFile('movie.mp4'), {
 *   protocol: tus({ endpoint: 'https://tus.example/files/' }),
 *   stateStore: new FileStateStore(), // run it again after a crash: it resumes
 * });
 * ```
 */
export async function fromFile(
  path: string,
  options: FileSourceOptions = {},
): Promise<FileUploadSource> {
  const absolute = resolve(path);
  let handle: FileHandle;
  try {
    handle = await open(absolute, 'r');
  } catch (cause) {
    throw new SourceError(`cannot open ${absolute}: ${describe(cause)}`, { cause });
  }
  let size: number;
  let mtimeMs: number;
  try {
    const stat = await handle.stat();
    if (!stat.isFile()) {
      throw new SourceError(
        `${absolute} is not a regular file; for a pipe or a device use fromNodeReadable`,
      );
    }
    size = stat.size;
    mtimeMs = stat.mtimeMs;
  } catch (error) {
    await handle.close().catch(() => undefined);
    if (SourceError.isInstance(error)) throw error;
    throw new SourceError(`cannot stat ${absolute}: ${describe(error)}`, { cause: error });
  }
  let closed: Promise<void> | undefined;
  const contentType = options.contentType ?? guessContentType(absolute);
  const source: FileUploadSource = {
    size,
    path: absolute,
    mtimeMs,
    identity: `file:${absolute}:${size}:${mtimeMs}`,
    seekable: true,
    name: options.name ?? basename(absolute),
    async read(offset, target, signal) {
      if (closed !== undefined) throw new SourceError(`${absolute} was read after close()`);
      const length = Math.max(0, Math.min(target.length, size - offset));
      let n = 0;
      if (length > 0) {
        try {
          n = await readFdInto(
            handle,
            target.subarray(0, length),
            offset,
            signal === undefined ? {} : { signal },
          );
        } catch (cause) {
          if (signal?.aborted === true) throw cause;
          throw new SourceError(`reading ${absolute} at offset ${offset} failed`, { cause });
        }
      }
      // Checked after the read, so bytes read from an edited file are never handed on.
      const now = await handle.stat();
      if (now.size !== size || now.mtimeMs !== mtimeMs) {
        throw new SourceError(
          `${absolute} changed during the upload (size ${size} → ${now.size}, mtime ${new Date(mtimeMs).toISOString()} → ${new Date(now.mtimeMs).toISOString()}); upload it again to send the new content`,
        );
      }
      if (n < length) {
        throw new SourceError(`${absolute} ended at ${offset + n} bytes but its size is ${size}`);
      }
      return n;
    },
    close() {
      closed ??= handle.close();
      return closed;
    },
  };
  if (contentType !== undefined) (source as { contentType?: string }).contentType = contentType;
  return source;
}

/** Media types of the formats people upload most; anything else is left to the server. */
const CONTENT_TYPES: Record<string, string> = {
  '.mp4': 'video/mp4',
  '.m4v': 'video/x-m4v',
  '.mov': 'video/quicktime',
  '.mkv': 'video/x-matroska',
  '.webm': 'video/webm',
  '.avi': 'video/x-msvideo',
  '.wmv': 'video/x-ms-wmv',
  '.flv': 'video/x-flv',
  '.mpg': 'video/mpeg',
  '.mpeg': 'video/mpeg',
  '.ts': 'video/mp2t',
  '.m2ts': 'video/mp2t',
  '.mts': 'video/mp2t',
  '.ogv': 'video/ogg',
  '.3gp': 'video/3gpp',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.png': 'image/png',
  '.gif': 'image/gif',
  '.webp': 'image/webp',
  '.avif': 'image/avif',
  '.heic': 'image/heic',
  '.heif': 'image/heif',
  '.tif': 'image/tiff',
  '.tiff': 'image/tiff',
  '.bmp': 'image/bmp',
  '.svg': 'image/svg+xml',
  '.mp3': 'audio/mpeg',
  '.m4a': 'audio/mp4',
  '.aac': 'audio/aac',
  '.wav': 'audio/wav',
  '.flac': 'audio/flac',
  '.ogg': 'audio/ogg',
  '.oga': 'audio/ogg',
  '.opus': 'audio/opus',
  '.weba': 'audio/webm',
};

/**
 * @internal The media type for a file name's extension, for the common
 * video, image and audio formats; `undefined` otherwise.
 *
 * @example
 * ```ts
 * guessContentType('clip.MP4'); // 'video/mp4'
 * ```
 */
export function guessContentType(path: string): string | undefined {
  return CONTENT_TYPES[extname(path).toLowerCase()];
}
